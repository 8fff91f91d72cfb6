"""``run_chain``: the files of a run over several files, imported by one engine run.

The files are *parts* of one engine run (``engine.py``): the next file is opened, read and
sent while the last answers of the file before are still in flight, so a run over a hundred
files keeps the network as busy as a run over one. A segment holds the records of one file
only, so each file's counts, checkpoint and line numbers are its own. Each file's checkpoint
is an entry of the list's (``list_checkpoint.ListCheckpoint``, one thread for the run). A
file is finished when its last segment settled: its totals go into the list's checkpoint
and the ledger, and its entry leaves the files under way. A file is opened when the chain
reaches it, on the reading thread: opening it ahead on a thread of its own was measured
slower (each of the opening's system calls made that thread take the interpreter from the
reader), on a warm and on a cold page cache alike.

Crash safety: the list's checkpoint takes the state of all the files at one moment, after
the errors report's fsync, so what a crash leaves is a prefix of the run in settling order.
The run's errors report (``report.RunReport``) is cut back on ``--resume`` to the size it
recorded: every row before it is covered, every row after it is sent, and written, again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trackly_migrate.checkpoint import InputIdentity
from trackly_migrate.checkpoint_writer import CheckpointWriter
from trackly_migrate.errors import TracklyMigrateError
from trackly_migrate.normalize import PhoneNormalizer
from trackly_migrate.pipeline import resume
from trackly_migrate.pipeline.batch_report import RunReport
from trackly_migrate.pipeline.batch_state import BatchState
from trackly_migrate.pipeline.engine import EngineRun
from trackly_migrate.pipeline.ledger import Entry, Ledger
from trackly_migrate.pipeline.list_checkpoint import ListCheckpoint
from trackly_migrate.pipeline.opening import RecordBuilders, open_input
from trackly_migrate.pipeline.parts import Part
from trackly_migrate.pipeline.ports import Dispatcher, Observer
from trackly_migrate.pipeline.request import ImportRequest
from trackly_migrate.pipeline.signals import StopEvents
from trackly_migrate.readers import InputSource
from trackly_migrate.report import Summary


@dataclass
class FileResult:
    """How one file of the chain ended (``status`` as in the summary's ``files``)."""

    path: str
    summary: Summary
    status: str = "not started"
    error: TracklyMigrateError | None = None
    checkpoint: Path | None = None  # kept for --resume
    release: Callable[[], None] | None = None  # closes the file's own resources


@dataclass
class Chain:
    """What ``run_chain`` needs: the files to import (none finished), and where things go."""

    request: ImportRequest
    files: list[str]
    report: RunReport
    state: BatchState | None
    state_path: Path | None
    # The ledger's entry of a finished file (its identity, when the list took it); None:
    # nothing for the ledger.
    ledger_entry: Callable[[str, Summary, InputIdentity | None], Entry | None]
    ledger: Ledger
    absolute: dict[str, str]  # each file's absolute path, resolved at the run's start
    results: list[FileResult] = field(default_factory=list)
    abandoned_requests: int = 0
    error: TracklyMigrateError | None = None  # what stopped the run, if anything did


def run_chain(
    chain: Chain,
    observer: Observer,
    events: StopEvents | None,
    dispatcher: Dispatcher | None,
    phones: PhoneNormalizer | None,
) -> None:
    """Import ``chain.files`` in one engine run; ``chain.results`` says how each ended."""
    request = chain.request
    by_part: dict[int, FileResult] = {}
    builders = RecordBuilders(request.normalization, phones)
    writer = ListCheckpoint(
        chain.state,
        chain.state_path,
        chain.report.sync,
        chain.ledger,
        chain.ledger_entry,
        absolute=chain.absolute,
    )
    with contextlib.ExitStack() as stack:
        unreleased: dict[int, contextlib.ExitStack] = {}  # in the order the files opened
        stack.callback(_release_all, unreleased)

        def parts() -> Iterator[Part]:
            read: InputSource | None = None
            for number, path in enumerate(chain.files, 1):
                if read is not None:
                    # The engine asks for the next file once it has read the one before to
                    # its end: that one's input is closed now, not when its totals are
                    # written, so the files waiting for that write hold no open file.
                    read.close()
                result = FileResult(path, Summary(kind=request.kind, input=path))
                chain.results.append(result)
                # The file's own resources (its open file, its entry under way), released once
                # it is finished and recorded, or at the end of the run. A released file is
                # forgotten: a run over 10,000 files kept 10,000 empty stacks.
                own = contextlib.ExitStack()
                unreleased[id(own)] = own
                own.callback(unreleased.pop, id(own), None)  # the last of its callbacks
                result.release = own.close
                try:
                    part, read = _open_part(request, path, chain, own, observer, builders, writer)
                except TracklyMigrateError as error:
                    result.status, result.error = "failed", error
                    result.summary.status = "failed"
                    return
                result.summary = part.summary
                result.status = "started"
                by_part[id(part)] = result
                observer.info(f"file {number} of {len(chain.files)}: {path}")
                yield part

        def finished(part: Part) -> None:
            result = by_part.pop(id(part))  # a finished part is forgotten
            checkpoint = part.checkpoint if isinstance(part.checkpoint, CheckpointWriter) else None
            if engine.part_interrupted(part):  # stopped by a signal at its very end
                result.status = result.summary.status = "interrupted"
                result.checkpoint = resume.keep_or_remove(checkpoint, completed=False)
                return
            result.status = "completed"
            if _rows(part):
                result.summary.errors_report = str(chain.report.path)
            size = chain.report.flush()
            writer.finished(result.path, result.summary, size, checkpoint, result.release)
            result.release = None  # the writer's now

        engine = EngineRun(
            request.limits,
            parts(),
            dispatcher=dispatcher,
            observer=observer,
            events=events,
            finished=finished,
        )
        engine.total_bytes = _total_bytes(chain.files)
        try:
            engine.run()
        except TracklyMigrateError as exc:
            chain.error = exc
        except KeyboardInterrupt:
            pass  # a third Ctrl-C: nothing more is waited for; the open files are interrupted
        finally:
            chain.abandoned_requests = engine.abandoned
            # Before the last write: a file left with nothing to resume leaves the list.
            _end_results(chain, engine, by_part)
            try:
                writer.close()
            except TracklyMigrateError as exc:
                chain.error = chain.error or exc


def _release_all(unreleased: dict[int, contextlib.ExitStack]) -> None:
    """What the files not released yet hold, the last opened first, each whatever the
    others raise (as one stack of them all would)."""
    with contextlib.ExitStack() as closing:
        for own in list(unreleased.values()):
            closing.callback(own.close)


def _end_results(
    chain: Chain,
    engine: EngineRun,
    by_part: dict[int, FileResult],
) -> None:
    """The status of each file left open, and whether its checkpoint is kept: the first
    one is where an error stopped the run; those after it were under way behind it."""
    for number, part in enumerate(engine.open_parts):
        result = by_part[id(part)]
        if chain.error is not None and number == 0:
            result.status, result.error = "aborted", chain.error
        else:
            result.status = "interrupted"
        result.summary.status = result.status
        checkpoint = part.checkpoint if isinstance(part.checkpoint, CheckpointWriter) else None
        result.checkpoint = resume.keep_or_remove(checkpoint, completed=False)
        if _rows(part):
            result.summary.errors_report = str(chain.report.path)


def _rows(part: Part) -> bool:
    counts = part.summary.counts
    return counts.rejected_local + counts.rejected_server > 0


def _total_bytes(files: list[str]) -> int | None:
    total = 0
    for path in files:
        try:
            total += Path(path).stat().st_size
        except OSError:
            return None
    return total


def _open_part(
    request: ImportRequest,
    path: str,
    chain: Chain,
    stack: contextlib.ExitStack,
    observer: Observer,
    builders: RecordBuilders,
    checkpoints: ListCheckpoint,
) -> tuple[Part, InputSource]:
    """Open one file of the chain as ``run_import`` opens its one file (``run.py``): the
    checkpoint first (refusals before anything of it is sent), then its reader and mapping.
    Also its input, which ``stack`` closes too."""
    one = request.for_file(path)  # a pipe with --resume was refused before the run
    opened = open_input(
        one,
        observer,
        stack,
        builders=builders,
        warning_prefix=f"{path}: ",
        open_checkpoint=checkpoints.open_file,
    )
    checkpoint, columns = opened.checkpoint, opened.columns
    summary = Summary(kind=request.kind, input=path, dry_run=request.target.dry_run)
    if checkpoint is not None:
        checkpoint.base.report_path = chain.report.absolute_path
        resume.carry_over(checkpoint, summary, observer)
    view = chain.report.for_file(path, list(columns) if columns is not None else None)
    return Part(opened.engine_input(), view, summary, checkpoint), opened.source
