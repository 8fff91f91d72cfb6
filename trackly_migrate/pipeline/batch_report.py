"""The one errors report of a run over several files: its place, its columns, its resume.

Its place: ``--errors FILE``; or a name for the run (``import-sends-<UTC time>.errors.csv``,
so that nightly runs never collide) in the folder ``--errors DIR`` names, or in the current
folder. A resumed run keeps writing the report its list's checkpoint names.

Its columns: a CSV report needs its header before its first row, and its rows may come from
any of the files, so every CSV file's header is read before the first request (a sniff and
one line each, gzip too), and the header is the union of them in order of appearance. A
resume keeps the header the list's checkpoint recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackly_migrate.errors import TracklyMigrateError
from trackly_migrate.pipeline import resume
from trackly_migrate.pipeline.batch_state import BatchState
from trackly_migrate.pipeline.opening import read_from, sniff
from trackly_migrate.pipeline.ports import Observer
from trackly_migrate.pipeline.request import ImportRequest
from trackly_migrate.readers import (
    InputSource,
    infer_format,
)
from trackly_migrate.readers.source import HEAD_BUFFER_BYTES
from trackly_migrate.records import FIELDS, REPORT_COLUMNS
from trackly_migrate.report import (
    RAW_COLUMN,
    WORDS,
    ErrorReport,
    ReportRow,
    cell_text,
    check_writable,
    refuse_overwriting_input,
    spreadsheet_safe,
)

# Each row of the report of a run over several files says which file it comes from.
FILE_COLUMN = "_file"


def run_report_name(command: str, started: datetime) -> str:
    """The default report of a run over several files, named for the run (cron nights
    never collide): ``import-sends-20250101T021500Z.errors.csv``."""
    return f"{command}-{started.astimezone(UTC):%Y%m%dT%H%M%SZ}.errors.csv"


class RunReport(ErrorReport):
    """The one errors report of a run over several files.

    Each row starts with ``_file`` (the path as the run named it) and ``_line`` (the line in
    that file). A CSV report's columns are the union of the files' columns, in the order they
    first appear (``_raw`` last if a file is JSONL), so that it can be fed back in as one file;
    each file writes its rows through ``for_file``, which puts its cells under its columns.
    """

    def __init__(
        self,
        path: Path,
        *,
        columns: list[str],
        with_raw: bool,
        resume_size: int | None = None,
        replace: bool = False,
    ) -> None:
        super().__init__(
            path, source_columns=columns, field_names=[], resume_size=resume_size, replace=replace
        )
        self._with_raw = with_raw
        self.absolute_path = str(path.resolve())  # what each file's checkpoint names
        self._file_name = ""
        self._positions: list[int] = []  # the current file's columns' places in the union
        self._file_columns: list[str] | None = None  # None: the current file is JSONL

    def for_file(self, name: str, columns: list[str] | None) -> FileReport:
        """Where the rows of the file ``name`` go (``columns``: its header; None for JSONL)."""
        return FileReport(self, name, columns)

    def write_for(self, view: FileReport, row: ReportRow) -> None:
        self._file_name = view.name
        self._file_columns = view.columns
        self._positions = view.positions
        self.write(row)

    def place_of(self, column: str) -> int:
        try:
            return self._columns.index(column)
        except ValueError:
            return -1  # not in the header (a file changed after the run began): left out

    def _header(self) -> list[str]:
        extra = [RAW_COLUMN] if self._with_raw else []
        return [FILE_COLUMN, *REPORT_COLUMNS, *self._columns, *extra]

    def _csv_cells(self, row: ReportRow) -> list[str]:
        meta = [self._file_name, str(row.line), row.record_id or "", row.stage, row.code]
        meta.append(row.message)
        cells = [""] * len(self._columns)
        source = row.source
        extra: list[str] = []
        if isinstance(source, list):
            for place, cell in zip(self._positions, source, strict=False):
                if place >= 0:
                    cells[place] = cell
            if len(source) > len(self._positions):  # a ragged row keeps its extra cells
                extra = [",".join(source[len(self._positions) :])]
        elif isinstance(source, dict):
            cells = [cell_text(source.get(name)) for name in self._columns]
        if self._with_raw:
            cells.append((row.text or "") if self._file_columns is None else "")
        return [spreadsheet_safe(cell) for cell in [*meta, *cells, *extra]]

    def _row_columns(self) -> list[str]:
        return self._file_columns or []

    def _row_meta(self, row: ReportRow) -> dict[str, Any]:
        return {FILE_COLUMN: self._file_name, **super()._row_meta(row)}


class FileReport:
    """One file's view of its run's report: what the engine writes that file's rows to."""

    def __init__(self, report: RunReport, name: str, columns: list[str] | None) -> None:
        self.report = report
        self.name = name
        self.columns = columns
        self.positions = [report.place_of(column) for column in columns or []]
        self.rows = 0

    def write(self, row: ReportRow) -> None:
        self.report.write_for(self, row)
        self.rows += 1

    def flush(self) -> int:
        return self.report.flush()

    def close(self) -> None:
        """The run's report stays open for the files after this one (the run closes it)."""


