"""``history``: the files each account imported completely (the ledger ``--skip-done`` reads)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from trackly_migrate.cli.boundary import error_boundary
from trackly_migrate.cli.options import JsonOpt

COUNTED = ("read", "imported", "duplicates", "rejected")


@error_boundary
def history_command(
    json_output: JsonOpt = False,
    command_name: Annotated[
        str | None,
        typer.Option(
            "--command", metavar="NAME", help="Only this command's files, e.g. import-sends."
        ),
    ] = None,
) -> None:
    """List the files imported completely, with their totals and dates (oldest first).

    Accounts are shown by base URL and a hash of the key, never the key itself.
    """
    # Imported here, not at the top: every command line loads the CLI modules (start-up).
    import orjson
    from rich.console import Console
    from rich.table import Table

    from trackly_migrate.pipeline.ledger import Ledger

    ledger = Ledger()
    entries = [
        entry for entry in ledger.entries() if command_name is None or entry.command == command_name
    ]
    if json_output:
        items = [entry.to_json() for entry in entries]
        sys.stdout.write(orjson.dumps({"ledger": str(ledger.path), "files": items}).decode())
        sys.stdout.write("\n")
        return
    table = Table(title=f"imported files ({ledger.path})", box=None)
    table.add_column("finished", no_wrap=True)
    table.add_column("command", no_wrap=True)
    for name in ("read", "imported", "duplicates", "rejected"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("file and account", overflow="fold")
    for entry in entries:
        counts = [f"{entry.counts.get(name, 0):,}" for name in COUNTED]
        where = f"{entry.path}\n  {entry.account}"
        table.add_row(entry.finished_at, entry.command, *counts, where)
    # The list is this command's result: stdout, like --json.
    Console().print(table if entries else "No file imported completely yet.")
