"""The sandbox's HTTP routes and the contract rules behind them.

Each import request goes through two phases:

1. ``check_send`` / ``check_click``: pure checks of one record (shape, types, required
   fields, E.164, ISO 8601), run outside the database lock;
2. ``store_sends`` / ``store_clicks``: inside one SQLite transaction, the checks that need the
   account's data (duplicates, lists, messages, offers), then the writes.

Rules the contract leaves open are decided here and listed in ``docs/sandbox.md``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from trackly_migrate.sandbox.faults import FaultInjector, FaultMiddleware
from trackly_migrate.sandbox.inspection import inspection_routes
from trackly_migrate.sandbox.journal import (
    Journal,
    JournalMiddleware,
    JournalProbe,
    answer_counts,
    note,
)
from trackly_migrate.sandbox.seed import Seed
from trackly_migrate.sandbox.store import ClickRow, SendRow, Store, Transaction
from trackly_migrate.sandbox.validation import is_valid_e164, normalize_timestamp

logger = logging.getLogger("trackly_migrate.sandbox")

MAX_RECORDS = 1000
MAX_LISTED_ERRORS = 100
ENTITIES = frozenset({"sends", "clicks", "revenue"})
_INT64 = 2**63

SENDS_PATH = "/api/v2/history/sends"
CLICKS_PATH = "/api/v2/history/clicks"
CLEAR_PATH = "/api/v2/history/clear"
CONTACTS_PATH = "/api/v2/contacts"


class JSONResponse(Response):
    """orjson-encoded JSON: a 1,000-record answer is encoded several times faster."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class RequestError(Exception):
    """The whole request is refused: nothing is stored, the answer is {"error", "message"}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.code, "message": self.message}, self.status)


# ---------------------------------------------------------------------------------------
# Per-record checks that need no database
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """A record that fails; ``id`` is the send's id when it has one (sends' errors carry it)."""

    code: str
    message: str
    id: str | None = None


class SendCandidate(NamedTuple):  # a tuple: one is made per record (see store.SendRow)
    """A send with a usable id. ``problem`` is its first field error, judged after dedup."""

    id: str
    problem: Rejected | None
    row: SendRow | None = None
    list_id: int | None = None
    list_number: str | None = None


class ClickCandidate(NamedTuple):
    message_id: str
    problem: Rejected | None
    row: ClickRow | None = None


def _is_int(value: Any) -> bool:
    # bool is an int in Python but not in JSON; the range is what SQLite can store.
    return isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


_TYPE_NAMES: dict[Callable[[Any], bool], str] = {
    _is_int: "an integer",
    _is_str: "a string",
    _is_bool: "true or false",
}

_SEND_TYPES: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("to_number", _is_str),
    ("timestamp", _is_str),
    ("list_number", _is_str),
    ("list_id", _is_int),
    ("message", _is_str),
    ("send_type", _is_str),
    ("delivered", _is_bool),
    ("length", _is_int),
    ("creative_id", _is_int),
)

_CLICK_TYPES: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("offer_id", _is_str),
    ("phone_number", _is_str),
    ("timestamp", _is_str),
    ("send_timestamp", _is_str),
)


def _missing(record: dict[str, Any], name: str) -> bool:
    """Absent, null and "" all count as missing for a required field."""
    value = record.get(name)
    return value is None or value == ""


def _type_error(
    record: dict[str, Any], fields: tuple[tuple[str, Callable[[Any], bool]], ...]
) -> Rejected | None:
    """The first field of the wrong JSON type (null means absent for optional fields)."""
    for name, is_type in fields:
        value = record.get(name)
        if value is not None and value != "" and not is_type(value):
            expected = _TYPE_NAMES[is_type]
            return Rejected("invalid_type", f"Field '{name}' must be {expected}.")
    return None


def _record_key(record: Any, name: str) -> Rejected | str:
    """The record's dedup key (a string), or why the record is unusable before any check."""
    if not isinstance(record, dict):
        return Rejected("invalid_record", "Each record must be a JSON object.")
    if _missing(record, name):
        return Rejected(f"missing_{name}", f"The '{name}' field is required.")
    key = record[name]
    if not isinstance(key, str):
        return Rejected("invalid_type", f"Field '{name}' must be a string.")
    return key


