"""How runs end when the server fails them: what was tried is counted, permanent failures stop
at once and say why, a server that never answers is given up on in bounded time, and a
failure that surely stored nothing leaves nothing behind that blocks the next run."""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import trustme

from tests.helpers import (
    invoke,
    requests_to,
    send_row,
    stored_imported_ids,
    summary_of,
    wait_until,
    write_sends_csv,
)
from trackly_migrate.client import RetryPolicy, TracklyClient
from trackly_migrate.config import ApiSettings
from trackly_migrate.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
)
from trackly_migrate.pipeline import ImportRequest, Limits, Source, Target, run_import
from trackly_migrate.records import Kind
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

SENDS_ENDPOINT = "POST /api/v2/history/sends"
WRONG_KEY = "trk_" + "x" * 32


def _summary_table_requests(stderr: str) -> tuple[int, int]:
    """The requests row of the summary table: (requests, retries)."""
    match = re.search(r"requests\D+?([\d,]+)\D+?([\d,]+) retries", stderr)
    assert match, stderr
    return int(match[1].replace(",", "")), int(match[2].replace(",", ""))


@pytest.mark.parametrize("json_output", [True, False])
def test_a_batch_out_of_retries_counts_every_attempt(
    sandbox_factory, tmp_path: Path, json_output: bool
) -> None:
    sandbox = sandbox_factory(fail_rate=1.0)
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(5)])
    args = ["import-sends", str(source), "--max-retries", "2"]
    result = invoke([*args, "--json"] if json_output else args, sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 3, result.output
    assert "Traceback" not in result.output
    assert requests_to(sandbox, SENDS_ENDPOINT) == 3
    if json_output:
        summary = summary_of(result.stdout)
        assert (summary["requests"], summary["retries"]) == (3, 2)
        assert summary["pending"] == 5
    else:
        assert _summary_table_requests(result.stderr) == (3, 2)


@pytest.mark.parametrize("sender_process", [False, True])
@pytest.mark.parametrize("kind", [Kind.SENDS, Kind.CONTACTS])
def test_requests_given_up_on_are_counted_across_the_sender_process(
    sandbox_factory, tmp_path: Path, sender_process: bool, kind: Kind
) -> None:
    sandbox = sandbox_factory(fail_rate=1.0)
    if kind is Kind.SENDS:
        source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(5)])
    else:
        source = tmp_path / "contacts.csv"
        source.write_text("phone_number,list_number\n+14155550100,+14155551234\n")
    outcome = run_import(
        ImportRequest(
            kind=kind,
            source=Source(str(source)),
            target=Target(ApiSettings(sandbox.url, DEMO_API_KEY), sender_process=sender_process),
            limits=Limits(retry_policy=RetryPolicy(max_attempts=4, backoff_base=0.01)),
        ),
        Quiet(),
    )
    assert outcome.error is not None
    assert (outcome.summary.counts.requests, outcome.summary.counts.retries) == (4, 3)


class Quiet:
    def progress(self, state: object) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def retry(self, reason: str, delay: float) -> None:
        pass

    def info(self, message: str) -> None:
        pass


