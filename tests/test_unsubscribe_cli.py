"""`trackly-migrate unsubscribe`: one contact or many, validated like imports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.helpers import invoke, read_report, requests_to, summary_of
from trackly_migrate.sandbox.server import RunningSandbox

CONTACTS_ENDPOINT = "DELETE /api/v2/contacts"
TOLL_FREE = "+18005551234"
MAIN = "+14155551234"


def contact_state(sandbox: RunningSandbox, list_number: str, phone: str) -> tuple[int, str | None]:
    assert sandbox.db_path is not None
    with sqlite3.connect(sandbox.db_path) as conn:
        row = conn.execute(
            "SELECT c.active, c.unsubscribe_reason FROM list_contacts c "
            "JOIN lists l ON l.id = c.list_id WHERE l.number = ? AND c.phone = ?",
            (list_number, phone),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_one_contact_with_human_formatting(sandbox: RunningSandbox) -> None:
    result = invoke(
        ["unsubscribe", "+1 (415) 555-9876", "--list", "+1 800 555 1234", "--json"],
        sandbox=sandbox,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "phone_number": "+14155559876",
        "list_number": TOLL_FREE,
        "unsubscribed": True,
    }
    assert contact_state(sandbox, TOLL_FREE, "+14155559876") == (0, "api")
    again = invoke(["unsubscribe", "+14155559876", "--list", TOLL_FREE], sandbox=sandbox)
    assert again.returncode == 0
    assert "the API does not say which" in again.stderr


def test_a_national_number_needs_a_region(sandbox: RunningSandbox) -> None:
    refused = invoke(["unsubscribe", "(415) 555-9876", "--list", TOLL_FREE], sandbox=sandbox)
    assert refused.returncode == 2
    assert "--default-region" in refused.stderr
    assert requests_to(sandbox, CONTACTS_ENDPOINT) == 0
    accepted = invoke(
        ["unsubscribe", "(415) 555-9876", "--list", TOLL_FREE, "--default-region", "US"],
        sandbox=sandbox,
    )
    assert accepted.returncode == 0
    assert "Unsubscribed +14155559876" in accepted.stderr


def test_bad_numbers_are_never_sent(sandbox: RunningSandbox) -> None:
    for args in (["not-a-number", "--list", TOLL_FREE], ["+14155559876", "--list", "12"]):
        result = invoke(["unsubscribe", *args], sandbox=sandbox)
        assert result.returncode == 2
        assert "invalid_phone" in result.stderr
    missing_list = invoke(["unsubscribe", "+14155559876"], sandbox=sandbox)
    assert missing_list.returncode == 2 and "--list" in missing_list.stderr
    both = invoke(["unsubscribe", "+14155559876", "--file", "x.csv"], sandbox=sandbox)
    assert both.returncode == 2
    assert requests_to(sandbox, CONTACTS_ENDPOINT) == 0


def test_bulk_from_a_file_with_list_default_map_and_report(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "optouts.csv"
    source.write_text(
        "Phone,List\n"
        "+1 (415) 555-9876,\n"  # on the toll-free list (filled by --list): unsubscribed
        "+13105558888,\n"  # on it too
        "+13105550177,\n"  # already unsubscribed: not changed
        "+19175550000,\n"  # not on the list: not changed
        "+12025559876,+14155551234\n"  # its own list (main): unsubscribed
        "garbage,\n"  # rejected locally
        "+12025550111,+16175550100\n"  # a list that is not this account's: not changed
    )
    result = invoke(
        [
            "unsubscribe",
            "--file",
            str(source),
            "--list",
            TOLL_FREE,
            "--map",
            "phone_number=Phone",
            "--map",
            "list_number=List",
            "--json",
        ],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    summary = summary_of_unsubscribe(result.stdout)
    assert (summary["read"], summary["unsubscribed"], summary["not_changed"]) == (7, 3, 3)
    assert (summary["rejected_local"], summary["rejected_server"]) == (1, 0)
    report = read_report(tmp_path / "optouts.errors.csv")
    assert [(row["_line"], row["_code"]) for row in report] == [("7", "invalid_phone")]
    assert contact_state(sandbox, MAIN, "+12025559876") == (0, "api")
    assert requests_to(sandbox, CONTACTS_ENDPOINT) == 6


def test_bulk_from_stdin_jsonl(sandbox: RunningSandbox, tmp_path: Path) -> None:
    lines = json.dumps({"phone_number": "+13105558888", "list_number": TOLL_FREE}) + "\n"
    result = invoke(
        ["unsubscribe", "--file", "-", "--format", "jsonl", "--json"],
        sandbox=sandbox,
        stdin=lines,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert summary_of_unsubscribe(result.stdout)["unsubscribed"] == 1


def test_bulk_survives_server_faults(sandbox_factory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(fail_rate=0.2, drop_rate=0.1, fault_seed=11)
    source = tmp_path / "many.csv"
    rows = [f"+1917555{i:04d},{TOLL_FREE}" for i in range(60)]
    source.write_text("phone_number,list_number\n" + "\n".join(rows) + "\n+13105558888,\n")
    result = invoke(
        ["unsubscribe", "--file", str(source), "--list", TOLL_FREE, "--json"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summary = summary_of_unsubscribe(result.stdout)
    assert summary["read"] == 61
    assert summary["retries"] > 0
    # A dropped answer may have been applied: the retry then reads "not changed".
    assert summary["unsubscribed"] + summary["not_changed"] == 61
    assert contact_state(sandbox, TOLL_FREE, "+13105558888") == (0, "api")


def summary_of_unsubscribe(stdout: str) -> dict[str, int]:
    data = json.loads(stdout)
    assert data["command"] == "unsubscribe"
    assert "imported" not in data and "duplicates" not in data
    renamed = {**data, "imported": data["unsubscribed"], "duplicates": data["not_changed"]}
    summary_of(json.dumps(renamed))
    return data  # type: ignore[no-any-return]


def test_a_failed_bulk_unsubscribe_can_simply_be_run_again(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = tmp_path / "optouts.csv"
    source.write_text("phone_number,list_number\n+14155559876,+18005551234\n")
    wrong = invoke(
        ["unsubscribe", "--file", str(source)], sandbox=sandbox, api_key="trk_" + "9" * 32
    )
    assert wrong.returncode == 3
    assert "--resume" not in wrong.stderr
    assert "run the same command again" in wrong.stderr
    right = invoke(["unsubscribe", "--file", str(source), "--json"], sandbox=sandbox)
    assert right.returncode == 0, right.stderr
    assert json.loads(right.stdout)["unsubscribed"] == 1
