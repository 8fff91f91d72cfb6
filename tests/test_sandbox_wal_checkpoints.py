"""The sandbox's WAL is checkpointed from its own thread, not inside the importer's commits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers import wait_until
from trackly_migrate.sandbox.seed import DEMO_API_KEY, default_seed
from trackly_migrate.sandbox.store import Store
from trackly_migrate.sandbox.wal_checkpoints import BACKSTOP_BYTES, WalCheckpointer


def wal_database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # only the checkpointer copies the WAL
    conn.execute("CREATE TABLE t (n INTEGER)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the table is in the file, as before a run
    return conn


def rows_in_the_file(path: Path) -> int:
    """The rows of t that the database file holds (a copy without its WAL is read)."""
    copy = path.with_name("copy.db")
    copy.write_bytes(path.read_bytes())
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()
        copy.unlink()


def test_a_commit_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    conn = wal_database(tmp_path / "w.db")
    checkpointer = WalCheckpointer(tmp_path / "w.db")
    conn.execute("INSERT INTO t VALUES (1)")
    assert rows_in_the_file(tmp_path / "w.db") == 0  # in the WAL only
    checkpointer.committed()
    wait_until(lambda: checkpointer.checkpoints == 1, "the checkpoint")
    assert rows_in_the_file(tmp_path / "w.db") == 1
    checkpointer.close()


def test_commits_within_the_interval_share_one_checkpoint_and_close_makes_the_last(
    tmp_path: Path,
) -> None:
    conn = wal_database(tmp_path / "w.db")
    checkpointer = WalCheckpointer(tmp_path / "w.db", interval=3600)
    conn.execute("INSERT INTO t VALUES (1)")
    checkpointer.committed()
    wait_until(lambda: checkpointer.checkpoints == 1, "the first checkpoint")
    for n in range(3):  # inside the hour: they wait for one more checkpoint together
        conn.execute("INSERT INTO t VALUES (?)", (n,))
        checkpointer.committed()
    assert checkpointer.checkpoints == 1
    assert rows_in_the_file(tmp_path / "w.db") == 1
    checkpointer.close()  # does not wait out the interval
    assert checkpointer.checkpoints == 2
    assert rows_in_the_file(tmp_path / "w.db") == 4


def test_closing_without_commits_makes_no_checkpoint(tmp_path: Path) -> None:
    wal_database(tmp_path / "w.db")
    checkpointer = WalCheckpointer(tmp_path / "w.db")
    checkpointer.close()
    assert checkpointer.checkpoints == 0


def test_a_file_store_commits_without_checkpointing_and_its_thread_does(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    store = Store(path)
    store.open(default_seed())
    with store.reading() as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        # The commit's own checkpoint is only the backstop, far past one import's WAL.
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == (
            BACKSTOP_BYTES // page_size
        )
    account = store.account_for_key(DEMO_API_KEY)
    with store.transaction() as tx:
        tx.clear(account or 0, ["revenue"], None)
    checkpointer = store._checkpointer
    assert checkpointer is not None
    wait_until(lambda: checkpointer.checkpoints >= 1, "the store's checkpoint")
    store.close()
    assert not Path(f"{path}-wal").exists()  # the last connection to close removed it


def test_a_memory_store_has_no_checkpointer() -> None:
    store = Store(":memory:")
    store.open(default_seed())
    assert store._checkpointer is None
    store.close()
