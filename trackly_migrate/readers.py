"""Readers: a CSV or JSONL file (plain or gzip, or stdin) as a stream of raw rows.

A reader never validates fields: it only cuts the input into records, each with the physical
line it starts on and the byte offset just past it (what a resume checkpoint needs), and says
when a record cannot be read at all (malformed CSV, bad JSON, undecodable bytes). It reads the
input line by line, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import shlex
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, cast

import orjson

from trackly_migrate.errors import InputDamagedError, InputError, UsageError

# One field may hold a long message, but a runaway quote must not swallow the rest of the file
# into one "field": past this size the record is rejected and reading goes on at the next line.
MAX_FIELD_BYTES = 1 << 20
csv.field_size_limit(MAX_FIELD_BYTES)

STDIN = "-"

# How much of a malformed CSV record's first line is parsed again to keep its readable cells.
READABLE_PREFIX_CHARS = 1 << 16
_PLAIN_JSON_TYPES = frozenset({str, int, bool, type(None)})
# A JSON record nested deeper than this is refused (no field is nested at all).
MAX_JSON_DEPTH = 32
# What reading a damaged file raises: gzip cut short (EOFError), a bad CRC or length
# (BadGzipFile, an OSError), a corrupt deflate stream (zlib.error), a failing disk (OSError).
_DAMAGE = (EOFError, OSError, zlib.error)
# How much of the start of the input is looked at to tell what kind of file it is.
SNIFF_BYTES = 4096


class InputFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why a record could not be read; ``code`` is one of the report's error codes."""

    code: str
    message: str


@dataclass(slots=True)
class RawRow:
    """One input record before validation.

    ``data`` is the list of cells (CSV) or the decoded object (JSONL); ``None`` when the record
    could not be read, in which case ``problem`` says why and ``text`` holds what was there.
    """

    line: int
    end_offset: int
    next_line: int  # the line just past the record: where a resume starts counting
    data: list[str] | dict[str, Any] | None
    problem: RowProblem | None = None
    text: str | None = None


def is_regular_file(path: str) -> bool:
    """A file on disk that can be read again (not stdin, a named pipe or a device)."""
    try:
        return path != STDIN and stat.S_ISREG(Path(path).stat().st_mode)
    except OSError:
        return False


def infer_format(path: str, explicit: InputFormat | None) -> InputFormat:
    """The input format: the explicit one, else from the file name (``.gz`` looked through)."""
    if explicit is not None:
        return explicit
    if path == STDIN:
        raise UsageError(
            "Reading from stdin needs --format.",
            hint="Add --format csv or --format jsonl.",
        )
    name = path.lower().removesuffix(".gz")
    if name.endswith(".csv") or name.endswith(".tsv") or name.endswith(".txt"):
        return InputFormat.CSV
    if name.endswith(".jsonl") or name.endswith(".ndjson") or name.endswith(".json"):
        return InputFormat.JSONL
    if name.endswith((".xlsx", ".xls", ".numbers", ".ods")):
        raise UsageError(
            f"{path} is a spreadsheet; trackly-migrate reads CSV or JSON Lines.",
            hint="Save it as CSV UTF-8 (File → Save As) and import that file.",
        )
    raise UsageError(
        f"Cannot tell the format of {path} from its name.",
        hint="Add --format csv or --format jsonl.",
    )


