"""Small helpers for tests that look into the sandbox and at what the CLI wrote."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import pexpect

from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
SEND_HEADER = ["id", "to_number", "timestamp", "list_number", "list_id", "message"]


def _account_ids(sandbox: RunningSandbox, sql: str, account: str) -> list[str]:
    assert sandbox.db_path is not None
    with sqlite3.connect(sandbox.db_path) as conn:
        return [row[0] for row in conn.execute(sql, (account,)).fetchall()]


def stored_imported_ids(sandbox: RunningSandbox, account: str = "demo") -> list[str]:
    """Ids of the account's imported messages, as the sandbox's database holds them."""
    return _account_ids(
        sandbox,
        "SELECT m.id FROM messages m JOIN accounts a ON a.id = m.account_id "
        "WHERE a.name = ? AND m.imported = 1",
        account,
    )


def stored_click_ids(sandbox: RunningSandbox, account: str = "demo") -> list[str]:
    return _account_ids(
        sandbox,
        "SELECT c.message_id FROM clicks c JOIN accounts a ON a.id = c.account_id WHERE a.name = ?",
        account,
    )


def requests_to(sandbox: RunningSandbox, endpoint: str) -> int:
    """How many requests the sandbox answered on ``endpoint`` ("POST /api/v2/history/sends")."""
    by_status = sandbox.stats()["requests"]["by_endpoint"].get(endpoint, {})
    return sum(by_status.values())


def write_sends_csv(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SEND_HEADER, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def send_row(index: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "id": f"t_{index:06d}",
        "to_number": f"+1415555{index % 10000:04d}",
        "timestamp": f"2025-01-01T00:{(index // 60) % 60:02d}:{index % 60:02d}Z",
        "list_number": "+14155551234",
        "message": f"hello {index}",
    }
    row.update(overrides)
    return row


def read_report(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def summary_of(stdout: str) -> dict[str, Any]:
    data = json.loads(stdout)
    assert isinstance(data, dict)
    settled = (
        data["imported"]
        + data["duplicates"]
        + data["rejected_local"]
        + data["rejected_server"]
        + data["unaccounted"]
        + data["pending"]
    )
    assert settled == data["read"], data
    return data


def default_sigint() -> None:
    """``preexec_fn`` for a child the test will Ctrl-C: a shell starts background jobs
    (``make test > log &`` in a script) with SIGINT ignored, and the tool rightly keeps it so."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def children_of(pid: int) -> dict[int, str]:
    """The live child processes of ``pid`` (Linux /proc), each with its command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = command
    return found


class LineWatcher:
    """Reads a child's output stream in a thread, so a test can wait for a line of it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[str] = []
        self._closed = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            with self._condition:
                self.lines.append(raw.decode("utf-8", "replace"))
                self._condition.notify_all()
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        def seen() -> bool:
            return any(text in line for line in self.lines)

        with self._condition:
            self._condition.wait_for(lambda: self._closed or seen(), timeout)
            assert seen(), f"no line with {text!r} in:\n{''.join(self.lines)}"

    def text(self) -> str:
        """Everything, once the stream has ended."""
        self._thread.join(timeout=60)
        return "".join(self.lines)


def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 60,
) -> None:
    """Poll for an event (a server counter, a file) with a generous deadline; never a sleep
    that orders events. With ``process``, its ending first fails the wait at once."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.01)


def _cli_env(sandbox: RunningSandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLY_")}
    env.update(TRACKLY_BASE_URL=sandbox.url, TRACKLY_API_KEY=DEMO_API_KEY)
    return env


def start_cli(args: list[str], sandbox: RunningSandbox, cwd: Path) -> subprocess.Popen[bytes]:
    """The CLI as a process of its own (for a test that signals it), pointed at ``sandbox``."""
    return subprocess.Popen(
        [sys.executable, "-m", "trackly_migrate", *args],
        cwd=cwd,
        env=_cli_env(sandbox),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )


def spawn_clear(sandbox: RunningSandbox, *args: str) -> pexpect.spawn:
    """``clear ARGS`` on a pseudo-terminal, so that it asks for confirmation."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "trackly_migrate", "clear", *args],
        env={**_cli_env(sandbox), "COLUMNS": "120"},
        encoding="utf-8",
        timeout=60,
        preexec_fn=default_sigint,  # Ctrl-C reaches it even when the suite runs in background
    )
