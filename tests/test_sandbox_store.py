"""The store's bulk writes and the fast paths of the sandbox's checks (issue 12, item 8).

The bulk path is checked by what SQLite is really asked to do (its trace callback), and the
one-by-one fallback with a real failing insert: a trigger that a user's sqlite3 shell could
create in the database file. The fast paths of the checks are compared with the slow,
obviously faithful ones on generated inputs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import Api, click, query, send
from trackly_migrate.sandbox.rules import (
    _good_plain_send,
    _good_send,
    as_candidate,
    check_send,
    check_send_fully,
)
from trackly_migrate.sandbox.server import RunningSandbox
from trackly_migrate.sandbox.validation import (
    format_utc,
    is_valid_e164,
    normalize_timestamp,
    parse_timestamp,
)


def _trace(sandbox: RunningSandbox) -> list[str]:
    statements: list[str] = []
    with sandbox.store.reading() as conn:
        conn.set_trace_callback(statements.append)
    return statements


def test_a_batch_costs_a_few_statements_not_a_few_per_record(sandbox: RunningSandbox) -> None:
    statements = _trace(sandbox)
    api = Api(sandbox)
    try:
        sends = [send(f"bulk_{n:04d}", list_id=42) for n in range(1000)]
        assert api.ok(api.sends(sends))["success_count"] == 1000
        clicks = [click(f"bulk_{n:04d}") for n in range(1000)]
        assert api.ok(api.clicks(clicks))["success_count"] == 1000
    finally:
        api.close()
    # Before: a lookup and a savepoint per record (thousands). Now: a few per request.
    assert sum(text.startswith("SELECT") for text in statements) <= 6
    # One savepoint for each request (importer.py) and one for each bulk insert.
    assert sum(text.startswith("SAVEPOINT record") for text in statements) == 2
    assert sum(text.startswith("SAVEPOINT request") for text in statements) == 2


def _failing_insert(db: Path, message_id: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON messages"
            f" WHEN NEW.id = '{message_id}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )


def test_a_record_that_cannot_be_saved_fails_alone(sandbox: RunningSandbox) -> None:
    assert sandbox.db_path is not None
    _failing_insert(sandbox.db_path, "store_2")
    (before,) = query(sandbox, "SELECT send_count FROM list_contacts WHERE phone = '+12025559876'")
    api = Api(sandbox)
    try:
        body = api.ok(api.sends([send(f"store_{n}", list_id=42) for n in range(5)]))
    finally:
        api.close()
    assert body["success_count"] == 4
    assert body["errors"] == [
        {
            "index": 2,
            "id": "store_2",
            "code": "save_error",
            "error": "The record could not be saved.",
        }
    ]
    stored = query(sandbox, "SELECT id FROM messages WHERE id LIKE 'store_%' ORDER BY id")
    assert stored == [("store_0",), ("store_1",), ("store_3",), ("store_4",)]
    # The failed record's contact bump was undone with it: four sends counted, not five.
    after = query(sandbox, "SELECT send_count FROM list_contacts WHERE phone = '+12025559876'")
    assert after == [(before[0] + 4,)]


def test_a_repeat_of_a_record_that_could_not_be_saved_is_judged_on_its_own(
    sandbox: RunningSandbox,
) -> None:
    # The bulk insert fails, so the request is stored one record at a time; the repeat of
    # the record that failed is then stored (its id exists nowhere), not "skipped".
    assert sandbox.db_path is not None
    with sqlite3.connect(sandbox.db_path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON messages"
            " WHEN NEW.message = 'refuse me' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    api = Api(sandbox)
    try:
        records = [send("rep_0", message="refuse me"), send("rep_0"), send("rep_0"), send("rep_1")]
        body = api.ok(api.sends(records))
    finally:
        api.close()
    assert (body["success_count"], body["duplicates_skipped"], body["error_count"]) == (2, 1, 1)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(0, "save_error")]
    stored = query(sandbox, "SELECT id, message FROM messages WHERE id LIKE 'rep_%' ORDER BY id")
    assert [row[0] for row in stored] == ["rep_0", "rep_1"]
    assert stored[0][1] != "refuse me"


def test_a_click_that_cannot_be_saved_fails_alone(sandbox: RunningSandbox) -> None:
    assert sandbox.db_path is not None
    api = Api(sandbox)
    try:
        api.ok(api.sends([send(f"cs_{n}", list_id=42) for n in range(3)]))
        with sqlite3.connect(sandbox.db_path) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON clicks"
                " WHEN NEW.message_id = 'cs_1' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        body = api.ok(api.clicks([click(f"cs_{n}") for n in range(3)]))
    finally:
        api.close()
    assert body["success_count"] == 2
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(1, "save_error")]
    clicked = query(sandbox, "SELECT message_id FROM clicks WHERE message_id LIKE 'cs_%'")
    assert sorted(clicked) == [("cs_0",), ("cs_2",)]


def _phonenumbers_says(value: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(value, None)))
    except phonenumbers.NumberParseException:
        return False


_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@st.composite
def _e164_like(draw: st.DrawFn) -> str:
    code = str(draw(st.sampled_from(_CODES)))
    region = phonenumbers.region_code_for_country_code(int(code))
    example = phonenumbers.example_number(region) if region != "001" else None
    if example is not None and draw(st.booleans()):
        digits = list(str(example.national_number))
        for _ in range(draw(st.integers(0, 3))):
            digits[draw(st.integers(0, len(digits) - 1))] = draw(st.sampled_from("0123456789"))
        national = "".join(digits)
    else:
        national = draw(st.text("0123456789", min_size=0, max_size=14 - len(code)))
    return "+" + draw(st.sampled_from(["", "0", "1"])) * draw(st.integers(0, 1)) + code + national


@settings(max_examples=3000, deadline=None)
@given(_e164_like())
def test_e164_check_is_libphonenumbers_answer(value: str) -> None:
    is_valid_e164.cache_clear()
    expected = len(value) <= 16 and value[1:2] != "0" and _phonenumbers_says(value)
    assert is_valid_e164(value) == expected


def _slow_normalize(value: str) -> str | None:
    instant = parse_timestamp(value)
    return None if instant is None else format_utc(instant)


_TWO = st.integers(0, 99).map(lambda n: f"{n:02d}")


@st.composite
def _iso_like(draw: st.DrawFn) -> str:
    date = f"{draw(st.integers(0, 9999)):04d}-{draw(_TWO)}-{draw(_TWO)}"
    time = f"{draw(_TWO)}:{draw(_TWO)}"
    if draw(st.booleans()):
        time += ":" + draw(_TWO)
        if draw(st.booleans()):
            time += draw(st.sampled_from(".,")) + draw(
                st.text("0123456789", min_size=1, max_size=9)
            )
    offset = draw(
        st.one_of(
            st.just("Z"),
            st.builds(
                lambda s, h, m: f"{s}{h}{m}",
                st.sampled_from("+-"),
                _TWO,
                st.sampled_from(["", "00", ":00", ":30", "60", ":59"]),
            ),
        )
    )
    return f"{date}T{time}{offset}"


@settings(max_examples=3000, deadline=None)
@given(_iso_like())
def test_utc_fast_path_stores_what_the_general_path_stores(value: str) -> None:
    assert normalize_timestamp(value) == _slow_normalize(value)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(_iso_like(), st.text(max_size=40), _iso_like().map(lambda s: s + " ")))
def test_timestamp_fast_path_agrees_on_any_text(value: str) -> None:
    assert normalize_timestamp(value) == _slow_normalize(value)


# Values of every JSON type, plus the ones that trip up a check by type: bool is an int to
# Python, "" means absent, 2**63 does not fit SQLite, a str subclass is not a plain str.
class _Text(str):
    pass


_TRICKY = [0, 0.0, False, True, [], {}, [1], 1.5, 2**63, -(2**63) - 1, "", " ", _Text("x")]
_ANY_VALUE = st.one_of(
    st.sampled_from(_TRICKY),
    st.none(),
    st.integers(-(2**64), 2**64),
    st.text(max_size=12),
    _iso_like(),
    st.sampled_from(["+12025559876", "+447911123456", "+1202555987", "+12025550100"]),
)
_GOOD_SEND = {
    "id": st.text(min_size=1, max_size=8),
    "to_number": st.sampled_from(["+12025559876", "+447911123456"]),
    "timestamp": st.sampled_from(["2025-11-15T14:30:00Z", "2025-11-15T14:30:00.5+01:00"]),
    "list_number": st.sampled_from(["+12025550100", "", None]),
    "list_id": st.sampled_from([42, -1, 2**63 - 1, None, ""]),
    "message": st.text(max_size=10),
    "send_type": st.sampled_from(["campaign", "", None]),
    "delivered": st.sampled_from([True, False, None, ""]),
    "length": st.integers(0, 500),
    "creative_id": st.integers(-(2**63), 2**63 - 1),
}


@st.composite
def _send_like(draw: st.DrawFn) -> object:
    """Mostly good send records with one field replaced by any value or left out."""
    if draw(st.integers(0, 20)) == 0:
        return draw(_ANY_VALUE)  # not even a dict
    record = {name: draw(good) for name, good in _GOOD_SEND.items() if draw(st.integers(0, 4))}
    if draw(st.integers(0, 4)):
        record[draw(st.sampled_from([*_GOOD_SEND, "other"]))] = draw(_ANY_VALUE)
    return record


@settings(max_examples=3000, deadline=None)
@given(_send_like())
def test_send_fast_path_judges_every_record_as_the_general_path(record: object) -> None:
    assert as_candidate(check_send(record)) == check_send_fully(record)


def test_the_send_fast_path_is_taken_for_a_plain_good_record() -> None:
    # Guards the speed of the common case: a good record of plain JSON types.
    record = send("fast_0", list_number="+12025550100", message="Hi", delivered=True, length=2)
    fast = _good_send(record)
    assert fast is not None
    assert fast == check_send_fully(record)
    del record["list_number"]
    plain = _good_plain_send(record)
    assert plain is not None
    assert as_candidate(plain) == check_send_fully(record)


def test_a_file_with_the_old_time_index_is_reused_without_it(tmp_path: Path) -> None:
    # Every stored send paid for messages_by_import_time; a file made before it was dropped
    # loses it (and gets the live-message index the counts use) when a sandbox opens it.
    from trackly_migrate.sandbox.seed import default_seed
    from trackly_migrate.sandbox.store import Store

    db = tmp_path / "old.db"
    store = Store(db)
    store.open(default_seed())
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP INDEX live_messages")
        conn.execute(
            "CREATE INDEX messages_by_import_time ON messages(account_id, imported, timestamp)"
        )
    reused = Store(db)
    assert reused.open(default_seed()) is False
    demo = reused.stats()["accounts"]["demo"]
    reused.close()
    assert (demo["messages"], demo["imported_messages"], demo["live_messages"]) == (9, 5, 4)
    with sqlite3.connect(db) as conn:
        indexes = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    assert "messages_by_import_time" not in indexes
    assert "live_messages" in indexes
