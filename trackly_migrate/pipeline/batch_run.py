"""``run_files``: one import run over several files, with one summary and one exit code.

The FILE arguments are expanded (``inputs.py``), the files this account finished before are
left out with ``--skip-done`` (``ledger.py``), and each file is imported in order by
``run_import``, all of them through one sender (one process, one connection pool: the
throughput of one file, whatever their number). Each file keeps the checkpoint it would
keep alone; the list keeps which files are finished (``batch_state.py``). The run stops at
the first file that does not complete: its status, error and exit code are the run's.

Locks: the list's checkpoint is locked, and each file (per account) claimed for the whole
run (``input_claims.py``), before anything is sent, so a second run over the same files, or a
drop folder's next night starting while this one still runs, is refused at once (exit 2).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs

from trackly_migrate.checkpoint import InputIdentity, discard
from trackly_migrate.checkpoint import exclusive as checkpoint_lock
from trackly_migrate.counts import Counts
from trackly_migrate.errors import InputError, UsageError
from trackly_migrate.pipeline import resume
from trackly_migrate.pipeline.batch_report import earlier_reports_note, open_run_report
from trackly_migrate.pipeline.batch_state import (
    BatchState,
    default_state_path,
    load_state,
)
from trackly_migrate.pipeline.chain import Chain, run_chain
from trackly_migrate.pipeline.input_claims import claimed
from trackly_migrate.pipeline.inputs import Inputs, expand
from trackly_migrate.pipeline.ledger import Entry, Fingerprint, Ledger, account_of, now_text
from trackly_migrate.pipeline.ports import Observer
from trackly_migrate.pipeline.request import ImportRequest
from trackly_migrate.pipeline.run import ImportOutcome, run_import, shared_sender
from trackly_migrate.pipeline.signals import StopEvents
from trackly_migrate.readers import STDIN
from trackly_migrate.report import WORDS, Summary, check_writable, refuse_overwriting_input


@dataclasses.dataclass
class _Plan:
    """What this run does, worked out before anything is sent."""

    request: ImportRequest
    files: list[str]
    skipped: list[tuple[str, Entry]]
    account: str | None
    state_path: Path | None  # None: nothing lasting (a dry run, a throw-away sandbox)
    # Every file's absolute path, resolved once for the run: the list's checkpoint, the
    # ledger and the files' checkpoints name the files by them.
    absolute: dict[str, str]


def run_files(
    request: ImportRequest,
    inputs: Inputs,
    observer: Observer,
    *,
    events: StopEvents | None = None,
    ledger: Ledger | None = None,
) -> ImportOutcome:
    """Import every file ``inputs`` names (``request.source.path`` is replaced by each).

    One plain FILE without ``skip_done`` is the one-file run (``run_import``), whose summary
    has no per-file breakdown. Raises ``UsageError`` before anything is sent when the run
    cannot start (a pattern matching nothing, a changed finished file, a locked input).
    """
    ledger = ledger or Ledger()
    account = account_of(request.target)
    if inputs.single_file and not inputs.skip_done:
        path = inputs.args[0]
        one = request.for_file(path)
        fingerprint = _fingerprint(path, account)
        # Claimed as a list's files are: a run over a list holds no lock of each file's.
        with _input_claims(request, [path], account):
            outcome = run_import(one, observer, events=events)
        _record(ledger, one, account, fingerprint, outcome)
        return outcome
    if inputs.skip_done and account is None:
        raise UsageError(
            "--skip-done needs an account whose imports last: not --dry-run, and with "
            "--sandbox a --sandbox-db file.",
        )
    files = expand(inputs)
    skipped = _done_before(ledger, request, files, account) if inputs.skip_done else []
    done = {path for path, _ in skipped}
    plan = _Plan(
        request,
        [path for path in files if path not in done],
        skipped,
        account,
        _state_path(request, list(files.values())) if _keeps_state(request) else None,
        files,
    )
    for path, entry in skipped:
        observer.info(f"skipping {path}: imported completely on {entry.finished_at}")
    if not plan.files:
        return _nothing_new(request, plan)
    for path in plan.files:  # a pipe among them is refused before anything is sent
        resume.refuse_unreadable_again(request.for_file(path))
    with contextlib.ExitStack() as stack:
        stack.enter_context(_input_claims(request, plan.files, account))
        opened = _open_state(plan, stack)
        return _run_plan(plan, opened, observer, events, ledger)


def _keeps_state(request: ImportRequest) -> bool:
    target = request.target
    throw_away = target.sandbox and target.sandbox_db is None
    return not (target.dry_run or throw_away) and WORDS[request.kind].resumable


def _state_path(request: ImportRequest, absolute_paths: list[str]) -> Path:
    given = request.resume.checkpoint_path
    return given or default_state_path(WORDS[request.kind].command, absolute_paths)


def _done_before(
    ledger: Ledger, request: ImportRequest, files: dict[str, str], account: str | None
) -> list[tuple[str, Entry]]:
    assert account is not None
    done = ledger.done(WORDS[request.kind].command, account)
    found = []
    for path in files:
        if path == STDIN:
            continue
        entry = done.get(Fingerprint.of(path))
        if entry is not None:
            found.append((path, entry))
    return found


def _nothing_new(request: ImportRequest, plan: _Plan) -> ImportOutcome:
    summary = Summary(kind=request.kind, input="0 files", dry_run=request.target.dry_run)
    summary.files = [_skipped_row(path, entry) for path, entry in plan.skipped]
    summary.notes.append(
        f"nothing new: all {len(plan.skipped)} file(s) were imported completely before"
    )
    return ImportOutcome(summary)


@contextlib.contextmanager
def _input_claims(request: ImportRequest, files: list[str], account: str | None) -> Iterator[None]:
    """Claim every input file (for this account) until the run ends; refuse a claimed one."""
    if account is None:
        yield
        return
    folder = platformdirs.user_state_path("trackly-migrate") / "locks"
    paths = [path for path in files if path != STDIN]
    with claimed(folder, WORDS[request.kind].command, account, paths):
        yield


def _open_state(plan: _Plan, stack: contextlib.ExitStack) -> tuple[BatchState | None, str | None]:
    """Lock and load the list's checkpoint; refuse what a resume cannot continue.

    Also the errors report the run being continued (or restarted) wrote, which it may replace.
    """
    if plan.state_path is None:
        return None, None
    request, path = plan.request, plan.state_path
    command = WORDS[request.kind].command
    stack.enter_context(checkpoint_lock(path))
    state = load_state(path)
    owned = state.report_path if state is not None else None
    if request.resume.restart:
        discard(path)  # with the files under way: they start over
        state = None
    elif state is not None and not request.resume.resume:
        started = _started_file(plan, state)
        if state.finished or started is not None:
            where = f"; {started}" if started else ""
            raise UsageError(
                f"An interrupted run of these files finished {len(state.finished)} of "
                f"{len(state.files)}{where} (checkpoint {path}).",
                hint="Add --resume to continue where it stopped, or --restart to start over.",
            )
    if state is None:
        return BatchState(command, [plan.absolute[name] for name in plan.files]), owned
    for name in plan.files:
        finished = state.finished.get(plan.absolute[name])
        if finished is not None and not _unchanged(name, finished.identity):
            raise UsageError(
                f"{name} has changed since this run finished importing it (size, time or "
                "content differ): it is neither skipped nor sent again without a word.",
                hint="Run with --restart to import every file again (records already stored "
                "come back as duplicates), or remove it from the list (with --skip-done, "
                "the files finished before are skipped).",
            )
    return state, owned


def _started_file(plan: _Plan, state: BatchState) -> str | None:
    """The file an interrupted run had confirmed records of, if any: a plain rerun is then
    refused before anything, its report included, is touched."""
    for name in plan.files:
        absolute = plan.absolute[name]
        entry = state.current.get(absolute)
        if absolute not in state.finished and entry is not None and entry.offset:
            return f"{name} stopped at line {entry.line:,}"
    return None


def _unchanged(path: str, identity: InputIdentity) -> bool:
    try:
        return InputIdentity.of(path) == identity
    except InputError:
        return False


def _run_plan(
    plan: _Plan,
    opened: tuple[BatchState | None, str | None],
    observer: Observer,
    events: StopEvents | None,
    ledger: Ledger,
) -> ImportOutcome:
    request, files = plan.request, plan.files
    state, owned = opened
    earlier = {path: state.finished.get(plan.absolute[path]) for path in files} if state else {}
    to_import = [path for path in files if earlier.get(path) is None]
    summary = Summary(
        kind=request.kind, input=f"{len(files)} files", dry_run=request.target.dry_run
    )
    outcome = ImportOutcome(summary)
    report = open_run_report(request, to_import, state, owned, observer)
    try:
        _check_summary_place(request, to_import)
        if state is not None and plan.state_path is not None:
            state.save(plan.state_path)  # the report's place, for a resume after any crash
        note = earlier_reports_note(state, report.path)
        if note is not None:
            summary.notes.append(note)
        chain = Chain(
            request,
            to_import,
            report,
            state,
            plan.state_path,
            lambda path, one, identity: _entry(
                request,
                plan.account,
                identity.path if identity is not None else plan.absolute[path],
                one,
                Fingerprint.of_identity(identity) if identity is not None else None,
            ),
            ledger,
            plan.absolute,
        )
        with shared_sender(request, observer) as sender:
            run_chain(chain, observer, events, sender.dispatcher, sender.phones)
    finally:
        report.remove_if_empty()
    results = {result.path: result for result in chain.results}
    rows: list[dict[str, Any]] = [_skipped_row(path, entry) for path, entry in plan.skipped]
    for path in files:
        finished = earlier.get(path)
        if finished is not None:
            counts, elapsed = finished.counts()
            _add(summary, counts, elapsed)
            rows.append(_row(path, counts, "completed earlier", finished.errors_report))
            continue
        result = results.get(path)
        if result is None:
            rows.append(_row(path, Counts(), "not started", None))
            continue
        one = result.summary
        _add(summary, one.counts, one.elapsed_s)
        rows.append(_row(path, one.counts, result.status, one.errors_report))
        summary.notes.extend(f"{path}: {note}" for note in one.notes)
        if result.status != "completed" and summary.status == "completed":
            summary.status = result.status
            outcome.error = result.error
            outcome.checkpoint = result.checkpoint
        elif result.checkpoint is not None:
            outcome.checkpoint = outcome.checkpoint or result.checkpoint
    if summary.status == "completed" and len(results) < len(to_import):
        summary.status = "interrupted"  # stopped before a file was opened
    outcome.error = outcome.error or chain.error
    if outcome.error is not None and summary.status == "completed":
        summary.status = "aborted"
    outcome.abandoned_requests = chain.abandoned_requests
    if report.has_rows:
        summary.errors_report = str(report.path)
    summary.files = rows
    if summary.status == "completed":
        if plan.state_path is not None:
            discard(plan.state_path)
    elif plan.state_path is not None and state is not None:
        if state.finished or outcome.checkpoint is not None:
            outcome.checkpoint = outcome.checkpoint or plan.state_path
        else:
            discard(plan.state_path)  # nothing to resume: a plain rerun starts over
    return outcome


def _check_summary_place(request: ImportRequest, files: list[str]) -> None:
    """``--summary-file`` is written at the end (atomically): its place, checked now."""
    summary_path = request.output.summary_path
    if summary_path is None:
        return
    check_writable(summary_path, what="the summary file", option="--summary-file")
    for name in files:
        refuse_overwriting_input(name, summary_path, "--summary-file")


def _fingerprint(path: str, account: str | None) -> Fingerprint | None:
    if account is None or path == STDIN or not Path(path).is_file():
        return None
    return Fingerprint.of(path)


def _record(
    ledger: Ledger,
    request: ImportRequest,
    account: str | None,
    fingerprint: Fingerprint | None,
    outcome: ImportOutcome,
) -> None:
    """Write a file that completed into the ledger (after it completed, never before)."""
    summary = outcome.summary
    if summary.status != "completed" or fingerprint is None:
        return
    absolute = str(Path(request.source.path).resolve())
    entry = _entry(request, account, absolute, summary, fingerprint)
    if entry is not None:
        ledger.record(entry)


def _entry(
    request: ImportRequest,
    account: str | None,
    absolute: str,
    summary: Summary,
    fingerprint: Fingerprint | None = None,
) -> Entry | None:
    """The ledger's entry for the file that completed at ``absolute`` (resolved: on the
    checkpoint's thread, its identity's); None when nothing lasting was imported."""
    if account is None or not WORDS[request.kind].resumable:
        return None
    fingerprint = fingerprint or _fingerprint(absolute, account)
    if fingerprint is None:
        return None
    return Entry(
        command=WORDS[request.kind].command,
        account=account,
        fingerprint=fingerprint,
        path=absolute,
        finished_at=now_text(),
        counts=_row_counts(summary.counts),
        errors_report=summary.errors_report,
    )


def _add(summary: Summary, counts: Counts, elapsed_s: float) -> None:
    summary.counts.add(counts)
    summary.elapsed_s += elapsed_s


def _row_counts(counts: Counts) -> dict[str, int]:
    return {
        "read": counts.read,
        "imported": counts.imported,
        "duplicates": counts.duplicates,
        "rejected": counts.rejected,
    }


def _row(path: str, counts: Counts, status: str, report: str | None) -> dict[str, Any]:
    return {"path": path, **_row_counts(counts), "status": status, "errors_report": report}


def _skipped_row(path: str, entry: Entry) -> dict[str, Any]:
    row = _row(path, Counts(), "skipped", entry.errors_report)
    row["finished_at"] = entry.finished_at
    return row
