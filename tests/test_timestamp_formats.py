"""--timestamp-format (iso, epoch, epoch_ms, strptime patterns) and ISO's " UTC" and epoch hints."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.helpers import SAMPLES, read_report, summary_of
from trackly_migrate.columns import ColumnMapping, resolve_columns
from trackly_migrate.errors import UsageError
from trackly_migrate.normalize import (
    check_timestamp_format,
    normalize_epoch,
    normalize_pattern,
    normalize_timestamp,
)
from trackly_migrate.pipeline import ImportRequest, Normalization, Source, Target
from trackly_migrate.readers import RawRow
from trackly_migrate.records import Kind, RecordBuilder, Rejection
from trackly_migrate.sandbox.server import RunningSandbox

DRY = Target(dry_run=True)


def test_iso_accepts_a_trailing_utc_or_gmt_as_z() -> None:
    assert normalize_timestamp("2025-11-15 14:30:00 UTC") == "2025-11-15T14:30:00Z"
    assert normalize_timestamp("2025-11-15 14:30:00.5 GMT") == "2025-11-15T14:30:00.500000Z"


@pytest.mark.parametrize(
    ("value", "option"),
    [("1731681000", "--timestamp-format epoch"), ("1731681000123", "--timestamp-format epoch_ms")],
)
def test_iso_names_the_epoch_option_for_a_value_that_looks_like_one(
    value: str, option: str
) -> None:
    with pytest.raises(ValueError, match=option) as caught:
        normalize_timestamp(value)
    assert "month" not in str(caught.value)


def test_epoch_seconds_and_milliseconds_exactly() -> None:
    assert normalize_epoch("1731681000") == "2024-11-15T14:30:00Z"
    assert normalize_epoch("1731681000.25") == "2024-11-15T14:30:00.250000Z"
    assert normalize_epoch("1731681000250", 1000) == "2024-11-15T14:30:00.250000Z"
    assert normalize_epoch("-1") == "1969-12-31T23:59:59Z"
    for bad in ("", "12a", "1e9", "2025-11-15T14:30:00Z"):
        with pytest.raises(ValueError, match="since 1970"):
            normalize_epoch(bad)
    with pytest.raises(ValueError, match="outside the calendar"):
        normalize_epoch("9" * 30)


@given(st.integers(min_value=-(10**10), max_value=2 * 10**11), st.integers(0, 999_999))
def test_epoch_agrees_with_datetime_arithmetic(seconds: int, micros: int) -> None:
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micros)
    text = f"{seconds}.{micros:06d}"
    if seconds < 0:  # "-5.25" is 5.25 s before the epoch
        text = f"-{-seconds}.{micros:06d}"
        expected = datetime(1970, 1, 1, tzinfo=UTC) - timedelta(
            seconds=-seconds, microseconds=micros
        )
    assert normalize_epoch(text) == _utc_text(expected)


def _utc_text(moment: datetime) -> str:
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(timespec="microseconds" if naive.microsecond else "seconds") + "Z"


def test_a_pattern_without_an_offset_needs_timezone_never_a_silent_utc() -> None:
    with pytest.raises(ValueError, match="--timezone"):
        normalize_pattern("11/15/2025 14:30", "%m/%d/%Y %H:%M", None)
    zone = ZoneInfo("America/New_York")
    assert normalize_pattern("11/15/2025 14:30", "%m/%d/%Y %H:%M", zone) == "2025-11-15T19:30:00Z"
    assert normalize_pattern("15.11.2025 14:30 +0100", "%d.%m.%Y %H:%M %z", None) == (
        "2025-11-15T13:30:00Z"
    )
    with pytest.raises(ValueError, match="does not match"):
        normalize_pattern("2025-11-15", "%m/%d/%Y %H:%M", zone)


@pytest.mark.parametrize("bad", ["%Q", "epcoh", "", "ISO8601"])
def test_a_bad_format_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        check_timestamp_format(bad)


def test_the_request_resolves_formats_per_field_and_names_the_option() -> None:
    normalization = Normalization(
        timestamp_format=["%m/%d/%Y %H:%M", "send_timestamp=epoch"], timezone="UTC"
    )
    request = ImportRequest(Kind.CLICKS, Source("x.jsonl"), DRY, normalization=normalization)
    assert request.normalization.timestamp_formats == {
        "timestamp": "%m/%d/%Y %H:%M",
        "send_timestamp": "epoch",
    }
    plain = ImportRequest(Kind.SENDS, Source("x.csv"), DRY)
    assert plain.normalization.timestamp_formats == {"timestamp": "iso"}
    with pytest.raises(UsageError, match=r"--timestamp-format.*send_timestamp"):
        ImportRequest(
            Kind.SENDS,
            Source("x.csv"),
            DRY,
            normalization=Normalization(timestamp_format={"send_timestamp": "epoch"}),
        )
    with pytest.raises(UsageError, match="--timestamp-format"):
        Normalization(timestamp_format="%Q")
    with pytest.raises(UsageError, match="twice"):
        Normalization(timestamp_format=["epoch", "epoch_ms"])


def _builder(formats: dict[str, str]) -> tuple[RecordBuilder, ColumnMapping]:
    mapping = resolve_columns(Kind.SENDS, ["id", "to_number", "timestamp"], {}, source_name="t.csv")
    return RecordBuilder(mapping, timestamp_formats=formats), mapping


@given(st.sampled_from(["2025-11-15T14:30:00Z", "1731681000", "1731681000.5", "", " ", "x"]))
def test_the_compiled_build_agrees_with_the_general_one_for_epoch(value: str) -> None:
    builder, _ = _builder({"timestamp": "epoch"})
    cells = ["a1", "+14155550123", value]
    fast = builder.build(RawRow(2, 0, 3, cells))
    general = builder._build_cells(cells)
    assert fast == general
    if value == "2025-11-15T14:30:00Z":  # the ISO fast path must not accept it under epoch
        assert isinstance(fast, Rejection)


def test_epoch_reads_json_numbers() -> None:
    mapping = resolve_columns(Kind.SENDS, None, {}, source_name="t.jsonl")
    builder = RecordBuilder(mapping, timestamp_formats={"timestamp": "epoch_ms"})
    row = {"id": "a", "to_number": "+14155550123", "timestamp": 1731681000250}
    record = builder.build(RawRow(1, 0, 2, row))
    assert not isinstance(record, Rejection)
    assert record["timestamp"] == "2024-11-15T14:30:00.250000Z"
    assert isinstance(builder.build(RawRow(1, 0, 2, {**row, "timestamp": True})), Rejection)


def _stored(sandbox: RunningSandbox, table: str, key: str, column: str) -> dict[str, str]:
    assert sandbox.db_path is not None
    with sqlite3.connect(sandbox.db_path) as conn:
        rows = conn.execute(f"SELECT {key}, {column} FROM {table}").fetchall()
    # The sandbox stores microseconds always: compare moments, not spellings.
    return {name: _moment(value) for name, value in rows if value is not None}


def _moment(text: str) -> str:
    return "|".join(_utc_text(datetime.fromisoformat(part)) for part in text.split("|"))


def test_cli_epoch_and_pattern_sends_end_to_end(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = tmp_path / "sends.csv"
    source.write_text(
        "id,to_number,timestamp\n"
        "ep_1,+14155550123,1731681000\n"
        "ep_2,+14155550124,1731681000.5\n"
        "ep_3,+14155550125,2025-11-15T14:30:00Z\n"
    )
    result = run_cli(
        ["import-sends", str(source), "--timestamp-format", "epoch", "--json"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    summary = summary_of(result.stdout)
    assert (summary["imported"], summary["rejected_local"]) == (2, 1), result.output
    stored = _stored(sandbox, "messages", "id", "timestamp")
    assert stored["ep_1"] == "2024-11-15T14:30:00Z"
    assert stored["ep_2"] == "2024-11-15T14:30:00.500000Z"
    report = read_report(tmp_path / "sends.errors.csv")
    assert [(row["_line"], row["_code"]) for row in report] == [("4", "invalid_timestamp")]

    us = tmp_path / "us.csv"
    us.write_text("id,to_number,timestamp\nus_1,+14155550126,11/15/2025 14:30\n")
    args = ["import-sends", str(us), "--timestamp-format", "%m/%d/%Y %H:%M", "--json"]
    refused = run_cli([*args, "--errors", str(tmp_path / "us-errors.csv")], sandbox=sandbox)
    assert summary_of(refused.stdout)["rejected_local"] == 1
    (problem,) = read_report(tmp_path / "us-errors.csv")
    assert problem["_code"] == "invalid_timestamp" and "--timezone" in problem["_message"]
    accepted = run_cli(
        [*args, "--timezone", "America/New_York", "--errors", str(tmp_path / "e2.csv")],
        sandbox=sandbox,
    )
    assert summary_of(accepted.stdout)["imported"] == 1, accepted.output
    assert _stored(sandbox, "messages", "id", "timestamp")["us_1"] == "2025-11-15T19:30:00Z"


def test_cli_clicks_take_a_format_per_field(sandbox: RunningSandbox, tmp_path: Path) -> None:
    sends = tmp_path / "sends.csv"
    sends.write_text("id,to_number,timestamp\nck_1,+13106279870,2023-01-01 01:00:00 UTC\n")
    assert (
        summary_of(run_cli(["import-sends", str(sends), "--json"], sandbox=sandbox).stdout)[
            "imported"
        ]
        == 1
    )
    first = json.loads((SAMPLES / "clicks.jsonl").read_text().splitlines()[0])
    first["message_id"] = "ck_1"
    first["timestamp"] = 1672536366000  # 2023-01-01T01:26:06Z in milliseconds
    first["send_timestamp"] = "2023-01-01 01:00:00 UTC"
    source = tmp_path / "clicks.jsonl"
    source.write_text(json.dumps(first) + "\n")
    result = run_cli(
        ["import-clicks", str(source), "--timestamp-format", "timestamp=epoch_ms", "--json"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert summary_of(result.stdout)["imported"] == 1, result.output
    stored = _stored(sandbox, "clicks", "message_id", "timestamp || '|' || send_timestamp")
    assert stored[first["message_id"]] == "2023-01-01T01:26:06Z|2023-01-01T01:00:00Z"


def test_cli_refuses_a_bad_format_before_reading(tmp_path: Path) -> None:
    result = run_cli(
        ["import-sends", str(tmp_path / "absent.csv"), "--dry-run", "--timestamp-format", "%Q"]
    )
    assert result.returncode == 2
    assert "--timestamp-format" in result.stderr and "Traceback" not in result.output
    result = run_cli(
        ["import-sends", "x.csv", "--dry-run", "--timestamp-format", "send_timestamp=epoch"]
    )
    assert result.returncode == 2 and "send_timestamp" in result.stderr
