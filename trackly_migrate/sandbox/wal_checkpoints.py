"""Copying a database file's WAL back into it, from a thread and connection of its own.

SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past its limit: in
the sandbox that is the importer's thread, the one every import request waits for. A
checkpoint copies every page changed since the last one and syncs both files, 40 ms at a
time while 200,000 sends were stored (measured), during which no request was stored.
Here commits only wake ``WalCheckpointer``; its thread makes a PASSIVE checkpoint (it never
waits for the writer or a reader, and copies what is committed by then) at most once per
``INTERVAL_S`` while commits come. The writer's own automatic checkpoint stays, at
``BACKSTOP_BYTES``, for a WAL this thread could not keep short.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

from trackly_migrate.checkpoint_writer import wait_out

logger = logging.getLogger("trackly_migrate.sandbox")

# About 15-30 MB of WAL between checkpoints at the sandbox's fastest (it writes 30-60 MB/s
# storing sends), as SQLite's automatic checkpoint at 32 MB did.
INTERVAL_S = 0.5
BACKSTOP_BYTES = 256 * 1024 * 1024


class WalCheckpointer:
    """Checkpoints ``path`` (a database in WAL mode) after commits, in the background."""

    def __init__(self, path: Path | str, interval: float = INTERVAL_S) -> None:
        self.interval = interval
        self.checkpoints = 0  # made so far (for tests and stats)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 5000")
        self._condition = threading.Condition()
        self._committed = False
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="sandbox-wal", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A transaction was committed: a checkpoint is due (within ``interval``)."""
        with self._condition:
            self._committed = True
            self._condition.notify()

    def close(self) -> None:
        """Stop after a last checkpoint of what is committed, and close the connection."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        last = float("-inf")
        while True:
            with self._condition:
                while not (self._committed or self._closing):
                    self._condition.wait()
                wait_out(self._condition, last + self.interval, lambda: self._closing)
                due, self._committed = self._committed, False
                closing = self._closing
            if due:
                self._checkpoint()
                last = time.monotonic()
            if closing:
                return

    def _checkpoint(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the next commit tries again; the backstop stays
            logger.warning("a checkpoint of the sandbox database failed: %s", exc)
            return
        self.checkpoints += 1