def check_encoding(encoding: str) -> str:
    """The codec's canonical name; only encodings where a newline byte is always a newline."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise UsageError(
            f"Unknown encoding {encoding!r}.", hint="Try utf-8, cp1252 or latin-1."
        ) from None
    if info.name.startswith(("utf-16", "utf-32")):
        raise UsageError(
            f"Encoding {encoding} is not supported: records are read line by line.",
            hint="Convert the file first, e.g. iconv -f UTF-16 -t UTF-8 in.csv > out.csv",
        )
    return info.name


GZIP_MAGIC = b"\x1f\x8b"


class InputSource:
    """An opened input: the binary stream, its size, and how far it has been read."""

    def __init__(self, path: str, *, start_offset: int = 0) -> None:
        self.path = path
        self.display_name = "<stdin>" if path == STDIN else path
        self._raw: IO[bytes]
        self.total_bytes: int | None = None
        if path == STDIN:
            if start_offset:
                raise UsageError("Cannot resume a run that reads from stdin.")
            self._raw = sys.stdin.buffer
        else:
            file_path = Path(path)
            try:
                self._raw = file_path.open("rb")
            except FileNotFoundError:
                raise InputError(f"{path}: no such file.") from None
            except IsADirectoryError:
                raise InputError(f"{path}: is a folder, not a file.") from None
            except PermissionError:
                raise InputError(f"{path}: permission denied.") from None
            except OSError as exc:
                raise InputError(f"{path}: cannot open ({exc.strerror}).") from None
            info = file_path.stat()
            self.total_bytes = info.st_size if stat.S_ISREG(info.st_mode) else None
        self.stream: IO[bytes] = self._raw
        if self._is_gzip():
            self.stream = cast(IO[bytes], gzip.GzipFile(fileobj=self._raw, mode="rb"))

    def _is_gzip(self) -> bool:
        if self.path == STDIN or not isinstance(self._raw, io.BufferedReader):
            return False
        # peek, not read + seek: a named pipe or <(process substitution) cannot seek.
        head = self._raw.peek(2)[:2]
        if len(head) < 2:  # a pipe that has not written two bytes yet: trust the name
            return self.path.lower().endswith(".gz")
        return head == GZIP_MAGIC

    def head(self) -> bytes:
        """The first bytes of the (decompressed) input, not consumed; empty when unknown."""
        stream = self.stream
        if not isinstance(stream, io.BufferedReader | gzip.GzipFile):
            return b""
        try:
            return stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        except _DAMAGE as exc:
            raise InputError(
                f"{self.display_name}: cannot be read from its first line: {damage_reason(exc)}.",
                hint="Repair the file or fetch it again.",
            ) from None

    def raw_head(self) -> bytes:
        """The first bytes of the input as it is on disk or on stdin (compressed or not)."""
        if isinstance(self._raw, io.BufferedReader):
            return self._raw.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        return b""

    @property
    def bytes_read(self) -> int:
        """Bytes of the file itself read so far (compressed bytes for gzip): drives progress."""
        if self.path == STDIN:
            return 0
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self.stream is not self._raw:
            self.stream.close()
        if self._raw is not sys.stdin.buffer:
            self._raw.close()


class _Lines:
    """Decoded lines of a binary stream, counting lines and bytes, flagging undecodable ones."""

    __slots__ = (
        "_encoding",
        "_name",
        "_stream",
        "_strip_bom",
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
        self._strip_bom = offset == 0 and encoding in {"utf-8", "utf-8-sig"}

    def start_record(self) -> None:
        self.undecodable_since = self.nul_since = None
        self.first_text = None

    def __iter__(self) -> Iterator[str]:
        try:
            for raw in self._stream:
                self.offset += len(raw)
                self.line += 1
                try:
                    text = raw.decode(self._encoding)
                except UnicodeDecodeError:
                    text = raw.decode(self._encoding, "replace")
                    if self.undecodable_since is None:
                        self.undecodable_since = self.line
                if (
                    0 in raw and self.nul_since is None
                ):  # `0 in` is a memchr; `b"\x00" in` is far slower
                    self.nul_since = self.line
                if self._strip_bom:
                    self._strip_bom = False
                    text = text.removeprefix("\ufeff")
                if self.first_text is None:
                    self.first_text = text
                yield text
        except _DAMAGE as exc:  # the loop's own reads only: nothing is thrown in at yield
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
        start_offset: int = 0,
        start_line: int = 1,
    ) -> None:
        if len(delimiter) != 1:
            raise UsageError(f"--delimiter must be one character, not {delimiter!r}.")
        self.source = source
        self._delimiter = delimiter
        self._encoding = check_encoding(encoding)
        name = source.display_name
        header_lines = _Lines(source.stream, self._encoding, offset=0, line=0, name=name)
        header_reader = csv.reader(iter(header_lines), delimiter=delimiter, strict=True)
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
            _skip_to(source.stream, start_offset, self.header_end)
            self._lines = _Lines(
                source.stream, self._encoding, offset=start_offset, line=start_line - 1, name=name
            )
        else:
            self._lines = header_lines

    def __iter__(self) -> Iterator[RawRow]:
        lines = self._lines
        reader = csv.reader(iter(lines), delimiter=self._delimiter, strict=True)
        width = len(self.columns)
        while True:
            start = lines.line + 1
            lines.start_record()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RawRow(
                    start,
                    lines.offset,
                    lines.line + 1,
                    self._readable_cells(lines.first_text),
                    RowProblem("malformed_row", _csv_problem(exc, start, lines.line)),
                )
                continue
            if not cells:
                continue  # a blank line separates nothing and counts as no record
            if lines.nul_since is not None:
                # Text never holds NUL: binary bytes in the file, which must not be sent.
                yield RawRow(
                    start,
                    lines.offset,
                    lines.line + 1,
                    cells,
                    RowProblem(
                        "invalid_encoding",
                        f"line {lines.nul_since} holds a NUL byte: binary data, not text",
                    ),
                )
                continue
            if lines.undecodable_since is not None:
                yield RawRow(
                    start,
                    lines.offset,
                    lines.line + 1,
                    cells,
                    RowProblem(
                        "invalid_encoding",
                        f"line {lines.undecodable_since} is not valid {self._encoding}; "
                        "use --encoding (for example cp1252) to read it",
                    ),
                )
                continue
            if len(cells) != width:
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
                continue
            yield RawRow(start, lines.offset, lines.line + 1, cells)

    def _readable_cells(self, first_line: str | None) -> list[str] | None:
        """The cells that can still be read from a malformed record's first line.

        They keep the record's id (usually in a leading column) for the report. Only a
        bounded prefix is parsed, and the cell it cuts (or the bad quote starts) is dropped.
        """
        if not first_line:
            return None
        prefix = first_line[:READABLE_PREFIX_CHARS]
        try:
            cells = next(csv.reader([prefix], delimiter=self._delimiter, strict=True))
        except csv.Error:
            try:
                cells = next(csv.reader([prefix], delimiter=self._delimiter, strict=False), [])
            except csv.Error:  # a carriage return inside the line, say
                return None
            cells = cells[:-1]
        else:
            if len(prefix) < len(first_line):
                cells = cells[:-1]
        return cells or None


class JsonlReader:
    """Records of a JSON Lines file: one object per line, blank lines skipped."""

    columns: list[str] | None = None

    def __init__(
        self,
        source: InputSource,
        *,
        encoding: str = "utf-8",
        start_offset: int = 0,
        start_line: int = 1,
    ) -> None:
        self.source = source
        self._encoding = check_encoding(encoding)
        self._offset = start_offset
        self._line = start_line - 1
        if start_offset:
            _skip_to(source.stream, start_offset, 0)

    def __iter__(self) -> Iterator[RawRow]:
        try:
            utf8 = self._encoding in {"utf-8", "utf-8-sig"}
            for raw in self.source.stream:
                self._offset += len(raw)
                self._line += 1
                # The first line's BOM, or that of a file joined on (raw is never empty).
                if raw[0] == 0xEF and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[3:]
                if not raw.strip():
                    continue
                try:
                    payload: bytes | str = raw if utf8 else raw.decode(self._encoding)
                    value = orjson.loads(payload)
                except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                    yield RawRow(
                        self._line,
                        self._offset,
                        self._line + 1,
                        None,
                        RowProblem("invalid_json", f"not valid JSON: {_short_json_error(exc)}"),
                        text=raw.decode(self._encoding, "replace").rstrip("\r\n"),
                    )
                    continue
                if not isinstance(value, dict):
                    yield RawRow(
                        self._line,
                        self._offset,
                        self._line + 1,
                        None,
                        RowProblem(
                            "invalid_record", f"holds a JSON {_json_type(value)}, not an object"
                        ),
                        text=raw.decode(self._encoding, "replace").rstrip("\r\n"),
                    )
                    continue
                # Most records hold only strings and integers: one C-level pass over their types.
                suspect = not _PLAIN_JSON_TYPES.issuperset(map(type, value.values()))
                holds_float, too_deep = _scan_json(value) if suspect else (False, False)
                if too_deep:
                    yield RawRow(
                        self._line,
                        self._offset,
                        self._line + 1,
                        None,
                        RowProblem(
                            "invalid_record",
                            f"nests objects or arrays more than {MAX_JSON_DEPTH} levels deep",
                        ),
                        text=raw.decode(self._encoding, "replace").rstrip("\r\n"),
                    )
                    continue
                if holds_float:
                    value = _with_number_texts(payload, value)
                yield RawRow(self._line, self._offset, self._line + 1, value)
        except _DAMAGE as exc:  # the loop's own reads only: nothing is thrown in at yield
            raise damaged(self.source.display_name, self._line, exc) from None


class JsonNumber(float):
    """A JSON number that orjson could only give as a float, keeping the text it was written as.

    ``1.10`` would come back as ``1.1`` and ``100000000000000000000000`` (past 64 bits) as
    ``1e+23``; the errors report must show what the input said. It is a float to everything
    that validates it; ``repr`` and ``str`` give the original text.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonNumber:
        number = super().__new__(cls, float(text))
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def _big_or_exact_int(text: str) -> int | JsonNumber:
    number = int(text)
    return number if -(2**63) <= number < 2**64 else JsonNumber(text)


