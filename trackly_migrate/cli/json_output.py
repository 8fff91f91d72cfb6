"""``--json``: every exit prints exactly one JSON object on stdout (docs/output.schema.json).

A command's result (the import summary, the clear result, the unsubscribe answer) is that
object; when a command fails before it has one, the error boundary prints the error envelope
``{"status": "error", "error": {...}}`` instead. ``emit`` remembers that the object went out,
so that an error raised after it (the summary file cannot be written) adds none.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from typing import Any

from trackly_migrate.errors import TracklyMigrateError, error_json

try:  # Typer 0.2x carries its own copy of Click: its errors and context are that copy's
    from typer._click.exceptions import UsageError as ClickUsageError
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - a Typer that uses the click package
    from click.exceptions import UsageError as ClickUsageError  # type: ignore[assignment]
    from click.globals import get_current_context  # type: ignore[no-redef]

__all__ = [
    "ClickUsageError",
    "emit",
    "emitted",
    "error_envelope",
    "interrupted_json",
    "json_enabled",
    "json_requested",
    "start_command",
    "usage_error_json",
]

_emitted = False


def json_requested(args: Sequence[str]) -> bool:
    """Whether ``--json`` is on the command line (before a ``--`` that ends the options)."""
    for word in args:
        if word == "--":
            return False
        if word == "--json":
            return True
    return False


def json_enabled() -> bool:
    """Whether the running command was given ``--json``."""
    context = get_current_context(silent=True)
    return bool(context is not None and context.params.get("json_output"))


def emit(payload: dict[str, Any]) -> None:
    """Print the command's one JSON object on stdout."""
    global _emitted
    _emitted = True
    import orjson  # not at import: every command line loads this module (start-up)

    sys.stdout.write(orjson.dumps(payload).decode() + "\n")
    sys.stdout.flush()


def emitted() -> bool:
    return _emitted


def start_command() -> None:
    """A command begins: nothing of it is out yet (a program may run several in one process)."""
    global _emitted
    _emitted = False


def error_envelope(error: TracklyMigrateError | dict[str, Any]) -> dict[str, Any]:
    """The object of a command that stopped before it had a result."""
    body = error if isinstance(error, dict) else error_json(error)
    return {"status": "error", "error": body}


def usage_error_json(error: ClickUsageError) -> dict[str, Any]:
    """Click's own usage error (unknown option, missing argument, bad value) as an error."""
    command = error.ctx.command_path if error.ctx is not None else "trackly-migrate"
    return {
        "code": "usage",
        "message": error.format_message(),
        "hint": f"See {command} --help.",
    }


def interrupted_json(signal_number: int) -> dict[str, Any]:
    """The ``error`` object of a command stopped by Ctrl-C (SIGINT) or SIGTERM."""
    name = signal.Signals(signal_number).name
    return {
        "code": "interrupted",
        "message": f"Stopped by {name}.",
        "hint": None,
    }
