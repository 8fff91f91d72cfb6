"""multirow.RowsInsert stores exactly what executemany of one row's statement stores."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackly_migrate.sandbox import multirow
from trackly_migrate.sandbox.multirow import RowsInsert

SCHEMA = "CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0), hits INTEGER)"
HEAD = "INSERT INTO t (k, n, hits) VALUES"
ROW = "(?, ?, 1)"
TAILS = ("", " ON CONFLICT DO NOTHING", " ON CONFLICT (k) DO UPDATE SET hits = hits + 1")

rows_strategy = st.lists(
    st.tuples(st.sampled_from("abcdefgh"), st.integers(min_value=-1, max_value=3)), max_size=40
)


def database() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(SCHEMA)
    return conn


def outcome(
    conn: sqlite3.Connection, store: Callable[[], int]
) -> tuple[object, list[tuple[object, ...]]]:
    """What storing did (rows changed, or the error's class) and the table after it."""
    conn.execute("SAVEPOINT s")
    try:
        result: object = store()
        conn.execute("RELEASE s")
    except sqlite3.Error as exc:
        conn.execute("ROLLBACK TO s")
        conn.execute("RELEASE s")
        result = type(exc)
    return result, conn.execute("SELECT * FROM t ORDER BY k").fetchall()


@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy, tail=st.sampled_from(TAILS), per_statement=st.integers(1, 7))
def test_same_rows_and_count_as_executemany(
    rows: list[tuple[str, int]], tail: str, per_statement: int
) -> None:
    """Same table and count (or the same failure, with nothing stored) for any rows: repeats
    of a key within one statement, across statements, and rows failing their CHECK."""
    one_by_one, together = database(), database()
    # SQLite's limit on bound parameters decides how many rows share a statement.
    together.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 2 * per_statement)
    statement = HEAD + " " + ROW + tail
    expected = outcome(one_by_one, lambda: one_by_one.executemany(statement, rows).rowcount)
    insert = RowsInsert(HEAD, ROW, tail)
    assert outcome(together, lambda: insert.run(together, rows)) == expected


def test_a_request_is_one_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 rows (a whole request) go in one statement; more are split at MAX_ROWS."""
    conn = database()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    rows = [(f"k{n}", n) for n in range(2500)]
    assert RowsInsert(HEAD, ROW).run(conn, rows[:1000]) == 1000
    assert len(statements) == 1
    statements.clear()
    assert RowsInsert(HEAD, ROW).run(conn, rows[1000:]) == 1500
    assert [statement.count("(") for statement in statements] == [1001, 501]  # + the columns
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2500,)
    assert multirow.MAX_ROWS == 1000
