"""Helpers shared by the sandbox tests (a module of its own: only test_sandbox_* files are ours).

``Api`` talks to a running sandbox over real HTTP with httpx; ``db`` opens its SQLite file
read-only so a test can check what was really stored, not only what was answered.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox, SandboxConfig, start_sandbox

SENDS = "/v2/history/sends"
CLICKS = "/v2/history/clicks"
CLEAR = "/v2/history/clear"
CONTACTS = "/v2/contacts"


class Api:
    """An httpx client on the sandbox's API base URL, with one account's key."""

    def __init__(self, sandbox: RunningSandbox, key: str | None = DEMO_API_KEY) -> None:
        self.sandbox = sandbox
        headers = {} if key is None else {"X-Api-Key": key}
        self.client = httpx.Client(base_url=sandbox.url, headers=headers, timeout=60)

    def close(self) -> None:
        self.client.close()

    def sends(self, records: Any, **extra: Any) -> httpx.Response:
        return self.client.post(SENDS, json={"records": records, **extra})

    def clicks(self, records: Any) -> httpx.Response:
        return self.client.post(CLICKS, json={"records": records})

    def clear(self, body: Any) -> httpx.Response:
        return self.client.request("DELETE", CLEAR, json=body)

    def unsubscribe(self, phone: str, list_number: str) -> httpx.Response:
        body = {"phone_number": phone, "list_number": list_number}
        return self.client.request("DELETE", CONTACTS, json=body)

    def ok(self, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


def send(message_id: Any, **fields: Any) -> dict[str, Any]:
    """A valid send record to list 42 of the demo account, with overrides."""
    record: dict[str, Any] = {
        "id": message_id,
        "list_id": 42,
        "to_number": "+12025559876",
        "timestamp": "2025-11-15T14:30:00Z",
    }
    record.update(fields)
    return record


def click(message_id: Any, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "message_id": message_id,
        "offer_id": "offer_123",
        "phone_number": "+12025559876",
        "timestamp": "2025-11-15T14:35:00Z",
    }
    record.update(fields)
    return record


def query(sandbox: RunningSandbox, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the sandbox's database file (opened read-only, next to the server)."""
    assert sandbox.db_path is not None
    uri = Path(sandbox.db_path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def contact(sandbox: RunningSandbox, list_id: int, phone: str) -> dict[str, Any] | None:
    rows = query(
        sandbox,
        "SELECT active, unsubscribe_reason, send_count, click_count, last_clicked_at"
        " FROM list_contacts WHERE list_id = ? AND phone = ?",
        list_id,
        phone,
    )
    if not rows:
        return None
    active, reason, sends, clicks, last = rows[0]
    return {
        "active": bool(active),
        "unsubscribe_reason": reason,
        "send_count": sends,
        "click_count": clicks,
        "last_clicked_at": last,
    }


@contextmanager
def shared_sandbox(folder: Path, **options: Any) -> Iterator[RunningSandbox]:
    """One sandbox for a whole test module; tests call ``reset()`` to start from the seed."""
    with start_sandbox(SandboxConfig(db=folder / "sandbox.db", **options)) as running:
        yield running


@contextmanager
def api_on(sandbox: RunningSandbox, key: str | None = DEMO_API_KEY) -> Iterator[Api]:
    api = Api(sandbox, key)
    try:
        yield api
    finally:
        api.close()


def test_support_helpers_build_valid_records() -> None:
    # This module holds helpers; one check keeps pytest from reporting it as empty.
    assert send("x")["list_id"] == 42
    assert click("x")["offer_id"] == "offer_123"
