"""DELETE /v2/contacts: unsubscribe, always success, never a delete."""

from __future__ import annotations

import pytest

from tests.helpers import Api, api_on, contact
from trackly_migrate.sandbox.seed import OTHER_API_KEY


def test_unsubscribe_once_then_false(api: Api) -> None:
    assert api.ok(api.unsubscribe("+14155559876", "+18005551234")) == {
        "success": True,
        "unsubscribed": True,
    }
    assert api.ok(api.unsubscribe("+14155559876", "+18005551234"))["unsubscribed"] is False
    found = contact(api.sandbox, 43, "+14155559876")
    assert found is not None
    assert (found["active"], found["unsubscribe_reason"], found["send_count"]) == (False, "api", 1)


@pytest.mark.parametrize(
    ("phone", "list_number"),
    [
        ("+12025550177", "+18005551234"),  # not a contact of the list
        ("+13105550177", "+18005551234"),  # already inactive (stop keyword)
        ("+14155559876", "+13125550100"),  # no such list
        ("+16175550123", "+16175550100"),  # the other account's list and contact
    ],
)
def test_success_without_unsubscribing(api: Api, phone: str, list_number: str) -> None:
    assert api.ok(api.unsubscribe(phone, list_number)) == {"success": True, "unsubscribed": False}


def test_already_inactive_keeps_its_reason(api: Api) -> None:
    api.ok(api.unsubscribe("+13105550177", "+18005551234"))
    found = contact(api.sandbox, 43, "+13105550177")
    assert found is not None
    assert found["unsubscribe_reason"] == "stop_keyword"


def test_other_account_contact_stays_active(api: Api) -> None:
    api.ok(api.unsubscribe("+16175550123", "+16175550100"))
    found = contact(api.sandbox, 900, "+16175550123")
    assert found is not None
    assert found["active"] is True
    with api_on(api.sandbox, OTHER_API_KEY) as other:
        assert other.ok(other.unsubscribe("+16175550123", "+16175550100"))["unsubscribed"] is True


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"list_number": "+18005551234"}, "missing_phone_number"),
        ({"phone_number": "", "list_number": "+18005551234"}, "missing_phone_number"),
        ({"phone_number": None, "list_number": "+18005551234"}, "missing_phone_number"),
        ({"phone_number": "+14155559876"}, "missing_list_number"),
        ({}, "missing_phone_number"),
        ([], "missing_phone_number"),
        ({"phone_number": "4155559876", "list_number": "+18005551234"}, "invalid_phone"),
        ({"phone_number": 14155559876, "list_number": "+18005551234"}, "invalid_phone"),
        ({"phone_number": "+14155559876", "list_number": "+1800"}, "invalid_list_number"),
        ({"phone_number": "+14155559876", "list_number": 18005551234}, "invalid_list_number"),
    ],
)
def test_request_errors(api: Api, body: object, code: str) -> None:
    response = api.client.request("DELETE", "/v2/contacts", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == code


def test_invalid_json(api: Api) -> None:
    response = api.client.request("DELETE", "/v2/contacts", content=b"phone=+14155559876")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"
