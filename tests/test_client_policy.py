"""Pure parts of the client and the importer: retry policy, answer parsing, itemization."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackly_migrate.client import (
    AdaptiveLimit,
    RetryPolicy,
    may_have_taken_effect,
    may_resend,
    retry_delay,
    should_retry,
)
from trackly_migrate.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    CertificateError,
    NoAnswerError,
    RateLimitedError,
    RequestRejectedError,
    ResponseShapeError,
    ServerError,
)
from trackly_migrate.pipeline.settle import deliver
from trackly_migrate.responses import (
    BulkResult,
    Delivery,
    ItemError,
    parse_bulk_result,
    parse_retry_after,
)


@given(st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_full_jitter_under_an_exponential_cap(attempt: int, seed: int) -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_cap=30)
    delay = retry_delay(policy, attempt, None, random.Random(seed))
    assert 0 <= delay <= min(30, 0.5 * 2 ** (attempt - 1))


def test_retry_after_is_a_capped_floor() -> None:
    policy = RetryPolicy(retry_after_cap=120)
    assert retry_delay(policy, 1, 7, random.Random(1)) >= 7
    assert retry_delay(policy, 1, 10_000, random.Random(1)) <= 120
    assert parse_retry_after("3") == 3
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ApiConnectionError("x"), True),
        (RateLimitedError("x", status=429), True),
        (ServerError("x", status=503), True),
        (ServerError("x", status=501), False),
        (AuthenticationError("x", status=401), False),
        (RequestRejectedError("x", status=413), False),
    ],
)
def test_what_is_retried(error: Any, expected: bool) -> None:
    assert should_retry(error) is expected


REFUSED = ApiConnectionError("refused", request_sent=False)
DROPPED = ApiConnectionError("dropped")  # request_sent defaults to True


@pytest.mark.parametrize(
    ("error", "idempotent_resend", "clear_resend", "took_effect"),
    [
        # Never reached the server, or refused before any work: even a clear may be resent
        # when the failure is retryable (refused connection, 429, 503 with Retry-After).
        (REFUSED, True, True, False),
        (RateLimitedError("x", status=429, retry_after=1), True, True, False),
        (ServerError("x", status=503, retry_after=2), True, True, False),
        # Refused before any work but not worth a retry: given up on as it is.
        (AuthenticationError("x", status=401), False, False, False),
        (RequestRejectedError("x", status=400), False, False, False),
        (RequestRejectedError("x", status=413), False, False, False),
        (CertificateError("x"), False, False, False),
        # May have been applied: resent only when the request is idempotent.
        (DROPPED, True, False, True),
        (NoAnswerError("x"), True, False, True),
        (ServerError("x", status=500), True, False, True),
        (ServerError("x", status=502), True, False, True),
        (ServerError("x", status=503), True, False, True),
        (ServerError("x", status=504), True, False, True),
        (ServerError("x", status=501), False, False, True),
    ],
)
def test_the_one_may_resend_rule(
    error: ApiError, idempotent_resend: bool, clear_resend: bool, took_effect: bool
) -> None:
    assert may_resend(error, idempotent=True) is idempotent_resend
    assert may_resend(error, idempotent=False) is clear_resend
    assert may_have_taken_effect(error) is took_effect


def test_bulk_answer_shape_is_checked() -> None:
    result = parse_bulk_result(
        {
            "success_count": 1,
            "error_count": 1,
            "duplicates_skipped": 0,
            "invalid_phones": 1,
            "errors": [
                {"index": 1, "code": "invalid_phone", "error": "bad", "id": "b"},
                {"index": 7, "code": "out_of_range", "error": "ignored"},
            ],
        },
        2,
    )
    assert result.errors == (ItemError(1, "invalid_phone", "bad", "b"),)
    with pytest.raises(ResponseShapeError):
        parse_bulk_result({"success_count": "1"}, 1)
    with pytest.raises(ResponseShapeError):
        parse_bulk_result([], 1)


class ScriptedServer:
    """A stand-in server for ``deliver``: stores ids, fails some, itemizes at most 100."""

    def __init__(self, stored: set[str], failing: set[str], cap: int = 100) -> None:
        self.stored = stored
        self.failing = failing
        self.cap = cap
        self.requests = 0

    def import_batch(self, kind: str, body: bytes, count: int) -> Delivery:
        self.requests += 1
        records = orjson.loads(body)["records"]
        assert len(records) == count
        success = duplicates = 0
        errors = []
        for index, record in enumerate(records):
            if record["id"] in self.failing:
                errors.append(ItemError(index, "invalid_phone", "bad", record["id"]))
            elif record["id"] in self.stored:
                duplicates += 1
            else:
                self.stored.add(record["id"])
                success += 1
        result = BulkResult(success, len(errors), duplicates, None, tuple(errors[: self.cap]))
        return Delivery(result, attempts=1, after_ambiguous_failure=False)


@given(
    st.integers(min_value=1, max_value=400),
    st.sets(st.integers(min_value=0, max_value=399)),
    st.sets(st.integers(min_value=0, max_value=399)),
)
def test_deliver_itemizes_every_failure_and_balances(
    size: int, failing: set[int], old: set[int]
) -> None:
    records = [{"id": f"r{i}"} for i in range(size)]
    failing_ids = {f"r{i}" for i in failing if i < size}
    old_ids = {f"r{i}" for i in old if i < size} - failing_ids
    server = ScriptedServer(set(old_ids), failing_ids)
    settlement = deliver(server, "sends", records)
    assert {records[i]["id"] for i, _ in settlement.rejections} == failing_ids
    assert settlement.counts.duplicates == len(old_ids)
    assert settlement.counts.imported == size - len(failing_ids) - len(old_ids)
    assert settlement.counts.unaccounted == 0
    assert settlement.counts.itemize_requests == max(0, (len(failing_ids) - 1) // 100)


def test_deliver_reports_answers_that_do_not_add_up() -> None:
    class Liar:
        def import_batch(self, kind: str, body: bytes, count: int) -> Delivery:
            return Delivery(BulkResult(count - 1, 0, 0, None, ()), 1, False)

    settlement = deliver(Liar(), "sends", [{"id": "a"}, {"id": "b"}])
    assert settlement.counts.unaccounted == 2
    assert settlement.counts.imported == 0
    assert settlement.notes


def test_deliver_accepts_invalid_phones_counted_apart() -> None:
    class Apart:
        def import_batch(self, kind: str, body: bytes, count: int) -> Delivery:
            error = ItemError(1, "invalid_phone", "bad")
            return Delivery(BulkResult(1, 0, 0, 1, (error,)), 1, False)

    settlement = deliver(Apart(), "sends", [{"id": "a"}, {"id": "b"}])
    assert settlement.counts.unaccounted == 0
    assert settlement.counts.imported == 1
    assert [index for index, _ in settlement.rejections] == [1]


def test_adaptive_limit_grows_while_it_goes_well_and_halves_on_overload() -> None:
    limit = AdaptiveLimit(ceiling=16, start=4)
    for _ in range(4):  # slow start: one step per success
        limit.acquire()
        limit.release(overloaded=False)
    assert limit.current == 8
    limit.acquire()
    limit.release(overloaded=True)
    assert limit.current == 4
    for _ in range(4):  # after an overload: one step per round trip
        limit.acquire()
        limit.release(overloaded=False)
    assert limit.current == 5
    for _ in range(200):
        limit.acquire()
        limit.release(overloaded=False)
    assert limit.current == 16  # never above the ceiling
    for _ in range(10):
        limit.acquire()
        limit.release(overloaded=True)
    assert limit.current == 1


def test_adaptive_limit_blocks_beyond_the_current_limit() -> None:
    import threading

    limit = AdaptiveLimit(ceiling=2, start=1)
    limit.acquire()
    entered = threading.Event()

    def second() -> None:
        limit.acquire()
        entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not entered.wait(0.2)
    limit.release(overloaded=False)
    assert entered.wait(60)
    thread.join()
