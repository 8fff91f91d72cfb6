"""Where the sender process starts (``dispatch.ProcessDispatcher``).

A module of its own, importing nothing at load, because the child imports the module of its
entry point before anything else, and the child's imports are most of the time before the
first request leaves. Its plan arrives pickled, to be read only once httpx's command-line
client is out of the way.
"""

from __future__ import annotations

import pickle
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


def main(conn: Connection, plan: bytes) -> None:
    # httpx's ``__init__`` imports its command-line client (Rich, Click, Pygments: a third of
    # what the sender imports) unless that import fails, which httpx expects and handles. The
    # sender never runs it; a None in sys.modules makes that import fail.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    from trackly_migrate.pipeline.dispatch import serve

    serve(conn, pickle.loads(plan))  # noqa: S301 - written by our parent, through our pipe
