"""The contract's rules for one request, as far as they need no database.

``check_send`` / ``check_click`` judge one record (shape, types, required fields, E.164,
ISO 8601) outside the database lock; ``records_of``, ``parse_clear`` and
``parse_unsubscribe`` judge a request body as a whole. The field-level pieces (phones,
timestamps, key format) are in ``validation.py``; the rules that need the account's data are
in ``bulk.py``. Rules the contract leaves open are decided here and listed in
``docs/sandbox.md``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from types import NoneType
from typing import Any, NamedTuple, TypeVar, cast

import orjson

from trackly_migrate.sandbox.store import ClickRow, SendRow, SendValues
from trackly_migrate.sandbox.validation import is_valid_e164, normalize_timestamp

MAX_RECORDS = 1000
ENTITIES = frozenset({"sends", "clicks", "revenue"})
_INT64 = 2**63
T = TypeVar("T")


class RequestError(Exception):
    """The whole request is refused: nothing is stored, the answer is {"error", "message"}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


# ---------------------------------------------------------------------------------------
# Per-record checks that need no database
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """A record that fails; ``id`` is the send's id when it has one (sends' errors carry it)."""

    code: str
    message: str
    id: str | None = None


class SendCandidate(NamedTuple):  # a tuple: one is made per record (see store.SendRow)
    """A send with a usable id. ``problem`` is its first field error, judged after dedup."""

    id: str
    problem: Rejected | None
    row: SendRow | None = None
    list_id: int | None = None
    list_number: str | None = None


# What ``check_send`` answers: a rejection, a candidate for the general path, or a good
# plain record's row (``SendValues``).
CheckedSend = Rejected | SendCandidate | SendValues


class ClickCandidate(NamedTuple):
    message_id: str
    problem: Rejected | None
    row: ClickRow | None = None


def _is_int(value: Any) -> bool:
    # bool is an int in Python but not in JSON; the range is what SQLite can store.
    return isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


_TYPE_NAMES: dict[Callable[[Any], bool], str] = {
    _is_int: "an integer",
    _is_str: "a string",
    _is_bool: "true or false",
}

_SEND_TYPES: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("to_number", _is_str),
    ("timestamp", _is_str),
    ("list_number", _is_str),
    ("list_id", _is_int),
    ("message", _is_str),
    ("send_type", _is_str),
    ("delivered", _is_bool),
    ("length", _is_int),
    ("creative_id", _is_int),
)

_CLICK_TYPES: tuple[tuple[str, Callable[[Any], bool]], ...] = (
    ("offer_id", _is_str),
    ("phone_number", _is_str),
    ("timestamp", _is_str),
    ("send_timestamp", _is_str),
)


def missing(record: dict[str, Any], name: str) -> bool:
    """Absent, null and "" all count as missing for a required field."""
    value = record.get(name)
    return value is None or value == ""


def _type_error(
    record: dict[str, Any], fields: tuple[tuple[str, Callable[[Any], bool]], ...]
) -> Rejected | None:
    """The first field of the wrong JSON type (null means absent for optional fields)."""
    for name, is_type in fields:
        value = record.get(name)
        if value is not None and value != "" and not is_type(value):
            expected = _TYPE_NAMES[is_type]
            return Rejected("invalid_type", f"Field '{name}' must be {expected}.")
    return None


def _record_key(record: Any, name: str) -> Rejected | str:
    """The record's dedup key (a string), or why the record is unusable before any check."""
    if not isinstance(record, dict):
        return Rejected("invalid_record", "Each record must be a JSON object.")
    if missing(record, name):
        return Rejected(f"missing_{name}", f"The '{name}' field is required.")
    key = record[name]
    if not isinstance(key, str):
        return Rejected("invalid_type", f"Field '{name}' must be a string.")
    return key


