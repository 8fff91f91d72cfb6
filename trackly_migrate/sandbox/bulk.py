"""The bulk imports' rules that need the account's data, inside the request's transaction.

``store_sends`` / ``store_clicks`` take the records ``rules.check_send`` / ``check_click``
judged, decide duplicates, lists, messages and offers, and store; ``bulk_body`` is the
documented answer. ``BULK_KINDS`` ties each endpoint to its rules, so one handler serves both.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from trackly_migrate.sandbox.rules import (
    ClickCandidate,
    Rejected,
    SendCandidate,
    check_click,
    check_send,
    missing,
)
from trackly_migrate.sandbox.store import ClickRow, SendRow, Transaction

logger = logging.getLogger("trackly_migrate.sandbox")

MAX_LISTED_ERRORS = 100


@dataclass
class BulkOutcome:
    """What one import request did; ``errors`` holds every failure (capped when answered)."""

    success: int = 0
    duplicates: int = 0
    errors: list[tuple[int, Rejected]] = field(default_factory=list)

    def fail(self, index: int, rejected: Rejected) -> None:
        self.errors.append((index, rejected))


def store_sends(
    tx: Transaction,
    account_id: int,
    checked: list[Rejected | SendCandidate],
    fail_at: Collection[int] = (),
) -> BulkOutcome:
    """Dedup, resolve lists and store; one savepoint per record.

    ``fail_at``: indexes whose record is answered ``save_error`` instead of stored (an
    injected fault, see ``scripted.py``).
    """
    outcome = BulkOutcome()
    lists = _ListResolver(tx, account_id)
    stored: set[str] = set()  # ids stored by this request so far
    for index, item in enumerate(checked):
        if isinstance(item, Rejected):
            outcome.fail(index, item)
        elif item.id in stored or tx.message_exists(account_id, item.id):
            # CONTRACT.md: a duplicate is a record whose id already exists. An earlier record
            # of this request that failed left nothing under its id: this one is judged on
            # its own, so a valid record is never lost as a "duplicate".
            outcome.duplicates += 1
        elif item.problem is not None or item.row is None:
            outcome.fail(index, item.problem or Rejected("save_error", "Unexpected.", item.id))
        elif _store_send(tx, account_id, index, item, item.row, lists, outcome, fail_at):
            stored.add(item.id)
    return outcome


def _store_send(
    tx: Transaction,
    account_id: int,
    index: int,
    item: SendCandidate,
    row: SendRow,
    lists: _ListResolver,
    outcome: BulkOutcome,
    fail_at: Collection[int],
) -> bool:
    """Store one checked send; True if stored."""
    found, list_id = lists.resolve(item.list_id, item.list_number)
    if not found:
        message = "No sending list of this account matches the given list_id or list_number."
        outcome.fail(index, Rejected("list_not_found", message, item.id))
        return False
    try:
        if index in fail_at:
            raise InjectedSaveError(index)
        with tx.savepoint():
            tx.insert_send(account_id, _with_list(row, list_id))
    except Exception as error:  # any failure of this one record; the rest of the request goes on
        _log_save_error("send", index, error)
        outcome.fail(index, Rejected("save_error", "The record could not be saved.", item.id))
        return False
    outcome.success += 1
    return True


class InjectedSaveError(Exception):
    """A save_error fault: the record at this index "fails to save"."""


def _log_save_error(kind: str, index: int, error: Exception) -> None:
    if isinstance(error, InjectedSaveError):
        logger.info("injected save_error for %s record %d", kind, index)
    else:
        logger.exception("saving %s record %d failed", kind, index)


def _with_list(row: SendRow, list_id: int | None) -> SendRow:
    return dataclasses.replace(row, list_id=list_id)


class _ListResolver:
    """Finds the account's list for a record's list_id/list_number, cached per request."""

    def __init__(self, tx: Transaction, account_id: int) -> None:
        self.tx = tx
        self.account_id = account_id
        self.by_id: dict[int, int | None] = {}
        self.by_number: dict[str, int | None] = {}

    def resolve(self, list_id: int | None, list_number: str | None) -> tuple[bool, int | None]:
        """(found, list id). No list given is fine: (True, None). Both given: same list."""
        from_id = from_number = None
        if list_id is not None:
            if list_id not in self.by_id:
                self.by_id[list_id] = self.tx.list_by_id(self.account_id, list_id)
            from_id = self.by_id[list_id]
            if from_id is None:
                return False, None
        if list_number is not None:
            if list_number not in self.by_number:
                self.by_number[list_number] = self.tx.list_by_number(self.account_id, list_number)
            from_number = self.by_number[list_number]
            if from_number is None:
                return False, None
        if from_id is not None and from_number is not None and from_id != from_number:
            return False, None
        return True, from_id if from_id is not None else from_number


def store_clicks(
    tx: Transaction,
    account_id: int,
    checked: list[Rejected | ClickCandidate],
    fail_at: Collection[int] = (),
) -> BulkOutcome:
    """Dedup on message_id, check message and offer, store; one savepoint per record."""
    outcome = BulkOutcome()
    offers: dict[str, bool] = {}
    stored: set[str] = set()  # message ids clicked by this request so far (one per message)
    for index, item in enumerate(checked):
        if isinstance(item, Rejected):
            outcome.fail(index, item)
        elif item.message_id in stored or tx.click_exists(account_id, item.message_id):
            outcome.duplicates += 1  # as for sends: only a click that exists is a duplicate
        elif item.problem is not None or item.row is None:
            outcome.fail(index, item.problem or Rejected("save_error", "Unexpected."))
        elif _store_click(tx, account_id, index, item.row, offers, outcome, fail_at):
            stored.add(item.message_id)
    return outcome


def _store_click(
    tx: Transaction,
    account_id: int,
    index: int,
    row: ClickRow,
    offers: dict[str, bool],
    outcome: BulkOutcome,
    fail_at: Collection[int],
) -> bool:
    """Store one checked click; True if stored."""
    exists, list_id, recipient = tx.message_list(account_id, row.message_id)
    if not exists:
        message = f"No message of this account has the id '{row.message_id}'."
        outcome.fail(index, Rejected("message_not_found", message))
        return False
    if row.offer_id not in offers:
        offers[row.offer_id] = tx.offer_exists(account_id, row.offer_id)
    if not offers[row.offer_id]:
        message = f"No offer of this account has the id '{row.offer_id}'."
        outcome.fail(index, Rejected("offer_not_found", message))
        return False
    try:
        if index in fail_at:
            raise InjectedSaveError(index)
        with tx.savepoint():
            tx.insert_click(account_id, row, list_id, recipient)
    except Exception as error:
        _log_save_error("click", index, error)
        outcome.fail(index, Rejected("save_error", "The record could not be saved."))
        return False
    outcome.success += 1
    return True


def bulk_body(outcome: BulkOutcome, *, sends: bool) -> dict[str, Any]:
    """The documented answer; ``errors`` lists at most 100 failures, the count stays true."""
    listed = []
    for index, rejected in outcome.errors[:MAX_LISTED_ERRORS]:
        entry: dict[str, Any] = {"index": index}
        if sends:
            entry["id"] = rejected.id
        entry["code"] = rejected.code
        entry["error"] = rejected.message
        listed.append(entry)
    body: dict[str, Any] = {
        "success_count": outcome.success,
        "error_count": len(outcome.errors),
        "duplicates_skipped": outcome.duplicates,
    }
    if sends:
        body["invalid_phones"] = sum(1 for _, r in outcome.errors if r.code == "invalid_phone")
    body["errors"] = listed
    return body


_SINK_REQUIRED = {
    "sends": (
        ("id", "missing_id"),
        ("to_number", "missing_to_number"),
        ("timestamp", "missing_timestamp"),
    ),
    "clicks": (
        ("message_id", "missing_message_id"),
        ("offer_id", "missing_offer_id"),
        ("phone_number", "missing_phone_number"),
        ("timestamp", "missing_timestamp"),
    ),
}


def sink_outcome(kind: str, records: list[Any]) -> BulkOutcome:
    """Sink mode: required fields present, nothing else checked, nothing stored."""
    outcome = BulkOutcome()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            outcome.fail(index, Rejected("invalid_record", "Each record must be a JSON object."))
            continue
        absent = next((code for name, code in _SINK_REQUIRED[kind] if missing(record, name)), None)
        if absent is None:
            outcome.success += 1
        else:
            record_id = record.get("id")
            outcome.fail(
                index,
                Rejected(
                    absent,
                    "A required field is missing.",
                    record_id if isinstance(record_id, str) else None,
                ),
            )
    return outcome


Store = Callable[[Transaction, int, list[Any], Collection[int]], BulkOutcome]


@dataclass(frozen=True)
class BulkKind:
    """One bulk endpoint: its name, its per-record check and its storing rules."""

    name: str  # "sends" or "clicks"
    check: Callable[[Any], Any]
    store: Store

    @property
    def has_ids(self) -> bool:
        """Sends' error entries carry the record's id, and sends count invalid_phones."""
        return self.name == "sends"


BULK_KINDS = {
    "sends": BulkKind("sends", check_send, store_sends),
    "clicks": BulkKind("clicks", check_click, store_clicks),
}
