"""A run over many files works as one run over one file (issue 14, item 5)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import invoke, send_row, summary_of, write_sends_csv
from trackly_migrate import normalize

Row = Callable[[int, int], dict[str, Any]]  # file number, row number -> the row


def write_parts(tmp_path: Path, files: int, per_file: int, row: Row | None = None) -> list[Path]:
    """``files`` CSV files of sends in ``tmp_path / "parts"``, ``per_file`` rows each (by
    default ``send_row`` with the ids one after the other)."""
    folder = tmp_path / "parts"
    folder.mkdir()
    make = row or (lambda part, i: send_row(part * per_file + i))
    return [
        write_sends_csv(folder / f"sends-{part:02d}.csv", [make(part, i) for i in range(per_file)])
        for part in range(files)
    ]


def test_the_phone_cache_lasts_the_whole_run_not_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same recipients in every part, as in an export split by month: each number is
    # worked out by phonenumbers once per run (once per file made a 20-file run half as fast).
    folder = write_parts(
        tmp_path, 3, 20, lambda part, i: send_row(part * 20 + i, to_number=f"+1415555{i:04d}")
    )[0].parent
    calls: Counter[str] = Counter()
    real = normalize.normalize_phone

    def counted(text: str, region: str | None = None) -> str:
        calls[text] += 1
        return real(text, region)

    monkeypatch.setattr(normalize, "normalize_phone", counted)
    result = invoke(["import-sends", str(folder), "--dry-run", "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["read"] == 60
    assert len(calls) == 21  # 20 recipients and the list's number
    assert set(calls.values()) == {1}, calls.most_common(3)


def test_the_next_file_is_sent_while_the_last_answers_of_one_before_are_awaited(
    sandbox_factory, tmp_path: Path
) -> None:
    # One batch a file, each answer held 1 s: a run that waited for a file's last answer
    # before the next file's first request would send them one after the other.
    from datetime import datetime

    from tests.helpers import journal, run_cli

    folder = write_parts(tmp_path, 3, 50)[0].parent
    sandbox = sandbox_factory(latency=(1.0, 1.0))
    args = ["import-sends", str(folder), "--json", "--batch-size", "50", "--concurrency", "4"]
    result = run_cli(args, sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [row["imported"] for row in summary_of(result.stdout)["files"]] == [50, 50, 50]
    entries = [
        entry
        for entry in journal(sandbox, 3)["requests"]
        if entry["path"] == "/api/v2/history/sends"
    ]
    spans = sorted(
        (
            (datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp(), entry)
            for entry in entries
        ),
        key=lambda span: span[0],
    )
    assert [entry["records"] for _, entry in spans] == [50, 50, 50]  # a batch never spans files
    for (start, entry), (next_start, _) in pairwise(spans):
        assert next_start < start + entry["duration_ms"] / 1000, spans


def test_the_run_s_time_is_its_wall_clock_not_the_files_overlapping_times(
    sandbox_factory, tmp_path: Path
) -> None:
    # Twelve one-batch files, each answer held 0.5 s, up to eight in flight: the files' times
    # overlap, and added up they made a run of about 2 s report 6 s or more (and a third of
    # its real rate). Each file's time now starts where the one before it ended.
    import time

    from tests.helpers import run_cli

    folder = write_parts(tmp_path, 12, 1)[0].parent
    sandbox = sandbox_factory(latency=(0.5, 0.5))
    began = time.monotonic()
    result = run_cli(["import-sends", str(folder), "--json"], sandbox=sandbox, cwd=tmp_path)
    wall = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stdout)
    assert summary["imported"] == 12
    assert 0.5 <= summary["elapsed_s"] <= wall  # measured inside the process: less than its life


def test_files_with_one_header_share_a_record_builder_and_others_get_their_own(
    sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parts of one export share their header, so they share the builder compiled for it;
    # a part whose columns come in another order must be read by its own, or its phones
    # would be taken for timestamps.
    import sqlite3

    from tests.helpers import SEND_HEADER
    from trackly_migrate.columns import ColumnMapping
    from trackly_migrate.pipeline import opening
    from trackly_migrate.records import RecordBuilder

    folder = write_parts(
        tmp_path, 3, 10, lambda part, i: send_row(part * 10 + i, to_number=f"+1415666{part}{i:03d}")
    )[0].parent
    reordered = [send_row(100 + i, to_number=f"+14157770{i:03d}") for i in range(10)]
    with (folder / "sends-03.csv").open("w", encoding="utf-8") as handle:
        handle.write(",".join(reversed(SEND_HEADER)) + "\n")
        for row in reordered:
            handle.write(",".join(str(row.get(name, "")) for name in reversed(SEND_HEADER)) + "\n")
    made: list[tuple[str, ...]] = []

    def counted(mapping: ColumnMapping, **options: Any) -> RecordBuilder:
        made.append(mapping.header)
        return RecordBuilder(mapping, **options)

    monkeypatch.setattr(opening, "RecordBuilder", counted)
    result = invoke(["import-sends", str(folder), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stdout)
    assert (summary["read"], summary["imported"]) == (40, 40), summary
    assert made == [tuple(SEND_HEADER), tuple(reversed(SEND_HEADER))]
    assert sandbox.db_path is not None
    with sqlite3.connect(sandbox.db_path) as conn:
        stored = dict(conn.execute("SELECT id, to_number FROM messages WHERE id LIKE 't_0001%'"))
    assert stored == {row["id"]: row["to_number"] for row in reordered}


def test_a_run_over_many_files_holds_one_input_open_at_a_time(
    sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file read to its end is closed when the next one opens, not once its totals are
    # written: thousands of tiny files never hold thousands of open files, and each still
    # counts all its bytes for the progress bar.
    from trackly_migrate.pipeline import opening
    from trackly_migrate.readers import InputSource

    paths = write_parts(tmp_path, 6, 5)
    folder = paths[0].parent
    open_now: set[int] = set()
    most_open = 0
    sources: list[InputSource] = []

    class Tracked(InputSource):
        def __init__(self, path: str, **options: int) -> None:
            nonlocal most_open
            super().__init__(path, **options)
            sources.append(self)
            open_now.add(id(self))
            most_open = max(most_open, len(open_now))

        def close(self) -> None:
            open_now.discard(id(self))
            super().close()

    monkeypatch.setattr(opening, "InputSource", Tracked)
    result = invoke(["import-sends", str(folder), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["imported"] == 30
    assert most_open == 1
    assert [source.bytes_read for source in sources] == [path.stat().st_size for path in paths]


def test_a_finished_file_is_let_go_while_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a file's reading needs (its reader, input, mapping) is not kept once it is
    # finished: a run over 10,000 files kept every one of them, 3 KB each. A dry run
    # finishes each file as its reading ends, so this holds at each opening.
    import gc
    import weakref

    from trackly_migrate.pipeline import chain

    folder = write_parts(tmp_path, 6, 5)[0].parent
    parts: list[weakref.ref[Any]] = []
    alive_at_opening: list[int] = []
    real = chain._open_part

    def tracked(*args: Any, **options: Any) -> Any:
        gc.collect()
        alive_at_opening.append(sum(ref() is not None for ref in parts))
        part, source = real(*args, **options)
        parts.append(weakref.ref(part))
        return part, source

    monkeypatch.setattr(chain, "_open_part", tracked)
    result = invoke(["import-sends", str(folder), "--dry-run", "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["read"] == 30
    # At each opening, the file read just before (still the reading loop's), no other.
    assert alive_at_opening == [0, 1, 1, 1, 1, 1]
