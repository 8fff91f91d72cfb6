"""``Counts``: the run's counters, one type for settlement, summary, checkpoint and progress.

Every record read ends in exactly one of imported, duplicates, rejected_local,
rejected_server, unaccounted or pending; ``duplicates_after_retry`` is a part of
``duplicates``, and the request counters say what it took.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(slots=True)
class Counts:
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    duplicates_after_retry: int = 0
    rejected_local: int = 0
    rejected_server: int = 0
    unaccounted: int = 0
    pending: int = 0
    requests: int = 0
    retries: int = 0
    itemize_requests: int = 0

    def add(self, other: Counts) -> None:
        """Fold ``other`` into these counts, field by field."""
        for name in _NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def rejected(self) -> int:
        return self.rejected_local + self.rejected_server

    def balanced(self) -> bool:
        """Nothing lost, nothing double counted: every record read is in one outcome."""
        settled = self.imported + self.duplicates + self.rejected + self.unaccounted + self.pending
        return settled == self.read

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


_NAMES = tuple(spec.name for spec in fields(Counts))
# A checkpoint keeps the settled counts only: ``pending`` is what a resume sends again.
_STORED = tuple(name for name in _NAMES if name != "pending")


def to_totals(counts: Counts, elapsed_s: float) -> dict[str, Any]:
    """The checkpoint's ``totals``: the settled counts and the time spent so far."""
    totals: dict[str, Any] = {name: getattr(counts, name) for name in _STORED}
    totals["elapsed_s"] = elapsed_s
    return totals


def from_totals(totals: dict[str, Any]) -> tuple[Counts, float]:
    """The counts and time of a checkpoint's ``totals`` (written by this or an earlier version).

    A counter the file does not have starts at 0, as the earlier versions did.
    """
    counts = Counts(**{name: int(totals[name]) for name in _STORED if name in totals})
    return counts, float(totals.get("elapsed_s", 0.0))
