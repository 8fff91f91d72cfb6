"""Starting, stopping and inspecting the sandbox; auth; seeds; persistence; serve() signals."""

from __future__ import annotations

import json
import logging
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import api_on, default_sigint, query, send
from trackly_migrate.sandbox.seed import DEMO_API_KEY, OTHER_API_KEY, default_seed_data
from trackly_migrate.sandbox.server import (
    RunningSandbox,
    SandboxConfig,
    SandboxError,
    is_loopback,
    start_sandbox,
)

REPO = Path(__file__).resolve().parent.parent
ENDPOINTS = [
    ("POST", "/v2/history/sends", {"records": [send("x")]}),
    ("POST", "/v2/history/clicks", {"records": [{"message_id": "a1b2c3d4"}]}),
    ("DELETE", "/v2/history/clear", {"entities": ["sends"], "confirm": True}),
    ("DELETE", "/v2/contacts", {"phone_number": "+14155559876", "list_number": "+18005551234"}),
]
Factory = Any


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize(
    "key", [None, "", "trk_" + "f" * 32, "trk_short", DEMO_API_KEY.upper(), DEMO_API_KEY[:-1]]
)
def test_401_on_every_endpoint(
    sandbox: RunningSandbox, method: str, path: str, body: Any, key: str | None
) -> None:
    headers = {} if key is None else {"X-Api-Key": key}
    response = httpx.request(method, sandbox.url + path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthorized",
        "message": "Missing or invalid X-Api-Key header.",
    }
    assert sandbox.stats()["tables"]["messages"] == 11  # nothing happened


def test_auth_comes_before_body_checks(sandbox: RunningSandbox) -> None:
    response = httpx.post(sandbox.url + "/v2/history/sends", content=b"not json")
    assert response.status_code == 401


