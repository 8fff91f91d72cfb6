"""Unsubscribing contacts from sending lists: one, or many from a file.

Numbers go through the same validation as imports (``records.RecordBuilder`` with the
``contacts`` field table), so a number that would be rejected in an import is rejected here,
locally, and never sent. The API answers ``unsubscribed: false`` alike for "not on the list",
"list not yours" and "already unsubscribed"; the output says exactly that and guesses nothing.
"""

from __future__ import annotations

from typing import Any

from trackly_migrate.columns import resolve_columns
from trackly_migrate.errors import UsageError
from trackly_migrate.readers import RawRow
from trackly_migrate.records import Kind, RecordBuilder, Rejection

NOT_CHANGED_MEANING = (
    "not changed: the contact is not on that list, the list is not this account's, "
    "or the contact was already unsubscribed (the API does not say which)"
)


def contact_record(phone: str, list_number: str | None, *, region: str | None) -> dict[str, Any]:
    """The validated body for one contact, or a usage error saying what is wrong with it."""
    if not list_number:
        raise UsageError("Name the list to unsubscribe from with --list LIST_NUMBER.")
    mapping = resolve_columns(Kind.CONTACTS, None, {}, source_name="command line")
    builder = RecordBuilder(mapping, default_region=region)
    outcome = builder.build(RawRow(0, 0, 1, {"phone_number": phone, "list_number": list_number}))
    if isinstance(outcome, Rejection):
        raise UsageError(
            f"Not sent: {outcome.message} ({outcome.code}).",
            hint="Write numbers in E.164 (+14155550123), or pass --default-region for "
            "national numbers.",
        )
    return outcome
