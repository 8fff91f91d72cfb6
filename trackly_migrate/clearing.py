"""The destructive clear: its plan in words, the exact request, and the one safe way to send it.

Clearing cannot be undone and its scope is uneven (docs/api-behaviour.md): sends and clicks
are limited to imported history, but revenue means ALL revenue of the account, live sends'
included. So the time scope is always explicit (``--before`` or ``--all-time``: never "no
bound" by omission, the trap of the reference page api-docs/003), the plan says exactly what
goes, and a request whose outcome is unknown is never sent again blindly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from trackly_migrate.client import TracklyClient
from trackly_migrate.errors import UsageError
from trackly_migrate.normalize import format_utc, to_utc

ENTITIES = ("sends", "clicks", "revenue")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

SCOPES = {
    "sends": "imported send records only; live sends are never touched",
    "clicks": "clicks on imported messages only",
    "revenue": "ALL revenue records of the account, live sends' revenue included",
}


@dataclass(frozen=True)
class ClearPlan:
    entities: tuple[str, ...]
    before: datetime | None  # None: all time, said explicitly with --all-time
    zone: tzinfo | None = None  # --timezone: the plan shows the cut-off in it

    def body(self) -> dict[str, Any]:
        """The exact request body; ``confirm`` is only ever sent as JSON ``true``."""
        body: dict[str, Any] = {"entities": list(self.entities)}
        if self.before is not None:
            body["before_date"] = format_utc(self.before)
        body["confirm"] = True
        return body

    @property
    def before_text(self) -> str | None:
        return format_utc(self.before) if self.before is not None else None

    def time_scope(self) -> str:
        """The time scope in words, exclusive bound included, also in the user's zone."""
        if self.before is None:
            return "all time: every matching record, whatever its date"
        utc = self.before.astimezone(UTC)
        try:
            if self.zone is not None:
                local = f"{utc.astimezone(self.zone):%Y-%m-%d %H:%M:%S %Z} in {self.zone}"
            else:
                local = f"{utc.astimezone():%Y-%m-%d %H:%M:%S %Z}, this computer's time zone"
        except OverflowError:  # 9999-12-31T23:30Z is in the year 10000 east of UTC
            local = "beyond the calendar in that time zone"
        return (
            f"records stamped before {utc:%Y-%m-%d %H:%M:%S} UTC ({local}); "
            "a record stamped exactly then is kept"
        )


def parse_entities(names: Iterable[str]) -> tuple[str, ...]:
    """Entity names in the API's order, repeats collapsed; a usage error for unknown ones."""
    chosen = {name.strip().lower() for name in names}
    unknown = sorted(chosen - set(ENTITIES))
    if unknown:
        raise UsageError(
            f"Unknown entity {', '.join(unknown)}.",
            hint="Choose one or more of: sends, clicks, revenue.",
        )
    if not chosen:
        raise UsageError("Name what to clear: sends, clicks and/or revenue.")
    return tuple(name for name in ENTITIES if name in chosen)


def parse_cutoff(text: str, zone: tzinfo | None) -> datetime:
    """``--before``: a date (midnight UTC), or a datetime with an offset or ``--timezone``."""
    candidate = text.strip()
    if _DATE_ONLY.match(candidate):
        try:
            return datetime.fromisoformat(candidate).replace(tzinfo=UTC)
        except ValueError as exc:
            raise UsageError(f"--before {text!r} is not a real date ({exc}).") from None
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        raise UsageError(
            f"--before {text!r} is not an ISO 8601 date or datetime.",
            hint="For example --before 2025-12-01 or --before 2025-12-01T00:00:00Z.",
        ) from None
    if moment.tzinfo is None:
        if zone is None:
            raise UsageError(
                f"--before {text!r} has no UTC offset.",
                hint="Add one (Z or +02:00) or pass --timezone Area/City.",
            )
        moment = moment.replace(tzinfo=zone)
    try:
        return to_utc(moment)
    except ValueError:
        raise UsageError(
            f"--before {text!r} falls outside the calendar in UTC (0001-01-01 to 9999-12-31).",
            hint="Give a cutoff between 0001-01-01 and 9999-12-31 in UTC, or use --all-time.",
        ) from None


def make_plan(
    entities: Iterable[str], *, before: str | None, all_time: bool, zone: tzinfo | None
) -> ClearPlan:
    """The plan, with the time scope said explicitly one way or the other."""
    if before is not None and all_time:
        raise UsageError("Give either --before or --all-time, not both.")
    if before is None and not all_time:
        raise UsageError(
            "Say how far back to clear.",
            hint="--before 2025-12-01 clears records stamped before that moment; --all-time "
            "clears every matching record whatever its date.",
        )
    cutoff = parse_cutoff(before, zone) if before is not None else None
    return ClearPlan(parse_entities(entities), cutoff, zone)


def is_future(plan: ClearPlan, now: datetime | None = None) -> bool:
    return plan.before is not None and plan.before > (now or datetime.now(UTC))


@dataclass(frozen=True)
class ClearResult:
    cleared: dict[str, int]
    before_date: str | None

    def to_json(self) -> dict[str, Any]:
        return {"cleared": self.cleared, "before_date": self.before_date}


def execute(client: TracklyClient, plan: ClearPlan) -> ClearResult:
    """Send the clear and read the counts. The client resends it only when it surely had no
    effect (``client.may_resend``); an answer lost after sending is ``OutcomeUnknownError``."""
    cleared = client.clear(plan.body())
    counts = {name: cleared.get(name) for name in plan.entities}
    return ClearResult(
        {name: value if isinstance(value, int) else -1 for name, value in counts.items()},
        plan.before_text,
    )
