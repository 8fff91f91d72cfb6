"""Claims on input files, so that a second run over a file a running one imports is refused.

A run claims its input files (per command and account) before it sends anything, and keeps
the claims until it ends. The claims live in one registry in the state folder, each under the
run that made it, and a run's claims count while the run holds its own lock file. So a run
killed with -9 leaves claims that the next run finds dead and drops.

Why not a lock per file: each would be an open file for the whole run, and a drop folder of
a thousand parts would run out of file descriptors (``ulimit -n`` is 1,024 by default). This
way a run holds one, whatever the number of its inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import filelock
import orjson

from trackly_migrate.checkpoint import replace_atomically
from trackly_migrate.errors import UsageError

# Other runs hold the registry's lock only while they read and rewrite it (milliseconds).
REGISTRY_WAIT_S = 30.0
_REGISTRY = "claims.json"
_REGISTRY_LOCK = "claims.lock"

Runs = dict[str, list[str]]  # run id -> the keys of the inputs it claims


def claim_key(command: str, account: str, path: str) -> str:
    """The claim on ``path`` for ``command`` into ``account``: the same file by any name."""
    text = f"{command}\n{account}\n{os.path.realpath(path)}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@contextlib.contextmanager
def claimed(folder: Path, command: str, account: str, paths: Sequence[str]) -> Iterator[None]:
    """Hold claims on ``paths`` until the block ends; refuse if a live run claims one of them."""
    run_id = uuid.uuid4().hex
    own = filelock.FileLock(str(_run_lock(folder, run_id)), timeout=0)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        own.acquire()
    except OSError as exc:
        raise _unusable(folder, exc) from None
    try:
        keys = {claim_key(command, account, path): path for path in paths}
        try:
            with _registry(folder) as runs:
                taken = {key for claims in runs.values() for key in claims}
                for key, path in keys.items():
                    if key in taken:
                        raise UsageError(
                            f"Another trackly-migrate run is importing {path} into this account.",
                            hint="Wait for it to finish (or stop it): two runs would send the "
                            "same records twice. In cron, run the job under `flock -n`.",
                        )
                runs[run_id] = sorted(keys)
        except OSError as exc:
            raise _unusable(folder, exc) from None
        yield
    finally:
        # Tidiness only: once our lock is released the claims are dead for every other run.
        with contextlib.suppress(filelock.Timeout, OSError), _registry(folder) as runs:
            runs.pop(run_id, None)
        own.release()
        with contextlib.suppress(OSError):
            _run_lock(folder, run_id).unlink()


def _unusable(folder: Path, error: OSError) -> UsageError:
    return UsageError(
        f"Cannot keep the list of running imports in {folder}: {error.strerror}.",
        hint="Free some disk space there, or make the folder writable (it is under "
        "XDG_STATE_HOME, by default ~/.local/state).",
    )


def _run_lock(folder: Path, run_id: str) -> Path:
    return folder / f"run-{run_id}.lock"


@contextlib.contextmanager
def _registry(folder: Path) -> Iterator[Runs]:
    """The live runs' claims, under the registry's lock; written back when the block ends."""
    lock = filelock.FileLock(str(folder / _REGISTRY_LOCK), timeout=REGISTRY_WAIT_S)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise UsageError(
            f"The list of running imports in {folder} stayed locked for {REGISTRY_WAIT_S:g} s.",
            hint=f"Another trackly-migrate run seems stuck: stop it, or remove "
            f"{folder / _REGISTRY_LOCK} if no run is going.",
        ) from None
    try:
        runs = {run: keys for run, keys in _load(folder).items() if _alive(folder, run)}
        yield runs
        _save(folder, runs)
    finally:
        lock.release()


def _load(folder: Path) -> Runs:
    try:
        data = orjson.loads((folder / _REGISTRY).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError):
        # It is replaced whole (never written in place), so it is unreadable only after the
        # machine itself went down: then no run that claimed anything is still going.
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(run): [str(key) for key in keys] for run, keys in data.items()}


def _save(folder: Path, runs: Runs) -> None:
    replace_atomically(folder / _REGISTRY, orjson.dumps(runs))


def _alive(folder: Path, run_id: str) -> bool:
    """Whether the run still holds its lock; a dead run's lock file is removed."""
    path = _run_lock(folder, run_id)
    if not path.exists():
        return False
    probe = filelock.FileLock(str(path), timeout=0)
    try:
        probe.acquire()
    except filelock.Timeout:
        return True
    probe.release()
    with contextlib.suppress(OSError):
        path.unlink()
    return False
