"""The command line: options → request → core → rendering, and the one error boundary.

Nothing here parses files, talks HTTP or holds business rules; every command builds a request
for the core and renders what comes back. ``error_boundary`` is the single place that turns an
error into a message and an exit code.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, ParamSpec, TypeVar

import orjson
import typer

from trackly_migrate import __version__
from trackly_migrate.clearing import ClearPlan, is_future, make_plan
from trackly_migrate.clearing import execute as execute_clear
from trackly_migrate.client import RetryPolicy, TracklyClient
from trackly_migrate.config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    CA_BUNDLE_ENV,
    ApiSettings,
    check_base_url,
    check_ca_bundle,
    read_api_key,
)
from trackly_migrate.display import (
    Display,
    LogFile,
    clear_result_table,
    make_display,
    render_clear_plan,
    stderr_console,
    summary_table,
)
from trackly_migrate.errors import ExitCode, TracklyMigrateError, UsageError, exit_code_for
from trackly_migrate.importer import DEFAULT_CONCURRENCY, MAX_BODY_BYTES
from trackly_migrate.normalize import check_region, check_timezone
from trackly_migrate.readers import InputFormat
from trackly_migrate.records import Kind, parse_map_options
from trackly_migrate.report import Summary, open_private, refuse_overwriting_input
from trackly_migrate.runner import ImportOutcome, ImportRequest, embedded_sandbox, run_import
from trackly_migrate.sandbox.cli import sandbox_command
from trackly_migrate.unsubscribing import NOT_CHANGED_MEANING, contact_record

app = typer.Typer(
    name="trackly-migrate",
    help="Move SMS send and click history from another platform into Trackly SMS.",
    no_args_is_help=True,
    # Locals hold the API key: a traceback must never print them.
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

SandboxOpt = Annotated[
    bool,
    typer.Option("--sandbox", help="Send to an embedded local sandbox instead (no key needed)."),
]
SandboxDbOpt = Annotated[
    Path | None,
    typer.Option(
        "--sandbox-db",
        metavar="PATH",
        help="SQLite file for --sandbox (kept, so a later import can build on it).",
    ),
]
MaxBodyOpt = Annotated[
    int,
    typer.Option(
        "--max-body-bytes",
        metavar="BYTES",
        min=1,
        help="Largest request body; a batch that would be larger is split (default: the "
        "API's 10 MiB).",
    ),
]

P = ParamSpec("P")
R = TypeVar("R")


def error_boundary(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the tool's errors into a message on stderr and the error's exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            # Held since start-up (``main``); one that came meanwhile is delivered here.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            return command(*args, **kwargs)
        except TracklyMigrateError as error:
            print_error(error)
            raise typer.Exit(exit_code_for(error)) from None
        except _Terminated:
            stderr_console().print("Stopped (SIGTERM).")
            raise typer.Exit(exit_code_for(None, interrupted_by=signal.SIGTERM)) from None
        except KeyboardInterrupt:
            stderr_console().print("Interrupted.")
            raise typer.Exit(exit_code_for(None, interrupted_by=signal.SIGINT)) from None

    return wrapper


def print_error(error: TracklyMigrateError) -> None:
    console = stderr_console()
    console.print(f"[bold red]error:[/] {_escape(error.message)}")
    if error.hint:
        console.print(f"[bold]hint:[/] {_escape(error.hint)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _version(value: bool) -> None:
    if value:
        print(f"trackly-migrate {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Move SMS send and click history from another platform into Trackly SMS.

    Configure with TRACKLY_API_KEY (or --api-key-file) and, for anything but production,
    TRACKLY_BASE_URL. Rehearse any import with --sandbox first.
    """


# -- shared options ------------------------------------------------------------------------

