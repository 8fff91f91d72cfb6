"""The errors report: private, spreadsheet-safe, and fit to be fed back in."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from trackly_migrate.report import (
    ErrorReport,
    ReportRow,
    Summary,
    default_report_path,
    spreadsheet_safe,
)


@given(st.text(max_size=20))
def test_no_cell_can_start_a_formula_except_plain_e164_numbers(cell: str) -> None:
    safe = spreadsheet_safe(cell)
    if safe[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        assert safe.startswith("+") and safe[1:].isdigit()


def test_phone_numbers_stay_importable_and_formulas_become_text() -> None:
    assert spreadsheet_safe("+14155550123") == "+14155550123"
    assert spreadsheet_safe('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert spreadsheet_safe("-2+3") == "'-2+3"
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("plain") == "plain"


def test_csv_report_is_private_and_has_meta_then_original_columns(tmp_path: Path) -> None:
    path = tmp_path / "out.errors.csv"
    report = ErrorReport(path, source_columns=["id", "message"], field_names=[])
    assert not path.exists()
    report.write(ReportRow(3, "h1", "local", "missing_id", "id is missing", ["h1", "=1+1"]))
    report.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["_line", "_record_id", "_stage", "_code", "_message", "id", "message"],
        ["3", "h1", "local", "missing_id", "id is missing", "h1", "'=1+1"],
    ]


def test_jsonl_report_keeps_the_original_object(tmp_path: Path) -> None:
    path = tmp_path / "out.errors.jsonl"
    report = ErrorReport(path, source_columns=None, field_names=["message_id"])
    report.write(ReportRow(9, "m1", "server", "offer_not_found", "no offer", {"message_id": "m1"}))
    report.write(ReportRow(10, None, "local", "invalid_json", "bad", None, text='{"x": '))
    report.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {
        "message_id": "m1",
        "_line": 9,
        "_record_id": "m1",
        "_stage": "server",
        "_code": "offer_not_found",
        "_message": "no offer",
    }
    assert lines[1]["_raw"] == '{"x": '


def test_an_existing_report_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.errors.csv"
    path.write_text("old")
    path.chmod(0o644)
    report = ErrorReport(path, source_columns=["id"], field_names=[])
    report.write(ReportRow(2, "x", "local", "c", "m", ["x"]))
    report.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "old" not in path.read_text()


def test_default_report_path() -> None:
    assert default_report_path("/data/sends.csv.gz", "sends") == Path("sends.errors.csv")
    assert default_report_path("-", "clicks") == Path("stdin-clicks.errors.csv")


def test_summary_balances() -> None:
    summary = Summary(
        "import-sends",
        "x",
        read=10,
        imported=5,
        duplicates=2,
        rejected_local=1,
        rejected_server=1,
        pending=1,
    )
    assert summary.balanced()
    summary.read += 1
    assert not summary.balanced()
