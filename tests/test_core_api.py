"""The core without the CLI: run_import called directly, errors crossing processes."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.helpers import send_row, stored_imported_ids, write_sends_csv
from trackly_migrate.config import ApiSettings
from trackly_migrate.errors import (
    ApiConnectionError,
    AuthenticationError,
    ExitCode,
    RateLimitedError,
    TracklyMigrateError,
)
from trackly_migrate.importer import ProgressState
from trackly_migrate.records import Kind
from trackly_migrate.runner import ImportRequest, run_import
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox


class Recorder:
    def __init__(self) -> None:
        self.progress_seen: list[ProgressState] = []
        self.warnings: list[str] = []

    def progress(self, state: ProgressState) -> None:
        self.progress_seen.append(state)

    def warning(self, message: str) -> None:
        self.warnings.append(message)

    def retry(self, reason: str, delay: float) -> None:
        pass

    def info(self, message: str) -> None:
        pass


@pytest.mark.parametrize("sender_process", [False, True])
def test_run_import_without_the_cli(
    sandbox: RunningSandbox, tmp_path: Path, sender_process: bool
) -> None:
    rows = [send_row(i) for i in range(1500)]
    rows[7]["to_number"] = "invalid"
    source = write_sends_csv(tmp_path / "s.csv", rows)
    observer = Recorder()
    outcome = run_import(
        ImportRequest(
            kind=Kind.SENDS,
            input_path=str(source),
            settings=ApiSettings(sandbox.url, DEMO_API_KEY),
            errors_path=tmp_path / "s.errors.jsonl",
            batch_size=500,
            sender_process=sender_process,
        ),
        observer,
    )
    summary = outcome.summary
    assert outcome.error is None
    assert (summary.read, summary.imported, summary.rejected_local) == (1500, 1499, 1)
    assert summary.balanced()
    assert len(stored_imported_ids(sandbox)) == 5 + 1499
    assert observer.progress_seen[-1].imported == 1499
    assert (tmp_path / "s.errors.jsonl").read_text().count("\n") == 1


def test_an_auth_failure_in_the_sender_process_reaches_the_run(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(10)])
    outcome = run_import(
        ImportRequest(
            kind=Kind.SENDS,
            input_path=str(source),
            settings=ApiSettings(sandbox.url, "trk_" + "0" * 32),
        ),
        Recorder(),
    )
    assert isinstance(outcome.error, AuthenticationError)
    assert outcome.error.exit_code is ExitCode.ABORTED
    assert outcome.summary.pending == 10
    assert outcome.summary.status == "aborted"


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("refused", status=401, code="unauthorized", hint="check the key"),
        RateLimitedError("slow down", status=429, retry_after=3.0),
        ApiConnectionError("dropped", request_sent=False),
    ],
)
def test_errors_survive_pickling_with_their_details(error: TracklyMigrateError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, as the pipe carries them
    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)
