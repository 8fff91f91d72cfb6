"""Resume checkpoints: where an interrupted import stands, written so a crash cannot corrupt it.

A checkpoint names the input (absolute path, size, mtime, a hash of its first MiB), the
options that change what is sent, the position just past the last record the server
acknowledged (a watermark: every earlier batch is settled), the running totals, and the
errors report with its size at that moment. It never holds the API key.

Each write goes to a temporary file that is fsynced and renamed over the old one, so a reader
sees either the previous checkpoint or the new one, never half of one. A lock file (``filelock``,
released by the OS when a process dies, so a ``kill -9`` leaves nothing stuck) keeps two runs
off the same checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import orjson
import platformdirs

from trackly_migrate.counts import Counts, from_totals, to_totals
from trackly_migrate.errors import InputError, OutputError, TracklyMigrateError, UsageError

FORMAT_VERSION = 1
HEAD_BYTES = 1 << 20
# A checkpoint is written at most this often while a run goes on (flush() and the end of a
# run write at once). Each write wakes the writer's thread, which then takes the interpreter
# from the reader: writing after every batch cost a 1,000,000-row import about 8% of its
# time. What a crash can cost is what a resume sends again, once: the batches of the last
# interval, which come back as duplicates.
MIN_WRITE_INTERVAL_S = 0.05


@dataclass(frozen=True)
class InputIdentity:
    path: str
    size: int
    mtime_ns: int
    head_sha256: str

    @classmethod
    def of(cls, path: str) -> InputIdentity:
        absolute = Path(path).resolve()
        try:
            info = absolute.stat()
            digest = hashlib.sha256()
            with absolute.open("rb") as handle:
                digest.update(handle.read(HEAD_BYTES))
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror}).") from None
        return cls(str(absolute), info.st_size, info.st_mtime_ns, digest.hexdigest())


@dataclass
class Checkpoint:
    command: str
    identity: InputIdentity
    options: dict[str, Any]
    offset: int
    line: int
    totals: dict[str, Any]
    report_path: str | None
    report_size: int
    # Records before this offset may already be stored: the batches that were in flight.
    submitted_until: int = 0
    version: int = FORMAT_VERSION
    # Reports of earlier parts of this run, when a resume chose another --errors place.
    earlier_reports: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        # orjson writes the dataclasses itself: the same bytes as over ``asdict``, which
        # copies every nested field first.
        return orjson.dumps(self, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_bytes(cls, data: bytes, source: Path) -> Checkpoint:
        try:
            raw = orjson.loads(data)
            if raw.get("version") != FORMAT_VERSION:
                raise ValueError("unknown version")
            raw["identity"] = InputIdentity(**raw["identity"])
            checkpoint = cls(**raw)
            checkpoint.counts()  # totals that cannot be read are refused now, not mid-run
            return checkpoint
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError):
            raise UsageError(
                f"The checkpoint {source} is not readable.",
                hint="Start over with --restart (the errors report is rewritten).",
            ) from None

    def counts(self) -> tuple[Counts, float]:
        """The counts and the time spent that the checkpointed part of the run settled."""
        return from_totals(self.totals)


def default_checkpoint_path(command: str, identity: InputIdentity) -> Path:
    """One checkpoint per command and input file, in the user's state folder."""
    folder = platformdirs.user_state_path("trackly-migrate") / "checkpoints"
    key = hashlib.sha256(identity.path.encode()).hexdigest()[:16]
    return folder / f"{command}-{Path(identity.path).name}-{key}.json"


def write_atomic(path: Path, data: bytes) -> None:
    """``replace_atomically`` for a checkpoint: a failure says what to do about it."""
    try:
        replace_atomically(path, data)
    except OSError as exc:
        raise OutputError(
            f"Cannot write the checkpoint {path}: {exc.strerror}.",
            hint="Free some disk space, or choose another place with --checkpoint PATH.",
        ) from None


def replace_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once (temp file, fsync, rename), mode 0600; a
    failure leaves the old file whole, removes the temporary one and raises ``OSError``."""
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).replace(path)
    except OSError:
        if temporary is not None:
            with contextlib.suppress(OSError):
                Path(temporary).unlink()
        raise


def read_bytes(path: Path) -> bytes | None:
    """A checkpoint file's bytes, or None where there is none; unreadable is a usage error."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"Cannot read the checkpoint {path}: {exc.strerror}.") from None


def load(path: Path) -> Checkpoint | None:
    data = read_bytes(path)
    return None if data is None else Checkpoint.from_bytes(data, path)


