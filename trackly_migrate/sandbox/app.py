"""The sandbox's HTTP routes: authentication, body reading, and the answer of each endpoint.

The rules behind them are elsewhere: ``rules.py`` (checks that need no database),
``bulk.py`` (the imports' rules inside the transaction), ``store.py`` (SQLite). One bulk
handler serves both imports, parameterized by ``bulk.BULK_KINDS``. Every route is listed in
``SandboxApp.routes``: add new ones there.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from trackly_migrate.sandbox.bulk import (
    BULK_KINDS,
    BulkKind,
    BulkOutcome,
    bulk_body,
    sink_outcome,
)
from trackly_migrate.sandbox.faults import SCOPE_FAULT_KEY, FaultInjector, FaultMiddleware
from trackly_migrate.sandbox.importer import Importer, ImporterStats
from trackly_migrate.sandbox.inspection import inspection_routes
from trackly_migrate.sandbox.journal import (
    Journal,
    JournalMiddleware,
    JournalProbe,
    answer_counts,
    note,
)
from trackly_migrate.sandbox.rules import (
    Rejected,
    RequestError,
    decode_json_records,
    parse_clear,
    parse_json,
    parse_unsubscribe,
)
from trackly_migrate.sandbox.scripted import (
    CLICKS_PATH,
    SENDS_PATH,
    FaultQueue,
    FaultSpecError,
    ScriptedFault,
    distort_counts,
    parse_fault,
)
from trackly_migrate.sandbox.seed import Seed
from trackly_migrate.sandbox.store import Store, Transaction

logger = logging.getLogger("trackly_migrate.sandbox")

CLEAR_PATH = "/api/v2/history/clear"
CONTACTS_PATH = "/api/v2/contacts"
FAULTS_PATH = "/_sandbox/faults"
MAX_BODY_BYTES = 10 * 1024 * 1024  # CONTRACT.md: a body over 10 MiB is refused whole


class JSONResponse(Response):
    """orjson-encoded JSON: a 1,000-record answer is encoded several times faster."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(refused: RequestError) -> JSONResponse:
    return JSONResponse(refused.body(), refused.status)


# ---------------------------------------------------------------------------------------
# Counters for /_sandbox/stats
# ---------------------------------------------------------------------------------------


