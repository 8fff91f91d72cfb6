"""Hostile input: bad files and odd values never end in a traceback or a surprise.

Pure functions (normalizers, readers, the record builder) are fuzzed in-process with
hypothesis; a handful of whole runs go through the real CLI against the real sandbox, checking
the exit code, the summary's identity and what the sandbox received.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import re
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import (
    CliResult,
    invoke,
    read_report,
    requests_to,
    stored_imported_ids,
    summary_of,
)
from trackly_migrate.clearing import ClearPlan, parse_cutoff
from trackly_migrate.columns import parse_map_options, resolve_columns
from trackly_migrate.errors import ExitCode, InputDamagedError, InputError, UsageError
from trackly_migrate.normalize import normalize_timestamp
from trackly_migrate.pipeline import (
    ImportOutcome,
    ImportRequest,
    Limits,
    Output,
    Source,
    Target,
    run_import,
)
from trackly_migrate.pipeline.ports import ProgressState
from trackly_migrate.readers import (
    InputFormat,
    InputSource,
    RawRow,
    describe_non_text,
    open_reader,
)
from trackly_migrate.records import Kind, RecordBuilder, Rejection
from trackly_migrate.sandbox.server import RunningSandbox

# -- timestamps at the edges of the calendar ---------------------------------------------

offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
)


@pytest.mark.parametrize(
    "text",
    ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00", "9999-12-31 23:00:00-23:59"],
)
def test_a_timestamp_whose_utc_leaves_the_calendar_is_one_invalid_value(text: str) -> None:
    with pytest.raises(ValueError, match="outside the calendar in UTC"):
        normalize_timestamp(text)


def test_a_naive_timestamp_whose_zone_pushes_it_off_the_calendar_is_invalid() -> None:
    with pytest.raises(ValueError, match="outside the calendar in UTC"):
        normalize_timestamp("9999-12-31T23:00:00", ZoneInfo("America/New_York"))
    with pytest.raises(ValueError, match="outside the calendar in UTC"):
        normalize_timestamp("0001-01-01T00:00:00", ZoneInfo("Asia/Tokyo"))


def test_a_year_before_1000_keeps_four_digits() -> None:
    assert normalize_timestamp("0999-01-01T00:00:00Z") == "0999-01-01T00:00:00Z"
    assert normalize_timestamp("0001-01-01T01:00:00+01:00") == "0001-01-01T00:00:00Z"


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=offsets), st.sampled_from(["T", " "]))
def test_any_datetime_with_any_offset_normalizes_or_is_refused(
    moment: datetime, separator: str
) -> None:
    text = moment.isoformat(sep=separator)
    try:
        normalized = normalize_timestamp(text)
    except ValueError as exc:
        assert "outside the calendar" in str(exc)
        return
    assert datetime.fromisoformat(normalized) == moment


@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(),
    st.sampled_from([UTC, ZoneInfo("Pacific/Kiritimati"), ZoneInfo("America/New_York")]),
)
def test_any_naive_datetime_in_any_zone_normalizes_or_is_refused(
    moment: datetime, zone: ZoneInfo
) -> None:
    try:
        normalize_timestamp(moment.isoformat(), zone)
    except ValueError:
        return


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00"])
def test_a_clear_cutoff_off_the_calendar_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="outside the calendar"):
        parse_cutoff(text, None)


def test_a_cutoff_at_the_end_of_the_calendar_can_be_described_east_of_utc() -> None:
    plan = ClearPlan(
        ("sends",), parse_cutoff("9999-12-31T23:59:59Z", None), zone=ZoneInfo("Asia/Tokyo")
    )
    assert "beyond the calendar in that time zone" in plan.time_scope()
    assert plan.body()["before_date"] == "9999-12-31T23:59:59Z"


# -- headers that name a field twice ----------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "where", "choices"),
    [
        (
            ["id", "to_number", "timestamp", "to_number"],
            "column 2 ('to_number') and column 4 ('to_number')",
            ["--map 'to_number=#2'", "--map 'to_number=#4'"],
        ),
        (
            ["id", "to_number", "timestamp", "To Number"],
            "column 2 ('to_number') and column 4 ('To Number')",
            ["--map to_number=to_number", "--map 'to_number=To Number'"],
        ),
        (
            ["ID", "id", "to_number", "timestamp"],
            "column 1 ('ID') and column 2 ('id')",
            ["--map id=ID", "--map id=id"],
        ),
    ],
)
def test_a_field_with_two_columns_is_ambiguous(
    columns: list[str], where: str, choices: list[str]
) -> None:
    with pytest.raises(InputError) as caught:
        resolve_columns(Kind.SENDS, columns, {}, source_name="x.csv")
    assert where in caught.value.message
    for choice in choices:
        assert choice in (caught.value.hint or "")


def test_the_map_that_the_ambiguity_error_suggests_resolves_it() -> None:
    columns = ["id", "to_number", "timestamp", "to_number"]
    mapping = resolve_columns(Kind.SENDS, columns, {"to_number": "#4"}, source_name="x.csv")
    assert mapping.indexes["to_number"] == 3
    columns = ["id", "to_number", "timestamp", "To Number"]
    mapping = resolve_columns(Kind.SENDS, columns, {"to_number": "To Number"}, source_name="x.csv")
    assert mapping.indexes["to_number"] == 3
    assert mapping.unknown_columns == ("to_number",)
    # A field read from elsewhere leaves the repeated columns unused, which is not ambiguous.
    columns = ["id", "phone", "timestamp", "to_number", "to_number"]
    mapping = resolve_columns(Kind.SENDS, columns, {"to_number": "phone"}, source_name="x.csv")
    assert mapping.indexes["to_number"] == 1


def test_a_field_given_twice_to_map_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="twice"):
        parse_map_options(["id=A", "id=B"], Kind.SENDS)


# -- the corpus: whole inputs through the core, without the CLI --------------------------

SEND_HEADER_LINE = "id,to_number,timestamp,list_number,message\n"


def send_line(index: int, **overrides: str) -> str:
    cells = {
        "id": f"h{index:05d}",
        "to_number": f"+1415555{index % 10000:04d}",
        "timestamp": f"2025-01-01T00:00:{index % 60:02d}Z",
        "list_number": "+14155551234",
        "message": f"hello {index}",
    }
    cells.update(overrides)
    return ",".join(cells.values()) + "\n"


def json_line(index: int, **overrides: Any) -> str:
    record: dict[str, Any] = {
        "id": f"h{index:05d}",
        "to_number": f"+1415555{index % 10000:04d}",
        "timestamp": f"2025-01-01T00:00:{index % 60:02d}Z",
        "list_number": "+14155551234",
    }
    record.update(overrides)
    return json.dumps(record) + "\n"


class Quiet:
    """A RunObserver that keeps the warnings and ignores the rest."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def progress(self, state: ProgressState) -> None:
        pass

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def retry(self, reason: str, delay: float) -> None:
        pass

    def info(self, message: str) -> None:
        pass


