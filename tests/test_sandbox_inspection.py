"""``GET /_sandbox/records`` and ``GET /_sandbox/requests`` over real HTTP (issue 12, item 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import api_on, click, invoke, journal, send
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox, SandboxConfig, start_sandbox

REPO = Path(__file__).resolve().parent.parent
Factory = Any


def records(sandbox: RunningSandbox, **params: Any) -> httpx.Response:
    return httpx.get(sandbox.root_url + "/_sandbox/records", params=params, timeout=10)


def all_pages(sandbox: RunningSandbox, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = records(sandbox, **params, **({"after": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["records"]) <= int(params.get("limit", 50))
        found += body["records"]
        cursor = body["next"]
        if cursor is None:
            return found


def test_sends_newest_first_and_paged(sandbox: RunningSandbox) -> None:
    with api_on(sandbox) as api:
        for batch in range(3):
            api.ok(api.sends([send(f"page_{batch}_{n}") for n in range(4)]))
    newest = records(sandbox, entity="sends", limit=3).json()
    assert [r["id"] for r in newest["records"]] == ["page_2_3", "page_2_2", "page_2_1"]
    assert newest["account"] == "demo" and newest["next"]
    listed = all_pages(sandbox, entity="sends", limit=5)
    ids = [r["id"] for r in listed]
    assert len(ids) == len(set(ids)) == 9 + 12  # the seed's 9 demo messages and the 12 new
    assert ids[:12] == [f"page_{b}_{n}" for b in (2, 1, 0) for n in (3, 2, 1, 0)]
    by_id = [r["id"] for r in all_pages(sandbox, entity="sends", order="id", limit=4)]
    assert by_id == sorted(ids)
    first = listed[0]
    assert first == {
        "id": "page_2_3",
        "list_id": 42,
        "list_number": "+14155551234",
        "to_number": "+12025559876",
        "timestamp": "2025-11-15T14:30:00.000000Z",
        "imported": True,
        "message": None,
        "send_type": None,
        "delivered": None,
        "length": None,
        "creative_id": None,
    }


def test_every_entity_of_each_account(sandbox: RunningSandbox) -> None:
    with api_on(sandbox) as api:
        api.ok(api.sends([send("ins_1")]))
        api.ok(api.clicks([click("ins_1")]))
    clicks = records(sandbox, entity="clicks").json()["records"]
    assert clicks[0] == {
        "message_id": "ins_1",
        "offer_id": "offer_123",
        "phone_number": "+12025559876",
        "timestamp": "2025-11-15T14:35:00.000000Z",
        "send_timestamp": None,
    }
    revenue = records(sandbox, entity="revenue", order="id").json()["records"]
    assert [r["amount"] for r in revenue] == [12.5, 8.0, 5.25, 20.0, 3.0]
    contacts = all_pages(sandbox, entity="contacts", limit=2)
    unsubscribed = [c for c in contacts if c["phone"] == "+13105550177"]
    assert unsubscribed == [
        {
            "list_id": 43,
            "list_number": "+18005551234",
            "phone": "+13105550177",
            "active": False,
            "unsubscribe_reason": "stop_keyword",
            "send_count": 3,  # as seeded
            "click_count": 0,
            "last_clicked_at": None,
        }
    ]
    other = records(sandbox, account="other", entity="sends").json()["records"]
    assert {r["id"] for r in other} == {"oth_live_1", "oth_imp_1"}
    other_contacts = records(sandbox, account="other", entity="contacts").json()["records"]
    assert {c["list_number"] for c in other_contacts} == {"+16175550100"}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "entity is missing; use one of sends, clicks, revenue, contacts"),
        ({"entity": "messages"}, "entity is 'messages'"),
        ({"entity": "sends", "account": "acme"}, "no account named 'acme'; the accounts are"),
        ({"entity": "sends", "limit": "0"}, "limit must be a whole number from 1 to 1,000"),
        ({"entity": "sends", "limit": "1001"}, "from 1 to 1,000, not '1001'"),
        ({"entity": "sends", "limit": "ten"}, "not 'ten'"),
        ({"entity": "sends", "order": "oldest"}, "order must be newest or id"),
        ({"entity": "sends", "after": "nope!"}, "is not a cursor of this listing"),
        ({"entity": "contacts", "after": "WzFd"}, "is not a cursor"),  # [1]: one column of two
        ({"entity": "sends", "page": "2"}, "unknown parameter 'page'"),
    ],
)
def test_bad_query_is_a_400_that_says_why(
    sandbox: RunningSandbox, params: dict[str, str], says: str
) -> None:
    response = records(sandbox, **params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query"
    assert says in response.json()["message"]


def test_journal_lists_requests_with_counts_and_a_redacted_key(sandbox: RunningSandbox) -> None:
    with api_on(sandbox) as api:
        api.ok(api.sends([send("j_1"), send("j_1"), send("j_2", to_number="+1555")]))
        api.ok(api.clear({"entities": ["revenue"], "confirm": True}))
    with api_on(sandbox, key=None) as anonymous:
        assert anonymous.sends([send("j_3")]).status_code == 401
    data = journal(sandbox, 3)
    assert DEMO_API_KEY not in httpx.get(sandbox.root_url + "/_sandbox/requests").text
    refused, cleared, imported = data["requests"]
    assert (refused["status"], refused["key"], refused["records"]) == (401, None, None)
    assert cleared["counts"] == {"revenue": 5} and cleared["method"] == "DELETE"
    assert imported["path"] == "/api/v2/history/sends"
    assert imported["key"] == "trk_…0000" and imported["records"] == 3
    assert imported["counts"] == {
        "success_count": 1,
        "error_count": 1,
        "duplicates_skipped": 1,
        "invalid_phones": 1,
    }
    assert imported["fault"] is None and "request_body" not in imported
    assert [entry["seq"] for entry in data["requests"]] == [3, 2, 1]


def test_journal_marks_each_fault(sandbox_factory: Factory) -> None:
    failing = sandbox_factory(fail_rate=1.0, latency=(0.002, 0.002))
    with api_on(failing) as api:
        assert api.sends([send("f_1")]).status_code == 503
    (entry,) = journal(failing, 1)["requests"]
    assert (entry["status"], entry["fault"]) == (503, "latency 2.0 ms, fail")

    limited = sandbox_factory(rate_limit=0.1)
    with api_on(limited) as api:
        api.ok(api.sends([send("r_1")]))
        assert api.sends([send("r_2")]).status_code == 429
    limited_entry, passed = journal(limited, 2)["requests"]
    assert (limited_entry["status"], limited_entry["fault"]) == (429, "rate_limited")
    assert (passed["status"], passed["fault"]) == (200, None)

    dropping = sandbox_factory(drop_rate=1.0)
    with api_on(dropping) as api, pytest.raises(httpx.TransportError):
        api.sends([send("d_1")])
    (dropped,) = journal(dropping, 1)["requests"]
    # Stored and counted, then the connection closed without an answer.
    assert (dropped["status"], dropped["fault"], dropped["records"]) == (200, "drop", 1)
    assert dropped["counts"]["success_count"] == 1


def test_journal_is_bounded_and_keeps_bodies_only_when_asked(sandbox_factory: Factory) -> None:
    small = sandbox_factory(journal_size=2)
    with api_on(small) as api:
        for n in range(5):
            api.ok(api.sends([send(f"b_{n}")]))
    data = journal(small, 5)
    assert (data["size"], len(data["requests"])) == (2, 2)
    assert [entry["seq"] for entry in data["requests"]] == [5, 4]
    too_many = httpx.get(small.root_url + "/_sandbox/requests", params={"limit": 3})
    assert too_many.status_code == 400
    assert "limit must be a whole number from 1 to 2" in too_many.json()["message"]

    with_bodies = sandbox_factory(journal_bodies=True)
    with api_on(with_bodies) as api:
        api.ok(api.sends([send("body_1")]))
    (entry,) = journal(with_bodies, 1)["requests"]
    assert '"body_1"' in entry["request_body"]
    assert '"success_count":1' in entry["response_body"]
    assert DEMO_API_KEY not in str(entry)


def test_reset_empties_the_journal(sandbox: RunningSandbox) -> None:
    with api_on(sandbox) as api:
        api.ok(api.sends([send("x_1")]))
    journal(sandbox, 1)
    sandbox.reset()
    assert journal(sandbox, 0)["requests"] == []


def test_works_in_memory() -> None:
    with start_sandbox(SandboxConfig(db=":memory:")) as sandbox, api_on(sandbox) as api:
        api.ok(api.sends([send("mem_1")]))
        assert records(sandbox, entity="sends", limit=1).json()["records"][0]["id"] == "mem_1"
        assert journal(sandbox, 1)["requests"][0]["records"] == 1


def test_records_of_an_embedded_sandbox_run(tmp_path: Path) -> None:
    db = tmp_path / "rehearsal.db"
    result = invoke(
        ["import-sends", str(REPO / "samples" / "sends.csv"), "--sandbox", "--sandbox-db", str(db)],
        api_key=None,
        cwd=tmp_path,
    )
    assert result.returncode in (0, 1), result.output
    with start_sandbox(SandboxConfig(db=db)) as sandbox:
        listed = all_pages(sandbox, entity="sends", limit=100)
    imported = [r for r in listed if r["imported"] and not r["id"].startswith("imp_")]
    assert imported, "the embedded run's sends are listed"
