"""The request journal: the last N ``/api`` requests, as ``GET /_sandbox/requests`` shows them.

Two ASGI layers fill it, one on each side of the fault layer:

- ``JournalMiddleware``, outermost, times every ``/api`` request and writes its entry once
  everything (faults included) is done. It passes uvicorn's ``send`` on untouched, because
  dropping a connection needs that very callable (see ``faults.drop_connection``).
- ``JournalProbe``, innermost, sees what the routes answer: the status and, when bodies are
  journaled, the response body.

Both, the fault layer and the handlers leave their part in the request's ASGI scope (one
dict per request, shared by every layer): the handlers note the record count and the
answer's counts they computed anyway, so nothing is parsed twice. The journal is a bounded
deque touched only from the event loop: no lock, and O(1) per request.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_SIZE = 1000
MAX_BODY_BYTES = 64 * 1024  # a journaled body is cut here: a 1,000-record body is ~250 kB

# Keys of the request's scope; "sandbox." keeps them apart from ASGI's and Starlette's.
ENTRY = "sandbox.journal"  # this request's entry (a dict), created by JournalMiddleware
FAULTS = "sandbox.faults"  # faults applied (list of str), appended by the fault layer


def redact_key(key: str) -> str | None:
    """Enough of a key to tell two apart, never enough to use one: ``trk_…89ab``."""
    if not key:
        return None
    if len(key) < 12:
        return "…"
    return f"{key[:4]}…{key[-4:]}"


def note(scope: MutableMapping[str, Any], **facts: Any) -> None:
    """Add facts (``records=``, ``counts=``) to the request's journal entry, if it has one."""
    entry = scope.get(ENTRY)
    if entry is not None:
        entry.update(facts)


def answer_counts(body: dict[str, Any]) -> dict[str, Any]:
    """The counts of an import answer: everything but its list of errors."""
    return {name: value for name, value in body.items() if name != "errors"}


class Journal:
    """The last ``size`` /api requests; ``bodies`` also keeps request and response bodies."""

    def __init__(self, size: int = DEFAULT_SIZE, *, bodies: bool = False) -> None:
        if size < 1:
            raise ValueError(f"the journal size must be at least 1, not {size}")
        self.size = size
        self.bodies = bodies
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self.total = 0  # requests journaled since the start (or the last reset)

    def add(self, entry: dict[str, Any]) -> None:
        self.total += 1
        entry["seq"] = self.total
        self._entries.append(entry)

    def latest(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` entries, newest first (copies: the caller may change them)."""
        newest = [dict(self._entries[-n]) for n in range(1, min(limit, len(self._entries)) + 1)]
        return newest

    def clear(self) -> None:
        self._entries.clear()
        self.total = 0


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _body_text(chunks: list[bytes]) -> str:
    data = b"".join(chunks)
    text = data[:MAX_BODY_BYTES].decode("utf-8", errors="replace")
    return text if len(data) <= MAX_BODY_BYTES else text + f"… ({len(data):,} bytes in all)"


class JournalMiddleware:
    """Outermost layer: one journal entry per /api request, written when it is over."""

    def __init__(self, app: ASGIApp, journal: Journal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "method": scope["method"],
            "path": scope["path"],
            "key": redact_key(_header(scope, b"x-api-key")),
            "status": None,
            "records": None,
            "fault": None,
            "counts": None,
        }
        scope[ENTRY] = entry
        scope[FAULTS] = []
        try:
            await self.app(scope, receive, send)
        finally:
            faults: list[str] = scope[FAULTS]
            entry["fault"] = ", ".join(faults) or None
            if entry["status"] is None and faults:  # answered by the fault layer, not the routes
                entry["status"] = _FAULT_STATUS.get(faults[-1].split(" (")[0])
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            self.journal.add(entry)


# The status of an answer the fault layer gives itself (the routes never saw the request).
# A scripted fault's label is "scripted <kind>", details in parentheses (ScriptedFault.label).
_FAULT_STATUS = {
    "fail": 503,
    "rate_limited": 429,
    "scripted internal_error": 500,
    "scripted bad_gateway": 502,
    "scripted gateway_timeout": 504,
    "scripted rate_limited": 429,
}


class JournalProbe:
    """Innermost layer: the status the routes answered, and the bodies when journaled."""

    def __init__(self, app: ASGIApp, journal: Journal) -> None:
        self.app = app
        self.journal = journal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = scope.get(ENTRY)
        if entry is None:
            await self.app(scope, receive, send)
            return
        bodies = self.journal.bodies
        sent: list[bytes] = []
        received: list[bytes] = []

        async def probing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received.append(message.get("body", b""))
            return message

        async def probing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            elif message["type"] == "http.response.body" and bodies:
                sent.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, probing_receive if bodies else receive, probing_send)
        finally:
            if bodies:
                entry["request_body"] = _body_text(received)
                entry["response_body"] = _body_text(sent)
