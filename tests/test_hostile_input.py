"""Hostile input: bad files and odd values never end in a traceback or a surprise.

Pure functions (normalizers, readers, the record builder) are fuzzed in-process with
hypothesis; a handful of whole runs go through the real CLI against the real sandbox, checking
the exit code, the summary's identity and what the sandbox received.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackly_migrate.clearing import ClearPlan, parse_cutoff
from trackly_migrate.errors import InputError, UsageError
from trackly_migrate.normalize import normalize_timestamp
from trackly_migrate.records import Kind, parse_map_options, resolve_columns

# -- timestamps at the edges of the calendar ---------------------------------------------

offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
)


@pytest.mark.parametrize(
    "text",
    ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00", "9999-12-31 23:00:00-23:59"],
)
def test_a_timestamp_whose_utc_leaves_the_calendar_is_one_invalid_value(text: str) -> None:
    with pytest.raises(ValueError, match="outside the calendar in UTC"):
        normalize_timestamp(text)


def test_a_naive_timestamp_whose_zone_pushes_it_off_the_calendar_is_invalid() -> None:
    with pytest.raises(ValueError, match="outside the calendar in UTC"):
        normalize_timestamp("9999-12-31T23:00:00", ZoneInfo("America/New_York"))
    with pytest.raises(ValueError, match="outside the calendar in UTC"):
        normalize_timestamp("0001-01-01T00:00:00", ZoneInfo("Asia/Tokyo"))


def test_a_year_before_1000_keeps_four_digits() -> None:
    assert normalize_timestamp("0999-01-01T00:00:00Z") == "0999-01-01T00:00:00Z"
    assert normalize_timestamp("0001-01-01T01:00:00+01:00") == "0001-01-01T00:00:00Z"


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=offsets), st.sampled_from(["T", " "]))
def test_any_datetime_with_any_offset_normalizes_or_is_refused(
    moment: datetime, separator: str
) -> None:
    text = moment.isoformat(sep=separator)
    try:
        normalized = normalize_timestamp(text)
    except ValueError as exc:
        assert "outside the calendar" in str(exc)
        return
    assert datetime.fromisoformat(normalized) == moment


@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(),
    st.sampled_from([UTC, ZoneInfo("Pacific/Kiritimati"), ZoneInfo("America/New_York")]),
)
def test_any_naive_datetime_in_any_zone_normalizes_or_is_refused(
    moment: datetime, zone: ZoneInfo
) -> None:
    try:
        normalize_timestamp(moment.isoformat(), zone)
    except ValueError:
        return


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00"])
def test_a_clear_cutoff_off_the_calendar_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="outside the calendar"):
        parse_cutoff(text, None)


def test_a_cutoff_at_the_end_of_the_calendar_can_be_described_east_of_utc() -> None:
    plan = ClearPlan(("sends",), parse_cutoff("9999-12-31T23:59:59Z", None))
    assert "beyond the calendar in local time" in plan.time_scope(ZoneInfo("Asia/Tokyo"))
    assert plan.body()["before_date"] == "9999-12-31T23:59:59Z"


# -- headers that name a field twice ----------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "where", "choices"),
    [
        (
            ["id", "to_number", "timestamp", "to_number"],
            "column 2 ('to_number') and column 4 ('to_number')",
            ["--map 'to_number=#2'", "--map 'to_number=#4'"],
        ),
        (
            ["id", "to_number", "timestamp", "To Number"],
            "column 2 ('to_number') and column 4 ('To Number')",
            ["--map to_number=to_number", "--map 'to_number=To Number'"],
        ),
        (
            ["ID", "id", "to_number", "timestamp"],
            "column 1 ('ID') and column 2 ('id')",
            ["--map id=ID", "--map id=id"],
        ),
    ],
)
def test_a_field_with_two_columns_is_ambiguous(
    columns: list[str], where: str, choices: list[str]
) -> None:
    with pytest.raises(InputError) as caught:
        resolve_columns(Kind.SENDS, columns, {}, source_name="x.csv")
    assert where in caught.value.message
    for choice in choices:
        assert choice in (caught.value.hint or "")


def test_the_map_that_the_ambiguity_error_suggests_resolves_it() -> None:
    columns = ["id", "to_number", "timestamp", "to_number"]
    mapping = resolve_columns(Kind.SENDS, columns, {"to_number": "#4"}, source_name="x.csv")
    assert mapping.indexes["to_number"] == 3
    columns = ["id", "to_number", "timestamp", "To Number"]
    mapping = resolve_columns(Kind.SENDS, columns, {"to_number": "To Number"}, source_name="x.csv")
    assert mapping.indexes["to_number"] == 3
    assert mapping.unknown_columns == ("to_number",)
    # A field read from elsewhere leaves the repeated columns unused, which is not ambiguous.
    columns = ["id", "phone", "timestamp", "to_number", "to_number"]
    mapping = resolve_columns(Kind.SENDS, columns, {"to_number": "phone"}, source_name="x.csv")
    assert mapping.indexes["to_number"] == 1


def test_a_field_given_twice_to_map_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="twice"):
        parse_map_options(["id=A", "id=B"], Kind.SENDS)
