"""The import pipeline, in the order a record goes through it.

``request`` (what to do, checked on construction) → ``run`` (composition) → ``engine``
(segments, read-ahead, in-order settling, reject limit) → ``dispatch`` (thread or process)
→ ``settle`` (requests and their answers); ``resume`` keeps the checkpoint policy and
``signals`` the ways to stop a run from outside. Nothing here uses Rich or Typer.

The names below are looked up on first use: importing one light module of the package
(``pipeline.signals``, ``pipeline.bounds``) must not import httpx and the whole pipeline,
or ``trackly-migrate --help`` would wait for them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trackly_migrate.pipeline.request import (
        ImportRequest,
        Limits,
        Normalization,
        Output,
        Resume,
        Source,
        Target,
    )
    from trackly_migrate.pipeline.run import ImportOutcome, run_import
    from trackly_migrate.pipeline.signals import StopEvents

_PUBLIC = {
    **dict.fromkeys(
        ("ImportRequest", "Limits", "Normalization", "Output", "Resume", "Source", "Target"),
        "trackly_migrate.pipeline.request",
    ),
    "ImportOutcome": "trackly_migrate.pipeline.run",
    "run_import": "trackly_migrate.pipeline.run",
    "StopEvents": "trackly_migrate.pipeline.signals",
}

__all__ = [
    "ImportOutcome",
    "ImportRequest",
    "Limits",
    "Normalization",
    "Output",
    "Resume",
    "Source",
    "StopEvents",
    "Target",
    "run_import",
]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
