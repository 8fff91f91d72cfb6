"""The resume checkpoint's writer: how often it writes, and what flush, close and remove do."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson

from tests.helpers import send_row, write_sends_csv
from trackly_migrate.checkpoint import FORMAT_VERSION, Checkpoint, InputIdentity, load
from trackly_migrate.checkpoint_writer import MIN_WRITE_INTERVAL_S, CheckpointWriter
from trackly_migrate.counts import Counts


def writer_for(tmp_path: Path, writes: list[int] | None = None) -> CheckpointWriter:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    base = Checkpoint("import-sends", InputIdentity.of(str(source)), {}, 0, 1, {}, None, 0)
    writer = CheckpointWriter(tmp_path / "cp.json", base)
    if writes is not None:
        writer.before_write = lambda: writes.append(writer.base.offset)
    return writer


def test_changes_that_come_quickly_are_written_together(tmp_path: Path) -> None:
    writes: list[int] = []
    writer = writer_for(tmp_path, writes)
    began = time.monotonic()
    for offset in range(1, 2001):
        writer.advance(offset, offset, Counts(read=offset), 0.0, 0)
        writer.submitted(offset + 10)
    writer.flush()
    elapsed = time.monotonic() - began
    writer.close()
    # At most one write per interval while the changes came (however slow the machine, the
    # bound is of the time it took), and the flush's; never one per change.
    assert len(writes) <= elapsed / MIN_WRITE_INTERVAL_S + 2
    assert len(writes) < 2000
    saved = load(tmp_path / "cp.json")
    assert saved is not None
    assert (saved.offset, saved.submitted_until, saved.totals["read"]) == (2000, 2010, 2000)


def test_flush_writes_the_newest_state_at_once(tmp_path: Path) -> None:
    writes: list[int] = []
    writer = writer_for(tmp_path, writes)
    writer.advance(5, 2, Counts(read=1), 0.0, 0)
    writer.flush()
    writer.advance(9, 3, Counts(read=2), 0.0, 0)  # within the interval of the first write
    writer.flush()  # does not wait it out: written now
    saved = load(tmp_path / "cp.json")
    assert saved is not None and saved.offset == 9
    assert writes == [5, 9]
    writer.close()


def test_close_writes_what_is_pending(tmp_path: Path) -> None:
    writer = writer_for(tmp_path)
    writer.advance(5, 2, Counts(read=1), 0.0, 0)
    writer.flush()
    writer.advance(7, 3, Counts(read=2), 0.0, 0)
    writer.close()
    saved = load(tmp_path / "cp.json")
    assert saved is not None and saved.offset == 7


def test_remove_writes_nothing_more_and_a_later_flush_returns(tmp_path: Path) -> None:
    writes: list[int] = []
    writer = writer_for(tmp_path, writes)
    writer.advance(5, 2, Counts(read=1), 0.0, 0)
    writer.flush()
    writer.advance(7, 3, Counts(read=2), 0.0, 0)
    writer.remove()
    assert not (tmp_path / "cp.json").exists()
    assert writes == [5]  # the pending state was not written, only to be deleted
    done = threading.Event()

    def flush() -> None:  # what the next file's writer does before its own write
        writer.flush()
        done.set()

    threading.Thread(target=flush, daemon=True).start()
    assert done.wait(60)
    writer.close()  # and closing again does nothing


def test_a_checkpoint_is_the_same_json_as_its_fields(tmp_path: Path) -> None:
    writer = writer_for(tmp_path)
    writer.advance(5, 2, Counts(read=1), 0.0, 0)
    writer.close()
    written = orjson.loads((tmp_path / "cp.json").read_bytes())
    assert written["identity"]["path"] == str((tmp_path / "s.csv").resolve())
    assert written["offset"] == 5 and written["version"] == FORMAT_VERSION
