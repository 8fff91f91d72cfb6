"""The API's answers as typed results, or as the error from ``errors.py`` that they mean.

Tolerant where CONTRACT.md asks for it (an error body that is not JSON still gives its status
and a short excerpt), strict where the run depends on it: a 2xx answer without the counts the
importer accounts with is a ``ResponseShapeError``, never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from trackly_migrate.errors import (
    ApiStatusError,
    AuthenticationError,
    ResponseShapeError,
    status_error_class,
)


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    code: str
    message: str
    record_id: str | None = None


@dataclass(frozen=True)
class BulkResult:
    success_count: int
    error_count: int
    duplicates_skipped: int
    invalid_phones: int | None
    errors: tuple[ItemError, ...]


@dataclass(frozen=True)
class Delivery:
    """A bulk answer and how it was obtained."""

    result: BulkResult
    attempts: int
    # An earlier attempt may have been applied (dropped connection, timeout, 5xx): duplicates
    # in ``result`` are then most likely this run's own records.
    after_ambiguous_failure: bool


@dataclass(frozen=True)
class UnsubscribeAnswer:
    # False means one of three things the API does not tell apart: the list is not the
    # account's, the contact is not on it, or it was already unsubscribed.
    unsubscribed: bool
    attempts: int


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delta-seconds form; an HTTP date is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def status_error(response: httpx.Response) -> ApiStatusError:
    """The error a non-2xx answer means, with the server's code and message when it gave them."""
    status = response.status_code
    code: str | None = None
    message = excerpt(response)
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = payload.get("error") if isinstance(payload.get("error"), str) else None
        if isinstance(payload.get("message"), str):
            message = payload["message"]
    error_class = status_error_class(status)
    hint = None
    if error_class is AuthenticationError:
        message = "The API key was refused (401): it is wrong, revoked, or for another account."
        hint = "Check TRACKLY_API_KEY / --api-key-file, and --base-url for the right server."
    label = f"HTTP {status}" + (f" {code}" if code else "")
    return error_class(
        f"{label}: {message}" if error_class is not AuthenticationError else message,
        status=status,
        code=code,
        hint=hint,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def excerpt(response: httpx.Response, limit: int = 200) -> str:
    """The body on one line, cut short: enough to recognise a proxy's page or an error."""
    text = " ".join(response.text.split())
    return (text[:limit] + "…") if len(text) > limit else (text or "(empty body)")


def json_object(response: httpx.Response) -> dict[str, Any]:
    """A 2xx answer's body, which the contract says is a JSON object."""
    return _expect_object(_json_body(response))


def parse_unsubscribed(response: httpx.Response) -> bool:
    """The ``unsubscribed`` flag of an unsubscribe answer."""
    unsubscribed = json_object(response).get("unsubscribed")
    if not isinstance(unsubscribed, bool):
        raise ResponseShapeError(
            "The unsubscribe answer has no boolean 'unsubscribed': " + excerpt(response)
        )
    return unsubscribed


def _json_body(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ResponseShapeError(
            f"HTTP {response.status_code} with a body that is not JSON: {excerpt(response)}"
        ) from None


def _expect_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ResponseShapeError(f"Expected a JSON object, got: {str(payload)[:200]}")
    return payload


def parse_bulk_result(payload: Any, count: int) -> BulkResult:
    """A bulk-import answer, checked for shape (not for the accounting identity)."""
    body = _expect_object(payload)
    counts: dict[str, int] = {}
    for name in ("success_count", "error_count", "duplicates_skipped"):
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ResponseShapeError(f"The bulk answer has no valid {name!r}: {str(body)[:200]}")
        counts[name] = value
    invalid = body.get("invalid_phones")
    invalid_phones = invalid if isinstance(invalid, int) and not isinstance(invalid, bool) else None
    raw_errors = body.get("errors") or []
    if not isinstance(raw_errors, list):
        raise ResponseShapeError("The bulk answer's 'errors' is not a list.")
    return BulkResult(
        counts["success_count"],
        counts["error_count"],
        counts["duplicates_skipped"],
        invalid_phones,
        tuple(_item_errors(raw_errors, count)),
    )


def _item_errors(raw_errors: Sequence[Any], count: int) -> list[ItemError]:
    items: list[ItemError] = []
    seen: set[int] = set()
    for entry in raw_errors:
        if not isinstance(entry, dict):
            continue
        index = entry.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            continue  # an entry we cannot tie to a record; the identity check will show it
        if index in seen:
            continue
        seen.add(index)
        code = entry.get("code")
        message = entry.get("error")
        record_id = entry.get("id")
        items.append(
            ItemError(
                index,
                code if isinstance(code, str) else "unknown_error",
                message if isinstance(message, str) else "",
                record_id if isinstance(record_id, str) else None,
            )
        )
    return items
