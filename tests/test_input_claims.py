"""Claims on input files (pipeline/input_claims.py): one run at a time per file and account,
with one open file per run whatever the number of its inputs, and nothing left by a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from trackly_migrate.errors import UsageError
from trackly_migrate.pipeline.input_claims import claimed

COMMAND = "import-sends"
HOLDER = """
import sys
from pathlib import Path
from trackly_migrate.pipeline.input_claims import claimed
with claimed(Path(sys.argv[1]), "import-sends", "acct", sys.argv[2:]):
    print("claimed", flush=True)
    sys.stdin.read()  # until the test closes it, or kills this process
"""


def inputs(folder: Path, *names: str) -> list[str]:
    folder.mkdir(exist_ok=True)
    paths = []
    for name in names:
        (folder / name).write_text("id\n1\n")
        paths.append(str(folder / name))
    return paths


def hold(folder: Path, paths: list[str]) -> subprocess.Popen[bytes]:
    """Another process holding claims on ``paths`` until its stdin is closed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder), *paths],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stderr is not None
    # Its first line says the claims are made (it ends the stream at once if it failed).
    assert holder.stdout.readline() == b"claimed\n", holder.stderr.read().decode()
    return holder


def test_a_file_claimed_by_a_running_run_is_refused_by_any_name(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    a, b, c = inputs(tmp_path / "drop", "a.csv", "b.csv", "c.csv")
    (tmp_path / "link.csv").symlink_to(b)
    with (
        claimed(locks, COMMAND, "acct", [a, b]),
        pytest.raises(UsageError, match=r"importing \S*link\.csv into this account") as refused,
        claimed(locks, COMMAND, "acct", [c, str(tmp_path / "link.csv")]),
    ):
        pass
    assert "flock -n" in (refused.value.hint or "")


def test_other_files_accounts_and_commands_are_free_meanwhile(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    a, b = inputs(tmp_path / "drop", "a.csv", "b.csv")
    with (
        claimed(locks, COMMAND, "acct", [a]),
        claimed(locks, COMMAND, "acct", [b]),
        claimed(locks, COMMAND, "other", [a]),
        claimed(locks, "import-clicks", "acct", [a]),
    ):
        pass


def test_claims_end_with_the_run_and_leave_nothing_behind(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    paths = inputs(tmp_path / "drop", "a.csv", "b.csv")
    with pytest.raises(RuntimeError), claimed(locks, COMMAND, "acct", paths):
        raise RuntimeError("the run failed")
    with claimed(locks, COMMAND, "acct", paths):
        assert len(list(locks.glob("run-*.lock"))) == 1
    assert not list(locks.glob("run-*.lock"))
    assert (locks / "claims.json").read_text() == "{}"


def test_a_run_in_another_process_holds_its_claims_until_it_ends(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    a, b = inputs(tmp_path / "drop", "a.csv", "b.csv")
    holder = hold(locks, [a])
    try:
        with pytest.raises(UsageError, match=r"a\.csv"), claimed(locks, COMMAND, "acct", [b, a]):
            pass
    finally:
        holder.communicate(b"", timeout=60)
    assert holder.returncode == 0
    with claimed(locks, COMMAND, "acct", [a]):
        pass


def test_the_claims_of_a_killed_run_are_dead(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    paths = inputs(tmp_path / "drop", "a.csv", "b.csv")
    holder = hold(locks, paths)
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=60)
    assert "acct" not in (locks / "claims.json").read_text()  # keys only, never names
    assert len((locks / "claims.json").read_text()) > 2  # the dead run is still listed
    with claimed(locks, COMMAND, "acct", paths):
        pass
    assert (locks / "claims.json").read_text() == "{}"
    assert not list(locks.glob("run-*.lock"))  # the dead run's lock file is gone too


def test_a_run_holds_one_open_file_for_any_number_of_inputs(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    paths = inputs(tmp_path / "drop", *(f"part-{n:04d}.csv" for n in range(2000)))
    descriptors = Path("/proc/self/fd")
    before = len(list(descriptors.iterdir())) if descriptors.exists() else None
    with claimed(locks, COMMAND, "acct", paths):
        if before is not None:
            assert len(list(descriptors.iterdir())) == before + 1
        with (
            pytest.raises(UsageError, match=r"part-1999\.csv"),
            claimed(locks, COMMAND, "acct", paths[-1:]),
        ):
            pass


def test_an_unreadable_list_of_claims_counts_as_empty(tmp_path: Path) -> None:
    # It is replaced whole, never written in place: unreadable, it can only be left from a
    # machine that went down, when no run that claimed anything is still going.
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "claims.json").write_bytes(b'{"abc": ["12')
    [a] = inputs(tmp_path / "drop", "a.csv")
    with (
        claimed(locks, COMMAND, "acct", [a]),
        pytest.raises(UsageError),
        claimed(locks, COMMAND, "acct", [a]),
    ):
        pass


def test_an_unusable_state_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "locks").write_text("a file where the folder should be")
    [a] = inputs(tmp_path / "drop", "a.csv")
    with (
        pytest.raises(UsageError, match="Cannot keep the list of running imports"),
        claimed(tmp_path / "locks", COMMAND, "acct", [a]),
    ):
        pass
