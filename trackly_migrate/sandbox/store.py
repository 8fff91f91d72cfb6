"""SQLite storage of the sandbox: schema, seeding, and the queries the routes need.

One connection, guarded by one lock: SQLite serializes writers anyway, and a single
connection works for ``:memory:`` too (each new connection to ``:memory:`` would be a new,
empty database). Every API request runs inside one ``transaction()``: either all of its
effects are committed or none.

Timestamps are stored as fixed-width UTC text (``validation.format_utc``), so comparing the
text compares the instants.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackly_migrate.sandbox.seed import Seed, SeedAccount, SeedList

SCHEMA_VERSION = 1
APPLICATION_ID = 0x54524B53  # "TRKS": marks a file as a sandbox database

TABLES = (
    "accounts",
    "api_keys",
    "lists",
    "list_contacts",
    "offers",
    "messages",
    "clicks",
    "revenue",
)

_SCHEMA = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
-- Keys are stored as SHA-256 digests: the database file never holds a usable key.
CREATE TABLE api_keys (
    key_sha256 TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id)
) WITHOUT ROWID;
-- A sending list is a phone number, and a number belongs to one account only.
CREATE TABLE lists (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    number TEXT NOT NULL UNIQUE,
    name TEXT
);
CREATE INDEX lists_by_account ON lists(account_id);
CREATE TABLE list_contacts (
    list_id INTEGER NOT NULL REFERENCES lists(id),
    phone TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    unsubscribe_reason TEXT,
    send_count INTEGER NOT NULL DEFAULT 0,
    click_count INTEGER NOT NULL DEFAULT 0,
    last_clicked_at TEXT,
    PRIMARY KEY (list_id, phone)
) WITHOUT ROWID;
CREATE TABLE offers (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    name TEXT,
    PRIMARY KEY (account_id, id)
) WITHOUT ROWID;
-- Message ids are unique per account: two accounts may hold the same id.
CREATE TABLE messages (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    id TEXT NOT NULL,
    list_id INTEGER REFERENCES lists(id),
    to_number TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    imported INTEGER NOT NULL CHECK (imported IN (0, 1)),
    message TEXT,
    send_type TEXT,
    delivered INTEGER CHECK (delivered IN (0, 1)),
    length INTEGER,
    creative_id INTEGER,
    PRIMARY KEY (account_id, id)
);
-- The clear of sends selects imported messages of one account by time.
CREATE INDEX messages_by_import_time ON messages(account_id, imported, timestamp);
-- One click per message (the vendor's MessageClick keys on message_id). No foreign key to
-- messages: clearing sends alone leaves their clicks in place, as the contract says.
CREATE TABLE clicks (
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    message_id TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    phone TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    send_timestamp TEXT,
    PRIMARY KEY (account_id, message_id),
    FOREIGN KEY (account_id, offer_id) REFERENCES offers(account_id, id)
);
CREATE TABLE revenue (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    message_id TEXT,
    amount REAL NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX revenue_by_account_time ON revenue(account_id, timestamp);
"""


class StoreError(Exception):
    """The database file cannot be used as a sandbox database."""


def key_digest(api_key: str) -> str:
    """How a key is stored and looked up."""
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class SendRow:
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


@dataclass(frozen=True)
class ClickRow:
    """A checked click record, ready to insert."""

    message_id: str
    offer_id: str
    phone: str
    timestamp: str
    send_timestamp: str | None


