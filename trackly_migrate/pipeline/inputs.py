"""The FILE arguments of an import: files, folders and name patterns, as one ordered list.

A folder means the files in it whose format the name tells (``.csv``, ``.jsonl``, ``.gz`` of
either ...), sorted by name, the sub-folders too with ``recursive``. A pattern
(``'exports/sends-*.csv.gz'``) is expanded here as well as by a shell, because cron lines
quote them and Windows shells do not expand them; its matches are sorted by name. Errors
reports (``*.errors.csv``) and hidden files in a folder are left out: a drop folder that is
also the working folder of the cron job holds the reports of earlier nights. A file named
twice is imported once, where it first comes.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from trackly_migrate.errors import UsageError
from trackly_migrate.readers import STDIN, infer_format

_REPORT_SUFFIXES = (".errors.csv", ".errors.jsonl")


@dataclass(frozen=True)
class Inputs:
    """What the user named, and how to read folders; ``skip_done`` consults the ledger."""

    args: tuple[str, ...]
    recursive: bool = False
    skip_done: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        if not self.args:
            raise UsageError("Name at least one FILE (a file, a folder or a pattern).")
        if STDIN in self.args and len(self.args) > 1:
            raise UsageError(
                "- (stdin) can only be the one FILE of a run.",
                hint="Import stdin in a run of its own.",
            )

    @property
    def single_file(self) -> bool:
        """One plain file (or stdin): the run is the one-file run it always was."""
        only = self.args[0]
        return len(self.args) == 1 and (
            only == STDIN or not (Path(only).is_dir() or glob.has_magic(only))
        )


def importable(name: str) -> bool:
    """Whether a file in a folder is one to import: its name tells a format."""
    if name.startswith(".") or name.lower().endswith(_REPORT_SUFFIXES):
        return False
    try:
        infer_format(name, None)
    except UsageError:
        return False
    return True


def expand(inputs: Inputs) -> dict[str, str]:
    """The files to import, in order, each with its absolute path (stdin as itself): resolved
    once for the run. A usage error for a folder or pattern with none."""
    files: list[str] = []
    for arg in inputs.args:
        if arg == STDIN:
            files.append(arg)
        elif Path(arg).is_dir():
            found = _folder_files(Path(arg), inputs.recursive)
            if not found:
                raise UsageError(
                    f"{arg} holds no file to import (CSV or JSONL, gzipped or not).",
                    hint="Check the folder, or add --recursive for its sub-folders.",
                )
            files.extend(found)
        elif glob.has_magic(arg) and not Path(arg).exists():
            matches = sorted(
                match
                for match in glob.glob(arg, recursive=inputs.recursive)  # noqa: PTH207 (absolute or relative patterns)
                if Path(match).is_file()
            )
            if not matches:
                raise UsageError(
                    f"No file matches {arg}.",
                    hint="Check the pattern; quote it so that the tool expands it.",
                )
            files.extend(matches)
        else:
            files.append(arg)  # a missing file is reported by the reader, with its hint
    return _first_of_each(files)


def _folder_files(folder: Path, recursive: bool) -> list[str]:
    if not recursive:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
        return [str(folder / name) for name in names if importable(name)]
    found: list[str] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        found.extend(str(Path(root) / name) for name in sorted(names) if importable(name))
    return found


def _first_of_each(files: list[str]) -> dict[str, str]:
    seen: set[str] = set()
    unique: dict[str, str] = {}
    for name in files:
        key = name if name == STDIN else os.path.realpath(name)
        if key not in seen:
            seen.add(key)
            unique[name] = key
    return unique
