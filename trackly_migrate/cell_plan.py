"""The per-record CSV build, compiled once per run into straight-line code.

Validation runs for every record of the input, and a loop over a list of field steps spends
more time fetching each step's attributes than converting the values (the 1M-row profile of
issue 13: ~4.5 of ~21 s in the loop itself). The plan is known once the header is read, so it
is written out as one function with the positions, field names and common-case conversions
inlined, as ``dataclasses`` and ``namedtuple`` do for their methods.

The compiled function only ever *accepts* a record: whenever anything is missing or a value
does not convert, it hands the cells to the general build, which says precisely why. Both use
the same converters, so a record's outcome is the same whichever path produced it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from types import CodeType
from typing import Any

RowBuild = Callable[[Any], Any]  # a ``RawRow`` in, a record or a ``Rejection`` out

# How each kind of field is converted on the fast path; ``{v}`` is the cell, ``{c}`` its
# converter in the namespace. Each either stores the value or raises ``ValueError``.
_INLINE = {
    "identifier": "record[{name!r}] = {v}.strip()",
    "text": "record[{name!r}] = {v}",
    "integer": (
        "record[{name!r}] = int({v}) if len({v}) < 19 and {v}.isdigit() and {v}.isascii() "
        "else {c}({v})"
    ),
    "boolean": "known = booleans.get({v})\n"
    "record[{name!r}] = known if known is not None else {c}({v})",
    # The exact form the API takes (the common case): checking that the date is real is all.
    "timestamp": (
        "if len({v}) == 20 and {v}[19] == 'Z' and {v}[10] == 'T' and {v}[4] == {v}[7] == '-' "
        "and {v}[13] == {v}[16] == ':':\n"
        "    fromisoformat({v})\n"
        "    record[{name!r}] = {v}\n"
        "else:\n"
        "    record[{name!r}] = {c}({v})"
    ),
    # A number seen lately in exactly this form needs no call (``PhoneNormalizer.recent``).
    "phone": "record[{name!r}] = {v} if {v} in {c}_recent else {c}({v})",
    # A field whose converter has no inline fast path (a timestamp in another format).
    "converted": "record[{name!r}] = {c}({v})",
}

# Kinds whose conversion above refuses a blank cell (``ValueError``): a required one needs no
# blank check of its own, since a blank falls back to the general build, which names it
# missing. (Two method calls a field, on every record.)
_REFUSE_BLANK = frozenset({"phone", "timestamp", "integer", "boolean"})
# Optional fields: the common value converted first, the blank check only for the rest.
_OPTIONAL_FIRST = {
    "integer": (
        "if len({v}) < 19 and {v}.isdigit() and {v}.isascii():\n"
        "    record[{name!r}] = int({v})\n"
        "elif {v} and not {v}.isspace():\n"
        "    record[{name!r}] = {c}({v})"
    ),
    "boolean": "known = booleans.get({v})\n"
    "if known is not None:\n"
    "    record[{name!r}] = known\n"
    "elif {v} and not {v}.isspace():\n"
    "    record[{name!r}] = {c}({v})",
}


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> CodeType:
    """The files of a run over many share their columns, so their builds share one code."""
    return compile(source, "<trackly_migrate.cell_plan>", "exec")


def compile_cells_build(
    steps: Sequence[tuple[str, str, int | None, bool, str | None, Callable[[Any], Any]]],
    general: RowBuild,
    booleans: dict[str, bool],
) -> RowBuild:
    """The fast build for ``steps``: (name, field type, position, required, default, converter).

    It takes a whole ``RawRow`` (one call per record, not two); ``general`` is the reference
    build it hands every row to that it does not accept outright: a row with a problem, a
    JSON object, too few cells, a value that does not convert.
    """
    namespace: dict[str, Any] = {
        "general": general,
        "booleans": booleans,
        "fromisoformat": datetime.fromisoformat,
    }
    blankless = not any(not word or word.isspace() for word in booleans)
    positions = [position for _, _, position, _, _, _ in steps if position is not None]
    width = max(positions) + 1 if positions else 0
    body = [
        "cells = row.data",
        f"if row.problem is not None or type(cells) is not list or len(cells) < {width}:",
        "    return general(row)",
        "record = {}",
        "try:",
    ]
    for index, (name, kind, position, required, default, convert) in enumerate(steps):
        converter = f"convert_{index}"
        namespace[converter] = convert
        if kind == "phone":
            namespace[f"{converter}_recent"] = getattr(convert, "recent", frozenset())
        value = f"value_{index}"
        if position is None:
            if default is None:
                if required:
                    return general  # never accepted: the general build says what is missing
                continue
            namespace[value] = default
            lines = [_INLINE[kind].format(name=name, v=value, c=converter)]
        elif default is None and required and kind in _REFUSE_BLANK:
            lines = [f"{value} = cells[{position}]"]
            lines += _INLINE[kind].format(name=name, v=value, c=converter).splitlines()
        elif default is None and required and kind == "identifier":
            # Blank exactly when nothing is left once stripped (both use str.isspace's set).
            lines = [f"{value} = cells[{position}].strip()", f"if not {value}:"]
            lines += ["    return general(row)", f"record[{name!r}] = {value}"]
        elif default is None and not required and kind in _OPTIONAL_FIRST and blankless:
            lines = [f"{value} = cells[{position}]"]
            lines += _OPTIONAL_FIRST[kind].format(name=name, v=value, c=converter).splitlines()
        else:
            lines = [f"{value} = cells[{position}]", f"if not {value} or {value}.isspace():"]
            if default is not None:
                namespace[f"default_{index}"] = default
                lines.append(f"    {value} = default_{index}")
            elif required:
                lines.append("    return general(row)")
            conversion = _INLINE[kind].format(name=name, v=value, c=converter)
            if default is None and not required:
                # Optional and blank: the field is left out.
                lines[-1] = f"if {value} and not {value}.isspace():"
                lines += ["    " + line for line in conversion.splitlines()]
            else:
                lines += conversion.splitlines()
        body += ["    " + line for line in "\n".join(lines).splitlines()]
    body += ["except ValueError:", "    return general(row)", "return record"]
    source = "def build(row):\n" + "".join(f"    {line}\n" for line in body)
    # The source is built from this module's fragments, field names from the FIELDS table and
    # integer positions only; input values (defaults) are passed in the namespace, never
    # written into the code.
    exec(_compiled(source), namespace)  # noqa: S102
    build: RowBuild = namespace["build"]
    return build
