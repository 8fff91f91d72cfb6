"""Stopping a run from outside: the two events the engine looks at, and the signals that set them.

Ctrl-C / SIGTERM come in steps: first, stop reading and let in-flight requests finish;
second, wait for nothing more; third, raise KeyboardInterrupt wherever the run is. The
engine looks at the events only between steps, so a signal never cuts a segment's
accounting in half.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class StopEvents:
    """``stop``: read no more, let in-flight requests finish (within ``Limits.grace_s``);
    ``abandon``: wait for nothing more. A library caller sets them from any thread."""

    stop: threading.Event = field(default_factory=threading.Event)
    abandon: threading.Event = field(default_factory=threading.Event)


class StopOnSignal:
    """Sets a run's ``StopEvents`` on SIGINT and SIGTERM while the ``with`` block runs.

    The handler only sets flags (and writes one line straight to the file descriptor): it may
    run while the main thread holds the display's lock, so it must not take it.
    """

    def __init__(self) -> None:
        self.events = StopEvents()
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        for number in STOP_SIGNALS:
            # An ignored signal stays ignored: that is how a shell keeps a background job
            # (``cmd &`` in a script) or ``nohup`` out of reach of the terminal's Ctrl-C.
            if signal.getsignal(number) != signal.SIG_IGN:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.events.abandon.is_set():
            raise KeyboardInterrupt
        if self.events.stop.is_set():
            self.events.abandon.set()
            _say("stopping now: the requests in flight are abandoned (--resume sends them)")
            return
        self.signal_number = number
        self.events.stop.set()
        _say("stopping: finishing the requests in flight (press Ctrl-C again to abandon them)")

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def _say(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(sys.stderr.fileno(), f"warning: {message}\n".encode())
