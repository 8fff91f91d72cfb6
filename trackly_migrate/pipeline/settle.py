"""The send side of one segment: ``deliver`` its records and settle each one.

This runs where the requests are sent (the sender process, or a thread of the main one):
a batch goes out in as many requests as the body limit needs, and the server's answers are
folded into a ``Settlement``. Unsubscribing settles one request per contact
(``deliver_unsubscribes``). The engine (``engine.py``) turns settlements into the run's
counts and report rows, in input order.

The sender process gets each batch already encoded by the main process (``deliver_encoded``):
a body that fits the limit is sent as it came, and its records are decoded only when they are
needed (a body over the limit to split, rejected records' months to count, a re-round after a
truncated error list). Decoding and encoding every batch again cost the sender about as much
CPU as the HTTP client did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from trackly_migrate.client import TracklyClient
from trackly_migrate.counts import Counts, month_of
from trackly_migrate.errors import ApiError, RequestRejectedError
from trackly_migrate.pipeline.bounds import MAX_BODY_BYTES
from trackly_migrate.responses import BulkResult, Delivery, ItemError

RECORD_TOO_LARGE = "record_too_large"
_ENVELOPE = len(b'{"records":[]}')


class BatchSender(Protocol):
    def import_batch(self, kind: str, body: bytes, count: int) -> Delivery: ...


class _Records(Protocol):
    """What settling reads of a batch's records: how many, and one by place."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> dict[str, Any]: ...


class _DecodedOnDemand:
    """The records of an encoded body, decoded on the first look at one of them."""

    __slots__ = ("_body", "_count", "_records")

    def __init__(self, body: bytes, count: int) -> None:
        self._body = body
        self._count = count
        self._records: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int, /) -> dict[str, Any]:
        if self._records is None:
            self._records = _decode(self._body)
        return self._records[index]


def _decode(body: bytes) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = orjson.loads(body)["records"]
    return records


