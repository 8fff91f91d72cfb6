"""SQLite storage of the sandbox: the connection, its transactions, and the queries of the routes.

One connection, guarded by one lock: SQLite serializes writers anyway, and a single
connection works for ``:memory:`` too (each new connection to ``:memory:`` would be a new,
empty database). Every API request runs inside one ``transaction()`` (an import request
in a savepoint of one that several waiting imports share, see ``importer.py``): either all
of its effects are committed or none. A request's records are written in bulk (one
multi-row INSERT per table, see ``multirow.py``; the ids already stored are looked up in one
query, and only when the insert meets one, see ``insert_new_sends``): per-record statements
cost more than the writes themselves.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from trackly_migrate.sandbox.multirow import RowsInsert
from trackly_migrate.sandbox.schema import (
    APPLICATION_ID,
    SCHEMA,
    SCHEMA_VERSION,
    TABLES,
    UPGRADE_INDEXES,
    StoreError,
    apply_seed,
    insert_keys,
    key_digest,
)
from trackly_migrate.sandbox.seed import Seed
from trackly_migrate.sandbox.wal_checkpoints import BACKSTOP_BYTES, WalCheckpointer

logger = logging.getLogger("trackly_migrate.sandbox")

__all__ = [
    "TABLES",
    "ClickRow",
    "SendRow",
    "SendValues",
    "Store",
    "StoreError",
    "Transaction",
    "key_digest",
]


# Named tuples, not frozen dataclasses: one of these is made per record, and a frozen
# dataclass's __init__ (object.__setattr__ per field) costs several times a tuple's.
class SendRow(NamedTuple):
    """A checked send record, ready to insert."""

    id: str
    list_id: int | None
    to_number: str
    timestamp: str
    message: str | None
    send_type: str | None
    delivered: bool | None
    length: int | None
    creative_id: int | None


# A send row as a plain tuple, SendRow's fields in its order: what the fast path of the
# checks makes of a good record (a plain tuple costs half a NamedTuple's construction).
SendValues = tuple[
    str, int | None, str, str, str | None, str | None, bool | None, int | None, int | None
]


class ClickRow(NamedTuple):
    """A checked click record, ready to insert."""

    message_id: str
    offer_id: str
    phone: str
    timestamp: str
    send_timestamp: str | None


def _bind_null(value: None) -> None:
    return value


# How sqlite3 binds a bool (as its int) and None (as NULL) stays the same; registered, they
# are found in its adapter table at once. Unregistered, each one first costs CPython a failed
# attribute look-up that formats an AttributeError message and throws it away: a third of
# the binding of a typical send row, where ``delivered`` is a bool and fields are absent.
sqlite3.register_adapter(bool, int)
sqlite3.register_adapter(type(None), _bind_null)


_INSERT_MESSAGE = (
    "INSERT INTO messages (account_id, id, list_id, to_number, timestamp, imported,"
    " message, send_type, delivered, length, creative_id)"
    " VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)"
)
# The columns in SendRow's field order, so that a SendRow is the parameters of a row.
_MESSAGE_ROWS_HEAD = (
    "INSERT INTO messages (account_id, imported, id, list_id, to_number, timestamp,"
    " message, send_type, delivered, length, creative_id) VALUES"
)
_MESSAGE_ROW = "({account_id}, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
assert SendRow._fields == (
    "id", "list_id", "to_number", "timestamp", "message", "send_type", "delivered", "length",
    "creative_id",
)  # fmt: skip
# The update branch leaves `active` alone: a send never re-subscribes anyone.
_UPSERT_CONTACT = (
    "INSERT INTO list_contacts (list_id, phone, active, send_count) VALUES (?, ?, 1, 1)"
    " ON CONFLICT (list_id, phone) DO UPDATE SET send_count = send_count + 1"
)
_UPSERT_CONTACTS = RowsInsert(
    "INSERT INTO list_contacts (list_id, phone, active, send_count) VALUES",
    "(?, ?, 1, 1)",
    " ON CONFLICT (list_id, phone) DO UPDATE SET send_count = send_count + 1",
)
# DO NOTHING: an id that exists already is not an error here; insert_new_sends counts the
# rows stored instead (one look-up of the primary key, which the insert makes anyway).
_ONLY_NEW = " ON CONFLICT DO NOTHING"
_INSERT_CLICK = (
    "INSERT INTO clicks (account_id, message_id, offer_id, phone, timestamp, send_timestamp)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_CLICKS = RowsInsert(
    "INSERT INTO clicks (account_id, message_id, offer_id, phone, timestamp, send_timestamp)"
    " VALUES",
    "(?, ?, ?, ?, ?, ?)",
)
_COUNT_CLICK = (
    "UPDATE list_contacts SET click_count = click_count + 1,"
    " last_clicked_at = max(coalesce(last_clicked_at, ?), ?)"
    " WHERE list_id = ? AND phone = ?"
)


def _click_params(account_id: int, row: ClickRow) -> tuple[Any, ...]:
    return (account_id, row.message_id, row.offer_id, row.phone, row.timestamp, row.send_timestamp)


class _NotAllNew(Exception):
    """Raised inside insert_new_sends' savepoint to undo it: an id already existed."""


