"""A signal at any moment of the start-up: exit 130 or 143, never a traceback (issue 9, 3).

The tests wait for a moment of the start-up (an extension module mapped into the process, a
child process that exists) and signal then; whatever the timing, the outcome must be the same.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import (
    children_of,
    default_sigint,
    requests_to,
    send_row,
    stored_imported_ids,
    summary_of,
    wait_until,
    write_sends_csv,
)
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


def _start(args: list[str], cwd: Path, sandbox: RunningSandbox | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLY_")}
    if sandbox is not None:
        env.update(TRACKLY_BASE_URL=sandbox.url, TRACKLY_API_KEY=DEMO_API_KEY)
    return subprocess.Popen(
        [sys.executable, "-m", "trackly_migrate", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, as under timeout(1) or systemd
        preexec_fn=default_sigint,
    )


def _mapped(pid: int, name: str) -> bool:
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize(("sig", "code"), SIGNALS)
def test_a_signal_during_the_start_up_imports(tmp_path: Path, sig: signal.Signals, code: int):
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(10)])
    process = _start(["import-sends", str(source), "--dry-run"], tmp_path, None)
    # orjson is mapped while cli.py is being imported; typer, rich and httpx come after it.
    wait_until(
        lambda: _mapped(process.pid, "orjson"),
        "orjson was imported",
        process=process,
        interval=0.001,
    )
    os.killpg(process.pid, sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr.decode()
    assert "Traceback" not in stderr.decode()


def _is_sender(command: str) -> bool:
    return "spawn_main" in command  # not multiprocessing's resource tracker


@pytest.mark.parametrize("embedded", [False, True], ids=["server", "--sandbox"])
@pytest.mark.parametrize(("sig", "code"), SIGNALS)
def test_a_signal_to_the_group_while_the_sender_process_starts(
    sandbox: RunningSandbox, tmp_path: Path, sig: signal.Signals, code: int, embedded: bool
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3000)])
    args = ["import-sends", str(source), "--json", "--batch-size", "250"]
    if embedded:
        args += ["--sandbox", "--sandbox-db", str(tmp_path / "embedded.db")]
    process = _start(args, tmp_path, None if embedded else sandbox)
    wait_until(
        lambda: any(map(_is_sender, children_of(process.pid).values())),
        "the sender process was started",
        process=process,
        interval=0.001,
    )
    os.killpg(process.pid, sig)
    stdout, stderr = process.communicate(timeout=60)
    text = stderr.decode()
    assert process.returncode == code, text
    assert "Traceback" not in text
    assert "stopped unexpectedly" not in text
    summary = summary_of(stdout.decode())
    assert summary["status"] == "interrupted"
    if summary["imported"] + summary["duplicates"] + summary["rejected_server"]:
        assert "To resume: trackly-migrate import-sends" in text


def test_an_ignored_sigint_stays_ignored(sandbox_factory, tmp_path: Path) -> None:
    """``nohup`` or a script's ``cmd &`` start the tool with SIGINT ignored: it stays so."""
    sandbox = sandbox_factory(latency=(1.0, 1.0))  # holds the run: it is still going
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3000)])
    checkpoint = tmp_path / "ck.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLY_")}
    env.update(TRACKLY_BASE_URL=sandbox.url, TRACKLY_API_KEY=DEMO_API_KEY)
    args = ["import-sends", str(source), "--json", "--batch-size", "100"]
    process = subprocess.Popen(
        [sys.executable, "-m", "trackly_migrate", *args, "--checkpoint", str(checkpoint)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    wait_until(checkpoint.exists, "the checkpoint was written", process=process, interval=0.001)
    process.send_signal(signal.SIGINT)  # ignored: it would make the exit code 130
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr.decode()
    assert summary_of(stdout.decode())["status"] == "interrupted"


def test_sigterm_to_the_whole_process_group_stops_cleanly(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(latency=(1.0, 1.0))
    rows = [send_row(i) for i in range(4000)]
    source = write_sends_csv(tmp_path / "s.csv", rows)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLY_")}
    env.update(TRACKLY_BASE_URL=sandbox.url, TRACKLY_API_KEY=DEMO_API_KEY)
    args = ["import-sends", str(source), "--json", "--batch-size", "250", "--concurrency", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "trackly_migrate", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as under timeout(1) or systemd
    )
    # One batch answered (the run is going), fifteen still to come at 1 s a round trip.
    wait_until(
        lambda: requests_to(sandbox, "POST /api/v2/history/sends") >= 1,
        "a batch answered",
        process=process,
    )
    os.killpg(process.pid, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr.decode()
    summary = summary_of(stdout.decode())
    assert summary["status"] == "interrupted"
    assert "stopped unexpectedly" not in stderr.decode()
    assert summary["imported"] == len(stored_imported_ids(sandbox)) - 5