def report_columns(
    headers: list[list[str] | None], field_names: list[str]
) -> tuple[list[str], bool]:
    """A run report's columns: the union of the files' headers in order of appearance (a
    JSONL file's are the mapped field names), and whether a ``_raw`` column is needed."""
    union: dict[str, None] = {}
    with_raw = False
    for header in headers:
        if header is None:
            with_raw = True
        for name in header if header is not None else field_names:
            if name and not name.startswith("_"):
                union.setdefault(name, None)
    return list(union), with_raw


def header_of(request: ImportRequest, path: str) -> list[str] | None:
    """A file's CSV header (None for JSONL; [] when it cannot be read: its error comes when
    the run reaches it). Read before the first request: a CSV report needs every column."""
    try:
        fmt = infer_format(path, request.source.format)
        if fmt.value != "csv":
            return None
        source = InputSource(path, buffer_bytes=HEAD_BUFFER_BYTES)
        try:
            reader = read_from(source, fmt, sniff(source, fmt, request))
            return list(reader.columns or [])
        finally:
            source.close()
    except TracklyMigrateError:
        return []


def resumed_report_size(chain_state: BatchState) -> int:
    """How much of the run's report a resume keeps: the most the list's checkpoint covered
    (the files finished, and those under way)."""
    sizes = [
        entry.report_size
        for entry in chain_state.current.values()
        if entry.report_path == chain_state.report_path
    ]
    return max([chain_state.report_size, *sizes])


def open_run_report(
    request: ImportRequest,
    files: list[str],
    state: BatchState | None,
    owned: str | None,
    observer: Observer,
) -> RunReport:
    """Create (or, on ``--resume``, reopen) the run's report before anything is sent.

    ``files``: those this run imports; ``owned``: the report of the run being restarted or
    continued, which may be replaced. ``state`` learns the report's place and columns.
    """
    path = _place(request, owned)
    check_writable(path)
    for name in files:
        refuse_overwriting_input(name, path, "--errors")
    recorded = state.report_path if state is not None else None
    same = recorded is not None and Path(recorded) == path.resolve()
    resume_size = None
    if state is not None and request.resume.resume and same:
        columns, with_raw = state.report_columns, state.report_with_raw
        covered = resumed_report_size(state)
        resume_size = resume.kept_report_size(path, covered, observer)
    else:
        columns, with_raw = _columns(request, files, path)
        if state is not None and recorded is not None and not same and state.report_size:
            state.earlier_reports.append(recorded)
            state.report_size = 0
    report = RunReport(
        path,
        columns=columns,
        with_raw=with_raw,
        resume_size=resume_size,
        replace=request.output.force or (owned is not None and Path(owned) == path.resolve()),
    )
    report.create()
    if state is not None:
        state.report_path = str(path.resolve())
        state.report_columns, state.report_with_raw = columns, with_raw
    return report


def _place(request: ImportRequest, owned: str | None) -> Path:
    """``--errors FILE``; else the report of the run continued or restarted, if it is in
    the folder asked for; else a new name for this run there."""
    given = request.output.errors_path
    if given is not None and not given.is_dir():
        return given
    folder = given if given is not None else Path()
    if owned is not None and Path(owned).parent == folder.resolve():
        return Path(owned)
    name = run_report_name(WORDS[request.kind].command, datetime.now(UTC))
    place = folder / name
    number = 1
    while place.exists():  # a second run in the same second: never another run's report
        number += 1
        place = folder / name.replace(".errors.", f"-{number}.errors.")
    return place


def _columns(request: ImportRequest, files: list[str], path: Path) -> tuple[list[str], bool]:
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        return [], False  # a JSONL report's rows carry their own keys
    mapped = request.normalization.fields
    fields = [mapped.get(spec.name, spec.name) for spec in FIELDS[request.kind]]
    return report_columns([header_of(request, name) for name in files], fields)


def earlier_reports_note(state: BatchState | None, path: Path) -> str | None:
    if state is None or not state.earlier_reports:
        return None
    return (
        "rows rejected by the earlier part of this run are in "
        + ", ".join(state.earlier_reports)
        + f"; {path} holds those from here on"
    )
