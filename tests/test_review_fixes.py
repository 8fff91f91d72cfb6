"""Regressions found in review: outputs over the input, stuck checkpoints, signals, pipes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pexpect

from tests.conftest import run_cli
from tests.helpers import requests_to, send_row, stored_imported_ids, summary_of, write_sends_csv
from trackly_migrate.checkpoint import Checkpoint, CheckpointWriter, InputIdentity
from trackly_migrate.counts import Counts
from trackly_migrate.errors import OutputError
from trackly_migrate.pipeline.settle import deliver
from trackly_migrate.responses import BulkResult, Delivery, ItemError
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

SENDS_ENDPOINT = "POST /api/v2/history/sends"


def test_outputs_pointing_at_the_input_are_refused(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1), send_row(2, to_number="bad")])
    before = source.read_bytes()
    for option in ("--errors", "--log-file", "--checkpoint"):
        result = run_cli(["import-sends", str(source), option, str(source)], sandbox=sandbox)
        assert result.returncode == 2, result.output
        assert "input file itself" in result.stderr
    assert source.read_bytes() == before
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0


def test_a_failed_bulk_unsubscribe_can_simply_be_run_again(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "optouts.csv"
    source.write_text("phone_number,list_number\n+14155559876,+18005551234\n")
    wrong = run_cli(
        ["unsubscribe", "--file", str(source)], sandbox=sandbox, api_key="trk_" + "9" * 32
    )
    assert wrong.returncode == 3
    assert "--resume" not in wrong.stderr
    assert "run the same command again" in wrong.stderr
    right = run_cli(["unsubscribe", "--file", str(source), "--json"], sandbox=sandbox)
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["unsubscribed"] == 1


def test_a_mismatched_answer_while_itemizing_counts_nothing_twice() -> None:
    class Server:
        def __init__(self) -> None:
            self.round = 0

        def import_batch(self, kind: str, body: bytes, count: int) -> Delivery:
            self.round += 1
            if self.round == 1:  # 100 stored, 200 failed, 100 itemized
                errors = tuple(ItemError(i, "invalid_phone", "bad") for i in range(100, 200))
                return Delivery(BulkResult(100, 200, 0, None, errors), 1, False)
            return Delivery(BulkResult(0, 0, 0, None, ()), 1, False)  # adds up to nothing

    settlement = deliver(Server(), "sends", [{"id": str(i)} for i in range(300)])
    settled = (
        settlement.counts.imported + len(settlement.rejections) + settlement.counts.unaccounted
    )
    assert settled + settlement.counts.duplicates == 300
    assert (
        settlement.counts.imported,
        len(settlement.rejections),
        settlement.counts.unaccounted,
    ) == (
        100,
        100,
        100,
    )


def test_a_checkpoint_that_cannot_be_written_is_an_error_not_a_hang(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    base = Checkpoint(
        command="import-sends",
        identity=InputIdentity.of(str(source)),
        options={},
        offset=0,
        line=1,
        totals={},
        report_path=None,
        report_size=0,
    )
    writer = CheckpointWriter(blocker / "cp.json", base)
    writer.advance(10, 2, Counts(read=1), 0.0, 0)
    done = threading.Event()
    raised: list[BaseException] = []

    def flush() -> None:
        try:
            writer.flush()
        except OutputError as exc:
            raised.append(exc)
        done.set()

    threading.Thread(target=flush, daemon=True).start()
    assert done.wait(60)
    assert raised and "Cannot write the checkpoint" in str(raised[0])
    writer.close()  # does not hang, does not raise again


def test_restart_discards_an_unreadable_checkpoint(sandbox: RunningSandbox, tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    checkpoint = tmp_path / "cp.json"
    checkpoint.write_text('{"version": 2}')
    refused = run_cli(
        ["import-sends", str(source), "--checkpoint", str(checkpoint)], sandbox=sandbox
    )
    assert refused.returncode == 2 and "--restart" in refused.stderr
    restarted = run_cli(
        ["import-sends", str(source), "--checkpoint", str(checkpoint), "--restart"],
        sandbox=sandbox,
    )
    assert restarted.returncode == 0, restarted.stderr


def test_a_checkpoint_place_that_cannot_be_used_is_a_clear_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    result = run_cli(
        ["import-sends", str(source), "--checkpoint", str(source / "cp.json")], sandbox=sandbox
    )
    assert result.returncode == 2
    assert "Cannot keep a checkpoint" in result.stderr
    assert "Traceback" not in result.output


def test_a_named_pipe_is_read_like_stdin(sandbox: RunningSandbox, tmp_path: Path) -> None:
    fifo = tmp_path / "stream.csv"
    os.mkfifo(fifo)
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(20)])

    def feed() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(source.read_bytes())

    threading.Thread(target=feed, daemon=True).start()
    result = run_cli(["import-sends", str(fifo), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["imported"] == 20


def test_after_an_all_rejected_stop_a_corrected_run_starts_over(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = [send_row(i, timestamp="2025-01-01 10:00:00") for i in range(1500)]
    source = write_sends_csv(tmp_path / "naive.csv", rows)
    stopped = run_cli(["import-sends", str(source)], sandbox=sandbox, cwd=tmp_path)
    assert stopped.returncode == 1 and "all of the first" in stopped.stderr
    fixed = run_cli(
        ["import-sends", str(source), "--timezone", "UTC", "--json", "--errors", "e.csv"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert fixed.returncode == 0, fixed.stderr
    assert summary_of(fixed.stdout)["imported"] == 1500


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
    deadline = time.monotonic() + 60
    while requests_to(sandbox, "POST /api/v2/history/sends") < 1:
        assert process.poll() is None and time.monotonic() < deadline, "the run ended early"
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr.decode()
    summary = summary_of(stdout.decode())
    assert summary["status"] == "interrupted"
    assert "stopped unexpectedly" not in stderr.decode()
    assert summary["imported"] == len(stored_imported_ids(sandbox)) - 5


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
