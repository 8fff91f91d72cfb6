"""Crash-safe resume and life in cron: real processes, real signals, the real sandbox."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import (
    SEED_IMPORTED,
    LineWatcher,
    invoke,
    requests_to,
    run_cli,
    send_row,
    start_cli,
    stored_imported_ids,
    summary_of,
    wait_until,
    write_sends_csv,
)
from trackly_migrate.checkpoint import Checkpoint, InputIdentity
from trackly_migrate.checkpoint_writer import CheckpointWriter
from trackly_migrate.counts import Counts
from trackly_migrate.errors import OutputError
from trackly_migrate.pipeline.engine import READ_AHEAD_SEGMENTS
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

SENDS_ENDPOINT = "POST /api/v2/history/sends"
RECORDS = 6000
BATCH = 250
CONCURRENCY = 4
# A latency that holds a run: after any checkpoint the test waits for, at least one more round
# of requests (this long) is still to come, so the run is surely going when it is signalled.
HOLD = (0.5, 0.5)


def messy_rows(count: int = RECORDS) -> list[dict[str, str]]:
    rows = [send_row(i) for i in range(count)]
    for i in range(0, count, 97):
        rows[i]["to_number"] = "+1 555"  # rejected locally
    for i in range(50, count, 301):
        rows[i]["list_number"], rows[i]["list_id"] = "", "999"  # rejected by the server
    for i in range(10, count, 500):
        rows[i]["message"] = "two\nlines"  # records that span lines
    return rows


def valid_ids(rows: list[dict[str, str]]) -> set[str]:
    return {
        row["id"] for row in rows if row["to_number"] != "+1 555" and row.get("list_id") != "999"
    }


def wait_for_checkpoint(path: Path, process: subprocess.Popen[bytes], min_offset: int) -> None:
    def progressed() -> bool:
        try:
            checkpoint = json.loads(path.read_bytes())
        except (FileNotFoundError, ValueError):
            return False
        return bool(checkpoint["submitted_until"] > 0 and checkpoint["offset"] >= min_offset)

    wait_until(progressed, "checkpoint progress", process=process)


def import_args(source: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [
        "import-sends",
        str(source),
        "--json",
        "--batch-size",
        str(BATCH),
        "--concurrency",
        str(CONCURRENCY),
        "--checkpoint",
        str(checkpoint),
        *extra,
    ]


@pytest.fixture
def reference(sandbox_factory, tmp_path: Path) -> tuple[dict[str, int], str]:
    """An uninterrupted run of the same file: the totals and report to match."""
    folder = tmp_path / "reference"
    folder.mkdir()
    source = write_sends_csv(folder / "history.csv", messy_rows())
    sandbox = sandbox_factory()
    result = invoke(import_args(source, folder / "ck.json"), sandbox=sandbox, cwd=folder)
    assert result.returncode == 1, result.stderr
    return summary_of(result.stdout), (folder / "history.errors.csv").read_text()


@pytest.mark.parametrize("fraction", [0.0, 0.35, 0.7])
def test_kill_9_then_resume_stores_every_record_once(
    sandbox_factory, tmp_path: Path, fraction: float, reference: tuple[dict[str, int], str]
) -> None:
    rows = messy_rows()
    source = write_sends_csv(tmp_path / "history.csv", rows)
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=HOLD, fault_seed=1)
    process = start_cli(import_args(source, checkpoint), sandbox, tmp_path)
    wait_for_checkpoint(checkpoint, process, int(source.stat().st_size * fraction))
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL

    resumed = invoke(import_args(source, checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr
    summary = summary_of(resumed.stdout)
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored))
    assert set(stored) - SEED_IMPORTED == valid_ids(rows)

    # Only batches past the watermark at the kill were sent twice: at most the requests in
    # flight, answered ones still waiting for an earlier batch, and the segments read ahead
    # (never more than the concurrency plus the read-ahead), plus one checkpoint write the
    # kill may have overtaken.
    sent = len(valid_ids(rows) | {r["id"] for r in rows if r.get("list_id") == "999"})
    batches = -(-sent // BATCH)
    resent_at_most = CONCURRENCY + READ_AHEAD_SEGMENTS + 1
    assert requests_to(sandbox, SENDS_ENDPOINT) <= batches + resent_at_most

    expected, expected_report = reference
    for name in ("read", "rejected_local", "rejected_server", "unaccounted", "pending"):
        assert summary[name] == expected[name], name
    assert summary["imported"] + summary["duplicates"] == expected["imported"]
    assert summary["duplicates"] == summary["duplicates_after_retry"]
    assert (tmp_path / "history.errors.csv").read_text() == expected_report
    assert not checkpoint.exists()  # a finished run removes it


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_cleanly_and_resume(
    sandbox_factory, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    rows = messy_rows()
    source = write_sends_csv(tmp_path / "history.csv", rows)
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=HOLD)
    process = start_cli(import_args(source, checkpoint), sandbox, tmp_path)
    wait_for_checkpoint(checkpoint, process, 1)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr.decode()
    text = stderr.decode()
    assert "Traceback" not in text
    assert "To resume: trackly-migrate import-sends" in text and "--resume" in text
    interrupted = summary_of(stdout.decode())
    assert interrupted["status"] == "interrupted"
    assert 0 < interrupted["read"] < RECORDS
    assert checkpoint.exists()
    assert DEMO_API_KEY not in checkpoint.read_text()

    resumed = invoke(import_args(source, checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr
    summary = summary_of(resumed.stdout)
    assert summary["read"] == RECORDS
    assert summary["resumed_from_line"] > 1
    assert set(stored_imported_ids(sandbox)) - SEED_IMPORTED == valid_ids(rows)
    # Ctrl-C let the requests in flight finish: nothing was sent twice.
    assert summary["duplicates"] == 0


def test_a_changed_input_is_refused_and_restart_starts_over(
    sandbox_factory, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "history.csv", messy_rows())
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=HOLD)
    process = start_cli(import_args(source, checkpoint), sandbox, tmp_path)
    wait_for_checkpoint(checkpoint, process, 1)
    process.kill()
    process.wait()

    plain_rerun = invoke(import_args(source, checkpoint), sandbox=sandbox, cwd=tmp_path)
    assert plain_rerun.returncode == 2
    assert "--resume" in plain_rerun.stderr and "--restart" in plain_rerun.stderr

    other_options = invoke(
        import_args(source, checkpoint, "--resume", "--default-region", "US"),
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert other_options.returncode == 2
    assert "default_region" in other_options.stderr

    with source.open("a") as handle:
        handle.write("t_new,+14155550000,2025-01-01T00:00:00Z,+14155551234,,late\n")
    changed = invoke(import_args(source, checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path)
    assert changed.returncode == 2
    assert "has changed" in changed.stderr

    restarted = invoke(import_args(source, checkpoint, "--restart"), sandbox=sandbox, cwd=tmp_path)
    assert restarted.returncode == 1, restarted.stderr
    summary = summary_of(restarted.stdout)
    assert summary["read"] == RECORDS + 1
    assert summary["duplicates"] > 0  # what the killed run stored comes back as duplicates
    assert not checkpoint.exists()


def test_two_runs_on_one_checkpoint_the_second_is_refused(sandbox_factory, tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "history.csv", messy_rows())
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=HOLD)
    first = start_cli(import_args(source, checkpoint), sandbox, tmp_path)
    wait_for_checkpoint(checkpoint, first, 1)
    # Frozen, it holds its lock for as long as the test needs: it cannot finish meanwhile.
    first.send_signal(signal.SIGSTOP)
    second = invoke(import_args(source, checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path)
    assert second.returncode == 2
    # Refused by the claim on the file, before its checkpoint's lock is even tried.
    assert "Another trackly-migrate run is importing" in second.stderr
    first.kill()
    first.wait()
    # The killed run's lock does not block the next one.
    third = invoke(import_args(source, checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path)
    assert third.returncode == 1, third.stderr


def test_resume_needs_a_file(sandbox: RunningSandbox) -> None:
    result = invoke(
        ["import-sends", "-", "--format", "csv", "--resume"], sandbox=sandbox, stdin="id\n"
    )
    assert result.returncode == 2
    assert "stdin" in result.stderr


def test_resume_without_a_checkpoint_says_so_and_runs(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(5)])
    result = invoke(["import-sends", str(source), "--resume", "--json"], sandbox=sandbox)
    assert result.returncode == 0
    assert "no checkpoint" in result.stderr
    assert summary_of(result.stdout)["imported"] == 5


def test_all_rejected_stops_early_by_default(sandbox: RunningSandbox, tmp_path: Path) -> None:
    rows = [send_row(i, timestamp="2025-01-01 10:00:00") for i in range(5000)]  # no offset
    source = write_sends_csv(tmp_path / "naive.csv", rows)
    result = invoke(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 1
    assert "all of the first" in result.stderr
    assert "--timezone" in result.stderr
    summary = summary_of(result.stdout)
    assert summary["read"] < 5000
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0


@pytest.mark.parametrize("limit", ["10", "1%"])
def test_max_rejects_stops_early(sandbox: RunningSandbox, tmp_path: Path, limit: str) -> None:
    # The ratio is judged from 1,000 settled records on (10 batches of 100), and the reader
    # may be up to --concurrency + 4 batches ahead of what is settled, however the run is
    # timed: it has stopped by 10 + 4 + 4 + 1 batches, well before the end of the file.
    rows = [send_row(i) for i in range(4000)]
    for i in range(0, 4000, 20):
        rows[i]["to_number"] = "bad"
    source = write_sends_csv(tmp_path / "s.csv", rows)
    args = ["import-sends", str(source), "--json", "--max-rejects", limit]
    result = invoke(
        [*args, "--batch-size", "100", "--concurrency", "4"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "--max-rejects" in result.stderr
    assert summary_of(result.stdout)["read"] <= 1900


def test_version_and_completion() -> None:
    version = invoke(["--version"], api_key=None)
    assert version.returncode == 0
    assert version.stdout.startswith("trackly-migrate ")
    # A process of its own: the shell is detected from the process's ancestors, which an
    # in-process run shares with however the suite was started (seen failing under timeout(1)).
    completion = run_cli(["--show-completion", "bash"], api_key=None, env={"SHELL": "/bin/bash"})
    assert completion.returncode == 0
    assert "trackly" in completion.stdout.lower()


def test_a_second_ctrl_c_abandons_the_requests_in_flight(sandbox_factory, tmp_path: Path) -> None:
    rows = messy_rows(2000)
    source = write_sends_csv(tmp_path / "history.csv", rows)
    checkpoint = tmp_path / "ck.json"
    latency = 6.0  # the answers come this long after the requests reached the sandbox
    sandbox = sandbox_factory(latency=(latency, latency))
    process = start_cli(import_args(source, checkpoint), sandbox, tmp_path)
    assert process.stdout is not None and process.stderr is not None
    errors = LineWatcher(process.stderr)
    wait_until(
        lambda: sandbox.stats()["faults"]["latency"] >= 1,
        "a request held at the sandbox",
        process=process,
    )
    process.send_signal(signal.SIGINT)
    errors.wait_for("stopping: finishing the requests in flight")
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    stdout = process.stdout.read()
    process.wait(timeout=60)
    stderr = errors.text()
    assert time.monotonic() - started < latency  # it did not wait for the answers
    # The sandbox had not answered every request it held when the run had already ended.
    assert requests_to(sandbox, SENDS_ENDPOINT) < sandbox.stats()["faults"]["latency"]
    assert process.returncode == 130, stderr
    summary = summary_of(stdout.decode())
    assert summary["status"] == "interrupted"
    assert summary["pending"] > 0
    assert "Traceback" not in stderr

    # Batch size is no option a resume must keep: 1,000 records a request, one round trip.
    resume_args = [*import_args(source, checkpoint, "--resume"), "--batch-size", "1000"]
    resumed = invoke(resume_args, sandbox=sandbox, cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr
    assert summary_of(resumed.stdout)["read"] == 2000
    assert set(stored_imported_ids(sandbox)) - SEED_IMPORTED == valid_ids(rows)


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
    refused = invoke(
        ["import-sends", str(source), "--checkpoint", str(checkpoint)], sandbox=sandbox
    )
    assert refused.returncode == 2 and "--restart" in refused.stderr
    restarted = invoke(
        ["import-sends", str(source), "--checkpoint", str(checkpoint), "--restart"],
        sandbox=sandbox,
    )
    assert restarted.returncode == 0, restarted.stderr


def test_a_checkpoint_place_that_cannot_be_used_is_a_clear_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    result = invoke(
        ["import-sends", str(source), "--checkpoint", str(source / "cp.json")], sandbox=sandbox
    )
    assert result.returncode == 2
    assert "Cannot keep a checkpoint" in result.stderr
    assert "Traceback" not in result.output


def test_after_an_all_rejected_stop_a_corrected_run_starts_over(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    rows = [send_row(i, timestamp="2025-01-01 10:00:00") for i in range(1500)]
    source = write_sends_csv(tmp_path / "naive.csv", rows)
    stopped = invoke(["import-sends", str(source)], sandbox=sandbox, cwd=tmp_path)
    assert stopped.returncode == 1 and "all of the first" in stopped.stderr
    fixed = invoke(
        ["import-sends", str(source), "--timezone", "UTC", "--json", "--errors", "e.csv"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert fixed.returncode == 0, fixed.stderr
    assert summary_of(fixed.stdout)["imported"] == 1500


def as_version_1(checkpoint: Path, source: Path) -> None:
    """Rewrite ``checkpoint`` as version 1 wrote it: the input named by its first MiB."""
    data = json.loads(checkpoint.read_bytes())
    identity = data["identity"]
    del identity["ends_sha256"]
    identity["head_sha256"] = hashlib.sha256(source.read_bytes()[: 1 << 20]).hexdigest()
    data["version"] = 1
    checkpoint.write_text(json.dumps(data))


def test_a_checkpoint_of_the_earlier_version_is_resumed(sandbox_factory, tmp_path: Path) -> None:
    rows = messy_rows()
    source = write_sends_csv(tmp_path / "history.csv", rows)
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=HOLD)
    process = start_cli(import_args(source, checkpoint), sandbox, tmp_path)
    wait_for_checkpoint(checkpoint, process, 1)
    process.kill()
    process.wait()
    as_version_1(checkpoint, source)
    line = json.loads(checkpoint.read_bytes())["line"]

    resumed = invoke(import_args(source, checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path)
    assert resumed.returncode == 1, resumed.stderr
    summary = summary_of(resumed.stdout)
    assert summary["resumed_from_line"] == line > 1
    assert summary["read"] == RECORDS
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored))
    assert set(stored) - SEED_IMPORTED == valid_ids(rows)


def test_a_changed_input_of_an_earlier_version_checkpoint_is_named(
    sandbox_factory, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "history.csv", messy_rows())
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=HOLD)
    process = start_cli(import_args(source, checkpoint), sandbox, tmp_path)
    wait_for_checkpoint(checkpoint, process, 1)
    process.kill()
    process.wait()
    as_version_1(checkpoint, source)
    # One byte in the middle, the size and time kept: only version 1's hash of the first
    # MiB (the whole of this file) sees it.
    before = source.stat()
    data = bytearray(source.read_bytes())
    middle = data.index(b"+1", len(data) // 2)
    data[middle + 2] = ord("9") if data[middle + 2] != ord("9") else ord("8")
    source.write_bytes(bytes(data))
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))

    changed = invoke(import_args(source, checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path)
    assert changed.returncode == 2, changed.stderr
    assert "has changed since the interrupted run" in changed.stderr
    assert "Traceback" not in changed.stderr
