"""The checkpoint of a run over several files: which of them it finished, and how.

Where the current file stands is that file's own checkpoint (the one a run of that file
alone keeps, ``resume.py``), so a resume continues inside it however the list was made.
This file adds what a list needs: the files already finished, each with its identity at
the end (a file changed since is named, never skipped or sent again silently) and its
totals (the run's summary still counts it), and the run's one errors report: its place
(a resume keeps writing it), its columns (its header) and its size when a file finished.
It is keyed by the ordered list of files: its default place is
``checkpoints/<command>-files-<hash of the absolute paths, in order>.json`` in the state
folder, or ``--checkpoint PATH``; it is removed when every file is done.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import platformdirs

from trackly_migrate.checkpoint import (
    CHANGED_WHILE_READ,
    InputIdentity,
    default_checkpoint_path,
    read_bytes,
    write_atomic,
)
from trackly_migrate.checkpoint_writer import CheckpointWriter, wait_out
from trackly_migrate.counts import Counts, from_totals, to_totals
from trackly_migrate.errors import OutputError, TracklyMigrateError, UsageError
from trackly_migrate.pipeline.ledger import Entry, Ledger
from trackly_migrate.pipeline.request import ImportRequest, Resume
from trackly_migrate.report import WORDS, Summary

STATE_VERSION = 1
# Finished files whose records are not written yet, at most (each holds its open file and
# its checkpoint's lock until then).
MAX_UNWRITTEN = 16
# Finished files are recorded at most this often, those that finished meanwhile together:
# each write fsyncs the errors report, the list's checkpoint and the ledger, on a thread
# whose every system call takes the interpreter from the reader for a moment. Measured, 100
# files of 10,000 rows against a sink sandbox: 7.03 -> 6.66 s (0.1 s gave 6.9). A file
# finished but not yet recorded keeps its own checkpoint, so a crash meanwhile loses nothing.
FINISH_WRITE_INTERVAL_S = 0.3


def default_state_path(command: str, files: list[str]) -> Path:
    folder = platformdirs.user_state_path("trackly-migrate") / "checkpoints"
    listed = "\n".join(str(Path(name).resolve()) for name in files)
    key = hashlib.sha256(listed.encode()).hexdigest()[:16]
    return folder / f"{command}-files-{key}.json"


def file_checkpoint_path(command: str, path: str, state_path: Path | None) -> Path:
    """Where the checkpoint of one file of the list goes: the file's own default one, or,
    with ``--checkpoint PATH``, one beside PATH named after the file."""
    absolute = str(Path(path).resolve())
    if state_path is None:
        # Only the absolute path decides the default place (see checkpoint.py).
        return default_checkpoint_path(command, InputIdentity(absolute, 0, 0, ""))
    key = hashlib.sha256(absolute.encode()).hexdigest()[:16]
    return state_path.with_name(f"{state_path.name}.{Path(path).name}-{key}.json")


def file_request(request: ImportRequest, path: str, keeps_state: bool) -> ImportRequest:
    """One file's request: its own checkpoint (beside ``--checkpoint PATH`` if given)."""
    command = WORDS[request.kind].command
    given = request.resume
    checkpoint = file_checkpoint_path(command, path, given.checkpoint_path) if keeps_state else None
    one_resume = Resume(
        resume=given.resume and checkpoint is not None and checkpoint.exists(),
        restart=given.restart,
        checkpoint_path=checkpoint,
    )
    source = dataclasses.replace(request.source, path=path)
    return dataclasses.replace(request, source=source, resume=one_resume)


@dataclass
class FinishedFile:
    identity: InputIdentity
    totals: dict[str, Any]
    errors_report: str | None = None

    def counts(self) -> tuple[Counts, float]:
        return from_totals(self.totals)


@dataclass
class BatchState:
    command: str
    files: list[str]
    finished: dict[str, FinishedFile] = field(default_factory=dict)  # by absolute path
    version: int = STATE_VERSION
    report_path: str | None = None  # absolute
    report_columns: list[str] = field(default_factory=list)
    report_with_raw: bool = False
    report_size: int = 0  # the report's size when the last finished file settled
    earlier_reports: list[str] = field(default_factory=list)  # a resume wrote elsewhere

    def finish(
        self, path: str, identity: InputIdentity, summary: Summary, report: str | None
    ) -> None:
        totals = to_totals(summary.counts, summary.elapsed_s)
        self.finished[str(Path(path).resolve())] = FinishedFile(identity, totals, report)

    def finished_entry(self, path: str) -> FinishedFile | None:
        return self.finished.get(str(Path(path).resolve()))

    def save(self, path: Path) -> None:
        # orjson writes the dataclasses itself, the same bytes as over ``asdict``, which cost
        # 0.3 s a save with 10,000 files finished (it copies every nested field first).
        write_atomic(path, orjson.dumps(self, option=orjson.OPT_INDENT_2))


@dataclass
class _Finished:
    path: str
    summary: Summary
    report_size: int
    checkpoint: CheckpointWriter | None
    release: Callable[[], None] | None = None