class SilentServer:
    """A real socket server that accepts connections, reads requests, and never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.requests = 0
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=self._swallow, args=(connection,), daemon=True).start()

    def _swallow(self, connection: socket.socket) -> None:
        counted = False
        while True:
            try:
                data = connection.recv(65536)
            except OSError:
                return
            if not data:
                return
            if not counted:  # one request per connection: the client drops it on a timeout
                counted = True
                with self._lock:
                    self.requests += 1

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_a_server_that_never_answers_is_given_up_on_after_two_tries(
    silent_server: SilentServer, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3)])
    started = time.monotonic()
    result = invoke(
        ["import-sends", str(source), "--json", "--timeout", "1"],
        env={"TRACKLY_BASE_URL": silent_server.url},
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.output
    assert "Traceback" not in result.output
    summary = summary_of(result.stdout)
    assert (summary["requests"], summary["retries"]) == (2, 1)
    wait_until(lambda: silent_server.requests == 2, "the second try at the server")
    message = " ".join(result.stderr.split())
    assert "No answer from 127.0.0.1 within 1 s" in message
    assert "(2 attempts)" in message
    assert "--resume" in message and "idempotent" in message
    assert "--timeout" in message
    # Two 1-second timeouts and a short backoff, not eight (or the 600 s budget).
    assert elapsed < 30


def test_a_wrong_key_leaves_nothing_that_blocks_the_rerun(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(1000)])
    first = invoke(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert first.returncode == 0, first.output
    wrong = invoke(
        ["import-sends", str(source), "--json"], sandbox=sandbox, api_key=WRONG_KEY, cwd=tmp_path
    )
    assert wrong.returncode == 3
    assert "key was refused" in wrong.stderr
    assert "To resume" not in wrong.stderr  # no checkpoint: the 401 stored nothing
    assert "--resume" not in wrong.stderr  # nor does the summary table advise one
    assert "run it again" in wrong.stderr
    rerun = invoke(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.output
    summary = summary_of(rerun.stdout)
    assert summary["duplicates"] == 1000
    assert summary.get("duplicates_after_retry", 0) == 0  # old records, not this run's own
    resumed = invoke(
        ["import-sends", str(source), "--json", "--resume"], sandbox=sandbox, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.output
    assert summary_of(resumed.stdout).get("duplicates_after_retry", 0) == 0


def test_a_run_that_confirmed_nothing_does_not_block_a_plain_rerun(
    silent_server: SilentServer, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3)])
    checkpoint = tmp_path / "run.checkpoint"
    args = ["import-sends", str(source), "--json", "--checkpoint", str(checkpoint)]
    timed_out = invoke(
        [*args, "--timeout", "1", "--max-retries", "0"],
        env={"TRACKLY_BASE_URL": silent_server.url},
        cwd=tmp_path,
    )
    assert timed_out.returncode == 3, timed_out.output
    assert checkpoint.exists()  # the batch may have been stored: its duplicates are ours
    rerun = invoke(args, sandbox=sandbox, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.output
    assert summary_of(rerun.stdout)["imported"] == 3
    assert "confirmed nothing" in rerun.stderr
    assert not checkpoint.exists()


@dataclass(frozen=True)
class Tls:
    ca: Path  # the test CA's certificate (what --ca-bundle names)
    certfile: Path  # the server's certificate chain, for 127.0.0.1 and localhost
    keyfile: Path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A private CA made for this test (trustme), and a server certificate it signed."""
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    paths = Tls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    authority.cert_pem.write_to_path(str(paths.ca))
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(paths.certfile), append=True)
    issued.private_key_pem.write_to_path(str(paths.keyfile))
    return paths


@pytest.fixture
def https_sandbox(sandbox_factory, tls: Tls) -> RunningSandbox:
    running: RunningSandbox = sandbox_factory(ssl_certfile=tls.certfile, ssl_keyfile=tls.keyfile)
    assert running.url.startswith("https://127.0.0.1:")
    return running


def _https_requests(sandbox: RunningSandbox, tls: Tls) -> int:
    context = ssl.create_default_context(cafile=str(tls.ca))
    stats = httpx.get(sandbox.root_url + "/_sandbox/stats", verify=context).json()
    return sum(sum(by_status.values()) for by_status in stats["requests"]["by_endpoint"].values())


def test_an_untrusted_certificate_stops_at_once_and_says_how_to_trust_the_ca(
    https_sandbox: RunningSandbox, tls: Tls, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3)])
    result = invoke(["import-sends", str(source), "--json"], sandbox=https_sandbox, cwd=tmp_path)
    assert result.returncode == 3, result.output
    assert "Traceback" not in result.output
    summary = summary_of(result.stdout)
    assert (summary["requests"], summary["retries"]) == (1, 0)
    message = " ".join(result.stderr.split())
    assert "retrying" not in message
    assert "Cannot connect" not in message
    assert "TLS certificate of 127.0.0.1 is not trusted" in message
    assert "--ca-bundle PATH" in message and "TRACKLY_CA_BUNDLE" in message
    assert "SSL_CERT_FILE" in message
    assert _https_requests(https_sandbox, tls) == 0  # no request got past the handshake


