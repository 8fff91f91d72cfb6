"""``run_import``: one import from a request object, without Typer or Rich.

It wires the pieces together (input → reader → record builder → importer → client, report)
and starts the embedded sandbox for ``--sandbox``. The CLI builds an ``ImportRequest`` from
its options and renders what comes back; other programs can do the same.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, Protocol

from trackly_migrate.checkpoint import (
    Checkpoint,
    CheckpointWriter,
    InputIdentity,
    default_checkpoint_path,
    discard,
    load,
    option_differences,
)
from trackly_migrate.checkpoint import exclusive as checkpoint_lock
from trackly_migrate.client import RetryPolicy
from trackly_migrate.config import ApiSettings
from trackly_migrate.errors import TracklyMigrateError, UsageError
from trackly_migrate.importer import (
    DEFAULT_CONCURRENCY,
    MAX_BATCH_SIZE,
    MAX_BODY_BYTES,
    ImportOptions,
    ImportRun,
    Position,
    RunObserver,
)
from trackly_migrate.readers import (
    STDIN,
    InputFormat,
    InputSource,
    Reader,
    infer_format,
    is_regular_file,
    open_reader,
)
from trackly_migrate.records import (
    FIELDS,
    REPORT_COLUMNS,
    Kind,
    RecordBuilder,
    resolve_columns,
)
from trackly_migrate.report import (
    ErrorReport,
    Summary,
    check_writable,
    default_report_path,
    refuse_overwriting_input,
)
from trackly_migrate.sender import (
    Dispatcher,
    ProcessDispatcher,
    SenderOptions,
    ThreadDispatcher,
)


@dataclass
class ImportRequest:
    """Everything that decides one import run."""

    kind: Kind
    input_path: str
    settings: ApiSettings | None  # None for --dry-run or --sandbox
    format: InputFormat | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    mapping: dict[str, str] = field(default_factory=dict)
    default_region: str | None = None
    timezone: tzinfo | None = None
    batch_size: int = MAX_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    dry_run: bool = False
    errors_path: Path | None = None
    timeout: float = 60.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    sandbox: bool = False
    sandbox_db: Path | None = None
    max_body_bytes: int = MAX_BODY_BYTES  # larger batches are split (CONTRACT.md: 10 MiB)
    max_rejects: int | None = None
    max_reject_ratio: float | None = None
    defaults: dict[str, str] = field(default_factory=dict)  # e.g. list_number from --list
    resume: bool = False
    restart: bool = False
    checkpoint_path: Path | None = None
    force: bool = False  # an existing file at the errors report's place may be replaced
    grace_s: float = 10.0  # after Ctrl-C, how long in-flight requests may still finish
    sender_process: bool = True  # send from a process of its own (sender.py says why)

    @property
    def command(self) -> str:
        return "unsubscribe" if self.kind is Kind.CONTACTS else f"import-{self.kind}"


class Observer(RunObserver, Protocol):
    """A ``RunObserver`` that also hears about retries and the run's own notes."""

    def retry(self, reason: str, delay: float) -> None: ...

    def info(self, message: str) -> None: ...


@dataclass
class ImportOutcome:
    """The summary, and the error that stopped the run early (None when it finished)."""

    summary: Summary
    error: TracklyMigrateError | None = None
    checkpoint: Path | None = None  # kept for --resume when the run did not complete
    abandoned_requests: int = 0  # requests still in flight when the run gave up on them


def validate_request(request: ImportRequest) -> None:
    if not 1 <= request.batch_size <= MAX_BATCH_SIZE:
        raise UsageError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
    if not 1 <= request.concurrency <= 64:
        raise UsageError("--concurrency must be between 1 and 64.")
    if request.max_body_bytes < 1:
        raise UsageError("--max-body-bytes must be at least 1.")


@contextlib.contextmanager
def api_target(request: ImportRequest) -> Iterator[ApiSettings | None]:
    """The API to talk to: the configured one, or an embedded sandbox for ``--sandbox``."""
    if request.dry_run:
        yield None
        return
    if not request.sandbox:
        yield request.settings
        return
    with embedded_sandbox(request.sandbox_db, max_body_bytes=request.max_body_bytes) as settings:
        yield settings