class Transaction:
    """The queries of one request, inside one SQLite transaction (see Store.transaction)."""

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

    def message_exists(self, account_id: int, message_id: str) -> bool:
        sql = "SELECT 1 FROM messages WHERE account_id = ? AND id = ?"
        return self._one(sql, (account_id, message_id)) is not None

    def message_list(self, account_id: int, message_id: str) -> tuple[bool, int | None, str | None]:
        """(whether the message exists, the id of its list or None, its recipient)."""
        row = self._conn.execute(
            "SELECT list_id, to_number FROM messages WHERE account_id = ? AND id = ?",
            (account_id, message_id),
        ).fetchone()
        return (False, None, None) if row is None else (True, row[0], row[1])

    def click_exists(self, account_id: int, message_id: str) -> bool:
        sql = "SELECT 1 FROM clicks WHERE account_id = ? AND message_id = ?"
        return self._one(sql, (account_id, message_id)) is not None

    def offer_exists(self, account_id: int, offer_id: str) -> bool:
        sql = "SELECT 1 FROM offers WHERE account_id = ? AND id = ?"
        return self._one(sql, (account_id, offer_id)) is not None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """One record's writes: on failure they are undone, the rest of the request stays."""
        self._conn.execute("SAVEPOINT record")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK TO record")
            self._conn.execute("RELEASE record")
            raise
        self._conn.execute("RELEASE record")

    def insert_send(self, account_id: int, row: SendRow) -> None:
        """Store an imported send; create or bump the recipient's contact on the list."""
        self._conn.execute(
            "INSERT INTO messages (account_id, id, list_id, to_number, timestamp, imported,"
            " message, send_type, delivered, length, creative_id)"
            " VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
            (
                account_id,
                row.id,
                row.list_id,
                row.to_number,
                row.timestamp,
                row.message,
                row.send_type,
                row.delivered,
                row.length,
                row.creative_id,
            ),
        )
        if row.list_id is not None:
            # The update branch leaves `active` alone: a send never re-subscribes anyone.
            self._conn.execute(
                "INSERT INTO list_contacts (list_id, phone, active, send_count)"
                " VALUES (?, ?, 1, 1)"
                " ON CONFLICT (list_id, phone) DO UPDATE SET send_count = send_count + 1",
                (row.list_id, row.to_number),
            )

    def insert_click(
        self, account_id: int, row: ClickRow, list_id: int | None, recipient: str | None = None
    ) -> None:
        """Store a click; update the clicker's contact on the message's list, if it exists."""
        self._conn.execute(
            "INSERT INTO clicks (account_id, message_id, offer_id, phone, timestamp,"
            " send_timestamp) VALUES (?, ?, ?, ?, ?, ?)",
            (
                account_id,
                row.message_id,
                row.offer_id,
                row.phone,
                row.timestamp,
                row.send_timestamp,
            ),
        )
        if list_id is not None:
            self._conn.execute(
                "UPDATE list_contacts SET click_count = click_count + 1,"
                " last_clicked_at = max(coalesce(last_clicked_at, ?), ?)"
                " WHERE list_id = ? AND phone = ?",
                (row.timestamp, row.timestamp, list_id, recipient or row.phone),
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
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the sandbox database {db}: {exc}") from exc
        self._db = db
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
            # WAL: readers (stats, a user's sqlite3 shell) never block the writer.
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            # Statement by statement: executescript() would COMMIT the open transaction first.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            _apply_seed(self._conn, seed)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

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
            self._conn.execute("PRAGMA synchronous = NORMAL")

    def _sync_keys(self, seed: Seed) -> None:
        """Give each seed account's keys to the stored account of the same name.

        The first seed account holds the sandbox's own key: when the stored database has no
        account of that name (it was seeded from another file), the first stored account
        gets its keys, so the key the user was told to use always works.
        """
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for position, account in enumerate(seed.accounts):
                row = self._conn.execute(
                    "SELECT id FROM accounts WHERE name = ?", (account.name,)
                ).fetchone()
                if row is None and position == 0:
                    row = self._conn.execute("SELECT min(id) FROM accounts").fetchone()
                if row is not None and row[0] is not None:
                    _insert_keys(self._conn, row[0], account.api_keys)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

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
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def reset(self, seed: Seed) -> None:
        """Delete every row and seed again, in one transaction."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # Children before parents, for the foreign keys.
                for table in reversed(TABLES):
                    self._conn.execute(f"DELETE FROM {table}")
                _apply_seed(self._conn, seed)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
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
            "imported_messages": "SELECT count(*) FROM messages"
            " WHERE account_id = ? AND imported = 1",
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
        return {
            name: self._conn.execute(sql, (account_id,)).fetchone()[0]
            for name, sql in queries.items()
        }

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _insert_keys(conn: sqlite3.Connection, account_id: int, keys: Iterable[str]) -> None:
    for key in keys:
        digest = key_digest(key)
        owner = conn.execute(
            "SELECT account_id FROM api_keys WHERE key_sha256 = ?", (digest,)
        ).fetchone()
        if owner is None:
            conn.execute(
                "INSERT INTO api_keys (key_sha256, account_id) VALUES (?, ?)",
                (digest, account_id),
            )
        elif owner[0] != account_id:
            raise StoreError("an API key of the seed already belongs to another account")


def _apply_seed(conn: sqlite3.Connection, seed: Seed) -> None:
    """Insert every seed account (inside the caller's transaction)."""
    list_ids: dict[str, int] = {}
    # Lists with a given id first: an automatic id must not take an id a later list asks for.
    for account_id, account in _insert_accounts(conn, seed):
        for item in account.lists:
            if item.id is not None:
                list_ids[item.number] = _insert_list(conn, account_id, item.id, item)
    for account_id, account in _account_ids(conn, seed):
        for item in account.lists:
            if item.id is None:
                list_ids[item.number] = _insert_list(conn, account_id, None, item)
        _insert_account_rows(conn, account_id, account, list_ids)


def _insert_accounts(conn: sqlite3.Connection, seed: Seed) -> list[tuple[int, SeedAccount]]:
    inserted = []
    for account in seed.accounts:
        cursor = conn.execute("INSERT INTO accounts (name) VALUES (?)", (account.name,))
        assert cursor.lastrowid is not None
        _insert_keys(conn, cursor.lastrowid, account.api_keys)
        inserted.append((cursor.lastrowid, account))
    return inserted


def _account_ids(conn: sqlite3.Connection, seed: Seed) -> list[tuple[int, SeedAccount]]:
    ids = dict(conn.execute("SELECT name, id FROM accounts").fetchall())
    return [(ids[account.name], account) for account in seed.accounts]


def _insert_list(
    conn: sqlite3.Connection, account_id: int, list_id: int | None, item: SeedList
) -> int:
    cursor = conn.execute(
        "INSERT INTO lists (id, account_id, number, name) VALUES (?, ?, ?, ?)",
        (list_id, account_id, item.number, item.name),
    )
    assert cursor.lastrowid is not None
    conn.executemany(
        "INSERT INTO list_contacts (list_id, phone, active, unsubscribe_reason, send_count,"
        " click_count, last_clicked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                cursor.lastrowid,
                c.phone,
                c.active,
                c.unsubscribe_reason,
                c.send_count,
                c.click_count,
                c.last_clicked_at,
            )
            for c in item.contacts
        ],
    )
    return cursor.lastrowid


