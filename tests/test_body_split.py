"""Splitting a batch by encoded body size (importer.split_by_size): pure, so hypothesis."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from trackly_migrate.pipeline.settle import split_by_size

records_strategy = st.lists(
    st.builds(lambda n, text: {"id": str(n), "message": text}, st.integers(), st.text()),
    max_size=40,
)


@given(records_strategy, st.integers(min_value=1, max_value=600))
def test_parts_keep_order_fit_the_limit_and_leave_out_only_records_too_large(
    records: list[dict[str, str]], limit: int
) -> None:
    parts = split_by_size(records, limit)
    flat = [i for part in parts for i in ([part] if isinstance(part, int) else part)]
    assert flat == list(range(len(records)))
    for part in parts:
        if isinstance(part, int):
            assert len(orjson.dumps({"records": [records[part]]})) > limit
        else:
            assert part
            assert len(orjson.dumps({"records": [records[i] for i in part]})) <= limit


def test_records_are_packed_greedily() -> None:
    records = [{"id": "a"}, {"id": "b"}, {"id": "c"}]
    one = len(orjson.dumps({"records": records[:1]}))
    two = len(orjson.dumps({"records": records[:2]}))
    assert split_by_size(records, two) == [[0, 1], [2]]
    assert split_by_size(records, one) == [[0], [1], [2]]
    assert split_by_size(records, one - 1) == [0, 1, 2]
