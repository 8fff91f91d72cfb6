"""Readers: a CSV or JSONL file (plain or gzip, or stdin) as a stream of raw rows.

A reader never validates fields: it only cuts the input into records, each with the physical
line it starts on and the byte offset just past it (what a resume checkpoint needs), and says
when a record cannot be read at all (malformed CSV, bad JSON, undecodable bytes). It reads the
input line by line, so memory stays flat whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterable

from trackly_migrate.readers.csv_reader import MAX_FIELD_BYTES, CsvReader
from trackly_migrate.readers.dialect import (
    WIDE_ENCODINGS,
    Dialect,
    bom_encoding,
    detect_delimiter,
    header_line,
)
from trackly_migrate.readers.jsonl_reader import (
    MAX_JSON_DEPTH,
    JsonlReader,
    JsonNumber,
    json_default,
)
from trackly_migrate.readers.rows import RawRow, RowProblem
from trackly_migrate.readers.sniff import (
    InputFormat,
    check_encoding,
    check_looks_like_text,
    describe_non_text,
    infer_format,
)
from trackly_migrate.readers.source import (
    GZIP_MAGIC,
    SNIFF_BYTES,
    STDIN,
    InputSource,
    damage_reason,
    damaged,
    is_regular_file,
)

__all__ = [
    "GZIP_MAGIC",
    "MAX_FIELD_BYTES",
    "MAX_JSON_DEPTH",
    "SNIFF_BYTES",
    "STDIN",
    "WIDE_ENCODINGS",
    "CsvReader",
    "Dialect",
    "InputFormat",
    "InputSource",
    "JsonNumber",
    "JsonlReader",
    "RawRow",
    "Reader",
    "RowProblem",
    "bom_encoding",
    "check_encoding",
    "check_looks_like_text",
    "damage_reason",
    "damaged",
    "describe_non_text",
    "detect_delimiter",
    "header_line",
    "infer_format",
    "is_regular_file",
    "json_default",
    "open_reader",
    "sniff_dialect",
]

Reader = CsvReader | JsonlReader


def open_reader(
    source: InputSource,
    fmt: InputFormat,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    quotechar: str = '"',
    start_offset: int = 0,
    start_line: int = 1,
) -> Reader:
    """The reader for ``fmt`` over ``source``, positioned at ``start_offset`` for a resume.

    A UTF-16/32 byte-order mark decides the encoding. A file that is not text at all (binary,
    UTF-16 without a mark) is refused here, saying what it looks like, before the first line
    is parsed into nonsense.
    """
    encoding = bom_encoding(source.head()) or encoding
    if not start_offset:
        check_encoding(encoding)
        if encoding not in WIDE_ENCODINGS:  # their ASCII characters hold NUL bytes
            check_looks_like_text(source)
    if fmt is InputFormat.CSV:
        return CsvReader(
            source,
            encoding=encoding,
            delimiter=delimiter,
            quotechar=quotechar,
            start_offset=start_offset,
            start_line=start_line,
        )
    return JsonlReader(source, encoding=encoding, start_offset=start_offset, start_line=start_line)


def sniff_dialect(
    source: InputSource,
    fmt: InputFormat,
    *,
    encoding: str,
    delimiter: str | None,
    quotechar: str = '"',
    known_names: Iterable[str] = (),
) -> Dialect:
    """The encoding (a byte-order mark wins) and, for CSV, the delimiter given or detected.

    Looked at before the first record is read, from the first bytes (not consumed), so a
    resume can compare it with its checkpoint; ``known_names`` are the field and ``--map``
    column names the delimiter detection counts (``readers/dialect.py``).
    """
    head = source.head()
    marked = bom_encoding(head)
    chosen = check_encoding(marked or encoding)
    detect = fmt is InputFormat.CSV and delimiter is None
    if detect:
        delimiter = detect_delimiter(header_line(head, chosen), known_names, quotechar)
    return Dialect(
        encoding=chosen,
        delimiter=delimiter or ",",
        quotechar=quotechar,
        encoding_detected=marked is not None,
        delimiter_detected=detect,
    )
