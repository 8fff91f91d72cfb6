"""Many rows in one statement: ``INSERT ... VALUES (...), (...), ... [ON CONFLICT ...]``.

Why not ``executemany``: it runs its statement once per row, and every run binds, steps and
resets the statement, and lets go of the interpreter lock and takes it back (when another
thread holds the lock meanwhile, that waits for the thread's switch interval). One statement
of up to ``MAX_ROWS`` rows makes the same writes in one step: storing 200,000 sends and their
contacts took 0.69-0.76 s of SQLite CPU instead of 0.99-1.2 s (measured), and the request's
other threads run Python meanwhile.

The rows are judged exactly as by ``executemany``: in order, each meeting the ``ON CONFLICT``
clause on its own (a row may conflict with an earlier row of the same statement), and a
constraint failure undoes the whole statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

# At most this many rows per statement: a request holds at most 1,000 records, so a request
# is one statement; fewer where SQLite allows fewer bound parameters (999 before 3.32).
MAX_ROWS = 1000


class RowsInsert:
    """An INSERT of many rows: ``head`` (up to VALUES), one row's ``(...)``, then ``tail``."""

    def __init__(self, head: str, row: str, tail: str = "") -> None:
        self.head = head
        self.row = row
        self.tail = tail
        self.width = row.count("?")

    def run(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` (each ``width`` parameters); how many rows SQLite changed."""
        allowed = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // max(self.width, 1)
        per_statement = max(1, min(MAX_ROWS, allowed))
        changed = 0
        for start in range(0, len(rows), per_statement):
            part = rows[start : start + per_statement]
            sql = _statement(self.head, self.row, self.tail, len(part))
            changed += conn.execute(sql, list(chain.from_iterable(part))).rowcount
        return changed


@lru_cache(maxsize=64)
def _statement(head: str, row: str, tail: str, count: int) -> str:
    # The same text for the same count, so that sqlite3's statement cache finds it compiled.
    return f"{head} {', '.join([row] * count)}{tail}"