@pytest.mark.parametrize("how", ["--ca-bundle", "TRACKLY_CA_BUNDLE", "SSL_CERT_FILE"])
def test_with_the_private_ca_trusted_the_import_works_over_https(
    https_sandbox: RunningSandbox, tls: Tls, tmp_path: Path, how: str
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(50)])
    args = ["import-sends", str(source), "--json"]
    env: dict[str, str] = {}
    if how == "--ca-bundle":
        args += ["--ca-bundle", str(tls.ca)]
    else:
        env[how] = str(tls.ca)
    result = invoke(args, sandbox=https_sandbox, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert summary_of(result.stdout)["imported"] == 50
    assert {f"t_{i:06d}" for i in range(50)} <= set(stored_imported_ids(https_sandbox))


@pytest.mark.parametrize(
    "command",
    [
        ["unsubscribe", "+14155559876", "--list", "+18005551234"],
        ["clear", "sends", "--all-time", "--yes"],
    ],
)
def test_every_command_that_talks_to_the_api_takes_the_ca_bundle(
    https_sandbox: RunningSandbox, tls: Tls, command: list[str]
) -> None:
    untrusted = invoke(command, sandbox=https_sandbox)
    assert untrusted.returncode == 3, untrusted.output
    assert "TLS certificate of 127.0.0.1 is not trusted" in untrusted.stderr
    trusted = invoke([*command, "--ca-bundle", str(tls.ca)], sandbox=https_sandbox)
    assert trusted.returncode == 0, trusted.output


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "Cannot read the CA bundle"), ("not a certificate\n", "holds no usable certificate")],
)
def test_an_unusable_ca_bundle_is_a_usage_error(
    sandbox: RunningSandbox, tmp_path: Path, content: str | None, message: str
) -> None:
    bundle = tmp_path / "ca.pem"
    if content is not None:
        bundle.write_text(content)
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    result = invoke(
        ["import-sends", str(source), "--ca-bundle", str(bundle)], sandbox=sandbox, cwd=tmp_path
    )
    assert result.returncode == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0


def _batch(count: int) -> bytes:
    return orjson.dumps({"records": [send_row(i) for i in range(count)]})


@pytest.mark.parametrize(
    ("faults", "key", "count", "error_class", "may_have_applied", "requests"),
    [
        ({}, WRONG_KEY, 1, AuthenticationError, False, 1),
        ({}, DEMO_API_KEY, 1001, RequestRejectedError, False, 1),  # 413 too_many_records
        ({"rate_limit": 0.001}, DEMO_API_KEY, 1, RateLimitedError, False, 3),
        ({"fail_rate": 1.0}, DEMO_API_KEY, 1, ServerError, True, 3),
        ({"drop_rate": 1.0}, DEMO_API_KEY, 1, ApiConnectionError, True, 3),
    ],
)
def test_a_failure_says_what_it_spent_and_whether_anything_may_be_stored(
    sandbox_factory,
    faults: dict[str, float],
    key: str,
    count: int,
    error_class: type[ApiError],
    may_have_applied: bool,
    requests: int,
) -> None:
    sandbox = sandbox_factory(**faults)
    policy = RetryPolicy(max_attempts=3, backoff_base=0.01, retry_after_cap=0.01)
    client = TracklyClient(ApiSettings(sandbox.url, key), timeout=5, policy=policy)
    if faults.get("rate_limit"):
        client.import_batch("sends", _batch(1), 1)  # spends the one request the bucket holds
    with client, pytest.raises(error_class) as raised:
        client.import_batch("sends", _batch(count), count)
    error = raised.value
    assert (error.requests, error.retries) == (requests, requests - 1)
    assert error.may_have_applied is may_have_applied
