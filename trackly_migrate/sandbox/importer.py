"""The imports' work, one request after the other in one thread, sharing commits.

A client with several requests in flight keeps the sandbox busy: while one request is being
checked and stored, the next ones arrive. They wait here, and the next turn of the importer
takes all of them at once: each runs in a savepoint of its own (stored entirely or not at
all, as alone), and one COMMIT ends the turn. Only then are their answers sent, so nothing
is answered before it is committed.

Why: each commit writes every page it changed to the WAL, and a batch of sends updates
contacts all over their b-tree, so a commit costs about the same for one request as for
several (measured: 644 MB written to store 200,000 sends one commit per request, a sixth
of the CPU). At most ``MAX_GROUP`` requests share a commit, which bounds how long the first
of them waits for its answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

from trackly_migrate.sandbox.store import Store, Transaction

logger = logging.getLogger("trackly_migrate.sandbox")

MAX_GROUP = 16  # requests per commit at most
T = TypeVar("T")


@dataclass(eq=False)
class _Job(Generic[T]):
    work: Callable[[Transaction], T]
    done: bool = False
    result: T | None = None
    error: BaseException | None = None


@dataclass
class ImporterStats:
    """Requests run and commits made: requests / commits is the mean group size."""

    requests: int = 0
    commits: int = 0
    largest_group: int = 0

    def snapshot(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "commits": self.commits,
            "largest_group": self.largest_group,
        }


@dataclass
class Importer:
    """Runs ``work(tx)`` for each import request; waiting requests share the next commit."""

    store: Store
    stats: ImporterStats = field(default_factory=ImporterStats)
    _pending: list[_Job[Any]] = field(default_factory=list)
    _turn: anyio.Lock = field(default_factory=anyio.Lock)

    async def run(self, work: Callable[[Transaction], T]) -> T:
        """``work``'s result once it is committed; its exception if it raised (then its
        writes are undone and the other requests of its turn are stored all the same)."""
        job: _Job[T] = _Job(work)
        self._pending.append(job)
        while not job.done:
            async with self._turn:
                if not job.done:
                    group = self._pending[:MAX_GROUP]
                    del self._pending[:MAX_GROUP]
                    await anyio.to_thread.run_sync(self._run_group, group)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]  # set by a turn that succeeded

    def _run_group(self, group: list[_Job[Any]]) -> None:
        """One turn, in the worker thread: each job in its savepoint, then one commit."""
        try:
            with self.store.transaction() as tx:
                for job in group:
                    try:
                        with tx.savepoint("request"):
                            job.result = job.work(tx)
                    except Exception as exc:  # this request alone fails; see run()
                        job.error = exc
            self.stats.requests += len(group)
            self.stats.commits += 1
            self.stats.largest_group = max(self.stats.largest_group, len(group))
        except Exception as exc:  # the commit failed: nothing of the turn is stored
            logger.exception("committing %d import request(s) failed", len(group))
            for job in group:
                job.error = exc
        finally:
            for job in group:
                job.done = True
