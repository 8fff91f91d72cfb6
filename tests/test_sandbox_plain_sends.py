"""plain_sends: a sends body decoded by msgspec is judged exactly as decoded by orjson."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import ANY_VALUE, send_like
from trackly_migrate.sandbox.plain_sends import PlainSend, check_sends, decode_sends
from trackly_migrate.sandbox.rules import RequestError, check_send, parse_json, records_of


def judged(decode: Any, check: Any, body: bytes) -> object:
    """Each record's answer, or the request's refusal (status and code)."""
    try:
        return check(decode(body), body)
    except RequestError as refused:
        return (refused.status, refused.code)


def the_general_way(body: bytes) -> object:
    return judged(
        lambda raw: records_of(parse_json(raw)),
        lambda records, _: [check_send(record) for record in records],
        body,
    )


def the_fast_way(body: bytes) -> object:
    return judged(decode_sends, check_sends, body)


@settings(max_examples=1500, deadline=None)
@given(
    records=st.lists(send_like(), max_size=6),
    extra=st.dictionaries(st.sampled_from(["other", "records_count"]), ANY_VALUE, max_size=1),
)
def test_a_body_is_judged_as_the_general_path_judges_it(
    records: list[object], extra: dict[str, object]
) -> None:
    """Good, bad and mixed records (wrong types, null, "", 64-bit bounds, list_number, not
    even a dict), empty bodies, and other top-level fields: the same answers."""
    body = json.dumps({"records": records, **extra}).encode()
    assert the_fast_way(body) == the_general_way(body)


# The values at the edges of what the fast decoding takes.
EDGES: list[object] = [
    "",
    " ",
    None,
    True,
    False,
    0,
    1.0,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
]
EDGES += ["+12025559876", "+1202555987", "2025-11-15T14:30:00Z", "2025-11-15T14:30:00", [], {}]
PLAIN = {
    "id": "s1",
    "to_number": "+12025559876",
    "timestamp": "2025-11-15T14:30:00Z",
    "list_id": 42,
    "message": "Hi",
    "send_type": "campaign",
    "delivered": True,
    "length": 2,
    "creative_id": 7,
}


@st.composite
def near_plain(draw: st.DrawFn) -> dict[str, object]:
    """A good plain send with up to two fields set to an edge value, or left out."""
    record: dict[str, object] = dict(PLAIN)
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from([*PLAIN, "list_number"]))
        if draw(st.integers(0, 5)):
            record[name] = draw(st.sampled_from(EDGES))
        else:
            record.pop(name, None)
    return record


@settings(max_examples=1500, deadline=None)
@given(st.lists(near_plain(), min_size=1, max_size=4))
def test_a_record_at_an_edge_is_judged_as_the_general_path_judges_it(
    records: list[dict[str, object]],
) -> None:
    body = json.dumps({"records": records}).encode()
    assert the_fast_way(body) == the_general_way(body)


@given(st.sampled_from([b"", b"{", b"[]", b"{}", b'{"records": {}}', b'{"records": "x"}']))
def test_a_body_that_is_not_a_records_list_is_refused_the_same_way(body: bytes) -> None:
    assert the_fast_way(body) == the_general_way(body)


def test_plain_good_sends_take_the_fast_decoding() -> None:
    # Guards the speed of the common request: every record is a PlainSend.
    record = {"id": "s1", "to_number": "+12025559876", "timestamp": "2025-11-15T14:30:00Z"}
    body = json.dumps({"records": [record, {**record, "id": "s2", "list_id": 42}]}).encode()
    decoded = decode_sends(body)
    assert [type(send) for send in decoded] == [PlainSend, PlainSend]
    assert check_sends(decoded, body) == [
        check_send(record),
        check_send({**record, "id": "s2", "list_id": 42}),
    ]
