"""POST /v2/history/sends: every rule of the contract and every decision for its gaps."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api, api_on, contact, query, send
from trackly_migrate.sandbox.seed import OTHER_API_KEY


def codes(body: dict[str, object]) -> list[str]:
    errors = body["errors"]
    assert isinstance(errors, list)
    return [entry["code"] for entry in errors]


def test_errors_are_capped_at_100_but_error_count_is_true(api: Api) -> None:
    records = [send(f"bad{i}", to_number="+1555") for i in range(150)]
    records += [send(f"good{i}") for i in range(5)]
    body = api.ok(api.sends(records))
    assert body["success_count"] == 5
    assert body["error_count"] == 150
    assert body["invalid_phones"] == 150
    assert len(body["errors"]) == 100
    assert [e["index"] for e in body["errors"]] == list(range(100))
    assert body["errors"][0] == {
        "index": 0,
        "id": "bad0",
        "code": "invalid_phone",
        "error": "Field 'to_number' is not a valid E.164 phone number.",
    }


def test_duplicates_within_one_request_and_across_requests(api: Api) -> None:
    body = api.ok(api.sends([send("d1"), send("d2"), send("d1"), send("d1")]))
    assert (body["success_count"], body["duplicates_skipped"]) == (2, 2)
    again = api.ok(api.sends([send("d2"), send("d3")]))
    assert (again["success_count"], again["duplicates_skipped"]) == (1, 1)
    # A seeded live message id is a duplicate too (dedup is by id, imported or not).
    assert api.ok(api.sends([send("a1b2c3d4")]))["duplicates_skipped"] == 1


def test_a_duplicate_wins_over_its_own_field_errors(api: Api) -> None:
    api.ok(api.sends([send("x1")]))
    body = api.ok(api.sends([send("x1", to_number="garbage")]))
    assert (body["duplicates_skipped"], body["error_count"]) == (1, 0)


@pytest.mark.parametrize(
    "failing",
    [
        send("y1", to_number="+1555"),  # fails the field checks
        send("y1", list_id=900),  # fails on the account's data: another account's list
    ],
)
def test_a_repeat_of_a_failed_record_in_the_same_request_is_judged_on_its_own(
    api: Api, failing: dict[str, Any]
) -> None:
    # CONTRACT.md: a duplicate is a record whose id already exists; an earlier record of the
    # same request that failed left nothing, so a valid repeat is stored, never "skipped".
    body = api.ok(api.sends([failing, send("y1"), send("y1")]))
    assert (body["error_count"], body["success_count"], body["duplicates_skipped"]) == (1, 1, 1)
    assert [e["index"] for e in body["errors"]] == [0]
    assert query(api.sandbox, "SELECT COUNT(*) FROM messages WHERE id = 'y1'") == [(1,)]


@pytest.mark.parametrize(
    ("record", "code", "record_id"),
    [
        ({"to_number": "+12025559876", "timestamp": "2025-11-15T14:30:00Z"}, "missing_id", None),
        (send(""), "missing_id", None),
        (send(None), "missing_id", None),
        (send(12), "invalid_type", None),
        ({"id": "m1", "timestamp": "2025-11-15T14:30:00Z"}, "missing_to_number", "m1"),
        (send("m2", to_number=""), "missing_to_number", "m2"),
        ({"id": "m3", "to_number": "+12025559876"}, "missing_timestamp", "m3"),
        (send("t1", timestamp="2025-11-15T14:30:00"), "invalid_timestamp", "t1"),
        (send("t2", timestamp="2025-11-15"), "invalid_timestamp", "t2"),
        (send("t3", timestamp="2025-02-30T10:00:00Z"), "invalid_timestamp", "t3"),
        (send("t4", timestamp="15/11/2025 14:30"), "invalid_timestamp", "t4"),
        (send("p1", to_number="12025559876"), "invalid_phone", "p1"),
        (send("p2", to_number="+1 202 555 9876"), "invalid_phone", "p2"),
        (send("p3", list_id=None, list_number="+1800"), "invalid_phone", "p3"),
        (send("y1", list_id="42"), "invalid_type", "y1"),
        (send("y2", delivered="yes"), "invalid_type", "y2"),
        (send("y3", length=True), "invalid_type", "y3"),
        (send("y4", creative_id=1.5), "invalid_type", "y4"),
        (send("y5", to_number=12025559876), "invalid_type", "y5"),
        (send("y6", message=["a"]), "invalid_type", "y6"),
        (send("y7", length=2**70), "invalid_type", "y7"),
        (send("l1", list_id=4242), "list_not_found", "l1"),
        (send("l2", list_id=None, list_number="+13125550100"), "list_not_found", "l2"),
        (send("l3", list_number="+18005551234"), "list_not_found", "l3"),
        (["not", "an", "object"], "invalid_record", None),
        ("hist_0001", "invalid_record", None),
    ],
)
def test_per_record_error_codes(api: Api, record: object, code: str, record_id: str | None) -> None:
    body = api.ok(api.sends([record]))
    assert body["error_count"] == 1
    assert body["invalid_phones"] == (1 if code == "invalid_phone" else 0)
    (entry,) = body["errors"]
    assert (entry["index"], entry["code"], entry["id"]) == (0, code, record_id)
    assert entry["error"]


def test_wrong_type_error_names_the_field(api: Api) -> None:
    body = api.ok(api.sends([send("n1", delivered="yes")]))
    assert "delivered" in body["errors"][0]["error"]


def test_nulls_in_optional_fields_mean_absent(api: Api) -> None:
    record = send("o1", message=None, delivered=None, length=None, creative_id=None)
    assert api.ok(api.sends([record]))["success_count"] == 1


def test_list_by_id_and_number_must_be_the_same_list(api: Api) -> None:
    same = send("b1", list_id=42, list_number="+14155551234")
    assert api.ok(api.sends([same]))["success_count"] == 1


def test_send_without_a_list_is_stored_without_contact(api: Api) -> None:
    record = send("nolist", list_id=None, to_number="+12025550199")
    assert api.ok(api.sends([record]))["success_count"] == 1
    rows = query(api.sandbox, "SELECT list_id FROM messages WHERE id = 'nolist'")
    assert rows == [(None,)]
    assert query(api.sandbox, "SELECT * FROM list_contacts WHERE phone = '+12025550199'") == []


def test_imported_is_forced_whatever_the_body_says(api: Api) -> None:
    body = api.ok(api.sends([send("i1", imported=False)], imported=False))
    assert body["success_count"] == 1
    assert query(api.sandbox, "SELECT imported FROM messages WHERE id = 'i1'") == [(1,)]


def test_timestamps_are_stored_in_utc(api: Api) -> None:
    api.ok(api.sends([send("tz1", timestamp="2025-11-15T09:30:00.5-05:00")]))
    rows = query(api.sandbox, "SELECT timestamp FROM messages WHERE id = 'tz1'")
    assert rows == [("2025-11-15T14:30:00.500000Z",)]


def test_sends_create_and_bump_contacts(api: Api) -> None:
    api.ok(api.sends([send("c1", to_number="+12025550198"), send("c2", to_number="+12025550198")]))
    found = contact(api.sandbox, 42, "+12025550198")
    assert found is not None
    assert (found["active"], found["send_count"]) == (True, 2)


def test_a_later_send_never_reactivates_an_unsubscribed_contact(api: Api) -> None:
    assert api.ok(api.unsubscribe("+12025559876", "+14155551234"))["unsubscribed"] is True
    api.ok(api.sends([send("after_unsub")]))
    found = contact(api.sandbox, 42, "+12025559876")
    assert found is not None
    assert (found["active"], found["unsubscribe_reason"], found["send_count"]) == (
        False,
        "api",
        2,
    )
    # The seeded contact unsubscribed by keyword stays so too.
    api.ok(api.sends([send("kw", list_id=43, to_number="+13105550177")]))
    keyword = contact(api.sandbox, 43, "+13105550177")
    assert keyword is not None
    assert (keyword["active"], keyword["unsubscribe_reason"]) == (False, "stop_keyword")


def test_accounts_are_isolated(api: Api) -> None:
    # The other account's list, by id and by number, is not the demo account's.
    body = api.ok(api.sends([send("iso1", list_id=900), send("iso2", list_number="+16175550100")]))
    assert codes(body) == ["list_not_found", "list_not_found"]
    # The same message id may live in both accounts independently.
    with api_on(api.sandbox, OTHER_API_KEY) as other:
        assert other.ok(other.sends([send("a1b2c3d4", list_id=900)]))["success_count"] == 1
        assert other.ok(other.sends([send("shared", list_id=None)]))["success_count"] == 1
    assert api.ok(api.sends([send("shared")]))["success_count"] == 1


def test_one_thousand_records_are_all_stored(api: Api) -> None:
    records = [
        send(f"k{i}", to_number=f"+1303555{i:04d}", list_id=44 if i % 2 else 42)
        for i in range(1000)
    ]
    body = api.ok(api.sends(records))
    assert (body["success_count"], body["error_count"]) == (1000, 0)
    assert query(api.sandbox, "SELECT count(*) FROM messages WHERE id LIKE 'k%'") == [(1000,)]


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"records": null}',
        b'{"records": []}',
        b'{"records": {"id": "x"}}',
        b'{"records": "hist_0001"}',
        b"[]",
        b'[{"id": "x"}]',
        b"42",
    ],
)
def test_missing_records(api: Api, body: bytes) -> None:
    response = api.client.post("/v2/history/sends", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == "missing_records"


@pytest.mark.parametrize("body", [b"", b"{", b"{'records': []}", b"\xff\xfe", b"records=1"])
def test_invalid_json(api: Api, body: bytes) -> None:
    response = api.client.post("/v2/history/sends", content=body)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_json", "message": response.json()["message"]}


def test_more_than_1000_records_is_413_and_stores_nothing(api: Api) -> None:
    response = api.sends([send(f"big{i}") for i in range(1001)])
    assert response.status_code == 413
    assert response.json()["error"] == "too_many_records"
    assert query(api.sandbox, "SELECT count(*) FROM messages WHERE id LIKE 'big%'") == [(0,)]


def test_exactly_1000_is_accepted(api: Api) -> None:
    body = api.ok(api.sends([send(f"e{i}") for i in range(1000)]))
    assert body["success_count"] == 1000


def test_an_empty_optional_field_means_absent(api: Api) -> None:
    body = api.ok(api.sends([send("e1", list_number=""), send("e2", list_id="")]))
    assert (body["success_count"], body["error_count"], body["invalid_phones"]) == (2, 0, 0)


def test_a_trailing_slash_is_a_json_404_not_a_redirect(api: Api) -> None:
    response = api.client.post("/v2/history/sends/", json={"records": [send("t1")]})
    assert response.status_code == 404
    assert response.json()["error"]
