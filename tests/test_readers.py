"""Readers: CSV and JSONL, plain and gzip, with the line numbers a report needs."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackly_migrate.errors import InputError, UsageError
from trackly_migrate.readers import (
    InputFormat,
    InputSource,
    RawRow,
    infer_format,
    open_reader,
)


def read_all(
    path: Path, fmt: InputFormat, **options: object
) -> tuple[list[str] | None, list[RawRow]]:
    source = InputSource(str(path))
    try:
        reader = open_reader(source, fmt, **options)  # type: ignore[arg-type]
        return reader.columns, list(reader)
    finally:
        source.close()


cell = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r"),
    max_size=12,
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(cell, min_size=3, max_size=3), min_size=1, max_size=8),
    terminator=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_csv_round_trips_cells_and_start_lines(
    tmp_path: Path, rows: list[list[str]], terminator: str, bom: bool, delimiter: str
) -> None:
    rows = [row for row in rows if row != ["", "", ""]] or [["a", "b", "c"]]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=terminator)
    writer.writerow(["x", "y", "z"])
    expected_lines = []
    line = 2
    for row in rows:
        expected_lines.append(line)
        before = buffer.tell()
        writer.writerow(row)
        line += buffer.getvalue()[before:].count("\n")
    path = tmp_path / "in.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + buffer.getvalue().encode())
    columns, read = read_all(path, InputFormat.CSV, delimiter=delimiter)
    assert columns == ["x", "y", "z"]
    assert [r.data for r in read] == [[c.replace("\r\n", "\n") for c in row] for row in rows]
    assert [r.line for r in read] == expected_lines
    assert read[-1].end_offset == path.stat().st_size


def test_crlf_bom_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(b'\xef\xbb\xbfid,message\r\nh1,"two\r\nlines, ""quoted"""\r\n\r\nh2,plain\r\n')
    columns, rows = read_all(path, InputFormat.CSV)
    assert columns == ["id", "message"]
    assert [(r.line, r.data) for r in rows] == [
        (2, ["h1", 'two\r\nlines, "quoted"']),
        (5, ["h2", "plain"]),
    ]


def test_cp1252_needs_its_encoding_and_is_reported_otherwise(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes("id,message\nh1,Caf\u00e9 \u20ac5\nh2,ok\n".encode("cp1252"))
    _, rows = read_all(path, InputFormat.CSV)
    assert rows[0].problem is not None and rows[0].problem.code == "invalid_encoding"
    assert "--encoding" in rows[0].problem.message
    assert rows[1].problem is None
    _, rows = read_all(path, InputFormat.CSV, encoding="cp1252")
    assert rows[0].data == ["h1", "Caf\u00e9 \u20ac5"]


def test_ragged_rows_and_a_truncated_last_line_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('id,to,ts\na,b,c\nd,e\nf,g,h,i\nj,"k\n')
    _, rows = read_all(path, InputFormat.CSV)
    assert rows[0].problem is None
    assert rows[1].problem is not None and "cut short" in rows[1].problem.message
    assert rows[2].problem is not None and "4 fields" in rows[2].problem.message
    assert rows[3].problem is not None and rows[3].problem.code == "malformed_row"
    assert [r.line for r in rows] == [2, 3, 4, 5]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(cell, min_size=2, max_size=2), min_size=1, max_size=6),
    cut=st.integers(min_value=1, max_value=400),
)
def test_any_truncation_never_crashes_and_keeps_line_order(
    tmp_path: Path, rows: list[list[str]], cut: int
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["a", "b"])
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    path = tmp_path / "t.csv"
    path.write_bytes(data[: max(4, min(cut, len(data)))])
    _, read = read_all(path, InputFormat.CSV)
    lines = [r.line for r in read]
    assert lines == sorted(lines)
    for row in read:
        assert row.problem is not None or (isinstance(row.data, list) and len(row.data) == 2)


def test_gzip_is_read_transparently(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('{"id": "a"}\n\n{"id": "b"}\n')
    assert infer_format(str(path), None) is InputFormat.JSONL
    _, rows = read_all(path, InputFormat.JSONL)
    assert [(r.line, r.data) for r in rows] == [(1, {"id": "a"}), (3, {"id": "b"})]


def test_gzip_is_detected_by_content_too(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(gzip.compress(b"id\nx\n"))
    _, rows = read_all(path, InputFormat.CSV)
    assert [r.data for r in rows] == [["x"]]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(
            st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
            st.just("BLANK"),
            st.just("BROKEN"),
            st.just("ARRAY"),
        ),
        max_size=10,
    )
)
def test_jsonl_blank_lines_skipped_bad_lines_reported(tmp_path: Path, items: list[object]) -> None:
    lines = []
    expected: list[tuple[int, str | None]] = []
    for number, item in enumerate(items, start=1):
        if item == "BLANK":
            lines.append("   ")
        elif item == "BROKEN":
            lines.append('{"id": ')
            expected.append((number, "invalid_json"))
        elif item == "ARRAY":
            lines.append("[1, 2]")
            expected.append((number, "invalid_record"))
        else:
            lines.append(json.dumps(item))
            expected.append((number, None))
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    _, rows = read_all(path, InputFormat.JSONL)
    assert [(r.line, r.problem.code if r.problem else None) for r in rows] == expected


def test_resume_offsets_land_on_record_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('id,m\na,"x\ny"\nb,z\nc,w\n')
    _, rows = read_all(path, InputFormat.CSV)
    second = rows[0]
    _, rest = read_all(
        path, InputFormat.CSV, start_offset=second.end_offset, start_line=second.line + 2
    )
    assert [(r.line, r.data) for r in rest] == [(4, ["b", "z"]), (5, ["c", "w"])]


def test_unreadable_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        InputSource(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="folder"):
        InputSource(str(tmp_path))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_all(empty, InputFormat.CSV)
    with pytest.raises(UsageError, match="--format"):
        infer_format("-", None)
    with pytest.raises(UsageError, match="spreadsheet"):
        infer_format("export.xlsx", None)
    with pytest.raises(UsageError, match="format"):
        infer_format("export.dat", None)
    with pytest.raises(UsageError, match="byte order"):
        read_all(empty, InputFormat.CSV, encoding="utf-16")


def test_next_line_follows_multi_line_records_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('id,m\na,"x\ny\nz"\n\nb,w\n')
    _, rows = read_all(path, InputFormat.CSV)
    assert [(r.line, r.next_line) for r in rows] == [(2, 5), (6, 7)]
    _, rest = read_all(
        path, InputFormat.CSV, start_offset=rows[0].end_offset, start_line=rows[0].next_line
    )
    assert [(r.line, r.data) for r in rest] == [(6, ["b", "w"])]
