"""The store's bulk writes and the fast paths of the sandbox's checks (issue 12, item 8).

The bulk path is checked by what SQLite is really asked to do (its trace callback), and the
one-by-one fallback with a real failing insert: a trigger that a user's sqlite3 shell could
create in the database file. The fast paths of the checks are compared with the slow,
obviously faithful ones on generated inputs.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata

from tests.helpers import Api, click, contact, query, send
from tests.strategies import iso_like, send_like
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


_EXISTING_IDS_QUERY = "SELECT id FROM messages WHERE account_id"


def test_a_batch_of_new_sends_is_stored_without_looking_up_its_ids(
    sandbox: RunningSandbox,
) -> None:
    statements = _trace(sandbox)
    api = Api(sandbox)
    try:
        records = [send(f"new_{n}", list_id=42, to_number="+12025550188") for n in range(3)]
        records.append(send("new_0"))  # a repeat inside the request
        body = api.ok(api.sends(records))
    finally:
        api.close()
    assert (body["success_count"], body["duplicates_skipped"], body["error_count"]) == (3, 1, 0)
    assert not [text for text in statements if text.startswith(_EXISTING_IDS_QUERY)]
    assert contact(sandbox, 42, "+12025550188") == {
        "active": True,
        "unsubscribe_reason": None,
        "send_count": 3,
        "click_count": 0,
        "last_clicked_at": None,
    }


def test_an_id_an_earlier_request_stored_is_found_and_the_request_judged_again(
    sandbox: RunningSandbox,
) -> None:
    # The insert of a request's new sends meets an id stored before: it stores nothing, and
    # the request is judged again knowing the ids that exist. Records by list_id and by
    # list_number, a repeat inside the request, contacts counted once per stored send.
    phone = "+12025550188"
    api = Api(sandbox)
    try:
        api.ok(api.sends([send("early_1", to_number=phone)]))
        statements = _trace(sandbox)
        records = [
            send("late_1", to_number=phone),
            send("late_2", list_id=None, list_number="+18005551234", to_number=phone),
            send("early_1", to_number=phone),  # stored by the earlier request
            send("late_1", to_number=phone),  # a repeat inside this request
            send("late_3", list_id=None, list_number="+16175550100", to_number=phone),
            send("late_4", to_number=phone, list_id=None),
        ]
        body = api.ok(api.sends(records))
    finally:
        api.close()
    assert (body["success_count"], body["duplicates_skipped"], body["error_count"]) == (3, 2, 1)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [(4, "list_not_found")]
    assert [text for text in statements if text.startswith(_EXISTING_IDS_QUERY)]
    stored = query(
        sandbox, "SELECT id, list_id FROM messages WHERE to_number = ? ORDER BY id", phone
    )
    assert stored == [("early_1", 42), ("late_1", 42), ("late_2", 43), ("late_4", None)]
    contacts = query(
        sandbox, "SELECT list_id, send_count FROM list_contacts WHERE phone = ? ORDER BY 1", phone
    )
    assert contacts == [(42, 2), (43, 1)]


@pytest.mark.parametrize(
    "failing",
    [
        {"to_number": "+1555"},  # fails the field checks
        {"list_id": 900},  # fails on the account's data: no such list
        {"list_id": None, "list_number": "+16175550100"},
    ],
)
def test_an_earlier_id_is_a_duplicate_in_a_request_of_new_ids_whatever_fails_in_it(
    sandbox: RunningSandbox, failing: dict[str, Any]
) -> None:
    # The new ids of the request are stored by the first insert; the failed record's id is
    # the one that exists, and only a look-up of the failed ids can tell.
    api = Api(sandbox)
    try:
        api.ok(api.sends([send("old_1")]))
        records = [send("fresh_1"), send("old_1", **failing), send("fresh_2", **failing)]
        body = api.ok(api.sends(records))
    finally:
        api.close()
    assert (body["success_count"], body["duplicates_skipped"], body["error_count"]) == (1, 1, 1)
    assert [(e["index"], e["id"]) for e in body["errors"]] == [(2, "fresh_2")]
    assert query(sandbox, "SELECT count(*) FROM messages WHERE id = 'old_1'") == [(1,)]


def test_a_record_that_cannot_be_saved_fails_alone_beside_a_duplicate(
    sandbox: RunningSandbox,
) -> None:
    assert sandbox.db_path is not None
    api = Api(sandbox)
    try:
        api.ok(api.sends([send("seen_1")]))
        _failing_insert(sandbox.db_path, "unsaved_1")
        records = [send("ok_1"), send("unsaved_1"), send("seen_1"), send("unsaved_1")]
        body = api.ok(api.sends(records))
    finally:
        api.close()
    assert (body["success_count"], body["duplicates_skipped"], body["error_count"]) == (1, 1, 2)
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (1, "save_error"),
        (3, "save_error"),
    ]
    stored = query(sandbox, "SELECT id FROM messages WHERE imported = 1 ORDER BY id")
    assert ("ok_1",) in stored and ("unsaved_1",) not in stored


def _expected_answer(
    records: list[dict[str, Any]], stored: set[str], lists: dict[str, int]
) -> tuple[int, int, list[tuple[int, str]]]:
    """The contract's answer to a request, from CONTRACT.md's rules as this test uses them:
    an id that exists (stored before, or by an earlier record of the request) is a
    duplicate, whatever else is wrong; then the phone; then the list. Updates ``stored``."""
    success, duplicates, errors = 0, 0, []
    for index, record in enumerate(records):
        if record["id"] in stored:
            duplicates += 1
        elif not is_valid_e164(record["to_number"]):
            errors.append((index, "invalid_phone"))
        elif record.get("list_id") not in (None, 42, 43) or (
            "list_number" in record and record["list_number"] not in lists
        ):
            errors.append((index, "list_not_found"))
        else:
            success += 1
            stored.add(record["id"])
    return success, duplicates, errors


def test_answers_agree_with_the_contract_over_many_mixed_requests(
    sandbox: RunningSandbox,
) -> None:
    # Ids drawn from a small pool, so that requests repeat each other's ids and their own;
    # bad phones and unknown lists among them: the fast first insert and the exact path
    # must give the contract's answer, whichever of them a request takes.
    rng = random.Random(12)
    lists = {"+14155551234": 42, "+18005551234": 43}
    demo_ids = (
        "SELECT m.id FROM messages m JOIN accounts a ON a.id = m.account_id AND a.name = 'demo'"
    )
    stored = {row[0] for row in query(sandbox, demo_ids)}
    api = Api(sandbox)
    try:
        for request in range(40):
            records = []
            for _ in range(rng.randint(1, 12)):
                record = send(f"pool_{rng.randint(0, 60)}", to_number="+12025550188")
                draw = rng.random()
                if draw < 0.1:
                    record["to_number"] = "+1555"
                elif draw < 0.2:
                    record["list_id"] = 900
                elif draw < 0.5:
                    del record["list_id"]
                    record["list_number"] = rng.choice([*lists, "+16175550100"])
                records.append(record)
            body = api.ok(api.sends(records))
            success, duplicates, errors = _expected_answer(records, stored, lists)
            answered = [(e["index"], e["code"]) for e in body["errors"]]
            assert (body["success_count"], body["duplicates_skipped"], answered) == (
                success,
                duplicates,
                errors,
            ), request
    finally:
        api.close()
    in_db = query(sandbox, "SELECT id FROM messages WHERE id LIKE 'pool_%'")
    assert {row[0] for row in in_db} == {i for i in stored if i.startswith("pool_")}
    (sends,) = query(
        sandbox, "SELECT sum(send_count) FROM list_contacts WHERE phone = ?", "+12025550188"
    )[0]
    (with_list,) = query(
        sandbox, "SELECT count(*) FROM messages WHERE id LIKE 'pool_%' AND list_id IS NOT NULL"
    )[0]
    assert sends == with_list


def test_stored_values_keep_their_sql_types_on_both_paths(sandbox: RunningSandbox) -> None:
    # bool and None are bound through registered adapters (store.py), by the bulk insert
    # and by the one-by-one path alike: true/false become 1/0, an absent field NULL.
    assert sqlite3.adapters[(bool, sqlite3.PrepareProtocol)] is int
    assert sandbox.db_path is not None
    api = Api(sandbox)
    try:
        records = [
            send("typed_1", delivered=True, length=12, creative_id=7, message="hi"),
            send("typed_2", delivered=False, list_id=None, send_type=""),
        ]
        api.ok(api.sends(records))
        _failing_insert(sandbox.db_path, "typed_x")  # the next request is stored one by one
        api.ok(api.sends([send("typed_3", delivered=True), send("typed_x")]))
    finally:
        api.close()
    where = " FROM messages WHERE id LIKE 'typed_%' ORDER BY id"
    values = query(
        sandbox, "SELECT id, list_id, delivered, length, creative_id, message, send_type" + where
    )
    assert values == [
        ("typed_1", 42, 1, 12, 7, "hi", None),
        ("typed_2", None, 0, None, None, None, None),
        ("typed_3", 42, 1, None, None, None, None),
    ]
    types = query(
        sandbox,
        "SELECT typeof(list_id), typeof(delivered), typeof(length), typeof(creative_id)" + where,
    )
    assert types == [
        ("integer", "integer", "integer", "integer"),
        ("null", "integer", "null", "null"),
        ("integer", "integer", "null", "null"),
    ]


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


# Every region of a country code that several regions share (+1, +7, +44, ...), and the
# kinds of number their metadata has examples of: the shortcut in normalize.is_valid_number
# decides which region a number is from, so each region's own numbers are drawn here.
_SHARED_REGIONS = sorted(
    region
    for regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.values()
    if len(regions) > 1
    for region in regions
)
_TYPES = [
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.PREMIUM_RATE,
    phonenumbers.PhoneNumberType.VOIP,
]


@st.composite
def _shared_code_number(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(_SHARED_REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(_TYPES)))
    code = phonenumbers.country_code_for_region(region)
    if example is None:
        national = draw(st.text("0123456789", min_size=2, max_size=12))
    else:
        digits = list(str(example.national_number))
        for _ in range(draw(st.integers(0, 2))):
            digits[draw(st.integers(0, len(digits) - 1))] = draw(st.sampled_from("0123456789"))
        national = "".join(digits)
    return f"+{code}{national}"


@settings(max_examples=3000, deadline=None)
@given(_shared_code_number())
def test_e164_check_agrees_on_codes_that_regions_share(value: str) -> None:
    is_valid_e164.cache_clear()
    expected = len(value) <= 16 and _phonenumbers_says(value)
    assert is_valid_e164(value) == expected


def _example_numbers() -> list[str]:
    """libphonenumber's example of each type of each region and non-geographic code, and
    near misses of each: a digit changed, dropped or added."""
    examples = [
        phonenumbers.example_number_for_type(region, kind)
        for region in phonenumbers.SUPPORTED_REGIONS
        for kind in phonenumbers.PhoneNumberType.values()
    ]
    examples += [
        phonenumbers.example_number_for_non_geo_entity(code)
        for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
    ]
    numbers = set()
    for example in examples:
        if example is None:
            continue
        text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        last = str((int(text[-1]) + 1) % 10)
        numbers.update({text, text[:-1] + last, text[:-1], text + last})
    return sorted(numbers)


def test_e164_check_agrees_on_every_example_number_and_its_near_misses() -> None:
    numbers = _example_numbers()
    assert len(numbers) > 4000
    is_valid_e164.cache_clear()
    disagree = [n for n in numbers if is_valid_e164(n) != (len(n) <= 16 and _phonenumbers_says(n))]
    assert disagree == []


def test_a_north_american_number_skips_libphonenumbers_search_of_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Guards the speed of the common case: libphonenumber's is_valid_number matches a US
    # number against ten patterns of the US, twice (normalize.is_valid_number).
    from phonenumbers import phonenumberutil

    calls: list[str] = []
    helper = phonenumberutil._number_type_helper

    def counting(national: str, metadata: PhoneMetadata) -> int:
        calls.append(national)
        return helper(national, metadata)

    monkeypatch.setattr(phonenumberutil, "_number_type_helper", counting)
    is_valid_e164.cache_clear()
    assert is_valid_e164("+12025550143")
    assert is_valid_e164("+16135550123")  # Canada: after the US's patterns, its own
    assert not is_valid_e164("+12025550")
    assert calls == []


def _slow_normalize(value: str) -> str | None:
    instant = parse_timestamp(value)
    return None if instant is None else format_utc(instant)


@settings(max_examples=3000, deadline=None)
@given(iso_like())
def test_utc_fast_path_stores_what_the_general_path_stores(value: str) -> None:
    assert normalize_timestamp(value) == _slow_normalize(value)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(iso_like(), st.text(max_size=40), iso_like().map(lambda s: s + " ")))
def test_timestamp_fast_path_agrees_on_any_text(value: str) -> None:
    assert normalize_timestamp(value) == _slow_normalize(value)


@settings(max_examples=3000, deadline=None)
@given(send_like())
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
