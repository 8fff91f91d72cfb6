"""``deliver_encoded`` (pipeline/settle.py): the sender process's batches arrive encoded; one
that fits the body limit goes out as it came, and it settles exactly as ``deliver`` would."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from trackly_migrate.pipeline import settle
from trackly_migrate.pipeline.settle import deliver, deliver_encoded
from trackly_migrate.responses import BulkResult, Delivery, ItemError


class Server:
    """Answers like the API: every record with a ``bad`` id fails, at most ``itemize`` of them
    itemized per request; records stored once come back as duplicates."""

    def __init__(self, itemize: int = 100) -> None:
        self.itemize = itemize
        self.bodies: list[bytes] = []
        self.stored: set[str] = set()

    def import_batch(self, kind: str, body: bytes, count: int) -> Delivery:
        self.bodies.append(body)
        records = orjson.loads(body)["records"]
        assert len(records) == count
        failed = [i for i, record in enumerate(records) if record["id"].startswith("bad")]
        duplicates = sum(record["id"] in self.stored for record in records)
        fresh = {r["id"] for r in records if not r["id"].startswith("bad")} - self.stored
        self.stored |= fresh
        errors = tuple(ItemError(i, "invalid_phone", "bad") for i in failed[: self.itemize])
        return Delivery(BulkResult(len(fresh), len(failed), duplicates, None, errors), 1, False)


def sends(ids: list[str]) -> list[dict[str, Any]]:
    return [{"id": i, "timestamp": f"2024-0{1 + n % 3}-05T10:00:00Z"} for n, i in enumerate(ids)]


def summary(settlement: settle.Settlement) -> tuple[object, ...]:
    return (
        settlement.counts,
        settlement.rejections,
        settlement.local_rejections,
        settlement.notes,
        settlement.rejected_months,
    )


def test_a_body_that_fits_goes_out_as_it_came_and_is_never_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    records = sends([str(i) for i in range(50)])
    body = orjson.dumps({"records": records})

    def no_decoding(body: bytes) -> list[dict[str, Any]]:
        raise AssertionError("a batch with nothing to look up was decoded")

    monkeypatch.setattr(settle, "_decode", no_decoding)
    server = Server()
    settlement = deliver_encoded(server, "sends", body, len(records))
    assert server.bodies == [body]
    assert server.bodies[0] is body  # not a copy re-encoded from the records
    assert (settlement.counts.imported, settlement.counts.requests) == (50, 1)


@pytest.mark.parametrize(
    ("ids", "itemize", "limit"),
    [
        ([str(i) for i in range(40)], 100, 10 * 1024 * 1024),
        # rejected records: their months are counted from the records
        ([f"bad{i}" if i % 7 == 0 else str(i) for i in range(40)], 100, 10 * 1024 * 1024),
        # more failures than one answer itemizes: re-rounds send only what is unsettled
        ([f"bad{i}" if i % 2 else str(i) for i in range(60)], 4, 10 * 1024 * 1024),
        # over the body limit: split, and a record too large for any request
        ([str(i) for i in range(30)] + ["x" * 400] + ["31"], 100, 600),
    ],
)
def test_it_settles_exactly_as_deliver_does(ids: list[str], itemize: int, limit: int) -> None:
    records = sends(ids)
    body = orjson.dumps({"records": records})
    ours, theirs = Server(itemize), Server(itemize)
    encoded = deliver_encoded(ours, "sends", body, len(records), limit)
    decoded = deliver(theirs, "sends", records, limit)
    assert summary(encoded) == summary(decoded)
    assert ours.bodies == theirs.bodies
    assert all(len(sent) <= limit for sent in ours.bodies)
