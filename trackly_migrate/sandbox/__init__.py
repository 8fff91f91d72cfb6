"""A local emulator of the Trackly SMS API (Starlette + uvicorn + SQLite).

It follows ``CONTRACT.md`` to the letter, so the client can be tested, demonstrated and
rehearsed against it over real HTTP. Start it with ``start_sandbox`` (background thread) or
``serve`` (foreground); see ``docs/sandbox.md``.

The names below are loaded on first use, so that ``trackly_migrate.sandbox.cli`` can be
imported (and say what is missing) without the sandbox extra installed.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEMO_API_KEY": "trackly_migrate.sandbox.seed",
    "OTHER_API_KEY": "trackly_migrate.sandbox.seed",
    "RunningSandbox": "trackly_migrate.sandbox.server",
    "SandboxConfig": "trackly_migrate.sandbox.server",
    "SandboxError": "trackly_migrate.sandbox.server",
    "ScriptedFault": "trackly_migrate.sandbox.scripted",
    "is_loopback": "trackly_migrate.sandbox.server",
    "serve": "trackly_migrate.sandbox.server",
    "start_sandbox": "trackly_migrate.sandbox.server",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
