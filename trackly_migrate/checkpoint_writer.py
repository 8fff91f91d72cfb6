"""Writing checkpoints while a run goes on: ``CheckpointWriter`` for one file's checkpoint,
``CheckpointThread`` for the thread that writes them.

The writes (fsync included) happen on a thread of their own so the reading loop never waits
for the disk. A run over one file has a thread for its one checkpoint. A run over many files
keeps its files' checkpoints in the list's: ``pipeline/list_checkpoint.py``'s
``ListCheckpoint`` is the one thread that writes it, and ``CheckpointWriter`` is each file's
handle there. A thread (and a file) for each file was started, woken and joined once per
file, and took the interpreter from the reading thread each time.

A thread that writes several checkpoints writes the changes of one moment in the order the
files were opened, at most once per ``MIN_WRITE_INTERVAL_S``. So a crash leaves a prefix of
the run: a file's checkpoint on disk is never ahead of the one before it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

from trackly_migrate.checkpoint import (
    CHANGED_WHILE_READ,
    HASH_PENDING,
    Checkpoint,
    write_atomic,
)
from trackly_migrate.counts import Counts, to_totals
from trackly_migrate.errors import InputError, OutputError, TracklyMigrateError, UsageError

# A checkpoint is written at most this often while a run goes on (flush() and the end of a
# run write at once). Each write wakes the writer's thread, which then takes the interpreter
# from the reader: writing after every batch cost a 1,000,000-row import about 8% of its
# time. What a crash can cost is what a resume sends again, once: the batches of the last
# interval, which come back as duplicates.
MIN_WRITE_INTERVAL_S = 0.05


def wait_out(condition: threading.Condition, until: float, now_please: Callable[[], bool]) -> None:
    """Wait on ``condition`` (held) until the monotonic time ``until``, or sooner once
    ``now_please()`` (checked at each wake-up): how a writer coalesces what comes meanwhile."""
    while not now_please():
        remaining = until - time.monotonic()
        if remaining <= 0:
            return
        condition.wait(remaining)


class CheckpointThread:
    """The thread that writes the checkpoints of one run, at most once per interval.

    It starts at the first checkpoint that asks for it and runs until ``close()``. A write
    that fails stops it: every checkpoint of the run then raises that error (a full disk is
    full for all of them).
    """

    def __init__(self, interval: float = MIN_WRITE_INTERVAL_S) -> None:
        self.interval = interval
        self._condition = threading.Condition()
        self._writers: list[CheckpointWriter] = []  # in the order the files were opened
        self._writing: CheckpointWriter | None = None
        self._flushing = 0  # callers of flush() waiting: the next write goes at once
        self._idle = False  # the thread waits for a change (and is woken for one)
        self._closing = False
        self._stopped = False
        self._error: TracklyMigrateError | None = None
        self._thread: threading.Thread | None = None

    def close(self) -> None:
        """Write what is pending and stop (a write error was raised to the run already)."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    # -- for CheckpointWriter, which holds the condition ----------------------------------

    def _add(self, writer: CheckpointWriter) -> None:
        with self._condition:
            if self._closing:
                raise RuntimeError("the checkpoint thread is closed")
            self._writers.append(writer)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="checkpoint", daemon=True)
                self._thread.start()

    def _changed(self) -> None:
        if self._error is not None:
            raise self._error
        if self._idle:  # else it is writing or waiting out the interval: it will see this
            self._condition.notify_all()

    def _flush(self, writer: CheckpointWriter) -> None:
        self._flushing += 1
        self._condition.notify_all()
        try:
            while writer._pending() and self._error is None and not self._stopped:
                self._condition.wait()
        finally:
            self._flushing -= 1

    def _forget(self, writer: CheckpointWriter, *, discard: bool) -> None:
        """Write ``writer``'s newest state (or, with ``discard``, not), then drop it."""
        if discard:
            writer._discarded = True
            while self._writing is writer:  # a write of it under way ends before it goes
                self._condition.wait()
        else:
            self._flush(writer)
        with contextlib.suppress(ValueError):
            self._writers.remove(writer)

    # -- the thread -----------------------------------------------------------------------

    def _loop(self) -> None:
        last_write = float("-inf")
        while True:
            with self._condition:
                self._idle = True
                while not self._due() and not self._closing:
                    self._condition.wait()
                self._idle = False
                wait_out(
                    self._condition,
                    last_write + self.interval,
                    lambda: bool(self._flushing or self._closing),
                )
                unhashed = [w for w in self._writers if w.base.identity.ends_sha256 == HASH_PENDING]
            self._complete_identities(unhashed)
            with self._condition:
                # The changes of one moment, taken together: the files' checkpoints agree. A
                # file opened since the hashing above (the newest) waits for the next round.
                due = [
                    (writer, writer._version, writer.base.to_bytes())
                    for writer in self._due()
                    if writer.base.identity.ends_sha256 != HASH_PENDING
                ]
                if not due and self._closing:
                    self._stopped = True
                    self._condition.notify_all()
                    return
            for writer, version, data in due:
                if not self._write(writer, version, data):
                    return
            last_write = time.monotonic()

    def _complete_identities(self, writers: list[CheckpointWriter]) -> None:
        """Hash the ends of the files opened since the last write (off the reading thread)."""
        for writer in writers:
            opened = writer.base.identity
            try:
                identity = opened.completed()
            except InputError:  # gone since it was opened: a resume must not continue it
                identity = dataclasses.replace(opened, ends_sha256=CHANGED_WHILE_READ)
            with self._condition:
                writer.base.identity = identity

    def _fail(self, exc: Exception, what: str) -> None:
        """Stop the thread on ``exc``: the run raises it (``what`` says what failed, for an
        exception that is not one of ours)."""
        error = exc if isinstance(exc, TracklyMigrateError) else OutputError(f"{what}: {exc}.")
        with self._condition:
            self._error = error
            self._stopped = True
            self._writing = None
            self._condition.notify_all()

    def _due(self) -> list[CheckpointWriter]:
        return [writer for writer in self._writers if writer._pending()]

    def _write(self, writer: CheckpointWriter, version: int, data: bytes) -> bool:
        with self._condition:
            if writer._discarded:
                return True
            self._writing = writer
        try:
            if writer.before_write is not None:
                writer.before_write()
            write_atomic(writer.path, data)
        except Exception as exc:  # the run must hear of it, never hang on a dead thread
            self._fail(exc, f"Cannot write the checkpoint {writer.path}")
            return False
        with self._condition:
            writer._written = max(writer._written, version)
            self._writing = None
            self._condition.notify_all()
        return True


