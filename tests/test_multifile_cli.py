"""Several files in one run (issue 14): folders, patterns, mixed formats, one summary."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.conftest import run_cli
from tests.helpers import (
    SEED_IMPORTED,
    read_report,
    send_row,
    stored_imported_ids,
    summary_of,
    write_sends_csv,
)
from trackly_migrate.sandbox.seed import DEMO_API_KEY


def drop_folder(folder: Path) -> Path:
    """Three parts: CSV, CSV with one bad row, gzipped JSONL; and files that are not parts."""
    folder.mkdir()
    write_sends_csv(folder / "sends-0001.csv", [send_row(i) for i in range(0, 30)])
    bad = [send_row(i) for i in range(30, 60)]
    bad[4]["to_number"] = "+1 555"  # rejected locally, on line 6 of its file
    write_sends_csv(folder / "sends-0002.csv", bad)
    lines = [json.dumps(send_row(i)) for i in range(60, 75)]
    (folder / "sends-0003.jsonl.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    (folder / "README.md").write_text("not an export\n")
    (folder / ".hidden.csv").write_text("id\n1\n")
    return folder


def test_a_folder_is_its_parts_in_order_with_one_summary(sandbox, tmp_path: Path) -> None:
    folder = drop_folder(tmp_path / "drop")
    result = run_cli(["import-sends", str(folder), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # one record rejected: the run's exit code
    summary = summary_of(result.stdout)
    assert (summary["read"], summary["imported"], summary["rejected_local"]) == (75, 74, 1)
    files = summary["files"]
    assert [Path(row["path"]).name for row in files] == [
        "sends-0001.csv",
        "sends-0002.csv",
        "sends-0003.jsonl.gz",
    ]
    assert [row["read"] for row in files] == [30, 30, 15]
    assert [row["rejected"] for row in files] == [0, 1, 0]
    assert all(row["status"] == "completed" for row in files)
    for row in files:  # the identity holds for each file too
        assert row["imported"] + row["duplicates"] + row["rejected"] == row["read"]
    assert sum(row["read"] for row in files) == summary["read"]
    # The run's one report holds the reject, with its file and its line in that file.
    assert files[1]["errors_report"] == summary["errors_report"] is not None
    report = read_report(Path(summary["errors_report"]))
    assert [(row["_file"], row["_line"], row["id"]) for row in report] == [
        (str(folder / "sends-0002.csv"), "6", "t_000034")
    ]
    assert set(stored_imported_ids(sandbox)) - SEED_IMPORTED == {
        f"t_{i:06d}" for i in range(75) if i != 34
    }
    assert "sends-0003.jsonl.gz" in result.stderr  # the terminal breakdown names each file


def test_a_quoted_pattern_is_expanded_by_the_tool(sandbox, tmp_path: Path) -> None:
    folder = drop_folder(tmp_path / "drop")
    pattern = str(folder / "sends-*.csv")
    result = run_cli(["import-sends", pattern, "--json"], sandbox=sandbox, cwd=tmp_path)
    summary = summary_of(result.stdout)
    assert [Path(row["path"]).name for row in summary["files"]] == [
        "sends-0001.csv",
        "sends-0002.csv",
    ]


def test_nothing_to_import_is_a_clear_usage_error(sandbox, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    empty = run_cli(["import-sends", str(tmp_path / "empty")], sandbox=sandbox, cwd=tmp_path)
    assert empty.returncode == 2
    assert "holds no file to import" in empty.stderr
    nothing = run_cli(["import-sends", "exports/none-*.csv"], sandbox=sandbox, cwd=tmp_path)
    assert nothing.returncode == 2
    assert "No file matches exports/none-*.csv" in nothing.stderr
    source = write_sends_csv(tmp_path / "a.csv", [send_row(1)])
    mixed = run_cli(["import-sends", "-", str(source)], sandbox=sandbox, cwd=tmp_path)
    assert mixed.returncode == 2
    assert "stdin" in mixed.stderr
    assert "Traceback" not in empty.stderr + nothing.stderr + mixed.stderr


def test_errors_names_the_runs_one_report_or_its_folder(sandbox, tmp_path: Path) -> None:
    folder = drop_folder(tmp_path / "drop")
    named = run_cli(
        ["import-sends", str(folder), "--errors", "all.csv"], sandbox=sandbox, cwd=tmp_path
    )
    assert named.returncode == 1, named.stderr
    assert [row["id"] for row in read_report(tmp_path / "all.csv")] == ["t_000034"]
    reports = tmp_path / "reports"
    reports.mkdir()
    ok = run_cli(
        ["import-sends", str(folder), "--errors", str(reports)], sandbox=sandbox, cwd=tmp_path
    )
    assert ok.returncode == 1, ok.stderr
    [made] = reports.iterdir()
    assert made.name.startswith("import-sends-") and made.name.endswith("Z.errors.csv")


def test_a_finished_file_holds_no_open_file_or_lock(sandbox, tmp_path: Path) -> None:
    # A drop folder of more small files than the limit of open files: each file's own file
    # and checkpoint lock are released once it is finished, not at the end of the run, and
    # the run's claims on its inputs hold one open file, not one per input. (What is open at
    # once is bounded by the read-ahead: with one row per file, a few dozen files.)
    import os
    import resource
    import subprocess
    import sys

    folder = tmp_path / "many"
    folder.mkdir()
    for part in range(250):
        write_sends_csv(folder / f"sends-{part:04d}.csv", [send_row(part)])

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))

    env = {**os.environ, "TRACKLY_BASE_URL": sandbox.url, "TRACKLY_API_KEY": DEMO_API_KEY}
    completed = subprocess.run(
        [sys.executable, "-m", "trackly_migrate", "import-sends", str(folder), "--json"],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        preexec_fn=low_limit,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    assert summary_of(completed.stdout.decode())["imported"] == 250
