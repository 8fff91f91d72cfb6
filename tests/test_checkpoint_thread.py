"""One thread for the checkpoints of a run over many files, and the identity hashed on it."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from pathlib import Path

import pytest

from tests.helpers import send_row, write_sends_csv
from trackly_migrate.checkpoint import (
    CHANGED_WHILE_READ,
    END_BYTES,
    HASH_PENDING,
    Checkpoint,
    InputIdentity,
    load,
    replace_atomically,
)
from trackly_migrate.checkpoint_writer import CheckpointThread, CheckpointWriter
from trackly_migrate.counts import Counts


def opened_checkpoint(source: Path) -> Checkpoint:
    """A new checkpoint as a run's opening makes it: its identity not hashed yet."""
    return Checkpoint("import-sends", InputIdentity.opened(str(source)), {}, 0, 1, {}, None, 0)


def checkpoint_threads() -> int:
    return sum(thread.name == "checkpoint" for thread in threading.enumerate())


def test_the_files_of_a_run_share_one_thread_and_are_written_in_their_order(
    tmp_path: Path,
) -> None:
    sources = [write_sends_csv(tmp_path / f"{n}.csv", [send_row(n)]) for n in range(3)]
    before = checkpoint_threads()
    thread = CheckpointThread(interval=3600)  # nothing goes before a flush asks for it
    writes: list[str] = []
    writers = []
    for n, source in enumerate(sources):
        writer = CheckpointWriter(tmp_path / f"{n}.json", opened_checkpoint(source), thread=thread)
        writer.before_write = lambda name=str(n): writes.append(name)
        writers.append(writer)
    assert checkpoint_threads() == before + 1
    for offset, writer in zip((30, 20, 10), reversed(writers), strict=True):
        writer.advance(offset, 2, Counts(read=1), 0.0, 0)  # the last file changes first
    writers[2].flush()  # one file's flush writes what is pending of all of them ...
    assert writes == ["0", "1", "2"]  # ... in the order of the files, never a later one first
    for writer in writers:
        writer.remove()
    thread.close()
    assert checkpoint_threads() == before
    assert not any((tmp_path / f"{n}.json").exists() for n in range(3))


def test_a_checkpoint_written_by_the_thread_has_its_identity_hashed(tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(50)])
    base = opened_checkpoint(source)
    assert base.identity.ends_sha256 == HASH_PENDING
    writer = CheckpointWriter(tmp_path / "cp.json", base)
    writer.advance(5, 2, Counts(read=1), 0.0, 0)
    writer.close()
    saved = load(tmp_path / "cp.json")
    assert saved is not None and saved.identity == InputIdentity.of(str(source))


def test_a_file_changed_before_it_is_hashed_is_told_apart(tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    opened = InputIdentity.opened(str(source))
    write_sends_csv(source, [send_row(1), send_row(2)])  # rewritten while it is imported
    os.utime(source, ns=(opened.mtime_ns + 10**9, opened.mtime_ns + 10**9))
    changed = opened.completed()
    assert changed.ends_sha256 == CHANGED_WHILE_READ
    assert changed != InputIdentity.of(str(source))  # a resume names the file as changed
    assert opened.completed() == changed  # and says so however often it is asked

    gone = tmp_path / "gone.csv"
    write_sends_csv(gone, [send_row(1)])
    thread = CheckpointThread()
    writer = CheckpointWriter(tmp_path / "gone.json", opened_checkpoint(gone), thread=thread)
    gone.unlink()  # deleted before the thread hashed it: not an error of the run
    writer.advance(5, 2, Counts(read=1), 0.0, 0)
    writer.close()
    thread.close()
    saved = load(tmp_path / "gone.json")
    assert saved is not None and saved.identity.ends_sha256 == CHANGED_WHILE_READ


def test_an_identity_is_the_same_opened_then_completed(tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(20)])
    assert InputIdentity.opened(str(source)).completed() == InputIdentity.of(str(source))


def test_replacing_makes_a_missing_folder_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "new" / "folder" / "cp.json"
    replace_atomically(target, b"one")
    replace_atomically(target, b"two" * 100_000)
    assert target.read_bytes() == b"two" * 100_000
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["cp.json"]


@pytest.mark.parametrize(
    "size", [0, 1, 4096, END_BYTES - 1, END_BYTES, END_BYTES + 1, 2 * END_BYTES - 1, 3 * END_BYTES]
)
def test_the_identity_hashes_the_first_and_last_64_kib(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    source = tmp_path / "s.csv"
    source.write_bytes(data)
    # Each byte once, where the ends overlap: the ledger's fingerprint since its version 2.
    tail = data[max(END_BYTES, size - END_BYTES) :] if size > END_BYTES else b""
    expected = hashlib.sha256(data[:END_BYTES] + tail).hexdigest()
    assert InputIdentity.of(str(source)).ends_sha256 == expected