def _insert_account_rows(
    conn: sqlite3.Connection, account_id: int, account: SeedAccount, list_ids: dict[str, int]
) -> None:
    conn.executemany(
        "INSERT INTO offers (account_id, id, name) VALUES (?, ?, ?)",
        [(account_id, offer.id, offer.name) for offer in account.offers],
    )
    conn.executemany(
        "INSERT INTO messages (account_id, id, list_id, to_number, timestamp, imported,"
        " message, send_type, delivered, length, creative_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                account_id,
                m.id,
                None if m.list_number is None else list_ids[m.list_number],
                m.to_number,
                m.timestamp,
                m.imported,
                m.message,
                m.send_type,
                m.delivered,
                m.length,
                m.creative_id,
            )
            for m in account.messages
        ],
    )
    conn.executemany(
        "INSERT INTO clicks (account_id, message_id, offer_id, phone, timestamp, send_timestamp)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (account_id, c.message_id, c.offer_id, c.phone_number, c.timestamp, c.send_timestamp)
            for c in account.clicks
        ],
    )
    conn.executemany(
        "INSERT INTO revenue (account_id, message_id, amount, timestamp) VALUES (?, ?, ?, ?)",
        [(account_id, r.message_id, r.amount, r.timestamp) for r in account.revenue],
    )
