"""Opening one input file: its dialect, checkpoint, reader, column mapping and record builder.

A run over one file (``run.py``) and each file of a run over several (``chain.py``) are
opened the same way, in the same order: the checkpoint before the reader, so that a refusal
(a changed file, a checkpoint of another command) comes before anything of the file is read,
and the reader at the checkpoint's place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from trackly_migrate.checkpoint_writer import CheckpointWriter
from trackly_migrate.columns import ColumnMapping, resolve_columns
from trackly_migrate.normalize import PhoneNormalizer
from trackly_migrate.pipeline import resume
from trackly_migrate.pipeline.parts import EngineInput
from trackly_migrate.pipeline.ports import Observer, Position
from trackly_migrate.pipeline.request import ImportRequest, Normalization
from trackly_migrate.readers import (
    Dialect,
    InputFormat,
    InputSource,
    Reader,
    infer_format,
    open_reader,
    sniff_dialect,
)
from trackly_migrate.records import FIELDS, REPORT_COLUMNS, RecordBuilder

# How a file's checkpoint is found and locked (``resume.open_checkpoint``): None, none kept.
CheckpointOpener = Callable[
    [ImportRequest, InputSource, InputFormat, Observer, contextlib.ExitStack, Dialect],
    CheckpointWriter | None,
]


@dataclass
class OpenedInput:
    """One input file, open and positioned, with what turns its rows into records."""

    source: InputSource
    fmt: InputFormat
    checkpoint: CheckpointWriter | None
    start: Position | None  # where a resumed run goes on; None from the beginning
    reader: Reader
    mapping: ColumnMapping
    builder: RecordBuilder

    @property
    def columns(self) -> list[str] | None:
        return self.reader.columns

    def engine_input(self) -> EngineInput:
        source = self.source
        checkpoint = self.checkpoint
        return EngineInput(
            rows=self.reader,
            builder=self.builder,
            bytes_read=lambda: source.bytes_read,
            total_bytes=source.total_bytes,
            start=self.start or Position(0, 1),
            possibly_stored_until=checkpoint.base.submitted_until if checkpoint else 0,
        )


# Builders kept by a run over several files: more distinct headers than this in one run are
# rare, and each builder holds its converters and compiled function.
MAX_KEPT_BUILDERS = 8


class RecordBuilders:
    """The record builders of one run, one for each column mapping its files have.

    The files of an export in parts share their header, so they share one builder (its
    converters and its per-record function, compiled for the header): making one for each
    file cost about 0.2 ms of the reading thread a file (issue 14, item 5). ``phones`` is
    the number cache every file of the run shares.
    """

    def __init__(self, normalization: Normalization, phones: PhoneNormalizer | None) -> None:
        self._normalization = normalization
        self._phones = phones
        self._kept: dict[tuple[object, ...], RecordBuilder] = {}

    def for_mapping(self, mapping: ColumnMapping, *, unescape_report_cells: bool) -> RecordBuilder:
        key = (
            mapping.kind,
            mapping.header,
            tuple(mapping.sources.items()),
            tuple(mapping.indexes.items()),
            unescape_report_cells,
        )
        builder = self._kept.get(key)
        if builder is None:
            normalization = self._normalization
            builder = RecordBuilder(
                mapping,
                default_region=normalization.default_region,
                timezone=normalization.zone,
                defaults=normalization.defaults,
                unescape_report_cells=unescape_report_cells,
                timestamp_formats=normalization.timestamp_formats,
                phones=self._phones,
            )
            if len(self._kept) >= MAX_KEPT_BUILDERS:
                del self._kept[next(iter(self._kept))]  # the oldest
            self._kept[key] = builder
        return builder


def known_names(request: ImportRequest) -> list[str]:
    """Column names the delimiter detection may recognise in a header line."""
    return [
        *(spec.name for spec in FIELDS[request.kind]),
        *request.normalization.fields.values(),
        *REPORT_COLUMNS,
    ]


def sniff(source: InputSource, fmt: InputFormat, request: ImportRequest) -> Dialect:
    """The file's encoding, delimiter and quote character, as the options and its head say."""
    options = request.source
    return sniff_dialect(
        source,
        fmt,
        encoding=options.encoding,
        delimiter=options.delimiter,
        quotechar=options.quotechar,
        known_names=known_names(request),
    )


def read_from(
    source: InputSource, fmt: InputFormat, dialect: Dialect, start: Position | None = None
) -> Reader:
    return open_reader(
        source,
        fmt,
        encoding=dialect.encoding,
        delimiter=dialect.delimiter,
        quotechar=dialect.quotechar,
        start_offset=start.offset if start else 0,
        start_line=start.line if start else 1,
    )


def open_input(
    request: ImportRequest,
    observer: Observer,
    stack: contextlib.ExitStack,
    *,
    builders: RecordBuilders | None = None,
    warning_prefix: str = "",
    open_checkpoint: CheckpointOpener = resume.open_checkpoint,
) -> OpenedInput:
    """Open ``request.source.path`` for importing; what it opens is closed by ``stack``.

    ``builders``: the record builders of the run, shared by its files (by default, the
    file's own, with a number cache of its own). ``warning_prefix`` names the
    file in warnings where a run reads several. ``open_checkpoint``: where the file's
    checkpoint is (a run over several files keeps them in the list's, ``list_checkpoint.py``).
    """
    fmt = infer_format(request.source.path, request.source.format)
    source = InputSource(request.source.path)
    stack.callback(source.close)
    dialect = sniff(source, fmt, request)
    checkpoint = open_checkpoint(request, source, fmt, observer, stack, dialect)
    start = Position(checkpoint.base.offset, checkpoint.base.line) if checkpoint else None
    announcement = dialect.announcement(source.display_name)
    if announcement is not None:
        observer.info(announcement)
    reader = read_from(source, fmt, dialect, start)
    columns = reader.columns
    normalization = request.normalization
    mapping = resolve_columns(
        request.kind,
        columns,
        normalization.fields,
        source_name=source.display_name,
        provided=normalization.defaults,
    )
    if mapping.unknown_columns and not (start and start.offset):
        observer.warning(
            f"{warning_prefix}ignoring column(s) not used by "
            f"{request.kind}: {', '.join(mapping.unknown_columns)}"
        )
    builders = builders or RecordBuilders(normalization, None)
    builder = builders.for_mapping(
        mapping, unescape_report_cells=columns is not None and REPORT_COLUMNS[0] in columns
    )
    return OpenedInput(source, fmt, checkpoint, start, reader, mapping, builder)
