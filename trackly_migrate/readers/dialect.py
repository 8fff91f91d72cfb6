"""How the input is spelled: its encoding (a byte-order mark decides) and its CSV delimiter.

Both are decided from the first bytes of the input, before anything is read, so that a resume
can check them against its checkpoint and a user is told what was chosen.

Delimiter detection, when ``--delimiter`` is not given: the header line is split with each
candidate (``,`` ``;`` tab ``|``, quotes respected, as the CSV reader will split it) and the
candidate whose cells name the most known fields or ``--map`` columns wins; a tie goes to the
earlier candidate in that list, so comma whenever comma does as well as any other.
"""

from __future__ import annotations

import codecs
import csv
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

# Encodings whose newline is more than one byte: lines are cut at whole code units.
WIDE_ENCODINGS = {"utf-16-le": 2, "utf-16-be": 2, "utf-32-le": 4, "utf-32-be": 4}
_BYTE_ORDER_MARKS = (  # UTF-32's before UTF-16's: FF FE 00 00 starts with FF FE
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


def bom_encoding(head: bytes) -> str | None:
    """The UTF-16/32 encoding a byte-order mark at the start of ``head`` announces."""
    for mark, encoding in _BYTE_ORDER_MARKS:
        if head.startswith(mark):
            return encoding
    return None


def detect_delimiter(header_line: str, known_names: Iterable[str], quotechar: str = '"') -> str:
    """The delimiter that splits ``header_line`` into the most known names (see above)."""
    known = folded(tuple(known_names))
    if not any(candidate in header_line for candidate in CANDIDATE_DELIMITERS[1:]) and not any(
        "," in name for name in known
    ):
        # Each other candidate would leave the line whole: one cell, a known name only if
        # comma's split leaves it whole too. Comma wins or ties, and a tie goes to comma.
        return CANDIDATE_DELIMITERS[0]
    return best_scoring(header_line, known, quotechar)


def best_scoring(header_line: str, known: frozenset[str], quotechar: str = '"') -> str:
    """The candidate whose split of ``header_line`` holds the most of the ``known`` (folded)
    names, each candidate tried: what ``detect_delimiter`` decides."""
    best, best_score = CANDIDATE_DELIMITERS[0], -1
    for candidate in CANDIDATE_DELIMITERS:
        try:
            cells = next(csv.reader([header_line], delimiter=candidate, quotechar=quotechar), [])
        except csv.Error:
            continue
        score = sum(1 for cell in cells if _fold(cell.removeprefix("\ufeff")) in known)
        if score > best_score:
            best, best_score = candidate, score
    return best


def header_line(head: bytes, encoding: str) -> str:
    """The first line of ``head`` decoded (a cut-short character or line is fine here)."""
    unit = WIDE_ENCODINGS.get(encoding, 1)
    text = head[: len(head) - len(head) % unit].decode(encoding, "replace")
    return text.removeprefix("\ufeff").split("\n", 1)[0].rstrip("\r")


@functools.lru_cache(maxsize=16)
def folded(names: tuple[str, ...]) -> frozenset[str]:
    """The names as compared: folded once for the files of a run, which share them."""
    return frozenset(_fold(name) for name in names)


def _fold(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


@dataclass(frozen=True)
class Dialect:
    """What was decided: the encoding, delimiter and quote character, and which were detected."""

    encoding: str = "utf-8"
    delimiter: str = ","
    quotechar: str = '"'
    encoding_detected: bool = False
    delimiter_detected: bool = False

    def announcement(self, name: str) -> str | None:
        """The line that tells the user what was detected, when it is not the plain default."""
        parts = []
        if self.encoding_detected:
            parts.append(f"{self.encoding.upper().replace('-LE', ' LE').replace('-BE', ' BE')}")
        if self.delimiter_detected and self.delimiter != ",":
            parts.append(f"{DELIMITER_NAMES[self.delimiter]}-separated")
        if not parts:
            return None
        how = []
        if self.encoding_detected:
            how.append("the encoding from its byte-order mark")
        if self.delimiter_detected and self.delimiter != ",":
            how.append("the delimiter from the header; --delimiter to choose")
        return f"reading {name} as {' '.join(parts)} ({'; '.join(how)})"


def wide_lines(stream: IO[bytes], encoding: str) -> Iterator[bytes]:
    """Lines of a UTF-16/32 stream, each ending with an encoded newline at a code-unit boundary.

    Read with ``readline`` (which stops at any 0x0A byte) and joined until the line really ends,
    so the stream is never read past the line: the byte offsets stay exact for a resume.
    """
    unit = WIDE_ENCODINGS[encoding]
    newline = "\n".encode(encoding)
    little = encoding.endswith("-le")
    line = b""
    while True:
        piece = stream.readline()
        if not piece:
            if line:
                yield line
            return
        line += piece
        if little and line.endswith(b"\n") and (len(line) - 1) % unit == 0:
            line += stream.read(unit - 1)
        if len(line) % unit == 0 and line.endswith(newline):
            yield line
            line = b""


def lines_of(stream: IO[bytes], encoding: str) -> Iterable[bytes]:
    """The stream's lines as bytes: the stream itself unless the encoding is UTF-16/32."""
    return wide_lines(stream, encoding) if encoding in WIDE_ENCODINGS else stream
