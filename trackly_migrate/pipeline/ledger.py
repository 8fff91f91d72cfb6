"""The ledger: which files each account has imported completely, for ``--skip-done``.

One JSON file in the user's state folder (beside the checkpoints), one entry per file that an
import finished, written atomically (temp file, fsync, rename) under a ``filelock`` so that
concurrent runs never lose each other's entries.

An entry is keyed by three things, never by the file's name alone:

* the command (a file of sends is not done for ``import-clicks``);
* the account: the base URL and a SHA-256 of the API key (never the key), or the sandbox's
  database file;
* the file's fingerprint: size, modification time and a SHA-256 of its first and last 64 KiB.
  Reading both ends costs the same for a 1 KiB file and a 10 GiB one, and an export that is
  written again or appended to changes its size, its end or its time. A file changed in the
  middle without a new size and time is not told apart: the safe failure (a copy with a new
  time is imported again, as duplicates) is the only one the time adds.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import filelock
import orjson
import platformdirs

from trackly_migrate.checkpoint import write_atomic
from trackly_migrate.errors import InputError, UsageError
from trackly_migrate.pipeline.request import Target

LEDGER_VERSION = 1
END_BYTES = 64 * 1024
INDENT = orjson.OPT_INDENT_2
LOCK_TIMEOUT_S = 60.0  # a ledger write takes milliseconds; a minute means something is stuck


def default_ledger_path() -> Path:
    return platformdirs.user_state_path("trackly-migrate") / "ledger.json"


@dataclass(frozen=True)
class Fingerprint:
    """What makes a file the same file for the ledger (see the module docstring)."""

    size: int
    mtime_ns: int
    ends_sha256: str

    @classmethod
    def of(cls, path: str) -> Fingerprint:
        try:
            with Path(path).open("rb") as handle:
                info = os.fstat(handle.fileno())
                digest = hashlib.sha256(handle.read(END_BYTES))
                if info.st_size > END_BYTES:
                    handle.seek(max(END_BYTES, info.st_size - END_BYTES))
                    digest.update(handle.read(END_BYTES))
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror}).") from None
        return cls(info.st_size, info.st_mtime_ns, digest.hexdigest())


def account_of(target: Target) -> str | None:
    """The target account as the ledger names it; None when nothing lasting is imported."""
    if target.dry_run:
        return None
    if target.sandbox:
        return f"sandbox:{target.sandbox_db.resolve()}" if target.sandbox_db else None
    assert target.settings is not None
    key_hash = hashlib.sha256(target.settings.api_key.encode()).hexdigest()[:16]
    return f"{target.settings.base_url.rstrip('/')} key-sha256:{key_hash}"


_Key = tuple[str, str, Fingerprint]


@dataclass
class Entry:
    command: str
    account: str
    fingerprint: Fingerprint
    path: str  # where the file was when it was imported: for people, not for matching
    finished_at: str
    counts: dict[str, int] = field(default_factory=dict)
    errors_report: str | None = None

    @property
    def key(self) -> _Key:
        return (self.command, self.account, self.fingerprint)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    """The ledger file at ``path``; every read and write holds its lock."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_ledger_path()
        # The entries as last read or written here, and the file they are: a run that
        # finishes files one after the other reads a year of entries once, not after each.
        self._known: tuple[tuple[int, int, int, int], dict[_Key, Entry]] | None = None
        # The same entries' texts in the file (indented as orjson indents them), kept from
        # the last write; None after a read.
        self._texts: dict[_Key, bytes] | None = None
        self._file_lock: filelock.FileLock | None = None

    def _lock(self) -> filelock.FileLock:
        # One lock for the ledger's life: a new one (and its folder made) for each of a
        # run's writes cost a millisecond each, on the thread that records finished files.
        if self._file_lock is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                where = self.path.parent
                raise UsageError(f"Cannot keep the ledger in {where}: {exc.strerror}.") from None
            self._file_lock = filelock.FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S)
        return self._file_lock

    def entries(self) -> list[Entry]:
        with self._lock():
            return list(self._read().values())

    def find(self, command: str, account: str, fingerprint: Fingerprint) -> Entry | None:
        with self._lock():
            return self._read().get((command, account, fingerprint))

    def record(self, entry: Entry) -> None:
        """Add ``entry`` (replacing an earlier one for the same file and account)."""
        self.record_all([entry])

    def record_all(self, entries: list[Entry]) -> None:
        """Add ``entries`` in one write (a run finishing several files at once).

        Each entry is serialised once, and the file is the join of their texts: a year of
        nightly entries, serialised again after every file of a run, cost more than the fsync.
        """
        with self._lock():
            known = dict(self._read())
            if self._texts is None:  # read, not written, since: the texts of these entries
                self._texts = {key: _text(entry) for key, entry in known.items()}
            texts = dict(self._texts)
            for entry in entries:  # a file imported again goes to the end, as its newest
                known.pop(entry.key, None)
                texts.pop(entry.key, None)
                known[entry.key] = entry
                texts[entry.key] = _text(entry)
            write_atomic(self.path, _document(list(texts.values())))
            self._remember(known)
            self._texts = texts

    def _read(self) -> dict[_Key, Entry]:
        """The entries by key (hold the lock): those known, if the file is still theirs."""
        if self._known is not None and self._known[0] == _file_state(self.path):
            return self._known[1]
        try:
            raw = orjson.loads(self.path.read_bytes())
            if raw.get("version") != LEDGER_VERSION:
                raise ValueError("unknown version")
            entries = [
                Entry(**{**item, "fingerprint": Fingerprint(**item["fingerprint"])})
                for item in raw["files"]
            ]
            known = {entry.key: entry for entry in entries}
            self._remember(known)
            return known
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
            raise UsageError(
                f"The ledger {self.path} is not readable ({exc}).",
                hint="Move it away: the next runs start a new one (--skip-done then skips "
                "nothing until files are imported again).",
            ) from None

    def _remember(self, entries: dict[_Key, Entry]) -> None:
        state = _file_state(self.path)
        self._known = (state, entries) if state is not None else None
        self._texts = None  # until the next write makes them


def _text(entry: Entry) -> bytes:
    """``entry`` as the ledger's file holds it, inside its list."""
    return b"    " + orjson.dumps(entry, option=INDENT).replace(b"\n", b"\n    ")


def _document(texts: list[bytes]) -> bytes:
    """The ledger's file, byte for byte what ``orjson.dumps`` indents (``_text``)."""
    if not texts:
        return orjson.dumps({"version": LEDGER_VERSION, "files": []}, option=INDENT)
    return b'{\n  "version": %d,\n  "files": [\n%b\n  ]\n}' % (LEDGER_VERSION, b",\n".join(texts))


def _file_state(path: Path) -> tuple[int, int, int, int] | None:
    """Which file is at ``path``: every write replaces it (a new inode), so another run's
    write is seen, whatever its size and time."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
