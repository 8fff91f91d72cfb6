"""The bulk imports' rules that need the account's data, inside the request's transaction.

``store_sends`` / ``store_clicks`` take the records ``rules.check_send`` / ``check_click``
judged, decide duplicates, lists, messages and offers, and store; ``bulk_body`` is the
documented answer. ``BULK_KINDS`` ties each endpoint to its rules, so one handler serves both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

from trackly_migrate.sandbox.plain_sends import check_sends, decode_sends
from trackly_migrate.sandbox.rules import (
    CheckedSend,
    ClickCandidate,
    Rejected,
    SendCandidate,
    check_click,
    decode_json_records,
    missing,
)
from trackly_migrate.sandbox.store import ClickRow, SendRow, SendValues, Transaction

logger = logging.getLogger("trackly_migrate.sandbox")

MAX_LISTED_ERRORS = 100
T = TypeVar("T")


@dataclass
class BulkOutcome:
    """What one import request did; ``errors`` holds every failure (capped when answered)."""

    success: int = 0
    duplicates: int = 0
    errors: list[tuple[int, Rejected]] = field(default_factory=list)

    def fail(self, index: int, rejected: Rejected) -> None:
        self.errors.append((index, rejected))


Checked = CheckedSend  # rules.check_send's answers


def store_sends(
    tx: Transaction,
    account_id: int,
    checked: list[Checked],
    fail_at: Collection[int] = (),
) -> BulkOutcome:
    """Dedup, resolve lists, then store every good record in one bulk insert (in the common
    case, without looking up which ids exist: see ``Transaction.insert_new_sends``).

    ``fail_at``: indexes whose record is answered ``save_error`` instead of stored (an
    injected fault, see ``scripted.py``).
    """
    lists = _ListResolver(tx, account_id)
    # The common request: what _judge_sends would answer, without judging record by record.
    if (
        not fail_at
        and _good_plain_rows_of_new_ids(checked, lists)
        and tx.insert_new_sends(account_id, cast(list[SendValues], checked))
    ):
        return BulkOutcome(success=len(checked))
    ready: list[SendValues] = []
    # First as if none of the ids existed yet (nearly every request of a migration), which
    # saves looking them all up. That answer stands when none of the ids it stored or
    # failed exists: the insert checks the stored ones (and stores nothing if one exists),
    # one look-up the few failed ones (an id that exists makes its record a duplicate,
    # whatever else is wrong with it).
    outcome = _judge_sends(checked, set(), lists, fail_at, ready.append)
    failed = [checked[index] for index, _ in outcome.errors]
    failed_ids = [item[0] for item in failed if not isinstance(item, Rejected)]
    failed_are_new = not (failed_ids and tx.stored_message_ids(account_id, failed_ids))
    if failed_are_new and tx.insert_new_sends(account_id, ready):
        return outcome
    ready = []
    # A candidate and a plain row both hold the record's id first.
    existing = tx.stored_message_ids(
        account_id, [item[0] for item in checked if not isinstance(item, Rejected)]
    )
    outcome = _judge_sends(checked, existing, lists, fail_at, ready.append)
    if tx.insert_sends(account_id, ready):
        return outcome

    def save_one(row: SendValues) -> bool:
        return _saved(tx, partial(tx.insert_send, account_id, row), "send", row[0])

    # The bulk insert failed, so at least one record cannot be saved: judge the request
    # again, storing one record at a time (a repeat of a record that failed to save is then
    # judged on its own, exactly as when the records are stored one by one).
    return _judge_sends(checked, existing, lists, fail_at, save_one)


def _good_plain_rows_of_new_ids(checked: list[Checked], lists: _ListResolver) -> bool:
    """True when every record is a good plain row (rules.check_send's tuple), no two hold the
    same id, and each names no list or one of the account's: the common request, whose
    records are then all stored unless an id exists already (insert_new_sends finds that,
    and so would it a repeated id: checked here only to spare an insert bound to fail)."""
    if {type(item) for item in checked} != {tuple}:
        return False
    rows = cast(list[SendValues], checked)
    if len({row[0] for row in rows}) != len(rows):
        return False
    named = {row[1] for row in rows}
    return all(list_id is None or lists.list_of_id(list_id) is not None for list_id in named)


_LIST_NOT_FOUND = "No sending list of this account matches the given list_id or list_number."


def _judge_sends(
    checked: list[Checked],
    existing: set[str],
    lists: _ListResolver,
    fail_at: Collection[int],
    save: Callable[[SendValues], bool | None],
) -> BulkOutcome:
    """Each record's fate, in order; ``save`` stores (or queues: None) a good one, False
    if it could not be saved."""
    outcome = BulkOutcome()
    stored: set[str] = set()  # ids stored by this request so far
    for index, item in enumerate(checked):
        row: SendValues
        if type(item) is tuple:  # a good plain record: its row, no list_number
            row = cast(SendValues, item)
            record_id = row[0]
            if record_id in stored or record_id in existing:
                outcome.duplicates += 1  # as below
                continue
            found = row[1] is None or lists.list_of_id(row[1]) is not None
        elif isinstance(item, Rejected):
            outcome.fail(index, item)
            continue
        else:
            candidate = cast(SendCandidate, item)
            record_id = candidate.id
            if record_id in stored or record_id in existing:
                # CONTRACT.md: a duplicate is a record whose id already exists. An earlier
                # record of this request that failed left nothing under its id: this one is
                # judged on its own, so a valid record is never lost as a "duplicate".
                outcome.duplicates += 1
                continue
            if candidate.problem is not None or candidate.row is None:
                unexpected = Rejected("save_error", "Unexpected.", record_id)
                outcome.fail(index, candidate.problem or unexpected)
                continue
            found, list_id = lists.resolve(candidate.list_id, candidate.list_number)
            row = _with_list(candidate.row, list_id)
        if not found:
            outcome.fail(index, Rejected("list_not_found", _LIST_NOT_FOUND, record_id))
        elif index in fail_at:
            logger.info("injected save_error for send record %d", index)
            outcome.fail(index, _save_error(record_id))
        elif save(row) is False:
            outcome.fail(index, _save_error(record_id))
        else:
            outcome.success += 1
            stored.add(record_id)
    return outcome


def _queue_into(ready: list[T]) -> Callable[[T], bool]:
    """A ``save`` that only queues the record for the request's bulk insert."""

    def queue(item: T) -> bool:
        ready.append(item)
        return True

    return queue


def _save_error(record_id: str | None = None) -> Rejected:
    return Rejected("save_error", "The record could not be saved.", record_id)


def _saved(tx: Transaction, write: Callable[[], None], kind: str, name: str) -> bool:
    """Run one record's writes in a savepoint; False (logged, undone) if they fail."""
    try:
        with tx.savepoint():
            write()
    except Exception:  # any failure of this one record; the rest of the request goes on
        logger.exception("saving %s record %s failed", kind, name)
        return False
    return True


def _with_list(row: SendRow, list_id: int | None) -> SendRow:
    # The row holds the record's own list_id, which is the list found when one was given.
    # Not row._replace: it costs several times a plain construction, per record.
    if list_id == row.list_id:
        return row
    return SendRow(
        row.id,
        list_id,
        row.to_number,
        row.timestamp,
        row.message,
        row.send_type,
        row.delivered,
        row.length,
        row.creative_id,
    )


_UNKNOWN: Any = object()  # not looked up yet


class _ListResolver:
    """Finds the account's list for a record's list_id/list_number, cached per request."""

    def __init__(self, tx: Transaction, account_id: int) -> None:
        self.tx = tx
        self.account_id = account_id
        self.by_id: dict[int, int | None] = {}
        self.by_number: dict[str, int | None] = {}

    def list_of_id(self, list_id: int) -> int | None:
        """``list_id`` when it is a list of the account, else None (looked up once)."""
        found = self.by_id.get(list_id, _UNKNOWN)
        if found is _UNKNOWN:
            found = self.by_id[list_id] = self.tx.list_by_id(self.account_id, list_id)
        return cast(int | None, found)

    def resolve(self, list_id: int | None, list_number: str | None) -> tuple[bool, int | None]:
        """(found, list id). No list given is fine: (True, None). Both given: same list."""
        from_id = from_number = None
        if list_id is not None:
            from_id = self.list_of_id(list_id)
            if from_id is None:
                return False, None
        if list_number is not None:
            from_number = self.by_number.get(list_number, _UNKNOWN)
            if from_number is _UNKNOWN:
                from_number = self.by_number[list_number] = self.tx.list_by_number(
                    self.account_id, list_number
                )
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
    """Dedup on message_id, check message and offer, then store in one bulk insert."""
    ids = [item.message_id for item in checked if isinstance(item, ClickCandidate)]
    targets = _ClickTargets(tx, account_id, ids)
    ready: list[Click] = []
    outcome = _judge_clicks(checked, targets, fail_at, _queue_into(ready))
    if tx.insert_clicks(account_id, ready):
        return outcome

    def save_one(click: Click) -> bool:
        write = partial(tx.insert_click, account_id, *click)
        return _saved(tx, write, "click", click[0].message_id)

    return _judge_clicks(checked, targets, fail_at, save_one)  # as for sends


Click = tuple[ClickRow, int | None, str | None]  # the click, its message's list and recipient


class _ClickTargets:
    """The clicks already stored, the messages and the offers a request's clicks name."""

    def __init__(self, tx: Transaction, account_id: int, message_ids: list[str]) -> None:
        self.tx = tx
        self.account_id = account_id
        self.clicked = tx.stored_click_ids(account_id, message_ids)
        self.messages = tx.message_lists(account_id, message_ids)
        self.offers: dict[str, bool] = {}

    def problem(self, row: ClickRow) -> Rejected | None:
        """Why the click's message or offer is not the account's, or None."""
        if row.message_id not in self.messages:
            message = f"No message of this account has the id '{row.message_id}'."
            return Rejected("message_not_found", message)
        if row.offer_id not in self.offers:
            self.offers[row.offer_id] = self.tx.offer_exists(self.account_id, row.offer_id)
        if not self.offers[row.offer_id]:
            message = f"No offer of this account has the id '{row.offer_id}'."
            return Rejected("offer_not_found", message)
        return None


def _judge_clicks(
    checked: list[Rejected | ClickCandidate],
    targets: _ClickTargets,
    fail_at: Collection[int],
    save: Callable[[Click], bool],
) -> BulkOutcome:
    """Each click's fate, in order; ``save`` stores (or queues) a good one, True if done."""
    outcome = BulkOutcome()
    stored: set[str] = set()  # message ids clicked by this request so far (one per message)
    for index, item in enumerate(checked):
        if isinstance(item, Rejected):
            outcome.fail(index, item)
        elif item.message_id in stored or item.message_id in targets.clicked:
            outcome.duplicates += 1  # as for sends: only a click that exists is a duplicate
        elif item.problem is not None or item.row is None:
            outcome.fail(index, item.problem or Rejected("save_error", "Unexpected."))
        elif (problem := targets.problem(item.row)) is not None:
            outcome.fail(index, problem)
        elif index in fail_at:
            logger.info("injected save_error for click record %d", index)
            outcome.fail(index, _save_error())
        elif save((item.row, *targets.messages[item.row.message_id])):
            outcome.success += 1
            stored.add(item.message_id)
        else:
            outcome.fail(index, _save_error())
    return outcome


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


def check_clicks(records: list[Any], body: bytes) -> list[Rejected | ClickCandidate]:
    return [check_click(record) for record in records]


@dataclass(frozen=True)
class BulkKind:
    """One bulk endpoint: its name, how its body's records are decoded and checked (``check``
    takes the decoded records and the body they came from), and its storing rules."""

    name: str  # "sends" or "clicks"
    decode: Callable[[bytes], list[Any]]
    check: Callable[[list[Any], bytes], list[Any]]
    store: Store

    @property
    def has_ids(self) -> bool:
        """Sends' error entries carry the record's id, and sends count invalid_phones."""
        return self.name == "sends"


BULK_KINDS = {
    "sends": BulkKind("sends", decode_sends, check_sends, store_sends),
    "clicks": BulkKind("clicks", decode_json_records, check_clicks, store_clicks),
}