def _scan_json(value: dict[str, Any]) -> tuple[bool, bool]:
    """(holds a float anywhere, nests deeper than ``MAX_JSON_DEPTH``), without recursion.

    A float is where orjson may have lost the text of a number; no field is ever nested, and
    a value nested hundreds deep could not even be written back into the report.
    """
    holds_float = False
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        items: Iterable[Any] = container.values() if type(container) is dict else container
        for item in items:
            kind = type(item)
            if kind is float:
                holds_float = True
            elif kind is dict or kind is list:
                if depth >= MAX_JSON_DEPTH:
                    return holds_float, True
                stack.append((item, depth + 1))
    return holds_float, False


def _with_number_texts(payload: bytes | str, value: dict[str, Any]) -> dict[str, Any]:
    """``payload`` decoded again with each float as a ``JsonNumber`` (orjson's value if not)."""
    try:
        exact = json.loads(payload, parse_float=JsonNumber, parse_int=_big_or_exact_int)
    except (ValueError, RecursionError):
        return value
    return exact if isinstance(exact, dict) else value


def json_default(value: Any) -> Any:
    """``orjson.dumps``'s ``default``: a ``JsonNumber`` is written as the text it was read as."""
    if isinstance(value, JsonNumber):
        return orjson.Fragment(value.text)
    raise TypeError


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


