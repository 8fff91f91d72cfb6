"""Recipes: one source platform's export described once, in a TOML file (``--recipe``).

A recipe says what ``--map``, ``--default-region``, ``--timezone``, ``--timestamp-format``,
``--encoding`` and ``--delimiter`` would say for every export of that platform::

    default_region = "US"
    timezone = "America/New_York"

    [map]
    id = "MessageID"
    to_number = "Recipient"

Values given on the command line win: ``recipe.overridden_by(given)`` replaces each value
``given`` sets, and merges ``map`` field by field, so ``--map id=Sid`` changes one column and
keeps the recipe's others. The values are checked where the command line's are checked (the
import request); this module checks only the recipe's shape.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trackly_migrate.errors import UsageError

RECIPE_KEYS = ("map", "default_region", "timezone", "timestamp_format", "encoding", "delimiter")

TimestampFormat = str | Sequence[str] | Mapping[str, str]  # "epoch", FIELD=FORMAT, {field: format}


@dataclass(frozen=True)
class Recipe:
    """How to read one platform's export; ``None`` (or an empty ``map``) means "not said"."""

    map: Mapping[str, str] = field(default_factory=dict)  # {Trackly field: source column}
    default_region: str | None = None
    timezone: str | None = None
    timestamp_format: TimestampFormat | None = None
    encoding: str | None = None
    delimiter: str | None = None

    def overridden_by(self, given: Recipe) -> Recipe:
        """This recipe with every value ``given`` sets in its place; ``map`` field by field."""
        changes = {
            name: getattr(given, name)
            for name in RECIPE_KEYS
            if name != "map" and getattr(given, name) is not None
        }
        return dataclasses.replace(self, map={**self.map, **given.map}, **changes)


def merged_map_options(recipe_map: Mapping[str, str], options: Sequence[str]) -> list[str]:
    """``--map`` options over a recipe's ``map``: the recipe's fields not given, then the options.

    The options stay as written, so the request's checks of ``--map`` (a malformed option, a
    field given twice) speak about exactly what was typed.
    """
    given = {option.partition("=")[0].strip() for option in options}
    kept = [f"{name}={column}" for name, column in recipe_map.items() if name not in given]
    return [*kept, *options]


def load_recipe(path: Path) -> Recipe:
    """The recipe in the TOML file at ``path``; a usage error naming what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise UsageError(f"Cannot read the recipe {path}: {reason}.") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"The recipe {path} is not valid TOML: {exc}.") from None
    unknown = sorted(set(document) - set(RECIPE_KEYS))
    if unknown:
        raise UsageError(
            f"The recipe {path} has unknown key(s): {', '.join(unknown)}; a recipe may set "
            f"{', '.join(RECIPE_KEYS)}."
        )
    where = f"In the recipe {path}"
    values: dict[str, Any] = {}
    for key in ("default_region", "timezone", "encoding", "delimiter"):
        if key in document:
            values[key] = _string(where, key, document[key])
    if "map" in document:
        values["map"] = _table(where, "map", document["map"], '[map] with id = "COLUMN" lines')
    if "timestamp_format" in document:
        value = document["timestamp_format"]
        values["timestamp_format"] = (
            _string(where, "timestamp_format", value)
            if not isinstance(value, dict)
            else _table(where, "timestamp_format", value, "a string or a table of FIELD = FORMAT")
        )
    return Recipe(**values)


def _string(where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{where}, {key} must be a string, not {value!r}.")
    return value


def _table(where: str, key: str, value: object, shape: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise UsageError(f"{where}, {key} must be {shape}, not {value!r}.")
    return dict(value)