@contextlib.contextmanager
def embedded_sandbox(
    db: Path | None, *, max_body_bytes: int = MAX_BODY_BYTES
) -> Iterator[ApiSettings]:
    """Start a private sandbox for ``--sandbox`` (in ``db``, or a throw-away file)."""
    try:
        from trackly_migrate.sandbox.seed import DEMO_API_KEY
        from trackly_migrate.sandbox.server import SandboxConfig, SandboxError, start_sandbox
    except ImportError:
        raise UsageError(
            "--sandbox needs the sandbox extra.",
            hint="pip install 'trackly-migrate[sandbox]'",
        ) from None
    import tempfile

    with contextlib.ExitStack() as stack:
        if db is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="trackly-sandbox-"))
            db = Path(folder) / "sandbox.db"
        config = SandboxConfig(db=db, max_body_bytes=max_body_bytes)
        try:
            running = stack.enter_context(start_sandbox(config))
        except SandboxError as exc:
            raise UsageError(f"The embedded sandbox cannot start: {exc}") from None
        yield ApiSettings(base_url=running.url, api_key=DEMO_API_KEY)


def run_import(
    request: ImportRequest,
    observer: Observer,
    *,
    stop: threading.Event | None = None,
    abandon: threading.Event | None = None,
) -> ImportOutcome:
    """Import one input (or, for the ``contacts`` kind, unsubscribe it) record by record.

    Raises ``UsageError``/``InputError`` before anything is sent when the run cannot start.
    An error that stops a started run (auth, retries exhausted, reject limit) comes back in
    the outcome beside the summary so far. File inputs keep a resume checkpoint while the
    run goes; it is removed when the run completes.
    """
    validate_request(request)
    fmt = infer_format(request.input_path, request.format)
    if request.input_path == STDIN and (request.resume or request.restart):
        raise UsageError(
            "--resume and --restart need a file: stdin cannot be read again.",
            hint="Save the stream to a file first, then import that file.",
        )
    if (request.resume or request.restart) and _is_stream(request.input_path):
        raise UsageError(
            f"--resume and --restart need a file: {request.input_path} is a named pipe or "
            "device, which cannot be read again from where a run stopped.",
            hint="Save the stream to a file first, then import that file.",
        )
    with contextlib.ExitStack() as stack:
        source = InputSource(request.input_path)
        stack.callback(source.close)
        checkpoint = _open_checkpoint(request, fmt, observer, stack)
        start = Position(checkpoint.base.offset, checkpoint.base.line) if checkpoint else None
        reader = open_reader(
            source,
            fmt,
            encoding=request.encoding,
            delimiter=request.delimiter,
            start_offset=start.offset if start else 0,
            start_line=start.line if start else 1,
        )
        columns = reader.columns
        mapping = resolve_columns(
            request.kind,
            columns,
            request.mapping,
            source_name=source.display_name,
            provided=request.defaults,
        )
        if mapping.unknown_columns and not (start and start.offset):
            observer.warning(
                "ignoring column(s) not used by "
                f"{request.kind}: {', '.join(mapping.unknown_columns)}"
            )
        builder = RecordBuilder(
            mapping,
            default_region=request.default_region,
            timezone=request.timezone,
            defaults=request.defaults,
            unescape_report_cells=columns is not None and REPORT_COLUMNS[0] in columns,
        )
        report_path = _report_path(request)
        check_writable(report_path)
        refuse_overwriting_input(request.input_path, report_path, "--errors")
        owned = checkpoint.base.report_path if checkpoint else None  # the run family's report
        report = ErrorReport(
            report_path,
            source_columns=columns,
            field_names=[
                mapping.sources.get(spec.name, spec.name) for spec in FIELDS[request.kind]
            ],
            resume_size=_continue_report(checkpoint, report_path, observer),
            replace=request.force or (owned is not None and _same_place(owned, report_path)),
        )
        # Every output exists before the first request: a place that cannot take one is
        # found now (exit 2, nothing sent), not after thousands of records went out.
        report.create()
        stack.callback(report.remove_if_empty)
        if checkpoint is not None:
            checkpoint.write_now()
        summary = Summary(
            command=request.command, input=source.display_name, dry_run=request.dry_run
        )
        if checkpoint is not None and checkpoint.base.earlier_reports:
            summary.notes.append(
                "rows rejected by the earlier part of this run are in "
                + ", ".join(checkpoint.base.earlier_reports)
                + f"; {report_path} holds those from line {checkpoint.base.line:,} on"
            )
        if checkpoint is not None and checkpoint.base.offset:
            checkpoint.base.apply_totals(summary)
            summary.resumed_from_line = checkpoint.base.line
            observer.info(
                f"resuming at line {checkpoint.base.line:,} "
                f"({summary.read:,} records already accounted for)"
            )
        if checkpoint is not None:
            checkpoint.before_write = report.sync
            stack.callback(checkpoint.close)
        outcome = _run(
            request,
            observer,
            stop,
            abandon,
            stack,
            reader,
            builder,
            report,
            summary,
            source,
            checkpoint,
            start,
        )
        if checkpoint is not None:
            # A run that can have stored nothing (all rejected locally, or every request
            # refused before any work, as with a wrong key) leaves nothing to resume: running
            # it again, with corrected options, starts over.
            nothing_stored = not checkpoint.base.submitted_until
            if outcome.summary.status == "completed" or nothing_stored:
                checkpoint.remove()
            else:
                outcome.checkpoint = checkpoint.path
        return outcome


