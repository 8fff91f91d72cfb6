"""What a person (or a cron log) sees on stderr while a run goes and when it ends.

Three displays share one interface: a Rich progress bar for a terminal, plain timestamped
lines at a steady pace for everything else (cron, pipes, CI logs), and a quiet one. None ever
writes to stdout: stdout is for the ``--json`` summary only.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from trackly_migrate.clearing import SCOPES, ClearPlan, ClearResult
from trackly_migrate.counts import sorted_months
from trackly_migrate.pipeline.ports import ProgressState
from trackly_migrate.report import Summary

PLAIN_INTERVAL_S = 10.0
PLAIN_STEP = 0.05  # also a line every 5% of the input


def stderr_console() -> Console:
    """The console for everything but results; colour only on a terminal, per NO_COLOR."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


class LogFile:
    """``--log-file``: the plain progress lines, appended, one per event."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self._failed = False

    def write(self, line: str) -> None:
        with self._lock:
            if self._failed:
                return
            try:
                self._handle.write(line + "\n")
                self._handle.flush()
            except OSError as exc:
                # The log is a copy of what stderr shows: losing it must not stop a migration.
                self._failed = True
                print(
                    f"warning: cannot write the log file any more ({exc.strerror}); stderr goes on",
                    file=sys.stderr,
                    flush=True,
                )

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"


def progress_line(state: ProgressState) -> str:
    """One plain progress line (also what --log-file holds)."""
    parts = [
        f"read {state.counts.read:,}",
        f"imported {state.counts.imported:,}",
        f"duplicates {state.counts.duplicates:,}",
        f"rejected {state.counts.rejected:,}",
        f"{_rate(state.counts.read, state.elapsed_s)}",
        f"in flight {state.in_flight}/{state.concurrency}",
    ]
    if state.total_bytes:
        parts.append(f"{min(100.0, 100 * state.bytes_read / state.total_bytes):.0f}%")
    return ", ".join(parts)


class Display:
    """The quiet display, and the base of the others: shows nothing but warnings' log lines."""

    def __init__(self, console: Console, log: LogFile | None = None) -> None:
        self.console = console
        self._log = log

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log.write(f"{_stamp()} {message}")

    def start(self, title: str) -> None:
        self.log(title)

    def progress(self, state: ProgressState) -> None:
        pass

    def warning(self, message: str) -> None:
        self.log(f"warning: {message}")

    def info(self, message: str) -> None:
        self.log(message)

    def retry(self, reason: str, delay: float) -> None:
        self.log(f"retrying in {delay:.1f}s: {reason}")

    def stop(self) -> None:
        pass


class PlainDisplay(Display):
    """Timestamped lines every 10 s or 5% of the input, whichever comes first; no colour."""

    def __init__(self, console: Console, log: LogFile | None = None) -> None:
        super().__init__(console, log)
        self._last_time = time.monotonic()
        self._last_fraction = 0.0
        self._last_state: ProgressState | None = None
        self._last_line = ""
        self._lock = threading.Lock()

    def _emit(self, message: str) -> None:
        line = f"{_stamp()} {message}"
        with self._lock:
            print(line, file=sys.stderr, flush=True)
        if self._log is not None:
            self._log.write(line)

    def start(self, title: str) -> None:
        self._emit(title)

    def progress(self, state: ProgressState) -> None:
        self._last_state = state
        now = time.monotonic()
        fraction = state.bytes_read / state.total_bytes if state.total_bytes else 0.0
        if now - self._last_time >= PLAIN_INTERVAL_S or fraction - self._last_fraction >= (
            PLAIN_STEP
        ):
            self._last_time = now
            self._last_fraction = fraction
            self._emit_progress(state)

    def _emit_progress(self, state: ProgressState) -> None:
        line = progress_line(state)
        if line != self._last_line:
            self._last_line = line
            self._emit(line)

    def warning(self, message: str) -> None:
        self._emit(f"warning: {message}")

    def info(self, message: str) -> None:
        self._emit(message)

    def retry(self, reason: str, delay: float) -> None:
        self._emit(f"retrying in {delay:.1f}s: {reason}")

    def stop(self) -> None:
        if self._last_state is not None:
            self._emit_progress(self._last_state)


