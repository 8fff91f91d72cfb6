"""Property tests: whatever a batch holds, the answer accounts for every record.

Random mixes of valid and broken records (missing fields, wrong types, bad phones, bad
timestamps, foreign lists, non-objects, repeated ids) against one sandbox per module; each
example uses its own id prefix, so examples never meet each other's records.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Api, api_on, query
from trackly_migrate.sandbox.server import RunningSandbox

_prefixes = itertools.count()

VALID_PHONES = ["+12025559876", "+13105558888", "+447911123456", "+14155550123"]
BAD_PHONES = ["+1555", "12025559876", "+1 202 555 9876", "+", "+0123456789", "+12025559876x"]
VALID_TIMES = ["2025-11-15T14:30:00Z", "2025-11-15T09:30:00-05:00", "2024-02-29T23:59:59.999+01"]
BAD_TIMES = ["2025-11-15T14:30:00", "2025-11-15", "2025-13-01T00:00:00Z", "soon", ""]
LIST_REFS: list[dict[str, Any]] = [
    {},
    {"list_id": 42},
    {"list_id": 43},
    {"list_number": "+14155551234"},
    {"list_id": 42, "list_number": "+14155551234"},
    {"list_id": 42, "list_number": "+18005551234"},
    {"list_id": 900},
    {"list_number": "+16175550100"},
    {"list_id": "42"},
    {"list_number": "+1555"},
    {"list_id": None},
]

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)


@st.composite
def send_records(draw: st.DrawFn, prefix: str) -> Any:
    if draw(st.integers(0, 19)) == 0:  # now and then, not an object at all
        return draw(st.one_of(anything, st.lists(st.integers(), max_size=2)))
    record: dict[str, Any] = {
        "id": prefix + draw(st.sampled_from("abcdefgh")),
        "to_number": draw(st.sampled_from(VALID_PHONES + BAD_PHONES)),
        "timestamp": draw(st.sampled_from(VALID_TIMES + BAD_TIMES)),
        **draw(st.sampled_from(LIST_REFS)),
    }
    for name in ("message", "send_type", "delivered", "length", "creative_id"):
        if draw(st.booleans()):
            record[name] = draw(anything)
    for name in ("id", "to_number", "timestamp"):
        if draw(st.integers(0, 9)) == 0:
            del record[name]
    if draw(st.integers(0, 9)) == 0:
        record[draw(st.sampled_from(["id", "to_number", "timestamp"]))] = draw(anything)
    return record


@pytest.fixture(scope="module")
def api(shared: RunningSandbox) -> Iterator[Api]:
    with api_on(shared) as client:
        yield client


def check_accounting(body: dict[str, Any], records: list[Any]) -> None:
    n = len(records)
    assert body["success_count"] + body["error_count"] + body["duplicates_skipped"] == n
    assert len(body["errors"]) == min(body["error_count"], 100)
    indexes = [e["index"] for e in body["errors"]]
    assert indexes == sorted(set(indexes))
    assert all(0 <= i < n for i in indexes)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_send_batches_account_for_every_record(api: Api, data: st.DataObject) -> None:
    prefix = f"p{next(_prefixes)}_"
    records = data.draw(st.lists(send_records(prefix), min_size=1, max_size=60))
    body = api.ok(api.sends(records))
    check_accounting(body, records)
    codes = [e["code"] for e in body["errors"]]
    assert body["invalid_phones"] == codes.count("invalid_phone")
    for entry in body["errors"]:
        record = records[entry["index"]]
        has_id = isinstance(record, dict) and isinstance(record.get("id"), str) and record["id"]
        assert entry["id"] == (record["id"] if has_id else None)
    stored = query(
        api.sandbox,
        "SELECT count(*) FROM messages WHERE substr(id, 1, ?) = ?",
        len(prefix),
        prefix,
    )
    assert stored == [(body["success_count"],)]  # what was answered is what was stored
    distinct_ids = {
        r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), str)
    }
    assert body["success_count"] <= len(distinct_ids)


@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_large_batches_cap_the_listed_errors(api: Api, data: st.DataObject) -> None:
    prefix = f"L{next(_prefixes)}_"
    size = data.draw(st.integers(100, 400))
    bad = data.draw(st.integers(0, size))
    records = [
        {
            "id": f"{prefix}{i}",
            "to_number": "+1555" if i < bad else "+12025559876",
            "timestamp": "2025-11-15T14:30:00Z",
        }
        for i in range(size)
    ]
    body = api.ok(api.sends(records))
    check_accounting(body, records)
    assert (body["error_count"], body["invalid_phones"], body["success_count"]) == (
        bad,
        bad,
        size - bad,
    )


@st.composite
def click_records(draw: st.DrawFn, prefix: str) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(anything)
    record: dict[str, Any] = {
        "message_id": draw(
            st.sampled_from([prefix + c for c in "abcd"] + ["unknown", "oth_live_1"])
        ),
        "offer_id": draw(st.sampled_from(["offer_123", "offer_spring", "offer_other", "nope"])),
        "phone_number": draw(st.sampled_from(VALID_PHONES + BAD_PHONES)),
        "timestamp": draw(st.sampled_from(VALID_TIMES + BAD_TIMES)),
    }
    if draw(st.booleans()):
        record["send_timestamp"] = draw(st.sampled_from(VALID_TIMES + BAD_TIMES + [None]))
    for name in list(record):
        if draw(st.integers(0, 11)) == 0:
            del record[name]
    return record


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_click_batches_account_for_every_record(api: Api, data: st.DataObject) -> None:
    prefix = f"c{next(_prefixes)}_"
    sends = [
        {
            "id": prefix + c,
            "list_id": 42,
            "to_number": "+12025559876",
            "timestamp": "2025-11-15T14:30:00Z",
        }
        for c in "abc"  # "d" stays unknown
    ]
    assert api.ok(api.sends(sends))["success_count"] == 3
    records = data.draw(st.lists(click_records(prefix), min_size=1, max_size=40))
    body = api.ok(api.clicks(records))
    check_accounting(body, records)
    assert "invalid_phones" not in body
    assert all(set(entry) == {"index", "code", "error"} for entry in body["errors"])
    assert body["success_count"] <= 3
