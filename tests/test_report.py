"""The errors report: private, spreadsheet-safe, and fit to be fed back in."""

from __future__ import annotations

import csv
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackly_migrate.counts import Counts
from trackly_migrate.errors import UsageError
from trackly_migrate.records import Kind
from trackly_migrate.report import (
    ErrorReport,
    ReportRow,
    Summary,
    default_report_path,
    open_private,
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
    report = ErrorReport(path, source_columns=["id"], field_names=[], replace=True)
    report.write(ReportRow(2, "x", "local", "c", "m", ["x"]))
    report.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "old" not in path.read_text()


def test_a_file_the_run_did_not_write_is_never_replaced_without_leave(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("my own notes")
    with pytest.raises(UsageError, match="did not write it") as refused:
        ErrorReport(path, source_columns=["id"], field_names=[]).create()
    assert refused.value.hint is not None and "--force" in refused.value.hint
    assert path.read_text() == "my own notes"


def test_an_empty_file_left_by_a_killed_run_does_not_block_the_next(tmp_path: Path) -> None:
    # A run creates its report before anything is sent and writes the header with the first
    # row: killed in between, it leaves an empty file, which holds nothing to keep.
    path = tmp_path / "part-1.errors.csv"
    ErrorReport(path, source_columns=["id"], field_names=[]).create()
    assert path.stat().st_size == 0
    report = ErrorReport(path, source_columns=["id"], field_names=[])
    report.create()
    report.write(ReportRow(2, "x", "local", "c", "m", ["x"]))
    report.close()
    assert read_report_rows(path)[1] == ["2", "x", "local", "c", "m", "x"]


def test_a_report_without_rows_is_removed_and_one_with_rows_kept(tmp_path: Path) -> None:
    empty = ErrorReport(tmp_path / "empty.csv", source_columns=["id"], field_names=[])
    empty.create()
    assert (tmp_path / "empty.csv").exists()  # created up front, before anything is sent
    empty.remove_if_empty()
    assert not (tmp_path / "empty.csv").exists()
    full = ErrorReport(tmp_path / "full.csv", source_columns=["id"], field_names=[])
    full.create()
    full.write(ReportRow(2, "x", "local", "c", "m", ["x"]))
    full.remove_if_empty()
    assert read_report_rows(tmp_path / "full.csv") == [
        ["_line", "_record_id", "_stage", "_code", "_message", "id"],
        ["2", "x", "local", "c", "m", "x"],
    ]


def read_report_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_default_report_path() -> None:
    assert default_report_path("/data/sends.csv.gz", "sends") == Path("sends.errors.csv")
    assert default_report_path("-", "clicks") == Path("stdin-clicks.errors.csv")


def test_summary_balances() -> None:
    summary = Summary(
        Kind.SENDS,
        "x",
        Counts(
            read=10,
            imported=5,
            duplicates=2,
            rejected_local=1,
            rejected_server=1,
            pending=1,
        ),
    )
    assert summary.counts.balanced()
    summary.counts.read += 1
    assert not summary.counts.balanced()


def test_without_fchmod_the_report_is_still_made_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows before Python 3.13 has no os.fchmod.
    monkeypatch.delattr(os, "fchmod", raising=False)
    path = tmp_path / "old.errors.csv"
    path.write_text("old")
    path.chmod(0o644)
    with open_private(path, append=False) as handle:
        handle.write("new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "new"
