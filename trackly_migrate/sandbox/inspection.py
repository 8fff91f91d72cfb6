"""Read-only inspection of a running sandbox: ``/_sandbox/records``, ``/_sandbox/requests``.

Records are paged by keyset (``after`` is an opaque cursor the previous page gave), newest
first (the order they were stored in, reversed) or by id. Every query parameter is checked:
a wrong one is a 400 that says which, and what it may be.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from trackly_migrate.sandbox.journal import Journal
from trackly_migrate.sandbox.page import JOURNAL_ROWS, LATEST, PageData, render
from trackly_migrate.sandbox.store import Store

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
ORDERS = ("newest", "id")


class QueryError(Exception):
    """A query parameter is wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class _Entity:
    """How to list one entity: its columns, its account filter, and its two sort keys."""

    select: str  # "SELECT ... FROM ... WHERE <account filter>"
    columns: tuple[str, ...]
    newest: tuple[str, ...]  # sort key for newest first (descending)
    by_id: tuple[str, ...]  # sort key for by id (ascending)


_ENTITIES: dict[str, _Entity] = {
    "sends": _Entity(
        "SELECT m.rowid, m.id, m.list_id, l.number, m.to_number, m.timestamp, m.imported,"
        " m.message, m.send_type, m.delivered, m.length, m.creative_id"
        " FROM messages m LEFT JOIN lists l ON l.id = m.list_id WHERE m.account_id = ?",
        (
            "id",
            "list_id",
            "list_number",
            "to_number",
            "timestamp",
            "imported",
            "message",
            "send_type",
            "delivered",
            "length",
            "creative_id",
        ),
        ("m.rowid",),
        ("m.id",),
    ),
    "clicks": _Entity(
        "SELECT c.rowid, c.message_id, c.offer_id, c.phone, c.timestamp, c.send_timestamp"
        " FROM clicks c WHERE c.account_id = ?",
        ("message_id", "offer_id", "phone_number", "timestamp", "send_timestamp"),
        ("c.rowid",),
        ("c.message_id",),
    ),
    "revenue": _Entity(
        "SELECT r.id, r.id, r.message_id, r.amount, r.timestamp FROM revenue r"
        " WHERE r.account_id = ?",
        ("id", "message_id", "amount", "timestamp"),
        ("r.id",),
        ("r.id",),
    ),
    # Contacts have no insertion order (their table has no rowid): both orders are by list
    # and phone, newest first meaning the list order reversed.
    "contacts": _Entity(
        "SELECT k.list_id, k.list_id, l.number, k.phone, k.active, k.unsubscribe_reason,"
        " k.send_count, k.click_count, k.last_clicked_at"
        " FROM list_contacts k JOIN lists l ON l.id = k.list_id WHERE l.account_id = ?",
        (
            "list_id",
            "list_number",
            "phone",
            "active",
            "unsubscribe_reason",
            "send_count",
            "click_count",
            "last_clicked_at",
        ),
        ("k.list_id", "k.phone"),
        ("k.list_id", "k.phone"),
    ),
}
ENTITIES = tuple(_ENTITIES)
_BOOLEAN_COLUMNS = {"imported", "delivered", "active"}


@dataclass(frozen=True)
class RecordsQuery:
    account: str
    entity: str
    limit: int
    order: str
    after: tuple[Any, ...] | None


def parse_limit(raw: str | None, maximum: int = MAX_LIMIT) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise QueryError(f"limit must be a whole number from 1 to {maximum:,}, not {raw!r}")
    return int(raw)


