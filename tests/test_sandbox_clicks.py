"""POST /v2/history/clicks: dedup per message, message and offer checks, contact stats."""

from __future__ import annotations

import pytest

from tests.helpers import Api, api_on, click, contact, query, send
from trackly_migrate.sandbox.seed import OTHER_API_KEY


def test_one_click_per_message(api: Api) -> None:
    body = api.ok(api.clicks([click("a1b2c3d4"), click("a1b2c3d4", offer_id="offer_456")]))
    assert (body["success_count"], body["duplicates_skipped"]) == (1, 1)
    # live_0003 has a seeded click already.
    assert api.ok(api.clicks([click("live_0003")]))["duplicates_skipped"] == 1
    assert "invalid_phones" not in body


@pytest.mark.parametrize(
    ("record", "code"),
    [
        ({"offer_id": "offer_123", "phone_number": "+1", "timestamp": "x"}, "missing_message_id"),
        (click("a1b2c3d4", offer_id=None), "missing_offer_id"),
        (click("a1b2c3d4", phone_number=""), "missing_phone_number"),
        (click("a1b2c3d4", timestamp=None), "missing_timestamp"),
        (click("a1b2c3d4", timestamp="2025-11-15 14:35:00"), "invalid_timestamp"),
        (click("a1b2c3d4", send_timestamp="2025-11-15T14:30:00"), "invalid_timestamp"),
        (click("nope"), "message_not_found"),
        (click("a1b2c3d4", offer_id="offer_nope"), "offer_not_found"),
        (click(123), "invalid_type"),
        (click("a1b2c3d4", offer_id=123), "invalid_type"),
        (click("a1b2c3d4", phone_number=12025559876), "invalid_type"),
        ([1, 2], "invalid_record"),
    ],
)
def test_per_record_error_codes(api: Api, record: object, code: str) -> None:
    body = api.ok(api.clicks([record]))
    assert body["error_count"] == 1
    (entry,) = body["errors"]
    assert set(entry) == {"index", "code", "error"}  # clicks' entries carry no id
    assert entry["code"] == code


def test_the_click_phone_is_not_checked_as_e164(api: Api) -> None:
    # The contract lists no invalid_phone for clicks: only presence and type are checked.
    body = api.ok(api.clicks([click("a1b2c3d4", phone_number="not a phone")]))
    assert body["success_count"] == 1


def test_click_updates_contact_stats_with_max_last_clicked(api: Api) -> None:
    phone = "+12025550150"
    api.ok(api.sends([send("s1", to_number=phone), send("s2", to_number=phone)]))
    api.ok(api.clicks([click("s1", phone_number=phone, timestamp="2025-11-16T10:00:00Z")]))
    # An older click arriving later counts, but does not move last_clicked_at back.
    api.ok(api.clicks([click("s2", phone_number=phone, timestamp="2025-11-15T10:00:00+02:00")]))
    found = contact(api.sandbox, 42, phone)
    assert found is not None
    assert (found["click_count"], found["last_clicked_at"]) == (2, "2025-11-16T10:00:00.000000Z")


def test_click_of_unsubscribed_contact_counts_but_does_not_reactivate(api: Api) -> None:
    api.ok(api.unsubscribe("+13105558888", "+18005551234"))
    api.ok(api.clicks([click("e5f6g7h8", phone_number="+13105558888")]))
    found = contact(api.sandbox, 43, "+13105558888")
    assert found is not None
    assert (found["active"], found["click_count"]) == (False, 1)


def test_click_from_a_phone_without_contact_creates_none(api: Api) -> None:
    body = api.ok(api.clicks([click("a1b2c3d4", phone_number="+12025550160")]))
    assert body["success_count"] == 1
    assert contact(api.sandbox, 42, "+12025550160") is None


def test_click_of_a_send_without_list(api: Api) -> None:
    api.ok(api.sends([send("nolist", list_id=None)]))
    assert api.ok(api.clicks([click("nolist")]))["success_count"] == 1


def test_click_fields_are_stored(api: Api) -> None:
    api.ok(
        api.clicks(
            [
                click(
                    "a1b2c3d4", timestamp="2025-11-15T14:35:22Z", send_timestamp="2025-11-15T14:30Z"
                )
            ]
        )
    )
    rows = query(
        api.sandbox,
        "SELECT offer_id, phone, timestamp, send_timestamp FROM clicks WHERE message_id = ?",
        "a1b2c3d4",
    )
    assert rows == [
        (
            "offer_123",
            "+12025559876",
            "2025-11-15T14:35:22.000000Z",
            "2025-11-15T14:30:00.000000Z",
        )
    ]


def test_accounts_are_isolated(api: Api) -> None:
    body = api.ok(api.clicks([click("oth_live_1"), click("a1b2c3d4", offer_id="offer_other")]))
    assert [e["code"] for e in body["errors"]] == ["message_not_found", "offer_not_found"]
    with api_on(api.sandbox, OTHER_API_KEY) as other:
        body = other.ok(other.clicks([click("a1b2c3d4")]))
        assert body["errors"][0]["code"] == "message_not_found"


def test_clicks_need_their_sends_first(api: Api) -> None:
    body = api.ok(api.clicks([click("later")]))
    assert body["errors"][0]["code"] == "message_not_found"
    api.ok(api.sends([send("later")]))
    assert api.ok(api.clicks([click("later")]))["success_count"] == 1


def test_a_repeat_of_a_failed_click_in_the_same_request_is_judged_on_its_own(api: Api) -> None:
    body = api.ok(
        api.clicks([click("a1b2c3d4", offer_id="nope"), click("a1b2c3d4"), click("a1b2c3d4")])
    )
    assert (body["error_count"], body["success_count"], body["duplicates_skipped"]) == (1, 1, 1)
    assert [e["index"] for e in body["errors"]] == [0]
