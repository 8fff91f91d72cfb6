"""``run_import``: one import from an ``ImportRequest``, composed of the pipeline's parts.

input → reader → record builder → engine → dispatcher → client, with the errors report and
the resume checkpoint beside it, and the embedded sandbox for ``--sandbox``. Nothing here
decides a policy; each part says where its own rules are.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from trackly_migrate.config import ApiSettings
from trackly_migrate.errors import TracklyMigrateError, UsageError
from trackly_migrate.normalize import PhoneNormalizer
from trackly_migrate.pipeline import resume
from trackly_migrate.pipeline.dispatch import ProcessDispatcher, SenderOptions, ThreadDispatcher
from trackly_migrate.pipeline.engine import ImportRun
from trackly_migrate.pipeline.opening import RecordBuilders, open_input
from trackly_migrate.pipeline.ports import Dispatcher, Observer
from trackly_migrate.pipeline.request import MAX_BODY_BYTES, ImportRequest
from trackly_migrate.pipeline.signals import StopEvents
from trackly_migrate.readers import infer_format
from trackly_migrate.records import FIELDS
from trackly_migrate.report import (
    ErrorReport,
    Summary,
    check_writable,
    default_report_path,
    refuse_overwriting_input,
)


@dataclass
class ImportOutcome:
    """The summary, and the error that stopped the run early (None when it finished)."""

    summary: Summary
    error: TracklyMigrateError | None = None
    checkpoint: Path | None = None  # kept for --resume when the run did not complete
    abandoned_requests: int = 0  # requests still in flight when the run gave up on them


@contextlib.contextmanager
def api_target(request: ImportRequest) -> Iterator[ApiSettings | None]:
    """The API to talk to: the configured one, an embedded sandbox, or none (a dry run)."""
    target = request.target
    if target.dry_run:
        yield None
    elif not target.sandbox:
        yield target.settings
    else:
        body_limit = request.limits.max_body_bytes
        with embedded_sandbox(target.sandbox_db, max_body_bytes=body_limit) as settings:
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
    events: StopEvents | None = None,
    sender: SharedSender | None = None,
) -> ImportOutcome:
    """Import one input (or, for the ``contacts`` kind, unsubscribe it) record by record.

    Raises ``UsageError``/``InputError`` before anything is sent when the run cannot start.
    An error that stops a started run (auth, retries exhausted, reject limit) comes back in
    the outcome beside the summary so far. File inputs keep a resume checkpoint while the
    run goes; it is removed when the run completes. ``events`` stop the run from outside.
    ``sender``: the dispatcher of a run over several files (``batch_run.py``), used here
    and left open, so that one sender process serves every file.
    """
    source_options = request.source
    infer_format(source_options.path, source_options.format)  # refused before any start
    resume.refuse_unreadable_again(request)
    with contextlib.ExitStack() as stack:
        # The sender process starts first, to import while the input is opened and its first
        # batches read. (An embedded sandbox is started only once the run can start.)
        early = stack.enter_context(contextlib.ExitStack())
        dispatcher = sender.dispatcher if sender is not None else None
        if sender is None and not request.target.sandbox:
            dispatcher = _dispatcher(request, observer, early)
        opened = open_input(
            request,
            observer,
            stack,
            builders=RecordBuilders(request.normalization, sender.phones) if sender else None,
        )
        source, checkpoint, columns = opened.source, opened.checkpoint, opened.columns
        mapping = opened.mapping
        report_path = _report_place(
            request.output.errors_path, source_options.path, str(request.kind)
        )
        check_writable(report_path)
        refuse_overwriting_input(source_options.path, report_path, "--errors")
        summary_path = request.output.summary_path
        if summary_path is not None:  # written at the end (atomically): its place, checked now
            check_writable(summary_path, what="the summary file", option="--summary-file")
            refuse_overwriting_input(source_options.path, summary_path, "--summary-file")
        owned = checkpoint.base.report_path if checkpoint else None  # the run family's report
        report = ErrorReport(
            report_path,
            source_columns=columns,
            field_names=[
                mapping.sources.get(spec.name, spec.name) for spec in FIELDS[request.kind]
            ],
            resume_size=resume.continue_report(checkpoint, report_path, observer),
            replace=request.output.force
            or (owned is not None and resume.same_place(owned, report_path)),
        )
        # Every output exists before the first request: a place that cannot take one is
        # found now (exit 2, nothing sent), not after thousands of records went out.
        report.create()
        stack.callback(report.remove_if_empty)
        if checkpoint is not None:
            checkpoint.write_now()
        summary = Summary(
            kind=request.kind, input=source.display_name, dry_run=request.target.dry_run
        )
        resume.carry_over(checkpoint, summary, observer)
        if checkpoint is not None:
            checkpoint.before_write = report.sync
            stack.callback(checkpoint.close)
        engine_input = opened.engine_input()
        # Closed first, as if started here: the sender goes before the report and checkpoint.
        stack.enter_context(early.pop_all())
        if sender is None and request.target.sandbox:
            dispatcher = _dispatcher(request, observer, stack)
        run = ImportRun(
            request.limits,
            engine_input,
            report,
            summary,
            dispatcher=dispatcher,
            observer=observer,
            checkpoint=checkpoint,
            events=events,
        )
        outcome = _outcome(run, report)
        completed = outcome.summary.status == "completed"
        outcome.checkpoint = resume.keep_or_remove(checkpoint, completed)
        return outcome


@dataclass(frozen=True)
class SharedSender:
    """What several ``run_import`` calls share: one dispatcher (None for a dry run), and
    one cache of normalized phone numbers (the request's ``--default-region`` for all)."""

    dispatcher: Dispatcher | None
    phones: PhoneNormalizer | None = None


@contextlib.contextmanager
def shared_sender(request: ImportRequest, observer: Observer) -> Iterator[SharedSender]:
    """The request's target and sender, open for as many files as the caller imports."""
    with contextlib.ExitStack() as stack:
        phones = PhoneNormalizer(request.normalization.default_region)
        yield SharedSender(_dispatcher(request, observer, stack), phones)


def _dispatcher(
    request: ImportRequest, observer: Observer, stack: contextlib.ExitStack
) -> Dispatcher | None:
    """The sender for the request's target (closed with ``stack``); None for a dry run."""
    settings = stack.enter_context(api_target(request))
    if settings is None:
        return None
    options = SenderOptions(settings=settings, kind=request.kind, limits=request.limits)
    make = ProcessDispatcher if request.target.sender_process else ThreadDispatcher
    dispatcher: Dispatcher = make(options, observer.retry)
    stack.callback(dispatcher.close)
    return dispatcher


def _outcome(run: ImportRun, report: ErrorReport) -> ImportOutcome:
    """Run the engine; an error that stops it comes back in the outcome, not raised."""
    summary = run.summary
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


def _report_place(errors: Path | None, input_path: str, kind: str) -> Path:
    """``--errors FILE`` as it is; ``--errors DIR``: the default name, in that folder."""
    default = default_report_path(input_path, kind)
    if errors is None:
        return default
    return errors / default.name if errors.is_dir() else errors
