"""Record kinds, their fields, and per-record validation into the API's JSON shape.

The field tables follow CONTRACT.md. Error codes are the server's wherever they mean the same
thing (``missing_id``, ``invalid_phone``, ``invalid_timestamp``...), so a user reads one
vocabulary in the report whichever side rejected a record. A record rejected here is never sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from trackly_migrate.cell_plan import compile_cells_build
from trackly_migrate.normalize import (
    ISO,
    PhoneNormalizer,
    parse_boolean,
    parse_integer,
    timestamp_parser,
)
from trackly_migrate.readers import RawRow

if TYPE_CHECKING:  # columns.py builds a ColumnMapping from the field tables below
    from trackly_migrate.columns import ColumnMapping


class Kind(StrEnum):
    SENDS = "sends"
    CLICKS = "clicks"
    CONTACTS = "contacts"


class FieldType(StrEnum):
    TEXT = "text"
    IDENTIFIER = "identifier"  # text, trimmed; a JSON number is accepted and written as text
    PHONE = "phone"
    TIMESTAMP = "timestamp"
    INTEGER = "integer"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    required: bool = False


_F = FieldSpec
# The first field of each kind names the record in the errors report (_record_id).
FIELDS: dict[Kind, tuple[FieldSpec, ...]] = {
    Kind.SENDS: (
        _F("id", FieldType.IDENTIFIER, required=True),
        _F("to_number", FieldType.PHONE, required=True),
        _F("timestamp", FieldType.TIMESTAMP, required=True),
        _F("list_number", FieldType.PHONE),
        _F("list_id", FieldType.INTEGER),
        _F("message", FieldType.TEXT),
        _F("send_type", FieldType.TEXT),
        _F("delivered", FieldType.BOOLEAN),
        _F("length", FieldType.INTEGER),
        _F("creative_id", FieldType.INTEGER),
    ),
    Kind.CLICKS: (
        _F("message_id", FieldType.IDENTIFIER, required=True),
        _F("offer_id", FieldType.IDENTIFIER, required=True),
        _F("phone_number", FieldType.PHONE, required=True),
        _F("timestamp", FieldType.TIMESTAMP, required=True),
        _F("send_timestamp", FieldType.TIMESTAMP),
    ),
    Kind.CONTACTS: (
        _F("phone_number", FieldType.PHONE, required=True),
        _F("list_number", FieldType.PHONE, required=True),
    ),
}

# Columns an errors report adds in front of the original ones; reading a report back as input
# ignores them silently.
REPORT_COLUMNS = ("_line", "_record_id", "_stage", "_code", "_message")


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str


_FORMULA_ESCAPE_PREFIXES = ("'=", "'+", "'-", "'@", "'\t", "'\r")
_TEXT_BOOLEANS = {
    "true": True,
    "false": False,
    "True": True,
    "False": False,
    "TRUE": True,
    "FALSE": False,
    "1": True,
    "0": False,
    "yes": True,
    "no": False,
    "Yes": True,
    "No": False,
}
Converter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Step:
    """One field of the build plan: where its value is and how to convert it."""

    name: str
    source: int | str | None  # CSV position, JSON key, or None (only a default can fill it)
    convert: Converter
    required: bool
    missing_code: str
    error_code: str
    default: str | None


class RecordBuilder:
    """Turns raw rows into API records (dicts) or rejections, per the kind's field table.

    The per-field work is planned once (positions, converters, codes), and CSV cells get
    converters that know they hold text: this loop runs for every record of the input.
    """

    def __init__(
        self,
        mapping: ColumnMapping,
        *,
        default_region: str | None = None,
        timezone: tzinfo | None = None,
        defaults: Mapping[str, str] | None = None,
        unescape_report_cells: bool = False,
        timestamp_formats: Mapping[str, str] | None = None,
        phones: PhoneNormalizer | None = None,
    ) -> None:
        self.kind = mapping.kind
        self._header = mapping.header
        # A run over several files passes one normalizer for all of them: the same
        # recipients recur from file to file, and a cache started afresh for each file
        # spent half of a 20-file run in phonenumbers again (issue 14, item 5).
        phones = phones or PhoneNormalizer(default_region)
        # An errors report fed back in: undo the quote that kept formulas from running.
        self._unescape = unescape_report_cells
        defaults = dict(defaults or {})
        formats = dict(timestamp_formats or {})
        self._csv_plan: list[_Step] = []
        self._json_plan: list[_Step] = []
        for spec in FIELDS[mapping.kind]:
            common = {
                "name": spec.name,
                "required": spec.required,
                "missing_code": f"missing_{spec.name}",
                "error_code": _code_for(spec),
                "default": defaults.get(spec.name),
            }
            self._csv_plan.append(
                _Step(
                    source=mapping.indexes.get(spec.name),
                    convert=_text_converter(spec, phones, timezone, formats.get(spec.name, ISO)),
                    **common,  # type: ignore[arg-type]
                )
            )
            self._json_plan.append(
                _Step(
                    source=mapping.sources.get(spec.name, spec.name),
                    convert=_json_converter(spec, phones, timezone, formats.get(spec.name, ISO)),
                    **common,  # type: ignore[arg-type]
                )
            )
        # The build every record goes through: compiled for the header (``cell_plan``).
        self.build: Callable[[RawRow], dict[str, Any] | Rejection] = (
            self.general_build
            if unescape_report_cells
            else compile_cells_build(
                [
                    (
                        step.name,
                        _inline_kind(spec, formats),
                        mapping.indexes.get(spec.name),
                        step.required,
                        step.default,
                        step.convert,
                    )
                    for spec, step in zip(FIELDS[mapping.kind], self._csv_plan, strict=True)
                ],
                self.general_build,
                _TEXT_BOOLEANS,
            )
        )

    def record_id(self, row: RawRow) -> str | None:
        """The record's id as written in the input, for the report (None if absent)."""
        data = row.data
        value: Any = None
        if isinstance(data, list):
            position = self._csv_plan[0].source
            if isinstance(position, int) and position < len(data):
                value = data[position]
        elif isinstance(data, dict):
            value = data.get(self._json_plan[0].source)  # type: ignore[arg-type]
        if value is None or isinstance(value, dict | list):
            return None
        return str(value).strip() or None

    def timestamp_of(self, row: RawRow) -> str | None:
        """A rejected row's ``timestamp`` normalized, when it is readable (for the month table)."""
        data = row.data
        if row.problem is not None:
            return None
        plan = self._csv_plan if isinstance(data, list) else self._json_plan
        for step in plan:
            if step.name != "timestamp":
                continue
            value: Any = None
            if isinstance(data, list) and isinstance(step.source, int) and step.source < len(data):
                value = data[step.source]
            elif isinstance(data, dict):
                value = data.get(step.source)  # type: ignore[arg-type]
            try:
                return str(step.convert(value)) if value else None
            except (ValueError, TypeError):
                return None
        return None

    def general_build(self, row: RawRow) -> dict[str, Any] | Rejection:
        """The record to send, or why it cannot be sent (``build``, without the compiled
        fast path: what it falls back to, and the reference it is tested against)."""
        if row.problem is not None:
            return Rejection(row.problem.code, row.problem.message)
        data = row.data
        if type(data) is list:
            outcome = self._build_cells(data)
            if type(outcome) is Rejection and self._repeats_header(data):
                return Rejection("malformed_row", "repeats the header row (were two files joined?)")
            return outcome
        if isinstance(data, dict):
            return self._build_object(data)
        return Rejection("invalid_record", "no data")

    def _repeats_header(self, cells: list[str]) -> bool:
        # Looked at only for a rejected row: a header read as data never has a valid phone.
        names = [cell.strip() for cell in cells]
        if names:
            names[0] = names[0].removeprefix("\ufeff").strip()  # a joined file keeps its BOM
        return tuple(names) == self._header

    def _build_cells(self, cells: list[str]) -> dict[str, Any] | Rejection:
        record: dict[str, Any] = {}
        width = len(cells)
        for step in self._csv_plan:
            position = step.source
            value = cells[position] if position is not None and position < width else ""  # type: ignore[index,operator]
            if not value or value.isspace():
                if step.default is None:
                    if step.required:
                        return Rejection(step.missing_code, f"{step.name} is missing")
                    continue
                value = step.default
            if self._unescape and value.startswith(_FORMULA_ESCAPE_PREFIXES):
                value = value[1:]
            try:
                record[step.name] = step.convert(value)
            except ValueError as exc:
                return Rejection(step.error_code, f"{step.name}: {exc}")
        return record

    def _build_object(self, data: dict[str, Any]) -> dict[str, Any] | Rejection:
        record: dict[str, Any] = {}
        for step in self._json_plan:
            value = data.get(step.source)  # type: ignore[arg-type]
            if value is None or (isinstance(value, str) and (not value or value.isspace())):
                if step.default is None:
                    if step.required:
                        return Rejection(step.missing_code, f"{step.name} is missing")
                    continue
                value = step.default
            try:
                record[step.name] = step.convert(value)
            except ValueError as exc:
                return Rejection(step.error_code, f"{step.name}: {exc}")
        return record


