"""``ListCheckpoint``: the one checkpoint of a run over many files, and its one thread.

The list's checkpoint (``batch_state.BatchState``) holds the files finished, with their
totals, and the checkpoints of the files under way (``current``). One thread writes it, at
most once per ``MIN_WRITE_INTERVAL_S``, as a run over one file writes its own checkpoint.
So 100 files cost the writes, locks and threads of one.

This replaced a checkpoint file for each file of the list. That design took a lock and made
a file per file, and it wrote two or three of them in every interval at a file boundary.
It had its own thread for the finished files besides. Measured against a sink sandbox, 100
files of 10,000 rows ran at 0.87-0.94x the rate of one file of 1,000,000. Without those
per-file writes the two ran at the same rate.

A finished file goes from ``current`` to ``finished`` in one write. These writes come at
most every ``FINISH_WRITE_INTERVAL_S``, together with the ledger's entries for the files
finished meanwhile: each of them fsyncs the ledger as well. Until then the file stays in
``current``, at its end. A crash in between loses nothing: a resume reads nothing more of
that file, and records it then.

Crash safety: each write takes the checkpoints of all the files at one moment, after the
errors report's fsync. So what a crash leaves is a prefix of the run in settling order. The
report is cut back on ``--resume`` to the size the list recorded
(``batch_report.resumed_report_size``).

The files of the list are guarded by the list's lock and by the claims on them
(``input_claims.py``), taken before anything is sent. A file's own checkpoint, the one a
run of that file alone keeps, is not touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from trackly_migrate.checkpoint import CHANGED_WHILE_READ, HASH_PENDING, Checkpoint, InputIdentity
from trackly_migrate.checkpoint_writer import (
    MIN_WRITE_INTERVAL_S,
    CheckpointThread,
    CheckpointWriter,
    wait_out,
)
from trackly_migrate.pipeline import resume
from trackly_migrate.pipeline.batch_state import BatchState
from trackly_migrate.pipeline.ledger import Entry, Ledger
from trackly_migrate.pipeline.ports import Observer
from trackly_migrate.pipeline.request import ImportRequest
from trackly_migrate.readers import Dialect, InputFormat, InputSource
from trackly_migrate.report import WORDS, Summary

# Finished files whose records are not written yet, at most: past this the reader waits. Each
# holds its totals and its entry under way, its input closed already (``chain.py``).
MAX_UNWRITTEN = 512
# A write of the list takes the time of its size, which grows with the files finished: the
# next one waits at least this many times as long, so that writing never takes more than a
# tenth of the thread's time, however many files the run has. With 10,000 files finished in
# the list, a write every 50 ms rewrote megabytes twenty times a second: 10,000 files of 10
# rows took 2.8 ms each, more with every file.
WRITE_SPACING = 10
# Finished files are recorded at most this often, those that finished meanwhile together:
# each such write fsyncs the ledger too, on a thread whose every system call takes the
# interpreter from the reader for a moment. Measured with a thread of its own for them, 100
# files of 10,000 rows against a sink sandbox: 7.03 -> 6.66 s (0.1 s gave 6.9).
FINISH_WRITE_INTERVAL_S = 0.3


def write_spacing(interval: float, last_write_s: float) -> float:
    """The least time from one write of the list to the next: ``interval``, or more where
    the last write took more than a ``WRITE_SPACING``-th of it (a long list)."""
    return max(interval, WRITE_SPACING * last_write_s)


class ListedCheckpoint(CheckpointWriter):
    """The checkpoint of one file of the list: an entry of the list's checkpoint (``path``
    is the list's)."""

    def __init__(self, key: str, path: Path, base: Checkpoint, thread: ListCheckpoint) -> None:
        self.key = key  # the file's absolute path, its key in ``BatchState.current``
        super().__init__(path, base, thread=thread)

    def remove(self) -> None:
        """Drop the file's entry from the list (the list's file stays)."""
        self._finish(discard=True)


@dataclass
class _Finished:
    path: str
    summary: Summary
    report_size: int
    checkpoint: ListedCheckpoint | None
    release: Callable[[], None] | None = None


@dataclass
class _Round:
    """What one write takes: the files finished, the entries dropped, the files under way."""

    finishing: list[_Finished]
    dropped: set[str]
    under_way: list[tuple[ListedCheckpoint, int, Checkpoint]]


