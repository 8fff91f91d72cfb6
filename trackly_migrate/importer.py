"""The streaming import: read → validate → batch → send → account, with flat memory.

The main thread reads and validates; a dispatcher (``sender.py``) sends batches. Input is cut into
*segments*: the records of one request plus the locally rejected rows read alongside them.
Segments settle strictly in input order, whatever order their answers arrive in, so that

* the errors report is written in line order, by one thread;
* the position just past the last settled segment is a watermark: every record before it is
  accounted for, which is what a resume checkpoint stores;
* memory is bounded: at most ``2 × concurrency`` segments exist at once.

Nothing here prints: progress, warnings and retries go to a ``RunObserver``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from trackly_migrate.errors import ApiError, InputDamagedError, RejectLimitReached
from trackly_migrate.readers import RawRow
from trackly_migrate.records import RecordBuilder, Rejection
from trackly_migrate.report import ErrorReport, ReportRow, Stage, Summary
from trackly_migrate.responses import BulkResult, Delivery, ItemError

MAX_BATCH_SIZE = 1000
# CONTRACT.md: a request body over 10 MiB is refused whole (413 payload_too_large).
MAX_BODY_BYTES = 10 * 1024 * 1024
RECORD_TOO_LARGE = "record_too_large"
_ENVELOPE = len(b'{"records":[]}')
DEFAULT_CONCURRENCY = 16
# A segment also closes after this many local rejections, so that an input where nearly every
# row is rejected cannot pile its rejections up in memory.
MAX_SEGMENT_REJECTIONS = 1000
# Without --max-rejects, a run stops when this many records were read and every one of them
# was rejected: a forgotten --timezone or a wrong file, not ten million bad rows.
ALL_REJECTED_PROBE = 1000
READ_AHEAD_SEGMENTS = 4
PROGRESS_INTERVAL_S = 0.1


class BatchSender(Protocol):
    def import_batch(self, kind: str, body: bytes, count: int) -> Delivery: ...


class Dispatcher(Protocol):
    """Sends one segment's records; the future says how the server settled each record.

    ``sender.ProcessDispatcher`` (a sender process) and ``sender.ThreadDispatcher``.
    """

    def submit(self, records: list[dict[str, Any]]) -> Future[Settlement]: ...

    def current_concurrency(self) -> int: ...

    def requests_in_flight(self) -> int: ...


class RunObserver(Protocol):
    """What the run tells the outside world (display, log, checkpoint)."""

    def progress(self, state: ProgressState) -> None: ...

    def warning(self, message: str) -> None: ...


class Checkpointer(Protocol):
    """Keeps the resume watermark (``checkpoint.CheckpointWriter``)."""

    def submitted(self, end_offset: int) -> None: ...

    def may_be_stored_until(self, offset: int) -> None: ...

    def advance(self, offset: int, line: int, summary: Summary, report_size: int) -> None: ...

    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Position:
    """Just past the last settled record: where a resume starts reading."""

    offset: int
    line: int


@dataclass(frozen=True, slots=True)
class ProgressState:
    read: int
    imported: int
    duplicates: int
    rejected: int
    bytes_read: int
    total_bytes: int | None
    in_flight: int
    elapsed_s: float
    concurrency: int = 0  # the current limit of requests in flight


@dataclass(frozen=True)
class ImportOptions:
    batch_size: int = MAX_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    dry_run: bool = False
    max_rejects: int | None = None  # stop after this many rejections...
    max_reject_ratio: float | None = None  # ...or when this share of the records read so far


@dataclass
class Segment:
    number: int
    start: Position
    end: Position
    records: list[dict[str, Any]] = field(default_factory=list)
    valid: int = 0  # how many records were sent (the list itself goes to the dispatcher)
    rows: list[RawRow] = field(default_factory=list)  # the raw row of each record
    local: list[ReportRow] = field(default_factory=list)
    read: int = 0


@dataclass
class Settlement:
    """How the server settled one segment's records."""

    imported: int = 0
    duplicates: int = 0
    duplicates_after_retry: int = 0
    unaccounted: int = 0
    requests: int = 0
    retries: int = 0
    itemize_requests: int = 0
    rejections: list[tuple[int, ItemError]] = field(default_factory=list)
    # Records never sent because no request could hold them (each over the body limit).
    local_rejections: list[tuple[int, ItemError]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, part: Settlement, indexes: list[int]) -> None:
        """Fold in the settlement of a part of the batch (``indexes``: its records' places)."""
        self.imported += part.imported
        self.duplicates += part.duplicates
        self.duplicates_after_retry += part.duplicates_after_retry
        self.unaccounted += part.unaccounted
        self.requests += part.requests
        self.retries += part.retries
        self.itemize_requests += part.itemize_requests
        self.rejections.extend((indexes[i], item) for i, item in part.rejections)
        self.local_rejections.extend((indexes[i], item) for i, item in part.local_rejections)
        self.notes.extend(part.notes)


