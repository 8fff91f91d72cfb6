"""A local emulator of the Trackly SMS API (Starlette + uvicorn + SQLite).

It follows ``CONTRACT.md`` to the letter, so the client can be tested, demonstrated and
rehearsed against it over real HTTP. Start it with ``start_sandbox`` (background thread) or
``serve`` (foreground); see ``docs/sandbox.md``.
"""

from trackly_migrate.sandbox.seed import DEMO_API_KEY, OTHER_API_KEY
from trackly_migrate.sandbox.server import (
    RunningSandbox,
    SandboxConfig,
    SandboxError,
    is_loopback,
    serve,
    start_sandbox,
)

__all__ = [
    "DEMO_API_KEY",
    "OTHER_API_KEY",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxError",
    "is_loopback",
    "serve",
    "start_sandbox",
]