def check_send(record: Any) -> Rejected | SendCandidate:
    """Check one send record as far as possible without the database."""
    message_id = _record_key(record, "id")
    if isinstance(message_id, Rejected):
        return message_id
    problem = _send_problem(record)
    if isinstance(problem, Rejected):
        return SendCandidate(message_id, Rejected(problem.code, problem.message, message_id))
    row = SendRow(
        id=message_id,
        list_id=None,  # resolved against the account's lists in store_sends
        to_number=record["to_number"],
        timestamp=problem,
        message=_optional(record, "message"),
        send_type=_optional(record, "send_type"),
        delivered=_optional(record, "delivered"),
        length=_optional(record, "length"),
        creative_id=_optional(record, "creative_id"),
    )
    return SendCandidate(
        message_id, None, row, _optional(record, "list_id"), _optional(record, "list_number")
    )


def _optional(record: dict[str, Any], name: str) -> Any:
    """An optional field's value; "" means absent, as null does."""
    value = record.get(name)
    return None if value == "" else value


def _send_problem(record: dict[str, Any]) -> Rejected | str:
    """The record's first field error, or (when it has none) its normalized timestamp."""
    if _missing(record, "to_number"):
        return Rejected("missing_to_number", "The 'to_number' field is required.")
    if _missing(record, "timestamp"):
        return Rejected("missing_timestamp", "The 'timestamp' field is required.")
    type_error = _type_error(record, _SEND_TYPES)
    if type_error is not None:
        return type_error
    if not is_valid_e164(record["to_number"]):
        return Rejected("invalid_phone", "Field 'to_number' is not a valid E.164 phone number.")
    list_number = record.get("list_number")
    if list_number not in (None, "") and not is_valid_e164(list_number):
        return Rejected("invalid_phone", "Field 'list_number' is not a valid E.164 phone number.")
    timestamp = normalize_timestamp(record["timestamp"])
    if timestamp is None:
        return Rejected(
            "invalid_timestamp",
            "Field 'timestamp' is not a valid ISO 8601 datetime with a UTC offset.",
        )
    return timestamp


def check_click(record: Any) -> Rejected | ClickCandidate:
    """Check one click record as far as possible without the database."""
    message_id = _record_key(record, "message_id")
    if isinstance(message_id, Rejected):
        return message_id
    problem = _click_problem(record)
    if problem is not None:
        return ClickCandidate(message_id, problem)
    send_timestamp = _optional(record, "send_timestamp")
    row = ClickRow(
        message_id=message_id,
        offer_id=record["offer_id"],
        phone=record["phone_number"],
        timestamp=normalize_timestamp(record["timestamp"]) or "",
        send_timestamp=None if send_timestamp is None else normalize_timestamp(send_timestamp),
    )
    return ClickCandidate(message_id, None, row)


def _click_problem(record: dict[str, Any]) -> Rejected | None:
    for name in ("offer_id", "phone_number", "timestamp"):
        if _missing(record, name):
            return Rejected(f"missing_{name}", f"The '{name}' field is required.")
    type_error = _type_error(record, _CLICK_TYPES)
    if type_error is not None:
        return type_error
    # The contract lists no invalid_phone for clicks (nor an invalid_phones count): the
    # click's phone_number is only required to be a string, as the vendor's page implies.
    for name in ("timestamp", "send_timestamp"):
        value = record.get(name)
        if value is not None and normalize_timestamp(value) is None:
            return Rejected(
                "invalid_timestamp",
                f"Field '{name}' is not a valid ISO 8601 datetime with a UTC offset.",
            )
    return None