class FinishWriter:
    """Writes what a finished file leaves, on a thread of its own: the list's checkpoint
    (the file finished), the ledger's entry, then removes the file's own checkpoint.

    The reading loop never waits for these writes (the next file's batches go on being
    sent), and files finished while a write runs, or less than ``FINISH_WRITE_INTERVAL_S``
    after it, are written together by the next one: one fsync of the list and one of the
    ledger for all of them. ``close()`` writes what is left at once, and waits for it.
    """

    def __init__(
        self,
        state: BatchState | None,
        state_path: Path | None,
        sync_report: Callable[[], None],
        ledger: Ledger,
        ledger_entry: Callable[[str, Summary], Entry | None],
        interval: float = FINISH_WRITE_INTERVAL_S,
    ) -> None:
        self._state = state
        self._interval = interval
        self._state_path = state_path
        self._sync_report = sync_report
        self._ledger = ledger
        self._ledger_entry = ledger_entry
        self._queue: list[_Finished] = []
        self._unwritten = 0  # finished files queued or being written
        self._condition = threading.Condition()
        self._closing = False
        self._error: TracklyMigrateError | None = None
        self._thread = threading.Thread(target=self._loop, name="finished-files", daemon=True)
        self._thread.start()

    def finished(
        self,
        path: str,
        summary: Summary,
        report_size: int,
        checkpoint: CheckpointWriter | None,
        release: Callable[[], None] | None = None,
    ) -> None:
        """Record the file ``path``; then remove its checkpoint and call ``release`` (its
        open file and locks: a run over a thousand files never holds a thousand of them)."""
        with self._condition:
            # Tiny files finish faster than their records can be fsynced: the reader waits
            # rather than hold the open files and locks of hundreds of them.
            while self._unwritten >= MAX_UNWRITTEN and self._error is None:
                self._condition.wait()
            if self._error is not None:
                raise self._error
            self._unwritten += 1
            self._queue.append(_Finished(path, summary, report_size, checkpoint, release))
            self._condition.notify_all()

    def close(self) -> None:
        """Wait until every finished file is written (raises what went wrong writing)."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        last_write = float("-inf")
        while True:
            with self._condition:
                while not self._queue and not self._closing:
                    self._condition.wait()
                # Half the limit at most: the reader waits only once MAX_UNWRITTEN are queued.
                wait_out(
                    self._condition,
                    last_write + self._interval,
                    lambda: self._closing or len(self._queue) >= MAX_UNWRITTEN // 2,
                )
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
                last_write = time.monotonic()
            try:
                self._write(batch)
                with self._condition:
                    self._unwritten -= len(batch)
                    self._condition.notify_all()
            except Exception as exc:  # the run must hear of it, never hang on a dead thread
                error = (
                    exc
                    if isinstance(exc, TracklyMigrateError)
                    else OutputError(f"Cannot record the finished files: {exc}.")
                )
                with self._condition:
                    self._error = error
                    self._condition.notify_all()
                return

    def _write(self, batch: list[_Finished]) -> None:
        state = self._state
        if state is not None and self._state_path is not None:
            for item in batch:
                report = item.summary.errors_report
                state.finish(item.path, _identity(item), item.summary, report)
                state.report_size = max(state.report_size, item.report_size)
            self._sync_report()  # the rows the list's checkpoint counts are on disk first
            state.save(self._state_path)
        entries = [self._ledger_entry(item.path, item.summary) for item in batch]
        found = [entry for entry in entries if entry is not None]
        if found:
            self._ledger.record_all(found)
        for item in batch:  # the list has them now: their own checkpoints are done with
            if item.checkpoint is not None:
                item.checkpoint.remove()
            if item.release is not None:
                item.release()


def _identity(item: _Finished) -> InputIdentity:
    """The finished file's identity: the one its checkpoint took when the file was opened,
    if its size and time are still those (hashing its first MiB again would find the same),
    else taken now."""
    if item.checkpoint is not None:
        opened = item.checkpoint.base.identity.completed()
        try:
            now = Path(opened.path).stat()
        except OSError:
            pass  # said by InputIdentity.of
        else:
            unchanged = (now.st_size, now.st_mtime_ns) == (opened.size, opened.mtime_ns)
            if unchanged and opened.head_sha256 != CHANGED_WHILE_READ:
                return opened
    return InputIdentity.of(item.path)


def load_state(path: Path) -> BatchState | None:
    data = read_bytes(path)
    if data is None:
        return None
    try:
        raw = orjson.loads(data)
        if raw.get("version") != STATE_VERSION:
            raise ValueError("unknown version")
        raw["finished"] = {
            name: FinishedFile(**{**item, "identity": InputIdentity(**item["identity"])})
            for name, item in raw["finished"].items()
        }
        return BatchState(**raw)
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError):
        raise UsageError(
            f"The checkpoint {path} is not readable.",
            hint="Start over with --restart.",
        ) from None
