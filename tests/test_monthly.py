"""Reconciliation by month: the months add up to the totals, exactly, on every path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.helpers import send_row, write_sends_csv
from trackly_migrate.counts import (
    MONTH_FIELDS,
    UNKNOWN_MONTH,
    Counts,
    from_totals,
    month_of,
    share_out,
    to_totals,
)
from trackly_migrate.sandbox.server import RunningSandbox

MONTH = st.sampled_from(["2024-12", "2025-01", "2025-02", UNKNOWN_MONTH])


@st.composite
def segments(draw: Any) -> tuple[dict[str, int], dict[str, int]]:
    accepted = draw(st.dictionaries(MONTH, st.integers(0, 50), min_size=1))
    total = sum(accepted.values())
    imported = draw(st.integers(0, total))
    duplicates = draw(st.integers(0, total - imported))
    unaccounted = total - imported - duplicates
    return accepted, {"imported": imported, "duplicates": duplicates, "unaccounted": unaccounted}


@given(segments())
def test_shared_out_months_add_up_both_ways(segment: Any) -> None:
    accepted, outcomes = segment
    rows = share_out(accepted, outcomes)
    assert set(rows) == set(accepted)
    for month, row in rows.items():
        assert row["imported"] + row["duplicates"] + row["unaccounted"] == accepted[month]
    for name, total in outcomes.items():
        assert sum(row[name] for row in rows.values()) == total
    live = [month for month, number in accepted.items() if number]
    one_kind = sum(1 for total in outcomes.values() if total) <= 1
    estimated = sum(row.get("estimated", 0) for row in rows.values())
    assert estimated == (0 if len(live) <= 1 or one_kind else sum(accepted.values()))


def test_month_of_a_normalized_timestamp_or_unknown() -> None:
    assert month_of("2025-11-15T14:30:00Z") == "2025-11"
    assert month_of(None) == UNKNOWN_MONTH
    assert month_of("garbage") == UNKNOWN_MONTH


def test_an_older_checkpoint_loads_with_its_counts_under_unknown() -> None:
    counts, elapsed = from_totals({"read": 10, "imported": 7, "rejected_local": 3, "elapsed_s": 2})
    assert elapsed == 2.0
    assert counts.months == {
        UNKNOWN_MONTH: {**dict.fromkeys(MONTH_FIELDS, 0), "read": 10, "imported": 7, "rejected": 3}
    }
    again, _ = from_totals(to_totals(counts, 2.0))
    assert again.months == counts.months and again.read == 10


def test_totals_leave_out_counters_at_zero_and_come_back_whole() -> None:
    # The list's checkpoint keeps every finished file's totals: zeros are most of them.
    counts, _ = from_totals({"read": 4, "imported": 3, "duplicates": 1, "elapsed_s": 1})
    totals = to_totals(counts, 1.5)
    assert set(totals) == {"read", "imported", "duplicates", "elapsed_s", "months"}
    assert totals["months"] == {UNKNOWN_MONTH: {"read": 4, "imported": 3, "duplicates": 1}}
    again, elapsed = from_totals(totals)
    assert (again, elapsed) == (counts, 1.5)


def check_identity(summary: dict[str, Any]) -> dict[str, dict[str, int]]:
    months = {row["month"]: row for row in summary["months"]}
    for name in ("read", "imported", "duplicates", "unaccounted", "pending"):
        assert sum(row[name] for row in months.values()) == summary[name], name
    rejected = summary["rejected_local"] + summary["rejected_server"]
    assert sum(row["rejected"] for row in months.values()) == rejected
    for row in months.values():
        settled = sum(row[name] for name in ("imported", "duplicates", "rejected"))
        assert settled + row["unaccounted"] + row["pending"] == row["read"]
    return months


def mixed_rows() -> list[dict[str, Any]]:
    rows = []
    for index in range(60):
        month = ("2024-12-31T23:30:00-02:00", "2025-01-15T10:00:00Z", "2025-02-01T00:00:00Z")
        rows.append(send_row(index, timestamp=month[index % 3]))
    rows[5]["timestamp"] = "not a time"  # unknown month, rejected locally
    rows[7]["to_number"] = "12"  # its month is readable: counted there, rejected
    rows[8].update(list_number="", list_id="999")  # rejected by the server (list_not_found)
    return rows


def test_months_by_utc_add_up_and_the_table_is_shown(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", mixed_rows())
    result = run_cli(
        ["import-sends", str(source), "--json", "--batch-size", "7"], sandbox=sandbox, cwd=tmp_path
    )
    assert result.returncode == 1, result.output
    months = check_identity(json.loads(result.stdout))
    # -02:00 at 23:30 on Dec 31 is January in UTC.
    assert set(months) == {"2025-01", "2025-02", UNKNOWN_MONTH}
    assert months[UNKNOWN_MONTH]["read"] == months[UNKNOWN_MONTH]["rejected"] == 1
    assert months["2025-01"]["read"] == 40 and months["2025-01"]["rejected"] == 1
    assert months["2025-02"]["rejected"] == 1
    assert json.loads(result.stdout)["rejected_server"] == 1
    assert "by month (UTC)" in result.stderr and "█" in result.stderr
    # A second run: every record a duplicate, the months still exact.
    again = run_cli(
        ["import-sends", str(source), "--json", "--batch-size", "7", "--force"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    months = check_identity(json.loads(again.stdout))
    assert months["2025-02"]["duplicates"] == 18 and months["2025-02"]["estimated"] == 0


def test_a_dry_run_counts_months_as_pending(tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", mixed_rows())
    result = run_cli(["import-sends", str(source), "--json", "--dry-run"], cwd=tmp_path)
    months = check_identity(json.loads(result.stdout))
    assert months["2025-02"]["pending"] == 19


def test_counts_add_merges_months() -> None:
    total = Counts()
    total.add(Counts(read=2, months={"2025-01": dict.fromkeys(MONTH_FIELDS, 1)}))
    total.add(Counts(read=1, months={"2025-01": {"read": 1}}))
    assert total.months["2025-01"]["read"] == 2 and total.read == 3


def test_the_months_survive_a_resume(sandbox: RunningSandbox, tmp_path: Path) -> None:
    rows = [send_row(i, timestamp="2025-01-15T10:00:00Z") for i in range(30)]
    rows += [send_row(i, to_number="bad", timestamp="2025-02-15T10:00:00Z") for i in range(30, 60)]
    rows += [send_row(i, timestamp="2025-03-15T10:00:00Z") for i in range(60, 70)]
    source = write_sends_csv(tmp_path / "s.csv", rows)
    checkpoint = tmp_path / "run.checkpoint"
    common = ["import-sends", str(source), "--json", "--batch-size", "10"]
    common += ["--checkpoint", str(checkpoint)]
    first = run_cli([*common, "--max-rejects", "5"], sandbox=sandbox, cwd=tmp_path)
    assert first.returncode == 1, first.output
    assert json.loads(first.stdout)["error"]["code"] == "reject_limit"
    assert checkpoint.exists()
    second = run_cli([*common, "--resume", "--max-rejects", "100%"], sandbox=sandbox, cwd=tmp_path)
    assert second.returncode == 1, second.output
    summary = json.loads(second.stdout)
    assert summary["resumed_from_line"] is not None
    months = check_identity(summary)
    assert months["2025-01"]["imported"] == 30
    assert months["2025-02"]["rejected"] == 30
    assert months["2025-03"]["imported"] == 10
    assert summary["read"] == 70
