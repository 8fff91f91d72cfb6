"""The import pipeline, in the order a record goes through it.

``request`` (what to do, checked on construction) → ``run`` (composition) → ``engine``
(segments, read-ahead, in-order settling, reject limit) → ``dispatch`` (thread or process)
→ ``settle`` (requests and their answers); ``resume`` keeps the checkpoint policy and
``signals`` the ways to stop a run from outside. Nothing here uses Rich or Typer.
"""

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
