"""Readers: a CSV or JSONL file (plain or gzip, or stdin) as a stream of raw rows.

A reader never validates fields: it only cuts the input into records, each with the physical
line it starts on and the byte offset just past it (what a resume checkpoint needs), and says
when a record cannot be read at all (malformed CSV, bad JSON, undecodable bytes). It reads the
input line by line, so memory stays flat whatever the file size.
"""

from __future__ import annotations

from trackly_migrate.readers.csv_reader import MAX_FIELD_BYTES, CsvReader
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
    "CsvReader",
    "InputFormat",
    "InputSource",
    "JsonNumber",
    "JsonlReader",
    "RawRow",
    "Reader",
    "RowProblem",
    "check_encoding",
    "check_looks_like_text",
    "damage_reason",
    "damaged",
    "describe_non_text",
    "infer_format",
    "is_regular_file",
    "json_default",
    "open_reader",
]

Reader = CsvReader | JsonlReader


def open_reader(
    source: InputSource,
    fmt: InputFormat,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    start_offset: int = 0,
    start_line: int = 1,
) -> Reader:
    """The reader for ``fmt`` over ``source``, positioned at ``start_offset`` for a resume.

    A file that is not text at all (binary, UTF-16/32, compressed on stdin) is refused here,
    saying what it looks like, before the first line is parsed into nonsense.
    """
    if not start_offset:
        check_encoding(encoding)
        check_looks_like_text(source)
    if fmt is InputFormat.CSV:
        return CsvReader(
            source,
            encoding=encoding,
            delimiter=delimiter,
            start_offset=start_offset,
            start_line=start_line,
        )
    return JsonlReader(source, encoding=encoding, start_offset=start_offset, start_line=start_line)
