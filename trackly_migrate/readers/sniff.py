"""What the input looks like: its format from the name, its encoding, and whether it is text."""

from __future__ import annotations

import codecs
import shlex
from enum import StrEnum
from pathlib import Path

from trackly_migrate.errors import InputError, UsageError
from trackly_migrate.readers.source import STDIN, InputSource


class InputFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


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
    if info.name in {"utf-16", "utf-32"}:
        raise UsageError(
            f"Encoding {encoding} needs a byte order: the file has no byte-order mark.",
            hint=f"Say which: --encoding {info.name}-le (Windows, Excel) or {info.name}-be.",
        )
    return info.name


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
    UTF-16/32 with a byte-order mark and gzip (on stdin too) never get here: they are read.
    """
    for magic, what in _CONTAINERS:
        if head.startswith(magic):
            return (f"is {what}, not CSV or JSON Lines", _EXPORT_HINT)
    if head.startswith(_BZIP2[0]) and head[4:10] == _BZIP2[1]:
        source, target = _command_names(path)
        return ("is bzip2-compressed data", f"Decompress it first: bunzip2 -c {source} > {target}")
    if not head:
        return None
    if b"\n" not in head and head.count(b"\r") > 1:
        source, lf = _command_names(path, "lf")
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
            source, target = _command_names(path)
            return (
                "looks like UTF-16 text without a byte-order mark (every other byte is NUL)",
                "Read it with --encoding utf-16-le (utf-16-be if each NUL comes first), or "
                f"convert it: iconv -f UTF-16LE -t UTF-8 {source} > {target}.",
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


def _command_names(path: str, tag: str = "utf8") -> tuple[str, str]:
    """The input and its converted copy (``tag``) as a hint's shell command names them.
    Worked out only for a hint: a run over many files checks each one, nearly all text."""
    if path == STDIN:
        return "FILE", f"FILE-{tag}"
    return shlex.quote(path), _converted_name(path, tag)


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
