"""Start-up stays light (issue 13): ``--version``, ``--help`` and tab completion answer
without importing what only a running command needs.

Which modules a command line loads is what these tests pin, never how long it takes: a
timing assertion would fail on a loaded machine, the set of modules does not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trackly_migrate import config
from trackly_migrate.cli import app, options
from trackly_migrate.cli.options import FormatChoice
from trackly_migrate.readers import InputFormat
from trackly_migrate.records import Kind
from trackly_migrate.report import WORDS

# Heavy, and needed only once a command runs: the HTTP client, phone numbers, Rich, the
# sender process's machinery, JSON, SQLite (the sandbox), TLS, and pydantic (Typer converts a
# command's values through it: cli/command_classes.py keeps it out of --help and completion).
HEAVY = {
    "httpx",
    "phonenumbers",
    "rich",
    "multiprocessing",
    "orjson",
    "sqlite3",
    "ssl",
    "pydantic",
    "pydantic_core",
}

# Runs the console script's ``main`` in a fresh interpreter with ``argv``, then writes the
# top-level packages it loaded (and the trackly_migrate modules) to the file named last.
PROBE = """
import json, sys
argv, out = sys.argv[1:-1], sys.argv[-1]
sys.argv = ["trackly-migrate", *argv]
from trackly_migrate.__main__ import main
try:
    main()
except SystemExit:
    pass
finally:
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def loaded_modules(
    tmp_path: Path, *argv: str, env: dict[str, str] | None = None
) -> tuple[set[str], str]:
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv, str(out)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(out.read_text())), done.stdout


def heavy_among(modules: set[str]) -> set[str]:
    return {name for name in modules if name.split(".")[0] in HEAVY}


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["import-sends", "--help"],
        ["import-clicks", "--help"],
        ["clear", "--help"],
        ["unsubscribe", "--help"],
        ["sandbox", "--help"],
    ],
    ids=" ".join,
)
def test_version_and_help_load_no_heavy_module(tmp_path: Path, argv: list[str]) -> None:
    modules, stdout = loaded_modules(tmp_path, *argv)
    assert stdout.strip()  # it did answer
    assert heavy_among(modules) == set()
    # Nor the core: the pipeline's composition, the readers, the records; nor the settings
    # (config and profiles load tomllib and platformdirs).
    assert {"trackly_migrate.pipeline.run", "trackly_migrate.readers"} & modules == set()
    assert {"trackly_migrate.records", "trackly_migrate.config"} & modules == set()
    assert {"tomllib", "platformdirs"} & modules == set()


@pytest.mark.parametrize(
    ("shell_env", "answer"),
    [
        ({"COMP_WORDS": "trackly-migrate imp", "COMP_CWORD": "1"}, "import-sends\nimport-clicks"),
        (
            {"COMP_WORDS": "trackly-migrate import-sends --batch-size 9 --dr", "COMP_CWORD": "4"},
            "--dry-run",
        ),
        ({"COMP_WORDS": "trackly-migrate import-sends --format ", "COMP_CWORD": "3"}, "csv\njsonl"),
        ({"COMP_WORDS": "trackly-migrate clear --y", "COMP_CWORD": "2"}, "--yes"),
        (
            {
                "_TRACKLY_MIGRATE_COMPLETE": "complete_zsh",
                "_TYPER_COMPLETE_ARGS": "trackly-migrate sa",
            },
            "sandbox",
        ),
        (
            {
                "_TRACKLY_MIGRATE_COMPLETE": "complete_fish",
                "_TYPER_COMPLETE_FISH_ACTION": "get-args",
                "_TYPER_COMPLETE_ARGS": "trackly-migrate import-sends --dr",
            },
            "--dry-run",
        ),
        (
            {
                "_TRACKLY_MIGRATE_COMPLETE": "complete_powershell",
                "_TYPER_COMPLETE_ARGS": "trackly-migrate import-sends --dr",
                "_TYPER_COMPLETE_WORD_TO_COMPLETE": "--dr",
            },
            "--dry-run",
        ),
    ],
    ids=["bash commands", "bash option", "bash choices", "bash clear", "zsh", "fish", "powershell"],
)
def test_tab_completion_loads_no_heavy_module(
    tmp_path: Path, shell_env: dict[str, str], answer: str
) -> None:
    """Nor pydantic (a Tab parses the words typed without converting them) nor Rich (which
    zsh, fish and PowerShell's help texts would go through in Typer's own shell classes)."""
    modules, stdout = loaded_modules(
        tmp_path, env={"_TRACKLY_MIGRATE_COMPLETE": "complete_bash", **shell_env}
    )
    assert answer in stdout
    assert heavy_among(modules) == set()


def test_a_running_command_still_imports_what_it_needs(tmp_path: Path) -> None:
    """The probe sees imports: a dry run does load the readers and records."""
    data = tmp_path / "sends.csv"
    data.write_text("id,list_id,to_number,timestamp\n1,L1,+14155550100,2024-01-01T00:00:00Z\n")
    modules, _ = loaded_modules(tmp_path, "import-sends", str(data), "--dry-run", "--quiet")
    assert {"trackly_migrate.readers", "trackly_migrate.records", "phonenumbers"} <= modules


def test_command_names_are_the_reports_words() -> None:
    """The CLI writes its command names out (``report.WORDS`` needs phonenumbers)."""
    names = {command.name for command in app.registered_commands}
    assert {WORDS[kind].command for kind in Kind} <= names


def test_format_choices_are_the_readers_formats() -> None:
    assert [choice.value for choice in FormatChoice] == [fmt.value for fmt in InputFormat]


@pytest.mark.parametrize("name", ["API_KEY_ENV", "BASE_URL_ENV", "CA_BUNDLE_ENV", "PROFILE_ENV"])
def test_option_help_names_configs_variables(name: str) -> None:
    """cli/options.py writes config's variable names out (config is not loaded for --help)."""
    assert getattr(options, name) == getattr(config, name)
