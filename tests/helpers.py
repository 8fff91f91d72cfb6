"""Helpers shared by the tests (the only module they import from besides conftest's fixtures).

Running the CLI: ``invoke`` runs it in this process with Typer's ``CliRunner``; ``run_cli``
runs it as a real process, for what only a process shows (signals, kill -9, start-up, the
installed entry point). Both take the same arguments and return the same ``CliResult``, so a
test moves from one to the other by changing the call alone.

Looking at the sandbox: ``Api`` talks to a running sandbox over real HTTP with httpx;
``query`` opens its SQLite file so a test can check what was really stored, not only what was
answered. Waiting: ``wait_until`` and ``LineWatcher``, never a sleep that orders events.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

import httpx
import pexpect
from typer._click import formatting as click_formatting
from typer.testing import CliRunner

from trackly_migrate.cli import app
from trackly_migrate.pipeline import (
    ImportOutcome,
    ImportRequest,
    Output,
    Source,
    Target,
    run_import,
)
from trackly_migrate.pipeline.ports import Observer
from trackly_migrate.records import Kind
from trackly_migrate.sandbox.seed import DEMO_API_KEY, default_seed_data
from trackly_migrate.sandbox.server import RunningSandbox, SandboxConfig, start_sandbox

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"

SENDS = "/v2/history/sends"
CLICKS = "/v2/history/clicks"
CLEAR = "/v2/history/clear"
CONTACTS = "/v2/contacts"

SEND_HEADER = ["id", "to_number", "timestamp", "list_number", "list_id", "message"]


# The demo account's imported messages in the built-in seed: a fresh sandbox holds them
# before any import does.
SEED_IMPORTED = frozenset(
    message["id"]
    for message in default_seed_data()["accounts"][0]["messages"]
    if message.get("imported")
)


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
    interval: float = 0.01,
) -> None:
    """Poll for an event (a server counter, a file) with a generous deadline; never a sleep
    that orders events. With ``process``, its ending first fails the wait at once. A short
    ``interval`` catches a brief moment (a stage of a process's start-up)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(interval)


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


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _trackly_env(sandbox: RunningSandbox | None, api_key: str | None) -> dict[str, str]:
    found: dict[str, str] = {}
    if sandbox is not None:
        found["TRACKLY_BASE_URL"] = sandbox.url
    if api_key is not None:
        found["TRACKLY_API_KEY"] = api_key
    return found


def run_cli(
    args: Sequence[str],
    *,
    sandbox: RunningSandbox | None = None,
    api_key: str | None = DEMO_API_KEY,
    stdin: str | bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> CliResult:
    """Run ``python -m trackly_migrate ARGS`` as a real process, pointed at ``sandbox``."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLY_")}
    full_env.update(_trackly_env(sandbox, api_key))
    full_env.update(env or {})
    data = stdin.encode() if isinstance(stdin, str) else stdin
    completed = subprocess.run(
        [sys.executable, "-m", "trackly_migrate", *args],
        input=data if data is not None else b"",
        capture_output=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    return CliResult(
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
    )


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _ProcessLikeRunner(CliRunner):
    """``CliRunner`` with stdin and widths as a process has them: stdin is a buffered stream
    (the reader peeks at it to sniff the format; the runner's own is a bare ``BytesIO``), and
    help and usage text are as wide as COLUMNS says, not the runner's fixed 80."""

    def __init__(self, stdin: bytes) -> None:
        super().__init__()
        self._stdin = stdin

    @contextmanager
    def isolation(
        self, input: str | bytes | None = None, env: Any = None, color: bool = False
    ) -> Iterator[tuple[io.BytesIO, io.BytesIO, io.BytesIO]]:
        with super().isolation(input=input, env=env, color=color) as streams:
            # Both are put back by the runner's own isolation on the way out.
            sys.stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(self._stdin)), "utf-8")
            click_formatting.FORCED_WIDTH = None
            time.tzset()  # a process reads TZ when it starts; this one must be told (and untold)
            yield streams


def invoke(
    args: Sequence[str],
    *,
    sandbox: RunningSandbox | None = None,
    api_key: str | None = DEMO_API_KEY,
    stdin: str | bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> CliResult:
    """Run the CLI in this process (Typer's ``CliRunner``), as ``run_cli`` runs it outside.

    What a process of its own would give is set up here and undone after: the environment
    (no TRACKLY_* but ours), the folder, ``sys.argv`` (the resume hint repeats it) and stdin as
    a buffered stream (a real one can be peeked at to sniff the format). The run must leave
    the signal handlers and the signal mask as it found them: a leak would be a bug for every
    library caller, so it fails the test. ``timeout`` is pytest-timeout's job here. An
    exception that escapes the CLI becomes a traceback on stderr and exit 1, as in a process.
    """
    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TRACKLY_")}
    overrides.update(_trackly_env(sandbox, api_key))
    overrides.update(env or {})
    data = stdin.encode() if isinstance(stdin, str) else (stdin or b"")
    handlers = {number: signal.getsignal(number) for number in _STOP_SIGNALS}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    argv = sys.argv
    sys.argv = ["trackly-migrate", *args]
    try:
        with contextlib.chdir(cwd if cwd is not None else Path.cwd()):
            result = _ProcessLikeRunner(data).invoke(
                app,
                list(args),
                env=overrides,
                prog_name="trackly-migrate",
            )
    finally:
        time.tzset()
        sys.argv = argv
        left = {number: signal.getsignal(number) for number in _STOP_SIGNALS}
        left_mask = signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert left == handlers, f"the run left signal handlers behind: {left}"
    assert left_mask == mask, f"the run left the signal mask changed: {left_mask}"
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return CliResult(result.exit_code, result.stdout, stderr)


class Api:
    """An httpx client on the sandbox's API base URL, with one account's key."""

    def __init__(self, sandbox: RunningSandbox, key: str | None = DEMO_API_KEY) -> None:
        self.sandbox = sandbox
        headers = {} if key is None else {"X-Api-Key": key}
        self.client = httpx.Client(base_url=sandbox.url, headers=headers, timeout=60)

    def close(self) -> None:
        self.client.close()

    def sends(self, records: Any, **extra: Any) -> httpx.Response:
        return self.client.post(SENDS, json={"records": records, **extra})

    def clicks(self, records: Any) -> httpx.Response:
        return self.client.post(CLICKS, json={"records": records})

    def clear(self, body: Any) -> httpx.Response:
        return self.client.request("DELETE", CLEAR, json=body)

    def unsubscribe(self, phone: str, list_number: str) -> httpx.Response:
        body = {"phone_number": phone, "list_number": list_number}
        return self.client.request("DELETE", CONTACTS, json=body)

    def ok(self, response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


def send(message_id: Any, **fields: Any) -> dict[str, Any]:
    """A valid send record to list 42 of the demo account, with overrides."""
    record: dict[str, Any] = {
        "id": message_id,
        "list_id": 42,
        "to_number": "+12025559876",
        "timestamp": "2025-11-15T14:30:00Z",
    }
    record.update(fields)
    return record


def click(message_id: Any, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "message_id": message_id,
        "offer_id": "offer_123",
        "phone_number": "+12025559876",
        "timestamp": "2025-11-15T14:35:00Z",
    }
    record.update(fields)
    return record


def query(sandbox: RunningSandbox, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the sandbox's database file (opened read-only, next to the server)."""
    assert sandbox.db_path is not None
    uri = Path(sandbox.db_path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def contact(sandbox: RunningSandbox, list_id: int, phone: str) -> dict[str, Any] | None:
    rows = query(
        sandbox,
        "SELECT active, unsubscribe_reason, send_count, click_count, last_clicked_at"
        " FROM list_contacts WHERE list_id = ? AND phone = ?",
        list_id,
        phone,
    )
    if not rows:
        return None
    active, reason, sends, clicks, last = rows[0]
    return {
        "active": bool(active),
        "unsubscribe_reason": reason,
        "send_count": sends,
        "click_count": clicks,
        "last_clicked_at": last,
    }


@contextmanager
def shared_sandbox(folder: Path, **options: Any) -> Iterator[RunningSandbox]:
    """One sandbox for a whole test module; tests call ``reset()`` to start from the seed."""
    with start_sandbox(SandboxConfig(db=folder / "sandbox.db", **options)) as running:
        yield running


@contextmanager
def api_on(sandbox: RunningSandbox, key: str | None = DEMO_API_KEY) -> Iterator[Api]:
    api = Api(sandbox, key)
    try:
        yield api
    finally:
        api.close()


class Page(HTMLParser):
    """The parts of the page the tests look at: tags seen, tables as rows of cell texts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: list[list[tuple[dict[str, str | None], list[str]]]] = []
        self.headings: list[str] = []
        self._row: tuple[dict[str, str | None], list[str]] | None = None
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = (dict(attrs), [])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h2", "h3"):
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None
        elif tag in ("h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data: str) -> None:
        for part in (self._cell, self._heading):
            if part is not None:
                part.append(data)

    def rows_with_class(self, name: str) -> list[list[str]]:
        return [
            cells for table in self.tables for attrs, cells in table if attrs.get("class") == name
        ]


def get_page(sandbox: RunningSandbox, **params: Any) -> httpx.Response:
    return httpx.get(sandbox.root_url + "/_sandbox/", params=params, timeout=10)


def journal(sandbox: RunningSandbox, total: int, **params: Any) -> dict[str, Any]:
    """The request journal once it holds ``total`` requests (no more): an entry is written
    when its request is over, which can be a moment after the client read the answer."""
    found: dict[str, Any] = {}

    def complete() -> bool:
        found.update(
            httpx.get(sandbox.root_url + "/_sandbox/requests", params=params, timeout=10).json()
        )
        return int(found["total"]) >= total

    wait_until(complete, f"{total} requests in the journal")
    assert found["total"] == total, found
    return found


def wait_for_journal(sandbox: RunningSandbox, total: int) -> None:
    journal(sandbox, total)


def file_offset(checkpoint: Path, name: str) -> int:
    """How far the file ``name`` has got in the list's ``checkpoint`` (0: not under way)."""
    try:
        current = json.loads(checkpoint.read_bytes()).get("current", {})
    except (FileNotFoundError, ValueError):
        return 0
    for path, entry in current.items():
        if Path(path).name == name:
            return int(entry["offset"])
    return 0


def dry_run_sends(source: Path, observer: Observer) -> ImportOutcome:
    """A dry run of a sends file through the core (no CLI, nothing sent), report beside it."""
    request = ImportRequest(
        kind=Kind.SENDS,
        source=Source(str(source)),
        target=Target(dry_run=True),
        output=Output(source.with_name(source.name + ".errors.csv")),
    )
    return run_import(request, observer)
