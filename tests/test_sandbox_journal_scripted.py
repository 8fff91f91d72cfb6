"""Scripted faults (``/_sandbox/faults``) in the request journal and on the page.

The journal (``/_sandbox/requests``) and the scripted faults were written apart; a request a
scripted fault changed must be journaled with that fault named, its status as the client saw
it (or the app's, when the connection was dropped after it), and marked on the page.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import Page, api_on, get_page, journal, send
from trackly_migrate.sandbox.server import RunningSandbox

SENDS_PATH = "/api/v2/history/sends"


def queue(sandbox: RunningSandbox, *faults: dict[str, Any]) -> None:
    response = httpx.post(sandbox.root_url + "/_sandbox/faults", json={"faults": list(faults)})
    assert response.status_code == 200, response.text


def journal_entries(sandbox: RunningSandbox, total: int) -> list[dict[str, Any]]:
    """The entries, newest first, once there are ``total``."""
    return list(journal(sandbox, total)["requests"])


@pytest.mark.parametrize(
    ("fault", "status", "label"),
    [
        ({"kind": "internal_error"}, 500, "scripted internal_error"),
        ({"kind": "bad_gateway"}, 502, "scripted bad_gateway"),
        ({"kind": "gateway_timeout"}, 504, "scripted gateway_timeout"),
        (
            {"kind": "rate_limited", "retry_after": 3},
            429,
            "scripted rate_limited (retry after 3 s)",
        ),
        (
            {"kind": "save_error", "path": SENDS_PATH, "indexes": [1, 2]},
            200,
            "scripted save_error (records 1 2)",
        ),
        (
            {"kind": "count_mismatch", "path": SENDS_PATH, "mode": "undercount"},
            200,
            "scripted count_mismatch (undercount)",
        ),
        ({"kind": "slow_body", "seconds": 0.05}, 200, "scripted slow_body (over 0.05 s)"),
    ],
)
def test_journal_names_each_scripted_fault_with_the_status_answered(
    sandbox: RunningSandbox, fault: dict[str, Any], status: int, label: str
) -> None:
    queue(sandbox, fault)
    with api_on(sandbox) as api:
        answered = api.sends([send(f"sj_{n}") for n in range(3)])
        assert answered.status_code == status
        api.ok(api.sends([send("sj_after")]))  # the fault was for one request only
    after, faulted = journal_entries(sandbox, 2)
    assert (faulted["status"], faulted["fault"]) == (status, label)
    assert (after["status"], after["fault"]) == (200, None)


def test_journal_counts_what_a_scripted_save_error_answered(sandbox: RunningSandbox) -> None:
    queue(sandbox, {"kind": "save_error", "path": SENDS_PATH, "indexes": [1]})
    with api_on(sandbox) as api:
        body = api.ok(api.sends([send(f"sc_{n}") for n in range(3)]))
    assert (body["success_count"], body["error_count"]) == (2, 1)
    (entry,) = journal_entries(sandbox, 1)
    assert entry["records"] == 3
    assert entry["counts"]["success_count"] == 2 and entry["counts"]["error_count"] == 1


def test_a_scripted_drop_is_journaled_once_with_the_apps_status(sandbox: RunningSandbox) -> None:
    queue(sandbox, {"kind": "drop", "path": SENDS_PATH})
    with api_on(sandbox) as api, pytest.raises(httpx.TransportError):
        api.sends([send("sd_1")])
    (entry,) = journal_entries(sandbox, 1)
    # Stored and counted, then the connection closed: named once, as scripted.
    assert (entry["status"], entry["fault"], entry["records"]) == (200, "scripted drop", 1)
    assert entry["counts"]["success_count"] == 1


def test_page_marks_requests_a_scripted_fault_changed(sandbox: RunningSandbox) -> None:
    queue(sandbox, {"kind": "internal_error", "path": SENDS_PATH})
    with api_on(sandbox) as api:
        assert api.sends([send("sp_1")]).status_code == 500
        api.ok(api.sends([send("sp_1")]))
    journal_entries(sandbox, 2)
    page = Page(get_page(sandbox).text)
    (faulted,) = page.rows_with_class("fault")
    assert "⚠ scripted internal_error" in faulted and "500" in faulted