def deliver(
    sender: BatchSender,
    kind: str,
    records: list[dict[str, Any]],
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Settlement:
    """Send one batch, in as many requests as the body limit needs, and settle every record.

    A batch whose encoded body would exceed ``max_body_bytes`` is cut, in input order, into
    parts that each fit; a record that fits in no request is rejected locally
    (``record_too_large``) and never sent.
    """
    body = orjson.dumps({"records": records})
    if len(body) <= max_body_bytes:
        return _deliver_batch(sender, kind, records, body)
    settlement = Settlement()
    for part in split_by_size(records, max_body_bytes):
        if isinstance(part, int):
            size = len(orjson.dumps(records[part])) + _ENVELOPE
            message = (
                f"The record alone makes a request body of {size:,} bytes; the API's limit is "
                f"{max_body_bytes:,}. Shorten its fields (the message text?)."
            )
            settlement.local_rejections.append((part, ItemError(part, RECORD_TOO_LARGE, message)))
        else:
            settlement.add(_deliver_batch(sender, kind, [records[i] for i in part]), part)
    return settlement


def split_by_size(records: list[dict[str, Any]], max_body_bytes: int) -> list[list[int] | int]:
    """The records' indexes in order, grouped into requests whose bodies fit the limit.

    An int (not a list) is a record that fits in no request.
    """
    parts: list[list[int] | int] = []
    current: list[int] = []
    size = _ENVELOPE
    for index, record in enumerate(records):
        length = len(orjson.dumps(record))
        if _ENVELOPE + length > max_body_bytes:
            if current:  # keep input order: what came before goes first
                parts.append(current)
                current, size = [], _ENVELOPE
            parts.append(index)
            continue
        extra = length + (1 if current else 0)  # the comma between records
        if current and size + extra > max_body_bytes:
            parts.append(current)
            current, size, extra = [], _ENVELOPE, length
        current.append(index)
        size += extra
    if current:
        parts.append(current)
    return parts


def _deliver_batch(
    sender: BatchSender, kind: str, records: list[dict[str, Any]], body: bytes | None = None
) -> Settlement:
    """Send one batch until every record is settled and every rejection itemized.

    The server itemizes at most 100 failures per request. When more failed, the records it did
    not itemize are sent again: those stored the first time come back as duplicates (imports
    are idempotent by id), and the next 100 failures get itemized, until all are.
    """
    settlement = Settlement()
    outstanding = list(range(len(records)))
    earlier_successes = 0
    ambiguous = False
    while True:
        if body is None:
            body = orjson.dumps({"records": [records[i] for i in outstanding]})
        try:
            delivery = sender.import_batch(kind, body, len(outstanding))
        except ApiError as error:
            # Earlier rounds were answered: their requests count, and they stored records.
            error.requests += settlement.requests
            error.retries += settlement.retries
            error.may_have_applied = error.may_have_applied or settlement.requests > 0
            raise
        body = None  # the next round (if any) sends fewer records
        settlement.requests += delivery.attempts
        settlement.retries += delivery.attempts - 1
        ambiguous = ambiguous or delivery.after_ambiguous_failure
        result = delivery.result
        sent = len(outstanding)
        failed = _failed_count(result, sent)
        itemized = [(outstanding[item.index], item) for item in result.errors]
        settlement.rejections.extend(itemized)
        if failed is None or len(itemized) > failed:
            # Records imported by an earlier round are resent too: they stay imported.
            _mark_unaccounted(settlement, sent - len(itemized) - earlier_successes, result, sent)
            return settlement
        settlement.imported += result.success_count
        if failed > len(itemized) and itemized:
            earlier_successes += result.success_count
            done = {index for index, _ in itemized}
            outstanding = [i for i in outstanding if i not in done]
            settlement.itemize_requests += 1
            continue
        if failed > len(itemized):
            # Failures the server will not name: they cannot be reported row by row.
            settlement.unaccounted += failed - len(itemized)
            settlement.notes.append(
                f"the server counted {failed} failures but itemized only {len(itemized)}"
            )
        duplicates = result.duplicates_skipped - earlier_successes
        if duplicates < 0:
            settlement.unaccounted += -duplicates
            settlement.imported -= -duplicates
            duplicates = 0
        settlement.duplicates += duplicates
        if ambiguous:
            settlement.duplicates_after_retry += duplicates
        return settlement


def _failed_count(result: BulkResult, sent: int) -> int | None:
    """Records that failed, or None when the answer's counts do not add up to ``sent``."""
    total = result.success_count + result.error_count + result.duplicates_skipped
    if total == sent:
        return result.error_count
    # Client tolerance (CONTRACT.md): a server that counts invalid phones apart from errors.
    if result.invalid_phones is not None and total + result.invalid_phones == sent:
        return result.error_count + result.invalid_phones
    return None


def _mark_unaccounted(settlement: Settlement, count: int, result: BulkResult, sent: int) -> None:
    settlement.unaccounted += count
    settlement.notes.append(
        f"answer for {sent} records did not add up (success {result.success_count}, "
        f"errors {result.error_count}, duplicates {result.duplicates_skipped})"
    )


class ImportRun:
    """One import of one input. Call ``run()`` once; it returns the summary."""

    def __init__(
        self,
        options: ImportOptions,
        rows: Iterable[RawRow],
        builder: RecordBuilder,
        report: ErrorReport,
        summary: Summary,
        *,
        dispatcher: Dispatcher | None,
        observer: RunObserver,
        bytes_read: Callable[[], int] = lambda: 0,
        total_bytes: int | None = None,
        start: Position = Position(0, 1),
        stop: threading.Event | None = None,
        abandon: threading.Event | None = None,
        checkpoint: Checkpointer | None = None,
        possibly_stored_until: int = 0,
        grace_s: float = 10.0,
    ) -> None:
        if not 1 <= options.batch_size <= MAX_BATCH_SIZE:
            raise ValueError("batch_size must be 1..1000")
        self.options = options
        self._rows = rows
        self._builder = builder
        self._report = report
        self.summary = summary
        self._dispatcher = None if options.dry_run else dispatcher
        self._observer = observer
        self._bytes_read = bytes_read
        self._total_bytes = total_bytes
        self._start = start
        # stop: read no more, let in-flight requests finish within grace_s; abandon: wait for
        # nothing more (a second Ctrl-C). Both are only looked at between steps, so a signal
        # never cuts a segment's accounting in half.
        self.stop = stop or threading.Event()
        self.abandon = abandon or threading.Event()
        self._stop_deadline: float | None = None
        self.stopped_early = False
        self._checkpoint = checkpoint
        # After a crash, records up to here may have been stored by batches that were in
        # flight: their duplicates are this migration's own, not old ones.
        self._possibly_stored_until = possibly_stored_until
        self._sent_until = 0  # just past the last settled segment that sent requests
        self._grace_s = grace_s
        # The adaptive limit of requests in flight (client.AdaptiveLimit), for the progress
        # display and for how many segments are read ahead.
        self._current_concurrency = (
            dispatcher.current_concurrency if dispatcher else (lambda: options.concurrency)
        )
        self.abandoned = 0  # segments given up with their requests still in flight
        self._pending: deque[tuple[Segment, Future[Settlement]]] = deque()
        self._started = time.monotonic()
        self._base_elapsed = summary.elapsed_s
        self._read_count = 0  # records read by this run, settled or not
        self._resumed_read = summary.read  # accounted for by the run that was resumed
        self._last_progress = 0.0

    def run(self) -> Summary:
        try:
            damage = self._read_and_submit()
            self._drain()
            if damage is not None:
                # Raised only now: every record read before the damage is settled first.
                raise damage
        finally:
            self._abandon()
            self._update_elapsed()
            try:
                if self._checkpoint is not None:
                    self._checkpoint.flush()
            finally:
                self._report.close()
        return self.summary

    @property
    def interrupted(self) -> bool:
        """Stopped before the end: input left unread, or records left unconfirmed."""
        if self.stopped_early:
            return True
        return not self.options.dry_run and self.summary.pending > 0

    def _grace_over(self) -> bool:
        """After a stop, in-flight requests get ``grace_s`` to finish; none after abandon."""
        if self.abandon.is_set():
            return True
        if not self.stop.is_set():
            return False
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self._grace_s
        return time.monotonic() >= self._stop_deadline

    def _update_elapsed(self) -> None:
        self.summary.elapsed_s = self._base_elapsed + time.monotonic() - self._started

    # -- reading -------------------------------------------------------------------------

    def _read_and_submit(self) -> InputDamagedError | None:
        """Read, validate and submit every record; the damage that cut the input short, if any."""
        # The per-record loop: everything that can be done per segment or every 256 records
        # is kept out of it.
        batch_size = self.options.batch_size
        build = self._builder.build
        local_row = self._local_row
        number = 0
        segment = Segment(number, self._start, self._start)
        records, rows, local = segment.records, segment.rows, segment.local
        count = closed = 0
        last: RawRow | None = None
        damage: InputDamagedError | None = None
        try:
            for last in self._rows:
                count += 1
                outcome = build(last)
                if type(outcome) is dict:
                    records.append(outcome)
                    rows.append(last)
                else:
                    local.append(local_row(last, outcome))  # type: ignore[arg-type]
                if len(records) >= batch_size or len(local) >= MAX_SEGMENT_REJECTIONS:
                    segment.read = count - closed
                    segment.end = Position(last.end_offset, last.next_line)
                    self._submit(segment)
                    closed = count
                    number += 1
                    segment = Segment(number, segment.end, segment.end)
                    records, rows, local = segment.records, segment.rows, segment.local
                if not count & 0xFF:
                    self._read_count = count
                    self._maybe_progress()
                    if self.stop.is_set():
                        self.stopped_early = True
                        break
        except InputDamagedError as exc:
            damage = exc
        self._read_count = count
        if count > closed and last is not None:
            segment.read = count - closed
            segment.end = Position(last.end_offset, last.next_line)
            self._submit(segment)
        return damage

    def _local_row(self, row: RawRow, rejection: Rejection) -> ReportRow:
        return ReportRow(
            row.line,
            self._builder.record_id(row),
            Stage.LOCAL,
            rejection.code,
            rejection.message,
            row.data,
            row.text,
        )

    def _submit(self, segment: Segment) -> None:
        # Read ahead of the requests in flight by a few segments, no more: the network never
        # waits for the reader, and memory stays bounded by the concurrency.
        while len(self._pending) >= self._current_concurrency() + READ_AHEAD_SEGMENTS:
            if not self._settle_head(block=True):
                break  # stopping: the reading loop ends at its next check
        self._settle_ready()
        future: Future[Settlement]
        if segment.records and self._dispatcher is not None:
            future = self._dispatcher.submit(segment.records)
        else:
            if segment.records:
                # A dry run encodes what it would send: the same work, the same failures.
                orjson.dumps({"records": segment.records})
            future = Future()
            future.set_result(Settlement())
        # The records are the dispatcher's now; the segment keeps only the raw rows its
        # report rows may need, which halves what the read-ahead holds in memory.
        segment.valid = len(segment.records)
        segment.records = []
        self._pending.append((segment, future))
        if self._checkpoint is not None and not future.done():
            self._checkpoint.submitted(segment.end.offset)
        self._settle_ready()

    # -- settling ------------------------------------------------------------------------

    def _settle_ready(self) -> None:
        while self._pending and self._pending[0][1].done():
            self._settle_head(block=False)

    def _settle_head(self, *, block: bool) -> bool:
        """Settle the oldest segment; False if a stop's grace ran out before its answer."""
        segment, future = self._pending[0]
        while block and not future.done():
            if self._grace_over():
                return False
            try:
                future.result(timeout=PROGRESS_INTERVAL_S)
            except TimeoutError:
                self._maybe_progress()
            except Exception:  # not BaseException: a second Ctrl-C must get through
                break  # the worker's error is raised just below
        settlement = future.result()  # raises the worker's error: the run stops
        self._pending.popleft()
        self._apply(segment, settlement)
        return True

    def _apply(self, segment: Segment, settlement: Settlement) -> None:
        summary = self.summary
        summary.read += segment.read
        summary.rejected_local += len(segment.local) + len(settlement.local_rejections)
        summary.requests += settlement.requests
        summary.retries += settlement.retries
        summary.itemize_requests += settlement.itemize_requests
        if settlement.requests:
            self._sent_until = segment.end.offset
        if self.options.dry_run:
            summary.pending += segment.valid
        else:
            summary.imported += settlement.imported
            summary.duplicates += settlement.duplicates
            if segment.start.offset < self._possibly_stored_until:
                summary.duplicates_after_retry += settlement.duplicates
            else:
                summary.duplicates_after_retry += settlement.duplicates_after_retry
            summary.rejected_server += len(settlement.rejections)
            summary.unaccounted += settlement.unaccounted
        for note in settlement.notes:
            message = f"lines {segment.start.line}-{segment.end.line - 1}: {note}"
            summary.notes.append(message)
            self._observer.warning(message)
        rows = list(segment.local)
        rejections = [(Stage.SERVER, *pair) for pair in settlement.rejections]
        rejections += [(Stage.LOCAL, *pair) for pair in settlement.local_rejections]
        for stage, index, item in rejections:
            raw = segment.rows[index]
            message = item.message or item.code
            rows.append(
                ReportRow(
                    raw.line,
                    item.record_id or self._builder.record_id(raw),
                    stage,
                    item.code,
                    message,
                    raw.data,
                    raw.text,
                )
            )
        rows.sort(key=lambda report_row: report_row.line)
        for report_row in rows:
            self._report.write(report_row)
        self._update_elapsed()
        if self._checkpoint is not None:
            report_size = self._report.flush()  # the writer fsyncs it before the checkpoint
            self._checkpoint.advance(segment.end.offset, segment.end.line, summary, report_size)
        self._maybe_progress(force=True)
        self._check_reject_limit()

    def _drain(self) -> None:
        while self._pending:
            if not self._settle_head(block=True):
                return

    def _abandon(self) -> None:
        """After a failure or an interruption: what was not settled is pending, not lost.

        Nothing of it reaches the report or the checkpoint, so a resume sends it again. The
        requests it tried still count, and the checkpoint learns how far records may be
        stored: what was never sent, or was refused before any work (401, 400, 413 ...),
        is not in doubt.
        """
        may_be_stored = max(self._possibly_stored_until, self._sent_until)
        for segment, future in self._pending:
            if future.cancel():
                doubtful = False  # never sent
            elif not future.done():
                self.abandoned += 1
                doubtful = True
            else:
                doubtful = self._count_unsettled(future)
            if doubtful:
                may_be_stored = max(may_be_stored, segment.end.offset)
            self.summary.read += segment.read
            self.summary.pending += segment.read
        self._pending.clear()
        if self._checkpoint is not None:
            self._checkpoint.may_be_stored_until(may_be_stored)

    def _count_unsettled(self, future: Future[Settlement]) -> bool:
        """Count the requests of an answered segment left unsettled; True if it may be stored."""
        error = future.exception()
        if error is None:
            settlement = future.result()
            self.summary.requests += settlement.requests
            self.summary.retries += settlement.retries
            return settlement.requests > 0
        if isinstance(error, ApiError):
            self.summary.requests += error.requests
            self.summary.retries += error.retries
            return error.may_have_applied
        return True

    def _check_reject_limit(self) -> None:
        options, summary = self.options, self.summary
        rejected = summary.rejected_local + summary.rejected_server
        if (
            options.max_rejects is None
            and options.max_reject_ratio is None
            and summary.read >= ALL_REJECTED_PROBE
            and rejected == summary.read
        ):
            raise RejectLimitReached(
                f"Stopped: all of the first {summary.read} records were rejected.",
                hint="Look at the errors report: a wrong file, a forgotten --timezone or "
                "--default-region, or a column mapping (--map) is the usual cause. "
                "To go on regardless, pass --max-rejects 100%.",
            )
        if options.max_rejects is not None and rejected > options.max_rejects:
            raise RejectLimitReached(
                f"Stopped: {rejected} records rejected, more than --max-rejects "
                f"{options.max_rejects}."
            )
        if (
            options.max_reject_ratio is not None
            and summary.read >= MAX_BATCH_SIZE
            and rejected > options.max_reject_ratio * summary.read
        ):
            raise RejectLimitReached(
                f"Stopped: {rejected} of the first {summary.read} records were rejected, "
                f"more than --max-rejects {options.max_reject_ratio:.0%}."
            )

    # -- progress ------------------------------------------------------------------------

    def _maybe_progress(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        summary = self.summary
        self._observer.progress(
            ProgressState(
                read=self._resumed_read + self._read_count,
                imported=summary.imported,
                duplicates=summary.duplicates,
                rejected=summary.rejected_local + summary.rejected_server,
                bytes_read=self._bytes_read(),
                total_bytes=self._total_bytes,
                # Requests, not segments: segments read ahead wait for the sender's limit.
                in_flight=self._dispatcher.requests_in_flight() if self._dispatcher else 0,
                concurrency=self._current_concurrency(),
                elapsed_s=self._base_elapsed + now - self._started,
            )
        )


__all__ = [
    "BatchSender",
    "Dispatcher",
    "ImportOptions",
    "ImportRun",
    "Position",
    "ProgressState",
    "RunObserver",
    "Settlement",
    "deliver",
]
