"""Resume checkpoints: where an interrupted import stands, written so a crash cannot corrupt it.

A checkpoint names the input (``InputIdentity``: absolute path, size, mtime, a hash of its
first and last 64 KiB), the
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

# Version 2 identifies the input by its two ends (``END_BYTES`` each), as the ledger does;
# version 1 by its first MiB (``LEGACY_HEAD_BYTES``), read still (``InputIdentity.from_dict``).
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, FORMAT_VERSION)
END_BYTES = 64 * 1024
LEGACY_HEAD_BYTES = 1 << 20


# The ends' hash of an identity taken at opening and not completed yet (``opened``).
HASH_PENDING = ""
# A file whose size or time moved between its opening and the hashing of its ends: no file
# has this hash, so a resume names the file as changed.
CHANGED_WHILE_READ = "changed while it was read"
# A version-1 identity whose file is no longer the one it named (the same rule).
CHANGED_SINCE = "changed since an earlier version named it"


@dataclass(frozen=True, slots=True)
class InputIdentity:
    """What makes a file the same file: its size, its time, and a SHA-256 of its first and
    last ``END_BYTES``. Reading both ends costs the same for a 1 KiB file and a 10 GiB one,
    and an export written again or appended to changes its size, its end or its time. The
    ledger's ``Fingerprint`` is this without the path: one read and one hash a file serve
    both.
    """

    path: str
    size: int
    mtime_ns: int
    ends_sha256: str

    @classmethod
    def of(cls, path: str) -> InputIdentity:
        return cls.opened(path).completed()

    @classmethod
    def opened(
        cls, path: str, *, info: os.stat_result | None = None, absolute: str | None = None
    ) -> InputIdentity:
        """The file's path, size and time now; its ends are hashed by ``completed()``.

        A run over many files opens each of them on the reading thread, where every system
        call lets another thread take the interpreter: ``info`` is the stat of the file as
        its reader opened it, ``absolute`` its resolved path, when they are known. The
        checkpoint's thread hashes the ends, before the first write (``checkpoint_writer.py``).
        """
        where = absolute or str(Path(path).resolve())
        if info is None:
            try:
                info = Path(where).stat()
            except OSError as exc:
                raise InputError(f"{path}: cannot read ({exc.strerror}).") from None
        return cls(where, info.st_size, info.st_mtime_ns, HASH_PENDING)

    def completed(self) -> InputIdentity:
        """This identity with its ends' hash, as the file was when ``opened``."""
        if self.ends_sha256 != HASH_PENDING:
            return self
        try:
            # A bare descriptor: the thread that hashes gives the interpreter up at each
            # system call, and a run over many files does this once a file.
            descriptor = os.open(self.path, _READ_FLAGS)
            try:
                info = os.fstat(descriptor)
                digest = hashlib.sha256(_read_at(descriptor, 0, END_BYTES))
                if info.st_size > END_BYTES:
                    tail = max(END_BYTES, info.st_size - END_BYTES)
                    digest.update(_read_at(descriptor, tail, END_BYTES))
            finally:
                os.close(descriptor)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror}).") from None
        if (info.st_size, info.st_mtime_ns) != (self.size, self.mtime_ns):
            return dataclasses.replace(self, ends_sha256=CHANGED_WHILE_READ)
        return dataclasses.replace(self, ends_sha256=digest.hexdigest())

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> InputIdentity:
        """An identity as a checkpoint holds it; one of version 1 (a hash of the first MiB)
        becomes today's when its file is still the one it named, else one that matches no
        file, so that a resume names the file as changed rather than refuse the checkpoint."""
        if "head_sha256" not in raw:
            return cls(**raw)
        named = cls(raw["path"], raw["size"], raw["mtime_ns"], CHANGED_SINCE)
        try:
            now = cls.of(named.path)
        except InputError:
            return named
        unchanged = (now.size, now.mtime_ns) == (named.size, named.mtime_ns)
        if unchanged and _legacy_head_sha256(named.path) == raw["head_sha256"]:
            return now
        return named


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _read_at(descriptor: int, offset: int, size: int) -> bytes:
    """Up to ``size`` bytes from ``offset`` (0: where a new descriptor stands), fewer only at
    the end of the file."""
    if offset:
        os.lseek(descriptor, offset, os.SEEK_SET)
    parts = []
    while size > 0 and (got := os.read(descriptor, size)):
        parts.append(got)
        size -= len(got)
    return b"".join(parts)


def _legacy_head_sha256(path: str) -> str | None:
    """A version-1 identity's hash: of the first ``LEGACY_HEAD_BYTES``."""
    try:
        with Path(path).open("rb") as handle:
            return hashlib.sha256(handle.read(LEGACY_HEAD_BYTES)).hexdigest()
    except OSError:
        return None


@dataclass(slots=True)
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
        if raw.get("version") not in READABLE_VERSIONS:
            raise ValueError("unknown version")
        identity = InputIdentity.from_dict(raw["identity"])
        checkpoint = cls(**{**raw, "identity": identity, "version": FORMAT_VERSION})
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