def check_send(record: Any) -> CheckedSend:
    """Check one send record as far as possible without the database.

    A good record of plain JSON types (nearly every record of a migration) is judged in one
    pass: by ``_good_plain_send`` when it names no ``list_number`` (its row comes back as a
    plain tuple, ``SendValues``, to be stored as it is), else by ``_good_send``; anything
    else by the general ``check_send_fully``. All give the same answer for every record
    (tests/test_sandbox_store.py, through ``as_candidate``).
    """
    good = _good_plain_send(record)
    if good is not None:
        return good
    candidate = _good_send(record)
    return candidate if candidate is not None else check_send_fully(record)


def as_candidate(checked: Rejected | SendCandidate | SendValues) -> Rejected | SendCandidate:
    """``check_send``'s answer in the general path's form (a plain row as its candidate)."""
    if type(checked) is tuple:
        row = cast(SendValues, checked)
        return SendCandidate(row[0], None, SendRow(*row), row[1], None)
    return cast(Rejected | SendCandidate, checked)


# The exact types of (id, to_number, timestamp, list_id, message, send_type, delivered,
# length, creative_id) that the plain fast path takes: None is an absent optional field.
_PLAIN_SEND_TYPES = frozenset(
    (str, str, str, *optional)
    for optional in itertools.product(
        (int, NoneType), (str, NoneType), (str, NoneType), (bool, NoneType), (int, NoneType),
        (int, NoneType),
    )
)  # fmt: skip


def _good_plain_send(record: Any) -> SendValues | None:
    """The row of a good send of exact JSON types that names no ``list_number``, or None
    (then the other paths decide). One type lookup and no call per optional field."""
    if type(record) is not dict:
        return None
    get = record.get
    message_id, to_number, timestamp = get("id"), get("to_number"), get("timestamp")
    list_id, message, send_type = get("list_id"), get("message"), get("send_type")
    delivered, length, creative_id = get("delivered"), get("length"), get("creative_id")
    types = (
        type(message_id), type(to_number), type(timestamp), type(list_id), type(message),
        type(send_type), type(delivered), type(length), type(creative_id),
    )  # fmt: skip
    if (
        types not in _PLAIN_SEND_TYPES
        or not message_id
        or ("list_number" in record and get("list_number") is not None)  # mostly absent
        or not -_INT64 <= (list_id or 0) < _INT64
        or not -_INT64 <= (length or 0) < _INT64
        or not -_INT64 <= (creative_id or 0) < _INT64
        or not is_valid_e164(to_number)  # neither "" nor any invalid number passes
    ):
        return None
    normalized = normalize_timestamp(cast(str, timestamp))
    if normalized is None:
        return None
    # "" means absent for the optional strings, as in ``_plain``.
    return (  # type: ignore[return-value]  # the types were checked just above
        message_id,
        list_id,
        to_number,
        normalized,
        message or None,
        send_type or None,
        delivered,
        length,
        creative_id,
    )


def _good_send(record: Any) -> SendCandidate | None:
    """The record's candidate when it is a dict of exact JSON types with no field error;
    None when it is anything else (then the general path decides, rejections included)."""
    if type(record) is not dict:
        return None
    get = record.get
    message_id, to_number, timestamp = get("id"), get("to_number"), get("timestamp")
    if not (
        type(message_id) is str
        and message_id
        and type(to_number) is str
        and type(timestamp) is str
        and is_valid_e164(to_number)  # neither "" nor any invalid number passes
    ):
        return None
    list_number, message, send_type = (
        _plain(get("list_number"), str),
        _plain(get("message"), str),
        _plain(get("send_type"), str),
    )
    delivered = _plain(get("delivered"), bool)
    list_id, length, creative_id = (
        _plain(get("list_id"), int),
        _plain(get("length"), int),
        _plain(get("creative_id"), int),
    )
    if _NOT_PLAIN in (list_number, message, send_type, delivered, list_id, length, creative_id):
        return None
    if list_number is not None and not is_valid_e164(list_number):
        return None
    normalized = normalize_timestamp(timestamp)
    if normalized is None:
        return None
    row = SendRow(
        message_id,
        list_id,
        to_number,
        normalized,
        message,
        send_type,
        delivered,
        length,
        creative_id,
    )
    return SendCandidate(message_id, None, row, list_id, list_number)


