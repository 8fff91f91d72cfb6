"""How soon a waiting thread gets the interpreter during an import (pipeline/switching.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import dry_run_sends, send_row, write_sends_csv
from tests.test_core_api import Recorder
from trackly_migrate.pipeline.ports import ProgressState
from trackly_migrate.pipeline.switching import SWITCH_INTERVAL_S, prompt_switches


def about(seconds: float) -> object:
    """CPython keeps the interval in whole microseconds."""
    return pytest.approx(seconds, rel=0.01)


@pytest.fixture
def default_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # CPython's default, whatever another test left
    try:
        yield 0.005
    finally:
        sys.setswitchinterval(before)


def test_the_interval_is_short_within_the_block_and_restored_after(
    default_interval: float,
) -> None:
    with prompt_switches():
        assert sys.getswitchinterval() == about(SWITCH_INTERVAL_S)
    assert sys.getswitchinterval() == about(default_interval)


def test_the_interval_is_restored_after_an_error(default_interval: float) -> None:
    with pytest.raises(RuntimeError), prompt_switches():
        raise RuntimeError("stop")
    assert sys.getswitchinterval() == about(default_interval)


def test_a_shorter_interval_set_by_the_caller_is_kept(default_interval: float) -> None:
    sys.setswitchinterval(0.0002)
    with prompt_switches():
        assert sys.getswitchinterval() == about(0.0002)
    assert sys.getswitchinterval() == about(0.0002)


class IntervalRecorder(Recorder):
    """Notes the switch interval each time the reading loop reports progress."""

    def __init__(self) -> None:
        super().__init__()
        self.intervals: list[float] = []

    def progress(self, state: ProgressState) -> None:
        super().progress(state)
        self.intervals.append(sys.getswitchinterval())


def test_an_import_reads_with_the_short_interval_and_restores_it(
    tmp_path: Path, default_interval: float
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3_000)])
    observer = IntervalRecorder()
    outcome = dry_run_sends(source, observer)
    assert outcome.summary.counts.read == 3_000
    assert SWITCH_INTERVAL_S in [about(seen) for seen in observer.intervals]
    assert sys.getswitchinterval() == about(default_interval)
