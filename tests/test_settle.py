"""Settling a delivered batch (pipeline/settle.py): every record counted once, whatever the
server answers."""

from __future__ import annotations

from trackly_migrate.pipeline.settle import deliver
from trackly_migrate.responses import BulkResult, Delivery, ItemError


def test_a_mismatched_answer_while_itemizing_counts_nothing_twice() -> None:
    class Server:
        def __init__(self) -> None:
            self.round = 0

        def import_batch(self, kind: str, body: bytes, count: int) -> Delivery:
            self.round += 1
            if self.round == 1:  # 100 stored, 200 failed, 100 itemized
                errors = tuple(ItemError(i, "invalid_phone", "bad") for i in range(100, 200))
                return Delivery(BulkResult(100, 200, 0, None, errors), 1, False)
            return Delivery(BulkResult(0, 0, 0, None, ()), 1, False)  # adds up to nothing

    settlement = deliver(Server(), "sends", [{"id": str(i)} for i in range(300)])
    settled = (
        settlement.counts.imported + len(settlement.rejections) + settlement.counts.unaccounted
    )
    assert settled + settlement.counts.duplicates == 300
    assert (
        settlement.counts.imported,
        len(settlement.rejections),
        settlement.counts.unaccounted,
    ) == (
        100,
        100,
        100,
    )
