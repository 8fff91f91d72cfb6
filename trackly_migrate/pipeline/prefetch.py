"""``Prefetcher``: the next file of a chain is opened on a thread of its own, one file ahead.

Opening a file (``chain._open_part``: its checkpoint's lock and identity, its dialect, its
reader) costs milliseconds of waiting for the disk; done while the file before is read, the
reader goes from the last row of one file to the first of the next without waiting.

What the opening says (its notes and warnings) is held back and told when the chain reaches
the file, and so is what went wrong (the same error, at the same point of the run): a file
opened early but never reached says nothing, and is released. A file that changed after it
was opened early (another size, time or inode) is opened again when reached, as it is then.
Only regular files are opened early: a named pipe's opening waits for its writer.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from trackly_migrate.pipeline.ports import Observer, ProgressState
from trackly_migrate.readers import is_regular_file

Opened = TypeVar("Opened")
Open = Callable[[str, contextlib.ExitStack, Observer], Opened]


class HeldBackObserver:
    """Keeps what an opening tells, to be told on the reader's thread when it is reached."""

    def __init__(self) -> None:
        self._told: list[Callable[[Observer], None]] = []

    def info(self, message: str) -> None:
        self._told.append(lambda observer: observer.info(message))

    def warning(self, message: str) -> None:
        self._told.append(lambda observer: observer.warning(message))

    def retry(self, reason: str, delay: float) -> None:
        self._told.append(lambda observer: observer.retry(reason, delay))

    def progress(self, state: ProgressState) -> None:
        """An opening shows no progress; the run's own display goes on meanwhile."""

    def tell(self, observer: Observer) -> None:
        for told in self._told:
            told(observer)
        self._told.clear()


def _file_state(path: str) -> tuple[int, int, int, int] | None:
    """What tells that a file changed since it was opened early; None: it cannot be seen."""
    try:
        info = Path(path).stat()
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class _Early(Generic[Opened]):
    """One file being opened early, with resources of its own."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stack = contextlib.ExitStack()
        self.told = HeldBackObserver()
        self.state = _file_state(path)
        self.opened: Opened | None = None
        self.error: Exception | None = None
        self.done = threading.Event()

    def open(self, open_one: Open[Opened]) -> None:
        try:
            self.opened = open_one(self.path, self.stack, self.told)
        except Exception as exc:  # told, and raised, when the chain reaches the file
            self.error = exc
        finally:
            self.done.set()


class Prefetcher(Generic[Opened]):
    """Opens files with ``open_one(path, stack, observer)``, the next one ahead of time.

    ``take(path, stack, observer)`` is what ``open_one`` would do now: the resources go to
    ``stack``, what the opening tells to ``observer``, and its error is raised. ``ahead(path)``
    starts opening the file the chain takes next (at most one is open ahead); ``close()``
    releases one that was never taken (the run stopped before it).
    """

    def __init__(self, open_one: Open[Opened]) -> None:
        self._open_one = open_one
        self._early: _Early[Opened] | None = None
        # One thread for the whole chain: starting one per file would make the reader wait
        # for each new thread's first turn.
        self._jobs: queue.SimpleQueue[_Early[Opened] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def ahead(self, path: str) -> None:
        self._release()
        if not is_regular_file(path):
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="next-file", daemon=True)
            self._thread.start()
        self._early = _Early(path)
        self._jobs.put(self._early)

    def _work(self) -> None:
        while (early := self._jobs.get()) is not None:
            early.open(self._open_one)

    def take(self, path: str, stack: contextlib.ExitStack, observer: Observer) -> Opened:
        early = self._early
        if early is not None:
            early.done.wait()  # if interrupted (Ctrl-C), close() still releases it
            self._early = None
            if early.path == path and early.state is not None and early.state == _file_state(path):
                stack.callback(early.stack.close)
                early.told.tell(observer)
                if early.error is not None:
                    raise early.error
                assert early.opened is not None
                return early.opened
            early.stack.close()  # changed meanwhile: opened again, as it is now
        return self._open_one(path, stack, observer)

    def close(self) -> None:
        self._release()
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _release(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            early.done.wait()
            early.stack.close()
