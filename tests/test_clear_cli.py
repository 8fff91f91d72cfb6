"""`trackly-migrate clear`: scope, boundaries, confirmation, and no blind resend."""

from __future__ import annotations

import json
import sqlite3

import pexpect
import pytest

from tests.helpers import SEED_IMPORTED, invoke, requests_to, spawn_clear, stored_imported_ids
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

CLEAR_ENDPOINT = "DELETE /api/v2/history/clear"


def counts(sandbox: RunningSandbox, account: str = "demo") -> dict[str, int]:
    stats: dict[str, int] = sandbox.stats()["accounts"][account]
    return stats


def live_message_ids(sandbox: RunningSandbox) -> set[str]:
    assert sandbox.db_path is not None
    with sqlite3.connect(sandbox.db_path) as conn:
        rows = conn.execute(
            "SELECT m.id FROM messages m JOIN accounts a ON a.id = m.account_id "
            "WHERE a.name = 'demo' AND m.imported = 0"
        ).fetchall()
    return {row[0] for row in rows}


def test_sends_before_a_date_keep_the_record_stamped_exactly_then(
    sandbox: RunningSandbox,
) -> None:
    live = live_message_ids(sandbox)
    result = invoke(
        ["clear", "sends", "--before", "2025-12-01", "--yes", "--json"], sandbox=sandbox
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "cleared": {"sends": 3},
        "before_date": "2025-12-01T00:00:00Z",
    }
    # imp_0004 is stamped exactly 2025-12-01T00:00:00Z: the bound is exclusive.
    assert set(stored_imported_ids(sandbox)) == {"imp_0004", "imp_0005"}
    assert live_message_ids(sandbox) == live
    assert "a record stamped exactly then is kept" in result.stderr
    assert "2025-12-01 00:00:00 UTC" in result.stderr
    assert f"with key trk_…{DEMO_API_KEY[-4:]}" in result.stderr
    assert DEMO_API_KEY not in result.output


def test_revenue_clears_all_revenue_live_included_and_says_so(sandbox: RunningSandbox) -> None:
    live = live_message_ids(sandbox)
    before = counts(sandbox)
    result = invoke(["clear", "revenue", "--all-time", "--yes", "--json"], sandbox=sandbox)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["cleared"] == {"revenue": before["revenue"]}
    assert counts(sandbox)["revenue"] == 0
    assert "ALL revenue records of the account, live sends' revenue included" in result.stderr
    assert live_message_ids(sandbox) == live
    assert set(stored_imported_ids(sandbox)) == SEED_IMPORTED
    assert counts(sandbox, "other")["revenue"] > 0  # another account's revenue is untouched


def test_all_entities_clicks_of_imported_sends_go_with_them(sandbox: RunningSandbox) -> None:
    live_clicks_before = counts(sandbox)["clicks"]
    result = invoke(
        ["clear", "sends", "clicks", "revenue", "clicks", "--all-time", "--yes", "--json"],
        sandbox=sandbox,
    )
    assert result.returncode == 0, result.stderr
    cleared = json.loads(result.stdout)["cleared"]
    assert set(cleared) == {"sends", "clicks", "revenue"}
    assert cleared["sends"] == 5
    assert counts(sandbox)["clicks"] == live_clicks_before - cleared["clicks"]
    assert counts(sandbox)["clicks"] >= 1  # the click on a live send stays
    assert stored_imported_ids(sandbox) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sends"], "Say how far back"),
        (["sends", "--before", "2025-12-01", "--all-time"], "not both"),
        (["messages", "--all-time"], "Unknown entity"),
        (["sends", "--before", "2025-12-01T10:00:00"], "no UTC offset"),
        (["sends", "--before", "2025-02-30"], "not a real date"),
    ],
)
def test_scope_mistakes_are_usage_errors_and_send_nothing(
    sandbox: RunningSandbox, args: list[str], message: str
) -> None:
    result = invoke(["clear", *args, "--yes"], sandbox=sandbox)
    assert result.returncode == 2
    assert message in result.stderr
    assert requests_to(sandbox, CLEAR_ENDPOINT) == 0


