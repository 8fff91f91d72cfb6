"""The ``trackly-migrate`` command (and ``python -m trackly_migrate``).

Ctrl-C or SIGTERM may come at any moment, also during the start-up imports, before any handler
of ours exists. So the first thing is to hold both signals (block them: they wait, they are not
lost); each command lets them through once it can handle them (``cli.error_boundary``).
"""

import signal


def main() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    from trackly_migrate.cli import main as run

    run()


if __name__ == "__main__":
    main()