FileArg = Annotated[
    str,
    typer.Argument(
        metavar="FILE", help="CSV or JSONL file (.gz read transparently), or - for stdin."
    ),
]
FormatOpt = Annotated[
    InputFormat | None,
    typer.Option(
        "--format",
        metavar="csv|jsonl",
        help="Input format; inferred from the file name, needed for stdin.",
    ),
]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", metavar="NAME", help="Text encoding of the input, e.g. cp1252.")
]
DelimiterOpt = Annotated[
    str, typer.Option("--delimiter", metavar="CHAR", help="CSV delimiter: ',' ';' or 'tab'.")
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        metavar="FIELD=COLUMN",
        help="Read FIELD from COLUMN; repeat for each renamed field (e.g. --map id=Sid).",
    ),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--default-region",
        metavar="REGION",
        help="Region for national numbers without +country code (ISO code, e.g. US).",
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force", help="Replace a file already at the errors report's place (kept otherwise)."
    ),
]
TimezoneOpt = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        metavar="AREA/CITY",
        help="IANA time zone for timestamps written without an offset (e.g. America/New_York).",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        envvar=BASE_URL_ENV,
        show_envvar=True,
        help="API base URL (default: production). Plain http:// only to localhost.",
    ),
]
ApiKeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--api-key-file",
        metavar="PATH",
        help=f"File holding the API key (else {API_KEY_ENV} is used).",
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help=f"API key. Visible to other users in `ps`: prefer {API_KEY_ENV} or --api-key-file.",
    ),
]
CaBundleOpt = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        metavar="PATH",
        envvar=CA_BUNDLE_ENV,
        show_envvar=True,
        help="PEM file of the CA certificate(s) to trust for https (a private or company CA).",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary table.")]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        metavar="N",
        min=1,
        max=64,
        help="Requests in flight at most (it adapts below that to the server).",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        min=1,
        help="Seconds to wait for one answer; a request gets 2 tries without one.",
    ),
]
LogFileOpt = Annotated[
    Path | None,
    typer.Option("--log-file", metavar="PATH", help="Append the progress lines to this file."),
]


def _delimiter(value: str) -> str:
    return "\t" if value.lower() in {"tab", "\\t"} else value


def _api_settings(
    base_url: str | None, api_key: str | None, key_file: Path | None, ca_bundle: Path | None
) -> ApiSettings:
    url = check_base_url(base_url)
    key = read_api_key(flag_value=api_key, key_file=key_file)
    return ApiSettings(base_url=url, api_key=key, ca_bundle=check_ca_bundle(ca_bundle))


