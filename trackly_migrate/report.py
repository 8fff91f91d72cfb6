"""The errors report (one row per rejected record) and the run summary.

The report is created when the run starts, before anything is sent (a place that cannot take
it is found then, not after thousands of records went out), readable by its owner only (it
holds phone numbers), and removed again at the end if nothing was rejected. It never replaces
a file this run family did not write: an existing file at its place is refused unless the
user says ``--force``, or the run resumes (or restarts) the run whose checkpoint names it.
It is shaped so that a user can fix the rows and feed the file back in: the report's own
columns come first and start with ``_`` (readers ignore them), followed by the record's
original columns.

Spreadsheet safety (OWASP "CSV injection"): a cell that starts with ``=``, ``+``, ``-``, ``@``,
tab or carriage return is written with a leading ``'`` so that a spreadsheet shows it as text
instead of running it as a formula. A cell that is only a phone number in E.164 form
(``+14155550123``) is left as it is: it cannot hold a formula, and escaping it would make every
fixed row need editing before it imports. Reading a report back as input removes the ``'``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import re
import stat
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from trackly_migrate.counts import Counts, sorted_months
from trackly_migrate.errors import InputError, OutputError, TracklyMigrateError, UsageError
from trackly_migrate.readers import JsonNumber, json_default
from trackly_migrate.records import REPORT_COLUMNS, Kind

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
RAW_COLUMN = "_raw"
_PLAIN_PHONE = re.compile(r"^\+[0-9]{1,15}$")


class Stage:
    LOCAL = "local"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class ReportRow:
    line: int
    record_id: str | None
    stage: str
    code: str
    message: str
    source: list[str] | dict[str, Any] | None
    text: str | None = None  # the unreadable input, when there is no parsed source


def spreadsheet_safe(cell: str) -> str:
    """``cell`` as a spreadsheet will show it, never run it (see the module docstring)."""
    if cell.startswith(_FORMULA_START) and not _PLAIN_PHONE.match(cell):
        return "'" + cell
    return cell


def default_report_path(input_path: str, kind: str) -> Path:
    """``<input name>.errors.csv`` in the current folder (``<kind>.errors.csv`` for stdin)."""
    if input_path == "-":
        return Path(f"stdin-{kind}.errors.csv")
    name = Path(input_path).name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix)
    return Path(f"{name}.errors.csv")


def open_private(
    path: Path,
    *,
    append: bool,
    truncate_to: int | None = None,
    exclusive: bool = False,
    what: str = "the errors report",
    option: str = "--errors",
    error: type[TracklyMigrateError] = InputError,
) -> IO[str]:
    """Open ``path`` for writing text, mode 0600 whatever umask or an older file said.

    ``exclusive``: create the file, and fail with ``FileExistsError`` if there is one.
    """
    flags = os.O_WRONLY | os.O_CREAT
    if exclusive:
        flags |= os.O_EXCL
    else:
        flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        descriptor = os.open(path, flags, 0o600)
        try:
            if stat.S_ISREG(os.fstat(descriptor).st_mode):  # never chmod a device or a pipe
                _make_private(descriptor, path)
                if truncate_to is not None:
                    os.ftruncate(descriptor, truncate_to)
        except OSError:
            os.close(descriptor)
            raise
    except FileExistsError:
        raise
    except OSError as exc:
        raise error(
            f"Cannot write {what} {path}: {exc.strerror}.",
            hint=f"Choose another place with {option} PATH.",
        ) from None
    return os.fdopen(descriptor, "w", encoding="utf-8", newline="")


def _make_private(descriptor: int, path: Path) -> None:
    fchmod = getattr(os, "fchmod", None)  # missing on Windows before Python 3.13
    if fchmod is not None:
        fchmod(descriptor, 0o600)
    else:
        path.chmod(0o600)


def refuse_overwriting_input(input_path: str, path: Path, option: str) -> None:
    """A usage error when an output would be written over the input being read."""
    if input_path == "-" or not path.exists():
        return
    with contextlib.suppress(OSError):
        if path.samefile(input_path):
            raise UsageError(
                f"{option} {path} is the input file itself: writing it would destroy the input.",
                hint=f"Choose another place with {option} PATH.",
            )


def check_writable(
    path: Path, *, what: str = "the errors report", option: str = "--errors"
) -> None:
    """Fail before anything is sent if ``path`` could not be created or written later."""
    folder = path.parent if str(path.parent) else Path()
    problem = None
    if path.is_dir():
        problem = "it is a folder"
    elif not folder.is_dir():
        problem = f"the folder {folder} does not exist"
    elif not os.access(folder, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.W_OK)
    ):
        problem = "permission denied"
    if problem:
        raise InputError(
            f"Cannot write {what} {path}: {problem}.",
            hint=f"Choose another place with {option} PATH.",
        )


def write_private_atomically(path: Path, text: str, *, what: str, option: str) -> None:
    """Replace ``path`` with ``text`` in one step, mode 0600: a reader (a cron job's next
    step) sees the old file or the new one, never half of one. A pipe or device is written."""
    if _is_special(path):
        with open_private(path, append=False, what=what, option=option, error=OutputError) as f:
            f.write(text)
        return
    folder = path.parent if str(path.parent) else Path()
    temporary: str | None = None
    try:
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:  # mkstemp makes it 0600
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
        temporary = None
    except OSError as exc:
        raise OutputError(
            f"Cannot write {what} {path}: {exc.strerror}.",
            hint=f"Choose another place with {option} PATH.",
        ) from None
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()


class ErrorReport:
    """Writes report rows as CSV or JSONL into a file created by ``create()``.

    ``resume_size``: continue the report of the run being resumed, cut back to the size its
    checkpoint recorded. ``replace``: an existing file at ``path`` may be replaced (``--force``,
    or the report of the run being restarted); otherwise an existing file is refused.
    """

    def __init__(
        self,
        path: Path,
        *,
        source_columns: list[str] | None,
        field_names: list[str],
        resume_size: int | None = None,
        replace: bool = False,
    ) -> None:
        self.path = path
        self.jsonl = path.suffix.lower() in {".jsonl", ".ndjson"}
        # CSV needs fixed columns: the input's header, or for JSONL input the field names.
        self._columns = source_columns if source_columns is not None else field_names
        self._from_jsonl = source_columns is None
        self._file: IO[str] | None = None
        self._writer: Any = None
        self._resume_size = resume_size
        self._replace = replace
        self._header_due = False
        self._regular_file = False
        self._sync_lock = threading.Lock()
        self.rows = 0

    @property
    def has_rows(self) -> bool:
        """Whether the report holds rows (written now, or by the run this one resumes)."""
        return self.rows > 0 or bool(self._resume_size)

    def create(self, error: type[TracklyMigrateError] = InputError) -> None:
        """Create the file now (or reopen the resumed run's), before anything is sent.

        Raises ``UsageError`` when a file this run may not replace is at ``path``, and
        ``error`` when the place cannot take a file.
        """
        if self._file is not None:
            return
        resuming = bool(self._resume_size)
        special = not resuming and _is_special(self.path)  # a device or pipe is not destroyed
        # An empty regular file holds nothing to lose: it is what a run killed after creating
        # its report, before its first row, leaves behind, and must not block the next run.
        leftover = not resuming and _is_empty_file(self.path)
        try:
            self._file = open_private(
                self.path,
                append=resuming,
                truncate_to=self._resume_size if resuming else None,
                exclusive=not (resuming or special or leftover or self._replace),
                error=error,
            )
        except FileExistsError:
            raise UsageError(
                f"{self.path} already exists, and this run did not write it: it is left as it is.",
                hint="Move it away, choose another place with --errors PATH, or add --force "
                "to replace it.",
            ) from None
        self._regular_file = stat.S_ISREG(os.fstat(self._file.fileno()).st_mode)
        if resuming and self._regular_file:
            self._file.seek(0, os.SEEK_END)  # so flush() reports the size before any row
        self._header_due = not resuming and not self.jsonl
        if not self.jsonl:
            self._writer = csv.writer(self._file, lineterminator="\r\n")

    def remove_if_empty(self) -> None:
        """A run that rejected nothing leaves no report behind, not even an empty one."""
        self.close()
        if self._regular_file and not self.has_rows:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._regular_file = False

    def write(self, row: ReportRow) -> None:
        if self._file is None:
            self.create(error=OutputError)
        assert self._file is not None
        try:
            if self._header_due:
                self._writer.writerow(self._header())
                self._header_due = False
            if self.jsonl:
                self._file.write(self._jsonl_line(row))
            else:
                self._writer.writerow(self._csv_cells(row))
        except OSError as exc:
            raise _write_failed(self.path, exc) from None
        self.rows += 1

    def _header(self) -> list[str]:
        extra = [RAW_COLUMN] if self._from_jsonl else []
        return [*REPORT_COLUMNS, *self._columns, *extra]

    def _csv_cells(self, row: ReportRow) -> list[str]:
        meta = [str(row.line), row.record_id or "", row.stage, row.code, row.message]
        source = row.source
        if isinstance(source, list):
            cells = [*source[: len(self._columns)]]
            cells += [""] * (len(self._columns) - len(cells))
            if len(source) > len(self._columns):  # a ragged row keeps its extra cells
                cells.append(",".join(source[len(self._columns) :]))
        elif isinstance(source, dict):
            cells = [cell_text(source.get(name)) for name in self._columns]
        else:
            cells = [""] * len(self._columns)
        if self._from_jsonl:
            cells.append(row.text or "")
        return [spreadsheet_safe(cell) for cell in [*meta, *cells]]

    def _jsonl_line(self, row: ReportRow) -> str:
        item: dict[str, Any] = {}
        if isinstance(row.source, dict):
            item.update(row.source)
        elif isinstance(row.source, list):
            item.update(zip(self._row_columns(), row.source, strict=False))
        elif row.text is not None:
            item[RAW_COLUMN] = row.text
        item.update(self._row_meta(row))
        return orjson.dumps(item, default=json_default).decode() + "\n"

    def _row_columns(self) -> list[str]:
        """The names of a CSV row's cells, in a JSONL report."""
        return self._columns

    def _row_meta(self, row: ReportRow) -> dict[str, Any]:
        """What a JSONL report adds to a row: where it came from and why it was rejected."""
        return {
            "_line": row.line,
            "_record_id": row.record_id,
            "_stage": row.stage,
            "_code": row.code,
            "_message": row.message,
        }

    def flush(self) -> int:
        """Hand the rows to the OS and return the file's size (what a checkpoint records)."""
        if self._file is None:
            return self._resume_size or 0
        try:
            self._file.flush()
            return self._file.tell()
        except OSError as exc:
            raise _write_failed(self.path, exc) from None

    def sync(self) -> None:
        """Make what was flushed durable (called by the checkpoint writer, from its thread)."""
        with self._sync_lock:
            if self._file is not None:
                try:
                    os.fsync(self._file.fileno())
                except OSError as exc:
                    if exc.errno != errno.EINVAL:  # a device or pipe cannot be synced
                        raise _write_failed(self.path, exc) from None

    def close(self) -> None:
        with self._sync_lock:
            if self._file is not None:
                handle, self._file = self._file, None
                try:
                    handle.close()
                except OSError as exc:
                    raise _write_failed(self.path, exc) from None


def _is_empty_file(path: Path) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def _is_special(path: Path) -> bool:
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _write_failed(path: Path, exc: OSError) -> OutputError:
    return OutputError(
        f"Cannot write the errors report {path}: {exc.strerror}. The run stopped; what was "
        "confirmed so far is in the checkpoint.",
        hint="Free some disk space (or choose another place with --errors PATH), then run "
        "again with --resume.",
    )


def cell_text(value: Any) -> str:
    """A JSON value as a CSV cell: text as it is, anything else as the JSON it was read as."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, JsonNumber):
        return value.text
    return orjson.dumps(value, default=json_default).decode()


@dataclass(frozen=True)
class KindWords:
    """What a kind of run is called, and what its counts are called, in the outputs."""

    command: str
    imported: str = "imported"  # the JSON key, and the summary table's row, of ``imported``
    duplicates: str = "duplicates"
    resumable: bool = True  # a file input keeps a checkpoint; else running again is the resume
    rerun_note: str = ""  # why running an unresumable kind again is safe
    duplicates_note: str = ""  # the summary table's note; imports say where they came from
    # Counters that say nothing for this kind (one request per record, nothing itemized).
    unused: tuple[str, ...] = ()


# Unsubscribing is one request per contact: "imported" reads as unsubscribed, "duplicates"
# as answered unsubscribed=false (not changed).
WORDS: dict[Kind, KindWords] = {
    Kind.SENDS: KindWords("import-sends"),
    Kind.CLICKS: KindWords("import-clicks"),
    Kind.CONTACTS: KindWords(
        "unsubscribe",
        imported="unsubscribed",
        duplicates="not_changed",
        resumable=False,
        rerun_note="unsubscribing a contact twice changes nothing",
        duplicates_note="not on the list, list not yours, or already unsubscribed",
        unused=("duplicates_after_retry", "itemize_requests"),
    ),
}


@dataclass
class Summary:
    """Every input record accounted for: ``counts.balanced()`` (see ``Counts``).

    ``counts.duplicates_after_retry`` is the part of ``duplicates`` that came back from a
    request sent again after an attempt whose outcome was unknown: most likely stored by that
    attempt. ``counts.pending`` counts records read but never confirmed by the server: the
    valid records of a ``--dry-run``, or the records after the last confirmed batch of an
    aborted or interrupted run (a resume sends them again; any already stored come back as
    duplicates).
    """

    kind: Kind
    input: str
    counts: Counts = field(default_factory=Counts)
    errors_report: str | None = None
    elapsed_s: float = 0.0
    dry_run: bool = False
    status: str = "completed"
    resumed_from_line: int | None = None
    notes: list[str] = field(default_factory=list)
    # A run over several files: one ``{path, read, imported, ...}`` per file (batch_run.py).
    files: list[dict[str, Any]] | None = None

    @property
    def words(self) -> KindWords:
        return WORDS[self.kind]

    @property
    def command(self) -> str:
        return self.words.command

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` summary: one flat object (README "Summary and exit codes")."""
        words = self.words
        names = {"imported": words.imported, "duplicates": words.duplicates}
        counts = {
            names.get(key, key): value
            for key, value in self.counts.to_dict().items()
            if key not in words.unused
        }
        return {
            "command": self.command,
            "input": self.input,
            **counts,
            "errors_report": self.errors_report,
            "elapsed_s": round(self.elapsed_s, 3),
            "dry_run": self.dry_run,
            "status": self.status,
            "resumed_from_line": self.resumed_from_line,
            "notes": list(self.notes),
            **({"files": list(self.files)} if self.files is not None else {}),
            **self._months_json(),
        }

    def _months_json(self) -> dict[str, Any]:
        """``months``: the counts per UTC month, for reconciling with the source platform."""
        if self.kind is Kind.CONTACTS:  # no timestamp, no months
            return {}
        rows = sorted_months(self.counts.months)
        return {"months": [{"month": month, **row} for month, row in rows]}