class CheckpointWriter:
    """One file's checkpoint while it is imported: written when a batch is sent or the
    watermark moves, at most once per interval (the changes meanwhile go into the next write).

    ``thread`` writes it (``CheckpointThread``); without one it has a thread of its own,
    stopped by ``close()`` or ``remove()``. The newest state is always the one written next,
    and ``flush()`` writes it at once and waits until it is on disk. ``before_write`` runs
    first (the errors report's fsync), so a checkpoint never counts report rows that are not
    on disk yet.
    """

    def __init__(
        self,
        path: Path,
        base: Checkpoint,
        before_write: Callable[[], None] | None = None,
        thread: CheckpointThread | None = None,
    ) -> None:
        self.path = path
        self.base = base
        self.before_write = before_write
        self._own_thread = thread is None
        self._thread = thread if thread is not None else CheckpointThread()
        self._condition = self._thread._condition
        self._version = 0
        self._written = 0
        self._discarded = False  # remove(): what is pending is not written
        self._done = False
        self._thread._add(self)

    def write_now(self) -> None:
        """Write the current state at once, in this thread, before anything is sent: a place
        that cannot take the checkpoint is then a usage error (exit 2), not a mid-run one."""
        identity = self.base.identity.completed()
        with self._condition:
            self.base.identity = identity
            data = self.base.to_bytes()
        try:
            write_atomic(self.path, data)
        except OutputError as exc:
            raise UsageError(exc.message, hint=exc.hint) from None

    def submitted(self, end_offset: int) -> None:
        with self._condition:
            if end_offset > self.base.submitted_until:
                self.base.submitted_until = end_offset
                self._changed()

    def may_be_stored_until(self, offset: int) -> None:
        """At the end of a run: records before ``offset`` may be stored, none after it (the
        batches never sent or refused before any work are not in doubt)."""
        with self._condition:
            if offset != self.base.submitted_until:
                self.base.submitted_until = offset
                # Not _changed(): this runs while a run ends, and a write error is for
                # flush() to raise, after the errors report is closed.
                self._version += 1
                self._condition.notify_all()

    def advance(
        self, offset: int, line: int, counts: Counts, elapsed_s: float, report_size: int
    ) -> None:
        with self._condition:
            self.base.offset = offset
            self.base.line = line
            self.base.totals = to_totals(counts, elapsed_s)
            self.base.report_size = report_size
            self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._thread._changed()

    def flush(self) -> None:
        """Wait until the newest state is on disk (raises what went wrong writing it)."""
        with self._condition:
            self._thread._flush(self)
            if self._thread._error is not None:
                raise self._thread._error

    def close(self) -> None:
        """Write the newest state and let go of the thread; a write error was already raised
        by ``flush`` or ``advance``."""
        self._finish(discard=False)

    def remove(self) -> None:
        """Let go of the thread without writing what is pending, and delete the checkpoint."""
        self._finish(discard=True)
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _finish(self, *, discard: bool) -> None:
        with self._condition:
            if not self._done:
                self._done = True
                self._thread._forget(self, discard=discard)
        if self._own_thread:
            self._thread.close()

    def _pending(self) -> bool:
        return self._written < self._version and not self._discarded
