"""What the engine talks to, and what it tells: the dispatcher that sends, the observer that
shows, the checkpointer that keeps the watermark, and the positions and progress they hear of.

Protocols, so that the engine knows no display, process or file; ``dispatch.py``,
``display.py`` and ``checkpoint.py`` hold the real ones.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from trackly_migrate.counts import Counts
from trackly_migrate.pipeline.settle import Settlement


class Dispatcher(Protocol):
    """Sends one segment's records; the future says how the server settled each record.

    ``dispatch.ProcessDispatcher`` (a sender process) and ``dispatch.ThreadDispatcher``.
    """

    def submit(self, records: list[dict[str, Any]]) -> Future[Settlement]: ...

    def current_concurrency(self) -> int: ...

    def requests_in_flight(self) -> int: ...

    def close(self) -> None: ...


class RunObserver(Protocol):
    """What the run tells the outside world (display, log, checkpoint)."""

    def progress(self, state: ProgressState) -> None: ...

    def warning(self, message: str) -> None: ...


class Observer(RunObserver, Protocol):
    """A ``RunObserver`` that also hears about retries and the run's own notes."""

    def retry(self, reason: str, delay: float) -> None: ...

    def info(self, message: str) -> None: ...


class Checkpointer(Protocol):
    """Keeps the resume watermark (``checkpoint.CheckpointWriter``)."""

    def submitted(self, end_offset: int) -> None: ...

    def may_be_stored_until(self, offset: int) -> None: ...

    def advance(
        self, offset: int, line: int, counts: Counts, elapsed_s: float, report_size: int
    ) -> None: ...

    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Position:
    """Just past the last settled record: where a resume starts reading."""

    offset: int
    line: int


@dataclass(frozen=True, slots=True)
class ProgressState:
    counts: Counts  # a copy; ``read`` includes the records read but not settled yet
    bytes_read: int
    total_bytes: int | None
    in_flight: int
    elapsed_s: float
    concurrency: int = 0  # the current limit of requests in flight
