"""Resume checkpoints: where an interrupted import stands, written so a crash cannot corrupt it.

A checkpoint names the input (absolute path, size, mtime, a hash of its first MiB), the
options that change what is sent, the position just past the last record the server
acknowledged (a watermark: every earlier batch is settled), the running totals, and the
errors report with its size at that moment. It never holds the API key.

Each write goes to a temporary file that is fsynced and renamed over the old one, so a reader
sees either the previous checkpoint or the new one, never half of one (the writes, while a
run goes on, are ``checkpoint_writer.py``'s). A lock file (``filelock``,
released by the OS when a process dies, so a ``kill -9`` leaves nothing stuck) keeps two runs
off the same checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock
import orjson
import platformdirs

from trackly_migrate.counts import Counts, from_totals
from trackly_migrate.errors import InputError, OutputError, UsageError

FORMAT_VERSION = 1
HEAD_BYTES = 1 << 20


# The head's hash of an identity taken at opening and not completed yet (``opened``).
HASH_PENDING = ""
# A file whose size or time moved between its opening and the hashing of its head: no file
# has this hash, so a resume names the file as changed.
CHANGED_WHILE_READ = "changed while it was read"


@dataclass(frozen=True)
class InputIdentity:
    path: str
    size: int
    mtime_ns: int
    head_sha256: str

    @classmethod
    def of(cls, path: str) -> InputIdentity:
        return cls.opened(path).completed()

    @classmethod
    def opened(cls, path: str) -> InputIdentity:
        """The file's path, size and time now; its head is hashed by ``completed()``.

        A run over many files opens each of them on the reading thread, and hashing a MiB
        there took about 1 ms a file: the checkpoint's thread completes it instead, before
        the first write (``checkpoint_writer.py``).
        """
        absolute = Path(path).resolve()
        try:
            info = absolute.stat()
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror}).") from None
        return cls(str(absolute), info.st_size, info.st_mtime_ns, HASH_PENDING)

    def completed(self) -> InputIdentity:
        """This identity with its head's hash, as the file was when ``opened``."""
        if self.head_sha256 != HASH_PENDING:
            return self
        digest = hashlib.sha256()
        # Read into one buffer, a quarter of the head at a time: a MiB read at once is a new
        # mapping of fresh pages for every file of a run over many.
        chunk = memoryview(bytearray(HEAD_BYTES // 4))
        left = HEAD_BYTES
        try:
            with Path(self.path).open("rb", buffering=0) as handle:
                while left and (got := handle.readinto(chunk[: min(left, len(chunk))])):
                    digest.update(chunk[:got])
                    left -= got
                info = os.fstat(handle.fileno())
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror}).") from None
        if (info.st_size, info.st_mtime_ns) != (self.size, self.mtime_ns):
            return dataclasses.replace(self, head_sha256=CHANGED_WHILE_READ)
        return dataclasses.replace(self, head_sha256=digest.hexdigest())


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
            return cls.from_dict(orjson.loads(data))
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError):
            raise UsageError(
                f"The checkpoint {source} is not readable.",
                hint="Start over with --restart (the errors report is rewritten).",
            ) from None

    @classmethod
    def new(
        cls,
        command: str,
        identity: InputIdentity,
        options: dict[str, Any],
        report_path: str | None = None,
    ) -> Checkpoint:
        """The checkpoint of an input not imported yet: at its first line, nothing counted."""
        return cls(command, identity, options, 0, 1, {}, report_path, 0)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Checkpoint:
        """Raises TypeError, ValueError, AttributeError or KeyError where ``raw`` is not one."""
        if raw.get("version") != FORMAT_VERSION:
            raise ValueError("unknown version")
        checkpoint = cls(**{**raw, "identity": InputIdentity(**raw["identity"])})
        checkpoint.counts()  # totals that cannot be read are refused now, not mid-run
        return checkpoint

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
    failure leaves the old file whole, removes the temporary one and raises ``OSError``.

    A checkpoint is written every 50 ms while a run goes on, from a thread that takes the
    interpreter from the reading one after each system call: so the folder is made only
    when it is missing, and the file is written without a Python file object around it.
    """
    temporary: str | None = None
    try:
        try:
            descriptor, temporary = _temporary_beside(path)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor, temporary = _temporary_beside(path)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)  # noqa: PTH105 - no Path object to make per write
    except OSError:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)  # noqa: PTH108
        raise


def _temporary_beside(path: Path) -> tuple[int, str]:
    return tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")


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
    # Not thread-local: a run over many files lets go of a finished file's lock from the
    # thread that records it, where filelock's default release does nothing (the lock went
    # only when its object was collected).
    lock = filelock.FileLock(str(path) + ".lock", timeout=0, thread_local=False)
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