# ---------------------------------------------------------------------------------------
# Per-record rules that need the account's data, inside the request's transaction
# ---------------------------------------------------------------------------------------


@dataclass
class BulkOutcome:
    """What one import request did; ``errors`` holds every failure (capped when answered)."""

    success: int = 0
    duplicates: int = 0
    errors: list[tuple[int, Rejected]] = field(default_factory=list)

    def fail(self, index: int, rejected: Rejected) -> None:
        self.errors.append((index, rejected))


def store_sends(
    tx: Transaction, account_id: int, checked: list[Rejected | SendCandidate]
) -> BulkOutcome:
    """Dedup, resolve lists, then store every good record in one bulk insert."""
    outcome = BulkOutcome()
    lists = _ListResolver(tx, account_id)
    stored = tx.stored_message_ids(
        account_id, [item.id for item in checked if isinstance(item, SendCandidate)]
    )
    seen: set[str] = set()  # ids of this request so far, whatever became of their records
    ready: list[tuple[int, SendRow]] = []
    for index, item in enumerate(checked):
        if isinstance(item, Rejected):
            outcome.fail(index, item)
        elif item.id in seen or item.id in stored:
            # CONTRACT.md: a record whose id repeats an earlier record of the same request is
            # a duplicate, as is one whose id is stored already.
            outcome.duplicates += 1
        else:
            seen.add(item.id)
            if item.problem is not None or item.row is None:
                failure = item.problem or Rejected("save_error", "Unexpected.", item.id)
                outcome.fail(index, failure)
                continue
            found, list_id = lists.resolve(item.list_id, item.list_number)
            if not found:
                message = (
                    "No sending list of this account matches the given list_id or list_number."
                )
                outcome.fail(index, Rejected("list_not_found", message, item.id))
            else:
                ready.append((index, _with_list(item.row, list_id)))
    failed = tx.insert_sends(account_id, [row for _, row in ready])
    for position in failed:
        index, row = ready[position]
        outcome.fail(index, Rejected("save_error", "The record could not be saved.", row.id))
    outcome.success += len(ready) - len(failed)
    outcome.errors.sort(key=lambda error: error[0])
    return outcome


def _with_list(row: SendRow, list_id: int | None) -> SendRow:
    # Not dataclasses.replace: it costs several times a plain construction, per record.
    if list_id is None:
        return row
    return SendRow(
        row.id,
        list_id,
        row.to_number,
        row.timestamp,
        row.message,
        row.send_type,
        row.delivered,
        row.length,
        row.creative_id,
    )


class _ListResolver:
    """Finds the account's list for a record's list_id/list_number, cached per request."""

    def __init__(self, tx: Transaction, account_id: int) -> None:
        self.tx = tx
        self.account_id = account_id
        self.by_id: dict[int, int | None] = {}
        self.by_number: dict[str, int | None] = {}

    def resolve(self, list_id: int | None, list_number: str | None) -> tuple[bool, int | None]:
        """(found, list id). No list given is fine: (True, None). Both given: same list."""
        from_id = from_number = None
        if list_id is not None:
            if list_id not in self.by_id:
                self.by_id[list_id] = self.tx.list_by_id(self.account_id, list_id)
            from_id = self.by_id[list_id]
            if from_id is None:
                return False, None
        if list_number is not None:
            if list_number not in self.by_number:
                self.by_number[list_number] = self.tx.list_by_number(self.account_id, list_number)
            from_number = self.by_number[list_number]
            if from_number is None:
                return False, None
        if from_id is not None and from_number is not None and from_id != from_number:
            return False, None
        return True, from_id if from_id is not None else from_number