def test_keys_never_appear_in_answers_or_logs(
    sandbox: RunningSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "trk_" + "W" * 32
    texts = []
    for key in (DEMO_API_KEY, wrong):
        with api_on(sandbox, key) as api:
            texts.append(api.sends([send("k1"), {"id": 1}]).text)
            texts.append(api.client.post("/v2/history/sends", content=b"{").text)
            texts.append(api.clear({"entities": ["x"]}).text)
    texts.append(json.dumps(sandbox.stats()))
    for text in [*texts, caplog.text]:
        assert DEMO_API_KEY not in text
        assert wrong not in text
        assert "sandboxdemokey" not in text
    assert query(sandbox, "SELECT count(*) FROM api_keys WHERE key_sha256 LIKE 'trk_%'") == [(0,)]


def test_unknown_routes_and_methods_answer_json(sandbox: RunningSandbox) -> None:
    with api_on(sandbox) as api:
        missing = api.client.post("/v3/history/sends", json={})
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
        wrong = api.client.get("/v2/history/sends")
        assert (wrong.status_code, wrong.json()["error"]) == (405, "method_not_allowed")
        assert wrong.headers["allow"] == "POST"
    index = httpx.get(sandbox.root_url + "/")
    assert index.json()["api_base_url"] == sandbox.url


def test_urls(sandbox: RunningSandbox) -> None:
    assert sandbox.root_url.startswith("http://127.0.0.1:")
    assert sandbox.url == sandbox.root_url + "/api"
    assert sandbox.db_path is not None
    assert sandbox.seeded is True


def test_memory_database() -> None:
    with start_sandbox(SandboxConfig()) as running:
        assert running.db_path is None
        with api_on(running) as api:
            assert api.ok(api.sends([send("mem")]))["success_count"] == 1
        assert running.stats()["accounts"]["demo"]["imported_messages"] == 6


def test_stats_shape(sandbox: RunningSandbox) -> None:
    with api_on(sandbox) as api:
        api.ok(api.sends([send("st1"), send("st1"), send("st2", to_number="x")]))
        api.clear({"entities": ["sends"]})
    stats = sandbox.stats()
    assert stats["tables"] == {
        "accounts": 2,
        "api_keys": 2,
        "lists": 5,
        "list_contacts": 12,
        "offers": 7,
        "messages": 12,
        "clicks": 5,
        "revenue": 7,
    }
    assert stats["accounts"]["demo"] == {
        "messages": 10,
        "imported_messages": 6,
        "live_messages": 4,
        "clicks": 4,
        "revenue": 5,
        "lists": 4,
        "list_contacts": 10,
        "active_contacts": 9,
        "offers": 6,
    }
    assert stats["accounts"]["other"]["messages"] == 2
    assert stats["requests"] == {
        "total": 2,
        "by_endpoint": {
            "DELETE /api/v2/history/clear": {"400": 1},
            "POST /api/v2/history/sends": {"200": 1},
        },
    }
    assert stats["records"]["sends"] == {"stored": 1, "duplicates": 1, "errors": 1}
    assert stats["faults"] == {"latency": 0, "fail": 0, "rate_limited": 0, "drop": 0}
    assert stats["mode"] == "store"


def test_reset_goes_back_to_the_seed(sandbox: RunningSandbox) -> None:
    fresh = sandbox.stats()
    with api_on(sandbox) as api:
        api.ok(api.sends([send(f"r{i}") for i in range(10)]))
        api.ok(api.clear({"entities": ["sends", "clicks", "revenue"], "confirm": True}))
        api.ok(api.unsubscribe("+14155559876", "+18005551234"))
    response = httpx.post(sandbox.root_url + "/_sandbox/reset")
    assert response.json() == {"success": True}
    assert sandbox.stats() == fresh
    with api_on(sandbox) as api:
        assert api.ok(api.unsubscribe("+14155559876", "+18005551234"))["unsubscribed"] is True


def test_port_taken_is_a_clear_error(sandbox: RunningSandbox) -> None:
    port = int(sandbox.root_url.rsplit(":", 1)[1])
    with pytest.raises(SandboxError, match=f"port {port} on 127.0.0.1 is already in use"):
        start_sandbox(SandboxConfig(port=port))


def _on_a_fixed_free_port() -> RunningSandbox:
    # A port found free can be taken (by another test run) before the sandbox binds it:
    # then try another one.
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            return start_sandbox(SandboxConfig(port=port, host="localhost"))
        except SandboxError as exc:
            if "already in use" not in str(exc):
                raise
    raise AssertionError("no free port in 50 tries")


def test_fixed_port() -> None:
    with _on_a_fixed_free_port() as running:
        port = int(running.root_url.rsplit(":", 1)[1])
        assert running.root_url == f"http://localhost:{port}"
        assert httpx.get(running.root_url + "/_sandbox/stats").status_code == 200


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),  # noqa: S104
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_existing_database_is_reused_with_its_data(tmp_path: Path) -> None:
    db = tmp_path / "keep.db"
    with start_sandbox(SandboxConfig(db=db)) as first, api_on(first) as api:
        api.ok(api.sends([send("kept")]))
    new_key = "trk_" + "N" * 32
    with start_sandbox(SandboxConfig(db=db, api_key=new_key)) as second:
        assert second.seeded is False
        with api_on(second, new_key) as api:
            # The earlier run's send is there: clicks of it can be imported now.
            assert (
                api.ok(
                    api.clicks(
                        [
                            {
                                "message_id": "kept",
                                "offer_id": "offer_123",
                                "phone_number": "+12025559876",
                                "timestamp": "2025-11-16T00:00:00Z",
                            }
                        ]
                    )
                )["success_count"]
                == 1
            )
        with api_on(second) as api:  # the demo key still works
            assert api.ok(api.sends([send("kept")]))["duplicates_skipped"] == 1


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE precious (x)")
    conn.commit()
    conn.close()
    with pytest.raises(SandboxError, match="not a sandbox database"):
        start_sandbox(SandboxConfig(db=db))
    assert sqlite3.connect(db).execute("SELECT name FROM sqlite_master").fetchall() == [
        ("precious",)
    ]


def test_missing_database_folder(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="does not exist"):
        start_sandbox(SandboxConfig(db=tmp_path / "nowhere" / "x.db"))


def test_printed_seed_is_the_default_seed_and_starts_a_sandbox(
    tmp_path: Path, sandbox_factory: Factory
) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "trackly_migrate", "sandbox", "--print-seed"],
        capture_output=True,
        check=True,
    ).stdout
    assert json.loads(printed) == default_seed_data()
    assert default_seed_data()["accounts"][0]["api_keys"] == [DEMO_API_KEY]
    path = tmp_path / "my-seed.json"
    path.write_bytes(printed)
    running: RunningSandbox = sandbox_factory(seed=path)
    assert running.stats()["accounts"]["demo"]["lists"] == 4


def test_one_copy_of_the_default_seed() -> None:
    # One copy, in the package (hatch puts every file of trackly_migrate/ into the wheel),
    # loaded through importlib.resources, not from a path of the checkout.
    source = (REPO / "trackly_migrate" / "sandbox" / "default_seed.json").read_bytes()
    assert json.loads(source) == default_seed_data()
    assert not (REPO / "samples" / "seed.json").exists()


