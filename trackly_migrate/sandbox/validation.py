"""The sandbox's own checks of phone numbers, timestamps and API keys.

Deliberately independent of the client's validation (``trackly_migrate.records`` and friends):
if both sides shared one function, a bug in it would pass the client's checks and the
sandbox's alike, and the tests would never see it. So nothing here is imported from the rest
of the package, and the rules are written from the contract, not from the client's code.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata

from trackly_migrate.normalize import is_valid_number

# E.164: "+", a country code that does not start with 0, at most 15 digits in all. The regex
# runs first because ``phonenumbers.parse`` is lenient (it accepts spaces, dashes, letters).
_E164_SHAPE = re.compile(r"\+[1-9][0-9]{1,14}")

# ISO 8601 extended format with a mandatory offset. "T" is the only separator ISO 8601
# allows (RFC 3339's space is not ISO 8601); fractions may use "." or ",", up to 9 digits
# (nanosecond exports exist), kept to the microsecond. The offset is "Z", "+HH:MM", "+HHMM"
# or "+HH". A timestamp without an offset names no instant, so it is rejected.
_ISO_8601 = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<offset>Z|(?P<sign>[+-])(?P<off_h>[0-9]{2})(?::?(?P<off_m>[0-9]{2}))?)"
)

# The shape of nearly every timestamp a migration sends: UTC ("Z"), to the second or finer.
_UTC_TO_THE_SECOND = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?Z"
)

# The API key format: "trk_" and 32 ASCII letters or digits (one vendor page says hex, which
# is a subset).
API_KEY_PATTERN = re.compile(r"trk_[A-Za-z0-9]{32}")


@lru_cache(maxsize=65536)
def is_valid_e164(value: str) -> bool:
    """True when ``value`` is a strict E.164 number that libphonenumber calls valid.

    Cached per string: a migration repeats the same few list numbers and many recipients in
    every batch. A number not yet seen skips ``phonenumbers.parse`` when parse would only
    split it (see ``_split_e164``): parse is two thirds of the cost of a check.
    """
    if _E164_SHAPE.fullmatch(value) is None:
        return False
    parsed = _split_e164(value)
    if parsed is None:
        try:
            parsed = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            return False
    return is_valid_number(parsed)


def _split_e164(value: str) -> phonenumbers.PhoneNumber | None:
    """What ``phonenumbers.parse`` makes of a strict E.164 string, when that is a plain split.

    For "+" and digits, parse takes the first known country code (they are prefix-free) and
    keeps the rest as the national number, except when the rest starts with 0 (kept as
    Italian leading zeros) or with the country's national prefix (which parse may strip).
    Those cases, and unknown codes, return None: the caller asks parse itself, so the answer
    is always libphonenumber's.
    """
    digits = value[1:]
    for length in (1, 2, 3):
        country = int(digits[:length])
        if country in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[length:]
            break
    else:
        return None
    if len(national) < 2 or national[0] == "0":
        return None
    region = phonenumbers.region_code_for_country_code(country)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country, region)
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and re.match(prefix, national):
        return None
    return phonenumbers.PhoneNumber(country_code=country, national_number=int(national))


def parse_timestamp(value: str) -> datetime | None:
    """The aware UTC instant named by an ISO 8601 string with an offset, or None."""
    match = _ISO_8601.fullmatch(value)
    if match is None:
        return None
    parts = match.groupdict()
    fraction = (parts["fraction"] or "0")[:6].ljust(6, "0")
    try:
        offset = _offset(parts["sign"], parts["off_h"], parts["off_m"])
        local = datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"]),
            int(parts["minute"]),
            int(parts["second"] or 0),
            int(fraction),
            tzinfo=offset,
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):  # 2025-02-30, hour 24, offset pushing past year 1
        return None


def _offset(sign: str | None, hours: str | None, minutes: str | None) -> timezone:
    if sign is None:  # "Z"
        return UTC
    delta = timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
    if int(hours or 0) > 23 or int(minutes or 0) > 59:
        raise ValueError("offset out of range")
    return timezone(-delta if sign == "-" else delta)


def format_utc(instant: datetime) -> str:
    """The stored form of an instant: UTC, fixed width, microseconds, "Z".

    Fixed width (years 0001-9999, always six fraction digits) makes SQLite's text order the
    same as time order, so ``timestamp < ?`` compares real instants.
    """
    utc = instant.astimezone(UTC)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}.{utc.microsecond:06d}Z"


def normalize_timestamp(value: str) -> str | None:
    """The stored (normalized UTC) form of an ISO 8601 string with offset, or None if invalid.

    A time already in UTC (most exports) is written out from its own digits once the date is
    known to exist: formatting a datetime costs more than all the checks of a record. The
    commonest shapes (UTC to the whole second, then ``_UTC_TO_THE_SECOND``) are checked
    first, their date looked up in a cache.
    """
    # "YYYY-MM-DDTHH" + ":MM:SSZ": the hour looked up in a cache, the rest in a set.
    if len(value) == 20 and value[13:] in _MINUTE_SECOND_Z and _hour_exists(value[:13]):
        return value[:19] + ".000000Z"
    plain = _UTC_TO_THE_SECOND.fullmatch(value)
    if plain is not None:
        date, hour, minute, second, fraction = plain.groups()
        # Two ASCII digits each: text order is number order.
        if hour < "24" and minute < "60" and second < "60" and _date_exists(date):
            return f"{date}T{hour}:{minute}:{second}.{(fraction or '')[:6].ljust(6, '0')}Z"
        return None
    match = _ISO_8601.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = match.groups()
    if sign is not None and (off_h != "00" or off_m not in (None, "00")):
        instant = parse_timestamp(value)
        return None if instant is None else format_utc(instant)
    try:
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:  # 2025-02-30, hour 24, year 0
        return None
    digits = (fraction or "")[:6].ljust(6, "0")
    return f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}.{digits}Z"


# Every ":MM:SSZ" of a UTC time to the whole second.
_MINUTE_SECOND_Z = frozenset(f":{m:02d}:{s:02d}Z" for m in range(60) for s in range(60))
_HOUR = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3])")


@lru_cache(maxsize=65536)
def _hour_exists(hour: str) -> bool:
    """True for a "YYYY-MM-DDTHH" of a real day and hour (a migration's records fall in a
    few thousand hours, so this is nearly always a cache hit)."""
    return _HOUR.fullmatch(hour) is not None and _date_exists(hour[:10])


@lru_cache(maxsize=4096)
def _date_exists(date: str) -> bool:
    """True for a "YYYY-MM-DD" that names a real day (years 0001-9999). A migration's records
    fall on a few hundred days, so this is nearly always a cache hit."""
    try:
        datetime(int(date[:4]), int(date[5:7]), int(date[8:10]))
    except ValueError:
        return False
    return True


def is_api_key_format(value: str) -> bool:
    """True when ``value`` looks like a Trackly key (used for seed files, not for auth)."""
    return API_KEY_PATTERN.fullmatch(value) is not None
