"""Fault injection (latency, 503, 429, dropped connections), reproducibility, and sink mode."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import api_on, query, send, wait_until
from trackly_migrate.sandbox.faults import FaultInjector, parse_latency
from trackly_migrate.sandbox.seed import DEMO_API_KEY, OTHER_API_KEY
from trackly_migrate.sandbox.server import (
    RunningSandbox,
    SandboxConfig,
    SandboxError,
    start_sandbox,
)

Factory = Any  # conftest's sandbox_factory: (**options) -> RunningSandbox


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", (0.1, 0.1)),
        ("100ms", (0.1, 0.1)),
        ("0.05-0.2", (0.05, 0.2)),
        ("50ms-200ms", (0.05, 0.2)),
        ("2s", (2.0, 2.0)),
        ("0", (0.0, 0.0)),
        (" 10ms - 0.5 ", (0.01, 0.5)),
    ],
)
def test_parse_latency(text: str, expected: tuple[float, float]) -> None:
    assert parse_latency(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "fast", "-1", "0.2-0.1", "1-2-3", "10 ms ms", "1e3", "5m"])
def test_parse_latency_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="latency"):
        parse_latency(text)


@pytest.mark.parametrize(
    "options",
    [{"fail_rate": 1.5}, {"drop_rate": -0.1}, {"rate_limit": 0}, {"latency": (0.2, 0.1)}],
)
def test_bad_fault_options(options: dict[str, Any], sandbox_factory: Factory) -> None:
    with pytest.raises(ValueError):
        FaultInjector(**options)
    with pytest.raises(SandboxError):
        sandbox_factory(**options)


def test_latency_delays_api_but_not_sandbox_tools(sandbox_factory: Factory) -> None:
    running: RunningSandbox = sandbox_factory(latency=(0.3, 0.3))
    with api_on(running) as api:
        started = time.perf_counter()
        api.ok(api.sends([send("slow")]))
        assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    stats = running.stats()
    assert time.perf_counter() - started < 0.3
    assert stats["faults"]["latency"] == 1


def test_fail_rate_answers_503_html_and_stores_nothing(sandbox_factory: Factory) -> None:
    running: RunningSandbox = sandbox_factory(fail_rate=1.0)
    with api_on(running) as api:
        response = api.sends([send("lost")])
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.lstrip().startswith("<html>")
    with pytest.raises(ValueError):
        response.json()
    assert query(running, "SELECT count(*) FROM messages WHERE id = 'lost'") == [(0,)]
    stats = running.stats()
    assert stats["faults"]["fail"] == 1
    assert stats["requests"]["by_endpoint"]["POST /api/v2/history/sends"] == {"503": 1}


def test_rate_limit_answers_429_with_retry_after_per_key(sandbox_factory: Factory) -> None:
    running: RunningSandbox = sandbox_factory(rate_limit=1.0)
    with api_on(running) as api, api_on(running, OTHER_API_KEY) as other:
        assert api.sends([send("r1")]).status_code == 200
        limited = api.sends([send("r2")])
        assert limited.status_code == 429
        retry_after = limited.headers["retry-after"]
        assert retry_after.isdigit()
        assert int(retry_after) >= 1
        assert limited.json()["error"] == "rate_limited"
        assert limited.json()["message"]
        # Another key has its own bucket.
        assert other.sends([send("r3", list_id=900)]).status_code == 200
    assert query(running, "SELECT count(*) FROM messages WHERE id = 'r2'") == [(0,)]
    assert running.stats()["faults"]["rate_limited"] == 1


def test_drop_stores_then_closes_without_answer(
    sandbox_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    running: RunningSandbox = sandbox_factory(drop_rate=1.0)
    caplog.set_level(logging.DEBUG)
    with api_on(running) as api:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            api.sends([send("ghost")])
        # Stored and committed: the retry sees a duplicate (and is dropped again).
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            api.sends([send("ghost")])
    assert query(running, "SELECT imported FROM messages WHERE id = 'ghost'") == [(1,)]
    stats = running.stats()
    assert stats["faults"]["drop"] == 2
    assert stats["records"]["sends"] == {"stored": 1, "duplicates": 1, "errors": 0}
    # No traceback, no "returned without starting response", no 500 from uvicorn.
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert noisy == []


def test_fault_seed_makes_faults_reproducible(sandbox_factory: Factory) -> None:
    def statuses(running: RunningSandbox) -> list[int]:
        with api_on(running) as api:
            return [api.sends([send(f"f{i}")]).status_code for i in range(30)]

    first = statuses(sandbox_factory(fail_rate=0.5, fault_seed=7))
    second = statuses(sandbox_factory(fail_rate=0.5, fault_seed=7))
    assert first == second
    assert set(first) == {200, 503}


def test_reset_restarts_the_fault_draws(sandbox_factory: Factory) -> None:
    running: RunningSandbox = sandbox_factory(fail_rate=0.5, fault_seed=3)
    with api_on(running) as api:
        first = [api.sends([send(f"g{i}")]).status_code for i in range(12)]
        running.reset()
        second = [api.sends([send(f"g{i}")]).status_code for i in range(12)]
    assert first == second


def test_faults_never_touch_sandbox_tools(sandbox_factory: Factory) -> None:
    running: RunningSandbox = sandbox_factory(fail_rate=1.0, drop_rate=1.0, rate_limit=0.001)
    for _ in range(3):
        assert running.stats()["faults"] == {"latency": 0, "fail": 0, "rate_limited": 0, "drop": 0}
    running.reset()


def test_sink_checks_and_counts_but_stores_nothing(sandbox_factory: Factory) -> None:
    running: RunningSandbox = sandbox_factory(sink=True)
    before = running.stats()["tables"]
    with api_on(running) as api:
        records: list[Any] = [send(f"s{i}", to_number="not checked") for i in range(998)]
        records += [{"id": "x", "to_number": "+12025559876"}, "not an object"]
        body = api.ok(api.sends(records))
        assert (body["success_count"], body["error_count"], body["invalid_phones"]) == (998, 2, 0)
        assert [e["code"] for e in body["errors"]] == ["missing_timestamp", "invalid_record"]
        assert (
            api.ok(api.clicks([{"message_id": "m", "offer_id": "o", "phone_number": "p"}]))[
                "errors"
            ][0]["code"]
            == "missing_timestamp"
        )
        assert api.sends([]).status_code == 400
        assert api.sends([send("x")] * 1001).status_code == 413
        with api_on(running, "trk_" + "0" * 32) as stranger:
            assert stranger.sends([send("x")]).status_code == 401
        assert api.ok(api.clear({"entities": ["sends"], "confirm": True}))["cleared"] == {
            "sends": 0
        }
        assert api.ok(api.unsubscribe("+14155559876", "+18005551234"))["unsubscribed"] is False
    stats = running.stats()
    assert stats["tables"] == before
    assert stats["mode"] == "sink"
    assert stats["sink"] == {"requests": 2, "records": 1001}


def test_many_concurrent_requests_are_all_accounted(sandbox: RunningSandbox) -> None:
    def batch(n: int) -> dict[str, Any]:
        with api_on(sandbox) as api:
            # Overlapping ids between batches: each id is stored exactly once overall.
            return api.ok(api.sends([send(f"c{(n * 50 + i) % 300}") for i in range(100)]))

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(batch, range(12)))
    assert sum(r["success_count"] for r in results) == 300
    assert sum(r["success_count"] + r["duplicates_skipped"] for r in results) == 1200
    assert query(sandbox, "SELECT count(*) FROM messages WHERE id LIKE 'c%'") == [(300,)]


def test_an_unknown_key_is_refused_not_rate_limited(tmp_path: Path) -> None:
    config = SandboxConfig(db=tmp_path / "k.db", rate_limit=1.0)
    with start_sandbox(config) as running, httpx.Client(base_url=running.url, timeout=60) as client:
        statuses = [
            client.post(
                "/v2/history/sends", json={"records": []}, headers={"X-Api-Key": key}
            ).status_code
            for key in ["", "trk_" + "z" * 32] * 3
        ]
    assert statuses == [401] * 6


def test_a_client_that_gives_up_during_latency_is_not_a_server_error(tmp_path: Path) -> None:
    with start_sandbox(SandboxConfig(db=tmp_path / "l.db", latency=(0.5, 0.5))) as running:
        with (
            httpx.Client(base_url=running.url, timeout=0.1) as client,
            contextlib.suppress(httpx.TimeoutException),
        ):
            client.post(
                "/v2/history/sends",
                json={"records": [{"id": "gone"}]},
                headers={"X-Api-Key": DEMO_API_KEY},
            )
        # Until the sandbox has settled the abandoned request (499).
        wait_until(
            lambda: bool(running.stats()["requests"]["by_endpoint"]),
            "the sandbox finishing the request",
        )
        by_endpoint = running.stats()["requests"]["by_endpoint"]
    statuses = by_endpoint.get("POST /api/v2/history/sends", {})
    assert "500" not in statuses
