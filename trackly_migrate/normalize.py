"""Normalization of single values: phone numbers to E.164, timestamps to UTC, integers, booleans.

Each function returns the normalized value or raises ``ValueError`` with a message written for
the user; ``records.py`` turns that into the record's error code. Phone and timestamp results
are cached per distinct input string: an SMS history names the same recipients and lists over
and over, and parsing a number is the most expensive step of validation.
"""

from __future__ import annotations

import itertools
import re
from array import array
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneMetadata

from trackly_migrate.errors import UsageError

# Bounded so that memory stays flat when every number in a file is distinct: 8 MB of slots.
# At 2**18 one-way slots, 100,000 distinct numbers over 1M rows missed 242,000 times (each
# miss is a ~9 us phonenumbers validation); 2**20 slots in pairs miss 104,000 (100,000 are
# first sightings).
PHONE_CACHE_SIZE = 1 << 20
# The numbers last seen in exactly their E.164 form, as the strings read: a set lookup is
# about 40 ns against about 600 ns for a look in the table above (issue 13's 1M-row dry run
# spent 0.6 s there). Emptied when full, so it holds at most this many (~12 MB).
RECENT_PHONES = 1 << 17

# What a phone number may be written with: digits, a leading plus, and the punctuation people
# and spreadsheets put between groups. Anything else (letters, "ext", a second number) is
# refused here rather than left to phonenumbers' lenient extraction, which would, for example,
# read "call +1 415 555 0123 now" as a number.
_PHONE_CHARS = re.compile(r"^\+?[0-9 ()./\-\u00a0]+$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_HAS_TIME = re.compile(r"\d[T t]\d")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})
_MAX_INT = 2**63 - 1
_OUT_OF_UTC_RANGE = "falls outside the calendar in UTC (0001-01-01 to 9999-12-31)"
# Warehouse exports (BigQuery, Redshift) write "2025-11-15 14:30:00 UTC": the same as Z.
_ZONE_WORDS = (" UTC", " GMT")
_EPOCH_NUMBER = re.compile(r"^([+-]?)([0-9]+)(?:\.([0-9]+))?$")
# Digits alone are never an ISO timestamp with a time of day; these lengths are the epoch
# seconds (2001-2286: 10 digits) and milliseconds (13 digits) of any plausible history.
_LOOKS_LIKE_EPOCH_S = re.compile(r"^[0-9]{9,11}(\.[0-9]+)?$")
_LOOKS_LIKE_EPOCH_MS = re.compile(r"^[0-9]{12,14}(\.[0-9]+)?$")
_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)

ISO = "iso"
EPOCH = "epoch"
EPOCH_MS = "epoch_ms"
NAMED_TIMESTAMP_FORMATS = (ISO, EPOCH, EPOCH_MS)


def check_region(region: str | None) -> str | None:
    """An ISO 3166 region code phonenumbers knows (upper-cased), or a usage error."""
    if region is None:
        return None
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise UsageError(
            f"Unknown region {region!r} for --default-region.",
            hint="Use a two-letter ISO 3166 code such as US, GB, DE or AU.",
        )
    return code


def check_timezone(name: str | None) -> tzinfo | None:
    """The IANA zone for --timezone, or a usage error naming a valid example."""
    if name is None:
        return None
    if name.strip().upper() in {"UTC", "Z"}:
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"Unknown time zone {name!r} for --timezone.",
            hint="Use an IANA name such as America/New_York, Europe/London or UTC.",
        ) from None


