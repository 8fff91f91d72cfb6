"""``run_files``: one import run over several files, with one summary and one exit code.

The FILE arguments are expanded (``inputs.py``), the files this account finished before are
left out with ``--skip-done`` (``ledger.py``), and each file is imported in order by
``run_import``, all of them through one sender (one process, one connection pool: the
throughput of one file, whatever their number). Each file keeps the checkpoint it would
keep alone; the list keeps which files are finished (``batch_state.py``). The run stops at
the first file that does not complete: its status, error and exit code are the run's.

Locks: the list's checkpoint, and each file (per account) for the whole run, are taken
before anything is sent, so a second run over the same files, or a drop folder's next
night starting while this one still runs, is refused at once (exit 2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import filelock
import platformdirs

from trackly_migrate.checkpoint import InputIdentity, discard
from trackly_migrate.checkpoint import exclusive as checkpoint_lock
from trackly_migrate.counts import Counts
from trackly_migrate.errors import InputError, TracklyMigrateError, UsageError
from trackly_migrate.pipeline.batch_state import (
    BatchState,
    default_state_path,
    file_checkpoint_path,
    load_state,
)
from trackly_migrate.pipeline.inputs import Inputs, expand
from trackly_migrate.pipeline.ledger import Entry, Fingerprint, Ledger, account_of, now_text
from trackly_migrate.pipeline.ports import Observer
from trackly_migrate.pipeline.request import ImportRequest, Output, Resume
from trackly_migrate.pipeline.run import ImportOutcome, SharedSender, run_import, shared_sender
from trackly_migrate.pipeline.signals import StopEvents
from trackly_migrate.readers import STDIN
from trackly_migrate.report import WORDS, Summary, default_report_path


@dataclasses.dataclass
class _Plan:
    """What this run does, worked out before anything is sent."""

    request: ImportRequest
    files: list[str]
    skipped: list[tuple[str, Entry]]
    account: str | None
    state_path: Path | None  # None: nothing lasting (a dry run, a throw-away sandbox)


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
        one = _for_file(request, path, request.output, request.resume)
        fingerprint = _fingerprint(path, account)  # the checkpoint's lock guards one file
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
        _state_path(request, files) if _keeps_state(request) else None,
    )
    for path, entry in skipped:
        observer.info(f"skipping {path}: imported completely on {entry.finished_at}")
    if not plan.files:
        return _nothing_new(request, plan)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_input_locks(request, plan.files, account))
        state = _open_state(plan, stack)
        return _run_plan(plan, state, observer, events, ledger)


def _keeps_state(request: ImportRequest) -> bool:
    target = request.target
    throw_away = target.sandbox and target.sandbox_db is None
    return not (target.dry_run or throw_away) and WORDS[request.kind].resumable


def _state_path(request: ImportRequest, files: list[str]) -> Path:
    given = request.resume.checkpoint_path
    return given or default_state_path(WORDS[request.kind].command, files)


def _for_file(request: ImportRequest, path: str, output: Output, resume: Resume) -> ImportRequest:
    source = dataclasses.replace(request.source, path=path)
    return dataclasses.replace(request, source=source, output=output, resume=resume)


def _done_before(
    ledger: Ledger, request: ImportRequest, files: list[str], account: str | None
) -> list[tuple[str, Entry]]:
    assert account is not None
    command = WORDS[request.kind].command
    found = []
    for path in files:
        if path == STDIN:
            continue
        entry = ledger.find(command, account, Fingerprint.of(path))
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
def _input_locks(request: ImportRequest, files: list[str], account: str | None) -> Iterator[None]:
    """Hold every input file (for this account) until the run ends; refuse a locked one."""
    if account is None:
        yield
        return
    folder = platformdirs.user_state_path("trackly-migrate") / "locks"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    command = WORDS[request.kind].command
    with contextlib.ExitStack() as stack:
        for path in files:
            if path == STDIN:
                continue
            key = hashlib.sha256(f"{command}\n{account}\n{os.path.realpath(path)}".encode())
            lock = filelock.FileLock(str(folder / f"{key.hexdigest()[:24]}.lock"), timeout=0)
            try:
                lock.acquire()
            except filelock.Timeout:
                raise UsageError(
                    f"Another trackly-migrate run is importing {path} into this account.",
                    hint="Wait for it to finish (or stop it): two runs would send the same "
                    "records twice. In cron, run the job under `flock -n`.",
                ) from None
            stack.callback(lock.release)
        yield


def _open_state(plan: _Plan, stack: contextlib.ExitStack) -> BatchState | None:
    """Lock and load the list's checkpoint; refuse what a resume cannot continue."""
    if plan.state_path is None:
        return None
    request, path = plan.request, plan.state_path
    command = WORDS[request.kind].command
    stack.enter_context(checkpoint_lock(path))
    state = None if request.resume.restart else load_state(path)
    if request.resume.restart and discard(path):
        pass  # the files' own checkpoints are discarded by each file's --restart
    elif state is not None and state.finished and not request.resume.resume:
        raise UsageError(
            f"An interrupted run of these files finished {len(state.finished)} of "
            f"{len(state.files)} (checkpoint {path}).",
            hint="Add --resume to continue with the next file, or --restart to start over.",
        )
    if state is None:
        return BatchState(command, [str(Path(name).resolve()) for name in plan.files])
    for name in plan.files:
        finished = state.finished_entry(name)
        if finished is not None and not _unchanged(name, finished.identity):
            raise UsageError(
                f"{name} has changed since this run finished importing it (size, time or "
                "content differ): it is neither skipped nor sent again without a word.",
                hint="Run with --restart to import every file again (records already stored "
                "come back as duplicates), or remove it from the list (with --skip-done, "
                "the files finished before are skipped).",
            )
    return state


