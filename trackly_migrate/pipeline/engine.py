"""The streaming import engine: read → validate → segment → submit → settle in order.

The main thread reads and validates; a dispatcher (``dispatch.py``) sends segments. Input is
cut into *segments*: the records of one request plus the locally rejected rows read alongside
them. Segments settle strictly in input order, whatever order their answers arrive in, so that

* the errors report is written in line order, by one thread;
* the position just past the last settled segment is a watermark: every record before it is
  accounted for, which is what a resume checkpoint stores;
* memory is bounded: at most ``2 × concurrency`` segments exist at once.

One engine run may chain several inputs (*parts*, one a file: ``chain.py``): the next part is
read and sent while the last answers of the one before are still in flight, and each segment
settles into the summary, checkpoint and report of its own part (a segment never holds records
of two parts, so a part's counts and line numbers stay its own). A part is finished when it was
read to its end and its last segment settled.

Nothing here prints: progress, warnings and retries go to a ``RunObserver``.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future

import orjson

from trackly_migrate.counts import Counts, add_month, month_of
from trackly_migrate.errors import ApiError, InputDamagedError, RejectLimitReached
from trackly_migrate.pipeline.collector import tuned_for_bulk
from trackly_migrate.pipeline.parts import EngineInput, Part, ReportSink, Segment
from trackly_migrate.pipeline.ports import (
    Checkpointer,
    Dispatcher,
    Position,
    ProgressState,
    RunObserver,
)
from trackly_migrate.pipeline.request import MAX_BATCH_SIZE, Limits
from trackly_migrate.pipeline.settle import Settlement
from trackly_migrate.pipeline.signals import StopEvents
from trackly_migrate.pipeline.switching import prompt_switches
from trackly_migrate.readers import RawRow
from trackly_migrate.records import Kind, Rejection
from trackly_migrate.report import ErrorReport, ReportRow, Stage, Summary

# A segment also closes after this many local rejections, so that an input where nearly every
# row is rejected cannot pile its rejections up in memory.
MAX_SEGMENT_REJECTIONS = 1000
# Without --max-rejects, a run stops when this many records were read and every one of them
# was rejected: a forgotten --timezone or a wrong file, not ten million bad rows.
ALL_REJECTED_PROBE = 1000
READ_AHEAD_SEGMENTS = 4
PROGRESS_INTERVAL_S = 0.1


__all__ = ["EngineInput", "EngineRun", "ImportRun", "Part", "Segment"]


class EngineRun:
    """One engine run over one or more parts, in order. Call ``run()`` once."""

    def __init__(
        self,
        limits: Limits,
        parts: Iterable[Part],
        *,
        dispatcher: Dispatcher | None,  # None: a dry run, which sends nothing
        observer: RunObserver,
        events: StopEvents | None = None,
        finished: Callable[[Part], None] | None = None,
    ) -> None:
        self.limits = limits
        self.dry_run = dispatcher is None
        self._parts: Iterator[Part] = iter(parts)
        self._dispatcher = dispatcher
        self._observer = observer
        # Both events are only looked at between steps (see ``signals.py``).
        self.events = events or StopEvents()
        self._stop_deadline: float | None = None
        self.stopped_early = False
        # Called in this thread when a part's last segment settled (its counts are final).
        self._finished = finished
        # The adaptive limit of requests in flight (client.AdaptiveLimit), for the progress
        # display and for how many segments are read ahead.
        self._current_concurrency = (
            dispatcher.current_concurrency if dispatcher else (lambda: limits.concurrency)
        )
        self.abandoned = 0  # segments given up with their requests still in flight
        self._pending: deque[tuple[Segment, Future[Settlement]]] = deque()
        # What the end of the run flushes and closes of every part started, in order: only
        # these, not the parts, which a run over 10,000 files would all keep (their readers
        # and inputs), 3 KB each.
        self._to_end: list[tuple[Checkpointer | None, ReportSink]] = []
        self._open: list[Part] = []  # the parts started and not finished
        self._done_counts = Counts()  # the finished parts' counts, for the progress line
        self._done_bytes = 0
        self._last_progress = 0.0
        self._started = time.monotonic()
        self._base_elapsed = 0.0  # the time the resumed run spent
        self.total_bytes: int | None = None  # all the parts' bytes, for the progress bar
        self._track_months = True
        self._local_months: dict[str, int] = {}  # the segment being read's

    def run(self) -> None:
        try:
            with tuned_for_bulk(), prompt_switches():
                damage = self._read_and_submit()
            self._drain()
            if damage is not None:
                # Raised only now: every record read before the damage is settled first.
                raise damage
        finally:
            self._abandon()
            for part in self._open:
                part.update_elapsed()
            try:
                for checkpoint, _ in self._to_end:
                    if checkpoint is not None:
                        checkpoint.flush()
            finally:
                for _, report in self._to_end:
                    report.close()

    @property
    def open_parts(self) -> list[Part]:
        """The parts started and not finished (after ``run()``: where the run stopped)."""
        return list(self._open)

    def part_interrupted(self, part: Part) -> bool:
        """The part stopped before its end: input left unread, or records left unconfirmed."""
        return part.stopped_early or (not self.dry_run and part.summary.counts.pending > 0)

    def _grace_over(self) -> bool:
        """After a stop, in-flight requests get ``grace_s`` to finish; none after abandon."""
        if self.events.abandon.is_set():
            return True
        if not self.events.stop.is_set():
            return False
        if self._stop_deadline is None:
            self._stop_deadline = time.monotonic() + self.limits.grace_s
        return time.monotonic() >= self._stop_deadline

    # -- reading -------------------------------------------------------------------------

    def _read_and_submit(self) -> InputDamagedError | None:
        """Read and submit every part in turn; the damage that cut one short, if any."""
        while not self.stopped_early:
            if self._to_end and self.events.stop.is_set():
                self.stopped_early = True  # stopped between two parts: the next is not begun
                return None
            # Opening the next part (``chain.py``) happens here, while the last segments
            # of the one before are still in flight.
            part = next(self._parts, None)
            if part is None:
                return None
            part.started = time.monotonic()
            part.base_elapsed = part.summary.elapsed_s
            part.resumed_read = part.summary.counts.read
            self._to_end.append((part.checkpoint, part.report))
            self._open.append(part)
            damage = self._read_part(part)
            part.reading_done = True
            if part.unsettled == 0:
                self._finish(part)
            if damage is not None:
                return damage
        return None

    def _read_part(self, part: Part) -> InputDamagedError | None:
        """Read, validate and submit one part's records; the damage that cut it short."""
        # The per-record loop: everything that can be done per segment or every 256 records
        # is kept out of it.
        batch_size = self.limits.batch_size
        self._builder = part.source.builder
        self._track_months = self._builder.kind is not Kind.CONTACTS
        build = self._builder.build
        local_row = self._local_row
        number = 0
        start = part.source.start
        segment = Segment(part, number, start, start)
        records, rows, local = segment.records, segment.rows, segment.local
        months = segment.months if self._track_months else None
        self._local_months = segment.local_months
        count = closed = 0
        last: RawRow | None = None
        damage: InputDamagedError | None = None
        try:
            for last in part.source.rows:
                count += 1
                outcome = build(last)
                if type(outcome) is dict:
                    records.append(outcome)
                    rows.append(last)
                    if months is not None:  # the month table's one cost per record
                        month = outcome["timestamp"][:7]
                        months[month] = months.get(month, 0) + 1
                else:
                    local.append(local_row(last, outcome))  # type: ignore[arg-type]
                if len(records) >= batch_size or len(local) >= MAX_SEGMENT_REJECTIONS:
                    segment.read = count - closed
                    segment.end = Position(last.end_offset, last.next_line)
                    self._submit(segment)
                    closed = count
                    number += 1
                    segment = Segment(part, number, segment.end, segment.end)
                    records, rows, local = segment.records, segment.rows, segment.local
                    months = segment.months if self._track_months else None
                    self._local_months = segment.local_months
                if not count & 0xFF:
                    part.read_count = count
                    self._maybe_progress()
                    if self.events.stop.is_set():
                        part.stopped_early = self.stopped_early = True
                        break
        except InputDamagedError as exc:
            damage = exc
        part.read_count = count
        if count > closed and last is not None:
            segment.read = count - closed
            segment.end = Position(last.end_offset, last.next_line)
            self._submit(segment)
        return damage

    def _local_row(self, row: RawRow, rejection: Rejection) -> ReportRow:
        if self._track_months:
            month = month_of(self._builder.timestamp_of(row))
            local_months = self._local_months
            local_months[month] = local_months.get(month, 0) + 1
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
        # waits for the reader, and memory stays bounded by the concurrency. Bounded by the
        # ceiling, not the adaptive limit: while it opens up, the segments are ready.
        while len(self._pending) >= self.limits.concurrency + READ_AHEAD_SEGMENTS:
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
        segment.part.unsettled += 1
        self._pending.append((segment, future))
        checkpoint = segment.part.checkpoint
        if checkpoint is not None and not future.done():
            checkpoint.submitted(segment.end.offset)
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
        part = segment.part
        part.unsettled -= 1
        self._apply(segment, settlement)
        if part.reading_done and part.unsettled == 0:
            self._finish(part)
        return True

    def _finish(self, part: Part) -> None:
        """The part's last segment settled: its counts are final (``finished`` hears it)."""
        part.update_elapsed()
        self._open.remove(part)
        # The next parts were begun while this one's last answers were awaited: their time
        # starts now, so that the parts' times add up to the run's instead of overlapping.
        now = time.monotonic()
        for later in self._open:
            later.started = max(later.started, now)
        self._done_counts.add(part.summary.counts)
        self._done_bytes += part.source.bytes_read()
        if self._finished is not None:
            self._finished(part)

    def _apply(self, segment: Segment, settlement: Settlement) -> None:
        part = segment.part
        summary = part.summary
        builder = part.source.builder
        # A dry run has no dispatcher, so its settlements are empty: its records are pending.
        counts = dataclasses.replace(
            settlement.counts,
            read=segment.read,
            rejected_local=len(segment.local) + len(settlement.local_rejections),
            rejected_server=len(settlement.rejections),
            pending=segment.valid if self.dry_run else 0,
        )
        if segment.start.offset < part.source.possibly_stored_until:
            counts.duplicates_after_retry = counts.duplicates
        track_months = builder.kind is not Kind.CONTACTS
        if track_months:
            counts.months = segment.month_rows(settlement, dry_run=self.dry_run)
        summary.counts.add(counts)
        if counts.requests:
            part.sent_until = segment.end.offset
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
                    item.record_id or builder.record_id(raw),
                    stage,
                    item.code,
                    message,
                    raw.data,
                    raw.text,
                )
            )
        rows.sort(key=lambda report_row: report_row.line)
        for report_row in rows:
            part.report.write(report_row)
        part.update_elapsed()
        if part.checkpoint is not None:
            report_size = part.report.flush()  # the writer fsyncs it before the checkpoint
            part.checkpoint.advance(
                segment.end.offset,
                segment.end.line,
                summary.counts,
                summary.elapsed_s,
                report_size,
            )
        self._maybe_progress(force=True)
        self._check_reject_limit(summary.counts)

    def _drain(self) -> None:
        while self._pending:
            if not self._settle_head(block=True):
                return

    def _abandon(self) -> None:
        """After a failure or an interruption: what was not settled is pending, not lost.

        Nothing of it reaches the report or the checkpoint, so a resume sends it again. The
        requests it tried still count, and each part's checkpoint learns how far its records
        may be stored: what was never sent, or was refused before any work (401, 400, 413
        ...), is not in doubt.
        """
        may_be_stored = {
            id(part): max(part.source.possibly_stored_until, part.sent_until) for part in self._open
        }
        for segment, future in self._pending:
            part = segment.part
            counts = part.summary.counts
            if future.cancel():
                doubtful = False  # never sent
            elif not future.done():
                self.abandoned += 1
                doubtful = True
            else:
                doubtful = self._count_unsettled(future, counts)
            if doubtful:
                may_be_stored[id(part)] = max(may_be_stored[id(part)], segment.end.offset)
            part.unsettled -= 1
            counts.read += segment.read
            counts.pending += segment.read
            if part.source.builder.kind is not Kind.CONTACTS:
                for month_counts in (segment.months, segment.local_months):
                    for month, number in month_counts.items():
                        add_month(counts.months, month, {"read": number, "pending": number})
        self._pending.clear()
        for part in self._open:
            if part.checkpoint is not None:
                part.checkpoint.may_be_stored_until(may_be_stored[id(part)])

    def _count_unsettled(self, future: Future[Settlement], counts: Counts) -> bool:
        """Count the requests of an answered segment left unsettled; True if it may be stored."""
        error = future.exception()
        if error is None:
            spent = future.result().counts
            counts.add(Counts(requests=spent.requests, retries=spent.retries))
            return spent.requests > 0
        if isinstance(error, ApiError):
            counts.add(Counts(requests=error.requests, retries=error.retries))
            return error.may_have_applied
        return True

    def _check_reject_limit(self, summary: Counts) -> None:
        """Each part's own limit: ``--max-rejects`` counts the records of one file."""
        options = self.limits
        rejected = summary.rejected
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
        # The run's counts: the finished parts', and the open ones' (settled or only read).
        counts = dataclasses.replace(self._done_counts)
        bytes_read = self._done_bytes
        for part in self._open:
            counts.add(part.summary.counts)
            counts.read += part.resumed_read + part.read_count - part.summary.counts.read
            bytes_read += part.source.bytes_read()
        self._observer.progress(
            ProgressState(
                counts=counts,
                bytes_read=bytes_read,
                total_bytes=self.total_bytes,
                # Requests, not segments: segments read ahead wait for the sender's limit.
                in_flight=self._dispatcher.requests_in_flight() if self._dispatcher else 0,
                concurrency=self._current_concurrency(),
                elapsed_s=now - self._started + self._base_elapsed,
            )
        )


class ImportRun(EngineRun):
    """One import of one input. Call ``run()`` once; it returns the summary."""

    def __init__(
        self,
        limits: Limits,
        source: EngineInput,
        report: ErrorReport,
        summary: Summary,
        *,
        dispatcher: Dispatcher | None,  # None: a dry run, which sends nothing
        observer: RunObserver,
        checkpoint: Checkpointer | None = None,
        events: StopEvents | None = None,
    ) -> None:
        self._part = Part(source, report, summary, checkpoint)
        super().__init__(
            limits, [self._part], dispatcher=dispatcher, observer=observer, events=events
        )
        self.summary = summary
        self.total_bytes = source.total_bytes
        self._base_elapsed = summary.elapsed_s

    def run(self) -> Summary:  # type: ignore[override]
        super().run()
        return self.summary

    @property
    def interrupted(self) -> bool:
        """Stopped before the end: input left unread, or records left unconfirmed."""
        return self.part_interrupted(self._part)