def store_clicks(
    tx: Transaction, account_id: int, checked: list[Rejected | ClickCandidate]
) -> BulkOutcome:
    """Dedup on message_id, check message and offer, then store in one bulk insert."""
    outcome = BulkOutcome()
    offers: dict[str, bool] = {}
    ids = [item.message_id for item in checked if isinstance(item, ClickCandidate)]
    clicked = tx.stored_click_ids(account_id, ids)
    messages = tx.message_lists(account_id, ids)
    seen: set[str] = set()  # message ids of this request so far (one click per message)
    ready: list[tuple[int, tuple[ClickRow, int | None, str | None]]] = []
    for index, item in enumerate(checked):
        if isinstance(item, Rejected):
            outcome.fail(index, item)
        elif item.message_id in seen or item.message_id in clicked:
            outcome.duplicates += 1
        else:
            seen.add(item.message_id)
            if item.problem is not None or item.row is None:
                outcome.fail(index, item.problem or Rejected("save_error", "Unexpected."))
            else:
                problem = _click_target_problem(tx, account_id, item.row, messages, offers)
                if problem is not None:
                    outcome.fail(index, problem)
                else:
                    list_id, recipient = messages[item.row.message_id]
                    ready.append((index, (item.row, list_id, recipient)))
    failed = tx.insert_clicks(account_id, [click for _, click in ready])
    for position in failed:
        outcome.fail(ready[position][0], Rejected("save_error", "The record could not be saved."))
    outcome.success += len(ready) - len(failed)
    outcome.errors.sort(key=lambda error: error[0])
    return outcome


def _click_target_problem(
    tx: Transaction,
    account_id: int,
    row: ClickRow,
    messages: dict[str, tuple[int | None, str]],
    offers: dict[str, bool],
) -> Rejected | None:
    """Why the click's message or offer is not the account's, or None."""
    if row.message_id not in messages:
        return Rejected(
            "message_not_found", f"No message of this account has the id '{row.message_id}'."
        )
    if row.offer_id not in offers:
        offers[row.offer_id] = tx.offer_exists(account_id, row.offer_id)
    if not offers[row.offer_id]:
        return Rejected("offer_not_found", f"No offer of this account has the id '{row.offer_id}'.")
    return None


def bulk_body(outcome: BulkOutcome, *, sends: bool) -> dict[str, Any]:
    """The documented answer; ``errors`` lists at most 100 failures, the count stays true."""
    listed = []
    for index, rejected in outcome.errors[:MAX_LISTED_ERRORS]:
        entry: dict[str, Any] = {"index": index}
        if sends:
            entry["id"] = rejected.id
        entry["code"] = rejected.code
        entry["error"] = rejected.message
        listed.append(entry)
    body: dict[str, Any] = {
        "success_count": outcome.success,
        "error_count": len(outcome.errors),
        "duplicates_skipped": outcome.duplicates,
    }
    if sends:
        body["invalid_phones"] = sum(1 for _, r in outcome.errors if r.code == "invalid_phone")
    body["errors"] = listed
    return body


# ---------------------------------------------------------------------------------------
# Request-level parsing
# ---------------------------------------------------------------------------------------


async def read_json(request: Request) -> Any:
    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(400, "invalid_json", "The request body is not valid JSON.") from None


def records_of(body: Any) -> list[Any]:
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        raise RequestError(
            400, "missing_records", "The records field is required and must be a non-empty array."
        )
    if len(records) > MAX_RECORDS:
        raise RequestError(
            413,
            "too_many_records",
            f"Exceeded the maximum of {MAX_RECORDS:,} records per request ({len(records):,}).",
        )
    return records


@dataclass(frozen=True)
class ClearRequest:
    entities: tuple[str, ...]
    before: str | None