def _run(
    request: ImportRequest,
    observer: Observer,
    stop: threading.Event | None,
    abandon: threading.Event | None,
    stack: contextlib.ExitStack,
    reader: Reader,
    builder: RecordBuilder,
    report: ErrorReport,
    summary: Summary,
    source: InputSource,
    checkpoint: CheckpointWriter | None,
    start: Position | None,
) -> ImportOutcome:
    settings = stack.enter_context(api_target(request))
    dispatcher: Dispatcher | None = None
    if settings is not None:
        options = SenderOptions(
            settings=settings,
            kind=str(request.kind),
            concurrency=request.concurrency,
            timeout=request.timeout,
            policy=request.retry_policy,
            max_body_bytes=request.max_body_bytes,
        )
        make = ProcessDispatcher if request.sender_process else ThreadDispatcher
        dispatcher = make(options, observer.retry)
        stack.callback(dispatcher.close)
    run = ImportRun(
        ImportOptions(
            batch_size=request.batch_size,
            concurrency=request.concurrency,
            dry_run=request.dry_run,
            max_rejects=request.max_rejects,
            max_reject_ratio=request.max_reject_ratio,
        ),
        reader,
        builder,
        report,
        summary,
        dispatcher=dispatcher,
        observer=observer,
        bytes_read=lambda: source.bytes_read,
        total_bytes=source.total_bytes,
        start=start or Position(0, 1),
        stop=stop,
        abandon=abandon,
        checkpoint=checkpoint,
        possibly_stored_until=checkpoint.base.submitted_until if checkpoint else 0,
        grace_s=request.grace_s,
    )
    outcome = ImportOutcome(summary)
    try:
        run.run()
    except TracklyMigrateError as exc:
        outcome.error = exc
        summary.status = "aborted"
    except KeyboardInterrupt:
        summary.status = "interrupted"  # a third Ctrl-C: nothing more is waited for
    if outcome.error is None and run.interrupted:
        summary.status = "interrupted"
    outcome.abandoned_requests = run.abandoned
    if report.has_rows:
        summary.errors_report = str(report.path)
    return outcome


def _is_stream(path: str) -> bool:
    """A path that exists but is no regular file: a named pipe, ``/dev/stdin``, a device."""
    return path != STDIN and Path(path).exists() and not is_regular_file(path)


def _report_path(request: ImportRequest) -> Path:
    return request.errors_path or default_report_path(request.input_path, str(request.kind))


def _options_fingerprint(request: ImportRequest, fmt: InputFormat) -> dict[str, Any]:
    """What changes the records sent or where they go; a resume must not change any of it."""
    if request.sandbox:
        target = f"sandbox:{request.sandbox_db.resolve() if request.sandbox_db else ''}"
    else:
        target = request.settings.base_url if request.settings else ""
    return {
        "format": str(fmt),
        "encoding": request.encoding,
        "delimiter": request.delimiter,
        "mapping": dict(sorted(request.mapping.items())),
        "default_region": request.default_region,
        "timezone": str(request.timezone) if request.timezone else None,
        "defaults": dict(sorted(request.defaults.items())),
        "target": target,
    }