class Transaction:
    """The queries of a request, inside a SQLite transaction (see Store.transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def list_by_id(self, account_id: int, list_id: int) -> int | None:
        sql = "SELECT id FROM lists WHERE id = ? AND account_id = ?"
        found: int | None = self._one(sql, (list_id, account_id))
        return found

    def list_by_number(self, account_id: int, number: str) -> int | None:
        sql = "SELECT id FROM lists WHERE number = ? AND account_id = ?"
        found: int | None = self._one(sql, (number, account_id))
        return found

    def offer_exists(self, account_id: int, offer_id: str) -> bool:
        sql = "SELECT 1 FROM offers WHERE account_id = ? AND id = ?"
        return self._one(sql, (account_id, offer_id)) is not None

    def stored_message_ids(self, account_id: int, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the account already holds as messages (one query)."""
        rows = self._conn.execute(
            "SELECT id FROM messages WHERE account_id = ?"
            " AND id IN (SELECT value FROM json_each(?))",
            (account_id, orjson.dumps(list(ids)).decode()),
        ).fetchall()
        return {row[0] for row in rows}

    def stored_click_ids(self, account_id: int, message_ids: Sequence[str]) -> set[str]:
        """Which of ``message_ids`` already have a click in the account (one query)."""
        rows = self._conn.execute(
            "SELECT message_id FROM clicks WHERE account_id = ?"
            " AND message_id IN (SELECT value FROM json_each(?))",
            (account_id, orjson.dumps(list(message_ids)).decode()),
        ).fetchall()
        return {row[0] for row in rows}

    def message_lists(
        self, account_id: int, message_ids: Sequence[str]
    ) -> dict[str, tuple[int | None, str]]:
        """For each of ``message_ids`` the account holds: (its list id or None, its recipient)."""
        rows = self._conn.execute(
            "SELECT id, list_id, to_number FROM messages WHERE account_id = ?"
            " AND id IN (SELECT value FROM json_each(?))",
            (account_id, orjson.dumps(list(message_ids)).decode()),
        ).fetchall()
        return {row[0]: (row[1], row[2]) for row in rows}

    def insert_sends(self, account_id: int, rows: Sequence[SendValues]) -> bool:
        """Store checked sends (as ``insert_send``) in one go; False if that failed.

        On False nothing of them is stored: the caller stores them one by one instead, so
        that a record that cannot be saved fails alone (``bulk.py``).
        """
        return self._bulk_sends(account_id, rows, all_new=False)

    def insert_new_sends(self, account_id: int, rows: Sequence[SendValues]) -> bool:
        """Store checked sends whose ids the account should not hold yet, in one go.

        True when every row was stored. False when nothing was stored: one of the ids exists
        already, or a row cannot be saved; the caller then takes the exact path
        (``stored_message_ids``, then ``insert_sends``). Most requests of a migration hold
        only new ids, so they skip the look-up of existing ids altogether.
        """
        return self._bulk_sends(account_id, rows, all_new=True)

    def _bulk_sends(self, account_id: int, rows: Sequence[SendValues], *, all_new: bool) -> bool:
        # By position: the rows are SendRows or plain tuples (SendValues) of the same fields.
        contacts = [(row[1], row[2]) for row in rows if row[1] is not None]
        # The rows are the statement's parameters as they are (no tuple built per record):
        # the account, the same for all, is written into the statement (an int, never text).
        insert = RowsInsert(
            _MESSAGE_ROWS_HEAD,
            _MESSAGE_ROW.format(account_id=int(account_id)),
            _ONLY_NEW if all_new else "",
        )
        conn = self._conn

        def bulk() -> None:
            if insert.run(conn, rows) != len(rows) and all_new:
                raise _NotAllNew  # undoes the savepoint: nothing of the request is stored
            _UPSERT_CONTACTS.run(conn, contacts)

        return self._all_or_nothing(bulk)

    def insert_clicks(
        self, account_id: int, clicks: Sequence[tuple[ClickRow, int | None, str | None]]
    ) -> bool:
        """Store (click, its message's list, its recipient) triples in one go; False if not."""
        inserts = [_click_params(account_id, row) for row, _, _ in clicks]
        contacts = [
            (row.timestamp, row.timestamp, list_id, recipient or row.phone)
            for row, list_id, recipient in clicks
            if list_id is not None
        ]

        def bulk() -> None:
            _INSERT_CLICKS.run(self._conn, inserts)
            self._conn.executemany(_COUNT_CLICK, contacts)

        return self._all_or_nothing(bulk)

    def _all_or_nothing(self, bulk: Callable[[], None]) -> bool:
        """Run ``bulk`` in a savepoint; if it fails, undo all of it and return False."""
        try:
            with self.savepoint():
                bulk()
        except _NotAllNew:
            return False  # expected now and then: the caller looks the ids up
        except sqlite3.Error:
            logger.warning("a bulk insert failed; the records are judged or saved one by one")
            return False
        return True

    @contextmanager
    def savepoint(self, name: str = "record") -> Iterator[None]:
        """One record's (or request's) writes: on failure they are undone, the rest stays."""
        if not name.isidentifier():
            raise ValueError(f"not a savepoint name: {name!r}")
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            raise
        self._conn.execute(f"RELEASE {name}")

    def insert_send(self, account_id: int, row: SendValues) -> None:
        """Store an imported send; create or bump the recipient's contact on the list."""
        self._conn.execute(_INSERT_MESSAGE, (account_id, *row))
        if row[1] is not None:  # list_id, then to_number
            self._conn.execute(_UPSERT_CONTACT, (row[1], row[2]))

    def insert_click(
        self, account_id: int, row: ClickRow, list_id: int | None, recipient: str | None = None
    ) -> None:
        """Store a click; update the clicker's contact on the message's list, if it exists."""
        self._conn.execute(_INSERT_CLICK, _click_params(account_id, row))
        if list_id is not None:
            self._conn.execute(
                _COUNT_CLICK, (row.timestamp, row.timestamp, list_id, recipient or row.phone)
            )

    def clear(self, account_id: int, entities: Iterable[str], before: str | None) -> dict[str, int]:
        """Delete the account's records of each entity; counts per entity."""
        wanted = set(entities)
        time_filter = "" if before is None else " AND timestamp < ?"
        extra: tuple[Any, ...] = () if before is None else (before,)
        cleared: dict[str, int] = {}
        # Clicks first: "clicks of imported messages" must be judged while the imported
        # sends of this same request still exist.
        if "clicks" in wanted:
            cleared["clicks"] = self._conn.execute(
                "DELETE FROM clicks WHERE account_id = ? AND message_id IN"
                " (SELECT id FROM messages WHERE account_id = ? AND imported = 1)" + time_filter,
                (account_id, account_id, *extra),
            ).rowcount
        if "sends" in wanted:
            cleared["sends"] = self._conn.execute(
                "DELETE FROM messages WHERE account_id = ? AND imported = 1" + time_filter,
                (account_id, *extra),
            ).rowcount
        if "revenue" in wanted:
            cleared["revenue"] = self._conn.execute(
                "DELETE FROM revenue WHERE account_id = ?" + time_filter,
                (account_id, *extra),
            ).rowcount
        return cleared

    def unsubscribe(self, account_id: int, phone: str, list_number: str) -> bool:
        """Deactivate an active contact of one of the account's lists; True if one changed."""
        changed = self._conn.execute(
            "UPDATE list_contacts SET active = 0, unsubscribe_reason = 'api'"
            " WHERE active = 1 AND phone = ?"
            " AND list_id = (SELECT id FROM lists WHERE account_id = ? AND number = ?)",
            (phone, account_id, list_number),
        ).rowcount
        return changed > 0


