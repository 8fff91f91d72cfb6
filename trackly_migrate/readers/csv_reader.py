"""Records of a CSV file, each with its first line and the byte offset just past it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO

from trackly_migrate.errors import InputDamagedError, InputError, UsageError
from trackly_migrate.readers.dialect import WIDE_ENCODINGS, lines_of
from trackly_migrate.readers.rows import RawRow, RowProblem
from trackly_migrate.readers.sniff import check_encoding
from trackly_migrate.readers.source import DAMAGE, InputSource, damaged, skip_to

# One field may hold a long message, but a runaway quote must not swallow the rest of the file
# into one "field": past this size the record is rejected and reading goes on at the next line.
MAX_FIELD_BYTES = 1 << 20
csv.field_size_limit(MAX_FIELD_BYTES)

# How much of a malformed CSV record's first line is parsed again to keep its readable cells.
READABLE_PREFIX_CHARS = 1 << 16


class _Lines:
    """Decoded lines of a binary stream, counting lines and bytes, flagging undecodable ones."""

    __slots__ = (
        "_encoding",
        "_name",
        "_stream",
        "_strip_bom",
        "_wide",
        "first_text",
        "line",
        "nul_since",
        "offset",
        "undecodable_since",
    )

    def __init__(
        self, stream: IO[bytes], encoding: str, *, offset: int, line: int, name: str = ""
    ) -> None:
        self._stream = stream
        self._name = name
        self._encoding = encoding
        self.offset = offset
        self.line = line  # lines consumed so far
        self.undecodable_since: int | None = None  # first undecodable line of the current record
        self.nul_since: int | None = None  # first line of the current record with a NUL byte
        self.first_text: str | None = None  # the current record's first line
        self._wide = encoding in WIDE_ENCODINGS
        self._strip_bom = offset == 0 and (encoding in {"utf-8", "utf-8-sig"} or self._wide)

    def start_record(self) -> None:
        self.undecodable_since = self.nul_since = None
        self.first_text = None

    def __iter__(self) -> Iterator[str]:
        try:
            for raw in lines_of(self._stream, self._encoding):
                self.offset += len(raw)
                self.line += 1
                try:
                    text = raw.decode(self._encoding)
                except UnicodeDecodeError:
                    text = raw.decode(self._encoding, "replace")
                    if self.undecodable_since is None:
                        self.undecodable_since = self.line
                # `0 in` is a memchr; `b"\x00" in` is far slower. UTF-16/32 hold NUL bytes
                # in every ASCII character: only a decoded NUL counts there.
                if 0 in raw and self.nul_since is None and (not self._wide or "\x00" in text):
                    self.nul_since = self.line
                if self._strip_bom:
                    self._strip_bom = False
                    text = text.removeprefix("\ufeff")
                if self.first_text is None:
                    self.first_text = text
                yield text
        except DAMAGE as exc:  # the loop's own reads only: nothing is thrown in at yield
            raise damaged(self._name, self.line, exc) from None


class CsvReader:
    """Records of a CSV file with a header row.

    Multi-line quoted fields, CRLF, a BOM and any one-character delimiter are handled; a row
    whose cell count differs from the header's is reported, never silently padded or cut.
    """

    def __init__(
        self,
        source: InputSource,
        *,
        encoding: str = "utf-8",
        delimiter: str = ",",
        quotechar: str = '"',
        start_offset: int = 0,
        start_line: int = 1,
    ) -> None:
        if len(delimiter) != 1:
            raise UsageError(f"--delimiter must be one character, not {delimiter!r}.")
        self.source = source
        self._delimiter = delimiter
        self._quotechar = quotechar
        self._encoding = check_encoding(encoding)
        name = source.display_name
        header_lines = _Lines(source.stream, self._encoding, offset=0, line=0, name=name)
        header_reader = csv.reader(
            iter(header_lines), delimiter=delimiter, quotechar=quotechar, strict=True
        )
        try:
            header = next(header_reader, None)
        except csv.Error as exc:
            raise _bad_header(source, exc) from None
        except InputDamagedError as exc:  # nothing was sent yet: an unreadable input
            raise InputError(exc.message, hint="Repair the file or fetch it again.") from None
        if not header:
            raise InputError(
                f"{source.display_name}: the file is empty (no header row).",
                hint="A CSV file starts with a header row naming its columns, e.g. "
                "id,to_number,timestamp.",
            )
        self.columns = [name.strip() for name in header]
        self.header_end = header_lines.offset
        self.header_lines = header_lines.line
        if start_offset > self.header_end:
            skip_to(source.stream, start_offset, self.header_end)
            self._lines = _Lines(
                source.stream, self._encoding, offset=start_offset, line=start_line - 1, name=name
            )
        else:
            self._lines = header_lines

    def __iter__(self) -> Iterator[RawRow]:
        lines = self._lines
        reader = csv.reader(
            iter(lines), delimiter=self._delimiter, quotechar=self._quotechar, strict=True
        )
        width = len(self.columns)
        # The for loop is the per-record path (a ``next`` per record cost more than the
        # checks); a row the csv module refuses ends it, and it starts again past that row.
        while True:
            start = lines.line + 1
            lines.start_record()
            try:
                for cells in reader:
                    if not cells:
                        pass  # a blank line separates nothing and counts as no record
                    elif lines.nul_since is not None or lines.undecodable_since is not None:
                        problem = RowProblem("invalid_encoding", self._encoding_problem(lines))
                        yield RawRow(start, lines.offset, lines.line + 1, cells, problem)
                    elif len(cells) != width:
                        yield RawRow(
                            start,
                            lines.offset,
                            lines.line + 1,
                            cells,
                            RowProblem(
                                "malformed_row",
                                f"has {len(cells)} fields but the header has {width}"
                                + (" (is the file cut short?)" if len(cells) < width else ""),
                            ),
                        )
                    else:
                        yield RawRow(start, lines.offset, lines.line + 1, cells)
                    start = lines.line + 1
                    lines.undecodable_since = lines.nul_since = lines.first_text = None
                return
            except csv.Error as exc:
                yield RawRow(
                    start,
                    lines.offset,
                    lines.line + 1,
                    self._readable_cells(lines.first_text),
                    RowProblem("malformed_row", _csv_problem(exc, start, lines.line)),
                )

    def _encoding_problem(self, lines: _Lines) -> str:
        if lines.nul_since is not None:
            # Text never holds NUL: binary bytes in the file, which must not be sent.
            return f"line {lines.nul_since} holds a NUL byte: binary data, not text"
        return (
            f"line {lines.undecodable_since} is not valid {self._encoding}; "
            "use --encoding (for example cp1252) to read it"
        )

    def _readable_cells(self, first_line: str | None) -> list[str] | None:
        """The cells that can still be read from a malformed record's first line.

        They keep the record's id (usually in a leading column) for the report. Only a
        bounded prefix is parsed, and the cell it cuts (or the bad quote starts) is dropped.
        """
        if not first_line:
            return None
        prefix = first_line[:READABLE_PREFIX_CHARS]
        try:
            cells = next(
                csv.reader(
                    [prefix], delimiter=self._delimiter, quotechar=self._quotechar, strict=True
                )
            )
        except csv.Error:
            try:
                lenient = csv.reader(
                    [prefix], delimiter=self._delimiter, quotechar=self._quotechar, strict=False
                )
                cells = next(lenient, [])
            except csv.Error:  # a carriage return inside the line, say
                return None
            cells = cells[:-1]
        else:
            if len(prefix) < len(first_line):
                cells = cells[:-1]
        return cells or None


def _csv_problem(exc: csv.Error, start: int, end: int) -> str:
    if str(exc) == "unexpected end of data":
        span = f"line {start}" if end <= start else f"lines {start}-{end}"
        return (
            f"not valid CSV: a quote opened here is never closed, so {span} (to the end of "
            "the file) were read as one record"
        )
    return f"not valid CSV: {exc}"


def _bad_header(source: InputSource, exc: csv.Error) -> InputError:
    return InputError(
        f"{source.display_name}:1: the header row is not valid CSV ({exc}).",
        hint="The first line must name the columns, e.g. id,to_number,timestamp; check its "
        "quotes and --delimiter.",
    )
