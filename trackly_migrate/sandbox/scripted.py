"""Scripted faults: "the next N requests to this path fail this way", queued on purpose.

The random faults (``faults.py``) say how often; these say exactly which requests, so a test
or a rehearsal can produce each failure the client must survive, once, where it wants it:
a 500, a proxy's HTML 502/504, per-record ``save_error``, counts that do not add up, an
answer cut short or sent slowly, an answer lost after the commit, a 429 with a chosen
``Retry-After``. They are queued through ``POST /_sandbox/faults`` or ``SandboxConfig.faults``
and taken first in, first out by the requests whose path matches.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

SENDS_PATH = "/api/v2/history/sends"
CLICKS_PATH = "/api/v2/history/clicks"
BULK_PATHS = (SENDS_PATH, CLICKS_PATH)

# kind -> what it does (the text is also the error message's list of kinds).
SCRIPTED_KINDS: dict[str, str] = {
    "internal_error": "500 with a JSON internal_error body; nothing is stored",
    "bad_gateway": "502 with a proxy's HTML body; nothing is stored",
    "gateway_timeout": "504 with a proxy's HTML body; nothing is stored",
    "rate_limited": "429 with Retry-After: retry_after seconds; nothing is stored",
    "save_error": "the records at indexes answer save_error and are not stored",
    "count_mismatch": "counts that do not add up (mode invalid_phones_apart, with optional "
    "indexes answered invalid_phone, or undercount)",
    "truncated_body": "stored, then the answer is cut off halfway and the connection closed",
    "slow_body": "stored, then the answer trickles out over `seconds` seconds",
    "drop": "stored, then the connection is closed without a byte of answer",
}
COUNT_MISMATCH_MODES = ("invalid_phones_apart", "undercount")
_IN_APP = frozenset({"save_error", "count_mismatch"})  # applied by the bulk handler
_FIELDS = frozenset({"kind", "path", "times", "retry_after", "indexes", "mode", "seconds"})
MAX_TIMES = 1_000_000
MAX_SLOW_SECONDS = 300.0


class FaultSpecError(ValueError):
    """A fault description that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class ScriptedFault:
    """One queued fault; ``times`` requests matching ``path`` (None: any /api path) get it."""

    kind: str
    path: str | None = None
    times: int = 1
    retry_after: int = 1  # rate_limited
    indexes: tuple[int, ...] = ()  # save_error
    mode: str = "invalid_phones_apart"  # count_mismatch (indexes: records made invalid_phone)
    seconds: float = 1.0  # slow_body

    @property
    def in_app(self) -> bool:
        """True when the bulk handler applies it (the others act on the HTTP exchange)."""
        return self.kind in _IN_APP

    @property
    def label(self) -> str:
        """How the request journal names it once applied: ``scripted save_error (records 3 7)``.

        No comma: the journal joins a request's faults with ", ".
        """
        detail = {
            "rate_limited": f"retry after {self.retry_after} s",
            "save_error": "records " + " ".join(map(str, self.indexes)),
            "count_mismatch": " ".join([self.mode, *map(str, self.indexes)]),
            "slow_body": f"over {self.seconds:g} s",
        }.get(self.kind)
        return f"scripted {self.kind}" + (f" ({detail})" if detail else "")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["indexes"] = list(self.indexes)
        return data


def parse_fault(data: Any) -> ScriptedFault:
    """Check a fault description (decoded JSON, or a ScriptedFault) and return it."""
    if isinstance(data, ScriptedFault):
        data = data.to_json()
    if not isinstance(data, dict):
        raise FaultSpecError("a fault must be a JSON object with at least a 'kind'")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise FaultSpecError(
            f"unknown field(s) {', '.join(unknown)}; a fault has {', '.join(sorted(_FIELDS))}"
        )
    kind = data.get("kind")
    if kind not in SCRIPTED_KINDS:
        kinds = "; ".join(f"{name}: {what}" for name, what in SCRIPTED_KINDS.items())
        raise FaultSpecError(f"unknown fault kind {kind!r}; the kinds are {kinds}")
    path = _path(data.get("path"), kind)
    fault = ScriptedFault(
        kind=kind,
        path=path,
        times=_integer(data, "times", 1, low=1, high=MAX_TIMES),
        retry_after=_integer(data, "retry_after", 1, low=0, high=86_400),
        indexes=_indexes(data.get("indexes"), kind),
        mode=_mode(data.get("mode", "invalid_phones_apart"), path, kind),
        seconds=_seconds(data.get("seconds", 1.0)),
    )
    if fault.kind == "count_mismatch" and fault.mode == "undercount" and fault.indexes:
        raise FaultSpecError("indexes goes with mode invalid_phones_apart, not undercount")
    return fault


