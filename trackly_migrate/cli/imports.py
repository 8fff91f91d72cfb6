"""``import-sends`` and ``import-clicks``: options → one ``ImportRequest`` → ``run_request``.

``run_request`` is the body every import shares (``unsubscribe --file`` too): the display,
the signals, the summary, the resume hint and the exit code.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trackly_migrate.cli.boundary import error_boundary, import_exit_code, print_error
from trackly_migrate.cli.json_output import emit, interrupted_json
from trackly_migrate.cli.options import (
    ApiKeyFileOpt,
    ApiKeyOpt,
    BaseUrlOpt,
    CaBundleOpt,
    ConcurrencyOpt,
    DelimiterOpt,
    EncodingOpt,
    ForceOpt,
    FormatOpt,
    JsonOpt,
    LogFileOpt,
    MapOpt,
    MaxBodyOpt,
    ProfileOpt,
    QuietOpt,
    QuotecharOpt,
    RecipeOpt,
    RegionOpt,
    SandboxDbOpt,
    SandboxOpt,
    SummaryFileOpt,
    TimeoutOpt,
    TimestampFormatOpt,
    TimezoneOpt,
)
from trackly_migrate.cli.target import ApiOptions, interactive
from trackly_migrate.errors import ExitCode
from trackly_migrate.pipeline.bounds import DEFAULT_CONCURRENCY, MAX_BODY_BYTES

# The pipeline, the client (httpx), records (phonenumbers) and the display (Rich) are
# imported in the command bodies: ``--help`` and tab completion load this module too.
if TYPE_CHECKING:
    from trackly_migrate.display import Display, LogFile
    from trackly_migrate.pipeline import ImportOutcome, ImportRequest, Target
    from trackly_migrate.pipeline.inputs import Inputs

FilesArg = Annotated[
    list[str],
    typer.Argument(
        metavar="FILE...",
        help="CSV or JSONL files (.gz read transparently), folders (their CSV and JSONL "
        "files, by name), quoted patterns such as 'exports/sends-*.csv.gz', or - for stdin "
        "(alone).",
    ),
]
RecursiveOpt = Annotated[
    bool, typer.Option("--recursive", "-r", help="Folders: their sub-folders' files too.")
]
SkipDoneOpt = Annotated[
    bool,
    typer.Option(
        "--skip-done",
        help="Skip files this account imported completely before (see `history`): for a "
        "drop folder imported every night.",
    ),
]


@dataclass(frozen=True)
class Presentation:
    """How a run is shown: ``--json``, ``--quiet``, ``--log-file``."""

    json_output: bool = False
    quiet: bool = False
    log_file: Path | None = None
    summary_file: Path | None = None


def sending_target(
    dry_run: bool, sandbox: bool, sandbox_db: Path | None, api: ApiOptions
) -> Target:
    """The request's target; the key is read only when something will be sent to an API."""
    from trackly_migrate.pipeline import Target

    settings = None if (dry_run or sandbox) else api.settings()
    return Target(settings=settings, dry_run=dry_run, sandbox=sandbox, sandbox_db=sandbox_db)


def run_request(request: ImportRequest, shown: Presentation, inputs: Inputs | None = None) -> None:
    """Run one import request with a display and Ctrl-C handling; exit with its code.

    ``inputs``: the FILE arguments of an import (``run_files``); else ``request.source``.
    """
    from trackly_migrate.display import make_display, stderr_console
    from trackly_migrate.pipeline import run_import
    from trackly_migrate.pipeline.batch_run import run_files
    from trackly_migrate.pipeline.signals import StopOnSignal
    from trackly_migrate.report import Summary, refuse_overwriting_input

    path = request.source.path if inputs is None else " ".join(inputs.args)
    if shown.log_file is not None:
        refuse_overwriting_input(path, shown.log_file, "--log-file")
    log = _open_log(shown.log_file)
    display = make_display(
        stderr_console(), quiet=shown.quiet, interactive=interactive(sys.stderr), log=log
    )
    words = Summary(kind=request.kind, input=path).words
    display.start(f"{words.command} {'<stdin>' if path == '-' else path} → {request.target.name}")
    stopper = StopOnSignal()
    try:
        with stopper:
            if inputs is None:
                outcome = run_import(request, display, events=stopper.events)
            else:
                outcome = run_files(request, inputs, display, events=stopper.events)
    finally:
        display.stop()
    interrupted = stopper.signal_number or signal.SIGINT
    interrupted_by = interrupted if outcome.summary.status == "interrupted" else None
    _render_summary(summary_json(outcome, interrupted_by), outcome, shown, display)
    if outcome.error is not None:
        print_error(outcome.error)
    if outcome.checkpoint is not None:
        display.info(f"To resume: {resume_command(sys.argv)}")
    elif not words.resumable and outcome.summary.status != "completed":
        display.info(f"To finish, run the same command again: {words.rerun_note}.")
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


