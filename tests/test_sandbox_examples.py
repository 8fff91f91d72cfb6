"""Every example request of the vendor's pages, sent verbatim to a fresh sandbox.

The bodies are copied character for character from the cURL examples of
``api-docs/000`` (clear), ``001`` (clicks), ``002`` (sends) and ``004`` (unsubscribe); only
the key header changes, to the demo key. Each must get the documented answer.
"""

from __future__ import annotations

import httpx
import orjson

from tests.helpers import contact, query
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

SENDS_EXAMPLE = """{
    "records": [
      {
        "id": "hist_0001",
        "list_number": "+14155551234",
        "to_number": "+12025559876",
        "message": "Check out this deal!",
        "send_type": "campaign",
        "delivered": true,
        "length": 21,
        "timestamp": "2025-11-15T14:30:00Z"
      },
      {
        "id": "hist_0002",
        "list_id": 42,
        "to_number": "+13105558888",
        "message": "Limited time offer",
        "creative_id": 101,
        "send_type": "campaign",
        "delivered": true,
        "timestamp": "2025-11-15T14:31:00Z"
      }
    ],
    "imported": true
  }"""

CLICKS_EXAMPLE = """{
    "records": [
      {
        "message_id": "a1b2c3d4",
        "offer_id": "offer_123",
        "phone_number": "+12025559876",
        "send_timestamp": "2025-11-15T14:30:00Z",
        "timestamp": "2025-11-15T14:35:22Z"
      },
      {
        "message_id": "e5f6g7h8",
        "offer_id": "offer_456",
        "phone_number": "+13105558888",
        "timestamp": "2025-11-15T15:10:45Z"
      }
    ]
  }"""

CLEAR_EXAMPLE = """{
    "entities": ["sends", "clicks", "revenue"],
    "before_date": "2025-12-01T00:00:00Z",
    "confirm": true
  }"""

UNSUBSCRIBE_EXAMPLE = """{
    "phone_number": "+14155559876",
    "list_number": "+18005551234"
  }"""

HEADERS = {"X-Api-Key": DEMO_API_KEY, "Content-Type": "application/json"}


def _send(sandbox: RunningSandbox, method: str, path: str, body: str) -> httpx.Response:
    # Raw bytes, exactly as curl -d sends them: no re-encoding by the test.
    return httpx.request(method, sandbox.url + path, content=body.encode(), headers=HEADERS)


def test_sends_example(sandbox: RunningSandbox) -> None:
    response = _send(sandbox, "POST", "/v2/history/sends", SENDS_EXAMPLE)
    assert response.status_code == 200
    assert response.json() == {
        "success_count": 2,
        "error_count": 0,
        "duplicates_skipped": 0,
        "invalid_phones": 0,
        "errors": [],
    }
    stored = query(
        sandbox,
        "SELECT id, list_id, imported, message, delivered, length, creative_id, timestamp"
        " FROM messages WHERE id LIKE 'hist_%' ORDER BY id",
    )
    assert stored == [
        ("hist_0001", 42, 1, "Check out this deal!", 1, 21, None, "2025-11-15T14:30:00.000000Z"),
        ("hist_0002", 42, 1, "Limited time offer", 1, None, 101, "2025-11-15T14:31:00.000000Z"),
    ]
    # +13105558888 was not on list 42: the send created the contact, active.
    assert contact(sandbox, 42, "+13105558888") == {
        "active": True,
        "unsubscribe_reason": None,
        "send_count": 1,
        "click_count": 0,
        "last_clicked_at": None,
    }
    assert contact(sandbox, 42, "+12025559876")["send_count"] == 2  # type: ignore[index]


def test_clicks_example(sandbox: RunningSandbox) -> None:
    response = _send(sandbox, "POST", "/v2/history/clicks", CLICKS_EXAMPLE)
    assert response.status_code == 200
    assert response.json() == {
        "success_count": 2,
        "error_count": 0,
        "duplicates_skipped": 0,
        "errors": [],
    }
    first = contact(sandbox, 42, "+12025559876")
    assert first is not None
    assert first["click_count"] == 1
    assert first["last_clicked_at"] == "2025-11-15T14:35:22.000000Z"
    second = contact(sandbox, 43, "+13105558888")
    assert second is not None
    assert second["click_count"] == 1


def test_unsubscribe_example(sandbox: RunningSandbox) -> None:
    response = _send(sandbox, "DELETE", "/v2/contacts", UNSUBSCRIBE_EXAMPLE)
    assert response.status_code == 200
    assert response.json() == {"success": True, "unsubscribed": True}
    assert contact(sandbox, 43, "+14155559876") == {
        "active": False,
        "unsubscribe_reason": "api",
        "send_count": 1,
        "click_count": 1,
        "last_clicked_at": "2025-11-20T10:05:00.000000Z",
    }


def test_clear_example(sandbox: RunningSandbox) -> None:
    before = sandbox.stats()["accounts"]
    response = _send(sandbox, "DELETE", "/v2/history/clear", CLEAR_EXAMPLE)
    assert response.status_code == 200
    # The seed's imported history straddles 2025-12-01: imp_0001..0003 go; imp_0004 is
    # stamped exactly at before_date and stays; only imp_0001's click is both of an
    # imported message and before the date; revenue of any message before the date goes.
    assert orjson.loads(response.content) == {
        "success": True,
        "cleared": {"sends": 3, "clicks": 1, "revenue": 3},
    }
    after = sandbox.stats()["accounts"]
    assert after["demo"]["imported_messages"] == before["demo"]["imported_messages"] - 3
    assert after["demo"]["live_messages"] == before["demo"]["live_messages"]
    assert after["other"] == before["other"]