def _interactive(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _open_log(path: Path | None) -> LogFile | None:
    if path is None:
        return None
    return LogFile(open_private(path, append=True, what="the log file", option="--log-file"))


class _StopOnSignal:
    """Ctrl-C / SIGTERM, in steps: first, stop reading and let in-flight requests finish;
    second, wait for nothing more; third, raise KeyboardInterrupt wherever the run is.

    The handler only sets flags (and writes one line straight to the file descriptor): it may
    run while the main thread holds the display's lock, so it must not take it.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.abandon = threading.Event()
        self.signal_number: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        for number in _STOP_SIGNALS:
            # An ignored signal stays ignored: that is how a shell keeps a background job
            # (``cmd &`` in a script) or ``nohup`` out of reach of the terminal's Ctrl-C.
            if signal.getsignal(number) != signal.SIG_IGN:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.abandon.is_set():
            raise KeyboardInterrupt
        if self.event.is_set():
            self.abandon.set()
            _say("stopping now: the requests in flight are abandoned (--resume sends them)")
            return
        self.signal_number = number
        self.event.set()
        _say("stopping: finishing the requests in flight (press Ctrl-C again to abandon them)")

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Terminated(KeyboardInterrupt):
    """SIGTERM outside an import run: unwinds like Ctrl-C, and exits 143."""


def _raise_terminated(number: int, frame: FrameType | None) -> None:
    raise _Terminated


def _say(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(sys.stderr.fileno(), f"warning: {message}\n".encode())


def import_exit_code(outcome: ImportOutcome, interrupted_by: int | None) -> ExitCode:
    """0 all imported or duplicates; 1 some rejected; 3 aborted or unaccounted; 130/143."""
    summary = outcome.summary
    return exit_code_for(
        outcome.error,
        interrupted_by=interrupted_by,
        unaccounted=summary.unaccounted,
        rejected=summary.rejected,
    )


def _run_import(
    *,
    kind: Kind,
    file: str,
    input_format: InputFormat | None,
    encoding: str,
    delimiter: str,
    map_options: list[str] | None,
    default_region: str | None,
    timezone: str | None,
    batch_size: int,
    concurrency: int,
    dry_run: bool,
    sandbox: bool,
    sandbox_db: Path | None,
    errors: Path | None,
    base_url: str | None,
    api_key: str | None,
    api_key_file: Path | None,
    timeout: float,
    max_retries: int,
    max_rejects: str | None,
    json_output: bool,
    quiet: bool,
    log_file: Path | None,
    defaults: dict[str, str] | None = None,
    resume: bool = False,
    restart: bool = False,
    checkpoint: Path | None = None,
    force: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    ca_bundle: Path | None = None,
) -> None:
    settings = (
        None if (dry_run or sandbox) else _api_settings(base_url, api_key, api_key_file, ca_bundle)
    )
    limit, ratio = parse_max_rejects(max_rejects)
    request = ImportRequest(
        kind=kind,
        input_path=file,
        settings=settings,
        format=input_format,
        encoding=encoding,
        delimiter=_delimiter(delimiter),
        mapping=parse_map_options(map_options or [], kind),
        default_region=check_region(default_region),
        timezone=check_timezone(timezone),
        batch_size=batch_size,
        concurrency=concurrency,
        dry_run=dry_run,
        errors_path=errors,
        timeout=timeout,
        retry_policy=RetryPolicy(max_attempts=max_retries + 1),
        sandbox=sandbox,
        sandbox_db=sandbox_db,
        max_body_bytes=max_body_bytes,
        max_rejects=limit,
        max_reject_ratio=ratio,
        defaults=defaults or {},
        resume=resume,
        restart=restart,
        checkpoint_path=checkpoint,
        force=force,
    )
    console = stderr_console()
    if log_file is not None:
        refuse_overwriting_input(file, log_file, "--log-file")
    log = _open_log(log_file)
    display = make_display(console, quiet=quiet, interactive=_interactive(sys.stderr), log=log)
    target = (
        "dry run" if dry_run else ("embedded sandbox" if sandbox else settings and settings.host)
    )
    display.start(f"{request.command} {'<stdin>' if file == '-' else file} → {target}")
    stopper = _StopOnSignal()
    try:
        with stopper:
            outcome = run_import(request, display, stop=stopper.event, abandon=stopper.abandon)
    finally:
        display.stop()
    interrupted = stopper.signal_number or signal.SIGINT
    interrupted_by = interrupted if outcome.summary.status == "interrupted" else None
    _render_summary(outcome.summary, json_output=json_output, quiet=quiet, display=display)
    if outcome.error is not None:
        print_error(outcome.error)
    if outcome.checkpoint is not None:
        display.info(f"To resume: {resume_command(sys.argv)}")
    elif kind is Kind.CONTACTS and outcome.summary.status != "completed":
        display.info(
            "To finish, run the same command again: unsubscribing a contact twice changes nothing."
        )
    code = import_exit_code(outcome, interrupted_by)
    if log is not None:
        log.close()
    if outcome.abandoned_requests:
        # Requests given up on are still blocked in worker threads; everything that counts
        # (report, checkpoint, summary) is on disk, so do not wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code))
    if code is not ExitCode.OK:
        raise typer.Exit(int(code))


def resume_command(argv: list[str]) -> str:
    """The command line that resumes this run: same options plus --resume, key removed."""
    words = ["trackly-migrate"]
    skip_next = False
    for word in argv[1:]:
        if skip_next:
            skip_next = False
            continue
        if word == "--api-key":
            skip_next = True
            continue
        if word.startswith("--api-key=") or word in {"--resume", "--restart"}:
            continue
        words.append(word)
    return shlex.join([*words, "--resume"])


def _render_summary(summary: Summary, *, json_output: bool, quiet: bool, display: Display) -> None:
    encoded = orjson.dumps(summary.to_json()).decode()
    display.log(f"summary: {encoded}")
    if json_output:
        sys.stdout.write(encoded + "\n")
        sys.stdout.flush()
    if not quiet:
        display.console.print(summary_table(summary))
        for note in summary.notes:
            display.console.print(f"note: {note}", markup=False)


def parse_max_rejects(value: str | None) -> tuple[int | None, float | None]:
    """``--max-rejects``: a count (``500``) or a share of the records read (``5%``)."""
    if value is None:
        return None, None
    text = value.strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if not 0 <= share <= 1:
                raise ValueError
            return None, share
        count = int(text)
        if count < 0:
            raise ValueError
        return count, None
    except ValueError:
        raise UsageError(
            f"--max-rejects {value!r} is neither a count nor a percentage.",
            hint="For example --max-rejects 500 or --max-rejects 5%.",
        ) from None


def _import_command(kind: Kind) -> Callable[..., None]:
    @error_boundary
    def command(
        file: FileArg,
        input_format: FormatOpt = None,
        encoding: EncodingOpt = "utf-8",
        delimiter: DelimiterOpt = ",",
        map_options: MapOpt = None,
        default_region: RegionOpt = None,
        timezone: TimezoneOpt = None,
        batch_size: Annotated[
            int,
            typer.Option(
                "--batch-size", metavar="N", min=1, max=1000, help="Records per request (1-1000)."
            ),
        ] = 1000,
        concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Read and validate only; send nothing.")
        ] = False,
        sandbox: SandboxOpt = False,
        sandbox_db: SandboxDbOpt = None,
        max_body_bytes: MaxBodyOpt = MAX_BODY_BYTES,
        errors: Annotated[
            Path | None,
            typer.Option(
                "--errors",
                metavar="PATH",
                help="Errors report (.csv or .jsonl); default <input name>.errors.csv here.",
            ),
        ] = None,
        force: ForceOpt = False,
        max_rejects: Annotated[
            str | None,
            typer.Option(
                "--max-rejects",
                metavar="N|P%",
                help="Stop (exit 1) after N rejected records, or when P% of those read are. "
                "Default: stop if all of the first 1,000 are rejected.",
            ),
        ] = None,
        base_url: BaseUrlOpt = None,
        api_key_file: ApiKeyFileOpt = None,
        api_key: ApiKeyOpt = None,
        ca_bundle: CaBundleOpt = None,
        timeout: TimeoutOpt = 60.0,
        max_retries: Annotated[
            int,
            typer.Option(
                "--max-retries", metavar="N", min=0, max=50, help="Retries of one request at most."
            ),
        ] = 7,
        json_output: JsonOpt = False,
        quiet: QuietOpt = False,
        log_file: LogFileOpt = None,
        resume: Annotated[
            bool,
            typer.Option(
                "--resume", help="Continue an interrupted run of this file where it stopped."
            ),
        ] = False,
        restart: Annotated[
            bool,
            typer.Option("--restart", help="Discard this file's checkpoint and start over."),
        ] = False,
        checkpoint: Annotated[
            Path | None,
            typer.Option(
                "--checkpoint",
                metavar="PATH",
                help="Where to keep the resume checkpoint (default: the user's state folder).",
            ),
        ] = None,
    ) -> None:
        _run_import(
            kind=kind,
            file=file,
            input_format=input_format,
            encoding=encoding,
            delimiter=delimiter,
            map_options=map_options,
            default_region=default_region,
            timezone=timezone,
            batch_size=batch_size,
            concurrency=concurrency,
            dry_run=dry_run,
            sandbox=sandbox,
            sandbox_db=sandbox_db,
            errors=errors,
            base_url=base_url,
            api_key=api_key,
            api_key_file=api_key_file,
            timeout=timeout,
            max_retries=max_retries,
            max_rejects=max_rejects,
            json_output=json_output,
            quiet=quiet,
            log_file=log_file,
            resume=resume,
            restart=restart,
            checkpoint=checkpoint,
            force=force,
            max_body_bytes=max_body_bytes,
            ca_bundle=ca_bundle,
        )

    return command


app.command(
    "import-sends",
    help="Import send records (id, to_number, timestamp, ...) from FILE.",
)(_import_command(Kind.SENDS))
app.command(
    "import-clicks",
    help="Import click records (message_id, offer_id, phone_number, timestamp) from FILE. "
    "Import their sends first.",
)(_import_command(Kind.CLICKS))


@app.command("clear")
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
) -> None:
    """Permanently delete imported history (and revenue: ALL of it). Asks first.

    Sends and clicks: imported records only. Revenue: every revenue record of the account,
    live sends' included. Say the time scope explicitly: --before WHEN or --all-time.
    """
    plan = make_plan(entities, before=before, all_time=all_time, zone=check_timezone(timezone))
    with contextlib.ExitStack() as stack:
        settings = _command_target(
            stack,
            sandbox,
            sandbox_db,
            base_url,
            api_key,
            api_key_file,
            ca_bundle,
            required=not dry_run,
        )
        _clear(plan, settings, sandbox_db if sandbox else None, yes, dry_run, json_output)


def _clear(
    plan: ClearPlan,
    settings: ApiSettings | None,
    sandbox_db: Path | None,
    yes: bool,
    dry_run: bool,
    json_output: bool,
) -> None:
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
        sys.stdout.write(orjson.dumps(result.to_json()).decode() + "\n")


def _command_target(
    stack: contextlib.ExitStack,
    sandbox: bool,
    sandbox_db: Path | None,
    base_url: str | None,
    api_key: str | None,
    key_file: Path | None,
    ca_bundle: Path | None,
    *,
    required: bool,
) -> ApiSettings | None:
    """The API of a clear or unsubscribe: the configured one, or an embedded sandbox."""
    if sandbox_db is not None and not sandbox:
        raise UsageError("--sandbox-db needs --sandbox.", hint="Add --sandbox.")
    if sandbox:
        return stack.enter_context(embedded_sandbox(sandbox_db))
    return _optional_settings(base_url, api_key, key_file, ca_bundle, required=required)


def _optional_settings(
    base_url: str | None,
    api_key: str | None,
    key_file: Path | None,
    ca_bundle: Path | None,
    *,
    required: bool,
) -> ApiSettings | None:
    try:
        return _api_settings(base_url, api_key, key_file, ca_bundle)
    except UsageError:
        if required:
            raise
        return None


def _confirm_clear(console: Any) -> None:
    if not (_interactive(sys.stdin) and _interactive(sys.stderr)):
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
        console.print("Cancelled: nothing was deleted.")
        raise typer.Exit(int(ExitCode.REJECTED))


@app.command("unsubscribe")
@error_boundary
def unsubscribe_command(
    phone: Annotated[
        str | None,
        typer.Argument(metavar="PHONE", help="The contact's number (E.164, e.g. +14155559876)."),
    ] = None,
    list_number: Annotated[
        str | None,
        typer.Option(
            "--list",
            metavar="LIST_NUMBER",
            help="The sending list's number; with --file, fills rows that lack one.",
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            metavar="FILE",
            help="CSV or JSONL with phone_number and list_number columns, or - for stdin.",
        ),
    ] = None,
    input_format: FormatOpt = None,
    encoding: EncodingOpt = "utf-8",
    delimiter: DelimiterOpt = ",",
    map_options: MapOpt = None,
    default_region: RegionOpt = None,
    concurrency: ConcurrencyOpt = 8,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate only; send nothing.")
    ] = False,
    errors: Annotated[
        Path | None,
        typer.Option("--errors", metavar="PATH", help="Errors report for --file (.csv/.jsonl)."),
    ] = None,
    force: ForceOpt = False,
    sandbox: SandboxOpt = False,
    sandbox_db: SandboxDbOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    api_key: ApiKeyOpt = None,
    ca_bundle: CaBundleOpt = None,
    timeout: TimeoutOpt = 60.0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    log_file: LogFileOpt = None,
) -> None:
    """Unsubscribe one contact from a list, or many from a file (--file)."""
    if (phone is None) == (file is None):
        raise UsageError(
            "Give either a PHONE (with --list) or --file FILE.",
            hint="trackly-migrate unsubscribe +14155559876 --list +18005551234",
        )
    if file is not None:
        _run_import(
            kind=Kind.CONTACTS,
            file=file,
            input_format=input_format,
            encoding=encoding,
            delimiter=delimiter,
            map_options=map_options,
            default_region=default_region,
            timezone=None,
            batch_size=UNSUBSCRIBE_SEGMENT,
            concurrency=concurrency,
            dry_run=dry_run,
            sandbox=sandbox,
            sandbox_db=sandbox_db,
            errors=errors,
            base_url=base_url,
            api_key=api_key,
            api_key_file=api_key_file,
            timeout=timeout,
            max_retries=7,
            max_rejects=None,
            json_output=json_output,
            quiet=quiet,
            log_file=log_file,
            defaults={"list_number": list_number} if list_number else None,
            force=force,
            ca_bundle=ca_bundle,
        )
        return
    assert phone is not None
    record = contact_record(phone, list_number, region=check_region(default_region))
    console = stderr_console()
    if dry_run:
        sys.stdout.write(orjson.dumps(record).decode() + "\n")
        console.print("Dry run: nothing was sent.")
        return
    with contextlib.ExitStack() as stack:
        settings = _command_target(
            stack, sandbox, sandbox_db, base_url, api_key, api_key_file, ca_bundle, required=True
        )
        assert settings is not None
        with TracklyClient(settings, timeout=timeout) as client:
            answer = client.unsubscribe(record["phone_number"], record["list_number"])
    if answer.unsubscribed:
        console.print(
            f"Unsubscribed {record['phone_number']} from list {record['list_number']}.",
            markup=False,
        )
    else:
        console.print(
            f"{record['phone_number']} on list {record['list_number']}: {NOT_CHANGED_MEANING}.",
            markup=False,
        )
    if json_output:
        sys.stdout.write(orjson.dumps({**record, "unsubscribed": answer.unsubscribed}).decode())
        sys.stdout.write("\n")


# One segment of a bulk unsubscribe is sent one request per contact by one worker; small
# segments spread the contacts over all the workers.
UNSUBSCRIBE_SEGMENT = 25


app.command("sandbox")(error_boundary(sandbox_command))


def main() -> None:
    """Run the CLI; ``trackly_migrate.__main__`` is the console script and ``python -m``.

    SIGINT and SIGTERM are held until a command lets them through (``error_boundary``), so
    one that comes while Typer parses the options is not Click's "Aborted!" with exit 1.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)
    app(prog_name="trackly-migrate")