def parse_clear(body: Any) -> ClearRequest:
    """Check a clear body in the contract's order: entities, confirm, before_date."""
    fields = body if isinstance(body, dict) else {}
    entities = fields.get("entities")
    if not isinstance(entities, list) or not entities:
        raise RequestError(
            400, "missing_entities", "The entities field is required and must be a non-empty array."
        )
    if any(not isinstance(name, str) or name not in ENTITIES for name in entities):
        raise RequestError(
            400,
            "invalid_entities",
            "One or more entity types are not valid. Must be sends, clicks, or revenue.",
        )
    # `is True`: JSON true only; "true", 1 (which == True in Python) and false are refused.
    if fields.get("confirm") is not True:
        raise RequestError(
            400, "confirm_required", "The confirm field must be set to true to proceed."
        )
    before = None
    if "before_date" in fields:
        raw = fields["before_date"]
        before = normalize_timestamp(raw) if isinstance(raw, str) else None
        if before is None:
            raise RequestError(
                400,
                "invalid_before_date",
                "before_date must be an ISO 8601 datetime with a UTC offset.",
            )
    return ClearRequest(tuple(dict.fromkeys(entities)), before)


@dataclass(frozen=True)
class UnsubscribeRequest:
    phone_number: str
    list_number: str


def parse_unsubscribe(body: Any, *, check_phones: bool = True) -> UnsubscribeRequest:
    fields = body if isinstance(body, dict) else {}
    if _missing(fields, "phone_number"):
        raise RequestError(400, "missing_phone_number", "The phone_number field was not provided.")
    if _missing(fields, "list_number"):
        raise RequestError(400, "missing_list_number", "The list_number field was not provided.")
    phone, list_number = fields["phone_number"], fields["list_number"]
    if not isinstance(phone, str) or (check_phones and not is_valid_e164(phone)):
        raise RequestError(
            400, "invalid_phone", "The phone_number is not a valid E.164 phone number."
        )
    if not isinstance(list_number, str) or (check_phones and not is_valid_e164(list_number)):
        raise RequestError(
            400, "invalid_list_number", "The list_number is not a valid E.164 phone number."
        )
    return UnsubscribeRequest(phone, list_number)


_SINK_REQUIRED = {
    "sends": (
        ("id", "missing_id"),
        ("to_number", "missing_to_number"),
        ("timestamp", "missing_timestamp"),
    ),
    "clicks": (
        ("message_id", "missing_message_id"),
        ("offer_id", "missing_offer_id"),
        ("phone_number", "missing_phone_number"),
        ("timestamp", "missing_timestamp"),
    ),
}


