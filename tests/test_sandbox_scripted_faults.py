"""Scripted faults (POST/DELETE /_sandbox/faults, SandboxConfig.faults) and the body limit."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import api_on, query, send
from trackly_migrate.sandbox.scripted import FaultSpecError, parse_fault
from trackly_migrate.sandbox.server import RunningSandbox, SandboxError

Factory = Any
SENDS_PATH = "/api/v2/history/sends"


def queue(sandbox: RunningSandbox, *faults: dict[str, Any]) -> httpx.Response:
    return httpx.post(sandbox.root_url + "/_sandbox/faults", json={"faults": list(faults)})


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"kind": "explode"}, "unknown fault kind 'explode'; the kinds are internal_error"),
        ({}, "unknown fault kind None"),
        ({"kind": "internal_error", "times": 0}, "times must be an integer from 1"),
        ({"kind": "internal_error", "times": True}, "times must be an integer"),
        ({"kind": "internal_error", "path": "/v2/history/sends"}, "path must be an API path"),
        ({"kind": "save_error", "path": SENDS_PATH}, "needs indexes"),
        ({"kind": "save_error", "indexes": [1]}, "needs a path"),
        ({"kind": "save_error", "path": "/api/v2/contacts", "indexes": [1]}, "applies to"),
        ({"kind": "save_error", "path": SENDS_PATH, "indexes": [-1]}, "indexes must be"),
        ({"kind": "internal_error", "indexes": [1]}, "indexes belongs to"),
        ({"kind": "count_mismatch", "path": SENDS_PATH, "mode": "wild"}, "mode must be one of"),
        ({"kind": "slow_body", "seconds": 0}, "seconds must be a number above 0"),
        ({"kind": "rate_limited", "retry_after": "soon"}, "retry_after must be an integer"),
        ({"kind": "drop", "when": "now"}, "unknown field(s) when"),
        ([1], "a fault must be a JSON object"),
    ],
)
def test_fault_descriptions_are_checked(fault: Any, message: str) -> None:
    with pytest.raises(FaultSpecError) as caught:
        parse_fault(fault)
    assert message in str(caught.value)


def test_fault_api_refuses_bad_input_and_queues_nothing(sandbox: RunningSandbox) -> None:
    response = queue(sandbox, {"kind": "internal_error"}, {"kind": "nope"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_fault"
    assert "unknown fault kind 'nope'" in response.json()["message"]
    not_json = httpx.post(sandbox.root_url + "/_sandbox/faults", content=b"{")
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid_fault")
    assert httpx.get(sandbox.root_url + "/_sandbox/faults").json()["queued"] == []


def test_internal_error_for_the_next_n_matching_requests(sandbox: RunningSandbox) -> None:
    body = queue(sandbox, {"kind": "internal_error", "path": SENDS_PATH, "times": 2}).json()
    assert body["queued"][0]["left"] == 2
    with api_on(sandbox) as api:
        # Another path is not matched.
        assert api.unsubscribe("+14155559876", "+18005551234").status_code == 200
        for _ in range(2):
            failed = api.sends([send("f1")])
            assert failed.status_code == 500
            assert failed.json() == {
                "error": "internal_error",
                "message": "An unexpected server error occurred.",
            }
        assert query(sandbox, "SELECT COUNT(*) FROM messages WHERE id = 'f1'") == [(0,)]
        assert api.ok(api.sends([send("f1")]))["success_count"] == 1
    scripted = sandbox.stats()["scripted_faults"]
    assert scripted == {"queued": [], "injected": {"internal_error": 2}}


@pytest.mark.parametrize(("kind", "status"), [("bad_gateway", 502), ("gateway_timeout", 504)])
def test_proxy_errors_answer_html(sandbox: RunningSandbox, kind: str, status: int) -> None:
    queue(sandbox, {"kind": kind})
    with api_on(sandbox) as api:
        response = api.sends([send("p1")])
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html"
    assert f"<h1>{status} " in response.text


def test_rate_limited_with_a_chosen_retry_after(sandbox: RunningSandbox) -> None:
    queue(sandbox, {"kind": "rate_limited", "retry_after": 7})
    with api_on(sandbox) as api:
        response = api.sends([send("r1")])
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert response.json()["error"] == "rate_limited"


def test_save_error_at_chosen_indexes(sandbox: RunningSandbox) -> None:
    queue(sandbox, {"kind": "save_error", "path": SENDS_PATH, "indexes": [1, 3]})
    with api_on(sandbox) as api:
        body = api.ok(api.sends([send(f"s{i}") for i in range(4)]))
    assert (body["success_count"], body["error_count"]) == (2, 2)
    assert [(e["index"], e["id"], e["code"]) for e in body["errors"]] == [
        (1, "s1", "save_error"),
        (3, "s3", "save_error"),
    ]
    assert query(sandbox, "SELECT id FROM messages WHERE id LIKE 's%' ORDER BY id") == [
        ("s0",),
        ("s2",),
    ]


def test_count_mismatches(sandbox: RunningSandbox) -> None:
    queue(
        sandbox,
        {"kind": "count_mismatch", "path": SENDS_PATH, "indexes": [0]},
        {"kind": "count_mismatch", "path": SENDS_PATH, "mode": "undercount"},
    )
    with api_on(sandbox) as api:
        apart = api.ok(api.sends([send("c0"), send("c1")]))
        under = api.ok(api.sends([send("c2"), send("c3")]))
    assert (apart["success_count"], apart["error_count"], apart["invalid_phones"]) == (1, 0, 1)
    assert apart["errors"][0]["code"] == "invalid_phone"
    assert (under["success_count"], under["error_count"], under["duplicates_skipped"]) == (1, 0, 0)
    assert query(sandbox, "SELECT COUNT(*) FROM messages WHERE id IN ('c2', 'c3')") == [(2,)]


def test_truncated_and_slow_answers_come_after_the_commit(sandbox: RunningSandbox) -> None:
    queue(sandbox, {"kind": "truncated_body"}, {"kind": "slow_body", "seconds": 0.2})
    with api_on(sandbox) as api:
        with pytest.raises(httpx.RemoteProtocolError):
            api.sends([send("t1")])
        slow = api.sends([send("t2")])
    assert slow.json()["success_count"] == 1
    assert query(sandbox, "SELECT COUNT(*) FROM messages WHERE id IN ('t1', 't2')") == [(2,)]


def test_drop_after_commit(sandbox: RunningSandbox) -> None:
    queue(sandbox, {"kind": "drop", "path": SENDS_PATH})
    with api_on(sandbox) as api, pytest.raises(httpx.TransportError):
        api.sends([send("d1")])
    assert query(sandbox, "SELECT COUNT(*) FROM messages WHERE id = 'd1'") == [(1,)]


def test_delete_clears_and_reset_restores_the_configured_faults(sandbox_factory: Factory) -> None:
    running: RunningSandbox = sandbox_factory(faults=({"kind": "internal_error", "times": 3},))
    assert httpx.delete(running.root_url + "/_sandbox/faults").json()["cleared"] == 3
    with api_on(running) as api:
        assert api.sends([send("x1")]).status_code == 200
        running.reset()
        assert api.sends([send("x1")]).status_code == 500


def test_bad_configured_fault_stops_the_start(sandbox_factory: Factory) -> None:
    with pytest.raises(SandboxError, match="unknown fault kind"):
        sandbox_factory(faults=({"kind": "boom"},))


def test_a_body_over_the_limit_is_refused_whole(sandbox_factory: Factory) -> None:
    running: RunningSandbox = sandbox_factory(max_body_bytes=2000)
    with api_on(running) as api:
        fits = api.sends([send("b0", message="x" * 1000)])
        assert fits.status_code == 200
        refused = api.sends([send("b1"), send("b2", message="x" * 2000)])
    assert refused.status_code == 413
    assert refused.json()["error"] == "payload_too_large"
    assert "the limit is 2,000 bytes" in refused.json()["message"]
    assert query(running, "SELECT id FROM messages WHERE id LIKE 'b%'") == [("b0",)]
    bodies = running.stats()["bodies"]
    assert bodies["refused_too_large"] == 1
    assert bodies["max_bytes"] > 2000


def test_the_default_limit_is_ten_mib(sandbox: RunningSandbox) -> None:
    with api_on(sandbox) as api:
        refused = api.sends([send("big", message="x" * (10 * 1024 * 1024))])
    assert (refused.status_code, refused.json()["error"]) == (413, "payload_too_large")
    assert query(sandbox, "SELECT COUNT(*) FROM messages WHERE id = 'big'") == [(0,)]
    assert sandbox.stats()["max_body_bytes"] == 10 * 1024 * 1024
