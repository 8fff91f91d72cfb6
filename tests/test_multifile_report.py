"""One errors report for a run over several files (issue 14, item 2): ``_file`` and ``_line``.

End to end against the sandbox over HTTP, with real files; a kill -9 inside the second file
is waited for by the checkpoint files, never by a time.
"""

from __future__ import annotations

import csv
import gzip
import json
import signal
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.helpers import (
    SEED_IMPORTED,
    file_offset,
    read_report,
    send_row,
    start_cli,
    stored_imported_ids,
    summary_of,
    wait_until,
    write_sends_csv,
)

UNKNOWN_LIST = "+14155559999"  # a well-formed number that is no list of the account


def mixed_parts(folder: Path) -> list[Path]:
    """A clean CSV, a CSV with its columns in another order plus one of its own and two bad
    rows (one local, one the server rejects), and a gzipped JSONL part with one bad row."""
    folder.mkdir()
    first = write_sends_csv(folder / "sends-1.csv", [send_row(i) for i in range(10)])
    rows = [send_row(i, note=f"n{i}") for i in range(10, 20)]
    rows[2]["to_number"] = "+1 555"  # line 4 of its file, rejected before sending
    rows[5]["list_number"] = UNKNOWN_LIST  # line 7, rejected by the server
    second = folder / "sends-2.csv"
    with second.open("w", newline="", encoding="utf-8") as handle:
        names = ["message", "id", "note", "timestamp", "to_number", "list_number", "list_id"]
        writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    items = [send_row(i) for i in range(20, 26)]
    items[3]["timestamp"] = "yesterday"  # line 4 of the JSONL part
    third = folder / "sends-3.jsonl.gz"
    third.write_bytes(gzip.compress("".join(json.dumps(item) + "\n" for item in items).encode()))
    return [first, second, third]