def _skip_to(stream: IO[bytes], offset: int, current: int) -> None:
    """Move a stream forward to ``offset`` (gzip streams can only be read forward)."""
    if isinstance(stream, io.BufferedReader | io.FileIO):
        stream.seek(offset)
        return
    remaining = offset - current
    while remaining > 0:
        try:
            chunk = stream.read(min(remaining, 1 << 20))
        except _DAMAGE as exc:
            raise InputError(
                f"The input cannot be read up to where the checkpoint says: {damage_reason(exc)}."
            ) from None
        if not chunk:
            raise InputError("The input is shorter than the checkpoint says; it has changed.")
        remaining -= len(chunk)


def _short_json_error(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "bytes that are not valid UTF-8 (JSON Lines must be UTF-8)"
    return str(exc).split(":", 1)[0]


def _json_type(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def damage_reason(exc: BaseException) -> str:
    """What a read error means, in words: a damaged gzip file is the usual cause."""
    if isinstance(exc, EOFError):
        return "the compressed data is cut short (an incomplete download or copy?)"
    if isinstance(exc, gzip.BadGzipFile):
        text = str(exc)
        if text.startswith("Not a gzipped file"):
            return "unreadable bytes after the compressed data (two files joined?)"
        return f"the compressed data is corrupt ({text})"
    if isinstance(exc, zlib.error):
        return f"the compressed data is corrupt ({exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"read error: {exc.strerror}"
    return f"read error: {exc}"


def damaged(name: str, line: int, exc: BaseException) -> InputDamagedError:
    """The error that ends a run whose input breaks off after ``line``."""
    return InputDamagedError(
        f"{name}: the input breaks off after line {line:,}: {damage_reason(exc)}. "
        f"Reading stopped there; every record before it is accounted for.",
        hint="Repair the file or fetch it again, then import the repaired file (add --restart "
        "if a checkpoint was kept: a changed file cannot be resumed, and records already "
        "imported come back as duplicates). --resume continues from the checkpoint only while "
        "the file is unchanged, e.g. after a passing disk or network read error.",
    )


_BYTE_ORDER_MARKS = (  # UTF-32's before UTF-16's: FF FE 00 00 starts with FF FE
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_CONTAINERS = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx, .ods or .numbers spreadsheet is one)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office file (an .xls spreadsheet?)"),
    (b"%PDF-", "a PDF document"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_BZIP2 = (b"BZh", b"1AY&SY")
_CONTROL_BYTES = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}  # NUL included


def describe_non_text(head: bytes, raw_head: bytes, path: str) -> tuple[str, str] | None:
    """What the input is when it is not text in a one-byte-per-ASCII encoding, and what to do.

    ``head`` is the start of the input as it will be read (after gzip), ``raw_head`` as it is
    on disk or on stdin. None: it looks like text (line by line parsing finds any other fault).
    """
    source, target = ("FILE", "FILE-utf8") if path == STDIN else (path, _converted_name(path))
    source = shlex.quote(source)
    for mark, encoding in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return (
                f"is {encoding} text (it starts with a {encoding} byte-order mark), which is "
                "not read directly: records are read line by line in a one-byte encoding",
                f"Convert it to UTF-8 first: iconv -f {encoding} -t UTF-8 {source} > {target} "
                f"(or in Excel: Save As → CSV UTF-8), then import {target}.",
            )
    if path == STDIN and raw_head.startswith(GZIP_MAGIC):
        return (
            "is gzip-compressed data",
            "Give the .gz file's path instead of - (gzip files are read directly), "
            "or decompress the stream first: zcat FILE.gz | trackly-migrate ... -",
        )
    for magic, what in _CONTAINERS:
        if head.startswith(magic):
            return (f"is {what}, not CSV or JSON Lines", _EXPORT_HINT)
    if head.startswith(_BZIP2[0]) and head[4:10] == _BZIP2[1]:
        return ("is bzip2-compressed data", f"Decompress it first: bunzip2 -c {source} > {target}")
    if not head:
        return None
    if b"\n" not in head and head.count(b"\r") > 1:
        lf = "FILE-lf" if path == STDIN else _converted_name(path, "lf")
        return (
            "ends its lines with a carriage return alone (CR, the old Mac format)",
            f"Convert the line ends first: tr '\\r' '\\n' < {source} > {lf}, then import {lf}.",
        )
    nuls = head.count(0)
    utf8 = _is_utf8(head)
    if nuls:
        even = head[0::2].count(0)
        if nuls * 4 >= len(head) and max(even, nuls - even) * 10 >= nuls * 9:
            # ASCII text in UTF-16 without a byte-order mark: every other byte is NUL.
            return (
                "looks like UTF-16 text without a byte-order mark (every other byte is NUL)",
                f"Convert it to UTF-8 first: iconv -f UTF-16LE -t UTF-8 {source} > {target} "
                f"(UTF-16BE if each NUL comes first), then import {target}.",
            )
        if utf8 and nuls * 100 >= len(head):
            return ("holds NUL bytes: it is binary data, not text", _EXPORT_HINT)
    if not utf8:
        # Text in a one-byte encoding has next to no control bytes; random bytes have 1 in 10.
        control = sum(1 for byte in head if byte in _CONTROL_BYTES)
        if control * 20 > len(head):
            return (
                f"does not look like text ({control} control bytes in the first {len(head)})",
                _EXPORT_HINT,
            )
    return None


def _is_utf8(head: bytes) -> bool:
    """Whether ``head`` is valid UTF-8, allowing a character cut short at its end."""
    try:
        codecs.utf_8_decode(head, "strict", False)
    except UnicodeDecodeError:
        return False
    return True


def _converted_name(path: str, tag: str = "utf8") -> str:
    """Where a converted copy of ``path`` goes: ``sends.csv`` → ``sends-utf8.csv``."""
    file = Path(path)
    name = file.name.removesuffix(".gz").removesuffix(".bz2")
    stem, dot, suffix = name.rpartition(".")
    converted = f"{stem}-{tag}.{suffix}" if dot and stem else f"{name}-{tag}"
    return shlex.quote(str(file.with_name(converted)))


_EXPORT_HINT = (
    "Check that this is the export you meant: trackly-migrate reads CSV or JSON Lines text "
    "(plain or gzip); save spreadsheets as CSV UTF-8."
)


def check_looks_like_text(source: InputSource) -> None:
    """Refuse an input that is not text at all, saying what it looks like (see above)."""
    problem = describe_non_text(source.head(), source.raw_head(), source.path)
    if problem is not None:
        what, hint = problem
        raise InputError(f"{source.display_name} {what}.", hint=hint)


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
