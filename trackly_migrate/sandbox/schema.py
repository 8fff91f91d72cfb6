"""The sandbox database's schema, and how a seed becomes rows (inside a caller's transaction).

Timestamps are stored as fixed-width UTC text (``validation.format_utc``), so comparing the
text compares the instants.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable

from trackly_migrate.sandbox.seed import Seed, SeedAccount, SeedList


class StoreError(Exception):
    """The database file cannot be used as a sandbox database."""


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

SCHEMA = """
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
-- Live messages (a few, seeded) apart, for counting them: an import adds nothing to it.
-- No index on the time of imported messages: every stored send would pay for it, and only
-- a clear with before_date (a scan of the account's messages) would use it.
CREATE INDEX live_messages ON messages(account_id) WHERE imported = 0;
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


# A file made before the indexes above changed (same tables, same version) gets them too.
UPGRADE_INDEXES = (
    "DROP INDEX IF EXISTS messages_by_import_time",
    "CREATE INDEX IF NOT EXISTS live_messages ON messages(account_id) WHERE imported = 0",
)


def key_digest(api_key: str) -> str:
    """How a key is stored and looked up."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def insert_keys(conn: sqlite3.Connection, account_id: int, keys: Iterable[str]) -> None:
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


def apply_seed(conn: sqlite3.Connection, seed: Seed) -> None:
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
        insert_keys(conn, cursor.lastrowid, account.api_keys)
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