def _unchanged(path: str, identity: InputIdentity) -> bool:
    try:
        return InputIdentity.of(path) == identity
    except InputError:
        return False


def _run_plan(
    plan: _Plan,
    state: BatchState | None,
    observer: Observer,
    events: StopEvents | None,
    ledger: Ledger,
) -> ImportOutcome:
    request, files = plan.request, plan.files
    reports = _report_paths(request, files)
    dry_run = request.target.dry_run
    summary = Summary(kind=request.kind, input=f"{len(files)} files", dry_run=dry_run)
    rows: list[dict[str, Any]] = [_skipped_row(path, entry) for path, entry in plan.skipped]
    outcome = ImportOutcome(summary)
    with shared_sender(request, observer) as sender:
        for number, path in enumerate(files, 1):
            finished = state.finished_entry(path) if state else None
            if finished is not None:
                counts, elapsed = finished.counts()
                _add(summary, counts, elapsed)
                rows.append(_row(path, counts, "completed earlier", finished.errors_report))
                continue
            if outcome.summary.status != "completed" or (events and events.stop.is_set()):
                if summary.status == "completed":
                    summary.status = "interrupted"
                rows.append(_row(path, Counts(), "not started", None))
                continue
            observer.info(f"file {number} of {len(files)}: {path}")
            one = _one_file(request, path, reports[path], plan.state_path)
            result = _import_one(one, observer, events, sender, plan.account)
            _add(summary, result.summary.counts, result.summary.elapsed_s)
            report = result.summary.errors_report
            rows.append(_row(path, result.summary.counts, result.summary.status, report))
            summary.notes.extend(f"{path}: {note}" for note in result.summary.notes)
            if result.summary.status == "completed":
                if state is not None and plan.state_path is not None:
                    state.finish(path, InputIdentity.of(path), result.summary, report)
                    state.save(plan.state_path)
                _record(ledger, one, plan.account, _fingerprint(path, plan.account), result)
            else:
                summary.status = result.summary.status
                outcome.error = result.error
                outcome.abandoned_requests = result.abandoned_requests
                outcome.checkpoint = result.checkpoint
    summary.files = rows
    if summary.status == "completed":
        if plan.state_path is not None:
            discard(plan.state_path)
    elif plan.state_path is not None and state is not None and state.finished:
        outcome.checkpoint = outcome.checkpoint or plan.state_path
    return outcome


def _one_file(
    request: ImportRequest, path: str, report: Path | None, state_path: Path | None
) -> ImportRequest:
    command = WORDS[request.kind].command
    given = request.resume
    checkpoint = file_checkpoint_path(command, path, given.checkpoint_path) if state_path else None
    resume = Resume(
        resume=given.resume and checkpoint is not None and checkpoint.exists(),
        restart=given.restart,
        checkpoint_path=checkpoint,
    )
    return _for_file(request, path, dataclasses.replace(request.output, errors_path=report), resume)


def _import_one(
    one: ImportRequest,
    observer: Observer,
    events: StopEvents | None,
    sender: SharedSender,
    account: str | None,
) -> ImportOutcome:
    """One file of the list; an error that stops it before it starts stops the run."""
    try:
        return run_import(one, observer, events=events, sender=sender)
    except TracklyMigrateError as error:
        summary = Summary(kind=one.kind, input=one.source.path, status="failed")
        return ImportOutcome(summary, error=error)


def _report_paths(request: ImportRequest, files: list[str]) -> dict[str, Path | None]:
    """Each file's errors report: its own, named after it (see README "Several files")."""
    given = request.output.errors_path
    if given is not None and not given.is_dir() and len(files) > 1:
        raise UsageError(
            f"--errors {given} names one file, and this run imports {len(files)} files, "
            "each with its own errors report.",
            hint="Give --errors an existing folder, or leave it out (the reports then go "
            "to the current folder).",
        )
    places: dict[str, Path | None] = {}
    seen: dict[Path, str] = {}
    for path in files:
        default = default_report_path(path, str(request.kind))
        place = given / default.name if given is not None and given.is_dir() else given
        where = (place or default).resolve()
        if where in seen:
            raise UsageError(
                f"{seen[where]} and {path} would write the same errors report {where}.",
                hint="Import them in separate runs, or rename one of them.",
            )
        seen[where] = path
        places[path] = place
    return places


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
    if account is None or fingerprint is None or summary.status != "completed":
        return
    if not WORDS[request.kind].resumable:
        return
    counts = summary.counts
    ledger.record(
        Entry(
            command=WORDS[request.kind].command,
            account=account,
            fingerprint=fingerprint,
            path=str(Path(request.source.path).resolve()),
            finished_at=now_text(),
            counts=_row_counts(counts),
            errors_report=summary.errors_report,
        )
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