class ListCheckpoint(CheckpointThread):
    """Writes the list's checkpoint while the run goes on (see the module's docstring)."""

    def __init__(
        self,
        state: BatchState | None,
        state_path: Path | None,
        sync_report: Callable[[], None],
        ledger: Ledger,
        ledger_entry: Callable[[str, Summary, InputIdentity | None], Entry | None],
        *,
        absolute: Mapping[str, str] | None = None,
        interval: float = MIN_WRITE_INTERVAL_S,
        finish_interval: float = FINISH_WRITE_INTERVAL_S,
    ) -> None:
        super().__init__(interval)
        # The files' absolute paths, resolved at the run's start: then a system call of the
        # reading thread costs it nothing; once requests go, each lets another thread in.
        self._absolute = absolute or {}
        self.state = state
        self.path = state_path
        self._sync_report = sync_report
        self._ledger = ledger
        self._ledger_entry = ledger_entry
        self._finish_interval = finish_interval
        self._queue: list[_Finished] = []
        self._unwritten = 0  # finished files queued or being written
        self._dropped: set[str] = set()
        self._last_finish = float("-inf")
        self._spacing = interval  # between two writes, as the last write's cost sets it
        self._thread = threading.Thread(target=self._loop, name="checkpoint", daemon=True)
        self._thread.start()

    # -- the reading thread ---------------------------------------------------------------

    def open_file(
        self,
        request: ImportRequest,
        source: InputSource,
        fmt: InputFormat,
        observer: Observer,
        stack: contextlib.ExitStack,
        dialect: Dialect | None = None,
    ) -> CheckpointWriter | None:
        """The checkpoint of the file ``request`` imports: continued from the list's entry
        for it (refused where it cannot be), or new. ``resume.open_checkpoint``'s part."""
        if self.state is None or self.path is None or not resume.has_checkpoint(request, source):
            return None  # nothing lasting: a dry run, a throw-away sandbox, a stream
        path = request.source.path
        # No system call: the file as it was opened, under the path resolved at the start.
        absolute = self._absolute.get(path)
        identity = InputIdentity.opened(path, info=source.info, absolute=absolute)
        options = resume.options_fingerprint(request, fmt, dialect)
        entry = self.state.current.get(identity.path)  # absolute, as the list's keys are
        one = request.resuming(request.resume.resume and bool(entry))
        existing, identity = resume.continued(one, entry, identity, options, self.path, observer)
        if existing is not None:
            # A copy: the reading thread changes its own while this thread writes the list.
            base = dataclasses.replace(existing)
        else:
            base = Checkpoint.new(WORDS[request.kind].command, identity, options)
        listed = ListedCheckpoint(identity.path, self.path, base, self)
        stack.callback(listed.close)  # this thread lets go of it with the file
        return listed

    def finished(
        self,
        path: str,
        summary: Summary,
        report_size: int,
        checkpoint: CheckpointWriter | None,
        release: Callable[[], None] | None = None,
    ) -> None:
        """Record the file ``path`` as finished; then call ``release`` (what the file still
        holds: its entry among the files under way)."""
        listed = checkpoint if isinstance(checkpoint, ListedCheckpoint) else None
        with self._condition:
            # Tiny files finish faster than their records can be written: past a bound the
            # reader waits, rather than let what they hold grow without one.
            while self._unwritten >= MAX_UNWRITTEN and self._error is None:
                self._condition.wait()
            if self._error is not None:
                raise self._error
            self._unwritten += 1
            self._queue.append(_Finished(path, summary, report_size, listed, release))
            self._condition.notify_all()

    def close(self) -> None:
        """Write what is left and stop; raises what went wrong writing."""
        super().close()
        if self._error is not None:
            raise self._error

    # -- for ListedCheckpoint -------------------------------------------------------------

    def _add(self, writer: CheckpointWriter) -> None:
        with self._condition:
            self._writers.append(writer)

    def _forget(self, writer: CheckpointWriter, *, discard: bool) -> None:
        if discard and isinstance(writer, ListedCheckpoint):
            self._dropped.add(writer.key)  # the next write takes its entry out of the list
            self._condition.notify_all()
        super()._forget(writer, discard=discard)

    # -- the thread -----------------------------------------------------------------------

    def _loop(self) -> None:
        last_write = float("-inf")
        while True:
            with self._condition:
                self._idle = True
                while not self._closing and not self._work():
                    self._condition.wait(self._until_finish_due())
                self._idle = False
                wait_out(
                    self._condition,
                    last_write + self._spacing,
                    lambda: bool(self._flushing or self._closing or self._queue_full()),
                )
                unhashed = [w for w in self._writers if w.base.identity.ends_sha256 == HASH_PENDING]
            self._complete_identities(unhashed)
            with self._condition:
                round_ = self._take_round()
                if round_ is None:
                    if self._closing:
                        self._stopped = True
                        self._condition.notify_all()
                        return
                    continue
            started = time.monotonic()
            if not self._write_round(round_):
                return
            last_write = time.monotonic()
            self._spacing = write_spacing(self.interval, last_write - started)
            if round_.finishing:
                self._last_finish = last_write
            if not self._release(round_.finishing):
                return

    def _release(self, finished: list[_Finished]) -> bool:
        """Let go of what the files recorded just now still held (their entries under way)."""
        try:
            for item in finished:
                if item.release is not None:
                    item.release()
        except Exception as exc:  # the run must hear of it, never hang on a dead thread
            self._fail(exc, "Cannot close a finished file")
            return False
        return True

    def _work(self) -> bool:
        return bool(self._due() or self._dropped or (self._queue and self._finish_due()))

    def _finish_due(self) -> bool:
        return (
            self._closing
            or self._queue_full()
            or time.monotonic() >= self._last_finish + self._finish_spacing()
        )

    def _finish_spacing(self) -> float:
        return max(self._finish_interval, self._spacing)

    def _queue_full(self) -> bool:
        return len(self._queue) >= MAX_UNWRITTEN // 2

    def _until_finish_due(self) -> float | None:
        if not self._queue:
            return None
        return max(0.0, self._last_finish + self._finish_spacing() - time.monotonic())

    def _take_round(self) -> _Round | None:
        """What this write takes, or None when there is nothing to write (condition held)."""
        finishing: list[_Finished] = []
        if self._queue and self._finish_due():
            finishing, self._queue = self._queue, []
        for item in finishing:
            listed = item.checkpoint
            if listed is not None:  # its entry goes with this write; closing it writes nothing
                listed._done = listed._discarded = True
                with contextlib.suppress(ValueError):
                    self._writers.remove(listed)
        due = bool(self._due())
        dropped, self._dropped = self._dropped, set()
        if not (finishing or dropped or due):
            return None
        # A file enters the list with its first change, as a file's own checkpoint is first
        # written then: one whose opening failed after this, or that sent nothing, has none.
        under_way = [
            (writer, writer._version, dataclasses.replace(writer.base))
            for writer in self._writers
            if isinstance(writer, ListedCheckpoint)
            and writer._version
            and writer.base.identity.ends_sha256 != HASH_PENDING
        ]
        return _Round(finishing, dropped, under_way)

    def _write_round(self, round_: _Round) -> bool:
        state = self.state
        try:
            lasting = state is not None and self.path is not None
            # Each finished file's identity, for the list and the ledger alike: its ends are
            # read once a file (when it was opened), not again for the ledger.
            finishing = [(item, _identity(item) if lasting else None) for item in round_.finishing]
            if state is not None and self.path is not None:
                for item, identity in finishing:
                    assert identity is not None
                    report = item.summary.errors_report
                    state.finish(identity, item.summary, report)
                    state.report_size = max(state.report_size, item.report_size)
                    if item.checkpoint is not None:
                        state.current.pop(item.checkpoint.key, None)
                for key in round_.dropped:
                    state.current.pop(key, None)
                for writer, _, base in round_.under_way:
                    state.current[writer.key] = base
                self._sync_report()  # the rows the list counts are on disk first
                state.save(self.path)
            entries = [
                self._ledger_entry(item.path, item.summary, identity)
                for item, identity in finishing
            ]
            found = [entry for entry in entries if entry is not None]
            if found:
                self._ledger.record_all(found)
        except Exception as exc:  # the run must hear of it, never hang on a dead thread
            self._fail(exc, f"Cannot write the checkpoint {self.path}")
            return False
        with self._condition:
            for writer, version, _ in round_.under_way:
                writer._written = max(writer._written, version)
            self._unwritten -= len(round_.finishing)
            self._condition.notify_all()
        return True


def _identity(item: _Finished) -> InputIdentity:
    """The finished file's identity: the one its checkpoint took when the file was opened,
    if its size and time are still those (hashing its ends again would find the same),
    else taken now."""
    if item.checkpoint is not None:
        opened = item.checkpoint.base.identity.completed()
        try:
            now = Path(opened.path).stat()
        except OSError:
            pass  # said by InputIdentity.of
        else:
            unchanged = (now.st_size, now.st_mtime_ns) == (opened.size, opened.mtime_ns)
            if unchanged and opened.ends_sha256 != CHANGED_WHILE_READ:
                return opened
    return InputIdentity.of(item.path)
