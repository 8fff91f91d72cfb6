"""Column mapping and per-record validation into the API's shape."""

from __future__ import annotations

import pytest

from trackly_migrate.columns import parse_map_options, resolve_columns
from trackly_migrate.errors import InputError, UsageError
from trackly_migrate.readers import RawRow, RowProblem
from trackly_migrate.records import Kind, RecordBuilder, Rejection

SEND_COLUMNS = ["id", "to_number", "timestamp", "list_id", "delivered", "message", "Carrier"]


def csv_row(*cells: str, line: int = 2) -> RawRow:
    return RawRow(line, 0, line + 1, list(cells))


def sends_builder(columns: list[str] = SEND_COLUMNS, **options: object) -> RecordBuilder:
    mapping = resolve_columns(Kind.SENDS, columns, {}, source_name="s.csv")
    return RecordBuilder(mapping, **options)  # type: ignore[arg-type]


def test_a_valid_csv_row_is_coerced_and_normalized() -> None:
    builder = sends_builder()
    record = builder.build(
        csv_row("h1", "+1 (415) 555-0123", "2025-11-15 09:30:00-05:00", "42", "Yes", "Hi", "AT&T")
    )
    assert record == {
        "id": "h1",
        "to_number": "+14155550123",
        "timestamp": "2025-11-15T14:30:00Z",
        "list_id": 42,
        "delivered": True,
        "message": "Hi",
    }


def test_empty_cells_are_absent_and_required_ones_named() -> None:
    builder = sends_builder()
    record = builder.build(csv_row("h1", "+14155550123", "2025-11-15T14:30:00Z", "", "", "", ""))
    assert record == {"id": "h1", "to_number": "+14155550123", "timestamp": "2025-11-15T14:30:00Z"}
    missing = builder.build(csv_row("", "+14155550123", "2025-11-15T14:30:00Z", "", "", "", ""))
    assert missing == Rejection("missing_id", "id is missing")
    missing = builder.build(csv_row("h2", " ", "2025-11-15T14:30:00Z", "", "", "", ""))
    assert isinstance(missing, Rejection) and missing.code == "missing_to_number"


@pytest.mark.parametrize(
    ("cells", "code", "field"),
    [
        (
            ("h", "+14155550123", "2025-11-15T14:30:00Z", "forty", "", "", ""),
            "invalid_type",
            "list_id",
        ),
        (
            ("h", "+14155550123", "2025-11-15T14:30:00Z", "", "perhaps", "", ""),
            "invalid_type",
            "delivered",
        ),
        (
            ("h", "not a phone", "2025-11-15T14:30:00Z", "", "", "", ""),
            "invalid_phone",
            "to_number",
        ),
        (
            ("h", "+14155550123", "2025-13-15T14:30:00Z", "", "", "", ""),
            "invalid_timestamp",
            "timestamp",
        ),
    ],
)
def test_bad_values_reject_the_record_naming_the_field(
    cells: tuple[str, ...], code: str, field: str
) -> None:
    rejection = sends_builder().build(csv_row(*cells))
    assert isinstance(rejection, Rejection)
    assert rejection.code == code
    assert rejection.message.startswith(f"{field}:")


def test_jsonl_values_keep_their_json_types() -> None:
    mapping = resolve_columns(Kind.SENDS, None, {"id": "Sid"}, source_name="s.jsonl")
    builder = RecordBuilder(mapping)
    row = RawRow(
        1,
        0,
        2,
        {"Sid": 123, "to_number": "+14155550123", "timestamp": "2025-11-15T14:30:00Z", "length": 5},
    )
    assert builder.build(row) == {
        "id": "123",
        "to_number": "+14155550123",
        "timestamp": "2025-11-15T14:30:00Z",
        "length": 5,
    }
    bad = RawRow(
        1, 0, 2, {"Sid": "x", "to_number": 14155550123, "timestamp": "2025-11-15T14:30:00Z"}
    )
    rejection = builder.build(bad)
    assert isinstance(rejection, Rejection) and rejection.code == "invalid_phone"


def test_an_unreadable_row_keeps_the_readers_reason() -> None:
    row = RawRow(7, 0, 8, None, RowProblem("invalid_json", "not valid JSON"))
    assert sends_builder().build(row) == Rejection("invalid_json", "not valid JSON")


def test_map_options_and_missing_columns() -> None:
    assert parse_map_options(["id=Sid", " to_number = To "], Kind.SENDS) == {
        "id": "Sid",
        "to_number": "To",
    }
    with pytest.raises(UsageError, match="FIELD=COLUMN"):
        parse_map_options(["id"], Kind.SENDS)
    with pytest.raises(UsageError, match="unknown field"):
        parse_map_options(["sid=Sid"], Kind.SENDS)
    with pytest.raises(InputError) as caught:
        resolve_columns(Kind.SENDS, ["Sid", "To", "Date"], {}, source_name="x.csv")
    assert "id, to_number, timestamp" in caught.value.message
    assert "Columns found: Sid, To, Date" in caught.value.message
    assert caught.value.hint is not None and "--map id=<column>" in caught.value.hint
    with pytest.raises(InputError, match="not in the header"):
        resolve_columns(Kind.SENDS, ["Sid"], {"id": "MessageSid"}, source_name="x.csv")


def test_mapping_matches_case_and_spacing_and_lists_unknown_columns() -> None:
    mapping = resolve_columns(
        Kind.SENDS,
        ["ID", "To Number", "TimeStamp", "Carrier", "_line", "_code"],
        {},
        source_name="x.csv",
    )
    assert mapping.indexes == {"id": 0, "to_number": 1, "timestamp": 2}
    assert mapping.unknown_columns == ("Carrier",)


def test_defaults_fill_missing_fields() -> None:
    mapping = resolve_columns(
        Kind.CONTACTS, ["phone_number"], {}, source_name="u.csv", provided=["list_number"]
    )
    builder = RecordBuilder(mapping, defaults={"list_number": "+18005551234"})
    assert builder.build(csv_row("+14155559876")) == {
        "phone_number": "+14155559876",
        "list_number": "+18005551234",
    }


def test_a_report_fed_back_in_loses_its_formula_quotes() -> None:
    columns = ["_line", "_code", "id", "to_number", "timestamp", "message"]
    mapping = resolve_columns(Kind.SENDS, columns, {}, source_name="r.csv")
    builder = RecordBuilder(mapping, unescape_report_cells=True)
    record = builder.build(
        csv_row(
            "4", "invalid_phone", "h1", "'+1 (415) 555-0123", "2025-11-15T14:30:00Z", "'=SUM(A1)"
        )
    )
    assert record == {
        "id": "h1",
        "to_number": "+14155550123",
        "timestamp": "2025-11-15T14:30:00Z",
        "message": "=SUM(A1)",
    }
