"""``run_import``: one import from a request object, without Typer or Rich.

It wires the pieces together (input → reader → record builder → importer → client, report)
and starts the embedded sandbox for ``--sandbox``. The CLI builds an ``ImportRequest`` from
its options and renders what comes back; other programs can do the same.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Protocol

from trackly_migrate.client import RetryPolicy, TracklyClient
from trackly_migrate.config import ApiSettings
from trackly_migrate.errors import TracklyMigrateError, UsageError
from trackly_migrate.importer import (
    DEFAULT_CONCURRENCY,
    MAX_BATCH_SIZE,
    DeliverBatch,
    ImportOptions,
    ImportRun,
    RunObserver,
    deliver,
)
from trackly_migrate.readers import InputFormat, InputSource, infer_format, open_reader
from trackly_migrate.records import (
    FIELDS,
    REPORT_COLUMNS,
    Kind,
    RecordBuilder,
    resolve_columns,
)
from trackly_migrate.report import ErrorReport, Summary, default_report_path


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
    max_rejects: int | None = None
    max_reject_ratio: float | None = None
    defaults: dict[str, str] = field(default_factory=dict)  # e.g. list_number from --list

    @property
    def command(self) -> str:
        return "unsubscribe" if self.kind is Kind.CONTACTS else f"import-{self.kind}"


class Observer(RunObserver, Protocol):
    """A ``RunObserver`` that also hears about retries."""

    def retry(self, reason: str, delay: float) -> None: ...


@dataclass
class ImportOutcome:
    """The summary, and the error that stopped the run early (None when it finished)."""

    summary: Summary
    error: TracklyMigrateError | None = None


def validate_request(request: ImportRequest) -> None:
    if not 1 <= request.batch_size <= MAX_BATCH_SIZE:
        raise UsageError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
    if not 1 <= request.concurrency <= 64:
        raise UsageError("--concurrency must be between 1 and 64.")


@contextlib.contextmanager
def api_target(request: ImportRequest) -> Iterator[ApiSettings | None]:
    """The API to talk to: the configured one, or an embedded sandbox for ``--sandbox``."""
    if request.dry_run:
        yield None
        return
    if not request.sandbox:
        yield request.settings
        return
    try:
        from trackly_migrate.sandbox.seed import DEMO_API_KEY
        from trackly_migrate.sandbox.server import SandboxConfig, start_sandbox
    except ImportError:
        raise UsageError(
            "--sandbox needs the sandbox extra.",
            hint="pip install 'trackly-migrate[sandbox]'",
        ) from None
    import tempfile

    with contextlib.ExitStack() as stack:
        db = request.sandbox_db
        if db is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="trackly-sandbox-"))
            db = Path(folder) / "sandbox.db"
        running = stack.enter_context(start_sandbox(SandboxConfig(db=db)))
        yield ApiSettings(base_url=running.url, api_key=DEMO_API_KEY)


def _deliverer(client: TracklyClient, kind: Kind) -> DeliverBatch:
    if kind is Kind.CONTACTS:
        from trackly_migrate.unsubscribing import deliver_unsubscribes

        return functools.partial(deliver_unsubscribes, client)
    return functools.partial(deliver, client, str(kind))


def run_import(
    request: ImportRequest,
    observer: Observer,
    *,
    stop: threading.Event | None = None,
) -> ImportOutcome:
    """Import one input (or, for the ``contacts`` kind, unsubscribe it) record by record.

    Raises ``UsageError``/``InputError`` before anything is sent when the run cannot start.
    An error that stops a started run (auth, retries exhausted, reject limit) comes back in
    the outcome beside the summary so far.
    """
    validate_request(request)
    fmt = infer_format(request.input_path, request.format)
    source = InputSource(request.input_path)
    try:
        reader = open_reader(source, fmt, encoding=request.encoding, delimiter=request.delimiter)
        columns = reader.columns
        mapping = resolve_columns(
            request.kind,
            columns,
            request.mapping,
            source_name=source.display_name,
            provided=request.defaults,
        )
        if mapping.unknown_columns:
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
        report_path = request.errors_path or default_report_path(
            request.input_path, str(request.kind)
        )
        report = ErrorReport(
            report_path,
            source_columns=columns,
            field_names=[
                mapping.sources.get(spec.name, spec.name) for spec in FIELDS[request.kind]
            ],
        )
        summary = Summary(
            command=request.command, input=source.display_name, dry_run=request.dry_run
        )
        options = ImportOptions(
            batch_size=request.batch_size,
            concurrency=request.concurrency,
            dry_run=request.dry_run,
            max_rejects=request.max_rejects,
            max_reject_ratio=request.max_reject_ratio,
        )
        with api_target(request) as settings, contextlib.ExitStack() as stack:
            deliver_batch = None
            if settings is not None:
                client = stack.enter_context(
                    TracklyClient(
                        settings,
                        timeout=request.timeout,
                        max_connections=request.concurrency,
                        policy=request.retry_policy,
                    )
                )
                client.on_retry = lambda error, delay: observer.retry(error.message, delay)
                deliver_batch = _deliverer(client, request.kind)
            run = ImportRun(
                options,
                reader,
                builder,
                report,
                summary,
                deliver_batch=deliver_batch,
                observer=observer,
                bytes_read=lambda: source.bytes_read,
                total_bytes=source.total_bytes,
                stop=stop,
            )
            error: TracklyMigrateError | None = None
            try:
                run.run()
            except TracklyMigrateError as exc:
                error = exc
                summary.status = "aborted"
            if stop is not None and stop.is_set() and error is None:
                summary.status = "interrupted"
            if report.created:
                summary.errors_report = str(report.path)
            return ImportOutcome(summary, error)
    finally:
        source.close()