def dry_run(path: Path, report: Path | None = None, **options: Any) -> ImportOutcome:
    """A dry run of ``path`` through the core: everything but the sending."""
    request = ImportRequest(
        kind=Kind.SENDS,
        source=Source(str(path), **options),
        target=Target(dry_run=True),
        limits=Limits(max_reject_ratio=1.0),
        output=Output(report or path.with_name(path.name + ".errors.csv")),
    )
    return run_import(request, Quiet())


def report_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def gzipped(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def _bad_crc(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    return bytes(damaged)


VALID_CSV = SEND_HEADER_LINE + "".join(send_line(i) for i in range(3))
VALID_JSONL = "".join(json_line(i) for i in range(3))
BIG_CELL = "x" * (11 << 20)

# name, file name, content, records the summary must count (None: refused as a whole, exit 2)
CORPUS: list[tuple[str, str, bytes, int | None]] = [
    ("empty file", "e.csv", b"", None),
    ("empty jsonl", "e.jsonl", b"", 0),
    ("header only", "h.csv", SEND_HEADER_LINE.encode(), 0),
    ("header without newline", "h.csv", SEND_HEADER_LINE.strip().encode(), 0),
    ("blank lines only", "b.jsonl", b"\n\n\r\n", 0),
    ("CRLF", "c.csv", VALID_CSV.replace("\n", "\r\n").encode(), 3),
    ("CR only", "c.csv", VALID_CSV.replace("\n", "\r").encode(), None),
    ("CR only jsonl", "c.jsonl", VALID_JSONL.replace("\n", "\r").encode(), None),
    ("random bytes", "r.csv", random.Random(1).randbytes(3000), None),
    ("random bytes jsonl", "r.jsonl", random.Random(2).randbytes(3000), None),
    ("UTF-16 with BOM", "u.csv", VALID_CSV.encode("utf-16"), 3),  # read (issue 10)
    ("UTF-16 jsonl", "u.jsonl", VALID_JSONL.encode("utf-16"), 3),
    ("UTF-16 without BOM", "u.csv", VALID_CSV.encode("utf-16-le"), None),
    ("UTF-32 with BOM", "u.csv", VALID_CSV.encode("utf-32"), 3),
    ("UTF-32 jsonl", "u.jsonl", VALID_JSONL.encode("utf-32"), 3),
    ("a zip file", "z.csv", b"PK\x03\x04" + bytes(200), None),
    ("NUL in a cell", "n.csv", (VALID_CSV + send_line(9, message="a\x00b")).encode(), 4),
    ("invalid UTF-8", "i.csv", VALID_CSV.encode() + send_line(9).encode()[:-3] + b"\xff\n", 4),
    (
        "invalid UTF-8 jsonl",
        "i.jsonl",
        VALID_JSONL.encode() + b'{"id": "\xff\xfe"}\n',
        4,
    ),
    ("lone surrogate escape", "s.jsonl", (VALID_JSONL + '{"id": "\\ud800"}\n').encode(), 4),
    ("BOM in the middle", "m.csv", (VALID_CSV + "\ufeff" + VALID_CSV).encode(), 7),
    ("BOM in the middle jsonl", "m.jsonl", (VALID_JSONL + "\ufeff" + VALID_JSONL).encode(), 6),
    ("unterminated quote at EOF", "q.csv", (VALID_CSV + 'x1,"+1415').encode(), 4),
    ("ragged rows", "g.csv", (VALID_CSV + "a,b\n" + "a,b,c,d,e,f,g\n").encode(), 5),
    ("a huge cell", "big.csv", (VALID_CSV + send_line(9, message=BIG_CELL)).encode(), 4),
    ("a huge jsonl line", "big.jsonl", (VALID_JSONL + json_line(9, message=BIG_CELL)).encode(), 4),
    (
        "JSONL lines that are not objects",
        "n.jsonl",
        (VALID_JSONL + '[1, 2]\n42\nnull\n"text"\ntrue\n{"id": \n').encode(),
        9,
    ),
    (
        "deeply nested JSON",
        "d.jsonl",
        (VALID_JSONL + '{"a": ' + "[" * 2000 + "]" * 2000 + "}\n").encode(),
        4,
    ),
    (
        "nested 300 deep",
        "d.jsonl",
        (json_line(1, extra=[[[[1.5]]]])[:-2] + ', "x": ' + "[" * 300 + "]" * 300 + "}\n").encode(),
        1,
    ),
    ("duplicate JSON keys", "k.jsonl", b'{"id": "a", "id": "b", "to_number": "+14155550001"}\n', 1),
    (
        "NaN and infinities",
        "f.jsonl",
        b'{"id": "a", "list_id": NaN}\n{"id": "b", "list_id": 1e999}\n',
        2,
    ),
    (
        "a timestamp off the calendar",
        "t.csv",
        (SEND_HEADER_LINE + send_line(1, timestamp="9999-12-31T23:59:59-01:00")).encode(),
        1,
    ),
    ("plain text named .gz", "p.csv.gz", VALID_CSV.encode(), 3),
    ("gzip", "g.csv.gz", gzipped(VALID_CSV), 3),
    ("gzip with a bad CRC", "b.csv.gz", _bad_crc(gzipped(VALID_CSV)), 3),
    ("gzip cut in its header", "h.csv.gz", gzipped(VALID_CSV)[:5], None),
    ("gzip with garbage after it", "t.csv.gz", gzipped(VALID_CSV) + b"garbage", 3),
]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [pytest.param(name, content, expected, id=label) for label, name, content, expected in CORPUS],
)
def test_every_file_of_the_corpus_is_refused_clearly_or_fully_accounted_for(
    tmp_path: Path, name: str, content: bytes, expected: int | None
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    report = tmp_path / "report.csv"
    if expected is None:
        with pytest.raises(InputError) as caught:
            dry_run(path, report)
        assert caught.value.exit_code is ExitCode.USAGE
        assert caught.value.message.startswith(str(path)), caught.value.message
        assert caught.value.hint, caught.value.message
        return
    outcome = dry_run(path, report)
    summary = outcome.summary
    assert summary.counts.balanced()
    assert summary.counts.read == expected, summary
    assert summary.counts.unaccounted == 0
    assert len(report_rows(report)) == summary.counts.rejected_local
    if outcome.error is not None:  # only a damaged input ends a dry run early
        assert isinstance(outcome.error, InputDamagedError), outcome.error
        assert outcome.error.exit_code is ExitCode.ABORTED
        assert str(path) in outcome.error.message


# -- what a non-text file looks like ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fmt", "what", "advice"),
    [
        (random.Random(3).randbytes(500), InputFormat.CSV, "not look like text", "CSV UTF-8"),
        (VALID_CSV.encode("utf-16-be"), InputFormat.CSV, "UTF-16 text without", "utf-16-le"),
        (
            VALID_CSV.replace("\n", "\r").encode(),
            InputFormat.CSV,
            "carriage return",
            "tr '\\r' '\\n'",
        ),
    ],
)
def test_a_file_that_is_not_text_says_what_it_looks_like(
    tmp_path: Path, content: bytes, fmt: InputFormat, what: str, advice: str
) -> None:
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(content)
    source = InputSource(str(path))
    try:
        with pytest.raises(InputError) as caught:
            open_reader(source, fmt)
    finally:
        source.close()
    assert what in caught.value.message
    assert "new-line character" not in caught.value.message
    assert advice in (caught.value.hint or "")


def test_gzip_on_stdin_is_no_longer_refused() -> None:
    # Issue 10: gzip is detected by content on stdin too (tests/test_encodings.py reads it).
    assert describe_non_text(b"", gzipped(VALID_CSV), "-") is None


# -- damaged gzip ----------------------------------------------------------------------


def test_a_truncated_gzip_yields_every_complete_record_then_names_the_line(
    tmp_path: Path,
) -> None:
    data = gzipped(SEND_HEADER_LINE + "".join(send_line(i) for i in range(3000)))
    cut = data[: len(data) // 2]
    complete_lines = zlib.decompressobj(31).decompress(cut).count(b"\n")
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(cut)
    outcome = dry_run(path)
    assert isinstance(outcome.error, InputDamagedError)
    assert f"after line {complete_lines:,}" in outcome.error.message
    assert "cut short" in outcome.error.message
    assert outcome.summary.counts.read == complete_lines - 1  # the header is not a record
    assert outcome.summary.counts.balanced()
    assert outcome.summary.status == "aborted"


# -- the report keeps what the input said --------------------------------------------------


def test_a_malformed_row_keeps_its_id_in_the_report(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(SEND_HEADER_LINE + send_line(1, message=BIG_CELL) + send_line(2))
    report = tmp_path / "r.csv"
    outcome = dry_run(path, report)
    (row,) = report_rows(report)
    assert row["_code"] == "malformed_row"
    assert row["_record_id"] == "h00001"
    assert row["id"] == "h00001" and row["to_number"] == "+14155550001"
    assert outcome.summary.counts.read == 2


@pytest.mark.parametrize("report_name", ["r.csv", "r.jsonl"])
def test_the_report_keeps_the_original_text_of_json_values(
    tmp_path: Path, report_name: str
) -> None:
    line = (
        '{"id": "n1", "to_number": "+14155550001", "timestamp": "2025-01-01T00:00:00Z", '
        '"list_id": 100000000000000000000000, "length": 1.10, "creative_id": 2.50e3, '
        '"message": "  caf\\u00e9 \\"quoted\\"\\t "}\n'
    )
    path = tmp_path / "n.jsonl"
    path.write_text(line)
    report = tmp_path / report_name
    dry_run(path, report)
    (row,) = report_rows(report)
    assert "100000000000000000000000" in row["_message"]
    if report_name.endswith(".csv"):
        assert (row["list_id"], row["length"], row["creative_id"]) == (
            "100000000000000000000000",
            "1.10",
            "2.50e3",
        )
        assert row["message"] == '  café "quoted"\t '
    else:
        raw = report.read_text()
        for text in ('"list_id":100000000000000000000000', '"length":1.10', '"creative_id":2.50e3'):
            assert text in raw
        assert row["message"] == '  café "quoted"\t '


def test_a_csv_report_keeps_cells_as_written(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "id,to_number,timestamp,list_id,message\n"
        "c1,+14155550001,2025-01-01T00:00:00Z,100000000000000000000000,  1.10 \n"
    )
    report = tmp_path / "r.csv"
    dry_run(path, report)
    (row,) = report_rows(report)
    assert (row["list_id"], row["message"]) == ("100000000000000000000000", "  1.10 ")


# -- fuzzing the readers and the record builder ----------------------------------------------

SENDS_MAPPING = resolve_columns(
    Kind.SENDS, ["id", "to_number", "timestamp", "list_number", "message"], {}, source_name="f"
)
JSON_MAPPING = resolve_columns(Kind.SENDS, None, {}, source_name="f")

interesting_bytes = st.one_of(
    st.binary(max_size=600),
    st.lists(
        st.sampled_from(
            [
                b",",
                b'"',
                b"\n",
                b"\r",
                b"\x00",
                b"\xff",
                b"\xef\xbb\xbf",
                b"{",
                b"}",
                b"[",
                b":",
                b"1e400",
                b"\\u",
                b"\\ud800",
                b"id",
                b"+14155550001",
                b"2025-01-01T00:00:00Z",
                b"9999-12-31T23:59:59-01:00",
                b"\x1f\x8b",
                b"\xff\xfe",
                b" ",
            ]
        ),
        max_size=60,
    ).map(b"".join),
)


def _read_and_build(path: Path, fmt: InputFormat) -> None:
    """Read ``path`` whole: an InputError up front, or rows that each build or are rejected."""
    source = InputSource(str(path))
    try:
        try:
            reader = open_reader(source, fmt)
        except InputError as exc:
            assert exc.message and exc.exit_code is ExitCode.USAGE
            return
        mapping = SENDS_MAPPING if fmt is InputFormat.CSV else JSON_MAPPING
        if reader.columns is not None:
            try:
                mapping = resolve_columns(Kind.SENDS, reader.columns, {}, source_name="f")
            except InputError:
                return
        builder = RecordBuilder(mapping)
        previous = 0
        try:
            for row in reader:
                assert row.line > previous
                previous = row.line
                outcome = builder.build(row)
                assert isinstance(outcome, dict | Rejection)
                builder.record_id(row)
                if isinstance(outcome, dict):
                    orjson.dumps(outcome)  # what would be sent can be sent
        except InputDamagedError as exc:
            assert str(path) in exc.message
    finally:
        source.close()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=interesting_bytes, fmt=st.sampled_from(list(InputFormat)), header=st.booleans())
def test_the_readers_survive_arbitrary_bytes(
    tmp_path: Path, content: bytes, fmt: InputFormat, header: bool
) -> None:
    path = tmp_path / f"fuzz.{fmt}"
    prefix = SEND_HEADER_LINE.encode() if header and fmt is InputFormat.CSV else b""
    path.write_bytes(prefix + content)
    _read_and_build(path, fmt)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=interesting_bytes, fmt=st.sampled_from(list(InputFormat)), cut=st.integers(0, 400))
def test_the_readers_survive_damaged_gzip(
    tmp_path: Path, content: bytes, fmt: InputFormat, cut: int
) -> None:
    data = gzip.compress(content)
    path = tmp_path / f"fuzz.{fmt}.gz"
    path.write_bytes(data[: max(len(data) - cut, 0)] if cut % 2 else _bad_crc(data))
    _read_and_build(path, fmt)


record_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.datetimes(timezones=offsets).map(datetime.isoformat),
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["id", "to_number", "timestamp", "list_id", "delivered", "message", "length"]
        ),
        record_values,
    )
)
def test_the_record_builder_turns_any_json_record_into_a_record_or_a_rejection(
    data: dict[str, Any],
) -> None:
    builder = RecordBuilder(JSON_MAPPING, timezone=ZoneInfo("Pacific/Kiritimati"))
    outcome = builder.build(RawRow(1, 0, 2, data))
    assert isinstance(outcome, dict | Rejection)
    if isinstance(outcome, dict):
        orjson.dumps(outcome)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(max_size=30), st.datetimes(timezones=offsets).map(str)),
        min_size=0,
        max_size=7,
    )
)
def test_the_record_builder_turns_any_csv_row_into_a_record_or_a_rejection(
    cells: list[str],
) -> None:
    builder = RecordBuilder(SENDS_MAPPING, timezone=ZoneInfo("America/New_York"))
    outcome = builder.build(RawRow(2, 0, 3, cells))
    assert isinstance(outcome, dict | Rejection)