def test_custom_seed_and_key(tmp_path: Path, sandbox_factory: Factory) -> None:
    seed = {
        "accounts": [
            {
                "name": "acme",
                "lists": [{"number": "+14155551234"}, {"id": 7, "number": "+18005551234"}],
                "offers": [{"id": "acme_offer"}],
            }
        ]
    }
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(seed))
    key = "trk_" + "a1" * 16
    running: RunningSandbox = sandbox_factory(seed=path, api_key=key)
    with api_on(running, key) as api:
        body = api.ok(
            api.sends([send("n1", list_id=7), send("n2", list_id=None, list_number="+14155551234")])
        )
        assert body["success_count"] == 2
    with api_on(running) as api:  # the demo key is not in this seed
        assert api.sends([send("n3")]).status_code == 401
    assert running.stats()["accounts"] == {
        "acme": {
            "messages": 2,
            "imported_messages": 2,
            "live_messages": 0,
            "clicks": 0,
            "revenue": 0,
            "lists": 2,
            "list_contacts": 2,
            "active_contacts": 2,
            "offers": 1,
        }
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "top level: must be a JSON object"),
        ('{"accounts": []}', "at least one account"),
        (
            '{"accounts": [{"name": "a", "lists": [{"number": "+1555"}]}]}',
            "accounts[0].lists[0].number",
        ),
        ('{"accounts": [{"name": "a", "listz": []}]}', "unknown field(s): listz"),
        ('{"accounts": [{"name": "a", "api_keys": ["nope"]}]}', "accounts[0].api_keys[0]"),
        (
            '{"accounts": [{"name": "a", "lists": [{"id": 1, "number": "+14155551234"},'
            ' {"id": 1, "number": "+18005551234"}]}]}',
            "list id 1 is used twice",
        ),
        (
            '{"accounts": [{"name": "a", "messages": [{"id": "m", "to_number": "+14155551234",'
            ' "timestamp": "2025-01-01T00:00:00"}]}]}',
            "accounts[0].messages[0].timestamp",
        ),
        (
            '{"accounts": [{"name": "a", "clicks": [{"message_id": "m", "offer_id": "o",'
            ' "phone_number": "+14155551234", "timestamp": "2025-01-01T00:00:00Z"}]}]}',
            "no message of this account",
        ),
        (
            '{"accounts": [{"name": "a"}, {"name": "b", "api_keys": '
            '["trk_sandboxdemokey000000000000000000"]}]}',
            "must belong to the first account",
        ),
    ],
)
def test_bad_seed_files_are_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "seed.json"
    path.write_text(content)
    with pytest.raises(SandboxError) as raised:
        start_sandbox(SandboxConfig(seed=path))
    assert message in str(raised.value)
    assert "Traceback" not in str(raised.value)


def test_missing_seed_file(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="cannot read seed file"):
        start_sandbox(SandboxConfig(seed=tmp_path / "absent.json"))


@pytest.mark.parametrize("key", ["trk_short", "sandbox", OTHER_API_KEY])
def test_bad_sandbox_keys(key: str) -> None:
    with pytest.raises(SandboxError):
        start_sandbox(SandboxConfig(api_key=key))


SERVE_SCRIPT = textwrap.dedent(
    """
    import sys
    from trackly_migrate.sandbox.server import SandboxConfig, serve

    def announce(url):
        print(url, flush=True)

    serve(SandboxConfig(db=sys.argv[1]), announce)
    print("returned", flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_returns_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, str(tmp_path / "serve.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        preexec_fn=default_sigint,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
        with httpx.Client(base_url=url, headers={"X-Api-Key": DEMO_API_KEY}) as client:
            response = client.post("/v2/history/sends", json={"records": [send("srv")]})
            assert response.json()["success_count"] == 1
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.strip() == "returned"
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err


def test_reused_database_from_another_seed_accepts_the_sandbox_key(tmp_path: Path) -> None:
    seed = tmp_path / "acme.json"
    seed.write_text(
        json.dumps({"accounts": [{"name": "acme", "lists": [{"number": "+14155551234"}]}]})
    )
    db = tmp_path / "acme.db"
    key = "trk_" + "b" * 32
    start_sandbox(SandboxConfig(db=db, seed=seed, api_key=key)).stop()
    with start_sandbox(SandboxConfig(db=db)) as running, api_on(running) as api:
        body = api.ok(api.sends([send("a", list_id=None, list_number="+14155551234")]))
        assert body["success_count"] == 1
        assert running.stats()["accounts"]["acme"]["imported_messages"] == 1
