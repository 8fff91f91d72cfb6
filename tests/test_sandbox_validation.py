"""The sandbox's own phone and timestamp rules (independent of the client's)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trackly_migrate.sandbox.validation import (
    format_utc,
    is_api_key_format,
    is_valid_e164,
    normalize_timestamp,
    parse_timestamp,
)


@pytest.mark.parametrize(
    "number", ["+14155551234", "+18005551234", "+447911123456", "+33612345678", "+61412345678"]
)
def test_valid_e164(number: str) -> None:
    assert is_valid_e164(number)


@pytest.mark.parametrize(
    "number",
    [
        "14155551234",  # no "+"
        "+1 415 555 1234",  # spaces
        "+1-415-555-1234",
        "+1415555123",  # too short for the US
        "+15555555555",  # parses, not a valid number
        "+0123456789",
        "+1234567890123456",  # 16 digits
        "+",
        "",
        "+1４１５５５５１２３４",  # full-width digits: phonenumbers would accept them
        "+14155551234\n",
    ],
)
def test_invalid_e164(number: str) -> None:
    assert not is_valid_e164(number)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-15T14:30:00Z", "2025-11-15T14:30:00.000000Z"),
        ("2025-11-15T14:30Z", "2025-11-15T14:30:00.000000Z"),
        ("2025-11-15T09:30:00-05:00", "2025-11-15T14:30:00.000000Z"),
        ("2025-11-15T15:30:00+0100", "2025-11-15T14:30:00.000000Z"),
        ("2025-11-15T15:30:00+01", "2025-11-15T14:30:00.000000Z"),
        ("2025-11-15T14:30:00.5Z", "2025-11-15T14:30:00.500000Z"),
        ("2025-11-15T14:30:00,25Z", "2025-11-15T14:30:00.250000Z"),
        ("2025-11-15T14:30:00.123456789Z", "2025-11-15T14:30:00.123456Z"),
        ("2025-01-01T00:30:00+01:00", "2024-12-31T23:30:00.000000Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
    ],
)
def test_timestamps_are_normalized_to_utc(text: str, expected: str) -> None:
    assert normalize_timestamp(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2025-11-15T14:30:00",  # naive: names no instant
        "2025-11-15",
        "2025-11-15 14:30:00Z",  # ISO 8601 requires "T"
        "2025-11-15T14:30:00z",
        "20251115T143000Z",
        "2025-11-15T24:00:00Z",
        "2025-02-29T00:00:00Z",
        "2025-11-15T14:30:60Z",
        "2025-11-15T14:30:00+24:00",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "1700000000",
        "",
        "2025-11-15T14:30:00Z ",
    ],
)
def test_invalid_timestamps(text: str) -> None:
    assert parse_timestamp(text) is None


def test_stored_form_sorts_as_time() -> None:
    instants = [
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(999, 1, 1, tzinfo=UTC),
    ]
    assert sorted(instants) == sorted(instants, key=format_utc)


def test_api_key_format() -> None:
    assert is_api_key_format("trk_" + "aZ09" * 8)
    assert not is_api_key_format("trk_" + "a" * 31)
    assert not is_api_key_format("trk_" + "a" * 31 + "-")
    assert not is_api_key_format("TRK_" + "a" * 32)
