"""Every exit code, pinned in one table (as httpie's tests/test_exit_status.py does).

Each case runs the real CLI against a real sandbox (scripted faults where the case needs a
failure); the two signal cases run it as a process and signal it once a request is held at
the sandbox. ``exit_code_for`` (errors.py) is the one mapping behind every row.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.helpers import invoke, send_row, spawn_clear, start_cli, wait_until, write_sends_csv
from trackly_migrate.errors import ExitCode, InputError, ServerError, exit_code_for
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

SENDS = "/api/v2/history/sends"
CLEAR = "/api/v2/history/clear"
UNKNOWN_KEY = "trk_" + "x" * 32  # well formed, but no account has it


def _sends(tmp_path: Path, count: int = 3, **overrides: Any) -> str:
    rows = [send_row(i) for i in range(count)]
    rows[0].update(overrides)
    return str(write_sends_csv(tmp_path / "sends.csv", rows))


def _without_to_number(tmp_path: Path) -> str:
    path = tmp_path / "no-phone.csv"
    path.write_text("id,timestamp,list_number\nt_1,2025-01-01T00:00:00Z,+14155551234\n")
    return str(path)


@dataclass(frozen=True)
class Case:
    args: Callable[[Path], list[str]]
    code: int
    says: str  # on stderr: proof that the case failed (or not) for its own reason
    faults: list[dict[str, Any]] = field(default_factory=list)
    api_key: str = DEMO_API_KEY


CASES = {
    "all imported": Case(lambda t: ["import-sends", _sends(t)], 0, "imported"),
    "some rejected": Case(
        lambda t: ["import-sends", _sends(t, to_number="not a phone")], 1, "rejected"
    ),
    "bad option": Case(
        lambda t: ["import-sends", _sends(t), "--no-such-option"], 2, "No such option"
    ),
    "bad key format": Case(
        lambda t: ["import-sends", _sends(t)], 2, "does not look like", api_key="not-a-key"
    ),
    "missing column": Case(
        lambda t: ["import-sends", _without_to_number(t)], 2, "no column for required"
    ),
    "output that cannot be created": Case(
        lambda t: ["import-sends", _sends(t, to_number="x"), "--errors", str(t / "no/dir/e.csv")],
        2,
        "Cannot write the errors report",
    ),
    "401": Case(lambda t: ["import-sends", _sends(t)], 3, "(401)", api_key=UNKNOWN_KEY),
    "retries exhausted": Case(
        lambda t: ["import-sends", _sends(t), "--max-retries", "1"],
        3,
        "HTTP 500",
        faults=[{"kind": "internal_error", "path": SENDS, "times": 2}],
    ),
    "unaccounted records": Case(
        lambda t: ["import-sends", _sends(t)],
        3,
        "did not add up",
        faults=[{"kind": "count_mismatch", "path": SENDS, "mode": "undercount"}],
    ),
    "clear outcome unknown": Case(
        lambda t: ["clear", "sends", "--all-time", "--yes"],
        3,
        "outcome is unknown",
        faults=[{"kind": "drop", "path": CLEAR}],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_exit_code(case: Case, sandbox_factory: Any, tmp_path: Path) -> None:
    sandbox = sandbox_factory(faults=case.faults)
    result = invoke(case.args(tmp_path), sandbox=sandbox, api_key=case.api_key, cwd=tmp_path)
    assert result.returncode == case.code, result.output
    assert case.says in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    injected = sandbox.stats()["scripted_faults"]["injected"]
    assert sum(injected.values()) == sum(fault.get("times", 1) for fault in case.faults)


def test_exit_code_declined_clear(sandbox: RunningSandbox) -> None:
    child = spawn_clear(sandbox, "sends", "--all-time")
    child.expect("anything else cancels")
    child.sendline("no")
    child.expect("Cancelled: nothing was deleted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_exit_code_signal(
    sig: signal.Signals, code: int, sandbox_factory: Any, tmp_path: Path
) -> None:
    sandbox = sandbox_factory(latency=(1.0, 1.0))
    source = _sends(tmp_path, count=2000)
    args = ["import-sends", source, "--batch-size", "100", "--concurrency", "1"]
    process = start_cli(args, sandbox, tmp_path)
    wait_until(lambda: sandbox.stats()["faults"]["latency"] >= 1, "request held", process=process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert "stopping: finishing the requests in flight" in stderr.decode()


@pytest.mark.parametrize(
    ("error", "outcome", "code"),
    [
        (None, {}, ExitCode.OK),
        (None, {"rejected": 2}, ExitCode.REJECTED),
        (None, {"unaccounted": 1, "rejected": 2}, ExitCode.ABORTED),
        (None, {"interrupted_by": signal.SIGINT, "unaccounted": 1}, ExitCode.INTERRUPTED),
        (None, {"interrupted_by": signal.SIGTERM}, ExitCode.TERMINATED),
        (InputError("x"), {"interrupted_by": signal.SIGTERM}, ExitCode.USAGE),
        (ServerError("x", status=500), {"rejected": 2}, ExitCode.ABORTED),
    ],
)
def test_the_one_mapping_puts_an_error_first_then_a_signal_then_the_counts(
    error: Any, outcome: dict[str, int], code: ExitCode
) -> None:
    assert exit_code_for(error, **outcome) is code
