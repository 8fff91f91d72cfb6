"""The sandbox tests' helpers (in tests/helpers.py) build what they promise."""

from __future__ import annotations

# Re-exported: tests written before the helpers moved import them from here.
from tests.helpers import (
    CLEAR,
    CLICKS,
    CONTACTS,
    SENDS,
    Api,
    api_on,
    click,
    contact,
    query,
    send,
    shared_sandbox,
)

__all__ = [
    "CLEAR",
    "CLICKS",
    "CONTACTS",
    "SENDS",
    "Api",
    "api_on",
    "click",
    "contact",
    "query",
    "send",
    "shared_sandbox",
]


def test_support_helpers_build_valid_records() -> None:
    assert send("x")["list_id"] == 42
    assert click("x")["offer_id"] == "offer_123"
