"""The one error boundary: the tool's errors become a message on stderr and an exit code.

``import_exit_code`` is where an import's outcome becomes its exit code.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from trackly_migrate.cli import json_output
from trackly_migrate.errors import ExitCode, TracklyMigrateError, exit_code_for
from trackly_migrate.pipeline.signals import STOP_SIGNALS

if TYPE_CHECKING:
    from trackly_migrate.pipeline import ImportOutcome

# Rich, the display and the pipeline are imported where they are used, not here: every
# command line (``--version``, ``--help``, tab completion) loads this module (issue 13).

P = ParamSpec("P")
R = TypeVar("R")


class Terminated(KeyboardInterrupt):
    """SIGTERM outside an import run: unwinds like Ctrl-C, and exits 143."""


def raise_terminated(number: int, frame: FrameType | None) -> None:
    raise Terminated


def error_boundary(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the tool's errors into a message on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # Imported while the stop signals are still held, so the handlers below have it.
        from trackly_migrate.display import stderr_console

        json_output.start_command()
        try:
            # Held since start-up (``main``); one that came meanwhile is delivered here.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            return command(*args, **kwargs)
        except TracklyMigrateError as error:
            print_error(error)
            _emit_error(error)
            raise typer.Exit(exit_code_for(error)) from None
        except Terminated:
            stderr_console().print("Stopped (SIGTERM).")
            _emit_error(json_output.interrupted_json(signal.SIGTERM))
            raise typer.Exit(exit_code_for(None, interrupted_by=signal.SIGTERM)) from None
        except KeyboardInterrupt:
            stderr_console().print("Interrupted.")
            _emit_error(json_output.interrupted_json(signal.SIGINT))
            raise typer.Exit(exit_code_for(None, interrupted_by=signal.SIGINT)) from None

    return wrapper


def _emit_error(error: TracklyMigrateError | dict[str, object]) -> None:
    """Under ``--json``, the error envelope, unless the command's object is already out."""
    if json_output.json_enabled() and not json_output.emitted():
        json_output.emit(json_output.error_envelope(error))


def print_error(error: TracklyMigrateError) -> None:
    from rich.markup import escape

    from trackly_migrate.display import stderr_console

    console = stderr_console()
    console.print(f"[bold red]error:[/] {escape(error.message)}")
    if error.hint:
        console.print(f"[bold]hint:[/] {escape(error.hint)}")


def import_exit_code(outcome: ImportOutcome, interrupted_by: int | None) -> ExitCode:
    """0 all imported or duplicates; 1 some rejected; 3 aborted or unaccounted; 130/143."""
    counts = outcome.summary.counts
    return exit_code_for(
        outcome.error,
        interrupted_by=interrupted_by,
        unaccounted=counts.unaccounted,
        rejected=counts.rejected,
    )