@dataclass
class Settlement:
    """How the server settled one segment's records.

    ``counts`` holds what the answers said (imported, duplicates, unaccounted) and what the
    requests took; the rejections are kept one by one, for the errors report.
    """

    counts: Counts = field(default_factory=Counts)
    rejections: list[tuple[int, ItemError]] = field(default_factory=list)
    # Records never sent because no request could hold them (each over the body limit).
    local_rejections: list[tuple[int, ItemError]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Month (counts.month_of) → records rejected, by the server or as too large; counted
    # here, where the records are, so that the reader keeps no month per record.
    rejected_months: dict[str, int] = field(default_factory=dict)

    def add(self, part: Settlement, indexes: list[int]) -> None:
        """Fold in the settlement of a part of the batch (``indexes``: its records' places)."""
        self.counts.add(part.counts)
        self.rejections.extend((indexes[i], item) for i, item in part.rejections)
        self.local_rejections.extend((indexes[i], item) for i, item in part.local_rejections)
        self.notes.extend(part.notes)


def deliver(
    sender: BatchSender,
    kind: str,
    records: list[dict[str, Any]],
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Settlement:
    """Send one batch, in as many requests as the body limit needs, and settle every record.

    A batch whose encoded body would exceed ``max_body_bytes`` is cut, in input order, into
    parts that each fit; a record that fits in no request is rejected locally
    (``record_too_large``) and never sent.
    """
    body = orjson.dumps({"records": records})
    if len(body) <= max_body_bytes:
        return _count_rejected_months(_deliver_batch(sender, kind, records, body), records)
    settlement = Settlement()
    for part in split_by_size(records, max_body_bytes):
        if isinstance(part, int):
            size = len(orjson.dumps(records[part])) + _ENVELOPE
            message = (
                f"The record alone makes a request body of {size:,} bytes; the API's limit is "
                f"{max_body_bytes:,}. Shorten its fields (the message text?)."
            )
            settlement.local_rejections.append((part, ItemError(part, RECORD_TOO_LARGE, message)))
        else:
            settlement.add(_deliver_batch(sender, kind, [records[i] for i in part]), part)
    return _count_rejected_months(settlement, records)


def deliver_encoded(
    sender: BatchSender,
    kind: str,
    body: bytes,
    count: int,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Settlement:
    """``deliver`` for a batch already encoded as a request body (``{"records": [...]}``,
    ``count`` records, as ``orjson`` writes it): the same requests and the same settlement,
    with the body sent as it is when it fits the limit, decoded only when records are needed.
    """
    if len(body) > max_body_bytes:
        return deliver(sender, kind, _decode(body), max_body_bytes)
    records = _DecodedOnDemand(body, count)
    return _count_rejected_months(_deliver_batch(sender, kind, records, body), records)


def _count_rejected_months(settlement: Settlement, records: _Records) -> Settlement:
    months = settlement.rejected_months
    for index, _ in (*settlement.rejections, *settlement.local_rejections):
        month = month_of(records[index].get("timestamp"))
        months[month] = months.get(month, 0) + 1
    return settlement


def split_by_size(records: list[dict[str, Any]], max_body_bytes: int) -> list[list[int] | int]:
    """The records' indexes in order, grouped into requests whose bodies fit the limit.

    An int (not a list) is a record that fits in no request.
    """
    parts: list[list[int] | int] = []
    current: list[int] = []
    size = _ENVELOPE
    for index, record in enumerate(records):
        length = len(orjson.dumps(record))
        if _ENVELOPE + length > max_body_bytes:
            if current:  # keep input order: what came before goes first
                parts.append(current)
                current, size = [], _ENVELOPE
            parts.append(index)
            continue
        extra = length + (1 if current else 0)  # the comma between records
        if current and size + extra > max_body_bytes:
            parts.append(current)
            current, size, extra = [], _ENVELOPE, length
        current.append(index)
        size += extra
    if current:
        parts.append(current)
    return parts


def _deliver_batch(
    sender: BatchSender, kind: str, records: _Records, body: bytes | None = None
) -> Settlement:
    """Send one batch until every record is settled and every rejection itemized.

    The server itemizes at most 100 failures per request. When more failed, the records it did
    not itemize are sent again: those stored the first time come back as duplicates (imports
    are idempotent by id), and the next 100 failures get itemized, until all are.
    """
    settlement = Settlement()
    outstanding = list(range(len(records)))
    earlier_successes = 0
    ambiguous = False
    while True:
        if body is None:
            body = orjson.dumps({"records": [records[i] for i in outstanding]})
        try:
            delivery = sender.import_batch(kind, body, len(outstanding))
        except ApiError as error:
            # Earlier rounds were answered: their requests count, and they stored records.
            error.requests += settlement.counts.requests
            error.retries += settlement.counts.retries
            error.may_have_applied = error.may_have_applied or settlement.counts.requests > 0
            raise
        body = None  # the next round (if any) sends fewer records
        settlement.counts.requests += delivery.attempts
        settlement.counts.retries += delivery.attempts - 1
        ambiguous = ambiguous or delivery.after_ambiguous_failure
        result = delivery.result
        sent = len(outstanding)
        failed = _failed_count(result, sent)
        itemized = [(outstanding[item.index], item) for item in result.errors]
        settlement.rejections.extend(itemized)
        if failed is None or len(itemized) > failed:
            # Records imported by an earlier round are resent too: they stay imported.
            _mark_unaccounted(settlement, sent - len(itemized) - earlier_successes, result, sent)
            return settlement
        settlement.counts.imported += result.success_count
        if failed > len(itemized) and itemized:
            earlier_successes += result.success_count
            done = {index for index, _ in itemized}
            outstanding = [i for i in outstanding if i not in done]
            settlement.counts.itemize_requests += 1
            continue
        if failed > len(itemized):
            # Failures the server will not name: they cannot be reported row by row.
            settlement.counts.unaccounted += failed - len(itemized)
            settlement.notes.append(
                f"the server counted {failed} failures but itemized only {len(itemized)}"
            )
        duplicates = result.duplicates_skipped - earlier_successes
        if duplicates < 0:
            settlement.counts.unaccounted += -duplicates
            settlement.counts.imported -= -duplicates
            duplicates = 0
        settlement.counts.duplicates += duplicates
        if ambiguous:
            settlement.counts.duplicates_after_retry += duplicates
        return settlement


def _failed_count(result: BulkResult, sent: int) -> int | None:
    """Records that failed, or None when the answer's counts do not add up to ``sent``."""
    total = result.success_count + result.error_count + result.duplicates_skipped
    if total == sent:
        return result.error_count
    # Client tolerance (CONTRACT.md): a server that counts invalid phones apart from errors.
    if result.invalid_phones is not None and total + result.invalid_phones == sent:
        return result.error_count + result.invalid_phones
    return None


def _mark_unaccounted(settlement: Settlement, count: int, result: BulkResult, sent: int) -> None:
    settlement.counts.unaccounted += count
    settlement.notes.append(
        f"answer for {sent} records did not add up (success {result.success_count}, "
        f"errors {result.error_count}, duplicates {result.duplicates_skipped})"
    )


def deliver_unsubscribes(client: TracklyClient, records: list[dict[str, Any]]) -> Settlement:
    """Unsubscribe each record's contact; a request the server refuses rejects that record.

    ``counts.imported`` counts contacts unsubscribed, ``duplicates`` those not changed
    (``report.WORDS`` names them so).
    """
    settlement = Settlement()
    for index, record in enumerate(records):
        try:
            answer = client.unsubscribe(record["phone_number"], record["list_number"])
        except RequestRejectedError as error:
            settlement.counts.requests += error.requests
            settlement.counts.retries += error.retries
            code = error.code or f"http_{error.status}"
            settlement.rejections.append((index, ItemError(index, code, error.message)))
            continue
        except ApiError as error:
            error.requests += settlement.counts.requests  # the contacts before it count too
            error.retries += settlement.counts.retries
            error.may_have_applied = error.may_have_applied or settlement.counts.requests > 0
            raise
        settlement.counts.requests += answer.attempts
        settlement.counts.retries += answer.attempts - 1
        if answer.unsubscribed:
            settlement.counts.imported += 1
        else:
            settlement.counts.duplicates += 1
    return settlement
