"""When the files of a many-file run are opened: each when the run reaches it (issue 14).

A run stopped inside a file leaves the files after it untouched (nothing of them in the
list's checkpoint, nothing said about them), and an opening's error comes when the run
reaches that file, after what the files before it said.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.conftest import run_cli
from tests.helpers import (
    SEED_IMPORTED,
    file_offset,
    send_row,
    start_cli,
    stored_imported_ids,
    summary_of,
    wait_until,
    write_sends_csv,
)

PER_FILE = 3000


def drop(folder: Path, count: int) -> list[Path]:
    """``count`` parts, each with a column the import does not use: a warning when opened."""
    folder.mkdir()
    parts = []
    for n in range(count):
        rows = [send_row(i) for i in range(n * PER_FILE, (n + 1) * PER_FILE)]
        part = write_sends_csv(folder / f"part-{n}.csv", rows)
        header, *lines = part.read_text().splitlines()
        part.write_text("\n".join([f"{header},note", *(f"{line},x" for line in lines)]) + "\n")
        parts.append(part)
    return parts


def cli_args(folder: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [
        "import-sends",
        str(folder),
        "--json",
        "--batch-size",
        "100",
        "--concurrency",
        "2",
        "--checkpoint",
        str(checkpoint),
        *extra,
    ]


def test_a_run_stopped_in_a_file_leaves_the_next_one_not_started(
    sandbox_factory, tmp_path: Path
) -> None:
    parts = drop(tmp_path / "drop", 3)
    checkpoint = tmp_path / "ck.json"
    sandbox = sandbox_factory(latency=(0.2, 0.2))
    process = start_cli(cli_args(tmp_path / "drop", checkpoint), sandbox, tmp_path)
    under_way = lambda: file_offset(checkpoint, "part-0.csv") > 0  # noqa: E731
    wait_until(under_way, "the first file under way", process=process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr.decode()
    summary = summary_of(stdout.decode())
    assert [row["status"] for row in summary["files"]] == [
        "interrupted",
        "not started",
        "not started",
    ]
    # The run never reached the second file: the list's checkpoint has only the first.
    under_way = json.loads(checkpoint.read_bytes())["current"]
    assert [Path(name).name for name in under_way] == ["part-0.csv"]
    assert not list(tmp_path.glob("ck.json.*.json"))  # nor a checkpoint file of its own
    # What its opening said is not told: the run never reached it.
    assert f"{parts[0]}: ignoring column(s) not used by sends: note" in stderr.decode()
    assert "part-1.csv" not in stderr.decode()

    resumed = run_cli(cli_args(tmp_path / "drop", checkpoint, "--resume"), sandbox=sandbox)
    assert resumed.returncode == 0, resumed.stderr
    assert summary_of(resumed.stdout)["read"] == 3 * PER_FILE
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored))
    assert set(stored) - SEED_IMPORTED == {f"t_{i:06d}" for i in range(3 * PER_FILE)}


def test_an_opening_error_comes_when_the_run_reaches_the_file(sandbox, tmp_path: Path) -> None:
    parts = drop(tmp_path / "drop", 3)
    checkpoint = tmp_path / "ck.json"
    parts[1].write_text("a,b,c\n1,2,3\n")  # no column for the fields it needs
    result = run_cli(cli_args(tmp_path / "drop", checkpoint), sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"{parts[1]}: no column for required field(s)" in result.stderr
    summary = json.loads(result.stdout)
    assert [row["status"] for row in summary["files"]] == ["completed", "failed", "not started"]
    assert [row["read"] for row in summary["files"]] == [PER_FILE, 0, 0]
    assert set(stored_imported_ids(sandbox)) - SEED_IMPORTED == {
        f"t_{i:06d}" for i in range(PER_FILE)
    }
    # Said after the first file's lines, where the run reached the second file.
    stderr = result.stderr
    first_told = stderr.index(f"{parts[0]}: ignoring column(s)")
    assert first_told < stderr.index("file 1 of 3") < stderr.index("no column for required")
    assert "file 2 of 3" not in stderr and "part-2.csv" not in stderr


def test_a_file_that_failed_to_open_is_resumed_once_mended(sandbox, tmp_path: Path) -> None:
    parts = drop(tmp_path / "drop", 2)
    checkpoint = tmp_path / "ck.json"
    parts[1].write_bytes(bytes(range(256)) * 4)  # not text: refused after its checkpoint
    failed = run_cli(cli_args(tmp_path / "drop", checkpoint), sandbox=sandbox, cwd=tmp_path)
    assert failed.returncode == 2, failed.stderr
    assert "does not look like text" in failed.stderr
    # Nothing of it was sent: the list holds no entry for it, so its mended export is read.
    assert json.loads(checkpoint.read_bytes())["current"] == {}
    write_sends_csv(parts[1], [send_row(i) for i in range(PER_FILE, 2 * PER_FILE)])
    resumed = run_cli(
        cli_args(tmp_path / "drop", checkpoint, "--resume"), sandbox=sandbox, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert [row["status"] for row in summary["files"]] == ["completed earlier", "completed"]
    assert summary["read"] == 2 * PER_FILE
    assert set(stored_imported_ids(sandbox)) - SEED_IMPORTED == {
        f"t_{i:06d}" for i in range(2 * PER_FILE)
    }
