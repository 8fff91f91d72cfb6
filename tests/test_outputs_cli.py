"""Where the outputs go: created before anything is sent, never over a file the run did not
write, and free to move on a resume."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

from tests.helpers import (
    invoke,
    read_report,
    requests_to,
    send_row,
    stored_imported_ids,
    summary_of,
    write_sends_csv,
)
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

SENDS_ENDPOINT = "POST /api/v2/history/sends"


def rows_with_late_rejects(count: int, bad_every: int) -> list[dict[str, str]]:
    rows = [send_row(i) for i in range(count)]
    for i in range(bad_every - 1, count, bad_every):
        rows[i]["to_number"] = "bad"
    return rows


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    ("option", "place"),
    [("--errors", "/proc/x.csv"), ("--log-file", "/proc/x.log"), ("--checkpoint", "/proc/x.json")],
)
def test_an_output_that_cannot_be_created_stops_the_run_before_anything_is_sent(
    sandbox: RunningSandbox, tmp_path: Path, option: str, place: str
) -> None:
    # /proc passes an access check on its folder, yet no file can be created in it.
    before = set(stored_imported_ids(sandbox))
    source = write_sends_csv(tmp_path / "s.csv", rows_with_late_rejects(2500, 1500))
    result = invoke(["import-sends", str(source), option, place], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert place in result.stderr and option in result.stderr
    assert "Traceback" not in result.output
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0
    assert set(stored_imported_ids(sandbox)) == before


def test_a_file_the_run_did_not_write_is_kept_unless_forced(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", rows_with_late_rejects(20, 10))
    mine = tmp_path / "s.errors.csv"
    mine.write_text("my notes\n")
    refused = invoke(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert refused.returncode == 2
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert mine.read_text() == "my notes\n"
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0

    forced = invoke(
        ["import-sends", str(source), "--json", "--force"], sandbox=sandbox, cwd=tmp_path
    )
    assert forced.returncode == 1, forced.stderr
    assert summary_of(forced.stdout)["errors_report"] == "s.errors.csv"
    assert [row["_line"] for row in read_report(mine)] == ["11", "21"]


def test_no_stale_report_stands_beside_a_run_that_rejected_nothing(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    messy = write_sends_csv(tmp_path / "messy.csv", rows_with_late_rejects(20, 10))
    first = invoke(
        ["import-sends", str(messy), "--json", "--errors", "report.csv"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert first.returncode == 1
    assert summary_of(first.stdout)["errors_report"] == "report.csv"
    report = tmp_path / "report.csv"
    earlier = report.read_text()

    clean = write_sends_csv(tmp_path / "clean.csv", [send_row(i) for i in range(100, 110)])
    rerun = ["import-sends", str(clean), "--json", "--errors", "report.csv"]
    kept = invoke(rerun, sandbox=sandbox, cwd=tmp_path)
    assert kept.returncode == 2  # the earlier run's report is not silently replaced
    assert report.read_text() == earlier

    forced = invoke([*rerun, "--force"], sandbox=sandbox, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert summary_of(forced.stdout)["errors_report"] is None
    assert not report.exists()  # replaced by nothing: the clean run had no rejections

    again = invoke(
        ["import-sends", str(clean), "--json"], sandbox=sandbox, cwd=tmp_path
    )  # all duplicates now
    assert again.returncode == 0
    assert summary_of(again.stdout)["errors_report"] is None
    assert not (tmp_path / "clean.errors.csv").exists()


def full_args(source: Path, report: str) -> list[str]:
    return ["import-sends", str(source), "--json", "--batch-size", "20", "--errors", report]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_after_a_full_disk_the_hint_to_resume_elsewhere_works(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = rows_with_late_rejects(300, 50)
    source = write_sends_csv(tmp_path / "s.csv", rows)
    full = invoke(
        full_args(source, "/dev/full"),
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert full.returncode == 3
    assert "--errors PATH" in full.stderr and "--resume" in full.stderr

    resumed = invoke(
        [*full_args(source, "elsewhere.csv"), "--resume"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert resumed.returncode == 1, resumed.stderr
    summary = summary_of(resumed.stdout)
    assert summary["errors_report"] == "elsewhere.csv"
    assert summary["read"] == 300 and summary["rejected_local"] == 6
    # Nothing reached /dev/full's "disk", so the new place holds every rejected row.
    assert [row["_line"] for row in read_report(tmp_path / "elsewhere.csv")] == [
        str(i + 1) for i in range(50, 301, 50)
    ]
    valid = {row["id"] for row in rows if row["to_number"] != "bad"}
    assert valid <= set(stored_imported_ids(sandbox))


def test_a_resume_may_move_the_report_and_says_where_the_earlier_rows_are(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = rows_with_late_rejects(200, 20)
    source = write_sends_csv(tmp_path / "s.csv", rows)
    common = ["import-sends", str(source), "--json", "--batch-size", "10"]
    stopped = invoke(
        [*common, "--errors", "first.csv", "--max-rejects", "3"], sandbox=sandbox, cwd=tmp_path
    )
    assert stopped.returncode == 1 and "--max-rejects" in stopped.stderr
    assert "--resume" in stopped.stderr
    earlier = [row["_line"] for row in read_report(tmp_path / "first.csv")]
    assert earlier

    resumed = invoke([*common, "--errors", "second.csv", "--resume"], sandbox=sandbox, cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr
    summary = summary_of(resumed.stdout)
    assert summary["errors_report"] == "second.csv"
    assert any(str(tmp_path / "first.csv") in note for note in summary["notes"])
    later = [row["_line"] for row in read_report(tmp_path / "second.csv")]
    # Every rejected record is in exactly one of the two reports.
    assert sorted(earlier + later, key=int) == [str(i + 1) for i in range(20, 201, 20)]
    assert summary["rejected_local"] == 10


def test_outputs_pointing_at_the_input_are_refused(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1), send_row(2, to_number="bad")])
    before = source.read_bytes()
    for option in ("--errors", "--log-file", "--checkpoint"):
        result = invoke(["import-sends", str(source), option, str(source)], sandbox=sandbox)
        assert result.returncode == 2, result.output
        assert "input file itself" in result.stderr
    assert source.read_bytes() == before
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0


def test_markup_in_a_column_name_is_shown_not_interpreted(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "odd.csv"
    source.write_text(
        "id,to_number,timestamp,Price [/USD]\nz1,+14155550100,2025-01-01T00:00:00Z,3\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLY_")}
    env.update(TRACKLY_BASE_URL=sandbox.url, TRACKLY_API_KEY=DEMO_API_KEY, COLUMNS="120")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "trackly_migrate", "import-sends", str(source)],
        env=env,
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "Price [/USD]" in (child.before or "")
    assert "Traceback" not in (child.before or "")