class Store:
    """The sandbox database; use ``transaction()`` for everything a request does."""

    def __init__(self, db: Path | str) -> None:
        self._is_file = str(db) != ":memory:"
        self._lock = threading.Lock()
        try:
            # check_same_thread=False: requests run in a thread pool; the lock serializes them.
            self._conn = sqlite3.connect(str(db), check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._conn.execute("PRAGMA foreign_keys = ON")
            # A migration's contacts are updated at random places of their b-tree: a page cache
            # of up to 64 MB (SQLite's default is 2 MB) keeps those pages in memory.
            self._conn.execute("PRAGMA cache_size = -65536")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the sandbox database {db}: {exc}") from exc
        self._db = db
        self._checkpointer: WalCheckpointer | None = None  # a file's, once open
        self._keys: dict[str, int] = {}
        self._names: dict[int, str] = {}

    def open(self, seed: Seed) -> bool:
        """Create and seed a new database, or reuse an existing sandbox database as it is.

        Returns True when the database was created (and seeded) now. An existing sandbox
        database keeps its data (so a later run can import clicks for the sends an earlier
        run imported); only the seed's API keys are added to it.
        """
        try:
            with self._lock:
                tables = self._user_tables()
                if not tables:
                    self._create(seed)
                    created = True
                else:
                    self._check_existing(tables)
                    self._sync_keys(seed)
                    created = False
                self._load_keys()
                if self._is_file and self._checkpointer is None:
                    self._checkpointer = WalCheckpointer(self._db)
                return created
        except sqlite3.Error as exc:
            raise StoreError(f"cannot use the sandbox database {self._db}: {exc}") from exc

    def _user_tables(self) -> set[str]:
        rows = self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return {row[0] for row in rows}

    def _create(self, seed: Seed) -> None:
        if self._is_file:
            # 16 KiB pages (SQLite's default is 4): a 1,000-send commit writes a quarter as
            # many WAL frames, and the b-trees are shallower (measured: a tenth less CPU per
            # stored send). Only a new file can take it, so before anything is written.
            self._conn.execute("PRAGMA page_size = 16384")
            # WAL: readers (stats, a user's sqlite3 shell) never block the writer.
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._tune_file()
        with self._atomic():
            # Statement by statement: executescript() would COMMIT the open transaction first.
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            apply_seed(self._conn, seed)

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """One write transaction on the connection (the caller holds the lock)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def _check_existing(self, tables: set[str]) -> None:
        app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID or not tables <= set(TABLES):
            raise StoreError(
                f"{self._db} is not a sandbox database; choose a new file name "
                "(the sandbox never writes into other databases)"
            )
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"{self._db} was made by another version of the sandbox; delete it to start over"
            )
        if self._is_file:
            self._tune_file()
        with self._atomic():
            for statement in UPGRADE_INDEXES:
                self._conn.execute(statement)

    def _tune_file(self) -> None:
        """Per-connection settings of a database file (WAL mode itself is stored in the file).

        NORMAL: in WAL mode a commit is not synced, a checkpoint is; a crash can lose the
        last commits, never corrupt the file. Checkpoints are made by ``WalCheckpointer``
        (wal_checkpoints.py), every half second while commits come, not in a commit: the
        connection's own automatic checkpoint is only a backstop, past 256 MB of WAL.
        """
        self._conn.execute("PRAGMA synchronous = NORMAL")
        page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        self._conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_BYTES // page_size}")

    def _sync_keys(self, seed: Seed) -> None:
        """Give each seed account's keys to the stored account of the same name.

        The first seed account holds the sandbox's own key: when the stored database has no
        account of that name (it was seeded from another file), the first stored account
        gets its keys, so the key the user was told to use always works.
        """
        with self._atomic():
            for position, account in enumerate(seed.accounts):
                row = self._conn.execute(
                    "SELECT id FROM accounts WHERE name = ?", (account.name,)
                ).fetchone()
                if row is None and position == 0:
                    row = self._conn.execute("SELECT min(id) FROM accounts").fetchone()
                if row is not None and row[0] is not None:
                    insert_keys(self._conn, row[0], account.api_keys)

    def _load_keys(self) -> None:
        rows = self._conn.execute("SELECT key_sha256, account_id FROM api_keys").fetchall()
        self._keys = dict(rows)
        names = self._conn.execute("SELECT id, name FROM accounts").fetchall()
        self._names = dict(names)

    def account_for_key(self, api_key: str) -> int | None:
        """The account id a key belongs to (from memory: keys change only on reset)."""
        return self._keys.get(key_digest(api_key))

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Run a request's queries atomically; an exception rolls everything back."""
        with self._lock, self._atomic():
            yield Transaction(self._conn)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for read-only queries (inspection), while no request writes."""
        with self._lock:
            yield self._conn

    def account_names(self) -> dict[int, str]:
        """Account id to name (from memory, as the keys)."""
        return dict(self._names)

    def reset(self, seed: Seed) -> None:
        """Delete every row and seed again, in one transaction."""
        with self._lock:
            with self._atomic():
                # Children before parents, for the foreign keys.
                for table in reversed(TABLES):
                    self._conn.execute(f"DELETE FROM {table}")
                apply_seed(self._conn, seed)
            self._load_keys()

    def stats(self) -> dict[str, Any]:
        """Row counts per table and per account."""
        with self._lock:
            tables = {
                table: self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in TABLES
            }
            accounts = {
                name: self._account_stats(account_id) for account_id, name in self._names.items()
            }
        return {"tables": tables, "accounts": accounts}

    def _account_stats(self, account_id: int) -> dict[str, int]:
        queries = {
            "messages": "SELECT count(*) FROM messages WHERE account_id = ?",
            # Through the partial index live_messages (see schema.py): imported ones are the
            # rest, so no count needs the messages themselves.
            "live_messages": "SELECT count(*) FROM messages WHERE account_id = ? AND imported = 0",
            "clicks": "SELECT count(*) FROM clicks WHERE account_id = ?",
            "revenue": "SELECT count(*) FROM revenue WHERE account_id = ?",
            "lists": "SELECT count(*) FROM lists WHERE account_id = ?",
            "list_contacts": "SELECT count(*) FROM list_contacts"
            " JOIN lists ON lists.id = list_contacts.list_id WHERE lists.account_id = ?",
            "active_contacts": "SELECT count(*) FROM list_contacts"
            " JOIN lists ON lists.id = list_contacts.list_id"
            " WHERE lists.account_id = ? AND list_contacts.active = 1",
            "offers": "SELECT count(*) FROM offers WHERE account_id = ?",
        }
        counts = {
            name: self._conn.execute(sql, (account_id,)).fetchone()[0]
            for name, sql in queries.items()
        }
        imported = {"imported_messages": counts["messages"] - counts["live_messages"]}
        return {"messages": counts.pop("messages"), **imported, **counts}

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()  # first: the last connection to close removes the WAL
            self._checkpointer = None
        with self._lock:
            self._conn.close()
