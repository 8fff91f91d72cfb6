"""The garbage collector during an import's reading loop (pipeline/collector.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import dry_run_sends, send_row, write_sends_csv
from tests.test_core_api import Recorder
from trackly_migrate.pipeline.collector import BULK_THRESHOLD, tuned_for_bulk


def test_tuned_for_bulk_raises_the_threshold_freezes_and_restores() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with tuned_for_bulk():
        assert gc.get_threshold()[0] >= BULK_THRESHOLD
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > frozen_before
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_tuned_for_bulk_restores_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), tuned_for_bulk():
        raise RuntimeError("stop")
    assert gc.get_threshold() == before


def test_tuned_for_bulk_still_collects_cycles() -> None:
    with tuned_for_bulk():
        for _ in range(3 * BULK_THRESHOLD):
            cycle: list[Any] = []
            cycle.append(cycle)
        collected = gc.collect()
    assert collected > 0


@pytest.fixture
def collections() -> Iterator[list[int]]:
    seen = [0, 0, 0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen[info["generation"]] += 1

    gc.collect()
    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)


def test_a_dry_run_of_20000_rows_collects_rarely(tmp_path: Path, collections: list[int]) -> None:
    # With CPython's defaults (700 allocations) this run collected the young generation
    # 100 times, and 26 times tuned, some of them before the reading loop; the count is of
    # allocations, not of time, so it is the same on a loaded machine.
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(20_000)])
    outcome = dry_run_sends(source, Recorder())
    assert outcome.summary.counts.read == 20_000
    assert collections[2] == 0
    assert collections[0] < 50
