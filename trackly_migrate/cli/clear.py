"""``clear``: delete imported history, after showing the plan and asking."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trackly_migrate.cli.boundary import error_boundary
from trackly_migrate.cli.json_output import emit
from trackly_migrate.cli.options import (
    ApiKeyFileOpt,
    ApiKeyOpt,
    BaseUrlOpt,
    CaBundleOpt,
    JsonOpt,
    ProfileOpt,
    SandboxDbOpt,
    SandboxOpt,
    TimezoneOpt,
)
from trackly_migrate.cli.target import ApiOptions, command_target, interactive
from trackly_migrate.errors import ClearDeclined, UsageError

# The client (httpx), normalize (phonenumbers) and the display (Rich) are imported in the
# command's body: ``--help`` and tab completion load this module too.
if TYPE_CHECKING:
    from trackly_migrate.clearing import ClearPlan
    from trackly_migrate.config import ApiSettings


@error_boundary
def clear_command(
    entities: Annotated[
        list[str],
        typer.Argument(metavar="ENTITY...", help="One or more of: sends, clicks, revenue."),
    ],
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            metavar="WHEN",
            help="Clear records stamped before WHEN (exclusive). A date means midnight UTC.",
        ),
    ] = None,
    all_time: Annotated[
        bool, typer.Option("--all-time", help="Clear every matching record, whatever its date.")
    ] = False,
    timezone: TimezoneOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask; for scripts. The plan is still printed.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact request body; send nothing.")
    ] = False,
    json_output: JsonOpt = False,
    sandbox: SandboxOpt = False,
    sandbox_db: SandboxDbOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    api_key: ApiKeyOpt = None,
    ca_bundle: CaBundleOpt = None,
    profile: ProfileOpt = None,
) -> None:
    """Permanently delete imported history (and revenue: ALL of it). Asks first.

    Sends and clicks: imported records only. Revenue: every revenue record of the account,
    live sends' included. Say the time scope explicitly: --before WHEN or --all-time.
    """
    from trackly_migrate.clearing import make_plan
    from trackly_migrate.normalize import check_timezone

    plan = make_plan(entities, before=before, all_time=all_time, zone=check_timezone(timezone))
    with contextlib.ExitStack() as stack:
        api = ApiOptions(base_url, api_key, api_key_file, ca_bundle, profile)
        settings = command_target(stack, api, sandbox, sandbox_db, required=not dry_run)
        _clear(plan, settings, sandbox_db if sandbox else None, yes, dry_run, json_output)


def _clear(
    plan: ClearPlan,
    settings: ApiSettings | None,
    sandbox_db: Path | None,
    yes: bool,
    dry_run: bool,
    json_output: bool,
) -> None:
    import orjson

    from trackly_migrate.clearing import execute as execute_clear
    from trackly_migrate.clearing import is_future
    from trackly_migrate.client import TracklyClient
    from trackly_migrate.display import clear_result_table, render_clear_plan, stderr_console

    console = stderr_console()
    if sandbox_db is not None:
        target = f"the sandbox in {sandbox_db}"
    elif settings is not None:
        target = f"{settings.host} with key {settings.redacted_key}"
    else:
        target = "(no key configured)"
    render_clear_plan(console, plan, target)
    if is_future(plan):
        console.print(
            "[bold yellow]warning:[/] --before is in the future: records stamped up to that "
            "moment go, including any sent from now until then."
        )
    if dry_run:
        sys.stdout.write(orjson.dumps(plan.body(), option=orjson.OPT_INDENT_2).decode() + "\n")
        console.print("Dry run: nothing was sent.")
        return
    assert settings is not None
    if not yes:
        _confirm_clear(console)
    with TracklyClient(settings) as client:
        result = execute_clear(client, plan)
    console.print(clear_result_table(result))
    if json_output:
        emit(result.to_json())


def _confirm_clear(console: Any) -> None:
    if not (interactive(sys.stdin) and interactive(sys.stderr)):
        raise UsageError(
            "Refusing to clear without confirmation: this is not an interactive terminal.",
            hint="Re-run with --yes to confirm in a script (the plan above is what will go).",
        )
    try:
        answer = console.input("Type [bold]clear[/] to delete, anything else cancels: ")
    except (KeyboardInterrupt, EOFError):
        answer = ""
        console.print()
    if answer.strip() != "clear":
        # The error boundary says it (and, under --json, prints the envelope) and exits 1.
        raise ClearDeclined(
            "Cancelled: nothing was deleted.", hint="Type clear to confirm, or pass --yes."
        )