# -- a handful of whole runs: the real CLI against the real sandbox ------------------------

SENDS_ENDPOINT = "POST /api/v2/history/sends"


def no_traceback(result: CliResult) -> None:
    assert "Traceback" not in result.output, result.stderr
    assert not re.search(r"\b[A-Z]\w*(Error|Exception): ", result.output), result.stderr
    assert "Aborted." not in result.stderr  # what Click prints for an EOFError


def test_a_truncated_gzip_settles_what_was_read_and_stops_with_exit_3(
    shared: RunningSandbox, tmp_path: Path
) -> None:
    shared.reset()
    before = set(stored_imported_ids(shared))
    data = gzipped(SEND_HEADER_LINE + "".join(send_line(i) for i in range(3000)))
    cut = data[: len(data) // 2]
    records = zlib.decompressobj(31).decompress(cut).count(b"\n") - 1
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(cut)
    result = invoke(
        ["import-sends", str(path), "--json", "--batch-size", "200"], sandbox=shared, cwd=tmp_path
    )
    no_traceback(result)
    assert result.returncode == 3, result.stderr
    summary = summary_of(result.stdout)
    assert (summary["read"], summary["imported"], summary["status"]) == (
        records,
        records,
        "aborted",
    )
    assert f"{path}: the input breaks off after line {records + 1:,}" in result.stderr
    assert set(stored_imported_ids(shared)) - before == {f"h{i:05d}" for i in range(records)}
    assert "--resume" in result.stderr  # the checkpoint is kept
    assert list((tmp_path / "state").rglob("*.json"))


def test_a_gzip_with_a_bad_crc_is_accounted_for_without_a_traceback(
    shared: RunningSandbox, tmp_path: Path
) -> None:
    shared.reset()
    path = tmp_path / "crc.csv.gz"
    path.write_bytes(_bad_crc(gzipped(SEND_HEADER_LINE + "".join(send_line(i) for i in range(50)))))
    result = invoke(["import-sends", str(path), "--json"], sandbox=shared, cwd=tmp_path)
    no_traceback(result)
    assert result.returncode == 3, result.stderr
    assert summary_of(result.stdout)["imported"] == 50
    assert "CRC check failed" in result.stderr


@pytest.mark.parametrize(
    ("content", "args", "expected"),
    [
        (VALID_CSV.encode("utf-16-le"), ["-", "--format", "csv"], "--encoding utf-16-le"),
        (
            b"id,to_number,timestamp,To Number\nx,+14155550001,2025-01-01T00:00:00Z,+1\n",
            ["-", "--format", "csv"],
            "column 2 ('to_number') and column 4 ('To Number')",
        ),
        (VALID_CSV.encode(), ["-", "--format", "csv", "--map", "id=a", "--map", "id=b"], "twice"),
    ],
)
def test_refused_inputs_exit_2_and_send_nothing(
    shared: RunningSandbox, tmp_path: Path, content: bytes, args: list[str], expected: str
) -> None:
    shared.reset()
    sent = requests_to(shared, SENDS_ENDPOINT)
    result = invoke(["import-sends", *args, "--json"], sandbox=shared, stdin=content, cwd=tmp_path)
    no_traceback(result)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    # --json: nothing on stdout but the error envelope (issue 10; docs/output.schema.json).
    assert json.loads(result.stdout)["status"] == "error"
    assert requests_to(shared, SENDS_ENDPOINT) == sent


def test_a_hostile_csv_sends_exactly_its_valid_records(
    shared: RunningSandbox, tmp_path: Path
) -> None:
    shared.reset()
    before = set(stored_imported_ids(shared))
    lines = [
        SEND_HEADER_LINE,
        send_line(1),
        send_line(2, timestamp="9999-12-31T23:59:59-01:00"),
        send_line(3, message="nul\x00byte"),
        "\ufeff" + SEND_HEADER_LINE,
        send_line(4, message=BIG_CELL[: 2 << 20]),
        send_line(5, to_number="+1 (415) 555-0005"),
        send_line(6, timestamp="0999-06-01T00:00:00+01:00"),
        send_line(7, message='"unterminated'),
        send_line(8),
    ]
    path = tmp_path / "hostile.csv"
    path.write_text("".join(lines), encoding="utf-8")
    result = invoke(["import-sends", str(path), "--json"], sandbox=shared, cwd=tmp_path)
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    summary = summary_of(result.stdout)
    assert summary["read"] == 8  # the last quote swallows line 9 to the end of the file
    assert set(stored_imported_ids(shared)) - before == {"h00001", "h00005", "h00006"}
    report = read_report(tmp_path / "hostile.errors.csv")
    assert [row["_record_id"] for row in report] == [
        "h00002",
        "h00003",
        "\ufeffid",
        "h00004",
        "h00007",
    ]
    assert [row["_code"] for row in report] == [
        "invalid_timestamp",
        "invalid_encoding",
        "malformed_row",
        "malformed_row",
        "malformed_row",
    ]


def test_a_record_nested_too_deep_is_rejected_and_still_reported(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text(json_line(1)[:-2] + ', "x": ' + "[" * 300 + "1.5" + "]" * 300 + "}\n")
    report = tmp_path / "r.jsonl"
    outcome = dry_run(path, report)
    (row,) = report_rows(report)
    assert row["_code"] == "invalid_record"
    assert "levels deep" in row["_message"]
    assert row["_raw"] == path.read_text().rstrip("\n")
    assert outcome.summary.counts.balanced()
