"""The sender process starts fast and the reader never waits for it (issue 13, item 2).

* what the child imports is the sending side only (no readers, validators, phonenumbers,
  nor httpx's command-line client);
* a batch is handed over at once, even while the child cannot read its pipe yet;
* the engine reads ahead by the ``--concurrency`` ceiling while the adaptive limit is
  still opening up, so batches are ready the moment it lets them go.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from tests.helpers import send_row, stored_imported_ids, wait_until, write_sends_csv
from trackly_migrate.client import SLOW_START_WINDOW, AdaptiveLimit
from trackly_migrate.config import ApiSettings
from trackly_migrate.counts import Counts
from trackly_migrate.pipeline import ImportRequest, Limits, Source, Target, run_import
from trackly_migrate.pipeline.dispatch import ProcessDispatcher, SenderOptions
from trackly_migrate.pipeline.run import SharedSender
from trackly_migrate.pipeline.settle import Settlement
from trackly_migrate.records import Kind
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

# Runs ``sender_entry.main`` in a fresh interpreter, as the spawned child does: the plan
# arrives pickled on stdin; a helper thread sends one batch, waits for its answer, prints
# the modules loaded by then, and closes the pipe (the sender then exits).
CHILD = """
import json, struct, sys, threading
from multiprocessing import Pipe
from trackly_migrate.pipeline import sender_entry

plan = sys.stdin.buffer.read()
ours, theirs = Pipe(duplex=True)

def drive():
    ours.send_bytes(struct.pack("!QI", 0, 1) + b'{"records":[%s]}' % sys.argv[1].encode())
    while ours.recv()[0] != "ok":
        pass
    print(json.dumps(sorted(sys.modules)), flush=True)
    ours.send_bytes(b"")

threading.Thread(target=drive, daemon=True).start()
sender_entry.main(theirs, plan)
"""


def _options(url: str, **limits: Any) -> SenderOptions:
    return SenderOptions(ApiSettings(url, DEMO_API_KEY), Kind.SENDS, Limits(**limits))


def test_the_sender_process_imports_the_sending_side_only(sandbox: RunningSandbox) -> None:
    plan = pickle.dumps(_options(sandbox.url).plan())
    record = json.dumps(
        {"id": "s1", "to_number": "+14155550123", "timestamp": "2025-11-15T14:30:00Z"}
        | {"list_number": "+14155551234"}
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, record],
        input=plan,
        capture_output=True,
        timeout=120,
        check=True,
    )
    modules = set(json.loads(done.stdout))
    assert "httpx" in modules and "trackly_migrate.pipeline.settle" in modules  # it did send
    assert "s1" in stored_imported_ids(sandbox)
    for heavy in (
        "phonenumbers",
        "trackly_migrate.normalize",
        "trackly_migrate.records",
        "trackly_migrate.readers",
        "trackly_migrate.pipeline.request",
        "rich",
        "click",
        "pygments",
    ):
        assert heavy not in modules, heavy


def test_a_batch_is_handed_over_while_the_sender_cannot_read_yet(
    sandbox: RunningSandbox,
) -> None:
    dispatcher = ProcessDispatcher(_options(sandbox.url), lambda reason, delay: None)
    try:
        (child,) = [p for p in multiprocessing.active_children() if p.name == "trackly-sender"]
        assert child.pid is not None
        os.kill(child.pid, signal.SIGSTOP)  # as if it were still importing
        batches = [
            [send_row(1000 * batch + i, message="x" * 200) for i in range(1000)]
            for batch in range(3)
        ]  # each ~300 KB: several times a pipe's buffer
        futures: list[Future[Settlement]] = []
        handed_over = threading.Event()

        def submit_all() -> None:
            futures.extend(dispatcher.submit(batch) for batch in batches)
            handed_over.set()

        threading.Thread(target=submit_all, daemon=True).start()
        stopped = handed_over.wait(60)
        os.kill(child.pid, signal.SIGCONT)
        assert stopped, "submit waited for the sender process to read its pipe"
        settled = [future.result(timeout=120) for future in futures]
        assert sum(s.counts.imported for s in settled) == 3000
    finally:
        dispatcher.close()


class HeldDispatcher:
    """A dispatcher whose answers wait for the test, its adaptive limit stuck at 1."""

    def __init__(self) -> None:
        self.futures: list[tuple[Future[Settlement], int]] = []
        self.lock = threading.Lock()

    def submit(self, records: list[dict[str, Any]]) -> Future[Settlement]:
        future: Future[Settlement] = Future()
        with self.lock:
            self.futures.append((future, len(records)))
        return future

    def current_concurrency(self) -> int:
        return 1

    def requests_in_flight(self) -> int:
        return 1

    def close(self) -> None:
        pass

    def answer_all(self) -> None:
        with self.lock:
            waiting = list(self.futures)
        for future, count in waiting:
            if not future.done():
                future.set_result(Settlement(Counts(imported=count, requests=1)))


class Quiet:
    def progress(self, state: object) -> None: ...
    def warning(self, message: str) -> None: ...
    def retry(self, reason: str, delay: float) -> None: ...
    def info(self, message: str) -> None: ...


def test_the_reader_reads_ahead_by_the_ceiling_while_the_limit_opens(tmp_path: Path) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3000)])
    request = ImportRequest(
        kind=Kind.SENDS,
        source=Source(str(source)),
        target=Target(ApiSettings("http://127.0.0.1:9/api", DEMO_API_KEY)),
        limits=Limits(batch_size=100, concurrency=6),
    )
    held = HeldDispatcher()
    outcome: list[Any] = []
    runner = threading.Thread(
        target=lambda: outcome.append(run_import(request, Quiet(), sender=SharedSender(held))),
        daemon=True,
    )
    runner.start()
    # Six requests may be in flight at most, and four segments more read ahead: ten
    # batches, though the adaptive limit lets one go for now.
    wait_until(lambda: len(held.futures) >= 10, "ten batches handed over")
    assert len(held.futures) == 10
    while runner.is_alive():
        held.answer_all()
        runner.join(0.05)
    assert outcome[0].summary.counts.imported == 3000
    assert outcome[0].summary.counts.read == 3000


def test_the_slow_start_opens_at_its_window_and_still_doubles() -> None:
    limit = AdaptiveLimit(ceiling=64)
    assert limit.current == SLOW_START_WINDOW == 8
    for _ in range(8):  # one round trip of answers
        limit.acquire()
        limit.release(overloaded=False)
    assert limit.current == 16
    assert AdaptiveLimit(ceiling=4).current == 4  # never above --concurrency