class ServerStats:
    """Requests answered and records handled since start (or the last reset)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # handlers bump record counts from the thread pool
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: Counter[tuple[str, int]] = Counter()
            self.records: dict[str, Counter[str]] = {"sends": Counter(), "clicks": Counter()}
            self.sink: Counter[str] = Counter()
            self.bodies: Counter[str] = Counter()  # request bodies read: count, largest

    def record_response(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests[(f"{method} {path}", status)] += 1

    def record_body(self, size: int, *, refused: bool) -> None:
        with self._lock:
            self.bodies["requests"] += 1
            self.bodies["max_bytes"] = max(self.bodies["max_bytes"], size)
            self.bodies["refused_too_large"] += refused

    def record_outcome(self, kind: str, outcome: BulkOutcome, *, sink: bool) -> None:
        with self._lock:
            if sink:
                self.sink["requests"] += 1
                self.sink["records"] += outcome.success + len(outcome.errors)
                return
            counter = self.records[kind]
            counter["stored"] += outcome.success
            counter["duplicates"] += outcome.duplicates
            counter["errors"] += len(outcome.errors)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            by_endpoint: dict[str, dict[str, int]] = {}
            for (endpoint, status), count in sorted(self.requests.items()):
                by_endpoint.setdefault(endpoint, {})[str(status)] = count
            return {
                "requests": {"total": sum(self.requests.values()), "by_endpoint": by_endpoint},
                "records": {kind: dict(counter) for kind, counter in self.records.items()},
                "sink": {"requests": self.sink["requests"], "records": self.sink["records"]},
                "bodies": {
                    name: self.bodies[name]
                    for name in ("requests", "max_bytes", "refused_too_large")
                },
            }


# ---------------------------------------------------------------------------------------
# The application
# ---------------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class SandboxState:
    store: Store
    seed: Seed
    injector: FaultInjector
    sink: bool = False
    stats: ServerStats = field(default_factory=ServerStats)
    faults: FaultQueue = field(default_factory=FaultQueue)
    max_body_bytes: int = MAX_BODY_BYTES
    journal: Journal = field(default_factory=Journal)


class SandboxApp:
    """The endpoints; ``asgi()`` wraps the Starlette app in the fault and journal layers."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        # The imports' checks and writes run in one thread, one request after the other: the
        # store lets one request write at a time anyway, and a thread per request in flight
        # only fights over the GIL (measured: 15% more CPU, a third more wall time). The
        # requests that waited meanwhile share a commit (importer.py).
        self.importer = Importer(state.store)

    def routes(self) -> list[BaseRoute]:
        """Every route of the sandbox, in one place: the API, then the /_sandbox tools."""
        return [
            Route(SENDS_PATH, self._guarded(self._bulk(BULK_KINDS["sends"])), methods=["POST"]),
            Route(CLICKS_PATH, self._guarded(self._bulk(BULK_KINDS["clicks"])), methods=["POST"]),
            Route(CLEAR_PATH, self._guarded(self.clear_history), methods=["DELETE"]),
            Route(CONTACTS_PATH, self._guarded(self.unsubscribe), methods=["DELETE"]),
            Route("/", self.index, methods=["GET"]),
            Route("/_sandbox/stats", self.stats, methods=["GET"]),
            Route("/_sandbox/reset", self.reset, methods=["POST"]),
            Route(FAULTS_PATH, self.list_faults, methods=["GET"]),
            Route(FAULTS_PATH, self.queue_faults, methods=["POST"]),
            Route(FAULTS_PATH, self.clear_faults, methods=["DELETE"]),
            *inspection_routes(self.state),  # /_sandbox/records, /_sandbox/requests, the page
        ]

    def asgi(self) -> ASGIApp:
        starlette = Starlette(routes=self.routes(), exception_handlers={HTTPException: _http_error})
        # The API has exactly these paths: a trailing slash is a 404, not a redirect.
        starlette.router.redirect_slashes = False
        # The journal's two layers sit either side of the fault layer (see journal.py).
        faulted = FaultMiddleware(
            JournalProbe(starlette, self.state.journal),
            self.state.injector,
            self.state.stats.record_response,
            known_key=lambda key: bool(key) and self.state.store.account_for_key(key) is not None,
            queue=self.state.faults,
        )
        return JournalMiddleware(faulted, self.state.journal)

    def _guarded(self, handler: Callable[[Request, int], Awaitable[Response]]) -> Handler:
        """Authenticate, then run the handler; map refusals and crashes to JSON errors."""

        async def endpoint(request: Request) -> Response:
            account_id = self._account(request)
            if account_id is None:
                return error_response(
                    RequestError(401, "unauthorized", "Missing or invalid X-Api-Key header.")
                )
            try:
                return await handler(request, account_id)
            except RequestError as refused:
                return error_response(refused)
            except ClientDisconnect:
                # The client gave up (its timeout) before sending the whole body: nothing
                # was done, and nobody is left to answer. 499 is nginx's name for it.
                return Response(status_code=499)
            except Exception:
                logger.exception("internal error on %s %s", request.method, request.url.path)
                return error_response(
                    RequestError(500, "internal_error", "An unexpected server error occurred.")
                )

        return endpoint

    def _account(self, request: Request) -> int | None:
        key = request.headers.get("x-api-key")
        return None if not key else self.state.store.account_for_key(key)

    async def _read_json(self, request: Request) -> Any:
        """The body, decoded (see ``_read_body``)."""
        return parse_json(await self._read_body(request))

    async def _read_body(self, request: Request) -> bytes:
        """The body; refused whole (413) past ``max_body_bytes``, never kept whole."""
        limit = self.state.max_body_bytes
        declared = request.headers.get("content-length", "")
        chunks: list[bytes] = []
        size = 0
        # Read to the end even when over the limit: a client still sending its body would
        # see a reset connection instead of the 413.
        async for chunk in request.stream():
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            else:
                chunks = []
        too_large = size > limit or (declared.isdigit() and int(declared) > limit)
        self.state.stats.record_body(size, refused=too_large)
        if too_large:
            raise RequestError(
                413,
                "payload_too_large",
                f"The request body is {size:,} bytes; the limit is {limit:,} bytes. "
                "Send fewer records per request.",
            )
        return b"".join(chunks)

    def _bulk(self, kind: BulkKind) -> Callable[[Request, int], Awaitable[Response]]:
        """The handler of one bulk import endpoint (sends or clicks)."""

        async def handler(request: Request, account_id: int) -> Response:
            raw = await self._read_body(request)
            # Sink mode checks the records' dicts; store mode decodes them its fastest way.
            records = decode_json_records(raw) if self.state.sink else kind.decode(raw)
            note(request.scope, records=len(records))
            fault: ScriptedFault | None = request.scope.get(SCOPE_FAULT_KEY)
            if self.state.sink:
                outcome = sink_outcome(kind.name, records)
                self.state.stats.record_outcome(kind.name, outcome, sink=True)
                return JSONResponse(bulk_body(outcome, sends=kind.has_ids))
            fail_at = fault.indexes if fault is not None and fault.kind == "save_error" else ()
            bad_phones = fault.indexes if fault is not None and fault.kind != "save_error" else ()

            def work(tx: Transaction) -> BulkOutcome:
                checked = kind.check(records, raw)
                for index in (i for i in bad_phones if i < len(checked)):
                    checked[index] = _injected_invalid_phone(checked[index])
                return kind.store(tx, account_id, checked, fail_at)

            outcome = await self.importer.run(work)
            self.state.stats.record_outcome(kind.name, outcome, sink=False)
            body = bulk_body(outcome, sends=kind.has_ids)
            if fault is not None and fault.kind == "count_mismatch":
                body = distort_counts(body, fault.mode)
            note(request.scope, counts=answer_counts(body))
            return JSONResponse(body)

        return handler

    async def clear_history(self, request: Request, account_id: int) -> Response:
        clear = parse_clear(await self._read_json(request))
        if self.state.sink:
            return JSONResponse({"success": True, "cleared": dict.fromkeys(clear.entities, 0)})

        def work() -> dict[str, int]:
            with self.state.store.transaction() as tx:
                return tx.clear(account_id, clear.entities, clear.before)

        cleared = await run_in_threadpool(work)
        note(request.scope, counts=cleared)
        # In the order the request named them (the answer holds only those).
        return JSONResponse({"success": True, "cleared": {e: cleared[e] for e in clear.entities}})

    async def unsubscribe(self, request: Request, account_id: int) -> Response:
        sink = self.state.sink
        body = parse_unsubscribe(await self._read_json(request), check_phones=not sink)
        if sink:
            return JSONResponse({"success": True, "unsubscribed": False})

        def work() -> bool:
            with self.state.store.transaction() as tx:
                return tx.unsubscribe(account_id, body.phone_number, body.list_number)

        changed = await run_in_threadpool(work)
        note(request.scope, counts={"unsubscribed": changed})
        return JSONResponse({"success": True, "unsubscribed": changed})

    async def index(self, request: Request) -> Response:
        return JSONResponse(
            {
                "service": "trackly-migrate sandbox (a local emulator of the Trackly SMS API)",
                "api_base_url": str(request.base_url) + "api",
                "endpoints": [
                    f"POST {SENDS_PATH}",
                    f"POST {CLICKS_PATH}",
                    f"DELETE {CLEAR_PATH}",
                    f"DELETE {CONTACTS_PATH}",
                ],
                "tools": [
                    f"{route.methods and sorted(route.methods - {'HEAD'})[0]} {route.path}"
                    for route in self.routes()
                    if isinstance(route, Route) and route.path.startswith("/_sandbox")
                ],
                "max_body_bytes": self.state.max_body_bytes,
            }
        )

    async def stats(self, request: Request) -> Response:
        data = await run_in_threadpool(self.state.store.stats)
        data.update(self.state.stats.snapshot())
        data["faults"] = dict(self.state.injector.counts)
        data["scripted_faults"] = self.state.faults.snapshot()
        data["imports"] = self.importer.stats.snapshot()
        data["mode"] = "sink" if self.state.sink else "store"
        data["max_body_bytes"] = self.state.max_body_bytes
        return JSONResponse(data)

    async def reset(self, request: Request) -> Response:
        await run_in_threadpool(self.state.store.reset, self.state.seed)
        self.state.stats.reset()
        self.importer.stats = ImporterStats()
        self.state.injector.reset()
        self.state.faults.reset()
        self.state.journal.clear()
        return JSONResponse({"success": True})

    async def list_faults(self, request: Request) -> Response:
        return JSONResponse(self.state.faults.snapshot())

    async def queue_faults(self, request: Request) -> Response:
        """Body: one fault object, or {"faults": [...]}; all are checked before any is queued."""
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _invalid_fault("the body is not valid JSON")
        items = data["faults"] if isinstance(data, dict) and "faults" in data else [data]
        if not isinstance(items, list) or not items:
            return _invalid_fault("faults must be a non-empty array of fault objects")
        try:
            faults = [parse_fault(item) for item in items]
        except FaultSpecError as exc:
            return _invalid_fault(str(exc))
        self.state.faults.add(faults)
        return JSONResponse({"success": True, **self.state.faults.snapshot()})

    async def clear_faults(self, request: Request) -> Response:
        return JSONResponse({"success": True, "cleared": self.state.faults.clear()})


def _injected_invalid_phone(item: Any) -> Rejected:
    """A count_mismatch fault's record: answered invalid_phone, as if its number were bad."""
    # A plain row (rules.check_send's fast path) holds the id first.
    record_id = item[0] if type(item) is tuple else getattr(item, "id", None)
    return Rejected(
        "invalid_phone", "Field 'to_number' is not a valid E.164 phone number.", record_id
    )


def _invalid_fault(message: str) -> Response:
    return error_response(RequestError(400, "invalid_fault", message))


async def _http_error(request: Request, exc: Exception) -> Response:
    """404/405 as JSON too, so a client that expects JSON errors meets one everywhere."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    headers = exc.headers if isinstance(exc, HTTPException) else None
    return JSONResponse(
        {"error": code, "message": f"{request.method} {request.url.path}: {code}"},
        status,
        headers=headers,
    )


def build_app(state: SandboxState) -> ASGIApp:
    """The ASGI application of a sandbox."""
    return SandboxApp(state).asgi()