def _open_log(path: Path | None) -> LogFile | None:
    if path is None:
        return None
    from trackly_migrate.display import LogFile
    from trackly_migrate.report import open_private

    return LogFile(open_private(path, append=True, what="the log file", option="--log-file"))


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


def summary_json(outcome: ImportOutcome, interrupted_by: int | None) -> dict[str, Any]:
    """The JSON summary; a run that stopped early says why in its ``error`` object."""
    from trackly_migrate.errors import error_json

    payload = outcome.summary.to_json()
    if outcome.error is not None:
        payload["error"] = error_json(outcome.error)
    elif interrupted_by is not None:
        payload["error"] = interrupted_json(interrupted_by)
    return payload


def _render_summary(
    payload: dict[str, Any], outcome: ImportOutcome, shown: Presentation, display: Display
) -> None:
    import orjson

    from trackly_migrate.display import files_table, month_table, summary_table
    from trackly_migrate.report import write_private_atomically

    summary = outcome.summary
    encoded = orjson.dumps(payload).decode()
    display.log(f"summary: {encoded}")
    if shown.summary_file is not None:
        write_private_atomically(
            shown.summary_file, encoded + "\n", what="the summary file", option="--summary-file"
        )
    if shown.json_output:
        emit(payload)
    if not shown.quiet:
        # "run again with --resume" only where a checkpoint was kept to resume from.
        display.console.print(summary_table(summary, resumable=outcome.checkpoint is not None))
        if summary.files is not None:
            display.console.print(files_table(summary.files))
        months = month_table(summary)
        if months is not None:
            display.console.print(months)
        for note in summary.notes:
            display.console.print(f"note: {note}", markup=False)


def import_command(kind_name: str) -> Callable[..., None]:
    """The Typer command that imports records of kind ``kind_name`` (a ``records.Kind``
    value, e.g. "sends") from a file."""

    @error_boundary
    def command(
        files: FilesArg,
        input_format: FormatOpt = None,
        encoding: EncodingOpt = None,
        delimiter: DelimiterOpt = None,
        quotechar: QuotecharOpt = '"',
        map_options: MapOpt = None,
        default_region: RegionOpt = None,
        timezone: TimezoneOpt = None,
        timestamp_format: TimestampFormatOpt = None,
        recipe: RecipeOpt = None,
        batch_size: Annotated[
            int, typer.Option("--batch-size", metavar="N", help="Records per request (1-1000).")
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
                help="Errors report (.csv or .jsonl), or the folder to write it in; default "
                "<input name>.errors.csv here. Several files: one report for the run, named "
                "for it.",
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
        profile: ProfileOpt = None,
        timeout: TimeoutOpt = 60.0,
        max_retries: Annotated[
            int,
            typer.Option(
                "--max-retries", metavar="N", min=0, max=50, help="Retries of one request at most."
            ),
        ] = 7,
        json_output: JsonOpt = False,
        summary_file: SummaryFileOpt = None,
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
        recursive: RecursiveOpt = False,
        skip_done: SkipDoneOpt = False,
    ) -> None:
        from trackly_migrate.client import RetryPolicy
        from trackly_migrate.pipeline import (
            ImportRequest,
            Limits,
            Normalization,
            Output,
            Resume,
            Source,
        )
        from trackly_migrate.pipeline.inputs import Inputs
        from trackly_migrate.pipeline.request import parse_max_rejects
        from trackly_migrate.readers import InputFormat
        from trackly_migrate.recipes import Recipe, load_recipe, merged_map_options
        from trackly_migrate.records import Kind

        api = ApiOptions(base_url, api_key, api_key_file, ca_bundle, profile)
        limit, ratio = parse_max_rejects(max_rejects)
        given = Recipe(
            default_region=default_region,
            timezone=timezone,
            timestamp_format=timestamp_format or None,
            encoding=encoding,
            delimiter=delimiter,
        )
        read_as = load_recipe(recipe).overridden_by(given) if recipe else given
        reading = {"encoding": read_as.encoding, "delimiter": read_as.delimiter}
        request = ImportRequest(
            kind=Kind(kind_name),
            source=Source(
                files[0],
                InputFormat(input_format) if input_format else None,
                quotechar=quotechar,
                **{name: v for name, v in reading.items() if v is not None},
            ),
            target=sending_target(dry_run, sandbox, sandbox_db, api),
            normalization=Normalization(
                merged_map_options(read_as.map, map_options or []),
                read_as.default_region,
                read_as.timezone,
                timestamp_format=read_as.timestamp_format or "iso",
            ),
            limits=Limits(
                batch_size=batch_size,
                concurrency=concurrency,
                timeout=timeout,
                retry_policy=RetryPolicy(max_attempts=max_retries + 1),
                max_body_bytes=max_body_bytes,
                max_rejects=limit,
                max_reject_ratio=ratio,
            ),
            output=Output(errors, force, summary_file),
            resume=Resume(resume, restart, checkpoint),
        )
        inputs = Inputs(tuple(files), recursive, skip_done)
        run_request(request, Presentation(json_output, quiet, log_file, summary_file), inputs)

    return command
