"""The real CLI against a real sandbox with scripted faults and a small body limit.

Each failure the client has code for is produced by the sandbox (``/_sandbox/faults``), so
the retry, report and tolerance paths run over real HTTP, never against a mock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    invoke,
    read_report,
    send_row,
    stored_imported_ids,
    summary_of,
    write_sends_csv,
)
from trackly_migrate.sandbox.server import RunningSandbox

Factory = Any
SENDS_PATH = "/api/v2/history/sends"
SENDS_ENDPOINT = "POST " + SENDS_PATH


def import_sends(sandbox: RunningSandbox, path: Path, *extra: str) -> Any:
    errors = path.with_suffix(".errors.csv")
    return invoke(
        ["import-sends", str(path), "--json", "--errors", str(errors), *extra], sandbox=sandbox
    )


def statuses(sandbox: RunningSandbox) -> dict[str, int]:
    by_status: dict[str, int] = sandbox.stats()["requests"]["by_endpoint"][SENDS_ENDPOINT]
    return by_status


@pytest.mark.parametrize("kind", ["internal_error", "bad_gateway", "gateway_timeout"])
def test_server_and_proxy_errors_are_retried_then_succeed(
    tmp_path: Path, sandbox_factory: Factory, kind: str
) -> None:
    sandbox: RunningSandbox = sandbox_factory(
        faults=({"kind": kind, "path": SENDS_PATH, "times": 2},)
    )
    path = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(5)])
    result = import_sends(sandbox, path)
    assert result.returncode == 0, result.output
    summary = summary_of(result.stdout)
    assert (summary["imported"], summary["retries"]) == (5, 2)
    status = {"internal_error": "500", "bad_gateway": "502", "gateway_timeout": "504"}[kind]
    assert statuses(sandbox) == {status: 2, "200": 1}
    assert len(stored_imported_ids(sandbox)) == 5 + 5  # the seed's five and these


def test_save_errors_are_reported_with_their_lines(
    tmp_path: Path, sandbox_factory: Factory
) -> None:
    sandbox: RunningSandbox = sandbox_factory(
        faults=({"kind": "save_error", "path": SENDS_PATH, "indexes": [1, 3]},)
    )
    path = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(5)])
    result = import_sends(sandbox, path)
    assert result.returncode == 1, result.output
    summary = summary_of(result.stdout)
    assert (summary["imported"], summary["rejected_server"]) == (3, 2)
    rows = read_report(tmp_path / "s.errors.csv")
    # Line 1 is the header: record i is on line i + 2.
    assert [(r["_line"], r["_record_id"], r["_stage"], r["_code"]) for r in rows] == [
        ("3", "t_000001", "server", "save_error"),
        ("5", "t_000003", "server", "save_error"),
    ]


def test_invalid_phones_counted_apart_are_resolved_by_the_tolerance_rule(
    tmp_path: Path, sandbox_factory: Factory
) -> None:
    sandbox: RunningSandbox = sandbox_factory(
        faults=({"kind": "count_mismatch", "path": SENDS_PATH, "indexes": [2]},)
    )
    path = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(5)])
    result = import_sends(sandbox, path)
    assert result.returncode == 1, result.output
    summary = summary_of(result.stdout)
    assert (summary["imported"], summary["rejected_server"], summary["unaccounted"]) == (4, 1, 0)
    rows = read_report(tmp_path / "s.errors.csv")
    assert [(r["_line"], r["_code"]) for r in rows] == [("4", "invalid_phone")]


def test_a_mismatch_nothing_explains_is_reported_unaccounted(
    tmp_path: Path, sandbox_factory: Factory
) -> None:
    sandbox: RunningSandbox = sandbox_factory(
        faults=({"kind": "count_mismatch", "path": SENDS_PATH, "mode": "undercount"},)
    )
    path = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(5)])
    result = import_sends(sandbox, path)
    summary = summary_of(result.stdout)
    assert summary["unaccounted"] > 0
    assert result.returncode == 3, result.output
    assert "did not add up" in result.stderr
    assert "unaccounted" in result.stderr.lower()


def test_batches_over_the_body_limit_are_split_and_a_huge_record_rejected_locally(
    tmp_path: Path, sandbox_factory: Factory
) -> None:
    limit = 4096
    sandbox: RunningSandbox = sandbox_factory(max_body_bytes=limit)
    rows = [send_row(i, message=f"{i} " + "x" * 500) for i in range(40)]
    rows[17]["message"] = "y" * (limit + 10)
    path = write_sends_csv(tmp_path / "s.csv", rows)
    result = import_sends(sandbox, path, "--max-body-bytes", str(limit))
    assert result.returncode == 1, result.output
    summary = summary_of(result.stdout)
    assert (summary["read"], summary["imported"], summary["rejected_local"]) == (40, 39, 1)
    assert summary["rejected_server"] == summary["unaccounted"] == 0
    report = read_report(tmp_path / "s.errors.csv")
    assert [(r["_line"], r["_record_id"], r["_stage"], r["_code"]) for r in report] == [
        ("19", "t_000017", "local", "record_too_large")
    ]
    stats = sandbox.stats()
    assert stats["bodies"]["max_bytes"] <= limit
    assert stats["bodies"]["refused_too_large"] == 0
    assert stats["records"]["sends"]["stored"] == 39
    assert statuses(sandbox)["200"] >= 39 * 500 // limit  # one batch, many requests
    expected = {f"t_{i:06d}" for i in range(40)} - {"t_000017"}
    assert expected <= set(stored_imported_ids(sandbox))


def test_clear_and_unsubscribe_can_be_rehearsed_on_the_sandbox_database(tmp_path: Path) -> None:
    db = tmp_path / "rehearsal.db"
    path = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(3)])
    sandbox_args = ["--sandbox", "--sandbox-db", str(db)]
    imported = invoke(["import-sends", str(path), "--json", *sandbox_args], api_key=None)
    assert imported.returncode == 0, imported.output
    unsubscribed = invoke(
        ["unsubscribe", "+14155550001", "--list", "+14155551234", "--json", *sandbox_args],
        api_key=None,
    )
    assert unsubscribed.returncode == 0, unsubscribed.output
    assert '"unsubscribed":true' in unsubscribed.stdout
    cleared = invoke(
        ["clear", "sends", "--all-time", "--yes", "--json", *sandbox_args], api_key=None
    )
    assert cleared.returncode == 0, cleared.output
    assert f"the sandbox in {db}" in cleared.stderr
    # The three imported here and the seed's five imported sends; live sends stay.
    assert '"sends":8' in cleared.stdout.replace(" ", "")
    again = invoke(["clear", "sends", "--all-time", "--yes", "--json", *sandbox_args])
    assert '"sends":0' in again.stdout.replace(" ", "")


def test_sandbox_db_without_sandbox_is_a_usage_error() -> None:
    result = invoke(["clear", "sends", "--all-time", "--yes", "--sandbox-db", "x.db"])
    assert result.returncode == 2
    assert "--sandbox-db needs --sandbox" in result.output
