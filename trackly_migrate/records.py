"""Record kinds, column mapping, and per-record validation into the API's JSON shape.

The field tables follow CONTRACT.md. Error codes are the server's wherever they mean the same
thing (``missing_id``, ``invalid_phone``, ``invalid_timestamp``...), so a user reads one
vocabulary in the report whichever side rejected a record. A record rejected here is never sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from enum import StrEnum
from typing import Any

from trackly_migrate.errors import InputError, UsageError
from trackly_migrate.normalize import (
    normalize_phone,
    normalize_timestamp,
    parse_boolean,
    parse_integer,
)
from trackly_migrate.readers import RawRow


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

# The field that names a record in the report ("record id").
ID_FIELD: dict[Kind, str] = {
    Kind.SENDS: "id",
    Kind.CLICKS: "message_id",
    Kind.CONTACTS: "phone_number",
}

# Columns an errors report adds in front of the original ones; reading a report back as input
# ignores them silently.
REPORT_COLUMNS = ("_line", "_record_id", "_stage", "_code", "_message")


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    message: str


@dataclass(frozen=True)
class ColumnMapping:
    """Which input column feeds each field, resolved once from the header and ``--map``."""

    kind: Kind
    sources: dict[str, str]  # field -> column (CSV header name or JSON key)
    indexes: dict[str, int] = field(default_factory=dict)  # field -> CSV column position
    unknown_columns: tuple[str, ...] = ()


def parse_map_options(options: Iterable[str], kind: Kind) -> dict[str, str]:
    """``--map FIELD=COLUMN`` options as {field: column}; a usage error for a bad one."""
    names = {spec.name for spec in FIELDS[kind]}
    mapping: dict[str, str] = {}
    for option in options:
        target, sep, column = option.partition("=")
        target, column = target.strip(), column.strip()
        if not sep or not target or not column:
            raise UsageError(
                f"--map {option!r} is not FIELD=COLUMN.", hint="For example: --map id=MessageSid"
            )
        if target not in names:
            raise UsageError(
                f"--map names an unknown field {target!r} for {kind}.",
                hint=f"Fields of {kind}: {', '.join(sorted(names))}.",
            )
        mapping[target] = column
    return mapping


def resolve_columns(
    kind: Kind,
    columns: list[str] | None,
    overrides: Mapping[str, str],
    *,
    source_name: str,
    provided: Iterable[str] = (),
) -> ColumnMapping:
    """Match fields to columns; for CSV, stop before anything is sent if a required one is missing.

    Without ``--map``, a field is read from the column of the same name (exact, else ignoring
    case, spaces and dashes). ``provided`` names fields the command fills itself (``--list``).
    For JSONL (``columns`` is None) keys are looked up per record, so nothing can be checked
    up front except the mapping itself.
    """
    specs = FIELDS[kind]
    if columns is None:
        sources = {spec.name: overrides.get(spec.name, spec.name) for spec in specs}
        return ColumnMapping(kind, sources)

    by_folded: dict[str, int] = {}
    for position, name in enumerate(columns):
        by_folded.setdefault(_fold(name), position)
    indexes: dict[str, int] = {}
    for spec in specs:
        wanted = overrides.get(spec.name)
        if wanted is not None:
            if wanted in columns:
                indexes[spec.name] = columns.index(wanted)
            elif _fold(wanted) in by_folded:
                indexes[spec.name] = by_folded[_fold(wanted)]
            else:
                raise InputError(
                    f"{source_name}: --map {spec.name}={wanted} names a column that is not "
                    f"in the header. Columns found: {', '.join(columns)}."
                )
        elif spec.name in columns:
            indexes[spec.name] = columns.index(spec.name)
        elif _fold(spec.name) in by_folded:
            indexes[spec.name] = by_folded[_fold(spec.name)]

    provided_set = set(provided)
    missing = [
        spec.name
        for spec in specs
        if spec.required and spec.name not in indexes and spec.name not in provided_set
    ]
    if missing:
        example = " ".join(f"--map {name}=<column>" for name in missing)
        raise InputError(
            f"{source_name}: no column for required field(s) {', '.join(missing)}. "
            f"Columns found: {', '.join(columns) or '(none)'}.",
            hint=f"Name the columns that hold them: {example}",
        )
    used = set(indexes.values())
    unknown = tuple(
        name
        for position, name in enumerate(columns)
        if position not in used and name not in REPORT_COLUMNS and name
    )
    sources = {name: columns[index] for name, index in indexes.items()}
    return ColumnMapping(kind, sources, indexes, unknown)


def _fold(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


_FORMULA_ESCAPE_PREFIXES = ("'=", "'+", "'-", "'@", "'\t", "'\r")


class RecordBuilder:
    """Turns raw rows into API records (dicts) or rejections, per the kind's field table."""

    def __init__(
        self,
        mapping: ColumnMapping,
        *,
        default_region: str | None = None,
        timezone: tzinfo | None = None,
        defaults: Mapping[str, str] | None = None,
        unescape_report_cells: bool = False,
    ) -> None:
        self.kind = mapping.kind
        self._mapping = mapping
        self._region = default_region
        self._timezone = timezone
        self._defaults = dict(defaults or {})
        # An errors report fed back in: undo the quote that kept formulas from running.
        self._unescape = unescape_report_cells
        specs = FIELDS[mapping.kind]
        self._steps: list[tuple[FieldSpec, Callable[[Any], Any]]] = [
            (spec, self._converter(spec.type)) for spec in specs
        ]
        self._csv_positions = [mapping.indexes.get(spec.name) for spec in specs]
        self._json_keys = [mapping.sources.get(spec.name, spec.name) for spec in specs]

    def _converter(self, kind: FieldType) -> Callable[[Any], Any]:
        region, zone = self._region, self._timezone
        if kind is FieldType.PHONE:
            return lambda value: normalize_phone(_require_text(value), region)
        if kind is FieldType.TIMESTAMP:
            return lambda value: normalize_timestamp(_require_text(value), zone)
        if kind is FieldType.INTEGER:
            return parse_integer
        if kind is FieldType.BOOLEAN:
            return parse_boolean
        if kind is FieldType.IDENTIFIER:
            return _identifier
        return _require_text

    def record_id(self, row: RawRow) -> str | None:
        """The record's id as written in the input, for the report (None if absent)."""
        value = self._raw_value(row, 0)
        if value is None or isinstance(value, dict | list):
            return None
        return str(value).strip() or None

    def _raw_value(self, row: RawRow, step: int) -> Any:
        data = row.data
        if isinstance(data, list):
            position = self._csv_positions[step]
            if position is None or position >= len(data):
                return None
            return data[position]
        if isinstance(data, dict):
            return data.get(self._json_keys[step])
        return None

    def build(self, row: RawRow) -> dict[str, Any] | Rejection:
        """The record to send, or why it cannot be sent."""
        if row.problem is not None:
            return Rejection(row.problem.code, row.problem.message)
        record: dict[str, Any] = {}
        for step, (spec, convert) in enumerate(self._steps):
            value = self._raw_value(row, step)
            if value is None or value == "":
                value = self._defaults.get(spec.name)
            if value is None or value == "" or (isinstance(value, str) and not value.strip()):
                if spec.required:
                    return Rejection(f"missing_{spec.name}", f"{spec.name} is missing")
                continue
            if (
                self._unescape
                and isinstance(value, str)
                and value.startswith(_FORMULA_ESCAPE_PREFIXES)
            ):
                value = value[1:]
            try:
                record[spec.name] = convert(value)
            except ValueError as exc:
                return Rejection(_code_for(spec), f"{spec.name}: {exc}")
        return record


def _code_for(spec: FieldSpec) -> str:
    if spec.type is FieldType.PHONE:
        return "invalid_phone"
    if spec.type is FieldType.TIMESTAMP:
        return "invalid_timestamp"
    return "invalid_type"


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
