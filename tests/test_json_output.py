"""``--json``: every exit path prints exactly one object on stdout, valid against the schema
the README publishes (docs/output.schema.json); the error codes are the documented ones."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import CliResult, run_cli
from tests.helpers import REPO, SAMPLES, requests_to, send_row, write_sends_csv
from trackly_migrate import errors
from trackly_migrate.sandbox.server import RunningSandbox

SCHEMA = json.loads((REPO / "docs" / "output.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)
SENDS_ENDPOINT = "POST /api/v2/history/sends"
WRONG_KEY = "trk_" + "x" * 32


def one_object(result: CliResult, definition: str | None = None) -> dict[str, Any]:
    """The one JSON object on stdout, checked against the schema (and one of its shapes)."""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.output
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    VALIDATOR.validate(data)
    if definition is not None:
        Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{definition}"}).validate(data)
    return data


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_every_error_class_has_a_code_the_schema_knows() -> None:
    known = set(SCHEMA["$defs"]["error"]["properties"]["code"]["enum"])
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.TracklyMigrateError)
    ]
    codes = [cls.machine_code for cls in classes]
    assert len(set(codes)) == len(codes), "each error type has its own code"
    assert set(codes) <= known


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import-sends", "x.csv", "--no-such-option", "--json"], "No such option"),
        (["import-sends", "--json"], "Missing argument"),
        (["import-clicks", "x.csv", "--batch-size", "many", "--json"], "--batch-size"),
        (["clear", "--json"], "Missing argument"),
        (["unsubscribe", "--json", "--timeout", "soon"], "--timeout"),
    ],
)
def test_clicks_own_usage_errors_are_the_error_envelope(args: list[str], message: str) -> None:
    result = run_cli(args)
    assert result.returncode == 2, result.output
    data = one_object(result, "error_envelope")
    assert data["error"]["code"] == "usage"
    assert message in data["error"]["message"]


def test_without_json_a_usage_error_keeps_clicks_own_output() -> None:
    result = run_cli(["import-sends", "x.csv", "--no-such-option"])
    assert result.returncode == 2
    assert result.stdout == ""
    assert "No such option: --no-such-option" in result.stderr
    assert "Usage:" in result.stderr


def test_an_error_before_the_run_is_the_envelope_and_nothing_is_sent(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    missing = run_cli(["import-sends", str(tmp_path / "none.csv"), "--json"], sandbox=sandbox)
    assert missing.returncode == 2
    assert one_object(missing, "error_envelope")["error"]["code"] == "input"
    source = write_sends_csv(tmp_path / "s.csv", [send_row(1)])
    bad_url = run_cli(
        ["import-sends", str(source), "--json", "--base-url", "ftp://example.com"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert bad_url.returncode == 2
    assert one_object(bad_url, "error_envelope")["error"]["code"] == "usage"
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0


def test_a_finished_import_is_its_summary_and_progress_stays_on_stderr(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    result = run_cli(
        ["import-sends", str(SAMPLES / "sends.csv"), "--json"], sandbox=sandbox, cwd=tmp_path
    )
    assert result.returncode == 1, result.output  # the samples hold rejected rows
    data = one_object(result, "import_summary")
    assert data["status"] == "completed"
    assert "error" not in data
    assert "records read" in result.stderr


def test_a_run_stopped_by_the_server_is_the_summary_with_its_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(20)])
    result = run_cli(
        ["import-sends", str(source), "--json"], sandbox=sandbox, api_key=WRONG_KEY, cwd=tmp_path
    )
    assert result.returncode == 3, result.output
    data = one_object(result, "import_summary")
    assert data["status"] == "aborted"
    assert data["error"]["code"] == "unauthorized"
    assert data["error"]["http_status"] == 401


def test_a_run_stopped_by_the_reject_limit_says_so(sandbox: RunningSandbox, tmp_path: Path) -> None:
    rows = [send_row(i, to_number="not a phone") for i in range(30)]
    source = write_sends_csv(tmp_path / "s.csv", rows)
    result = run_cli(
        ["import-sends", str(source), "--json", "--max-rejects", "5", "--batch-size", "10"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.output
    data = one_object(result, "import_summary")
    assert data["error"]["code"] == "reject_limit"


def test_clear_result_refusal_and_dry_run(sandbox: RunningSandbox) -> None:
    done = run_cli(["clear", "sends", "--all-time", "--yes", "--json"], sandbox=sandbox)
    assert done.returncode == 0, done.output
    assert "sends" in one_object(done, "clear_result")["cleared"]
    refused = run_cli(["clear", "sends", "--all-time", "--json"], sandbox=sandbox)
    assert refused.returncode == 2
    assert one_object(refused, "error_envelope")["error"]["code"] == "usage"
    dry = run_cli(["clear", "sends", "--all-time", "--dry-run", "--json"], sandbox=sandbox)
    assert dry.returncode == 0
    assert json.loads(dry.stdout)["confirm"] is True
    VALIDATOR.validate(json.loads(dry.stdout))


def test_unsubscribe_one_many_and_wrong(sandbox: RunningSandbox, tmp_path: Path) -> None:
    one = run_cli(
        ["unsubscribe", "+14155559876", "--list", "+18005551234", "--json"], sandbox=sandbox
    )
    assert one.returncode == 0, one.output
    one_object(one, "unsubscribe_result")
    neither = run_cli(["unsubscribe", "--json"], sandbox=sandbox)
    assert neither.returncode == 2
    assert one_object(neither, "error_envelope")["error"]["code"] == "usage"
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone_number,list_number\n+14155559877,+18005551234\n")
    many = run_cli(
        ["unsubscribe", "--file", str(contacts), "--json"], sandbox=sandbox, cwd=tmp_path
    )
    assert many.returncode == 0, many.output
    assert "months" not in one_object(many, "unsubscribe_summary")


def test_summary_file_is_private_and_holds_the_json_summary(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(5)])
    target = tmp_path / "summary.json"
    result = run_cli(
        ["import-sends", str(source), "--summary-file", str(target), "--quiet"],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.output
    assert result.stdout == ""  # without --json, stdout stays empty
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    data = json.loads(target.read_text())
    Draft202012Validator({**SCHEMA, "$ref": "#/$defs/import_summary"}).validate(data)
    assert data["imported"] == 5
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_an_unwritable_summary_file_stops_the_run_before_anything_is_sent(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(5)])
    result = run_cli(
        ["import-sends", str(source), "--json", "--summary-file", str(tmp_path / "no" / "s.json")],
        sandbox=sandbox,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.output
    data = one_object(result, "error_envelope")
    assert "summary file" in data["error"]["message"]
    assert requests_to(sandbox, SENDS_ENDPOINT) == 0


def test_a_run_over_several_files_has_a_row_per_file_in_the_schema(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for part in range(2):
        write_sends_csv(drop / f"part-{part}.csv", [send_row(part * 10 + i) for i in range(3)])
    result = run_cli(["import-sends", str(drop), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.output
    data = one_object(result, "import_summary")
    assert [Path(row["path"]).name for row in data["files"]] == ["part-0.csv", "part-1.csv"]
    assert sum(row["imported"] for row in data["files"]) == data["imported"] == 6
