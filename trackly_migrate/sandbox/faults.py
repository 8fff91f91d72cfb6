"""Fault injection for the /api routes: latency, proxy 503s, rate limiting, dropped connections.

Two sources: random faults at configured rates (``FaultInjector``), and scripted faults
queued for chosen requests (``scripted.FaultQueue``), which take precedence.

Everything a real network and a real API do to a client that the happy path never shows.
Draws come from one ``random.Random(fault_seed)``: a given seed and the same sequence of
requests give the same faults. Each request draws its numbers in a fixed order (delay, fail,
drop) whatever happens to it, so one fault never shifts the draws of the next request.

``/_sandbox/*`` is never faulted: the tests and the CLI must always be able to inspect it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trackly_migrate.sandbox.scripted import FaultQueue, ScriptedFault

logger = logging.getLogger("trackly_migrate.sandbox")

_DURATION = re.compile(r"\s*(?P<value>[0-9]*\.?[0-9]+)\s*(?P<unit>ms|s)?\s*")

# What nginx answers when its upstream is down: HTML, not JSON, as a client meets it in life.
PROXY_503_BODY = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    b"<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def _proxy_page(status: int, reason: str) -> bytes:
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n"
        f"<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


INTERNAL_ERROR_BODY = b'{"error":"internal_error","message":"An unexpected server error occurred."}'
# Scripted faults answered before the app runs: (status, body, content type).
_EARLY_ANSWERS: dict[str, tuple[int, bytes, bytes]] = {
    "internal_error": (500, INTERNAL_ERROR_BODY, b"application/json"),
    "bad_gateway": (502, _proxy_page(502, "Bad Gateway"), b"text/html"),
    "gateway_timeout": (504, _proxy_page(504, "Gateway Time-out"), b"text/html"),
}
# Where the bulk handler finds a scripted fault it must apply (save_error, count_mismatch).
SCOPE_FAULT_KEY = "trackly.scripted_fault"
# The faults applied to a request (list of str), read by the request journal (journal.FAULTS).
JOURNAL_FAULTS = "sandbox.faults"
_SLOW_PIECES = 10

FAULT_KINDS = ("latency", "fail", "rate_limited", "drop")


def parse_latency(text: str) -> tuple[float, float]:
    """Parse a latency option: "0.1", "100ms", "0.05-0.2" or "50ms-200ms" (seconds by default).

    Returns (low, high) in seconds; a single value gives (x, x).
    """
    parts = text.split("-")
    if len(parts) not in (1, 2):
        raise ValueError(_latency_message(text))
    low, high = (_seconds(part, text) for part in (parts[0], parts[-1]))
    if low > high:
        raise ValueError(f"latency range {text!r} runs backwards: the low end comes first")
    return low, high


def _seconds(part: str, text: str) -> float:
    match = _DURATION.fullmatch(part)
    if match is None:
        raise ValueError(_latency_message(text))
    value = float(match["value"])
    return value / 1000 if match["unit"] == "ms" else value


def _latency_message(text: str) -> str:
    return (
        f"invalid latency {text!r}: use seconds or milliseconds, fixed or a range, "
        'e.g. "0.1", "100ms", "0.05-0.2", "50ms-200ms"'
    )


@dataclass(frozen=True)
class FaultPlan:
    """The faults drawn for one request."""

    delay: float
    fail: bool
    drop: bool


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class FaultInjector:
    """Decides the faults of each /api request and counts the ones injected."""

    latency: tuple[float, float] | None = None
    fail_rate: float = 0.0
    drop_rate: float = 0.0
    rate_limit: float | None = None
    fault_seed: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(init=False)
    _buckets: dict[str, _Bucket] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for name, rate in (("fail_rate", self.fail_rate), ("drop_rate", self.drop_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if self.rate_limit is not None and not self.rate_limit > 0:
            raise ValueError(f"rate_limit must be a positive number, not {self.rate_limit}")
        if self.latency is not None and not 0 <= self.latency[0] <= self.latency[1]:
            raise ValueError(f"latency must be a range 0 <= low <= high, not {self.latency}")
        self.reset()

    def reset(self) -> None:
        """Start the draws and the counts again (as on a fresh start)."""
        self._rng = random.Random(self.fault_seed)
        self._buckets = {}
        self.counts = dict.fromkeys(FAULT_KINDS, 0)

    def plan(self) -> FaultPlan:
        # Always three draws, in this order, so the sequence is reproducible.
        low, high = self.latency or (0.0, 0.0)
        delay = self._rng.uniform(low, high)
        fail = self._rng.random() < self.fail_rate
        drop = self._rng.random() < self.drop_rate
        return FaultPlan(delay, fail, drop)

    def retry_after(self, key: str) -> int | None:
        """None if the key may make a request now, else the whole seconds to wait (>= 1).

        A token bucket per key: it holds at most one second's worth of requests (at least
        one), and refills at ``rate_limit`` tokens a second.
        """
        if self.rate_limit is None:
            return None
        now = time.monotonic()
        capacity = max(1.0, self.rate_limit)
        bucket = self._buckets.setdefault(key, _Bucket(capacity, now))
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * self.rate_limit)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate_limit))


ResponseHook = Callable[[str, str, int], None]


class FaultMiddleware:
    """Outermost ASGI layer: applies the faults to /api requests and reports every answer.

    It must sit directly on uvicorn, because dropping a connection needs uvicorn's own
    ``send`` (see ``drop_connection``).
    """

    def __init__(
        self,
        app: ASGIApp,
        injector: FaultInjector,
        on_response: ResponseHook,
        known_key: Callable[[str], bool] = lambda key: bool(key),
        queue: FaultQueue | None = None,
    ) -> None:
        self.app = app
        self.injector = injector
        self.queue = queue if queue is not None else FaultQueue()
        self.on_response = on_response
        # Only keys of an account are rate limited: an unknown key gets its 401 at once,
        # and never grows a bucket.
        self.known_key = known_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        plan = self.injector.plan()
        applied = scope.setdefault(JOURNAL_FAULTS, [])
        if plan.delay > 0:
            self.injector.counts["latency"] += 1
            applied.append(f"latency {plan.delay * 1000:.1f} ms")
            await asyncio.sleep(plan.delay)
        scripted = self.queue.take(path)
        if scripted is not None:
            await self._scripted(scripted, scope, receive, send)
            return
        if plan.fail:
            self.injector.counts["fail"] += 1
            applied.append("fail")
            await _drain(receive)  # a proxy reads the request before it gives up
            await _respond(send, 503, PROXY_503_BODY, b"text/html")
            self.on_response(method, path, 503)
            return
        key = _api_key(scope)
        wait = self.injector.retry_after(key) if self.known_key(key) else None
        if wait is not None:
            self.injector.counts["rate_limited"] += 1
            applied.append("rate_limited")
            await _drain(receive)
            await _respond_rate_limited(send, wait)
            self.on_response(method, path, 429)
            return
        if plan.drop:
            await self._answer_then_drop(scope, receive, send)
            return
        status = await self._run_app(scope, receive, send)
        self.on_response(method, path, status)

    async def _scripted(
        self, fault: ScriptedFault, scope: Scope, receive: Receive, send: Send
    ) -> None:
        method, path = scope["method"], scope["path"]
        scope.setdefault(JOURNAL_FAULTS, []).append(fault.label)
        if fault.kind in _EARLY_ANSWERS:
            status, body, content_type = _EARLY_ANSWERS[fault.kind]
            await _drain(receive)
            await _respond(send, status, body, content_type)
            self.on_response(method, path, status)
        elif fault.kind == "rate_limited":
            await _drain(receive)
            await _respond_rate_limited(send, fault.retry_after)
            self.on_response(method, path, 429)
        elif fault.kind == "drop":
            await self._answer_then_drop(scope, receive, send, counted=False)
        elif fault.kind in ("truncated_body", "slow_body"):
            held = await self._held_answer(scope, receive)
            status = _status_of(held)
            if fault.kind == "truncated_body":
                await _send_truncated(send, held)
            else:
                await _send_slowly(send, held, fault.seconds)
            self.on_response(method, path, status)
        else:  # applied by the bulk handler
            scope = {**scope, SCOPE_FAULT_KEY: fault}
            self.on_response(method, path, await self._run_app(scope, receive, send))

    async def _held_answer(self, scope: Scope, receive: Receive) -> list[Message]:
        """Run the app to the end (so the request is committed), keeping its answer."""
        held: list[Message] = []

        async def holding_send(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, holding_send)
        return held

    async def _run_app(self, scope: Scope, receive: Receive, send: Send) -> int:
        status = 0

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, counting_send)
        return status

    async def _answer_then_drop(
        self, scope: Scope, receive: Receive, send: Send, *, counted: bool = True
    ) -> None:
        """Let the app do (and commit) the request, then close without a byte of answer."""
        held = await self._held_answer(scope, receive)
        status = _status_of(held)
        if await drop_connection(send):
            if counted:
                self.injector.counts["drop"] += 1
                scope.setdefault(JOURNAL_FAULTS, []).append("drop")
        else:  # not under uvicorn: answer normally rather than fail oddly
            for message in held:
                await send(message)
        self.on_response(scope["method"], scope["path"], status)


async def drop_connection(send: Send) -> bool:
    """Abort the TCP connection of the request whose ``send`` this is; False if impossible.

    An ASGI app cannot close a connection without answering: if it raises or returns
    without a response, uvicorn answers 500 itself. uvicorn's ``send`` is a bound method of
    the request's cycle object, which holds the connection's asyncio transport; aborting it
    closes the socket at once. uvicorn's ``connection_lost`` then marks the cycle
    disconnected, which stops uvicorn from logging "returned without starting response" and
    from writing its own 500. The client sees the connection close before any answer.
    """
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(cycle, "disconnected"):
        logger.warning("cannot drop the connection: the server is not uvicorn")
        return False
    transport.abort()
    # connection_lost runs from the event loop's next turn: give it a few.
    for _ in range(10):
        if cycle.disconnected:
            break
        await asyncio.sleep(0)
    cycle.disconnected = True  # in case the loop is slower: uvicorn must not answer
    return True


def _status_of(held: list[Message]) -> int:
    return next((m["status"] for m in held if m["type"] == "http.response.start"), 0)


def _body_of(held: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")


def _start_of(held: list[Message]) -> Message:
    return next(m for m in held if m["type"] == "http.response.start")


async def _send_truncated(send: Send, held: list[Message]) -> None:
    """The headers (Content-Length of the whole answer), half the body, then a closed socket."""
    body = _body_of(held)
    await send(_start_of(held))
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    await drop_connection(send)


async def _send_slowly(send: Send, held: list[Message], seconds: float) -> None:
    """The whole answer, in pieces spread over ``seconds``: a slow link or a stalled proxy."""
    body = _body_of(held)
    await send(_start_of(held))
    size = max(1, -(-len(body) // _SLOW_PIECES))
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    for number, piece in enumerate(pieces):
        await asyncio.sleep(seconds / len(pieces))
        more = number < len(pieces) - 1
        await send({"type": "http.response.body", "body": piece, "more_body": more})


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _api_key(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return bytes(value).decode("latin-1")
    return ""


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _respond_rate_limited(send: Send, wait: int) -> None:
    body = (
        b'{"error":"rate_limited","message":"Too many requests for this API key; retry after '
        + str(wait).encode()
        + b' second(s)."}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(wait).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
