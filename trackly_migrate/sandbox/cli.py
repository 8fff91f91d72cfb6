"""The ``trackly-migrate sandbox`` command: options -> ``SandboxConfig`` -> ``serve``.

``trackly_migrate/cli.py`` registers ``sandbox_command`` under its error boundary. This module
imports only Typer at load time, so the main CLI starts (and says what is missing)
when the sandbox extra (Starlette, uvicorn) is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from trackly_migrate.errors import UsageError

# Rich and orjson are imported when the command runs: every command line of the tool
# (``--help``, tab completion) loads this module to register ``sandbox`` (issue 13).

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_JOURNAL_SIZE = 1000  # journal.DEFAULT_SIZE (not imported: it needs the sandbox extra)


def sandbox_command(
    host: Annotated[
        str,
        typer.Option(
            "--host", metavar="ADDRESS", help="Address to listen on (loopback unless you mean it)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", min=0, max=65535, help="0 picks a free port.")
    ] = (8765),
    db: Annotated[
        str,
        typer.Option("--db", metavar="PATH", help="SQLite file, or :memory:."),
    ] = "trackly-sandbox.db",
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", metavar="KEY", help="The demo account's key (default: documented)."
        ),
    ] = None,
    seed: Annotated[
        Path | None, typer.Option("--seed", metavar="FILE", help="Seed file (JSON) of accounts.")
    ] = None,
    print_seed: Annotated[
        bool,
        typer.Option("--print-seed", help="Print the built-in seed (a seed file) and exit."),
    ] = False,
    latency: Annotated[
        str | None,
        typer.Option(
            "--latency", metavar="S|A-B", help="Delay per request: 0.1, 100ms, 50ms-200ms."
        ),
    ] = None,
    fail_rate: Annotated[
        float,
        typer.Option(
            "--fail-rate", metavar="SHARE", min=0, max=1, help="Share answered 503 (non-JSON)."
        ),
    ] = 0.0,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            "--rate-limit",
            metavar="PER_SECOND",
            min=0.1,
            help="Requests per second per key; then 429.",
        ),
    ] = None,
    drop_rate: Annotated[
        float,
        typer.Option(
            "--drop-rate",
            metavar="SHARE",
            min=0,
            max=1,
            help="Share stored, then dropped without an answer.",
        ),
    ] = 0.0,
    fault_seed: Annotated[
        int | None, typer.Option("--fault-seed", metavar="N", help="Seed for reproducible faults.")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="JSON",
            help='Queue a scripted fault, e.g. \'{"kind": "internal_error", "times": 2}\' '
            "(repeatable; see docs/sandbox.md).",
        ),
    ] = None,
    max_body_bytes: Annotated[
        int,
        typer.Option(
            "--max-body-bytes",
            metavar="BYTES",
            min=1,
            help="Larger request bodies are refused whole (413 payload_too_large).",
        ),
    ] = DEFAULT_MAX_BODY_BYTES,
    sink: Annotated[
        bool, typer.Option("--sink", help="Check and count requests without storing them.")
    ] = False,
    journal_size: Annotated[
        int,
        typer.Option(
            "--journal-size", metavar="N", min=1, help="Requests kept for /_sandbox/requests."
        ),
    ] = DEFAULT_JOURNAL_SIZE,
    journal_bodies: Annotated[
        bool, typer.Option("--journal-bodies", help="Journal request and response bodies too.")
    ] = False,
) -> None:
    """Run the local Trackly API emulator for rehearsals (Ctrl-C stops it)."""
    try:
        from trackly_migrate.sandbox.faults import parse_latency
        from trackly_migrate.sandbox.scripted import FaultSpecError, parse_fault
        from trackly_migrate.sandbox.seed import DEMO_API_KEY, default_seed_bytes
        from trackly_migrate.sandbox.server import SandboxConfig, SandboxError, is_loopback, serve
    except ImportError:
        raise UsageError(
            "The sandbox needs the sandbox extra.",
            hint="pip install 'trackly-migrate[sandbox]'",
        ) from None
    if print_seed:
        sys.stdout.buffer.write(default_seed_bytes())
        sys.stdout.flush()
        return
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        latency_range = parse_latency(latency) if latency else None
    except ValueError as exc:
        raise UsageError(f"--latency: {exc}") from None
    try:
        faults = tuple(parse_fault(_json_option(text)) for text in fault or ())
    except FaultSpecError as exc:
        raise UsageError(f"--fault: {exc}") from None
    if not is_loopback(host):
        console.print(
            f"[bold red]WARNING:[/] listening on {host}: anyone who can reach this address can "
            "read and change the sandbox's data. Use 127.0.0.1 unless you mean it."
        )
    config = SandboxConfig(
        host=host,
        port=port,
        db=db,
        api_key=api_key or DEMO_API_KEY,
        seed=seed,
        latency=latency_range,
        fail_rate=fail_rate,
        rate_limit=rate_limit,
        drop_rate=drop_rate,
        fault_seed=fault_seed,
        sink=sink,
        max_body_bytes=max_body_bytes,
        faults=faults,
        journal_size=journal_size,
        journal_bodies=journal_bodies,
    )

    def announce(url: str) -> None:
        print(url, flush=True)  # stdout: the URL alone, for scripts
        key_note = "the demo key" if api_key else f"demo key {DEMO_API_KEY}"
        console.print(
            f"Trackly sandbox listening on {url} (database: {db}; {key_note}).\n"
            f"  export TRACKLY_BASE_URL={url}\n"
            "Ctrl-C stops it.",
            markup=False,
        )

    try:
        serve(config, announce)
    except SandboxError as exc:
        raise UsageError(f"The sandbox cannot start: {exc}") from None


def _json_option(text: str) -> Any:
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--fault: {text!r} is not valid JSON ({exc}).") from None
