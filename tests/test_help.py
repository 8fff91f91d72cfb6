"""Every command's ``--help`` ends with 2-4 copyable examples, and each is a real command:
it parses against its command, and those that need no account run from a copy of samples/."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import typer.core
import typer.main

from tests.helpers import SAMPLES, invoke
from trackly_migrate import __version__
from trackly_migrate.cli import app
from trackly_migrate.cli.examples import EXAMPLES

ALL = [(command, example) for command, examples in EXAMPLES.items() for example in examples]


def words(example: str) -> list[str]:
    """The arguments after ``trackly-migrate``, leading VAR=value assignments dropped."""
    parts = shlex.split(example)
    while "=" in parts[0]:
        parts.pop(0)
    assert parts[0] == "trackly-migrate", example
    return parts[1:]


def test_every_command_has_examples() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    assert sorted(EXAMPLES) == sorted(group.commands)
    assert all(2 <= len(examples) <= 4 for examples in EXAMPLES.values())


@pytest.mark.parametrize("rich", ["1", "0"])
@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_help_ends_with_the_examples(command: str, rich: str) -> None:
    result = invoke([command, "--help"], env={"TYPER_USE_RICH": rich, "COLUMNS": "200"})
    assert result.returncode == 0, result.output
    tail = [line.strip(" │") for line in result.stdout.rstrip().splitlines()]
    tail = [line for line in tail if line.strip()]
    expected = ["Examples:", *EXAMPLES[command]]
    assert [line.strip() for line in tail[-len(expected) :]] == expected


@pytest.mark.parametrize(("command", "example"), ALL)
def test_example_parses_against_its_command(command: str, example: str) -> None:
    args = words(example)
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    with group.make_context("trackly-migrate", list(args), resilient_parsing=False) as root:
        name, cmd, rest = group.resolve_command(root, list(args))
        assert name == command and cmd is not None
        cmd.make_context(name, rest, parent=root)  # raises on an unknown option or bad value


def needs_no_account(example: str) -> bool:
    if "staging" in example:
        return False
    if example.startswith("trackly-migrate sandbox"):
        return "--print-seed" in example  # the others serve until stopped
    return example in ("trackly-migrate profiles", "trackly-migrate history") or any(
        flag in example for flag in ("--dry-run", "--sandbox")
    )


@pytest.mark.parametrize(("command", "example"), [(c, e) for c, e in ALL if needs_no_account(e)])
def test_example_runs(tmp_path: Path, command: str, example: str) -> None:
    shutil.copytree(SAMPLES, tmp_path / "samples")
    result = invoke(words(example), api_key=None, cwd=tmp_path)
    # 1: the samples hold a few rows that are wrong on purpose
    assert result.returncode in (0, 1), result.output
    assert "Traceback" not in result.output


def test_runnable_examples_cover_every_command() -> None:
    assert {c for c, e in ALL if needs_no_account(e)} == set(EXAMPLES)


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_flags(flag: str) -> None:
    result = invoke([flag])
    assert (result.returncode, result.stdout) == (0, f"trackly-migrate {__version__}\n")