class _CountsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        fields: dict[str, Any] = task.fields
        return Text(
            f"{fields.get('read', 0):,} read · {fields.get('imported', 0):,} ok · "
            f"{fields.get('rejected', 0):,} rejected · {fields.get('rate', '-')} · "
            f"{fields.get('in_flight', 0)}/{fields.get('concurrency', 0)} in flight · "
            f"{fields.get('duplicates', 0):,} dup",
            no_wrap=True,
            overflow="ellipsis",
        )


class RichDisplay(Display):
    """A live progress bar on a terminal: bytes read drive the bar and the ETA."""

    def __init__(self, console: Console, log: LogFile | None = None) -> None:
        super().__init__(console, log)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            _CountsColumn(),
            console=console,
            transient=False,
            refresh_per_second=8,
        )
        self._task: Any = None

    def start(self, title: str) -> None:
        super().start(title)
        self.console.print(title, markup=False, highlight=False)
        # The bar's own label stays short so the line fits a terminal: "import-sends file.csv".
        command, _, rest = title.partition(" ")
        name = rest.split(" → ")[0].rsplit("/", 1)[-1]
        self._progress.start()
        self._task = self._progress.add_task(f"{command} {name}", total=None)

    def progress(self, state: ProgressState) -> None:
        if self._task is None:
            return
        self._progress.update(
            self._task,
            total=state.total_bytes,
            completed=state.bytes_read,
            read=state.counts.read,
            imported=state.counts.imported,
            duplicates=state.counts.duplicates,
            rejected=state.counts.rejected,
            rate=_rate(state.counts.read, state.elapsed_s),
            in_flight=state.in_flight,
            concurrency=state.concurrency,
        )

    def warning(self, message: str) -> None:
        super().warning(message)
        self.console.print(f"[yellow]warning:[/] {escape(message)}", markup=True)

    def info(self, message: str) -> None:
        super().info(message)
        self.console.print(message, markup=False)

    def retry(self, reason: str, delay: float) -> None:
        super().retry(reason, delay)
        self.console.print(f"[dim]retrying in {delay:.1f}s: {escape(reason)}[/]", markup=True)

    def stop(self) -> None:
        if self._task is not None:
            self._progress.stop()
            self._task = None


def make_display(
    console: Console, *, quiet: bool, interactive: bool, log: LogFile | None = None
) -> Display:
    if quiet:
        return Display(console, log)
    if interactive:
        return RichDisplay(console, log)
    return PlainDisplay(console, log)


def files_table(files: list[dict[str, Any]]) -> Table:
    """The per-file breakdown of a run over several files, one line a file."""
    table = Table(title="files", box=None)
    table.add_column("file")
    for name in ("read", "imported", "duplicates", "rejected"):
        table.add_column(name, justify="right")
    table.add_column("status")
    for row in files:
        counts = [f"{row[name]:,}" for name in ("read", "imported", "duplicates", "rejected")]
        table.add_row(escape(row["path"]), *counts, row["status"])
    return table