def discard(path: Path) -> bool:
    """Remove a checkpoint whatever state it is in; True if there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise UsageError(f"Cannot remove the checkpoint {path}: {exc.strerror}.") from None
    return True


# Where the outputs go is not part of what a resume must match (a full disk's hint is to
# choose another place); a checkpoint written before this rule still lists the report.
OUTPUT_PLACES = frozenset({"errors_report"})


def option_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    names = sorted((set(saved) | set(current)) - OUTPUT_PLACES)
    return [
        f"{name}: was {saved.get(name)!r}, now {current.get(name)!r}"
        for name in names
        if saved.get(name) != current.get(name)
    ]


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the checkpoint's lock for the run; a second run on it is refused at once."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UsageError(
            f"Cannot keep a checkpoint in {path.parent}: {exc.strerror}.",
            hint="Choose another place with --checkpoint PATH.",
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"Cannot keep a checkpoint in {path.parent}: permission denied.",
            hint="Choose another place with --checkpoint PATH.",
        )
    lock = filelock.FileLock(str(path) + ".lock", timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        _refuse_unusable_place(Path(lock.lock_file))  # filelock says "locked" for that too
        raise UsageError(
            f"Another trackly-migrate run is using the checkpoint {path}.",
            hint="Wait for it to finish (or stop it); two runs on one input would send "
            "the same records twice.",
        ) from None
    try:
        yield
    finally:
        lock.release()


def _refuse_unusable_place(lock_path: Path) -> None:
    try:
        os.close(os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise UsageError(
            f"Cannot keep a checkpoint at {lock_path.with_suffix('')}: {exc.strerror}.",
            hint="Choose another place with --checkpoint PATH.",
        ) from None


def wait_out(condition: threading.Condition, until: float, now_please: Callable[[], bool]) -> None:
    """Wait on ``condition`` (held) until the monotonic time ``until``, or sooner once
    ``now_please()`` (checked at each wake-up): how a writer coalesces what comes meanwhile."""
    while not now_please():
        remaining = until - time.monotonic()
        if remaining <= 0:
            return
        condition.wait(remaining)


class CheckpointWriter:
    """Writes the checkpoint when a batch is sent or the watermark moves, at most once per
    ``MIN_WRITE_INTERVAL_S`` (the changes meanwhile go into the next write).

    The writes (fsync included) happen on a thread of their own so the reading loop never
    waits for the disk; the newest state is always the one written next, and ``flush()``
    writes it at once and waits until it is on disk. ``before_write`` runs first (the errors
    report's fsync), so a checkpoint never counts report rows that are not on disk yet.
    """

    def __init__(
        self, path: Path, base: Checkpoint, before_write: Callable[[], None] | None = None
    ) -> None:
        self.path = path
        self.base = base
        self.before_write = before_write
        self._condition = threading.Condition()
        self._version = 0
        self._written = 0
        self._closing = False
        self._discarding = False  # remove(): what is pending is not written
        self._stopped = False
        self._flushing = 0  # callers of flush() waiting: the next write goes at once
        self._idle = False  # the writer waits for a change (and is woken for one)
        self._error: TracklyMigrateError | None = None
        self._thread = threading.Thread(target=self._loop, name="checkpoint", daemon=True)
        self._thread.start()

    def write_now(self) -> None:
        """Write the current state at once, in this thread, before anything is sent: a place
        that cannot take the checkpoint is then a usage error (exit 2), not a mid-run one."""
        with self._condition:
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
        if self._error is not None:
            raise self._error
        self._version += 1
        if self._idle:  # else it is writing or waiting out the interval: it will see this
            self._condition.notify_all()

    def flush(self) -> None:
        """Wait until the newest state is on disk (raises what went wrong writing it)."""
        with self._condition:
            self._flushing += 1
            self._condition.notify_all()
            try:
                while self._pending() and self._error is None and not self._stopped:
                    self._condition.wait()
            finally:
                self._flushing -= 1
            if self._error is not None:
                raise self._error

    def close(self) -> None:
        """Write the newest state and stop; a write error was already raised by ``flush`` or
        ``advance``."""
        self._stop(discard=False)

    def remove(self) -> None:
        """Stop without writing what is pending, and delete the checkpoint."""
        self._stop(discard=True)
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _stop(self, *, discard: bool) -> None:
        with self._condition:
            self._closing = True
            self._discarding = self._discarding or discard
            self._condition.notify_all()
        self._thread.join()

    def _pending(self) -> bool:
        return self._written < self._version

    def _loop(self) -> None:
        last_write = float("-inf")
        while True:
            with self._condition:
                self._idle = True
                while not self._pending() and not self._closing:
                    self._condition.wait()
                self._idle = False
                wait_out(
                    self._condition,
                    last_write + MIN_WRITE_INTERVAL_S,
                    lambda: bool(self._flushing or self._closing),
                )
                if not self._pending() or self._discarding:
                    self._stopped = True
                    self._condition.notify_all()
                    return
                target = self._version
                data = self.base.to_bytes()
            try:
                if self.before_write is not None:
                    self.before_write()
                write_atomic(self.path, data)
            except Exception as exc:  # the run must hear of it, never hang on a dead thread
                error = (
                    exc
                    if isinstance(exc, TracklyMigrateError)
                    else OutputError(f"Cannot write the checkpoint {self.path}: {exc}.")
                )
                with self._condition:
                    self._error = error
                    self._condition.notify_all()
                return
            last_write = time.monotonic()
            with self._condition:
                self._written = target
                self._condition.notify_all()
