"""Records of a JSON Lines file, keeping the text of numbers a float cannot hold exactly."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from trackly_migrate.readers.dialect import WIDE_ENCODINGS, lines_of
from trackly_migrate.readers.rows import RawRow, RowProblem
from trackly_migrate.readers.sniff import check_encoding
from trackly_migrate.readers.source import DAMAGE, InputSource, damaged, skip_to

_PLAIN_JSON_TYPES = frozenset({str, int, bool, type(None)})
# A JSON record nested deeper than this is refused (no field is nested at all).
MAX_JSON_DEPTH = 32


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
            skip_to(source.stream, start_offset, 0)

    def __iter__(self) -> Iterator[RawRow]:
        try:
            utf8 = self._encoding in {"utf-8", "utf-8-sig"}
            wide = self._encoding in WIDE_ENCODINGS
            text_encoding = "utf-8" if wide else self._encoding  # of ``raw`` below
            for raw in lines_of(self.source.stream, self._encoding):
                self._offset += len(raw)
                self._line += 1
                if wide:
                    # Read on as UTF-8 (offsets above count the bytes as they are in the file).
                    text = raw.decode(self._encoding, "replace").removeprefix("\ufeff")
                    raw = text.encode("utf-8")
                    if not raw:
                        continue
                # The first line's BOM, or that of a file joined on (raw is never empty).
                if raw[0] == 0xEF and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[3:]
                if not raw.strip():
                    continue
                try:
                    payload: bytes | str = raw if utf8 or wide else raw.decode(self._encoding)
                    value = orjson.loads(payload)
                except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                    message = f"not valid JSON: {_short_json_error(exc)}"
                    yield self._problem(RowProblem("invalid_json", message), raw, text_encoding)
                    continue
                if not isinstance(value, dict):
                    message = f"holds a JSON {_json_type(value)}, not an object"
                    yield self._problem(RowProblem("invalid_record", message), raw, text_encoding)
                    continue
                # Most records hold only strings and integers: one C-level pass over their types.
                suspect = not _PLAIN_JSON_TYPES.issuperset(map(type, value.values()))
                holds_float, too_deep = _scan_json(value) if suspect else (False, False)
                if too_deep:
                    message = f"nests objects or arrays more than {MAX_JSON_DEPTH} levels deep"
                    yield self._problem(RowProblem("invalid_record", message), raw, text_encoding)
                    continue
                if holds_float:
                    value = _with_number_texts(payload, value)
                yield RawRow(self._line, self._offset, self._line + 1, value)
        except DAMAGE as exc:  # the loop's own reads only: nothing is thrown in at yield
            raise damaged(self.source.display_name, self._line, exc) from None

    def _problem(self, problem: RowProblem, raw: bytes, encoding: str) -> RawRow:
        """The line just read, as a row the record builder rejects (its text is reported)."""
        text = raw.decode(encoding, "replace").rstrip("\r\n")
        return RawRow(self._line, self._offset, self._line + 1, None, problem, text=text)


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


def _short_json_error(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "bytes that are not valid UTF-8 (JSON Lines must be UTF-8)"
    return str(exc).split(":", 1)[0]


def _json_type(value: object) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
