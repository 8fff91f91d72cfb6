"""The real CLI, as a process, importing real files into the real sandbox over HTTP."""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import stat
import threading
from pathlib import Path

import pytest

from tests.helpers import (
    SAMPLES,
    SEED_IMPORTED,
    invoke,
    read_report,
    requests_to,
    send_row,
    stored_click_ids,
    stored_imported_ids,
    summary_of,
    write_sends_csv,
)
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

SENDS_ENDPOINT = "POST /api/v2/history/sends"
ANSI = re.compile(r"\x1b\[")


def sample_ids_rejected(report: list[dict[str, str]]) -> set[str]:
    return {row["_record_id"] for row in report}


def test_samples_import_end_to_end(sandbox: RunningSandbox, tmp_path: Path) -> None:
    before = set(stored_imported_ids(sandbox))
    result = invoke(
        ["import-sends", str(SAMPLES / "sends.csv"), "--json"], sandbox=sandbox, cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr  # some sample rows are meant to be rejected
    summary = summary_of(result.stdout)
    assert summary["read"] == 3000
    assert summary["rejected_local"] == 7
    assert summary["rejected_server"] == 2
    assert summary["duplicates"] == 1  # the sample repeats one id
    assert summary["unaccounted"] == 0
    report_path = tmp_path / "sends.errors.csv"
    assert summary["errors_report"] == "sends.errors.csv"
    assert stat.S_IMODE(report_path.stat().st_mode) == 0o600
    report = read_report(report_path)
    assert len(report) == summary["rejected_local"] + summary["rejected_server"]
    assert all(row["_line"].isdigit() for row in report)
    assert [int(row["_line"]) for row in report] == sorted(int(row["_line"]) for row in report)
    assert {row["_stage"] for row in report} == {"local", "server"}

    with (SAMPLES / "sends.csv").open(newline="") as handle:
        all_ids = {row["id"] for row in csv.DictReader(handle)} - {""}
    stored = set(stored_imported_ids(sandbox)) - before
    assert stored == all_ids - sample_ids_rejected(report)
    assert len(stored) == summary["imported"]

    clicks = invoke(
        ["import-clicks", str(SAMPLES / "clicks.jsonl"), "--json"], sandbox=sandbox, cwd=tmp_path
    )
    assert clicks.returncode == 1, clicks.stderr
    click_summary = summary_of(clicks.stdout)
    assert click_summary["read"] == 1501  # the broken line is a record too
    click_report = read_report(tmp_path / "clicks.errors.csv")
    assert len(click_report) == click_summary["rejected_local"] + click_summary["rejected_server"]
    codes = {row["_code"] for row in click_report}
    assert {"invalid_json", "message_not_found", "offer_not_found", "invalid_phone"} <= codes
    assert len(stored_click_ids(sandbox)) >= click_summary["imported"]


def test_a_clean_file_exits_zero_and_writes_no_report(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "clean.csv", (send_row(i) for i in range(50)))
    result = invoke(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["imported"] == 50
    assert not (tmp_path / "clean.errors.csv").exists()
    again = invoke(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert again.returncode == 0
    summary = summary_of(again.stdout)
    assert (summary["imported"], summary["duplicates"], summary["duplicates_after_retry"]) == (
        0,
        50,
        0,
    )


def test_errors_naming_a_folder_puts_the_default_report_in_it(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = [send_row(i) for i in range(5)]
    rows[2]["to_number"] = "+1 555"  # rejected locally, line 4
    source = write_sends_csv(tmp_path / "export.csv", rows)
    reports = tmp_path / "reports"
    reports.mkdir()
    args = ["import-sends", str(source), "--json", "--errors", str(reports)]
    result = invoke(args, sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    made = reports / "export.errors.csv"
    assert summary_of(result.stdout)["errors_report"] == str(made)
    assert [(row["_line"], row["id"]) for row in read_report(made)] == [("4", "t_000002")]
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert not (tmp_path / "export.errors.csv").exists()


def test_jsonl_from_stdin_and_gzip(sandbox: RunningSandbox, tmp_path: Path) -> None:
    lines = "\n".join(json.dumps(send_row(i)) for i in range(30)) + "\n"
    piped = invoke(
        ["import-sends", "-", "--format", "jsonl", "--json", "--errors", "piped.errors.csv"],
        sandbox=sandbox,
        stdin=lines,
        cwd=tmp_path,
    )
    assert piped.returncode == 0, piped.stderr
    assert summary_of(piped.stdout)["imported"] == 30

    packed = tmp_path / "more.jsonl.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write("\n".join(json.dumps(send_row(i)) for i in range(30, 70)) + "\n")
    zipped = invoke(["import-sends", str(packed), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert zipped.returncode == 0, zipped.stderr
    assert summary_of(zipped.stdout)["imported"] == 40
    assert len(stored_imported_ids(sandbox)) == 5 + 70  # the seed's 5 imported sends + ours


def test_stdin_without_format_is_a_usage_error(sandbox: RunningSandbox) -> None:
    result = invoke(["import-sends", "-"], sandbox=sandbox, stdin="")
    assert result.returncode == 2
    assert "--format" in result.stderr
    assert "Traceback" not in result.output


def test_another_platforms_export_with_map(sandbox: RunningSandbox, tmp_path: Path) -> None:
    export = SAMPLES / "other-platform" / "messages_export.csv"
    args = [
        "import-sends",
        str(export),
        "--map",
        "id=MessageID",
        "--map",
        "to_number=Recipient",
        "--map",
        "timestamp=SentAt",
        "--map",
        "list_number=SenderNumber",
        "--map",
        "message=Body",
        "--map",
        "send_type=Campaign",
        "--map",
        "delivered=Delivered",
        "--map",
        "length=Characters",
        "--default-region",
        "US",
        "--timezone",
        "America/New_York",
        "--json",
    ]
    result = invoke(args, sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["imported"] == 400
    assert "Segments, Carrier" in result.stderr  # the unused columns, named once


def test_a_missing_required_column_stops_before_anything_is_sent(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    export = SAMPLES / "other-platform" / "messages_export.csv"
    result = invoke(["import-sends", str(export)], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 2
    assert "Columns found: MessageID, Recipient" in result.stderr
    assert "--map id=<column>" in result.stderr
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0


def test_more_than_100_failures_in_one_batch_are_all_itemized(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = [
        send_row(i, list_number="", list_id="999") if i % 3 == 0 else send_row(i)
        for i in range(900)
    ]
    source = write_sends_csv(tmp_path / "many.csv", rows)
    result = invoke(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    summary = summary_of(result.stdout)
    assert summary["rejected_server"] == 300
    assert summary["imported"] == 600
    assert summary["itemize_requests"] == 2  # 300 failures: three answers of 100
    report = read_report(tmp_path / "many.errors.csv")
    assert len(report) == 300
    assert {row["_code"] for row in report} == {"list_not_found"}
    assert {int(row["_line"]) for row in report} == {i + 2 for i in range(0, 900, 3)}


@pytest.mark.parametrize(
    ("faults", "check"),
    [
        ({"fail_rate": 0.3, "fault_seed": 7}, "fail"),
        ({"rate_limit": 4.0}, "rate_limited"),
        ({"drop_rate": 0.3, "fault_seed": 3}, "drop"),
    ],
)
def test_faults_from_the_sandbox_lose_and_double_nothing(
    sandbox_factory, tmp_path: Path, faults: dict[str, object], check: str
) -> None:
    sandbox = sandbox_factory(**faults)
    rows = [send_row(i) for i in range(2400)]
    rows[5]["to_number"] = "+1 555 000"  # one local rejection
    rows[1500]["list_id"], rows[1500]["list_number"] = "999", ""  # one server rejection
    source = write_sends_csv(tmp_path / "faulty.csv", rows)
    result = invoke(
        ["import-sends", str(source), "--json", "--batch-size", "200", "--concurrency", "4"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    summary = summary_of(result.stdout)
    assert summary["unaccounted"] == 0
    assert summary["rejected_local"] == 1
    assert summary["rejected_server"] == 1
    assert summary["imported"] + summary["duplicates"] == 2398
    assert summary["duplicates"] == summary["duplicates_after_retry"]  # all were ours
    assert summary["retries"] > 0
    assert sandbox.stats()["faults"][check] > 0
    expected = {row["id"] for i, row in enumerate(rows) if i not in (5, 1500)}
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored))
    assert set(stored) - SEED_IMPORTED == expected
    assert "Traceback" not in result.output


def test_the_api_key_never_appears_in_output_or_files(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = [send_row(i) for i in range(20)] + [send_row(99, to_number="nope")]
    source = write_sends_csv(tmp_path / "s.csv", rows)
    log = tmp_path / "run.log"
    result = invoke(
        ["import-sends", str(source), "--json", "--log-file", str(log)],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert DEMO_API_KEY not in result.output
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    for path in written:
        assert DEMO_API_KEY not in path.read_text(errors="replace"), path
    assert "summary" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_wrong_key_stops_at_once_with_exit_3(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", (send_row(i) for i in range(3000)))
    wrong = "trk_" + "x" * 32
    result = invoke(["import-sends", str(source), "--json"], sandbox=sandbox, api_key=wrong)
    assert result.returncode == 3
    assert "key was refused" in result.stderr
    assert wrong not in result.output
    assert "Traceback" not in result.output
    assert summary_of(result.stdout)["imported"] == 0


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--batch-size", "1001"], {}, "--batch-size"),
        ([], {"TRACKLY_API_KEY": "trk_short"}, "does not look like a Trackly key"),
        ([], {"TRACKLY_BASE_URL": "http://api.example.com/api"}, "Refusing plain http"),
        (["--timezone", "Mars/Base"], {}, "Unknown time zone"),
        (["--map", "nonsense"], {}, "FIELD=COLUMN"),
    ],
)
def test_usage_errors_exit_2_and_send_nothing(
    sandbox: RunningSandbox, tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    result = invoke(["import-sends", str(source), *args], sandbox=sandbox, env=env)
    assert result.returncode == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0


def test_missing_file_and_unreachable_server(tmp_path: Path) -> None:
    missing = invoke(["import-sends", str(tmp_path / "nope.csv")], api_key=DEMO_API_KEY)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    unreachable = invoke(
        ["import-sends", str(source), "--max-retries", "1"],
        env={"TRACKLY_BASE_URL": "http://127.0.0.1:9/api"},
    )
    assert unreachable.returncode == 3
    assert "Cannot connect to 127.0.0.1" in unreachable.stderr
    assert "Traceback" not in unreachable.output


def test_dry_run_sends_nothing_and_reports_the_same(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    result = invoke(
        ["import-sends", str(SAMPLES / "sends.csv"), "--dry-run", "--json"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    summary = summary_of(result.stdout)
    assert summary["pending"] == 2993 and summary["rejected_local"] == 7
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0
    assert len(read_report(tmp_path / "sends.errors.csv")) == 7


def test_embedded_sandbox_needs_no_key_and_no_server(tmp_path: Path) -> None:
    db = tmp_path / "rehearsal.db"
    sends = invoke(
        ["import-sends", str(SAMPLES / "sends.csv"), "--sandbox", "--sandbox-db", str(db), "-q"],
        api_key=None,
        cwd=tmp_path,
    )
    assert sends.returncode == 1, sends.stderr
    clicks = invoke(
        [
            "import-clicks",
            str(SAMPLES / "clicks.jsonl"),
            "--sandbox",
            "--sandbox-db",
            str(db),
            "--json",
        ],
        api_key=None,
        cwd=tmp_path,
    )
    assert clicks.returncode == 1, clicks.stderr
    # The clicks found the sends of the first run: only the planted bad rows failed.
    summary = summary_of(clicks.stdout)
    assert summary["imported"] == 1491
    assert summary["rejected_local"] + summary["rejected_server"] == 10


def test_a_fixed_errors_report_imports_back(sandbox: RunningSandbox, tmp_path: Path) -> None:
    rows = [send_row(i) for i in range(10)]
    rows[3]["to_number"] = "4155550100"  # national: needs --default-region
    rows[6]["message"] = '=HYPERLINK("https://example.com")'
    rows[6]["timestamp"] = "2025-01-01 10:00:00"  # naive: needs --timezone
    source = write_sends_csv(tmp_path / "s.csv", rows)
    first = invoke(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert summary_of(first.stdout)["rejected_local"] == 2
    report = tmp_path / "s.errors.csv"
    assert "'=HYPERLINK" in report.read_text()
    second = invoke(
        [
            "import-sends",
            str(report),
            "--default-region",
            "US",
            "--timezone",
            "UTC",
            "--json",
            "--errors",
            "again.errors.csv",
        ],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr
    assert summary_of(second.stdout)["imported"] == 2
    assert "ignoring column" not in second.stderr


def test_output_without_a_terminal_has_no_colour_codes(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    result = invoke(
        ["import-sends", str(SAMPLES / "sends.csv")],
        sandbox=sandbox,
        cwd=tmp_path,
        env={"NO_COLOR": "", "TERM": "xterm-256color"},
    )
    assert result.returncode == 1
    assert not ANSI.search(result.stderr)
    assert result.stdout == ""
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ read ", result.stderr, re.M)


def test_a_named_pipe_is_read_like_stdin(sandbox: RunningSandbox, tmp_path: Path) -> None:
    fifo = tmp_path / "stream.csv"
    os.mkfifo(fifo)
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(20)])

    def feed() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(source.read_bytes())

    threading.Thread(target=feed, daemon=True).start()
    result = invoke(["import-sends", str(fifo), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["imported"] == 20
