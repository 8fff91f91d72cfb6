"""Resume across files, a changed finished file, and two runs on one drop folder (issue 14).

Real processes killed with SIGKILL; a sandbox latency holds the run, and the test waits for
the checkpoint files, never for a time.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.conftest import run_cli
from tests.helpers import (
    SEED_IMPORTED,
    file_offset,
    requests_to,
    send_row,
    start_cli,
    stored_imported_ids,
    summary_of,
    wait_until,
    write_sends_csv,
)
from trackly_migrate.sandbox.server import RunningSandbox

SENDS_ENDPOINT = "POST /api/v2/history/sends"
PER_FILE = 2000
BATCH = 100
HOLD = (0.2, 0.2)


def parts(folder: Path, count: int = 3) -> list[Path]:
    folder.mkdir()
    return [
        write_sends_csv(
            folder / f"part-{n}.csv", [send_row(i) for i in range(n * PER_FILE, (n + 1) * PER_FILE)]
        )
        for n in range(count)
    ]


def args(folder: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [
        "import-sends",
        str(folder),
        "--json",
        "--batch-size",
        str(BATCH),
        "--concurrency",
        "2",
        "--checkpoint",
        str(checkpoint),
        *extra,
    ]


def finished_files(state: Path) -> int:
    try:
        return len(json.loads(state.read_bytes())["finished"])
    except (FileNotFoundError, ValueError):
        return 0


def all_ids() -> set[str]:
    return {f"t_{i:06d}" for i in range(3 * PER_FILE)}


def test_kill_9_inside_the_second_file_then_resume(sandbox_factory, tmp_path: Path) -> None:
    files = parts(tmp_path / "drop")
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=HOLD)
    process = start_cli(args(tmp_path / "drop", checkpoint), sandbox, tmp_path)
    half = files[1].stat().st_size // 2
    wait_until(
        lambda: finished_files(checkpoint) == 1 and file_offset(checkpoint, "part-1.csv") > half,
        "the second file under way",
        process=process,
    )
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL
    sent_before = requests_to(sandbox, SENDS_ENDPOINT)

    refused = run_cli(args(tmp_path / "drop", checkpoint), sandbox=sandbox, cwd=tmp_path)
    assert refused.returncode == 2
    assert "--resume" in refused.stderr

    resumed = run_cli(
        args(tmp_path / "drop", checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = summary_of(resumed.stdout)
    assert summary["read"] == 3 * PER_FILE
    assert [row["status"] for row in summary["files"]] == [
        "completed earlier",
        "completed",
        "completed",
    ]
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored))
    assert set(stored) - SEED_IMPORTED == all_ids()
    # The finished file was not sent again, and the second went on from past its half: at
    # most its second half, the third file, and what was in flight or read ahead (2 + 4 + 1).
    batches = PER_FILE // BATCH
    resent = requests_to(sandbox, SENDS_ENDPOINT) - sent_before
    assert resent <= batches // 2 + batches + 7
    assert summary["duplicates"] <= 7 * BATCH
    assert not checkpoint.exists()
    assert not list(tmp_path.glob("ck.json.*.json"))


def test_kill_9_between_files_and_a_changed_finished_file(sandbox_factory, tmp_path: Path) -> None:
    files = parts(tmp_path / "drop")
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=HOLD)
    process = start_cli(args(tmp_path / "drop", checkpoint), sandbox, tmp_path)
    wait_until(lambda: finished_files(checkpoint) >= 1, "the first file finished", process=process)
    process.kill()
    process.wait()

    with files[0].open("a") as handle:  # the finished part is exported again, longer
        handle.write("t_999999,+14155550000,2025-01-01T00:00:00Z,+14155551234,,late\r\n")
    changed = run_cli(
        args(tmp_path / "drop", checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path
    )
    assert changed.returncode == 2
    assert "part-0.csv has changed" in changed.stderr
    assert "--restart" in changed.stderr and "remove it from the list" in changed.stderr
    assert "t_999999" not in stored_imported_ids(sandbox)

    restarted = run_cli(
        args(tmp_path / "drop", checkpoint, "--restart"), sandbox=sandbox, cwd=tmp_path
    )
    assert restarted.returncode == 0, restarted.stderr
    summary = summary_of(restarted.stdout)
    assert summary["read"] == 3 * PER_FILE + 1
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored))
    assert set(stored) - SEED_IMPORTED == all_ids() | {"t_999999"}


def test_a_file_changed_inside_its_import_is_named_on_resume(
    sandbox_factory, tmp_path: Path
) -> None:
    files = parts(tmp_path / "drop")
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=HOLD)
    process = start_cli(args(tmp_path / "drop", checkpoint), sandbox, tmp_path)
    wait_until(
        lambda: file_offset(checkpoint, "part-1.csv") > 0,
        "the second file under way",
        process=process,
    )
    process.kill()
    process.wait()
    under_way = json.loads(checkpoint.read_bytes())["current"][str(files[1].resolve())]
    assert under_way["identity"]["ends_sha256"]  # it was hashed before it was written

    with files[1].open("a") as handle:  # the part under way is exported again, longer
        handle.write("t_999999,+14155550000,2025-01-01T00:00:00Z,+14155551234,,late\r\n")
    changed = run_cli(
        args(tmp_path / "drop", checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path
    )
    assert changed.returncode == 2, changed.stderr
    assert "part-1.csv has changed since the interrupted run" in changed.stderr
    assert "t_999999" not in stored_imported_ids(sandbox)


def held(sandbox: RunningSandbox) -> int:
    """How many requests the sandbox has begun to hold (its latency), answered or not."""
    return int(sandbox.stats()["faults"].get("latency", 0))


def test_a_second_run_on_the_same_drop_folder_is_refused(sandbox_factory, tmp_path: Path) -> None:
    parts(tmp_path / "drop", count=2)
    # Each request is held a second: once the sandbox holds the first one, the run cannot
    # end for that long. (Waiting for an answer instead left it a few milliseconds: its four
    # requests are answered together, and a loaded machine could see it done first.)
    sandbox = sandbox_factory(latency=(1.0, 1.0))
    nightly = ["import-sends", str(tmp_path / "drop"), "--skip-done", "--json"]
    first = start_cli(nightly, sandbox, tmp_path)
    wait_until(lambda: held(sandbox) > 0, "a request held by the sandbox", process=first)
    first.send_signal(signal.SIGSTOP)  # held for sure while the second one starts
    try:
        second = run_cli(nightly, sandbox=sandbox, cwd=tmp_path)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2
    assert "Another trackly-migrate run" in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert summary_of(out.decode())["imported"] == 2 * PER_FILE
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored)) == 2 * PER_FILE + len(SEED_IMPORTED)


def test_a_one_file_run_of_a_file_the_list_imports_is_refused(
    sandbox_factory, tmp_path: Path
) -> None:
    files = parts(tmp_path / "drop", count=2)
    sandbox = sandbox_factory(latency=(1.0, 1.0))
    first = start_cli(["import-sends", str(tmp_path / "drop"), "--json"], sandbox, tmp_path)
    wait_until(lambda: held(sandbox) > 0, "a request held by the sandbox", process=first)
    first.send_signal(signal.SIGSTOP)  # held for sure while the second one starts
    try:
        # The second file: the list has not reached it, and holds no lock of its own for it.
        second = run_cli(["import-sends", str(files[1]), "--json"], sandbox=sandbox, cwd=tmp_path)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2, second.stderr
    assert f"Another trackly-migrate run is importing {files[1]}" in second.stderr
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert summary_of(out.decode())["imported"] == 2 * PER_FILE
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored)) == 2 * PER_FILE + len(SEED_IMPORTED)