def _inline_kind(spec: FieldSpec, formats: Mapping[str, str]) -> str:
    """How cell_plan inlines the field: its ISO fast path only holds for ISO timestamps."""
    if spec.type is FieldType.TIMESTAMP and formats.get(spec.name, ISO) != ISO:
        return "converted"
    return spec.type.value


def _text_converter(
    spec: FieldSpec, phones: PhoneNormalizer, zone: tzinfo | None, timestamp_format: str
) -> Converter:
    """A converter for a CSV cell: always a non-blank ``str``."""
    kind = spec.type
    if kind is FieldType.PHONE:
        return phones
    if kind is FieldType.TIMESTAMP:
        return timestamp_parser(timestamp_format, zone)
    if kind is FieldType.INTEGER:
        return _integer_text
    if kind is FieldType.BOOLEAN:
        return _boolean_text
    if kind is FieldType.IDENTIFIER:
        return str.strip
    return _identity


def _json_converter(
    spec: FieldSpec, phones: PhoneNormalizer, zone: tzinfo | None, timestamp_format: str
) -> Converter:
    """A converter for a JSON value of any type."""
    kind = spec.type
    if kind is FieldType.PHONE:
        return lambda value: phones(_require_text(value))
    if kind is FieldType.TIMESTAMP:
        parse = timestamp_parser(timestamp_format, zone)
        if timestamp_format == ISO or "%" in timestamp_format:
            return lambda value: parse(_require_text(value))
        return lambda value: parse(_number_text(value))
    if kind is FieldType.INTEGER:
        return parse_integer
    if kind is FieldType.BOOLEAN:
        return parse_boolean
    if kind is FieldType.IDENTIFIER:
        return _identifier
    return _require_text


def _identity(value: str) -> str:
    return value


def _integer_text(value: str) -> int:
    if len(value) < 19 and value.isdigit() and value.isascii():
        return int(value)
    return parse_integer(value)


def _boolean_text(value: str) -> bool:
    known = _TEXT_BOOLEANS.get(value)
    return known if known is not None else parse_boolean(value)


def _code_for(spec: FieldSpec) -> str:
    if spec.type is FieldType.PHONE:
        return "invalid_phone"
    if spec.type is FieldType.TIMESTAMP:
        return "invalid_timestamp"
    return "invalid_type"


def _number_text(value: Any) -> str:
    """An epoch value as its digits: JSON exports write it as a number or as text."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a number")
    if isinstance(value, int | float):
        text = str(value)  # a JsonNumber gives the digits as written
        if "e" in text.lower():
            raise ValueError(f"{text!r} is written with an exponent; write the digits out")
        return text
    return _require_text(value)


def _require_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


def _identifier(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{value!r} is not text")
    text = str(value).strip()
    if not text:
        raise ValueError("is empty")
    return text
