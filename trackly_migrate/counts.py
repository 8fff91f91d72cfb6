"""``Counts``: the run's counters, one type for settlement, summary, checkpoint and progress.

Every record read ends in exactly one of imported, duplicates, rejected_local,
rejected_server, unaccounted or pending; ``duplicates_after_retry`` is a part of
``duplicates``, and the request counters say what it took.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# The month of a record without a readable timestamp: the months always add up to the totals.
UNKNOWN_MONTH = "unknown"
MONTH_FIELDS = ("read", "imported", "duplicates", "rejected", "unaccounted", "pending", "estimated")


def month_of(timestamp: object) -> str:
    """The UTC month (``2025-11``) of a normalized timestamp (``2025-11-15T14:30:00Z``)."""
    if isinstance(timestamp, str) and len(timestamp) >= 7 and timestamp[4] == "-":
        return timestamp[:7]
    return UNKNOWN_MONTH


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
    # Per UTC month ("2025-11", or UNKNOWN_MONTH): the MONTH_FIELDS counters, for comparing
    # with the source platform's monthly counts. ``estimated`` counts the records whose
    # imported/duplicate split was shared out (the API does not say which were duplicates).
    months: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, other: Counts) -> None:
        """Fold ``other`` into these counts, field by field."""
        for name in _NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for month, row in other.months.items():
            add_month(self.months, month, row)

    @property
    def rejected(self) -> int:
        return self.rejected_local + self.rejected_server

    def balanced(self) -> bool:
        """Nothing lost, nothing double counted: every record read is in one outcome."""
        settled = self.imported + self.duplicates + self.rejected + self.unaccounted + self.pending
        return settled == self.read

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _NAMES}


def add_month(months: dict[str, dict[str, int]], month: str, row: dict[str, int]) -> None:
    """Add ``row``'s counters to ``month``'s."""
    target = months.get(month)
    if target is None:
        target = months[month] = dict.fromkeys(MONTH_FIELDS, 0)
    for name, value in row.items():
        target[name] += value


def sorted_months(months: dict[str, dict[str, int]]) -> list[tuple[str, dict[str, int]]]:
    """The months in calendar order, the unknown bucket last."""
    return sorted(months.items(), key=lambda item: (item[0] == UNKNOWN_MONTH, item[0]))


_NAMES = tuple(spec.name for spec in fields(Counts) if spec.name != "months")
# A checkpoint keeps the settled counts only: ``pending`` is what a resume sends again.
_STORED = tuple(name for name in _NAMES if name != "pending")


def to_totals(counts: Counts, elapsed_s: float) -> dict[str, Any]:
    """The checkpoint's ``totals``: the settled counts and the time spent so far.

    Counters at 0 are left out (``from_totals`` starts them at 0): most are, and the list's
    checkpoint of a run over many files keeps and rewrites the totals of every file.
    """
    totals: dict[str, Any] = {name: value for name in _STORED if (value := getattr(counts, name))}
    totals["elapsed_s"] = elapsed_s
    totals["months"] = {
        month: {name: value for name, value in row.items() if value}
        for month, row in counts.months.items()
    }
    return totals


def from_totals(totals: dict[str, Any]) -> tuple[Counts, float]:
    """The counts and time of a checkpoint's ``totals`` (written by this or an earlier version).

    A counter the file does not have starts at 0, as the earlier versions did. A checkpoint
    from before the month table puts what it settled under the unknown month, so that the
    months still add up to the totals.
    """
    counts = Counts()
    for name in _STORED:
        if name in totals:
            setattr(counts, name, int(totals[name]))
    stored = totals.get("months")
    if isinstance(stored, dict):
        for month, row in stored.items():
            add_month(counts.months, str(month), {k: int(row[k]) for k in MONTH_FIELDS if k in row})
    elif counts.read:
        add_month(counts.months, UNKNOWN_MONTH, _settled_row(counts))
    return counts, float(totals.get("elapsed_s", 0.0))


def _settled_row(counts: Counts) -> dict[str, int]:
    return {
        "read": counts.read,
        "imported": counts.imported,
        "duplicates": counts.duplicates,
        "rejected": counts.rejected,
        "unaccounted": counts.unaccounted,
        "pending": counts.pending,
    }


def share_out(accepted: dict[str, int], outcomes: dict[str, int]) -> dict[str, dict[str, int]]:
    """Share one segment's server outcomes (imported, duplicates, unaccounted) over the months
    of the records the server accepted (``accepted``: month → records sent and not rejected).

    The API counts duplicates per request without naming them, so the split is exact only
    when the records are of one month or of one outcome; otherwise it is shared out in input
    order (earlier months take the duplicates first: a re-run of a partly done import finds
    its earlier part stored) and those records are counted as ``estimated``. Either way every
    month's counts add up to its records, and every outcome's months to the outcome.
    """
    months = sorted(accepted, key=lambda month: (month == UNKNOWN_MONTH, month))
    kinds = [name for name in ("duplicates", "imported", "unaccounted") if outcomes.get(name)]
    rows = {month: dict.fromkeys(("imported", "duplicates", "unaccounted"), 0) for month in months}
    live = [month for month in months if accepted[month]]
    exact = len(live) <= 1 or len(kinds) <= 1
    left = {name: outcomes.get(name, 0) for name in kinds}
    for month in months:
        room = accepted[month]
        for name in kinds:
            taken = min(room, left[name])
            rows[month][name] += taken
            left[name] -= taken
            room -= taken
        if not exact:
            rows[month]["estimated"] = accepted[month]
    return rows
