"""The ledger: which files each account has imported completely, for ``--skip-done``.

One JSON Lines file in the user's state folder (beside the checkpoints), one entry per file
that an import finished, appended (and fsynced) under a ``filelock`` so that concurrent runs
never lose each other's entries. A later line for the same file and account replaces an
earlier one. Appending costs the same for the first entry and the forty-thousandth (a year of
nightly drop folders): rewriting the whole file at that size cost 0.6 s of CPU per write, on
the thread that records finished files while the next ones are read. When most lines are
replaced ones, a read compacts the file (a whole new file, renamed into place). A line cut
short by a crash (never fsynced whole) is left out, and cut off before the next append.
Version 1 (``ledger.json``, one document rewritten at each write) is converted on first use.

An entry is keyed by three things, never by the file's name alone:

* the command (a file of sends is not done for ``import-clicks``);
* the account: the base URL and a SHA-256 of the API key (never the key), or the sandbox's
  database file;
* the file's fingerprint: its identity as a checkpoint names it without the path
  (``checkpoint.InputIdentity``: size, modification time and a SHA-256 of its first and last
  64 KiB), so a run over many files hashes each of them once for both. A file changed in
  the middle without a new size and time is not told apart: the safe failure (a copy with a
  new time is imported again, as duplicates) is the only one the time adds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import filelock
import orjson
import platformdirs

from trackly_migrate.checkpoint import InputIdentity, replace_atomically
from trackly_migrate.errors import OutputError, UsageError
from trackly_migrate.pipeline.request import Target

LEDGER_VERSION = 2
LEGACY_NAME = "ledger.json"  # version 1
_HEADER = orjson.dumps({"trackly_migrate_ledger": LEDGER_VERSION}) + b"\n"
_TAIL_BYTES = 64 * 1024  # an entry is well under this: the last newline is within it
LOCK_TIMEOUT_S = 60.0  # a ledger write takes milliseconds; a minute means something is stuck


def default_ledger_path() -> Path:
    return platformdirs.user_state_path("trackly-migrate") / "ledger.jsonl"


@dataclass(frozen=True)
class Fingerprint:
    """What makes a file the same file for the ledger (see the module docstring)."""

    size: int
    mtime_ns: int
    ends_sha256: str

    @classmethod
    def of(cls, path: str) -> Fingerprint:
        return cls.of_identity(InputIdentity.of(path))

    @classmethod
    def of_identity(cls, identity: InputIdentity) -> Fingerprint:
        return cls(identity.size, identity.mtime_ns, identity.ends_sha256)


def account_of(target: Target) -> str | None:
    """The target account as the ledger names it; None when nothing lasting is imported."""
    if target.dry_run:
        return None
    if target.sandbox:
        return f"sandbox:{target.sandbox_db.resolve()}" if target.sandbox_db else None
    assert target.settings is not None
    key_hash = hashlib.sha256(target.settings.api_key.encode()).hexdigest()[:16]
    return f"{target.settings.base_url.rstrip('/')} key-sha256:{key_hash}"


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
    def key(self) -> tuple[str, str, Fingerprint]:
        return (self.command, self.account, self.fingerprint)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Ledger:
    """The ledger file at ``path`` (see the module docstring); every read and write holds its
    lock."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_ledger_path()
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
            return self._read()

    def find(self, command: str, account: str, fingerprint: Fingerprint) -> Entry | None:
        return self.done(command, account).get(fingerprint)

    def done(self, command: str, account: str) -> dict[Fingerprint, Entry]:
        """The files ``command`` finished into ``account``, by fingerprint, in one read: a
        drop folder is looked up in it, not the whole ledger read again for each file."""
        return {
            entry.fingerprint: entry
            for entry in self.entries()
            if entry.command == command and entry.account == account
        }

    def record(self, entry: Entry) -> None:
        """Add ``entry`` (replacing an earlier one for the same file and account)."""
        self.record_all([entry])

    def record_all(self, entries: list[Entry]) -> None:
        """Add ``entries`` in one append and one fsync (a run finishing several files)."""
        lines = b"".join(orjson.dumps(entry) + b"\n" for entry in entries)
        with self._lock():
            self._convert_legacy()
            try:
                if not self.path.exists():
                    self._replace([])
                with self.path.open("r+b") as handle:
                    handle.truncate(_complete_size(handle))
                    handle.seek(0, os.SEEK_END)
                    handle.write(lines)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise _unwritable(self.path, exc) from None

    def _read(self) -> list[Entry]:
        """The entries, the latest line for each file and account; compacts the file when
        most of its lines are replaced ones."""
        self._convert_legacy()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _unreadable(self.path, exc.strerror or str(exc)) from None
        lines = data.split(b"\n")
        lines.pop()  # after the last newline: nothing, or a line a crash cut short
        if not lines or lines[0] != _HEADER.rstrip(b"\n"):
            raise _unreadable(self.path, "not a ledger of this version")
        latest: dict[tuple[str, str, Fingerprint], Entry] = {}
        for number, line in enumerate(lines[1:], start=2):
            try:
                entry = _entry_of(orjson.loads(line))
            except (orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
                raise _unreadable(self.path, f"line {number}: {exc}") from None
            latest.pop(entry.key, None)  # the newest comes last, as it was recorded
            latest[entry.key] = entry
        found = list(latest.values())
        if len(lines) - 1 > 2 * len(found) + 100:
            self._replace(found)
        return found

    def _replace(self, entries: list[Entry]) -> None:
        body = _HEADER + b"".join(orjson.dumps(entry) + b"\n" for entry in entries)
        try:
            replace_atomically(self.path, body)
        except OSError as exc:
            raise _unwritable(self.path, exc) from None

    def _convert_legacy(self) -> None:
        """A version 1 ledger beside this one becomes this one (under the lock)."""
        legacy = self.path.with_name(LEGACY_NAME)
        if legacy == self.path or self.path.exists() or not legacy.exists():
            return
        try:
            raw = orjson.loads(legacy.read_bytes())
            if raw.get("version") != 1:
                raise ValueError("unknown version")
            entries = [_entry_of(item) for item in raw["files"]]
        except (OSError, orjson.JSONDecodeError, TypeError, ValueError, KeyError) as exc:
            raise _unreadable(legacy, str(exc)) from None
        self._replace(entries)
        with contextlib.suppress(OSError):
            legacy.unlink()


def _entry_of(item: dict[str, Any]) -> Entry:
    return Entry(**{**item, "fingerprint": Fingerprint(**item["fingerprint"])})


def _complete_size(handle: BinaryIO) -> int:
    """The file's size up to its last newline: what a crash did not cut short."""
    size = handle.seek(0, os.SEEK_END)
    start = max(0, size - _TAIL_BYTES)
    handle.seek(start)
    last_newline = handle.read().rfind(b"\n")
    return start + last_newline + 1 if last_newline >= 0 else size


def _unreadable(path: Path, why: str) -> UsageError:
    return UsageError(
        f"The ledger {path} is not readable ({why}).",
        hint="Move it away: the next runs start a new one (--skip-done then skips "
        "nothing until files are imported again).",
    )


def _unwritable(path: Path, error: OSError) -> OutputError:
    return OutputError(
        f"Cannot write the ledger {path}: {error.strerror}.",
        hint="Free some disk space there; the files imported so far are imported, and "
        "--skip-done would import them again as duplicates if their entries are missing.",
    )


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