_NOT_PLAIN: Any = object()  # an optional field's value that is not of its exact JSON type


def _plain(value: Any, kind: type[Any]) -> Any:
    """An optional field's value; None when absent or ""; ``_NOT_PLAIN`` when it is not
    exactly of type ``kind`` (an int must also fit SQLite's 64 bits)."""
    if value is None or value == "":
        return None
    if type(value) is not kind or (kind is int and not -_INT64 <= value < _INT64):
        return _NOT_PLAIN
    return value


def check_send_fully(record: Any) -> Rejected | SendCandidate:
    """``check_send`` for any record: every rule, in the contract's order."""
    message_id = _record_key(record, "id")
    if isinstance(message_id, Rejected):
        return message_id
    problem = _send_problem(record)
    if isinstance(problem, Rejected):
        return SendCandidate(message_id, Rejected(problem.code, problem.message, message_id))
    row = SendRow(
        id=message_id,
        # As given; store_sends checks it against the account's lists, or fills in the list
        # that list_number names.
        list_id=_optional(record, "list_id"),
        to_number=record["to_number"],
        timestamp=problem,
        message=_optional(record, "message"),
        send_type=_optional(record, "send_type"),
        delivered=_optional(record, "delivered"),
        length=_optional(record, "length"),
        creative_id=_optional(record, "creative_id"),
    )
    return SendCandidate(
        message_id, None, row, _optional(record, "list_id"), _optional(record, "list_number")
    )


def _optional(record: dict[str, Any], name: str) -> Any:
    """An optional field's value; "" means absent, as null does."""
    value = record.get(name)
    return None if value == "" else value


def _send_problem(record: dict[str, Any]) -> Rejected | str:
    """The record's first field error, or (when it has none) its normalized timestamp."""
    if missing(record, "to_number"):
        return Rejected("missing_to_number", "The 'to_number' field is required.")
    if missing(record, "timestamp"):
        return Rejected("missing_timestamp", "The 'timestamp' field is required.")
    type_error = _type_error(record, _SEND_TYPES)
    if type_error is not None:
        return type_error
    if not is_valid_e164(record["to_number"]):
        return Rejected("invalid_phone", "Field 'to_number' is not a valid E.164 phone number.")
    list_number = record.get("list_number")
    if list_number not in (None, "") and not is_valid_e164(list_number):
        return Rejected("invalid_phone", "Field 'list_number' is not a valid E.164 phone number.")
    timestamp = normalize_timestamp(record["timestamp"])
    if timestamp is None:
        return Rejected(
            "invalid_timestamp",
            "Field 'timestamp' is not a valid ISO 8601 datetime with a UTC offset.",
        )
    return timestamp


def check_click(record: Any) -> Rejected | ClickCandidate:
    """Check one click record as far as possible without the database."""
    message_id = _record_key(record, "message_id")
    if isinstance(message_id, Rejected):
        return message_id
    problem = _click_problem(record)
    if problem is not None:
        return ClickCandidate(message_id, problem)
    send_timestamp = _optional(record, "send_timestamp")
    row = ClickRow(
        message_id=message_id,
        offer_id=record["offer_id"],
        phone=record["phone_number"],
        timestamp=normalize_timestamp(record["timestamp"]) or "",
        send_timestamp=None if send_timestamp is None else normalize_timestamp(send_timestamp),
    )
    return ClickCandidate(message_id, None, row)


