"""Resume policy: which checkpoint a run keeps, whether it may continue, what it carries over.

A file input keeps a checkpoint (``checkpoint.py`` stores it) while the run goes. A run
resumes only the same file with the same options; one that confirmed nothing simply starts
over; one that completes, or can have stored nothing, leaves no checkpoint behind.
"""

from __future__ import annotations

import contextlib
import stat
from pathlib import Path
from typing import Any

from trackly_migrate.checkpoint import (
    Checkpoint,
    InputIdentity,
    default_checkpoint_path,
    discard,
    load,
    option_differences,
)
from trackly_migrate.checkpoint import exclusive as checkpoint_lock
from trackly_migrate.checkpoint_writer import CheckpointWriter
from trackly_migrate.errors import UsageError
from trackly_migrate.normalize import ISO
from trackly_migrate.pipeline.ports import Observer
from trackly_migrate.pipeline.request import ImportRequest
from trackly_migrate.readers import STDIN, Dialect, InputFormat, InputSource
from trackly_migrate.report import WORDS, Summary, refuse_overwriting_input


def refuse_unreadable_again(request: ImportRequest) -> None:
    """``--resume``/``--restart`` need an input that can be read again from a position."""
    path = request.source.path
    if not (request.resume.resume or request.resume.restart):
        return
    if path == STDIN:
        raise UsageError(
            "--resume and --restart need a file: stdin cannot be read again.",
            hint="Save the stream to a file first, then import that file.",
        )
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return  # missing or unreadable: opening it says so
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"--resume and --restart need a file: {path} is a named pipe or "
            "device, which cannot be read again from where a run stopped.",
            hint="Save the stream to a file first, then import that file.",
        )


def carry_over(checkpoint: CheckpointWriter | None, summary: Summary, observer: Observer) -> None:
    """Start the summary from what the resumed part of the run settled."""
    if checkpoint is None:
        return
    base = checkpoint.base
    if base.earlier_reports:
        summary.notes.append(
            "rows rejected by the earlier part of this run are in "
            + ", ".join(base.earlier_reports)
            + f"; {base.report_path} holds those from line {base.line:,} on"
        )
    if base.offset:
        summary.counts, summary.elapsed_s = base.counts()
        summary.resumed_from_line = base.line
        observer.info(
            f"resuming at line {base.line:,} "
            f"({summary.counts.read:,} records already accounted for)"
        )


def keep_or_remove(checkpoint: CheckpointWriter | None, completed: bool) -> Path | None:
    """Remove the checkpoint of a run that leaves nothing to resume; else where it is."""
    if checkpoint is None:
        return None
    # A run that can have stored nothing (all rejected locally, or every request refused
    # before any work, as with a wrong key) leaves nothing to resume: running it again,
    # with corrected options, starts over.
    if completed or not checkpoint.base.submitted_until:
        checkpoint.remove()
        return None
    return checkpoint.path


def options_fingerprint(
    request: ImportRequest, fmt: InputFormat, dialect: Dialect | None = None
) -> dict[str, Any]:
    """What changes the records sent or where they go; a resume must not change any of it.

    ``dialect`` is what was detected in the file (encoding, delimiter): a resume reads the
    rest of the file exactly as the first run read its start.
    """
    dialect = dialect or Dialect(request.source.encoding, request.source.delimiter or ",")
    where = request.target
    if where.sandbox:
        target = f"sandbox:{where.sandbox_db.resolve() if where.sandbox_db else ''}"
    else:
        target = where.settings.base_url if where.settings else ""
    return {
        "format": str(fmt),
        "encoding": dialect.encoding,
        "delimiter": dialect.delimiter,
        # Only when not the usual, so that checkpoints from before the option still match.
        "quotechar": None if dialect.quotechar == '"' else dialect.quotechar,
        "mapping": dict(sorted(request.normalization.fields.items())),
        "default_region": request.normalization.default_region,
        "timezone": str(request.normalization.zone) if request.normalization.zone else None,
        "defaults": dict(sorted(request.normalization.defaults.items())),
        # Only when not ISO throughout, so that checkpoints from before the option still match.
        "timestamp_formats": {
            name: fmt for name, fmt in request.normalization.timestamp_formats.items() if fmt != ISO
        }
        or None,
        "target": target,
    }


