"""Value normalization: phone numbers, timestamps, integers, booleans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trackly_migrate.errors import UsageError
from trackly_migrate.normalize import (
    PhoneNormalizer,
    check_region,
    check_timezone,
    format_utc,
    normalize_phone,
    normalize_timestamp,
    parse_boolean,
    parse_integer,
)

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@st.composite
def valid_numbers(draw: st.DrawFn) -> phonenumbers.PhoneNumber:
    region = draw(st.sampled_from(REGIONS))
    number_type = draw(
        st.sampled_from(
            [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
        )
    )
    example = phonenumbers.example_number_for_type(region, number_type)
    assume(example is not None and phonenumbers.is_valid_number(example))
    assert example is not None
    return example


@given(valid_numbers(), st.sampled_from(["E164", "INTERNATIONAL", "RFC3966"]))
def test_any_valid_number_formatted_by_phonenumbers_normalizes_to_its_e164(
    number: phonenumbers.PhoneNumber, style: str
) -> None:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    formatted = phonenumbers.format_number(number, getattr(phonenumbers.PhoneNumberFormat, style))
    formatted = formatted.removeprefix("tel:")
    if ";" in formatted:  # RFC 3966 parameters are not part of the number
        formatted = formatted.split(";", 1)[0]
    assert normalize_phone(formatted) == e164
    assert normalize_phone(e164) == e164


@given(valid_numbers())
def test_a_national_number_normalizes_with_its_region(number: phonenumbers.PhoneNumber) -> None:
    region = phonenumbers.region_code_for_number(number)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    assume(all(ch.isdigit() or ch in " ()-./" for ch in national))
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert normalize_phone(national, region) == e164


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+1 (415) 555-0123", "+14155550123"),
        ("+1.415.555.0123", "+14155550123"),
        ("+1-415-555-0123", "+14155550123"),
        ("  +14155550123 ", "+14155550123"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_human_formatting_with_country_code_is_normalized(text: str, expected: str) -> None:
    assert normalize_phone(text) == expected


def test_national_number_needs_a_region() -> None:
    with pytest.raises(ValueError, match="default-region"):
        normalize_phone("4155550123")
    assert normalize_phone("(415) 555-0123", "US") == "+14155550123"


@pytest.mark.parametrize(
    "text",
    ["", "hello", "+1 415 555 0123 ext 5", "call +14155550123", "+15555555555", "+1415", "++1"],
)
def test_invalid_numbers_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_phone(text)


@given(st.text(max_size=30))
def test_phone_normalization_never_crashes(text: str) -> None:
    try:
        result = normalize_phone(text)
    except ValueError:
        return
    assert result.startswith("+") and result[1:].isdigit()


aware_datetimes = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
    ),
)


@given(aware_datetimes, st.sampled_from(["T", " "]))
def test_any_aware_datetime_round_trips(moment: datetime, separator: str) -> None:
    text = moment.isoformat(sep=separator)
    normalized = normalize_timestamp(text)
    assert normalized.endswith("Z")
    assert datetime.fromisoformat(normalized) == moment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-15T14:30:00Z", "2025-11-15T14:30:00Z"),
        ("2025-11-15 14:30:00+02:00", "2025-11-15T12:30:00Z"),
        ("2025-11-15T14:30:00.123Z", "2025-11-15T14:30:00.123000Z"),
        ("2025-11-15T14:30:00.123456789-05:00", "2025-11-15T19:30:00.123456Z"),
        ("2025-11-15T14:30Z", "2025-11-15T14:30:00Z"),
    ],
)
def test_timestamps_are_sent_in_utc(text: str, expected: str) -> None:
    assert normalize_timestamp(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2025-02-30T10:00:00Z", "not a real date"),
        ("2025-11-15T25:00:00Z", "not a real date"),
        ("yesterday", "not an ISO 8601"),
        ("2025-11-15", "without a time"),
        ("15/11/2025 14:30", "not an ISO 8601"),
    ],
)
def test_impossible_or_foreign_timestamps_are_rejected(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_timestamp(text)


def test_a_naive_timestamp_suggests_timezone_and_uses_it_when_given() -> None:
    with pytest.raises(ValueError, match="--timezone"):
        normalize_timestamp("2025-11-15T09:30:00")
    zone = ZoneInfo("America/New_York")
    assert normalize_timestamp("2025-11-15T09:30:00", zone) == "2025-11-15T14:30:00Z"
    assert normalize_timestamp("2025-07-15 09:30:00", zone) == "2025-07-15T13:30:00Z"


def test_a_wall_clock_time_skipped_by_dst_is_rejected() -> None:
    with pytest.raises(ValueError, match="does not exist"):
        normalize_timestamp("2025-03-09T02:30:00", ZoneInfo("America/New_York"))


def test_format_utc_keeps_microseconds_only_when_present() -> None:
    assert format_utc(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05Z"
    assert format_utc(datetime(2025, 1, 2, 3, 4, 5, 7, tzinfo=UTC)) == "2025-01-02T03:04:05.000007Z"


@pytest.mark.parametrize(("value", "expected"), [("42", 42), (" 7 ", 7), (3, 3), (4.0, 4)])
def test_integers(value: object, expected: int) -> None:
    assert parse_integer(value) == expected


@pytest.mark.parametrize("value", ["4.5", "abc", "4_2", True, 2**64, "", None, 1.5])
def test_not_integers(value: object) -> None:
    with pytest.raises(ValueError):
        parse_integer(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("YES", True),
        ("1", True),
        (1, True),
        ("No", False),
        ("0", False),
        (False, False),
    ],
)
def test_booleans(value: object, expected: bool) -> None:
    assert parse_boolean(value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, "", None])
def test_not_booleans(value: object) -> None:
    with pytest.raises(ValueError):
        parse_boolean(value)


def test_region_and_timezone_options_are_checked() -> None:
    assert check_region("us") == "US"
    with pytest.raises(UsageError):
        check_region("XX")
    assert check_timezone("Europe/London") == ZoneInfo("Europe/London")
    with pytest.raises(UsageError) as caught:
        check_timezone("Mars/Olympus")
    assert "IANA" in (caught.value.hint or "")


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_the_fast_e164_path_agrees_with_the_general_parser(text: str) -> None:
    expected: str | None = None
    try:
        number = phonenumbers.parse(text)
        if phonenumbers.is_valid_number(number):
            expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    try:
        normalized: str | None = normalize_phone(text)
    except ValueError:
        normalized = None
    assert normalized == expected


def test_a_number_the_fast_path_cannot_split_is_left_to_the_general_parser() -> None:
    assert normalize_phone("+378800000") == "+3780549800000"  # found by the test above


def test_the_phone_cache_remembers_rejections_and_stays_bounded() -> None:
    normalizer = PhoneNormalizer("US", size=64)
    for _ in range(2):
        assert normalizer("(415) 555-0123") == "+14155550123"
        with pytest.raises(ValueError, match="not a phone number"):
            normalizer("nope")
    for index in range(1000):
        number = f"+1415555{index:04d}"
        assert normalizer(number) == number
    assert normalizer.cached <= 64 + 64 // 8


@given(st.lists(st.from_regex(r"\+1[2-9][0-9]{9}", fullmatch=True), min_size=1, max_size=40))
def test_the_phone_cache_always_answers_as_the_normalizer_does(numbers: list[str]) -> None:
    normalizer = PhoneNormalizer(size=4)  # tiny: colliding numbers keep taking each other's slot
    for number in numbers + numbers[::-1]:
        try:
            expected: str | None = normalize_phone(number)
        except ValueError:
            expected = None
        try:
            got: str | None = normalizer(number)
        except ValueError:
            got = None
        assert got == expected


def test_two_numbers_meeting_in_one_slot_are_both_kept() -> None:
    # A one-way table dropped the first whenever the second came: at 10% distinct numbers over
    # 1M rows, that was 142,000 extra validations (issue 13).
    normalizer = PhoneNormalizer(size=4)
    first, second = "+14155550100", "+14155550104"  # equal modulo 4: the same slot
    assert int(first[1:]) % 4 == int(second[1:]) % 4
    for number in (first, second, first, second):
        assert normalizer(number) == number
    assert normalizer.cached == 2


def test_a_pair_keeps_the_two_numbers_last_added_to_it() -> None:
    normalizer = PhoneNormalizer(size=4)  # two pairs of slots; these three share the first
    first, second, third = "+14155550100", "+14155550101", "+14155550104"
    for number in (first, second, third):  # the first is pushed out by the third
        assert normalizer(number) == number
    assert normalizer.cached == 2
    slots = [slot for slot in normalizer._e164 if slot]
    assert slots == [int(third[1:]), int(second[1:])]
