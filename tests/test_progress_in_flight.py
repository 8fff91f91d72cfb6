"""The progress line's ``in flight N/limit``: requests, never above --concurrency (9, 16)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import invoke, send_row, summary_of, write_sends_csv

IN_FLIGHT = re.compile(r"in flight (\d+)/(\d+)")


def test_in_flight_never_shows_more_than_the_concurrency(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(latency=(0.1, 0.1))
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(4000)])
    log = tmp_path / "progress.log"
    args = ["import-sends", str(source), "--json", "--batch-size", "100", "--concurrency", "4"]
    result = invoke([*args, "--log-file", str(log)], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary_of(result.stdout)["imported"] == 4000
    shown = [(int(n), int(limit)) for n, limit in IN_FLIGHT.findall(log.read_text())]
    assert len(shown) >= 5  # a line every 5% of the input
    # The segments read ahead and queued for the sender are not requests in flight.
    assert all(n <= limit <= 4 for n, limit in shown), shown
    assert any(n >= 1 for n, _ in shown), shown