def test_one_report_for_the_run_with_each_rows_file_and_line(sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    files = mixed_parts(folder)
    result = run_cli(["import-sends", str(folder), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    summary = summary_of(result.stdout)
    assert (summary["read"], summary["rejected_local"], summary["rejected_server"]) == (26, 2, 1)
    for row in summary["files"]:  # the identity holds for each file
        assert row["imported"] + row["duplicates"] + row["rejected"] == row["read"]
    assert [row["rejected"] for row in summary["files"]] == [0, 2, 1]
    # One report, in the current folder, named for the run; every file's row points at it.
    reports = list(tmp_path.glob("import-sends-*.errors.csv"))
    assert len(reports) == 1, reports
    report = reports[0]
    assert summary["errors_report"] == report.name  # as a one-file run names its own
    assert [row["errors_report"] for row in summary["files"]] == [None, report.name, report.name]
    assert report.stat().st_mode & 0o777 == 0o600
    header = report.read_text().splitlines()[0].split(",")
    assert header[:6] == ["_file", "_line", "_record_id", "_stage", "_code", "_message"]
    # The union of the files' columns, in order of appearance: the JSONL part's are the
    # fields (as a one-file report of JSONL has them), and its _raw comes last.
    assert header[6:] == [
        *["id", "to_number", "timestamp", "list_number", "list_id", "message", "note"],
        *["send_type", "delivered", "length", "creative_id", "_raw"],
    ]
    rows = read_report(report)
    assert [(row["_file"], row["_line"], row["id"], row["_stage"]) for row in rows] == [
        (str(files[1]), "4", "t_000012", "local"),
        (str(files[1]), "7", "t_000015", "server"),
        (str(files[2]), "4", "t_000023", "local"),
    ]
    # Each file's cells are under their own columns, whatever the file's order of them.
    assert rows[0]["note"] == "n12" and rows[0]["to_number"] == "'+1 555"  # spreadsheet-safe
    assert rows[1]["list_number"] == UNKNOWN_LIST and rows[1]["message"] == "hello 15"
    assert rows[2]["timestamp"] == "yesterday" and rows[2]["note"] == ""

    # Fixed in place and fed back in as one file: the _ columns are ignored, the rows import.
    rows[0]["to_number"] = "+14155550012"
    rows[1]["list_number"] = "+14155551234"
    rows[2]["timestamp"] = "2025-01-01T00:00:23Z"
    fixed = tmp_path / "fixed.csv"
    with fixed.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    again = run_cli(["import-sends", str(fixed), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert summary_of(again.stdout)["imported"] == 3
    assert "_file" not in again.stderr  # not even as an ignored column
    assert set(stored_imported_ids(sandbox)) - SEED_IMPORTED == {f"t_{i:06d}" for i in range(26)}


def test_errors_file_folder_and_jsonl(sandbox, tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    files = mixed_parts(folder)
    named = run_cli(
        ["import-sends", str(folder), "--errors", "run.jsonl", "--json"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert named.returncode == 1, named.stderr
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    rows: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert [(row["_file"], row["_line"], row["id"]) for row in rows] == [
        (str(files[1]), 4, "t_000012"),
        (str(files[1]), 7, "t_000015"),
        (str(files[2]), 4, "t_000023"),
    ]
    assert rows[0]["note"] == "n12"  # a JSONL report keeps each file's own keys

    # An existing report is never replaced without --force (a finished run's, here).
    refused = run_cli(
        ["import-sends", str(folder), "--errors", "run.jsonl"], sandbox=sandbox, cwd=tmp_path
    )
    assert refused.returncode == 2
    assert "already exists" in refused.stderr
    assert (tmp_path / "run.jsonl").read_text().splitlines() == lines

    reports = tmp_path / "reports"
    reports.mkdir()
    nightly = ["import-sends", str(folder), "--errors", str(reports), "--json"]
    first = run_cli(nightly, sandbox=sandbox, cwd=tmp_path)
    second = run_cli(nightly, sandbox=sandbox, cwd=tmp_path)
    assert first.returncode == second.returncode == 1, first.stderr + second.stderr
    # Two nights, two reports named for their runs, neither replacing the other.
    made = sorted(reports.iterdir())
    assert len(made) == 2 and all(p.name.startswith("import-sends-") for p in made), made
    assert {
        Path(summary_of(first.stdout)["errors_report"]).resolve(),
        Path(summary_of(second.stdout)["errors_report"]).resolve(),
    } == set(made)


PER_FILE = 2000
BATCH = 100
BAD_EVERY = 50  # a rejected row every 50: 40 a file


def bad_parts(folder: Path) -> None:
    folder.mkdir()
    for n in range(3):
        rows = [send_row(i) for i in range(n * PER_FILE, (n + 1) * PER_FILE)]
        for i in range(0, PER_FILE, BAD_EVERY):
            rows[i]["to_number"] = "+1 555"
        write_sends_csv(folder / f"part-{n}.csv", rows)


def test_resume_after_kill_9_in_the_second_file_appends_without_doubles(
    sandbox_factory, tmp_path: Path
) -> None:
    bad_parts(tmp_path / "drop")
    checkpoint = tmp_path / "ck.json"
    args = ["import-sends", str(tmp_path / "drop"), "--json", "--batch-size", str(BATCH)]
    args += ["--concurrency", "2", "--checkpoint", str(checkpoint)]
    sandbox = sandbox_factory(latency=(0.2, 0.2))
    process = start_cli(args, sandbox, tmp_path)
    half = (tmp_path / "drop" / "part-1.csv").stat().st_size // 2
    wait_until(
        lambda: file_offset(checkpoint, "part-1.csv") > half, "the second file", process=process
    )
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL
    state = json.loads(checkpoint.read_bytes())
    report = Path(state["report_path"])
    assert report.parent == tmp_path and report.name.startswith("import-sends-")

    resumed = run_cli([*args, "--resume"], sandbox=sandbox, cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr
    summary = summary_of(resumed.stdout)
    assert summary["errors_report"] == str(report)  # the same report, continued
    assert summary["rejected_local"] == 3 * PER_FILE // BAD_EVERY
    assert list(tmp_path.glob("import-sends-*.errors.csv")) == [report]
    rows = read_report(report)
    keys = [(Path(row["_file"]).name, int(row["_line"])) for row in rows]
    expected = [(f"part-{n}.csv", i + 2) for n in range(3) for i in range(0, PER_FILE, BAD_EVERY)]
    assert keys == expected  # every rejected row once, in order, with its file and line
    assert report.read_text().count("_file,_line") == 1


def test_restart_after_kill_9_replaces_the_runs_own_report(sandbox_factory, tmp_path: Path) -> None:
    bad_parts(tmp_path / "drop")
    checkpoint = tmp_path / "ck.json"
    args = ["import-sends", str(tmp_path / "drop"), "--json", "--batch-size", str(BATCH)]
    args += ["--concurrency", "2", "--checkpoint", str(checkpoint)]
    sandbox = sandbox_factory(latency=(0.2, 0.2))
    process = start_cli(args, sandbox, tmp_path)
    wait_until(
        lambda: file_offset(checkpoint, "part-1.csv") > 0, "the second file", process=process
    )
    process.kill()
    process.wait()
    report = Path(json.loads(checkpoint.read_bytes())["report_path"])
    assert report.exists()

    restarted = run_cli([*args, "--restart"], sandbox=sandbox, cwd=tmp_path)
    assert restarted.returncode == 1, restarted.stderr
    summary = summary_of(restarted.stdout)
    assert summary["read"] == 3 * PER_FILE
    assert summary["rejected_local"] == 3 * PER_FILE // BAD_EVERY
    # The killed run's report is the restarted run's own: replaced without --force, and
    # every rejected row is in it once, not once per attempt.
    reports = list(tmp_path.glob("import-sends-*.errors.csv"))
    assert reports == [Path(summary["errors_report"])]
    rows = read_report(reports[0])
    keys = [(Path(row["_file"]).name, int(row["_line"])) for row in rows]
    expected = [(f"part-{n}.csv", i + 2) for n in range(3) for i in range(0, PER_FILE, BAD_EVERY)]
    assert keys == expected