class PhoneNormalizer:
    """``normalize_phone`` with caches sized once, so memory does not grow with the input.

    An SMS history names the same recipients and lists over and over. Numbers already in
    E.164 (the common case) are remembered in a two-way table of their digits: one machine
    word per slot in a single array allocated up front, so a file with a million distinct
    numbers uses exactly the memory of a file with ten (a dict of strings grew by several MB
    and pinned allocator arenas between short-lived rows). A number may sit in either slot of
    its pair; a new one takes the first and moves the one there to the second, so each pair
    keeps the two numbers last added to it. Other spellings (human
    formatting, national numbers, rejections) go to a small dict that drops its older half
    when full.
    """

    def __init__(self, region: str | None = None, size: int = PHONE_CACHE_SIZE) -> None:
        self._region = region
        self._slots = 1 << max(1, (max(2, size) - 1).bit_length())  # a power of two
        self._pair_mask = self._slots - 2  # the even slot of the number's pair
        self._e164 = array("Q", bytes(8 * self._slots))
        self._size = max(2, size // 8)
        self._other: dict[str, str | _Invalid] = {}
        # Valid numbers already in E.164, as written: ``cell_plan`` looks here before calling.
        self.recent: set[str] = set()
        self._recent_size = max(1, min(RECENT_PHONES, self._slots))

    def __call__(self, text: str) -> str:
        recent = self.recent
        if text in recent:
            return text
        digits = text[1:]
        if text[:1] == "+" and digits.isdigit() and digits.isascii() and 6 < len(digits) < 16:
            number = int(digits)
            pair = number & self._pair_mask
            table = self._e164
            if table[pair] == number or table[pair + 1] == number:
                self._remember(text)
                return text
            result = normalize_phone(text, self._region)  # raises for an invalid number
            if result == text:
                table[pair + 1] = table[pair]
                table[pair] = number
                self._remember(text)
            return result
        return self._spelled_otherwise(text)

    def _remember(self, text: str) -> None:
        recent = self.recent
        if len(recent) >= self._recent_size:
            recent.clear()  # in place: the compiled builds hold this very set
        recent.add(text)

    def _spelled_otherwise(self, text: str) -> str:
        result = self._other.get(text)
        if result is None:
            try:
                result = normalize_phone(text, self._region)
            except ValueError as exc:
                result = _Invalid(str(exc))
            if len(self._other) >= self._size:
                self._forget_older_half()
            self._other[text] = result
        if type(result) is _Invalid:
            raise ValueError(result.reason)
        return result  # type: ignore[return-value]

    def _forget_older_half(self) -> None:
        # Dicts keep insertion order: the first keys are the oldest.
        for key in list(itertools.islice(self._other, self._size // 2)):
            del self._other[key]

    @property
    def cached(self) -> int:
        return len(self._other) + sum(1 for slot in self._e164 if slot)


class _Invalid:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _parse_e164(text: str) -> phonenumbers.PhoneNumber | None:
    """A number already in E.164, split without phonenumbers' general parser (10x faster).

    Country codes are prefix-free, so the first known prefix is the one. National numbers
    with a leading zero (Italy's) are left to the general parser, which keeps that zero.
    """
    for length in (1, 2, 3):
        country = int(text[1 : 1 + length])
        if country in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = text[1 + length :]
            if not national or national[0] == "0":
                return None
            return phonenumbers.PhoneNumber(country_code=country, national_number=int(national))
    return None


def is_valid_number(number: phonenumbers.PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number``, with less matching of the same patterns.

    libphonenumber asks which type a number is and calls it valid unless the answer is
    "unknown": that is, when its region's general pattern and any one type's pattern match.
    It tries the rare types first (premium rate, toll free, ... voicemail), so a common
    fixed-line or mobile number is matched against ten patterns; here the common types come
    first, so against two. For a country code that several regions share (+1 above all),
    it matches the number against its region's patterns once to find the region and again
    to validate it there; here the first time is the answer. The non-geographic codes are
    left to libphonenumber itself. ``tests/test_phone_validity.py`` and the sandbox's tests
    (every example number of every region, and near misses) hold it to the same answers.
    """
    code = number.country_code
    regions = None if code is None else phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code)
    if regions is None:
        return False
    if regions == (phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY,):
        return bool(phonenumbers.is_valid_number(number))
    national = phonenumbers.national_significant_number(number)
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region(regions[0].upper(), None)
        return metadata is not None and _is_some_type(national, metadata)
    for region in regions:  # in libphonenumber's order, as region_code_for_number
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re.match(metadata.leading_digits, national):
                return _is_some_type(national, metadata)
        elif _is_some_type(national, metadata):
            return True  # the region of the number, and valid there
    return False


# Every type libphonenumber's number_type knows, the commonest first (the order of the
# checks changes nothing but their number: a number is valid when any of them matches).
_NUMBER_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)


def _is_some_type(national: str, metadata: PhoneMetadata) -> bool:
    """libphonenumber's ``number_type(...) != UNKNOWN`` for a region's metadata."""
    if not _matches_desc(national, metadata.general_desc):
        return False
    return any(_matches_desc(national, getattr(metadata, name)) for name in _NUMBER_TYPES)


def _matches_desc(national: str, desc: phonenumbers.PhoneNumberDesc | None) -> bool:
    """As libphonenumber matches a number against one of its patterns: the possible lengths
    (when listed) first, then the whole number against the pattern."""
    if desc is None:
        return False
    lengths = desc.possible_length
    if lengths and len(national) not in lengths:
        return False
    pattern = desc.national_number_pattern
    return pattern is not None and pattern != "" and re.fullmatch(pattern, national) is not None


def normalize_phone(text: str, region: str | None = None) -> str:
    """``text`` as an E.164 number (``+14155550123``), or ``ValueError`` saying why not.

    Human formatting (spaces, dashes, dots, brackets) is accepted around a number that carries
    its country code; a national number needs ``region`` (``--default-region``).
    """
    candidate = text.strip()
    if not candidate:
        raise ValueError("is empty")
    if _E164.match(candidate):
        fast = _parse_e164(candidate)
        if fast is not None and is_valid_number(fast):
            return candidate
        # Not valid as split: the general parser may still read it, e.g. San Marino's
        # +378 800000, which phonenumbers completes to +378 0549 800000.
    if not _PHONE_CHARS.match(candidate):
        raise ValueError(f"{candidate!r} is not a phone number")
    if not candidate.startswith("+") and region is None:
        raise ValueError(
            f"{candidate!r} has no country code; write it as +<country><number> "
            "or pass --default-region (e.g. US)"
        )
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{candidate!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{candidate!r} is not a valid phone number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not _E164.match(e164):  # pragma: no cover - phonenumbers' E.164 is always this shape
        raise ValueError(f"{candidate!r} has no E.164 form")
    return e164


def normalize_timestamp(text: str, default_zone: tzinfo | None = None) -> str:
    """``text`` as an ISO 8601 UTC timestamp ending in ``Z``, or ``ValueError`` saying why not.

    Accepts ISO 8601 / RFC 3339: ``T`` or space, fractional seconds, ``Z`` or an offset.
    A timestamp without an offset is read in ``default_zone`` (``--timezone``) when given.
    """
    if (
        len(text) == 20
        and text[19] == "Z"
        and text[10] == "T"
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
    ):
        # Already the exact form we send (the common case): only check the date is real.
        try:
            datetime.fromisoformat(text)
            return text
        except ValueError:
            pass  # the general path below explains what is wrong
    candidate = text.strip()
    if candidate.endswith(_ZONE_WORDS):
        candidate = candidate[:-4] + "Z"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise ValueError(_timestamp_problem(text.strip(), exc)) from None
    if not _HAS_TIME.search(candidate):
        raise ValueError(f"{candidate!r} is a date without a time of day")
    return _utc_text(moment, default_zone, candidate, "; add one (Z or +02:00) or pass")


def _utc_text(moment: datetime, zone: tzinfo | None, candidate: str, advice: str) -> str:
    """``moment`` as API text in UTC; a naive one is read in ``zone`` (--timezone)."""
    if moment.tzinfo is None:
        if zone is None:
            raise ValueError(
                f"{candidate!r} has no UTC offset{advice} --timezone Area/City "
                "(e.g. --timezone America/New_York)"
            )
        moment = _localize(moment, zone, candidate)
    try:
        return format_utc(moment)
    except ValueError:
        raise ValueError(f"{candidate!r} {_OUT_OF_UTC_RANGE}") from None


def to_utc(moment: datetime) -> datetime:
    """An aware datetime in UTC, or ``ValueError`` when UTC leaves years 1..9999.

    ``9999-12-31T23:59:59-01:00`` is a valid ISO 8601 timestamp whose UTC moment falls in the
    year 10000, which ``datetime`` cannot hold (it raises ``OverflowError``).
    """
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()!r} {_OUT_OF_UTC_RANGE}") from None


def format_utc(moment: datetime) -> str:
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC (``ValueError`` if none)."""
    # isoformat, not strftime: glibc's %Y does not pad years before 1000 to four digits.
    utc = to_utc(moment).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


def _localize(naive: datetime, zone: tzinfo, original: str) -> datetime:
    aware = naive.replace(tzinfo=zone)
    # A wall-clock time skipped by a daylight-saving change does not exist: round-tripping it
    # through UTC lands on another wall-clock time. Refuse it rather than guess.
    try:
        round_trip = to_utc(aware).astimezone(zone).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise ValueError(f"{original!r} in {zone} {_OUT_OF_UTC_RANGE}") from None
    if round_trip != naive:
        raise ValueError(f"{original!r} does not exist in {zone} (skipped by a clock change)")
    return aware


def _timestamp_problem(candidate: str, exc: ValueError) -> str:
    reason = str(exc)
    if _LOOKS_LIKE_EPOCH_S.match(candidate):
        return f"{candidate!r} looks like epoch seconds; pass --timestamp-format epoch to read it"
    if _LOOKS_LIKE_EPOCH_MS.match(candidate):
        return (
            f"{candidate!r} looks like epoch milliseconds; "
            "pass --timestamp-format epoch_ms to read it"
        )
    if "out of range" in reason or "must be in" in reason:
        return f"{candidate!r} is not a real date and time ({reason})"
    return f"{candidate!r} is not an ISO 8601 timestamp (e.g. 2025-11-15T14:30:00Z)"


def check_timestamp_format(value: str) -> str:
    """``iso``, ``epoch``, ``epoch_ms`` or a strptime pattern that parses what it formats."""
    text = value.strip()
    if text.lower() in NAMED_TIMESTAMP_FORMATS:
        return text.lower()
    hint = 'Use iso, epoch, epoch_ms or a strptime pattern such as "%m/%d/%Y %H:%M".'
    if "%" not in text:
        raise UsageError(f"{value!r} is not a timestamp format.", hint=hint)
    sample = datetime(2025, 11, 15, 14, 30, 5, 123456, tzinfo=UTC)
    try:
        datetime.strptime(sample.strftime(text), text)
    except ValueError as exc:
        problem = f"{value!r} is not a usable strptime pattern ({exc})."
        raise UsageError(problem, hint=hint) from None
    return text


def timestamp_parser(fmt: str, zone: tzinfo | None) -> Callable[[str], str]:
    """The converter of one timestamp field's text in ``fmt`` (see ``check_timestamp_format``)."""
    if fmt == ISO:
        return lambda text: normalize_timestamp(text, zone)
    if fmt in (EPOCH, EPOCH_MS):
        scale = 1 if fmt == EPOCH else 1000
        return lambda text: normalize_epoch(text, scale)
    return lambda text: normalize_pattern(text, fmt, zone)


def normalize_epoch(text: str, scale: int = 1) -> str:
    """Seconds (``scale`` 1) or milliseconds (1000) since 1970-01-01 UTC as an API timestamp.

    The digits are read exactly (no float rounding): ``1731681000.5`` is half a second past.
    """
    candidate = text.strip()
    match = _EPOCH_NUMBER.match(candidate)
    unit = "seconds" if scale == 1 else "milliseconds"
    if match is None:
        option = "epoch" if scale == 1 else "epoch_ms"
        raise ValueError(
            f"{candidate!r} is not a number of {unit} since 1970 (--timestamp-format {option})"
        )
    sign, whole, fraction = match.groups()
    # Microseconds as an integer: whole units and the first digits of the fraction.
    digits = 6 if scale == 1 else 3
    micros = int(whole) * (1_000_000 // scale) + int(((fraction or "") + "0" * digits)[:digits])
    try:
        moment = _EPOCH_START + timedelta(microseconds=-micros if sign == "-" else micros)
        return format_utc(moment)
    except (OverflowError, ValueError):
        raise ValueError(f"{candidate!r} {unit} since 1970 {_OUT_OF_UTC_RANGE}") from None


def normalize_pattern(text: str, pattern: str, zone: tzinfo | None) -> str:
    """``text`` read with the strptime ``pattern``; without %z it needs ``zone`` (--timezone)."""
    candidate = text.strip()
    try:
        moment = datetime.strptime(candidate, pattern)
    except ValueError:
        raise ValueError(f"{candidate!r} does not match --timestamp-format {pattern!r}") from None
    return _utc_text(moment, zone, candidate, f" in --timestamp-format {pattern!r}; pass")


def parse_integer(value: object) -> int:
    """An integer from a JSON number or a text cell, or ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INTEGER.match(value.strip()):
        number = int(value.strip())
    else:
        raise ValueError(f"{value!r} is not an integer")
    if abs(number) > _MAX_INT:
        raise ValueError(f"{value!r} is too large")
    return number


def parse_boolean(value: object) -> bool:
    """A boolean from JSON true/false, 0/1, or text true/false/yes/no/1/0 in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"{value!r} is not true/false, yes/no or 1/0")
