"""Blank cells on the compiled build's shortcuts: each field, blank in turn, gets the general
build's outcome (missing, defaulted or left out), whatever shortcut its type takes."""

from __future__ import annotations

import pytest

from trackly_migrate.columns import resolve_columns
from trackly_migrate.readers import RawRow
from trackly_migrate.records import FIELDS, Kind, RecordBuilder

VALID = {
    "identifier": "h1",
    "text": "campaign",
    "phone": "+14155550123",
    "timestamp": "2023-01-01T00:00:08Z",
    "integer": "42",
    "boolean": "true",
}


@pytest.mark.parametrize("kind", list(Kind))
@pytest.mark.parametrize("defaults", [{}, {"list_number": "+14155551234"}])
def test_a_blank_cell_gets_the_general_outcome(kind: Kind, defaults: dict[str, str]) -> None:
    columns = [spec.name for spec in FIELDS[kind]]
    defaults = {name: value for name, value in defaults.items() if name in columns}
    mapping = resolve_columns(kind, columns, {}, source_name="in.csv", provided=defaults)
    builder = RecordBuilder(mapping, defaults=defaults)
    valid = [VALID[spec.type.value] for spec in FIELDS[kind]]
    assert builder.build(RawRow(2, 0, 3, valid)) == builder.general_build(RawRow(2, 0, 3, valid))
    for position in range(len(columns)):
        for blank in ("", " ", "\t", "\u00a0"):
            cells = list(valid)
            cells[position] = blank
            row = RawRow(2, 0, 3, cells)
            assert builder.build(row) == builder.general_build(row), (columns[position], blank)