def summary_table(summary: Summary, *, resumable: bool = True) -> Table:
    """The end-of-run summary; every input record is on one of its lines."""
    table = Table(title=f"{summary.command}: {summary.input}", show_header=False, box=None)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    table.add_column("note", style="dim")
    counts, words = summary.counts, summary.words
    table.add_row("records read", f"{counts.read:,}", _resumed_note(summary))
    if summary.dry_run:
        table.add_row("valid (not sent: dry run)", f"{counts.pending:,}", "")
    else:
        table.add_row(_label(words.imported), f"{counts.imported:,}", "")
        table.add_row(_label(words.duplicates), f"{counts.duplicates:,}", _duplicates_note(summary))
    table.add_row("rejected locally", f"{counts.rejected_local:,}", "never sent")
    if not summary.dry_run:
        table.add_row("rejected by the server", f"{counts.rejected_server:,}", "")
    if counts.unaccounted:
        table.add_row(
            "[red]unaccounted[/]",
            f"{counts.unaccounted:,}",
            "the server's counts did not add up",
        )
    if counts.pending and not summary.dry_run:
        again = "run again with --resume" if words.resumable and resumable else "run it again"
        table.add_row("not confirmed", f"{counts.pending:,}", again)
    requests_note = f"{counts.retries:,} retries"
    if counts.itemize_requests:
        requests_note += f", {counts.itemize_requests:,} to itemize >100 failures"
    table.add_row("requests", f"{counts.requests:,}", requests_note)
    table.add_row("time", f"{summary.elapsed_s:,.1f}s", _rate(counts.read, summary.elapsed_s))
    if summary.errors_report:
        table.add_row("errors report", summary.errors_report, "one row per rejected record")
    return table


BAR_WIDTH = 20


def month_table(summary: Summary) -> Table | None:
    """Records per UTC month, to compare with the source platform's monthly counts; the bar
    shows each month's records read (imported green, duplicates blue, rejected red)."""
    months = sorted_months(summary.counts.months)
    if not months:
        return None
    table = Table(title="by month (UTC)", box=None, pad_edge=False)
    for name in ("month", "read", "imported", "duplicates", "rejected"):
        table.add_column(name, justify="left" if name == "month" else "right")
    table.add_column("", no_wrap=True)
    widest = max(row["read"] for _, row in months) or 1
    for month, row in months:
        label = month + ("*" if row.get("estimated") else "")
        table.add_row(
            label,
            *(f"{row[name]:,}" for name in ("read", "imported", "duplicates", "rejected")),
            _bar(row, widest),
        )
    if any(row.get("estimated") for _, row in months):
        table.caption = "* imported/duplicates shared out: the API does not name duplicates"
    return table


def _bar(row: dict[str, int], widest: int) -> Text:
    bar = Text()
    scale = BAR_WIDTH / widest
    for name, style in (("imported", "green"), ("duplicates", "blue"), ("rejected", "red")):
        bar.append("█" * round(row[name] * scale), style=style)
    other = round(row["read"] * scale) - len(bar.plain)
    if other > 0:
        bar.append("░" * other, style="dim")
    return bar


def _label(key: str) -> str:
    return key.replace("_", " ")


def _duplicates_note(summary: Summary) -> str:
    if summary.words.duplicates_note:
        return summary.words.duplicates_note
    if summary.counts.duplicates_after_retry:
        return (
            f"{summary.counts.duplicates_after_retry:,} after a retried request (most likely "
            "stored by the lost attempt)"
        )
    return "already in Trackly"


def _resumed_note(summary: Summary) -> str:
    if summary.resumed_from_line:
        return f"whole file; this run resumed at line {summary.resumed_from_line:,}"
    return ""


def render_clear_plan(console: Console, plan: ClearPlan, target: str) -> None:
    """The clear plan in words: each entity's exact scope, the cutoff, the target and key."""
    console.print("[bold]This will permanently delete, and it cannot be undone:[/]")
    for entity in plan.entities:
        scope = SCOPES[entity]
        if entity == "revenue":
            console.print(f"  • [bold red]revenue: {scope}[/]")
        else:
            console.print(f"  • [bold]{entity}[/]: {scope}")
    console.print(f"  Time scope: {plan.time_scope()}", markup=False)
    console.print(f"  Target: {target}", markup=False)


def clear_result_table(result: ClearResult) -> Table:
    table = Table(title="Cleared", show_header=True, box=None)
    table.add_column("entity", style="bold")
    table.add_column("records deleted", justify="right")
    for entity, count in result.cleared.items():
        table.add_row(entity, f"{count:,}" if count >= 0 else "(not reported)")
    return table