def sink_outcome(kind: str, records: list[Any]) -> BulkOutcome:
    """Sink mode: required fields present, nothing else checked, nothing stored."""
    outcome = BulkOutcome()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            outcome.fail(index, Rejected("invalid_record", "Each record must be a JSON object."))
            continue
        missing = next(
            (code for name, code in _SINK_REQUIRED[kind] if _missing(record, name)), None
        )
        if missing is None:
            outcome.success += 1
        else:
            record_id = record.get("id")
            outcome.fail(
                index,
                Rejected(
                    missing,
                    "A required field is missing.",
                    record_id if isinstance(record_id, str) else None,
                ),
            )
    return outcome


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

    def record_response(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests[(f"{method} {path}", status)] += 1

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
    journal: Journal = field(default_factory=Journal)


class SandboxApp:
    """The endpoints; ``asgi()`` builds the Starlette app wrapped in the fault layer."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def asgi(self) -> ASGIApp:
        api = [
            Route(SENDS_PATH, self._guarded(self.import_sends), methods=["POST"]),
            Route(CLICKS_PATH, self._guarded(self.import_clicks), methods=["POST"]),
            Route(CLEAR_PATH, self._guarded(self.clear_history), methods=["DELETE"]),
            Route(CONTACTS_PATH, self._guarded(self.unsubscribe), methods=["DELETE"]),
        ]
        tools = [
            Route("/", self.index, methods=["GET"]),
            Route("/_sandbox/stats", self.stats, methods=["GET"]),
            Route("/_sandbox/reset", self.reset, methods=["POST"]),
            *inspection_routes(self.state),
        ]
        starlette = Starlette(
            routes=api + tools,
            exception_handlers={HTTPException: _http_error},
        )
        # The API has exactly these paths: a trailing slash is a 404, not a redirect.
        starlette.router.redirect_slashes = False
        faulted = FaultMiddleware(
            JournalProbe(starlette, self.state.journal),
            self.state.injector,
            self.state.stats.record_response,
            known_key=lambda key: bool(key) and self.state.store.account_for_key(key) is not None,
        )
        return JournalMiddleware(faulted, self.state.journal)

    def _guarded(self, handler: Callable[[Request, int], Awaitable[Response]]) -> Handler:
        """Authenticate, then run the handler; map refusals and crashes to JSON errors."""

        async def endpoint(request: Request) -> Response:
            account_id = self._account(request)
            if account_id is None:
                return RequestError(
                    401, "unauthorized", "Missing or invalid X-Api-Key header."
                ).response()
            try:
                return await handler(request, account_id)
            except RequestError as refused:
                return refused.response()
            except ClientDisconnect:
                # The client gave up (its timeout) before sending the whole body: nothing
                # was done, and nobody is left to answer. 499 is nginx's name for it.
                return Response(status_code=499)
            except Exception:
                logger.exception("internal error on %s %s", request.method, request.url.path)
                return RequestError(
                    500, "internal_error", "An unexpected server error occurred."
                ).response()

        return endpoint

    def _account(self, request: Request) -> int | None:
        key = request.headers.get("x-api-key")
        return None if not key else self.state.store.account_for_key(key)

    async def import_sends(self, request: Request, account_id: int) -> Response:
        records = records_of(await read_json(request))
        note(request.scope, records=len(records))
        if self.state.sink:
            return self._sink_answer("sends", records)

        def work() -> BulkOutcome:
            checked = [check_send(record) for record in records]
            with self.state.store.transaction() as tx:
                return store_sends(tx, account_id, checked)

        outcome = await run_in_threadpool(work)
        self.state.stats.record_outcome("sends", outcome, sink=False)
        return self._bulk_answer(request, outcome, sends=True)

    async def import_clicks(self, request: Request, account_id: int) -> Response:
        records = records_of(await read_json(request))
        note(request.scope, records=len(records))
        if self.state.sink:
            return self._sink_answer("clicks", records)

        def work() -> BulkOutcome:
            checked = [check_click(record) for record in records]
            with self.state.store.transaction() as tx:
                return store_clicks(tx, account_id, checked)

        outcome = await run_in_threadpool(work)
        self.state.stats.record_outcome("clicks", outcome, sink=False)
        return self._bulk_answer(request, outcome, sends=False)

    def _sink_answer(self, kind: str, records: list[Any]) -> Response:
        outcome = sink_outcome(kind, records)
        self.state.stats.record_outcome(kind, outcome, sink=True)
        return JSONResponse(bulk_body(outcome, sends=kind == "sends"))

    def _bulk_answer(self, request: Request, outcome: BulkOutcome, *, sends: bool) -> Response:
        body = bulk_body(outcome, sends=sends)
        note(request.scope, counts=answer_counts(body))
        return JSONResponse(body)

    async def clear_history(self, request: Request, account_id: int) -> Response:
        clear = parse_clear(await read_json(request))
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
        body = parse_unsubscribe(await read_json(request), check_phones=not sink)
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
                    "GET /_sandbox/stats",
                    "POST /_sandbox/reset",
                    "GET /_sandbox/records",
                    "GET /_sandbox/requests",
                    "GET /_sandbox/ (a web page)",
                ],
            }
        )

    async def stats(self, request: Request) -> Response:
        data = await run_in_threadpool(self.state.store.stats)
        data.update(self.state.stats.snapshot())
        data["faults"] = dict(self.state.injector.counts)
        data["mode"] = "sink" if self.state.sink else "store"
        return JSONResponse(data)

    async def reset(self, request: Request) -> Response:
        await run_in_threadpool(self.state.store.reset, self.state.seed)
        self.state.stats.reset()
        self.state.injector.reset()
        self.state.journal.clear()
        return JSONResponse({"success": True})


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