def test_a_naive_cutoff_uses_the_timezone(sandbox: RunningSandbox) -> None:
    result = invoke(
        [
            "clear",
            "sends",
            "--before",
            "2025-11-30T19:00:00",
            "--timezone",
            "America/New_York",
            "--dry-run",
        ],
        sandbox=sandbox,
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["before_date"] == "2025-12-01T00:00:00Z"


def test_without_a_terminal_and_without_yes_it_refuses_at_once(sandbox: RunningSandbox) -> None:
    result = invoke(["clear", "sends", "--all-time"], sandbox=sandbox, stdin="clear\n", timeout=60)
    assert result.returncode == 2
    assert "--yes" in result.stderr
    assert "imported send records only" in result.stderr  # the plan was shown
    assert requests_to(sandbox, CLEAR_ENDPOINT) == 0


def test_dry_run_prints_the_exact_body_and_sends_nothing(sandbox: RunningSandbox) -> None:
    result = invoke(
        ["clear", "revenue", "sends", "--before", "2025-12-01T00:00:00+01:00", "--dry-run"],
        sandbox=sandbox,
    )
    assert result.returncode == 0
    assert json.loads(result.stdout) == {
        "entities": ["sends", "revenue"],
        "before_date": "2025-11-30T23:00:00Z",
        "confirm": True,
    }
    assert requests_to(sandbox, CLEAR_ENDPOINT) == 0


def test_a_future_cutoff_is_warned_about(sandbox: RunningSandbox) -> None:
    result = invoke(["clear", "sends", "--before", "2999-01-01", "--dry-run"], sandbox=sandbox)
    assert "in the future" in result.stderr


@pytest.mark.parametrize("answer", ["no", "Clear please", ""])
def test_at_the_prompt_anything_but_clear_deletes_nothing(
    sandbox: RunningSandbox, answer: str
) -> None:
    child = spawn_clear(sandbox, "sends", "--all-time")
    child.expect("Type")
    child.sendline(answer)
    child.expect("nothing was deleted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert requests_to(sandbox, CLEAR_ENDPOINT) == 0
    assert set(stored_imported_ids(sandbox)) == SEED_IMPORTED


def test_ctrl_c_at_the_prompt_deletes_nothing(sandbox: RunningSandbox) -> None:
    child = spawn_clear(sandbox, "sends", "--all-time")
    child.expect("Type")
    child.sendintr()
    child.expect("nothing was deleted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert requests_to(sandbox, CLEAR_ENDPOINT) == 0


def test_typing_clear_sends_exactly_one_confirmed_request(sandbox: RunningSandbox) -> None:
    child = spawn_clear(sandbox, "sends", "--all-time")
    child.expect("revenue|Type")
    child.sendline("clear")
    child.expect("Cleared")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    # The sandbox answers 400 confirm_required unless confirm is JSON true: one 200 proves it.
    assert sandbox.stats()["requests"]["by_endpoint"][CLEAR_ENDPOINT] == {"200": 1}
    assert stored_imported_ids(sandbox) == []


def test_a_rate_limited_clear_is_retried_after_retry_after(sandbox_factory) -> None:
    sandbox = sandbox_factory(rate_limit=0.5)
    first = invoke(["clear", "clicks", "--all-time", "--yes"], sandbox=sandbox)
    assert first.returncode == 0
    second = invoke(["clear", "clicks", "--all-time", "--yes", "--json"], sandbox=sandbox)
    assert second.returncode == 0, second.stderr
    by_status = sandbox.stats()["requests"]["by_endpoint"][CLEAR_ENDPOINT]
    assert by_status.get("429", 0) >= 1 and by_status["200"] == 2


def test_an_answer_lost_after_sending_is_never_resent(sandbox_factory) -> None:
    sandbox = sandbox_factory(drop_rate=1.0)
    result = invoke(["clear", "sends", "--all-time", "--yes"], sandbox=sandbox)
    assert result.returncode == 3
    assert "outcome is unknown" in result.stderr
    assert "NOT sent again" in result.stderr
    assert sandbox.stats()["faults"]["drop"] == 1  # one request, not one per retry
    assert stored_imported_ids(sandbox) == []  # it had been applied
    assert "Traceback" not in result.output


def test_another_accounts_history_is_not_cleared(sandbox: RunningSandbox) -> None:
    other_before = counts(sandbox, "other")
    result = invoke(["clear", "sends", "clicks", "revenue", "--all-time", "--yes"], sandbox=sandbox)
    assert result.returncode == 0
    assert counts(sandbox, "other") == other_before


@pytest.mark.parametrize(
    ("before", "shown"),
    [
        ("2025-12-01T00:00:00", "2025-12-01 00:00:00 EST in America/New_York"),
        ("2025-07-01T09:30:00Z", "2025-07-01 05:30:00 EDT in America/New_York"),
    ],
)
def test_the_plan_shows_the_cutoff_in_the_zone_given_not_the_machines(
    before: str, shown: str
) -> None:
    result = invoke(
        ["clear", "sends", "--before", before, "--timezone", "America/New_York", "--dry-run"],
        api_key=None,
        env={"TZ": "Asia/Tokyo"},
    )
    assert result.returncode == 0, result.stderr
    assert shown in result.stderr
    assert "JST" not in result.stderr


def test_without_a_zone_the_plan_names_the_machines_zone() -> None:
    result = invoke(
        ["clear", "sends", "--before", "2025-12-01", "--dry-run"],
        api_key=None,
        env={"TZ": "Asia/Tokyo"},
    )
    assert result.returncode == 0, result.stderr
    assert "2025-12-01 00:00:00 UTC (2025-12-01 09:00:00 JST, this computer's time zone)" in (
        result.stderr
    )
