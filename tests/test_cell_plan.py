"""The compiled CSV build accepts exactly what the general build accepts, with the same result."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trackly_migrate.columns import resolve_columns
from trackly_migrate.readers import RawRow
from trackly_migrate.records import FIELDS, Kind, RecordBuilder

_CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "\t",
            "0",
            "1",
            "42",
            "-7",
            " 42 ",
            "٤٢",
            "99999999999999999999",
            "true",
            "False",
            "YES",
            "maybe",
            "+14155550123",
            "+1 (415) 555-0123",
            "+1415555012",
            "4155550123",
            "2023-01-01T00:00:08Z",
            "2024-02-30T10:00:00Z",
            "2023-01-01T00:00:08+00:00",
            "2023-01-01 00:00:08Z",
            "2023-01-01T00:00:08.5Z",
            "2023-01-01",
            " h1 ",
            "'=SUM(A1)",
        ]
    ),
    st.text(max_size=25),
)


_VALID = {
    "identifier": st.sampled_from(["h1", " h1 ", "bench_00000001", "7"]),
    "text": st.sampled_from(["Hi", "campaign", " x ", "Gracias — ¡vuelve!"]),
    "phone": st.sampled_from(["+14155550123", "+12125550100", "+1 (415) 555-0123"]),
    "timestamp": st.sampled_from(
        ["2023-01-01T00:00:08Z", "2023-01-01T00:00:08+00:00", "2025-11-15 09:30:00-05:00"]
    ),
    "integer": st.sampled_from(
        ["0", "42", " 42 ", "+5", "-7", "9223372036854775807", "9999999999999999999"]
    ),
    "boolean": st.sampled_from(["true", "No", "1", " yes "]),
}


def _cell_for(kind: Kind, column: str) -> st.SearchStrategy[str]:
    types = {spec.name: spec.type.value for spec in FIELDS[kind]}
    valid = _VALID.get(types.get(column, "text"), _VALID["text"])
    # Mostly valid: a record is accepted only when every one of its cells is.
    return st.integers(0, 11).flatmap(lambda draw: valid if draw else _CELLS)


def _builders(kind: Kind, columns: list[str], defaults: dict[str, str]) -> list[RecordBuilder]:
    mapping = resolve_columns(kind, columns, {}, source_name="in.csv", provided=defaults)
    return [
        RecordBuilder(mapping, defaults=defaults, default_region=region) for region in (None, "US")
    ]


@st.composite
def _layouts(draw: Any) -> tuple[Kind, list[str], dict[str, str], list[list[str]]]:
    kind = draw(st.sampled_from(list(Kind)))
    names = [spec.name for spec in FIELDS[kind]]
    required = [spec.name for spec in FIELDS[kind] if spec.required]
    optional = [name for name in names if name not in required]
    defaults = draw(st.dictionaries(st.sampled_from(names), _CELLS, max_size=2))
    columns = [name for name in required if name not in defaults]
    if optional:
        columns += draw(st.lists(st.sampled_from(optional), unique=True))
    columns += draw(st.lists(st.sampled_from(["Carrier", "notes"]), unique=True))
    columns = draw(st.permutations(columns))
    row = st.tuples(*(_cell_for(kind, column) for column in columns)).map(list)
    short_or_long = st.lists(_CELLS, max_size=len(columns) + 1)
    rows = draw(st.lists(st.one_of(row, row, row, short_or_long), max_size=8))
    return kind, columns, defaults, rows


@settings(max_examples=300)
@given(_layouts())
def test_the_compiled_build_gives_every_record_the_general_outcome(
    layout: tuple[Kind, list[str], dict[str, str], list[list[str]]],
) -> None:
    kind, columns, defaults, rows = layout
    for builder in _builders(kind, columns, defaults):
        for cells in rows:
            row = RawRow(2, 0, 3, cells)
            assert builder.build(row) == builder.general_build(row)
            record = builder.build(row)
            if isinstance(record, dict):  # the same fields in the same order: the same bytes
                assert list(record) == list(builder.general_build(row))  # type: ignore[arg-type]


def test_builds_of_the_same_columns_share_their_code_but_not_their_values() -> None:
    # A run over many files compiles its build once, not once a file; each file's defaults
    # (and converters) stay its own.
    columns = ["id", "to_number", "timestamp", "message"]
    first, second = (
        _builders(Kind.SENDS, columns, {"list_number": number})[0]
        for number in ("+14155551234", "+14155554321")
    )
    assert first.build.__code__ is second.build.__code__
    row = RawRow(2, 0, 3, ["t_1", "+14155550123", "2023-01-01T00:00:08Z", "hi"])
    assert [builder.build(row)["list_number"] for builder in (first, second)] == [  # type: ignore[index]
        "+14155551234",
        "+14155554321",
    ]