def _click_problem(record: dict[str, Any]) -> Rejected | None:
    for name in ("offer_id", "phone_number", "timestamp"):
        if missing(record, name):
            return Rejected(f"missing_{name}", f"The '{name}' field is required.")
    type_error = _type_error(record, _CLICK_TYPES)
    if type_error is not None:
        return type_error
    # The contract lists no invalid_phone for clicks (nor an invalid_phones count): the
    # click's phone_number is only required to be a string, as the vendor's page implies.
    for name in ("timestamp", "send_timestamp"):
        value = record.get(name)
        if value is not None and normalize_timestamp(value) is None:
            return Rejected(
                "invalid_timestamp",
                f"Field '{name}' is not a valid ISO 8601 datetime with a UTC offset.",
            )
    return None


# ---------------------------------------------------------------------------------------
# Request-level checks
# ---------------------------------------------------------------------------------------


def parse_json(body: bytes) -> Any:
    """A request body as JSON, or the contract's 400 ``invalid_json``."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RequestError(400, "invalid_json", "The request body is not valid JSON.") from None


def decode_json_records(body: bytes) -> list[Any]:
    """An import body's records as JSON decodes them (refused as ``records_of`` says)."""
    return records_of(parse_json(body))


def records_of(body: Any) -> list[Any]:
    """The ``records`` of an import body, refused unless a non-empty list within the limit."""
    records = body.get("records") if isinstance(body, dict) else None
    return counted(records if isinstance(records, list) else [])


def counted(records: list[T]) -> list[T]:
    """``records`` themselves: refused (400) when there are none, (413) when too many."""
    if not records:
        raise RequestError(
            400, "missing_records", "The records field is required and must be a non-empty array."
        )
    if len(records) > MAX_RECORDS:
        raise RequestError(
            413,
            "too_many_records",
            f"Exceeded the maximum of {MAX_RECORDS:,} records per request ({len(records):,}).",
        )
    return records


@dataclass(frozen=True)
class ClearRequest:
    entities: tuple[str, ...]
    before: str | None


def parse_clear(body: Any) -> ClearRequest:
    """Check a clear body in the contract's order: entities, confirm, before_date."""
    fields = body if isinstance(body, dict) else {}
    entities = fields.get("entities")
    if not isinstance(entities, list) or not entities:
        raise RequestError(
            400, "missing_entities", "The entities field is required and must be a non-empty array."
        )
    if any(not isinstance(name, str) or name not in ENTITIES for name in entities):
        raise RequestError(
            400,
            "invalid_entities",
            "One or more entity types are not valid. Must be sends, clicks, or revenue.",
        )
    # `is True`: JSON true only; "true", 1 (which == True in Python) and false are refused.
    if fields.get("confirm") is not True:
        raise RequestError(
            400, "confirm_required", "The confirm field must be set to true to proceed."
        )
    before = None
    if "before_date" in fields:
        raw = fields["before_date"]
        before = normalize_timestamp(raw) if isinstance(raw, str) else None
        if before is None:
            raise RequestError(
                400,
                "invalid_before_date",
                "before_date must be an ISO 8601 datetime with a UTC offset.",
            )
    return ClearRequest(tuple(dict.fromkeys(entities)), before)


@dataclass(frozen=True)
class UnsubscribeRequest:
    phone_number: str
    list_number: str


def parse_unsubscribe(body: Any, *, check_phones: bool = True) -> UnsubscribeRequest:
    fields = body if isinstance(body, dict) else {}
    if missing(fields, "phone_number"):
        raise RequestError(400, "missing_phone_number", "The phone_number field was not provided.")
    if missing(fields, "list_number"):
        raise RequestError(400, "missing_list_number", "The list_number field was not provided.")
    phone, list_number = fields["phone_number"], fields["list_number"]
    if not isinstance(phone, str) or (check_phones and not is_valid_e164(phone)):
        raise RequestError(
            400, "invalid_phone", "The phone_number is not a valid E.164 phone number."
        )
    if not isinstance(list_number, str) or (check_phones and not is_valid_e164(list_number)):
        raise RequestError(
            400, "invalid_list_number", "The list_number is not a valid E.164 phone number."
        )
    return UnsubscribeRequest(phone, list_number)
