"""The checkpoint of a run over several files: which of them it finished, and how.

Where the current file stands is that file's own checkpoint (the one a run of that file
alone keeps, ``resume.py``), so a resume continues inside it however the list was made.
This file adds what a list needs: the files already finished, each with its identity at
the end (a file changed since is named, never skipped or sent again silently) and its
totals (the run's summary still counts it). It is keyed by the ordered list of files: its
default place is ``checkpoints/<command>-files-<hash of the absolute paths, in order>.json``
in the state folder, or ``--checkpoint PATH``; it is removed when every file is done.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import platformdirs

from trackly_migrate.checkpoint import (
    InputIdentity,
    default_checkpoint_path,
    read_bytes,
    write_atomic,
)
from trackly_migrate.counts import Counts, from_totals, to_totals
from trackly_migrate.errors import UsageError
from trackly_migrate.report import Summary

STATE_VERSION = 1


def default_state_path(command: str, files: list[str]) -> Path:
    folder = platformdirs.user_state_path("trackly-migrate") / "checkpoints"
    listed = "\n".join(str(Path(name).resolve()) for name in files)
    key = hashlib.sha256(listed.encode()).hexdigest()[:16]
    return folder / f"{command}-files-{key}.json"


def file_checkpoint_path(command: str, path: str, state_path: Path | None) -> Path:
    """Where the checkpoint of one file of the list goes: the file's own default one, or,
    with ``--checkpoint PATH``, one beside PATH named after the file."""
    absolute = str(Path(path).resolve())
    if state_path is None:
        # Only the absolute path decides the default place (see checkpoint.py).
        return default_checkpoint_path(command, InputIdentity(absolute, 0, 0, ""))
    key = hashlib.sha256(absolute.encode()).hexdigest()[:16]
    return state_path.with_name(f"{state_path.name}.{Path(path).name}-{key}.json")


@dataclass
class FinishedFile:
    identity: InputIdentity
    totals: dict[str, Any]
    errors_report: str | None = None

    def counts(self) -> tuple[Counts, float]:
        return from_totals(self.totals)


@dataclass
class BatchState:
    command: str
    files: list[str]
    finished: dict[str, FinishedFile] = field(default_factory=dict)  # by absolute path
    version: int = STATE_VERSION

    def finish(
        self, path: str, identity: InputIdentity, summary: Summary, report: str | None
    ) -> None:
        totals = to_totals(summary.counts, summary.elapsed_s)
        self.finished[str(Path(path).resolve())] = FinishedFile(identity, totals, report)

    def finished_entry(self, path: str) -> FinishedFile | None:
        return self.finished.get(str(Path(path).resolve()))

    def save(self, path: Path) -> None:
        write_atomic(path, orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))


def load_state(path: Path) -> BatchState | None:
    data = read_bytes(path)
    if data is None:
        return None
    try:
        raw = orjson.loads(data)
        if raw.get("version") != STATE_VERSION:
            raise ValueError("unknown version")
        raw["finished"] = {
            name: FinishedFile(**{**item, "identity": InputIdentity(**item["identity"])})
            for name, item in raw["finished"].items()
        }
        return BatchState(**raw)
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError):
        raise UsageError(
            f"The checkpoint {path} is not readable.",
            hint="Start over with --restart.",
        ) from None
