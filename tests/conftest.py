"""Shared fixtures: a real sandbox on a real socket, and a clean environment.

The sandbox runs uvicorn in a thread of the test process (as httpx's own tests do), bound to
127.0.0.1 on a free port, with a fresh SQLite file per test. The CLI runs in this
process (``tests.helpers.invoke``) or as a real one (``run_cli``) against it; everything
between them crosses real HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# CliResult and run_cli are imported from here by older tests; they live in tests.helpers.
from tests.helpers import Api, CliResult, api_on, run_cli, shared_sandbox
from trackly_migrate.sandbox.server import RunningSandbox, SandboxConfig, start_sandbox


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TRACKLY_* setting of the developer's leaks into a test; fixed terminal width;
    resume checkpoints, the home folder and the current folder (default reports) are the
    test's own, so neither tests nor two runs of the suite side by side share any."""
    for name in list(os.environ):
        if name.startswith("TRACKLY_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for variable, folder in [
        ("XDG_STATE_HOME", "state"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_DATA_HOME", "data"),
    ]:
        monkeypatch.setenv(variable, str(tmp_path / folder))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    """A fresh sandbox (seeded demo and second account) on 127.0.0.1:<free port>."""
    with start_sandbox(SandboxConfig(db=tmp_path / "sandbox.db")) as running:
        yield running


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[Any]:
    """Start sandboxes with custom options (faults, seeds); all are stopped after the test."""
    started: list[RunningSandbox] = []

    def factory(**options: Any) -> RunningSandbox:
        options.setdefault("db", tmp_path / f"sandbox{len(started)}.db")
        running = start_sandbox(SandboxConfig(**options))
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSandbox]:
    """One sandbox for a whole test module (reset between tests by ``api``)."""
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with shared_sandbox(folder) as running:
        yield running


@pytest.fixture
def api(shared: RunningSandbox) -> Iterator[Api]:
    """The demo account's client on the module's sandbox, freshly reset."""
    shared.reset()
    with api_on(shared) as client:
        yield client


__all__ = ["CliResult", "run_cli"]
