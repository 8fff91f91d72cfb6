"""Starting and stopping the sandbox: in a background thread (tests, ``--sandbox``) or blocking
(``trackly-migrate sandbox``).

The listening socket is bound here, before uvicorn starts, so that a taken port is reported as
a clear ``SandboxError`` and port 0 tells us the port the system picked.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import ipaddress
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from trackly_migrate.sandbox.app import MAX_BODY_BYTES, SandboxState, build_app
from trackly_migrate.sandbox.faults import FaultInjector
from trackly_migrate.sandbox.journal import DEFAULT_SIZE as DEFAULT_JOURNAL_SIZE
from trackly_migrate.sandbox.journal import Journal
from trackly_migrate.sandbox.scripted import FaultQueue, ScriptedFault, parse_fault
from trackly_migrate.sandbox.seed import DEMO_API_KEY, SeedError, default_seed, load_seed
from trackly_migrate.sandbox.store import Store, StoreError
from trackly_migrate.sandbox.validation import is_api_key_format

_STARTUP_TIMEOUT = 15.0


class SandboxError(Exception):
    """The sandbox cannot start (port taken, bad seed file, unusable database, bad option)."""


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port chosen by the system
    db: Path | str = ":memory:"  # SQLite file, or ":memory:"
    api_key: str = DEMO_API_KEY  # a key of the demo (first) account
    seed: Path | None = None  # a seed file replacing the default seed
    latency: tuple[float, float] | None = None  # seconds, (low, high); fixed = (x, x)
    fail_rate: float = 0.0  # share of requests answered 503 with an HTML body, nothing stored
    rate_limit: float | None = None  # requests per second per key; beyond it 429
    drop_rate: float = 0.0  # share of requests stored, then dropped without an answer
    fault_seed: int | None = None  # reproducible fault draws
    sink: bool = False  # check and count requests, store nothing (throughput benchmarks)
    max_body_bytes: int = MAX_BODY_BYTES  # a larger request body is refused whole (413)
    # Scripted faults queued at start (and again on reset): ScriptedFault or its JSON dict.
    faults: tuple[ScriptedFault | dict[str, Any], ...] = ()
    # Serve https with this certificate and key (PEM); tests of the client's TLS handling.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    journal_size: int = DEFAULT_JOURNAL_SIZE  # /api requests kept for /_sandbox/requests
    journal_bodies: bool = False  # keep request and response bodies in the journal too


def is_loopback(host: str) -> bool:
    """True when ``host`` can only be reached from this machine.

    Names other than "localhost" are not resolved: anything that is not plainly loopback
    counts as exposed, so the caller warns rather than guesses.
    """
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RunningSandbox:
    """A sandbox serving in a background thread; a context manager that stops it."""

    def __init__(
        self,
        server: uvicorn.Server,
        thread: threading.Thread,
        store: Store,
        root_url: str,
        db_path: Path | None,
        seeded: bool,
    ) -> None:
        self._server = server
        self._thread = thread
        self.store = store  # the sandbox's database, for tests and tools in this process
        self.root_url = root_url
        self.url = root_url + "/api"
        self.db_path = db_path
        self.seeded = seeded  # False when an existing database file was reused as it was

    def stats(self) -> dict[str, Any]:
        """GET /_sandbox/stats, parsed."""
        response = httpx.get(self.root_url + "/_sandbox/stats", timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def reset(self) -> None:
        """POST /_sandbox/reset: back to the freshly seeded state."""
        httpx.post(self.root_url + "/_sandbox/reset", timeout=10).raise_for_status()

    def stop(self) -> None:
        """Stop serving and close the database; safe to call twice."""
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=15)
        with contextlib.suppress(Exception):
            self.store.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Server(uvicorn.Server):
    """uvicorn's server with a hook once listening, and signal handling that just returns.

    Plain uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, which ends the
    process with a KeyboardInterrupt traceback or a kill; ``serve()`` must return instead.
    """

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


@dataclass
class _Prepared:
    server: _Server
    store: Store
    sock: socket.socket
    root_url: str
    seeded: bool


def _prepare(config: SandboxConfig, on_started: Callable[[str], None] | None) -> _Prepared:
    """Seed, store, app and bound socket; raises SandboxError with a user-facing message."""
    if not is_api_key_format(config.api_key):
        raise SandboxError("the sandbox API key must be 'trk_' followed by 32 letters or digits")
    try:
        seed = load_seed(config.seed) if config.seed is not None else default_seed()
        seed = seed.with_api_key(config.api_key)
        injector = FaultInjector(
            latency=config.latency,
            fail_rate=config.fail_rate,
            drop_rate=config.drop_rate,
            rate_limit=config.rate_limit,
            fault_seed=config.fault_seed,
        )
        queue = FaultQueue(tuple(parse_fault(fault) for fault in config.faults))
        if config.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, not {config.max_body_bytes}")
        journal = Journal(config.journal_size, bodies=config.journal_bodies)
    except (SeedError, ValueError) as exc:
        raise SandboxError(str(exc)) from exc
    try:
        store = Store(_db_argument(config.db))
    except StoreError as exc:
        raise SandboxError(str(exc)) from exc
    try:
        seeded = store.open(seed)
        sock = _bind(config.host, config.port)
    except (StoreError, SandboxError) as exc:
        store.close()
        raise SandboxError(str(exc)) from exc
    root_url = _root_url(config.host, sock.getsockname()[1], https=config.ssl_certfile is not None)
    state = SandboxState(store, seed, injector, sink=config.sink, faults=queue, journal=journal)
    state.max_body_bytes = config.max_body_bytes
    app = build_app(state)
    uv_config = uvicorn.Config(
        app,
        lifespan="off",
        # No access log: nothing of a request reaches a log line (the key travels in a
        # header and is never logged anyway). log_config=None: leave the host program's
        # logging setup alone.
        access_log=False,
        log_config=None,
        log_level="warning",
        timeout_graceful_shutdown=5,
        ssl_certfile=config.ssl_certfile,
        ssl_keyfile=config.ssl_keyfile,
    )

    def started() -> None:
        if on_started is not None:
            on_started(root_url + "/api")

    return _Prepared(_Server(uv_config, started), store, sock, root_url, seeded)


def _db_argument(db: Path | str) -> Path | str:
    if isinstance(db, Path) or db != ":memory:":
        path = Path(db)
        if path.parent and not path.parent.exists():
            raise SandboxError(f"the folder of the sandbox database {path} does not exist")
        return path
    return db


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise SandboxError(f"cannot listen on {host!r}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    # SO_REUSEADDR lets a restart reuse a port in TIME_WAIT; on POSIX it does NOT allow two
    # servers on one port, so a taken port still fails below.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SandboxError(
                f"port {port} on {host} is already in use; choose another port (0 picks a free one)"
            ) from exc
        raise SandboxError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _root_url(host: str, port: int, *, https: bool = False) -> str:
    # A wildcard address is not one to connect to; loopback reaches the same server.
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"{'https' if https else 'http'}://{shown}:{port}"


def start_sandbox(config: SandboxConfig) -> RunningSandbox:
    """Start a sandbox in a daemon thread; returns once it accepts connections."""
    prepared = _prepare(config, None)
    thread = threading.Thread(
        target=prepared.server.run,
        kwargs={"sockets": [prepared.sock]},
        name="trackly-sandbox",
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    while not prepared.server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            prepared.server.should_exit = True
            prepared.sock.close()
            prepared.store.close()
            raise SandboxError("the sandbox server did not start")
        time.sleep(0.005)
    db_path = None if str(config.db) == ":memory:" else Path(config.db)
    return RunningSandbox(
        prepared.server, thread, prepared.store, prepared.root_url, db_path, prepared.seeded
    )


def serve(config: SandboxConfig, announce: Callable[[str], None]) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM, then return (no traceback).

    ``announce(url)`` is called once, with the API base URL, when the server is listening.
    """
    prepared = _prepare(config, announce)
    # This process is the sandbox's alone: what exists now (modules, seed, app) lives until
    # exit, so the collector need not walk it again. Full collections over it were a tenth
    # of the CPU of a large import.
    gc.freeze()
    try:
        prepared.server.run(sockets=[prepared.sock])
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were installed
        pass
    finally:
        prepared.sock.close()
        prepared.store.close()
