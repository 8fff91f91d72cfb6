"""The core without the CLI: run_import called directly, errors crossing processes."""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import SAMPLES, send_row, stored_imported_ids, write_sends_csv
from trackly_migrate.config import ApiSettings
from trackly_migrate.errors import (
    ApiConnectionError,
    AuthenticationError,
    ExitCode,
    RateLimitedError,
    TracklyMigrateError,
    UsageError,
)
from trackly_migrate.pipeline import (
    ImportRequest,
    Limits,
    Normalization,
    Output,
    Source,
    Target,
    run_import,
)
from trackly_migrate.pipeline.ports import ProgressState
from trackly_migrate.records import Kind
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
            source=Source(str(source)),
            target=Target(ApiSettings(sandbox.url, DEMO_API_KEY), sender_process=sender_process),
            limits=Limits(batch_size=500),
            output=Output(tmp_path / "s.errors.jsonl"),
        ),
        observer,
    )
    summary = outcome.summary
    assert outcome.error is None
    assert (summary.counts.read, summary.counts.imported, summary.counts.rejected_local) == (
        1500,
        1499,
        1,
    )
    assert summary.counts.balanced()
    assert len(stored_imported_ids(sandbox)) == 5 + 1499
    assert observer.progress_seen[-1].counts.imported == 1499
    assert (tmp_path / "s.errors.jsonl").read_text().count("\n") == 1


def test_an_auth_failure_in_the_sender_process_reaches_the_run(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    source = write_sends_csv(tmp_path / "s.csv", [send_row(i) for i in range(10)])
    outcome = run_import(
        ImportRequest(
            kind=Kind.SENDS,
            source=Source(str(source)),
            target=Target(ApiSettings(sandbox.url, "trk_" + "0" * 32)),
        ),
        Recorder(),
    )
    assert isinstance(outcome.error, AuthenticationError)
    assert outcome.error.exit_code is ExitCode.ABORTED
    assert outcome.summary.counts.pending == 10
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


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use from Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    shutil.copy(SAMPLES / "sends.csv", tmp_path / "sends.csv")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example


def _usage_error(make: Callable[[], object]) -> str:
    with pytest.raises(UsageError) as caught:
        make()
    return caught.value.message


def test_a_library_caller_gets_the_checks_the_cli_runs(tmp_path: Path) -> None:
    source = Source(str(tmp_path / "s.csv"))
    message = _usage_error(lambda: Normalization(default_region="usa"))
    assert "default_region (--default-region)" in message and "'usa'" in message
    message = _usage_error(lambda: Normalization(timezone="Mars/Base"))
    assert "timezone (--timezone)" in message
    message = _usage_error(
        lambda: ImportRequest(Kind.SENDS, source, Target(dry_run=True), Normalization({"idd": "X"}))
    )
    assert "mapping (--map)" in message and "'idd'" in message
    for limits, field in [
        (lambda: Limits(batch_size=0), "batch_size (--batch-size)"),
        (lambda: Limits(batch_size=1001), "batch_size (--batch-size)"),
        (lambda: Limits(concurrency=65), "concurrency (--concurrency)"),
        (lambda: Limits(max_rejects=-1), "max_rejects (--max-rejects)"),
        (lambda: Limits(max_reject_ratio=1.5), "max_reject_ratio"),
        (lambda: Limits(max_body_bytes=0), "max_body_bytes (--max-body-bytes)"),
        (lambda: Limits(timeout=0), "timeout (--timeout)"),
    ]:
        assert field in _usage_error(limits)
    assert "sandbox_db (--sandbox-db)" in _usage_error(
        lambda: Target(dry_run=True, sandbox_db=tmp_path / "x.db")
    )
    assert "settings" in _usage_error(lambda: Target())
    assert "format (--format)" in _usage_error(lambda: Source("x", format="xml"))  # type: ignore[arg-type]


def test_the_request_keeps_what_it_checked() -> None:
    normalization = Normalization(["id=Sid"], default_region="us", timezone="UTC")
    source = Source("-", delimiter="tab")
    request = ImportRequest(Kind.SENDS, source, Target(dry_run=True), normalization)
    assert request.normalization.fields == {"id": "Sid"}
    assert request.normalization.default_region == "US"
    assert request.normalization.zone is not None
    assert request.source.delimiter == "\t"
