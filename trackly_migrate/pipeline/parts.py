"""What the engine (``engine.py``) runs over: the *parts* of a run (one input each, with the
summary, checkpoint and report its segments settle into) and the *segments* they are cut into
(the records of one request, plus the rows rejected locally while reading them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from trackly_migrate.counts import add_month, share_out
from trackly_migrate.pipeline.ports import Checkpointer, Position
from trackly_migrate.pipeline.settle import Settlement
from trackly_migrate.readers import RawRow
from trackly_migrate.records import RecordBuilder
from trackly_migrate.report import ReportRow, Summary


@dataclass(frozen=True)
class EngineInput:
    """The rows to import and where they start (past what a resumed run settled)."""

    rows: Iterable[RawRow]
    builder: RecordBuilder
    bytes_read: Callable[[], int] = lambda: 0
    total_bytes: int | None = None
    start: Position = field(default_factory=lambda: Position(0, 1))
    # After a crash, records up to here may have been stored by batches that were in
    # flight: their duplicates are this migration's own, not old ones.
    possibly_stored_until: int = 0


class ReportSink(Protocol):
    """Where a part's rejected rows go (``report.ErrorReport``, or a file's view of a run's)."""

    def write(self, row: ReportRow) -> None: ...

    def flush(self) -> int: ...

    def close(self) -> None: ...


@dataclass(eq=False)
class Part:
    """One input of an engine run, and what its segments settle into."""

    source: EngineInput
    report: ReportSink
    summary: Summary
    checkpoint: Checkpointer | None = None
    # Filled in by the engine while the run goes:
    sent_until: int = 0  # just past the last settled segment that sent requests
    read_count: int = 0  # records read by this run, settled or not
    unsettled: int = 0  # segments submitted and not settled yet
    reading_done: bool = False  # read to its end (or stopped): no more segments come
    stopped_early: bool = False
    started: float = 0.0
    base_elapsed: float = 0.0  # the time the resumed run spent on it
    resumed_read: int = 0  # records the resumed run accounted for

    def update_elapsed(self) -> None:
        self.summary.elapsed_s = self.base_elapsed + time.monotonic() - self.started


@dataclass
class Segment:
    part: Part
    number: int
    start: Position
    end: Position
    records: list[dict[str, Any]] = field(default_factory=list)
    valid: int = 0  # how many records were sent (the list itself goes to the dispatcher)
    rows: list[RawRow] = field(default_factory=list)  # the raw row of each record
    local: list[ReportRow] = field(default_factory=list)
    read: int = 0
    months: dict[str, int] = field(default_factory=dict)  # month → valid records read
    local_months: dict[str, int] = field(default_factory=dict)  # month → rejected locally

    def month_rows(self, settlement: Settlement, *, dry_run: bool) -> dict[str, dict[str, int]]:
        """The segment's counts per month (``counts.share_out`` says what is exact)."""
        rows: dict[str, dict[str, int]] = {}
        for month, number in self.local_months.items():
            add_month(rows, month, {"read": number, "rejected": number})
        accepted = dict(self.months)
        for month, number in settlement.rejected_months.items():
            accepted[month] = accepted.get(month, 0) - number
            add_month(rows, month, {"rejected": number})
        for month, number in self.months.items():
            add_month(rows, month, {"read": number})
        if dry_run:
            for month, number in accepted.items():
                add_month(rows, month, {"pending": number})
            return rows
        outcomes = settlement.counts
        shared = share_out(
            accepted,
            {
                "imported": outcomes.imported,
                "duplicates": outcomes.duplicates,
                "unaccounted": outcomes.unaccounted,
            },
        )
        for month, row in shared.items():
            add_month(rows, month, row)
        return rows
