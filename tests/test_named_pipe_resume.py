"""``--resume`` on a named pipe is refused, as on stdin (issue 9, item 15).

A pipe cannot be read again from an offset: a "resume" would send the whole stream again
while claiming to continue, and no checkpoint is ever kept for one. So it is a usage error.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from tests.helpers import invoke, requests_to, send_row, write_sends_csv
from trackly_migrate.sandbox.server import RunningSandbox


@pytest.mark.parametrize("option", ["--resume", "--restart"])
def test_resume_of_a_named_pipe_is_refused(
    sandbox: RunningSandbox, tmp_path: Path, option: str
) -> None:
    content = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3)]).read_bytes()
    fifo = tmp_path / "stream.csv"
    os.mkfifo(fifo)

    def feed() -> None:  # if the tool reads the pipe after all, it gets a whole stream
        with contextlib.suppress(OSError), fifo.open("wb") as pipe:
            pipe.write(content)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        result = invoke(["import-sends", str(fifo), option], sandbox=sandbox, cwd=tmp_path)
    finally:
        # Release the feeder if nothing opened the pipe: a reader of our own lets it go.
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        feeder.join(timeout=30)
    assert result.returncode == 2, result.output
    assert "named pipe" in result.stderr
    assert "Traceback" not in result.output
    assert requests_to(sandbox, "POST /api/v2/history/sends") == 0


def test_a_named_pipe_among_the_files_is_refused_before_anything_is_sent(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    first = write_sends_csv(tmp_path / "a.csv", [send_row(i) for i in range(3)])
    fifo = tmp_path / "b.csv"
    os.mkfifo(fifo)  # never opened: the refusal comes from its kind, before the run starts
    result = invoke(
        ["import-sends", str(first), str(fifo), "--restart"], sandbox=sandbox, cwd=tmp_path
    )
    assert result.returncode == 2, result.output
    assert "named pipe" in result.stderr and str(fifo) in result.stderr
    assert "Traceback" not in result.output
    assert requests_to(sandbox, "POST /api/v2/history/sends") == 0  # not even the first file