def _path(value: Any, kind: str) -> str | None:
    if value is None:
        if kind in _IN_APP:
            raise FaultSpecError(f"a {kind} fault needs a path: {' or '.join(BULK_PATHS)}")
        return None
    if not isinstance(value, str) or not (value == "/api" or value.startswith("/api/")):
        raise FaultSpecError(f"path must be an API path such as {SENDS_PATH}, not {value!r}")
    if kind in _IN_APP and value not in BULK_PATHS:
        raise FaultSpecError(f"a {kind} fault applies to {' or '.join(BULK_PATHS)} only")
    return value


def _integer(data: dict[str, Any], name: str, default: int, *, low: int, high: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultSpecError(f"{name} must be an integer from {low} to {high}, not {value!r}")
    return value


def _indexes(value: Any, kind: str) -> tuple[int, ...]:
    if value is None:
        if kind == "save_error":
            raise FaultSpecError("a save_error fault needs indexes: a list of record positions")
        return ()
    if kind not in _IN_APP:
        raise FaultSpecError("indexes belongs to save_error and count_mismatch faults only")
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 1000 for i in value)
    ):
        raise FaultSpecError("indexes must be a non-empty list of integers from 0 to 999")
    return tuple(sorted(set(value)))


def _mode(value: Any, path: str | None, kind: str) -> str:
    if value not in COUNT_MISMATCH_MODES:
        raise FaultSpecError(f"mode must be one of {', '.join(COUNT_MISMATCH_MODES)}")
    if kind == "count_mismatch" and value == "invalid_phones_apart" and path != SENDS_PATH:
        raise FaultSpecError(f"invalid_phones_apart applies to {SENDS_PATH} only")
    return str(value)


def _seconds(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_SLOW_SECONDS
    ):
        raise FaultSpecError(f"seconds must be a number above 0 and up to {MAX_SLOW_SECONDS:g}")
    return float(value)


@dataclass
class _Queued:
    fault: ScriptedFault
    left: int


@dataclass
class FaultQueue:
    """The queued faults, taken first in, first out by the requests they match."""

    initial: tuple[ScriptedFault, ...] = ()
    injected: Counter[str] = field(default_factory=Counter)
    _queue: list[_Queued] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to the configured faults (as on a fresh start)."""
        with self._lock:
            self._queue = [_Queued(fault, fault.times) for fault in self.initial]
            self.injected = Counter()

    def add(self, faults: Iterable[ScriptedFault]) -> None:
        with self._lock:
            self._queue.extend(_Queued(fault, fault.times) for fault in faults)

    def clear(self) -> int:
        """Drop every queued fault; returns how many requests' worth were left."""
        with self._lock:
            left = sum(item.left for item in self._queue)
            self._queue = []
            return left

    def take(self, path: str) -> ScriptedFault | None:
        """The fault for this request (counted as injected), or None."""
        with self._lock:
            for item in self._queue:
                if item.fault.path is None or item.fault.path == path:
                    item.left -= 1
                    if item.left == 0:
                        self._queue.remove(item)
                    self.injected[item.fault.kind] += 1
                    return item.fault
        return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            queued = [{**item.fault.to_json(), "left": item.left} for item in self._queue]
            return {"queued": queued, "injected": dict(self.injected)}


def distort_counts(body: dict[str, Any], mode: str) -> dict[str, Any]:
    """A bulk answer whose counts no longer add up, as a server that miscounts would send.

    ``invalid_phones_apart``: invalid phones are left out of ``error_count`` (the case the
    client's tolerance rule exists for; the fault's ``indexes`` are answered invalid_phone).
    ``undercount``: one stored record is left out of ``success_count`` (nothing explains it).
    """
    distorted = dict(body)
    if mode == "invalid_phones_apart":
        distorted["error_count"] -= body.get("invalid_phones", 0)
    elif body["success_count"] > 0:
        distorted["success_count"] -= 1
    return distorted
