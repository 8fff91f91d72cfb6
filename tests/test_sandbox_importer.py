"""Import requests that wait for the importer share a commit, each stored all or nothing.

The store's lock is held by the test while the requests queue, so which requests share a
turn is decided by the test, not by timing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tests.helpers import Api, send
from trackly_migrate.sandbox.importer import Importer
from trackly_migrate.sandbox.seed import default_seed
from trackly_migrate.sandbox.server import RunningSandbox
from trackly_migrate.sandbox.store import SendValues, Store, Transaction


def _row(message_id: str) -> SendValues:
    timestamp = "2025-11-15T14:30:00.000000Z"
    return (message_id, 42, "+12025559876", timestamp, None, None, None, None, None)


def _insert(message_id: str) -> Callable[[Transaction], str]:
    def work(tx: Transaction) -> str:
        tx.insert_send(1, _row(message_id))
        return message_id

    return work


def _insert_then_fail(tx: Transaction) -> str:
    tx.insert_send(1, _row("grp_failed"))
    raise RuntimeError("this request fails after writing")


def _stored(store: Store, prefix: str) -> list[str]:
    with store.reading() as conn:
        rows = conn.execute(
            "SELECT id FROM messages WHERE id LIKE ? ORDER BY id", (prefix + "%",)
        ).fetchall()
    return [row[0] for row in rows]


def test_waiting_requests_share_one_commit_and_a_failing_one_is_undone_alone(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "group.db")
    store.open(default_seed())
    importer = Importer(store)
    results: dict[str, object] = {}

    async def request(name: str, work: Callable[[Transaction], str]) -> None:
        try:
            results[name] = await importer.run(work)
        except RuntimeError as exc:
            results[name] = exc

    async def main() -> None:
        lock = store.reading()
        lock.__enter__()  # the first turn blocks on the store until the others queued
        async with anyio.create_task_group() as group:
            try:
                group.start_soon(request, "first", _insert("grp_1"))
                with anyio.fail_after(30):
                    while not importer._turn.locked() or importer._pending:
                        await anyio.sleep(0.001)
                group.start_soon(request, "a", _insert("grp_2"))
                group.start_soon(request, "b", _insert_then_fail)
                group.start_soon(request, "c", _insert("grp_3"))
                with anyio.fail_after(30):
                    while len(importer._pending) < 3:
                        await anyio.sleep(0.001)
            finally:
                lock.__exit__(None, None, None)

    anyio.run(main)
    assert results["first"] == "grp_1"
    assert results["a"] == "grp_2"
    assert results["c"] == "grp_3"
    assert isinstance(results["b"], RuntimeError)
    assert _stored(store, "grp_") == ["grp_1", "grp_2", "grp_3"]  # grp_failed undone
    assert importer.stats.snapshot() == {"requests": 4, "commits": 2, "largest_group": 3}
    store.close()


def test_a_request_alone_is_committed_before_it_is_answered(tmp_path: Path) -> None:
    store = Store(tmp_path / "alone.db")
    store.open(default_seed())
    importer = Importer(store)

    async def main() -> str:
        return await importer.run(_insert("alone_1"))

    assert anyio.run(main) == "alone_1"
    # Another connection sees it: the commit happened before run() returned.

    with sqlite3.connect(tmp_path / "alone.db") as other:
        assert (
            other.execute("SELECT count(*) FROM messages WHERE id = 'alone_1'").fetchone()[0] == 1
        )
    assert importer.stats.snapshot() == {"requests": 1, "commits": 1, "largest_group": 1}
    store.close()


@pytest.mark.parametrize("name", ["record; DROP TABLE messages", "1x", ""])
def test_a_savepoint_name_must_be_an_identifier(tmp_path: Path, name: str) -> None:
    store = Store(tmp_path / "names.db")
    store.open(default_seed())
    with (
        pytest.raises(ValueError, match="savepoint name"),
        store.transaction() as tx,
        tx.savepoint(name),
    ):
        pass
    store.close()


def test_stats_count_import_requests_and_their_commits(sandbox: RunningSandbox) -> None:
    api = Api(sandbox)
    try:
        for batch in range(2):  # one after the other: nothing waits, a commit each
            api.ok(api.sends([send(f"stat_{batch}_{n}", list_id=42) for n in range(3)]))
        assert sandbox.stats()["imports"] == {"requests": 2, "commits": 2, "largest_group": 1}
        sandbox.reset()
        assert sandbox.stats()["imports"] == {"requests": 0, "commits": 0, "largest_group": 0}
    finally:
        api.close()
