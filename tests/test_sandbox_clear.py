"""DELETE /v2/history/clear: scoping, the exclusive before_date, confirm, errors, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api, api_on, click, query, send
from trackly_migrate.sandbox.seed import OTHER_API_KEY

ALL = ["sends", "clicks", "revenue"]


def ids(api: Api, table: str, column: str = "id") -> set[str]:
    return {row[0] for row in query(api.sandbox, f"SELECT {column} FROM {table}")}


def cleared(api: Api, body: dict[str, Any]) -> dict[str, int]:
    data = api.ok(api.clear(body))
    assert data["success"] is True
    result: dict[str, int] = data["cleared"]
    return result


def test_before_date_is_exclusive(api: Api) -> None:
    counts = cleared(api, {"entities": ALL, "before_date": "2025-12-01T00:00:00Z", "confirm": True})
    assert counts == {"sends": 3, "clicks": 1, "revenue": 3}
    messages = ids(api, "messages")
    assert "imp_0004" in messages  # stamped exactly 2025-12-01T00:00:00Z: stays
    assert {"imp_0001", "imp_0002", "imp_0003"}.isdisjoint(messages)
    # imp_0003's click is stamped exactly at before_date: it stays, by its own timestamp.
    assert "imp_0003" in ids(api, "clicks", "message_id")


def test_before_date_compares_instants_not_text(api: Api) -> None:
    # 01:00 at +01:00 is the same instant as 00:00Z: same result as the Z form.
    body = {"entities": ALL, "before_date": "2025-12-01T01:00:00+01:00", "confirm": True}
    assert cleared(api, body) == {"sends": 3, "clicks": 1, "revenue": 3}
    assert "imp_0004" in ids(api, "messages")


def test_one_microsecond_later_takes_the_boundary_records(api: Api) -> None:
    body = {"entities": ALL, "before_date": "2025-12-01T00:00:00.000001Z", "confirm": True}
    assert cleared(api, body) == {"sends": 4, "clicks": 2, "revenue": 3}


def test_without_before_date_every_matching_record_goes(api: Api) -> None:
    assert cleared(api, {"entities": ALL, "confirm": True}) == {
        "sends": 5,
        "clicks": 3,
        "revenue": 5,
    }
    # Live sends and their clicks are never touched; ALL revenue went, live included.
    assert ids(api, "messages") >= {"a1b2c3d4", "e5f6g7h8", "live_0003", "live_0004"}
    demo = api.sandbox.stats()["accounts"]["demo"]
    assert (demo["imported_messages"], demo["live_messages"]) == (0, 4)
    assert (demo["clicks"], demo["revenue"]) == (1, 0)
    assert ids(api, "clicks", "message_id") == {"live_0003", "oth_imp_1"}


@pytest.mark.parametrize("order", [["sends", "clicks"], ["clicks", "sends"]])
def test_clicks_of_sends_cleared_in_the_same_request_go_too(api: Api, order: list[str]) -> None:
    api.ok(api.sends([send("fresh")]))
    api.ok(api.clicks([click("fresh")]))
    counts = cleared(api, {"entities": order, "confirm": True})
    assert counts == {order[0]: counts[order[0]], order[1]: counts[order[1]]}
    assert list(counts) == order
    assert (counts["sends"], counts["clicks"]) == (6, 4)
    assert "fresh" not in ids(api, "clicks", "message_id")


def test_clicks_left_behind_by_an_earlier_sends_clear_are_no_longer_imported(api: Api) -> None:
    # The awkward corner of the contract: clicks are judged by their message, so once the
    # imported sends are gone (in an earlier request), their clicks are out of reach.
    assert cleared(api, {"entities": ["sends"], "confirm": True}) == {"sends": 5}
    assert cleared(api, {"entities": ["clicks"], "confirm": True}) == {"clicks": 0}


def test_cleared_holds_only_the_requested_entities(api: Api) -> None:
    assert cleared(api, {"entities": ["revenue"], "confirm": True}) == {"revenue": 5}
    assert cleared(api, {"entities": ["clicks", "clicks"], "confirm": True}) == {"clicks": 3}


def test_revenue_of_live_sends_is_cleared(api: Api) -> None:
    body = {"entities": ["revenue"], "before_date": "2025-11-21T00:00:00Z", "confirm": True}
    assert cleared(api, body) == {"revenue": 3}
    remaining = query(api.sandbox, "SELECT message_id FROM revenue WHERE account_id = 1")
    assert sorted(row[0] for row in remaining) == ["imp_0005", "live_0004"]


def test_the_other_account_is_untouched(api: Api) -> None:
    before = api.sandbox.stats()["accounts"]["other"]
    cleared(api, {"entities": ALL, "confirm": True})
    assert api.sandbox.stats()["accounts"]["other"] == before
    with api_on(api.sandbox, OTHER_API_KEY) as other:
        assert other.ok(other.clear({"entities": ALL, "confirm": True}))["cleared"] == {
            "sends": 1,
            "clicks": 1,
            "revenue": 2,
        }


@pytest.mark.parametrize(
    "confirm", ["true", 1, 1.0, False, None, [True], {"value": True}, "missing"]
)
def test_confirm_must_be_json_true(api: Api, confirm: object) -> None:
    body: dict[str, Any] = {"entities": ALL}
    if confirm != "missing":
        body["confirm"] = confirm
    response = api.clear(body)
    assert response.status_code == 400
    assert response.json()["error"] == "confirm_required"
    assert api.sandbox.stats()["accounts"]["demo"]["imported_messages"] == 5


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"confirm": True}, "missing_entities"),
        ({"entities": [], "confirm": True}, "missing_entities"),
        ({"entities": "sends", "confirm": True}, "missing_entities"),
        ({"entities": None, "confirm": True}, "missing_entities"),
        ([], "missing_entities"),
        ({"entities": ["sends", "contacts"], "confirm": True}, "invalid_entities"),
        ({"entities": ["Sends"], "confirm": True}, "invalid_entities"),
        ({"entities": [1], "confirm": True}, "invalid_entities"),
        ({"entities": ["bogus"]}, "invalid_entities"),
        ({"entities": ALL, "confirm": True, "before_date": "2025-12-01"}, "invalid_before_date"),
        (
            {"entities": ALL, "confirm": True, "before_date": "2025-12-01T00:00:00"},
            "invalid_before_date",
        ),
        ({"entities": ALL, "confirm": True, "before_date": "yesterday"}, "invalid_before_date"),
        ({"entities": ALL, "confirm": True, "before_date": None}, "invalid_before_date"),
        ({"entities": ALL, "confirm": True, "before_date": 1764547200}, "invalid_before_date"),
    ],
)
def test_request_errors(api: Api, body: object, code: str) -> None:
    response = api.clear(body)
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert response.json()["message"]
    assert api.sandbox.stats()["tables"]["messages"] == 11


def test_invalid_json(api: Api) -> None:
    response = api.client.request("DELETE", "/v2/history/clear", content=b"{entities}")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