def _open_checkpoint(
    request: ImportRequest, fmt: InputFormat, observer: Observer, stack: contextlib.ExitStack
) -> CheckpointWriter | None:
    """Lock, check and load the checkpoint for a file input, or None when there is none."""
    if request.input_path == STDIN or request.dry_run or not is_regular_file(request.input_path):
        return None  # a stream cannot be read again, so there is nothing to resume
    if request.sandbox and request.sandbox_db is None:
        return None  # a throw-away sandbox: there is nothing to resume into
    if request.kind is Kind.CONTACTS:
        return None  # unsubscribing is idempotent: running the file again is the resume
    identity = InputIdentity.of(request.input_path)
    path = request.checkpoint_path or default_checkpoint_path(request.command, identity)
    refuse_overwriting_input(request.input_path, path, "--checkpoint")
    stack.enter_context(checkpoint_lock(path))
    options = _options_fingerprint(request, fmt)
    restarted_report = None
    if request.restart:
        restarted_report = _report_of(path)  # the restarted run's report may be replaced
        if discard(path):
            observer.info("--restart: the checkpoint of the earlier run is discarded")
        existing = None
    else:
        existing = load(path)
    if existing is not None and not request.resume and not existing.offset:
        # It confirmed nothing, so resuming it and starting over are the same run: no need
        # to make the user choose. Kept when it matches, for what its batches may have stored.
        observer.info("the interrupted run of this input confirmed nothing: starting over")
        if existing.identity != identity or option_differences(existing.options, options):
            existing = None
    if existing is not None and not request.resume:
        raise UsageError(
            f"An interrupted run of this input stopped at line {existing.line:,} "
            f"(checkpoint {path}).",
            hint="Add --resume to continue where it stopped, or --restart to start over.",
        )
    if existing is None and request.resume:
        observer.warning("no checkpoint for this input: starting from the beginning")
    if existing is not None:
        if existing.identity != identity:
            raise UsageError(
                f"{request.input_path} has changed since the interrupted run (size, time or "
                "content differ), so its line numbers no longer match the checkpoint.",
                hint="Resume with the original file, or --restart to import this one from "
                "the start (records already stored come back as duplicates).",
            )
        differences = option_differences(existing.options, options)
        if differences:
            raise UsageError(
                "These options differ from the interrupted run: " + "; ".join(differences) + ".",
                hint="Resume with the same options, or --restart.",
            )
        return CheckpointWriter(path, existing)
    base = Checkpoint(
        command=request.command,
        identity=identity,
        options=options,
        offset=0,
        line=1,
        totals={},
        report_path=restarted_report,
        report_size=0,
    )
    return CheckpointWriter(path, base)


def _report_of(path: Path) -> str | None:
    """The errors report named by the checkpoint at ``path``, if it can be read."""
    try:
        existing = load(path)
    except UsageError:
        return None
    return existing.report_path if existing else None


def _same_place(recorded: str, path: Path) -> bool:
    return Path(recorded).resolve() == path.resolve()


def _continue_report(
    checkpoint: CheckpointWriter | None, path: Path, observer: Observer
) -> int | None:
    """How much of the resumed run's report to keep, when this run writes to the same place.

    A resume may write to another place (after a full disk, say): the new file holds the
    rows from here on, and the checkpoint remembers where the earlier ones are.
    """
    if checkpoint is None:
        return None
    base = checkpoint.base
    if base.report_path is not None and not _same_place(base.report_path, path):
        if base.report_size and base.report_path not in base.earlier_reports:
            base.earlier_reports.append(base.report_path)
        base.report_size = 0
    keep = _report_resume_size(checkpoint, observer)
    base.report_path = str(path.resolve())
    return keep


def _report_resume_size(checkpoint: CheckpointWriter | None, observer: Observer) -> int | None:
    """How much of an earlier run's report to keep: exactly what its checkpoint covered."""
    if checkpoint is None or not checkpoint.base.report_size:
        return None
    recorded = checkpoint.base.report_size
    path = Path(checkpoint.base.report_path or "")
    actual = path.stat().st_size if path.exists() else 0
    if actual < recorded:
        observer.warning(
            f"the errors report {path} is shorter than when the run stopped; rows of the "
            "earlier part are missing from it"
        )
        return actual or None
    return recorded