def has_checkpoint(request: ImportRequest, source: InputSource) -> bool:
    """Whether the input of ``request``, opened as ``source``, keeps a checkpoint while it is
    imported."""
    info = source.info  # None: stdin
    if request.target.dry_run or info is None or not stat.S_ISREG(info.st_mode):
        return False  # a stream cannot be read again, so there is nothing to resume
    if request.target.sandbox and request.target.sandbox_db is None:
        return False  # a throw-away sandbox: there is nothing to resume into
    # e.g. unsubscribing is idempotent: running the file again is the resume
    return WORDS[request.kind].resumable


def open_checkpoint(
    request: ImportRequest,
    source: InputSource,
    fmt: InputFormat,
    observer: Observer,
    stack: contextlib.ExitStack,
    dialect: Dialect | None = None,
) -> CheckpointWriter | None:
    """Lock, check and load the checkpoint for the input opened as ``source``, or None when
    there is none."""
    if not has_checkpoint(request, source):
        return None
    identity = InputIdentity.opened(request.source.path, info=source.info)  # hashed later
    command = WORDS[request.kind].command
    path = request.resume.checkpoint_path or default_checkpoint_path(command, identity)
    refuse_overwriting_input(request.source.path, path, "--checkpoint")
    stack.enter_context(checkpoint_lock(path))
    options = options_fingerprint(request, fmt, dialect)
    restarted_report = None
    if request.resume.restart:
        restarted_report = _report_of(path)  # the restarted run's report may be replaced
        if discard(path):
            observer.info("--restart: the checkpoint of the earlier run is discarded")
        existing = None
    else:
        existing = load(path)
    existing, identity = continued(request, existing, identity, options, path, observer)
    if existing is not None:
        return CheckpointWriter(path, existing)
    base = Checkpoint.new(WORDS[request.kind].command, identity, options, restarted_report)
    return CheckpointWriter(path, base)


def continued(
    request: ImportRequest,
    existing: Checkpoint | None,
    identity: InputIdentity,
    options: dict[str, Any],
    where: Path,
    observer: Observer,
) -> tuple[Checkpoint | None, InputIdentity]:
    """The interrupted run's checkpoint to continue (None: start from the beginning), and
    the input's identity; refuses a resume that cannot continue it (``where`` is named)."""
    if existing is not None:
        identity = identity.completed()  # to compare with the interrupted run's
    if existing is not None and not request.resume.resume and not existing.offset:
        # It confirmed nothing, so resuming it and starting over are the same run: no need
        # to make the user choose. Kept when it matches, for what its batches may have stored.
        observer.info("the interrupted run of this input confirmed nothing: starting over")
        if existing.identity != identity or option_differences(existing.options, options):
            existing = None
    if existing is not None and not request.resume.resume:
        raise UsageError(
            f"An interrupted run of this input stopped at line {existing.line:,} "
            f"(checkpoint {where}).",
            hint="Add --resume to continue where it stopped, or --restart to start over.",
        )
    if existing is None and request.resume.resume:
        observer.warning("no checkpoint for this input: starting from the beginning")
    if existing is not None:
        if existing.identity != identity:
            raise UsageError(
                f"{request.source.path} has changed since the interrupted run (size, time or "
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
    return existing, identity


def _report_of(path: Path) -> str | None:
    """The errors report named by the checkpoint at ``path``, if it can be read."""
    try:
        existing = load(path)
    except UsageError:
        return None
    return existing.report_path if existing else None


def same_place(recorded: str, path: Path) -> bool:
    return Path(recorded).resolve() == path.resolve()


def continue_report(
    checkpoint: CheckpointWriter | None, path: Path, observer: Observer
) -> int | None:
    """How much of the resumed run's report to keep, when this run writes to the same place.

    A resume may write to another place (after a full disk, say): the new file holds the
    rows from here on, and the checkpoint remembers where the earlier ones are.
    """
    if checkpoint is None:
        return None
    base = checkpoint.base
    if base.report_path is not None and not same_place(base.report_path, path):
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
    path = Path(checkpoint.base.report_path or "")
    return kept_report_size(path, checkpoint.base.report_size, observer)


def kept_report_size(path: Path, recorded: int, observer: Observer) -> int | None:
    """How much of the report at ``path`` to keep: what the checkpoints covered (``recorded``
    bytes), or what is left of it when it is shorter (rows were lost: said). None: nothing."""
    actual = path.stat().st_size if path.exists() else 0
    if actual < recorded:
        observer.warning(
            f"the errors report {path} is shorter than when the run stopped; rows of the "
            "earlier part are missing from it"
        )
        return actual or None
    return recorded or None
