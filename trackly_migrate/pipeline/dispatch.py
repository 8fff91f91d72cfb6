"""Dispatchers (``ports.Dispatcher``): how segments reach the API while the main thread reads.

``ProcessDispatcher`` (the default) sends from a process of its own. Reading and validating
is CPU-bound Python; so is an HTTP client. In one process they share the GIL, and a profile
showed every response's thread wake-up slowing the reading thread down (its CPU time rose
30-45% once requests were in flight). In a sender process the two run on separate cores:
the main process encodes each batch and writes it to a pipe; the sender process runs the
client (retries, adaptive concurrency, ``Retry-After``) and ``deliver_encoded`` in a thread
pool (the body is sent as it came through the pipe, decoded only when it must be), and
answers with a ``Settlement``.

``ThreadDispatcher`` does the same with threads in this process: for callers that embed the
core and cannot start processes.

The pipe carries the API key to the child in the spawn handshake (pickled through the pipe,
never on a command line). The child ignores SIGINT and SIGTERM (the main process handles them and
tells it), and ends as soon as its pipe closes, which also happens when the main process is
killed. A signal sent to the whole process group (Ctrl-C, ``timeout``, systemd) while the child
is still starting must not reach it before it ignores them: the signals are blocked across the
spawn, the child inherits the mask, and it unblocks them only once they are ignored.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import queue
import signal
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import orjson

from trackly_migrate.client import SLOW_START_WINDOW, RetryPolicy, TracklyClient
from trackly_migrate.config import ApiSettings
from trackly_migrate.errors import ApiConnectionError, TracklyMigrateError
from trackly_migrate.pipeline import sender_entry
from trackly_migrate.pipeline.settle import (
    Settlement,
    deliver,
    deliver_encoded,
    deliver_unsubscribes,
)

if TYPE_CHECKING:
    # Not imported at run time: the sender process imports this module, and these two would
    # bring the readers, the validators and phonenumbers into it (see ``_SenderPlan``).
    from trackly_migrate.pipeline.request import Limits
    from trackly_migrate.records import Kind

# In front of each encoded batch: its request id and how many records it holds (the sender
# needs the count to check the answer, and does not decode a body it can send as it is).
_HEADER = struct.Struct("!QI")
_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@dataclass(frozen=True)
class SenderOptions:
    """What the sending side needs (it crosses to the sender process, key included)."""

    settings: ApiSettings
    kind: Kind
    limits: Limits

    def plan(self) -> _SenderPlan:
        limits = self.limits
        return _SenderPlan(
            settings=self.settings,
            kind=str(self.kind),
            timeout=limits.timeout,
            concurrency=limits.concurrency,
            retry_policy=limits.retry_policy,
            max_body_bytes=limits.max_body_bytes,
        )


@dataclass(frozen=True)
class _SenderPlan:
    """``SenderOptions`` in the types of the sending side only: what crosses to the sender
    process. Unpickling a ``Kind`` or a ``Limits`` there would import their modules, and with
    them most of the reading side (about half of the child's start-up)."""

    settings: ApiSettings
    kind: str
    timeout: float
    concurrency: int
    retry_policy: RetryPolicy
    max_body_bytes: int


RetryCallback = Callable[[str, float], None]


def _settle_with(
    client: TracklyClient, plan: _SenderPlan
) -> Callable[[list[dict[str, Any]]], Settlement]:
    if plan.kind == "contacts":
        return lambda records: deliver_unsubscribes(client, records)
    kind, max_body_bytes = plan.kind, plan.max_body_bytes
    return lambda records: deliver(client, kind, records, max_body_bytes)


def _settle_encoded_with(
    client: TracklyClient, plan: _SenderPlan
) -> Callable[[bytes, int], Settlement]:
    if plan.kind == "contacts":
        return lambda body, _: deliver_unsubscribes(client, orjson.loads(body)["records"])
    kind, max_body_bytes = plan.kind, plan.max_body_bytes
    return lambda body, count: deliver_encoded(client, kind, body, count, max_body_bytes)


def _make_client(plan: _SenderPlan) -> TracklyClient:
    return TracklyClient(
        plan.settings,
        timeout=plan.timeout,
        max_connections=plan.concurrency,
        policy=plan.retry_policy,
    )


class ThreadDispatcher:
    """Sends from a thread pool of this process."""

    def __init__(self, options: SenderOptions, on_retry: RetryCallback) -> None:
        plan = options.plan()
        self._client = _make_client(plan)
        self._client.on_retry = lambda error, delay: on_retry(error.message, delay)
        self._settle = _settle_with(self._client, plan)
        self._executor = ThreadPoolExecutor(options.limits.concurrency, thread_name_prefix="send")

    def submit(self, records: list[dict[str, Any]]) -> Future[Settlement]:
        return self._executor.submit(self._settle, records)

    def current_concurrency(self) -> int:
        return self._client.limit.current

    def requests_in_flight(self) -> int:
        return self._client.limit.in_flight

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._client.close()


class ProcessDispatcher:
    """Sends from a child process; see the module docstring."""

    def __init__(self, options: SenderOptions, on_retry: RetryCallback) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=True)
        self._conn = ours
        plan = pickle.dumps(options.plan())
        self._process = context.Process(
            target=sender_entry.main, args=(theirs, plan), name="trackly-sender", daemon=True
        )
        with _stop_signals_held():
            self._process.start()
        theirs.close()
        self._on_retry = on_retry
        self._futures: dict[int, Future[Settlement]] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._next_id = 0
        self._concurrency = min(options.limits.concurrency, SLOW_START_WINDOW)
        self._in_flight = 0
        self._closed = False
        # Batches go to the pipe from a thread of their own: the child takes a few tenths of
        # a second to start, and a batch is larger than the pipe's buffer, so writing it from
        # the reading thread would stop the reading until the child is up.
        self._outbox: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_batches, name="batches", daemon=True)
        self._writer.start()
        self._reader = threading.Thread(target=self._read_answers, name="answers", daemon=True)
        self._reader.start()

    def submit(self, records: list[dict[str, Any]]) -> Future[Settlement]:
        future: Future[Settlement] = Future()
        body = orjson.dumps({"records": records})
        with self._lock:
            request_id = self._next_id
            self._next_id += 1
            self._futures[request_id] = future
        self._outbox.put((request_id, _HEADER.pack(request_id, len(records)) + body))
        return future

    def _write_batches(self) -> None:
        while (item := self._outbox.get()) is not None:
            request_id, message = item
            if self._closed:
                continue  # closing: what was not sent yet stays unsent (cancelled)
            try:
                with self._send_lock:
                    self._conn.send_bytes(message)
            except OSError:
                with self._lock:
                    future = self._futures.pop(request_id, None)
                if future is not None:
                    with contextlib.suppress(InvalidStateError):  # the reader may say so first
                        future.set_exception(_sender_gone())

    def current_concurrency(self) -> int:
        return self._concurrency

    def requests_in_flight(self) -> int:
        return self._in_flight

    def _read_answers(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "limit":
                _, self._in_flight, self._concurrency = message
                continue
            if kind == "retry":
                # A display failure must not kill the thread that resolves every answer.
                with contextlib.suppress(Exception):
                    self._on_retry(message[1], message[2])
                continue
            _, request_id, payload, concurrency = message
            self._concurrency = concurrency
            with self._lock:
                future = self._futures.pop(request_id, None)
            if future is None:
                continue
            # A future the run gave up on (cancelled) takes no answer.
            with contextlib.suppress(InvalidStateError):
                if kind == "ok":
                    future.set_result(payload)
                else:
                    future.set_exception(payload)
        with self._lock:  # the child is gone: nothing more will be answered
            waiting, self._futures = self._futures, {}
        for future in waiting.values():
            with contextlib.suppress(InvalidStateError):
                if self._closed:
                    future.cancel()
                else:
                    future.set_exception(_sender_gone())

    def close(self) -> None:
        """End the child at once (an empty message says so), then its answer reader."""
        self._closed = True
        self._outbox.put(None)
        self._writer.join(timeout=5)
        if not self._next_id:
            # Nothing was ever sent (the run stopped before its first batch): the child need
            # not finish starting to be told.
            self._process.kill()
        # Closing our end does not wake the reader thread blocked on it, so the child would
        # never see EOF: tell it in words.
        with self._send_lock, contextlib.suppress(OSError):
            self._conn.send_bytes(b"")
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._reader.join(timeout=5)
        self._conn.close()


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread (they wait, they are not lost) while it spawns.

    The child starts with this mask, so a signal to the process group stays pending in it until
    ``serve`` has ignored it (multiprocessing's resource tracker does the same, bpo-33613).
    The tracker is started first: its own start-up unblocks both signals when it is done.
    """
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _sender_gone() -> ApiConnectionError:
    return ApiConnectionError(
        "The sending process stopped unexpectedly.",
        hint="Run again with --resume; what was confirmed is kept.",
    )


def serve(conn: Connection, plan: _SenderPlan) -> None:
    """The sender process (started in ``sender_entry.main``): read batches from the pipe,
    answer each with its settlement."""
    # Signals are the main process's to handle (Ctrl-C, or a SIGTERM sent to the whole
    # process group by timeout or systemd): it finishes what is in flight and tells us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Blocked since the spawn (see ``_stop_signals_held``); ignoring discarded any pending one.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    send_lock = threading.Lock()

    def answer(message: tuple[Any, ...]) -> None:
        with send_lock, contextlib.suppress(OSError):
            conn.send(message)

    client = _make_client(plan)
    client.on_retry = lambda error, delay: answer(("retry", error.message, delay))
    client.limit.on_change = lambda in_flight, current: answer(("limit", in_flight, current))
    settle = _settle_encoded_with(client, plan)

    def work(request_id: int, count: int, body: bytes) -> None:
        try:
            payload: Any = settle(body, count)
            kind = "ok"
        except TracklyMigrateError as error:
            payload, kind = error, "error"
        except Exception as error:
            payload, kind = ApiConnectionError(f"Sending failed: {error!r}"), "error"
        answer((kind, request_id, payload, client.limit.current))

    executor = ThreadPoolExecutor(plan.concurrency, thread_name_prefix="send")
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            break
        if not data:
            break
        request_id, count = _HEADER.unpack_from(data)
        executor.submit(work, request_id, count, data[_HEADER.size :])
    # The main process has everything it waited for, or has given up: stop at once.
    os._exit(0)
