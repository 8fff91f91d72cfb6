"""The sandbox command, encodings, exhausted retries, --quiet, and a missing extra."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import (
    SAMPLES,
    default_sigint,
    invoke,
    requests_to,
    send_row,
    summary_of,
    write_sends_csv,
)
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox


def test_the_sandbox_command_prints_its_url_and_serves(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "trackly_migrate", "sandbox", "--port", "0", "--db", "s.db"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
        response = httpx.request(
            "DELETE",
            f"{url}/v2/contacts",
            headers={"X-Api-Key": DEMO_API_KEY},
            json={"phone_number": "+14155559876", "list_number": "+18005551234"},
        )
        assert response.json() == {"success": True, "unsubscribed": True}
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "export TRACKLY_BASE_URL=" in err
    assert "Traceback" not in err
    assert (tmp_path / "s.db").exists()


def test_a_non_loopback_bind_is_warned_about(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: the warning comes first, then
    # the bind fails cleanly; nothing ever listens beyond loopback.
    result = invoke(["sandbox", "--host", "192.0.2.1", "--port", "0"], api_key=None, cwd=tmp_path)
    assert "WARNING" in result.stderr and "192.0.2.1" in result.stderr
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_a_cp1252_semicolon_export(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = tmp_path / "excel.csv"
    source.write_bytes(
        "id;to_number;timestamp;message\r\n"
        "x1;+14155550101;2025-01-01T10:00:00Z;Caf\u00e9 \u20ac5 off\r\n"
        "x2;+14155550102;2025-01-01T10:01:00Z;Cr\u00e8me br\u00fbl\u00e9e\r\n".encode("cp1252")
    )
    wrong = invoke(
        ["import-sends", str(source), "--delimiter", ";", "--json"], sandbox=sandbox, cwd=tmp_path
    )
    assert wrong.returncode == 1
    assert summary_of(wrong.stdout)["rejected_local"] == 2  # not UTF-8: said, not garbled
    assert "--encoding" in (tmp_path / "excel.errors.csv").read_text()
    right = invoke(
        [
            "import-sends",
            str(source),
            "--delimiter",
            ";",
            "--encoding",
            "cp1252",
            "--json",
            "--errors",
            "again.csv",
        ],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert right.returncode == 0, right.stderr
    assert summary_of(right.stdout)["imported"] == 2


def test_retries_exhausted_stop_with_the_summary_so_far(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(fail_rate=1.0)
    source = write_sends_csv(tmp_path / "s.csv", (send_row(i) for i in range(50)))
    result = invoke(
        ["import-sends", str(source), "--json", "--max-retries", "2"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 3
    summary = summary_of(result.stdout)
    assert summary["status"] == "aborted"
    assert summary["pending"] == 50
    assert "HTTP 503" in result.stderr
    assert "To resume" in result.stderr
    assert requests_to(sandbox, "POST /api/v2/history/sends") == 3  # one try, two retries


def test_quiet_prints_no_progress_and_no_table(sandbox: RunningSandbox, tmp_path: Path) -> None:
    result = invoke(
        ["import-sends", str(SAMPLES / "sends.csv"), "--quiet"], sandbox=sandbox, cwd=tmp_path
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "records read" not in result.stderr
    assert " read " not in result.stderr


def test_without_the_sandbox_extra_the_tool_says_what_to_install(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
        "sys.argv = ['trackly-migrate', 'sandbox', '--port', '0']\n"
        "from trackly_migrate.cli import main; main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "pip install 'trackly-migrate[sandbox]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_is_a_clear_error_not_a_traceback(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1), send_row(2, to_number="bad")])
    report_full = invoke(
        ["import-sends", str(source), "--errors", "/dev/full", "--json"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert report_full.returncode == 3
    assert "No space left on device" in report_full.stderr
    assert "Traceback" not in report_full.output
    assert summary_of(report_full.stdout)["status"] == "aborted"
    assert "--resume" in report_full.stderr  # a checkpoint was kept

    log_full = invoke(
        ["import-sends", str(source), "--log-file", "/dev/full", "--json", "--restart"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert log_full.returncode == 1  # the log is lost, the migration is not
    assert "cannot write the log file" in log_full.stderr
    assert "Traceback" not in log_full.output


def test_an_unwritable_report_place_is_refused_before_sending(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    # (A folder that exists is a place: the report goes into it, see test_import_cli.py.)
    place = str(tmp_path / "missing" / "e.csv")
    result = invoke(["import-sends", str(source), "--errors", place], sandbox=sandbox)
    assert result.returncode == 2
    assert "Cannot write the errors report" in result.stderr
    assert requests_to(sandbox, "POST /api/v2/history/sends") == 0
