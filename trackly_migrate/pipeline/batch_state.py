"""The checkpoint of a run over several files: which of them it finished, and where the
others stand.

It holds the files already finished, each with its identity at the end (a file changed
since is named, never skipped or sent again silently) and its totals (the run's summary
still counts it); the checkpoints of the files under way (``current``: what a run of that
file alone keeps in its own checkpoint, ``resume.py``), so a resume continues inside them;
and the run's one errors report: its place (a resume keeps writing it), its columns (its
header) and its size when a file finished. ``list_checkpoint.py`` writes it while the run
goes on. It is keyed by the ordered list of files: its default place is
``checkpoints/<command>-files-<hash of the absolute paths, in order>.json`` in the state
folder, or ``--checkpoint PATH``; it is removed when every file is done.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import platformdirs

from trackly_migrate.checkpoint import (
    Checkpoint,
    InputIdentity,
    read_bytes,
    write_atomic,
)
from trackly_migrate.counts import Counts, from_totals, to_totals
from trackly_migrate.errors import UsageError
from trackly_migrate.report import Summary

# Version 2: the identities name the files by their ends (``checkpoint.FORMAT_VERSION``).
STATE_VERSION = 2
READABLE_STATE_VERSIONS = (1, STATE_VERSION)


def default_state_path(command: str, absolute_paths: list[str]) -> Path:
    folder = platformdirs.user_state_path("trackly-migrate") / "checkpoints"
    listed = "\n".join(absolute_paths)
    key = hashlib.sha256(listed.encode()).hexdigest()[:16]
    return folder / f"{command}-files-{key}.json"


@dataclass(slots=True)
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
    report_path: str | None = None  # absolute
    report_columns: list[str] = field(default_factory=list)
    report_with_raw: bool = False
    report_size: int = 0  # the report's size when the last finished file settled
    earlier_reports: list[str] = field(default_factory=list)  # a resume wrote elsewhere
    # The checkpoints of the files under way, by absolute path (``list_checkpoint.py``).
    current: dict[str, Checkpoint] = field(default_factory=dict)

    def finish(self, identity: InputIdentity, summary: Summary, report: str | None) -> None:
        """Record the file ``identity`` names (by its absolute path) as finished."""
        totals = to_totals(summary.counts, summary.elapsed_s)
        self.finished[identity.path] = FinishedFile(identity, totals, report)

    def finished_entry(self, path: str) -> FinishedFile | None:
        return self.finished.get(str(Path(path).resolve()))

    def under_way(self, path: str) -> Checkpoint | None:
        """The checkpoint of ``path`` if it was under way (None: not started, or finished)."""
        return self.current.get(str(Path(path).resolve()))

    def save(self, path: Path) -> None:
        # orjson writes the dataclasses itself, the same bytes as over ``asdict``, which cost
        # 0.3 s a save with 10,000 files finished (it copies every nested field first).
        write_atomic(path, orjson.dumps(self, option=orjson.OPT_INDENT_2))


def load_state(path: Path) -> BatchState | None:
    data = read_bytes(path)
    if data is None:
        return None
    try:
        raw = orjson.loads(data)
        if raw.get("version") not in READABLE_STATE_VERSIONS:
            raise ValueError("unknown version")
        raw["version"] = STATE_VERSION
        raw["finished"] = {
            name: FinishedFile(**{**item, "identity": InputIdentity.from_dict(item["identity"])})
            for name, item in raw["finished"].items()
        }
        raw["current"] = {
            name: Checkpoint.from_dict(item) for name, item in raw.get("current", {}).items()
        }
        return BatchState(**raw)
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError):
        raise UsageError(
            f"The checkpoint {path} is not readable.",
            hint="Start over with --restart.",
        ) from None