def parse_records_query(params: Mapping[str, str], accounts: list[str]) -> RecordsQuery:
    """Check the query of /_sandbox/records; the account defaults to the first one."""
    known = {"account", "entity", "limit", "order", "after"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise QueryError(f"unknown parameter {unknown[0]!r}; use {', '.join(sorted(known))}")
    account = params.get("account", accounts[0] if accounts else "")
    if account not in accounts:
        raise QueryError(f"no account named {account!r}; the accounts are {', '.join(accounts)}")
    entity = params.get("entity")
    if entity not in _ENTITIES:
        shown = "missing" if entity is None else repr(entity)
        raise QueryError(f"entity is {shown}; use one of {', '.join(ENTITIES)}")
    order = params.get("order", "newest")
    if order not in ORDERS:
        raise QueryError(f"order must be newest or id, not {order!r}")
    after = params.get("after")
    return RecordsQuery(
        account,
        entity,
        parse_limit(params.get("limit")),
        order,
        None if after is None else _decode_cursor(after, _key_width(entity, order)),
    )


def _key_width(entity: str, order: str) -> int:
    spec = _ENTITIES[entity]
    return len(spec.newest if order == "newest" else spec.by_id)


def _encode_cursor(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def _decode_cursor(text: str, width: int) -> tuple[Any, ...]:
    problem = QueryError(
        f"after={text!r} is not a cursor of this listing; pass the 'next' value of the "
        "previous page (with the same entity and order)"
    )
    try:
        key = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise problem from None
    if not isinstance(key, list) or len(key) != width:
        raise problem
    if not all(isinstance(part, str | int) and not isinstance(part, bool) for part in key):
        raise problem
    return tuple(key)


def list_records(store: Store, query: RecordsQuery) -> dict[str, Any]:
    """One page of an account's records, and the cursor of the next page (or None)."""
    spec = _ENTITIES[query.entity]
    names = {name: account_id for account_id, name in store.account_names().items()}
    key_columns = spec.newest if query.order == "newest" else spec.by_id
    descending = query.order == "newest"
    sql = spec.select
    params: list[Any] = [names[query.account]]
    if query.after is not None:
        # Row values compare as tuples: (a, b) < (x, y), so the keyset works for two columns.
        compare = "<" if descending else ">"
        sql += f" AND ({', '.join(key_columns)}) {compare} ({', '.join('?' * len(key_columns))})"
        params += query.after
    direction = " DESC" if descending else ""
    sql += " ORDER BY " + ", ".join(column + direction for column in key_columns)
    sql += " LIMIT ?"
    params.append(query.limit + 1)
    with store.reading() as conn:
        rows = _fetch(conn, sql, params)
    page = rows[: query.limit]
    records = [_record(spec.columns, row) for row in page]
    more = len(rows) > query.limit
    return {
        "account": query.account,
        "entity": query.entity,
        "order": query.order,
        "records": records,
        "next": _encode_cursor(_sort_key(query.entity, query.order, page[-1])) if more else None,
    }


def _fetch(conn: sqlite3.Connection, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def _sort_key(entity: str, order: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The key columns' values of a row as fetched (the first column is the row's key)."""
    if entity == "contacts":
        return (row[0], row[3])  # list_id, phone
    if order == "newest":
        return (row[0],)  # rowid (revenue: its id)
    return (row[1],)  # the id column


def _record(columns: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as the API would spell it; the leading sort-key column is left out."""
    record = dict(zip(columns, row[1:], strict=True))
    for name in _BOOLEAN_COLUMNS & record.keys():
        if record[name] is not None:
            record[name] = bool(record[name])
    return record


def list_requests(journal: Journal, params: Mapping[str, str]) -> dict[str, Any]:
    """The newest journal entries (``limit``, default 50), newest first."""
    unknown = sorted(set(params) - {"limit"})
    if unknown:
        raise QueryError(f"unknown parameter {unknown[0]!r}; use limit")
    limit = parse_limit(params.get("limit"), maximum=journal.size)
    return {
        "size": journal.size,
        "total": journal.total,
        "bodies": journal.bodies,
        "requests": journal.latest(limit),
    }


# ---------------------------------------------------------------------------------------
# The routes
# ---------------------------------------------------------------------------------------


class InspectedState(Protocol):
    """What the inspection routes read of the sandbox (``app.SandboxState`` has it)."""

    store: Store
    journal: Journal
    sink: bool


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status, media_type="application/json")


def _refused(exc: QueryError) -> Response:
    return _json({"error": "invalid_query", "message": str(exc)}, 400)


def _accounts(store: Store) -> list[str]:
    return [name for _, name in sorted(store.account_names().items())]


def _page_data(state: InspectedState, api_url: str, refresh: int) -> PageData:
    """Runs in the thread pool: a few small queries under the store's lock."""
    store = state.store
    latest = {
        name: {
            entity: list_records(store, RecordsQuery(name, entity, LATEST, "newest", None))[
                "records"
            ]
            for entity in ENTITIES
        }
        for name in _accounts(store)
    }
    return PageData(
        mode="sink" if state.sink else "store",
        api_url=api_url,
        refresh=refresh,
        accounts=store.stats()["accounts"],
        latest=latest,
        requests=state.journal.latest(JOURNAL_ROWS),
        journal_size=state.journal.size,
        journal_total=state.journal.total,
    )


def _parse_refresh(params: Mapping[str, str]) -> int:
    raw = params.get("refresh", "2")
    if not raw.isdigit() or int(raw) > 3600:
        raise QueryError(f"refresh must be seconds from 0 (off) to 3600, not {raw!r}")
    return int(raw)


def inspection_routes(state: InspectedState) -> list[Route]:
    """``GET /_sandbox/records``, ``GET /_sandbox/requests`` and the page ``GET /_sandbox/``."""

    async def records(request: Request) -> Response:
        try:
            query = parse_records_query(request.query_params, _accounts(state.store))
        except QueryError as exc:
            return _refused(exc)
        return _json(await run_in_threadpool(list_records, state.store, query))

    async def requests(request: Request) -> Response:
        try:
            return _json(list_requests(state.journal, request.query_params))
        except QueryError as exc:
            return _refused(exc)

    async def page(request: Request) -> Response:
        try:
            refresh = _parse_refresh(request.query_params)
        except QueryError as exc:
            return PlainTextResponse(str(exc), 400)
        api_url = str(request.base_url) + "api"
        data = await run_in_threadpool(_page_data, state, api_url, refresh)
        return HTMLResponse(render(data))

    return [
        Route("/_sandbox/records", records, methods=["GET"]),
        Route("/_sandbox/requests", requests, methods=["GET"]),
        Route("/_sandbox/", page, methods=["GET"]),
    ]
