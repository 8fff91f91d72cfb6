"""The next file of a many-file run is opened while the one before is read (issue 14).

``Prefetcher`` on real files, with an opening that records where and when it ran; then the
CLI: what a file opened early but never reached leaves (nothing), and an opening's error
coming when the run reaches the file, as it did before files were opened early.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.helpers import (
    file_offset,
    send_row,
    start_cli,
    stored_imported_ids,
    summary_of,
    wait_until,
    write_sends_csv,
)
from trackly_migrate.checkpoint import exclusive
from trackly_migrate.errors import UsageError
from trackly_migrate.pipeline.batch_state import file_checkpoint_path
from trackly_migrate.pipeline.ports import Observer, ProgressState
from trackly_migrate.pipeline.prefetch import Prefetcher

SEED_IMPORTED = {f"imp_000{i}" for i in range(1, 6)}


class Told:
    """An observer that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(f"info: {message}")

    def warning(self, message: str) -> None:
        self.lines.append(f"warning: {message}")

    def retry(self, reason: str, delay: float) -> None:
        self.lines.append(f"retry: {reason}")

    def progress(self, state: ProgressState) -> None:
        raise AssertionError("an opening shows no progress")


class Opening:
    """Opens a file as ``chain._open_part`` would: a resource on the stack, a note told."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.threads: list[str] = []
        self.released: list[str] = []
        self.fail = fail or set()
        self.done = threading.Event()

    def __call__(self, path: str, stack: contextlib.ExitStack, told: Observer) -> str:
        self.threads.append(threading.current_thread().name)
        stack.callback(self.released.append, Path(path).name)
        told.info(f"opened {Path(path).name}")
        self.done.set()
        if Path(path).name in self.fail:
            raise UsageError(f"{Path(path).name}: bad header")
        return Path(path).read_text()


def files(folder: Path, count: int) -> list[str]:
    for n in range(count):
        (folder / f"{n}.csv").write_text(f"file {n}\n")
    return [str(folder / f"{n}.csv") for n in range(count)]


def test_the_next_file_is_opened_on_its_own_thread_and_told_when_reached(tmp_path: Path) -> None:
    first, second = files(tmp_path, 2)
    opening = Opening()
    prefetcher = Prefetcher(opening)
    told = Told()
    with contextlib.ExitStack() as stack:
        assert prefetcher.take(first, stack, told) == "file 0\n"
        prefetcher.ahead(second)
        assert opening.done.wait(30)  # opened with nothing asking for it yet
        assert told.lines == ["info: opened 0.csv"]  # what the early opening says waits
        assert prefetcher.take(second, stack, told) == "file 1\n"
        assert told.lines == ["info: opened 0.csv", "info: opened 1.csv"]
        assert opening.threads == ["MainThread", "next-file"]
        assert opening.released == []  # the resources are the stack's now
    prefetcher.close()
    assert opening.released == ["1.csv", "0.csv"]


def test_an_early_openings_error_is_raised_when_the_file_is_reached(tmp_path: Path) -> None:
    first, second = files(tmp_path, 2)
    opening = Opening(fail={"1.csv"})
    prefetcher = Prefetcher(opening)
    told = Told()
    with contextlib.ExitStack() as stack:
        prefetcher.take(first, stack, told)
        prefetcher.ahead(second)  # fails on its thread: nothing raised here
        assert opening.done.wait(30)
        with pytest.raises(UsageError, match=r"1\.csv: bad header"):
            prefetcher.take(second, stack, told)
        assert told.lines[-1] == "info: opened 1.csv"  # told first, as an opening now would
        assert opening.released == []  # what it opened before failing goes to the stack
    assert opening.released == ["1.csv", "0.csv"]
    prefetcher.close()


def test_a_file_changed_after_its_early_opening_is_opened_again(tmp_path: Path) -> None:
    first, second = files(tmp_path, 2)
    opening = Opening()
    prefetcher = Prefetcher(opening)
    told = Told()
    with contextlib.ExitStack() as stack:
        prefetcher.take(first, stack, told)
        prefetcher.ahead(second)
        assert opening.done.wait(30)
        Path(second).write_text("file 1, written again\n")
        assert prefetcher.take(second, stack, told) == "file 1, written again\n"
        assert opening.threads == ["MainThread", "next-file", "MainThread"]
        assert opening.released == ["1.csv"]  # the early opening, released at once
        assert told.lines == ["info: opened 0.csv", "info: opened 1.csv"]  # told once
    prefetcher.close()


def test_a_file_never_reached_is_released_and_says_nothing(tmp_path: Path) -> None:
    first, second = files(tmp_path, 2)
    opening = Opening()
    prefetcher = Prefetcher(opening)
    told = Told()
    with contextlib.ExitStack() as stack:
        prefetcher.take(first, stack, told)
        prefetcher.ahead(second)
        prefetcher.close()  # the run stopped before the second file
        assert opening.released == ["1.csv"]
    assert told.lines == ["info: opened 0.csv"]
    assert not [thread for thread in threading.enumerate() if thread.name == "next-file"]


def test_a_named_pipe_is_opened_only_when_reached(tmp_path: Path) -> None:
    # Opening a pipe waits for its writer: early, it could hold the end of a stopped run.
    (first,) = files(tmp_path, 1)
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    opened: list[str] = []

    def open_without_reading(path: str, stack: contextlib.ExitStack, told: Observer) -> str:
        opened.append(path)
        return path

    prefetcher = Prefetcher(open_without_reading)
    told = Told()
    with contextlib.ExitStack() as stack:
        prefetcher.take(first, stack, told)
        prefetcher.ahead(str(pipe))
        assert not [thread for thread in threading.enumerate() if thread.name == "next-file"]
        assert opened == [first]
        prefetcher.take(str(pipe), stack, told)
        assert opened == [first, str(pipe)]
    prefetcher.close()


# -- the CLI ---------------------------------------------------------------------------------

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
    # The second file was opened while the first was read: it left no checkpoint, no lock.
    second = file_checkpoint_path("import-sends", str(parts[1]), checkpoint)
    assert not second.exists()
    with exclusive(second):
        pass
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
    held = file_checkpoint_path("import-sends", str(parts[1]), checkpoint)
    with exclusive(held):  # another run holds the second file's checkpoint
        result = run_cli(cli_args(tmp_path / "drop", checkpoint), sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"Another trackly-migrate run is using the checkpoint {held}" in result.stderr
    summary = json.loads(result.stdout)
    assert [row["status"] for row in summary["files"]] == ["completed", "failed", "not started"]
    assert [row["read"] for row in summary["files"]] == [PER_FILE, 0, 0]
    assert set(stored_imported_ids(sandbox)) - SEED_IMPORTED == {
        f"t_{i:06d}" for i in range(PER_FILE)
    }
    # Said after the first file's lines, where the run reached the second file.
    stderr = result.stderr
    first_told = stderr.index(f"{parts[0]}: ignoring column(s)")
    assert first_told < stderr.index("file 1 of 3") < stderr.index("Another trackly-migrate run")
    assert "file 2 of 3" not in stderr and "part-2.csv" not in stderr
