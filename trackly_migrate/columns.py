"""Which input column feeds each field: the header and ``--map``, resolved once per input.

Names are matched folded (``To Number`` is ``to_number``); a field two columns could feed is
an input error naming both, never the first one silently (``--map FIELD=#N`` picks one).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from trackly_migrate.errors import InputError, UsageError
from trackly_migrate.records import FIELDS, REPORT_COLUMNS, Kind


@dataclass(frozen=True)
class ColumnMapping:
    """Which input column feeds each field, resolved once from the header and ``--map``."""

    kind: Kind
    sources: dict[str, str]  # field -> column (CSV header name or JSON key)
    indexes: dict[str, int] = field(default_factory=dict)  # field -> CSV column position
    unknown_columns: tuple[str, ...] = ()
    header: tuple[str, ...] = ()  # the CSV header's names, to recognize it repeated as a row


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
        if target in mapping and mapping[target] != column:
            raise UsageError(
                f"--map gives {target} twice ({mapping[target]} and {column}).",
                hint=f"Keep one --map {target}=COLUMN.",
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

    by_folded: dict[str, list[int]] = {}
    for position, name in enumerate(columns):
        by_folded.setdefault(_fold(name), []).append(position)
    indexes: dict[str, int] = {}
    for spec in specs:
        wanted = overrides.get(spec.name)
        if wanted is not None:
            exact = [position for position, name in enumerate(columns) if name == wanted]
            candidates = (
                exact or by_folded.get(_fold(wanted), []) or _column_number(wanted, len(columns))
            )
            if not candidates:
                raise InputError(
                    f"{source_name}: --map {spec.name}={wanted} names a column that is not "
                    f"in the header. Columns found: {', '.join(columns)}."
                )
        else:
            candidates = by_folded.get(_fold(spec.name), [])
        if len(candidates) > 1:
            raise _ambiguous_column(spec.name, candidates, columns, source_name)
        if candidates:
            indexes[spec.name] = candidates[0]

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
        if position not in used and name not in _REPORT_ONLY and name
    )
    sources = {name: columns[index] for name, index in indexes.items()}
    return ColumnMapping(kind, sources, indexes, unknown, tuple(columns))


# A report's own columns, fed back in: the run report's ``_file`` and ``_raw`` too.
_REPORT_ONLY = (*REPORT_COLUMNS, "_file", "_raw")


def _column_number(wanted: str, width: int) -> list[int]:
    """``#N`` names the N-th column (from 1): the one way to pick between equal names."""
    digits = wanted.removeprefix("#")
    if (
        wanted.startswith("#")
        and digits.isdigit()
        and digits.isascii()
        and 1 <= int(digits) <= width
    ):
        return [int(digits) - 1]
    return []


def _ambiguous_column(
    field_name: str, positions: list[int], columns: list[str], source_name: str
) -> InputError:
    """Two columns could feed one field: guessing would send the wrong one silently."""
    where = " and ".join(f"column {position + 1} ({columns[position]!r})" for position in positions)
    names = [columns[position] for position in positions]
    by_number = len(set(names)) < len(names)  # equal names: only the position tells them apart
    choices = [
        "--map " + shlex.quote(f"{field_name}={f'#{position + 1}' if by_number else name}")
        for name, position in zip(names, positions, strict=True)
    ]
    return InputError(
        f"{source_name}: the header has {len(positions)} columns for {field_name}: {where}.",
        hint=f"Say which one to read: {' or '.join(choices)}"
        + (" (#N is the N-th column)." if by_number else "."),
    )


def _fold(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")
