"""The command line: options → one request → the core → rendering, and the error boundary.

Nothing here parses files, talks HTTP or holds business rules. Each command module builds a
request for the core and renders what comes back; ``boundary.error_boundary`` is the single
place that turns an error into a message and an exit code.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from trackly_migrate.cli import json_output
from trackly_migrate.cli.boundary import error_boundary, raise_terminated
from trackly_migrate.cli.clear import clear_command
from trackly_migrate.cli.command_classes import Command, Group
from trackly_migrate.cli.completion import InstallCompletionOpt, ShowCompletionOpt, register_shells
from trackly_migrate.cli.examples import epilog
from trackly_migrate.cli.history import history_command
from trackly_migrate.cli.imports import import_command
from trackly_migrate.cli.profiles import profiles_command
from trackly_migrate.cli.unsubscribe import unsubscribe_command
from trackly_migrate.pipeline.signals import STOP_SIGNALS
from trackly_migrate.sandbox.cli import sandbox_command

# Every command line loads this module, ``--version``, ``--help`` and tab completion too: it
# imports only Typer and light modules. The rest (the pipeline, httpx, phonenumbers, Rich)
# is imported by the command that runs (issue 13; tests/test_startup_imports.py pins it).
# So the command names are written here rather than read from ``report.WORDS`` (which needs
# records and phonenumbers); the same test pins them to ``WORDS``.

app = typer.Typer(
    name="trackly-migrate",
    cls=Group,
    help="Move SMS send and click history from another platform into Trackly SMS.",
    no_args_is_help=True,
    # Locals hold the API key: a traceback must never print them.
    pretty_exceptions_show_locals=False,
    # Plain help: Rich would add ~40 ms to every --help (issue 13); the README shows it plain too.
    rich_markup_mode=None,
    # Ours instead (cli/completion.py): Typer's would import pydantic on every --help.
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from trackly_migrate import __version__

        print(f"trackly-migrate {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
    install_completion: InstallCompletionOpt = False,
    show_completion: ShowCompletionOpt = False,
) -> None:
    """Move SMS send and click history from another platform into Trackly SMS.

    Configure with TRACKLY_API_KEY (or --api-key-file) and, for anything but production,
    TRACKLY_BASE_URL. Rehearse any import with --sandbox first.
    """


app.command(
    "import-sends",
    cls=Command,
    help="Import send records (id, to_number, timestamp, ...) from FILE.",
    epilog=epilog("import-sends"),
)(import_command("sends"))
app.command(
    "import-clicks",
    cls=Command,
    help="Import click records (message_id, offer_id, phone_number, timestamp) from FILE. "
    "Import their sends first.",
    epilog=epilog("import-clicks"),
)(import_command("clicks"))
app.command("clear", cls=Command, epilog=epilog("clear"))(clear_command)
app.command("unsubscribe", cls=Command, epilog=epilog("unsubscribe"))(unsubscribe_command)
app.command("history", cls=Command, epilog=epilog("history"))(history_command)
app.command("profiles", cls=Command, epilog=epilog("profiles"))(profiles_command)
app.command("sandbox", cls=Command, epilog=epilog("sandbox"))(error_boundary(sandbox_command))


def main() -> None:
    """Run the CLI; ``trackly_migrate.__main__`` is the console script and ``python -m``.

    SIGINT and SIGTERM are held until a command lets them through (``error_boundary``), so
    one that comes while Typer parses the options is not Click's "Aborted!" with exit 1.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, raise_terminated)
    register_shells()
    if not json_output.json_requested(sys.argv[1:]):
        app(prog_name="trackly-migrate")
        return
    # Under --json, Click's own usage errors (unknown option, bad value, missing argument)
    # must be the error envelope too; they happen before any command of ours runs, so only
    # here can they be caught: standalone_mode=False hands them over instead of printing.
    try:
        code = app(prog_name="trackly-migrate", standalone_mode=False)
    except json_output.ClickUsageError as error:
        from rich.markup import escape

        from trackly_migrate.display import stderr_console

        stderr_console().print(f"[bold red]error:[/] {escape(error.format_message())}")
        if not json_output.emitted():
            json_output.emit(json_output.error_envelope(json_output.usage_error_json(error)))
        sys.exit(error.exit_code)
    except typer.Abort:
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
