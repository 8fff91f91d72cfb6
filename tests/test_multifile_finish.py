"""What a finished file of a many-file run leaves in the list's checkpoint (issue 14)."""

from __future__ import annotations

import threading
from itertools import pairwise
from pathlib import Path

import pytest

from tests.helpers import send_row, write_sends_csv
from trackly_migrate.checkpoint import Checkpoint, InputIdentity, write_atomic
from trackly_migrate.counts import Counts
from trackly_migrate.pipeline import batch_state
from trackly_migrate.pipeline.batch_state import BatchState, load_state
from trackly_migrate.pipeline.ledger import Ledger
from trackly_migrate.pipeline.list_checkpoint import MAX_UNWRITTEN, ListCheckpoint, ListedCheckpoint
from trackly_migrate.records import Kind
from trackly_migrate.report import Summary


def opened(path: Path, writer: ListCheckpoint) -> ListedCheckpoint:
    """The checkpoint of ``path`` as its opening made it: with its identity then."""
    base = Checkpoint("import-sends", InputIdentity.of(str(path)), {}, 0, 1, {}, None, 0)
    return ListedCheckpoint(base.identity.path, writer.path or Path(), base, writer)


def test_the_list_records_each_file_as_it_is_when_it_finished(tmp_path: Path) -> None:
    unchanged = write_sends_csv(tmp_path / "a.csv", [send_row(i) for i in range(5)])
    grown = write_sends_csv(tmp_path / "b.csv", [send_row(i) for i in range(5, 10)])
    state_path = tmp_path / "list.json"
    state = BatchState("import-sends", [str(unchanged), str(grown)])
    writer = ListCheckpoint(state, state_path, lambda: None, Ledger(tmp_path / "l.json"), no_entry)
    checkpoints = [opened(unchanged, writer), opened(grown, writer)]
    for checkpoint in checkpoints:
        checkpoint.advance(5, 2, Counts(read=1), 0.0, 0)
        checkpoint.flush()  # both under way, in the list
    under_way = load_state(state_path)
    assert under_way is not None and set(under_way.current) == {
        str(unchanged.resolve()),
        str(grown.resolve()),
    }
    write_sends_csv(grown, [send_row(i) for i in range(5, 11)])  # written while imported
    for path, checkpoint in zip([unchanged, grown], checkpoints, strict=True):
        writer.finished(str(path), Summary(kind=Kind.SENDS, input=str(path)), 0, checkpoint)
    writer.close()
    saved = load_state(state_path)
    assert saved is not None
    for path in (unchanged, grown):
        entry = saved.finished_entry(str(path))
        assert entry is not None
        assert entry.identity == InputIdentity.of(str(path))
    assert checkpoints[0].base.identity == InputIdentity.of(str(unchanged))
    assert checkpoints[1].base.identity != InputIdentity.of(str(grown))
    assert saved.current == {}  # finished: no longer under way
    assert [p.name for p in tmp_path.rglob("*.json")] == ["list.json"]  # no file's own


def test_a_file_left_with_nothing_to_resume_leaves_the_list(tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "a.csv", [send_row(1)])
    state_path = tmp_path / "list.json"
    state = BatchState("import-sends", [str(source)])
    writer = ListCheckpoint(state, state_path, lambda: None, Ledger(tmp_path / "l.json"), no_entry)
    checkpoint = opened(source, writer)
    checkpoint.advance(5, 2, Counts(read=1), 0.0, 0)
    checkpoint.flush()
    checkpoint.remove()  # what keep_or_remove does when nothing of it may be stored
    writer.close()
    saved = load_state(state_path)
    assert saved is not None and saved.current == {} and state_path.exists()


def no_entry(path: str, summary: Summary, identity: InputIdentity | None) -> None:
    return None  # nothing for the ledger


def test_files_that_finish_close_together_are_recorded_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [write_sends_csv(tmp_path / f"{n}.csv", [send_row(n)]) for n in range(FILES_AT_ONCE)]
    state_path = tmp_path / "list.json"
    state = BatchState("import-sends", [str(path) for path in paths])
    saves: list[Path] = []
    first_saved = threading.Event()

    def counted(path: Path, data: bytes) -> None:
        write_atomic(path, data)
        saves.append(path)
        first_saved.set()

    monkeypatch.setattr(batch_state, "write_atomic", counted)
    # An interval no test outlasts: what is not written at once waits for close().
    writer = ListCheckpoint(
        state, state_path, lambda: None, Ledger(tmp_path / "l.json"), no_entry, finish_interval=3600
    )
    summaries = [Summary(kind=Kind.SENDS, input=str(path)) for path in paths]
    writer.finished(str(paths[0]), summaries[0], 0, None)
    assert first_saved.wait(60)  # the first file is recorded at once
    for path, summary in zip(paths[1:], summaries[1:], strict=True):
        writer.finished(str(path), summary, 0, None)
    writer.close()  # the others, together, at once
    assert len(saves) == 2
    saved = load_state(state_path)
    assert saved is not None
    assert all(saved.finished_entry(str(path)) is not None for path in paths)


FILES_AT_ONCE = 6  # below MAX_UNWRITTEN // 2, where the writer stops waiting out its interval
assert FILES_AT_ONCE < MAX_UNWRITTEN // 2


def test_a_long_list_is_written_no_more_than_a_tenth_of_the_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each write of the list rewrites every finished file's entry: the next write waits at
    # least WRITE_SPACING times as long as the last one took, or a run over thousands of
    # files would spend its time rewriting them (the disk's slowness simulated here).
    from trackly_migrate.pipeline.list_checkpoint import WRITE_SPACING, write_spacing

    assert write_spacing(0.05, 0.001) == 0.05  # a short list: the usual interval
    assert write_spacing(0.05, 0.03) == pytest.approx(0.3)
    source = write_sends_csv(tmp_path / "a.csv", [send_row(i) for i in range(3)])
    state_path = tmp_path / "list.json"
    state = BatchState("import-sends", [str(source)])
    spans: list[tuple[float, float]] = []
    written = threading.Semaphore(0)

    def slow_write(path: Path, data: bytes) -> None:
        import time

        started = time.monotonic()
        time.sleep(0.02)  # a slow disk, not a wait for an event
        write_atomic(path, data)
        spans.append((started, time.monotonic()))
        written.release()

    monkeypatch.setattr(batch_state, "write_atomic", slow_write)
    writer = ListCheckpoint(
        state, state_path, lambda: None, Ledger(tmp_path / "l.json"), no_entry, interval=0.001
    )
    checkpoint = opened(source, writer)
    for offset in range(1, 5):
        checkpoint.advance(offset, offset + 1, Counts(read=offset), 0.0, 0)
        assert written.acquire(timeout=60)  # each change is written, in its time
    writer.close()
    assert len(spans) >= 4
    for (start, end), (next_start, _) in pairwise(spans):
        assert next_start - end >= WRITE_SPACING * (end - start) * 0.99, spans
