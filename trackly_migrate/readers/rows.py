"""What a reader yields: one input record before validation, or why it cannot be read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
