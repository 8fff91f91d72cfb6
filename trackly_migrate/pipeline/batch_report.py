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

from trackly_migrate.pipeline.batch_state import BatchState
from trackly_migrate.pipeline.chain import header_of, resumed_report_size
from trackly_migrate.pipeline.ports import Observer
from trackly_migrate.pipeline.request import ImportRequest
from trackly_migrate.records import FIELDS
from trackly_migrate.report import (
    WORDS,
    RunReport,
    check_writable,
    refuse_overwriting_input,
    report_columns,
    run_report_name,
)


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
    path = _place(request, state)
    check_writable(path)
    for name in files:
        refuse_overwriting_input(name, path, "--errors")
    recorded = state.report_path if state is not None else None
    same = recorded is not None and Path(recorded) == path.resolve()
    resume_size = None
    if state is not None and request.resume.resume and same:
        columns, with_raw = state.report_columns, state.report_with_raw
        resume_size = _kept_size(path, resumed_report_size(state, request, files), observer)
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


def _place(request: ImportRequest, state: BatchState | None) -> Path:
    given = request.output.errors_path
    recorded = Path(state.report_path) if state is not None and state.report_path else None
    if given is not None and not given.is_dir():
        return given
    folder = given if given is not None else Path()
    if recorded is not None and request.resume.resume and recorded.parent == folder.resolve():
        return recorded
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


def _kept_size(path: Path, recorded: int, observer: Observer) -> int | None:
    """How much of the report to keep: what the checkpoints covered, or what is left."""
    actual = path.stat().st_size if path.exists() else 0
    if actual < recorded:
        observer.warning(
            f"the errors report {path} is shorter than when the run stopped; rows of the "
            "earlier part are missing from it"
        )
        return actual or None
    return recorded or None


def earlier_reports_note(state: BatchState | None, path: Path) -> str | None:
    if state is None or not state.earlier_reports:
        return None
    return (
        "rows rejected by the earlier part of this run are in "
        + ", ".join(state.earlier_reports)
        + f"; {path} holds those from here on"
    )
