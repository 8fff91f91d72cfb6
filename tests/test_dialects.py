"""The CSV delimiter detected from the header line, --quotechar, and resume keeping the dialect."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.helpers import send_row, stored_imported_ids, summary_of, write_sends_csv
from trackly_migrate.errors import UsageError
from trackly_migrate.pipeline import Source
from trackly_migrate.readers import detect_delimiter
from trackly_migrate.readers.dialect import best_scoring, folded
from trackly_migrate.sandbox.server import RunningSandbox

KNOWN = ["id", "to_number", "timestamp", "message"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("id;to_number;timestamp", ";"),
        ("id\tto_number\ttimestamp", "\t"),
        ("id|to_number|timestamp", "|"),
        ("id,to_number,timestamp", ","),
        ('"id;x",to_number,timestamp', ","),  # a ; inside quotes is not a delimiter
        ('id;"to,number";timestamp;message', ";"),
        ("a;b;c", ","),  # nothing known: the tie goes to comma
        ("ID; To Number ;Time-Stamp", ";"),  # names compared as the column mapping does
        ("Sid;Phone;When", ","),
    ],
)
def test_the_delimiter_naming_the_most_known_columns_wins(header: str, expected: str) -> None:
    assert detect_delimiter(header, KNOWN) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*KNOWN, "Sid", "a b", "x,y", '"', ",", ";", "\t", "|", " ", "\ufeff"]),
        max_size=12,
    ).map("".join),
    st.sampled_from([KNOWN, [*KNOWN, "x,y"], [*KNOWN, "Sid"]]),
)
def test_the_quick_answer_for_a_line_without_other_delimiters_is_the_full_one(
    line: str, known: list[str]
) -> None:
    # Comma is answered without splitting the line four ways when no other candidate is in
    # it: the answer must be the one the four splits give.
    assert detect_delimiter(line, known) == best_scoring(line, folded(tuple(known)))


def test_mapped_columns_count_as_known() -> None:
    assert detect_delimiter("Sid;Phone;When", [*KNOWN, "Sid", "Phone", "When"]) == ";"


def test_source_checks_delimiter_and_quotechar() -> None:
    assert Source("x.csv", delimiter="tab").delimiter == "\t"
    assert Source("x.csv").delimiter is None
    with pytest.raises(UsageError, match="--delimiter"):
        Source("x.csv", delimiter=";;")
    with pytest.raises(UsageError, match="--quotechar"):
        Source("x.csv", quotechar="")
    with pytest.raises(UsageError, match="--quotechar"):
        Source("x.csv", delimiter="'", quotechar="'")


def _semicolon_file(path: Path, rows: list[dict[str, str]]) -> Path:
    write_sends_csv(path, rows)
    path.write_text(path.read_text().replace(",", ";"))
    return path


def test_a_semicolon_export_imports_and_says_how_it_was_read(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = [send_row(i, message="") for i in range(10)]
    source = _semicolon_file(tmp_path / "sends.csv", rows)
    result = run_cli(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert summary_of(result.stdout)["imported"] == 10
    assert (
        f"reading {source} as ';'-separated (the delimiter from the header; --delimiter to choose)"
        in result.stderr
    )
    assert {row["id"] for row in rows} <= set(stored_imported_ids(sandbox))
    given = run_cli(
        ["import-sends", str(source), "--json", "--delimiter", ";", "--dry-run"], cwd=tmp_path
    )
    assert given.returncode == 0 and "separated" not in given.stderr


def test_quotechar(tmp_path: Path) -> None:
    source = tmp_path / "q.csv"
    source.write_text(
        "id,to_number,timestamp,message\nq1,+14155550123,2025-01-01T00:00:00Z,'a, b'\n"
    )
    result = run_cli(
        ["import-sends", str(source), "--dry-run", "--json", "--quotechar", "'"], cwd=tmp_path
    )
    assert result.returncode == 0, result.output
    assert summary_of(result.stdout)["rejected_local"] == 0
    plain = run_cli(["import-sends", str(source), "--dry-run", "--json"], cwd=tmp_path)
    assert summary_of(plain.stdout)["rejected_local"] == 1  # 5 cells for a 4-column header


def test_a_resume_reads_with_the_detected_delimiter(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = [send_row(i) for i in range(5)] + [
        send_row(i, to_number="+1 555") for i in range(5, 2000)
    ]
    source = _semicolon_file(tmp_path / "sends.csv", rows)
    checkpoint = tmp_path / "ck.json"
    args = ["import-sends", str(source), "--json", "--checkpoint", str(checkpoint)]
    stopped = run_cli([*args, "--max-rejects", "10"], sandbox=sandbox, cwd=tmp_path)
    assert stopped.returncode == 1 and checkpoint.exists(), stopped.output
    changed = run_cli([*args, "--resume", "--delimiter", ","], sandbox=sandbox, cwd=tmp_path)
    assert changed.returncode == 2 and "delimiter" in changed.stderr
    resumed = run_cli([*args, "--resume", "--force"], sandbox=sandbox, cwd=tmp_path)
    summary = summary_of(resumed.stdout)
    assert summary["read"] == len(rows), resumed.output
    assert summary["imported"] == 5 and summary["rejected_local"] == len(rows) - 5
