"""Shell completion, end to end: the real CLI answers each shell's protocol, and
``--show-completion`` / ``--install-completion`` give a script that a real bash runs.

The options and the answers are the app's own (``cli/completion.py``), not Typer's, so that
``--help`` and a Tab do not import pydantic or Rich (issue 13, tests/test_startup_imports.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = [
    "import-sends",
    "import-clicks",
    "clear",
    "unsubscribe",
    "history",
    "profiles",
    "sandbox",
]
BASH = shutil.which("bash")
needs_bash = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def clean_env(**extra: str) -> dict[str, str]:
    """HOME is the test's own (conftest's ``isolated_folders``): installing writes there."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TRACKLY_", "_TRACKLY", "_TYPER"))
    }
    # The console script first: the bash script runs ``trackly-migrate`` by name.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackly_migrate", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def complete_bash(line: str) -> list[str]:
    """What the CLI answers bash for the words of ``line`` (a trailing space: a new word)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    done = run(
        [],
        clean_env(
            _TRACKLY_MIGRATE_COMPLETE="complete_bash",
            COMP_WORDS=line,
            COMP_CWORD=str(cword),
        ),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def complete_typed(shell: str, line: str, **extra: str) -> str:
    """What the CLI answers zsh, fish or PowerShell (they pass the whole line)."""
    done = run(
        [],
        clean_env(
            _TRACKLY_MIGRATE_COMPLETE=f"complete_{shell}", _TYPER_COMPLETE_ARGS=line, **extra
        ),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_completes_the_command_names() -> None:
    assert complete_bash("trackly-migrate ") == COMMANDS
    assert complete_bash("trackly-migrate imp") == ["import-sends", "import-clicks"]


def test_bash_completes_an_option_and_its_choices() -> None:
    assert complete_bash("trackly-migrate import-sends --dr") == ["--dry-run"]
    assert complete_bash("trackly-migrate import-sends --format ") == ["csv", "jsonl"]
    assert complete_bash("trackly-migrate import-sends --format j") == ["jsonl"]


def test_completion_follows_the_words_already_typed() -> None:
    """The words are parsed without converting values (cli/command_classes.py): an option's
    value is still consumed as its value, and an option given once is not offered again."""
    line = "trackly-migrate import-sends --format csv --batch-size 10 --dr"
    assert complete_bash(line) == ["--dry-run"]
    assert complete_bash("trackly-migrate import-sends --dry-run --dr") == []
    # A value that a real run would refuse does not stop completion.
    line = "trackly-migrate import-sends --batch-size lots --concurrency many --dr"
    assert complete_bash(line) == ["--dry-run"]


def test_completion_runs_no_option_callback() -> None:
    """An option already typed is not acted on: --version printed the version as the
    completions (Click runs the callbacks while it parses for completion)."""
    assert complete_bash("trackly-migrate --version imp") == ["import-sends", "import-clicks"]


def test_zsh_fish_and_powershell_get_the_help_texts() -> None:
    help_text = "Read and validate only; send nothing."
    line = "trackly-migrate import-sends --dr"
    zsh = complete_typed("zsh", line)
    assert zsh.strip() == f'_arguments \'*: :(("--dry-run":"{help_text}"))\''
    fish = complete_typed("fish", line, _TYPER_COMPLETE_FISH_ACTION="get-args")
    assert fish.strip() == f"--dry-run\t{help_text}"
    powershell = complete_typed("powershell", line, _TYPER_COMPLETE_WORD_TO_COMPLETE="--dr")
    assert powershell.strip() == f"--dry-run:::{help_text}"
    # zsh's quoting is kept: a ':' in a help text is escaped.
    zsh = complete_typed("zsh", "trackly-migrate sa")
    assert zsh.startswith('_arguments \'*: :(("sandbox":"')


def from_bash(option: str) -> subprocess.CompletedProcess[str]:
    """The CLI with ``option``, as a child of bash: the shell is detected from the parent
    process (``"$@"; exit $?`` keeps bash from replacing itself with the command)."""
    assert BASH is not None
    command = [sys.executable, "-m", "trackly_migrate", option]
    done = subprocess.run(
        [BASH, "-c", '"$@"; exit $?', "bash", *command],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def bash_script() -> str:
    return from_bash("--show-completion").stdout


@needs_bash
def test_show_completion_prints_the_bash_script(tmp_path: Path) -> None:
    script = bash_script()
    assert "_TRACKLY_MIGRATE_COMPLETE=complete_bash" in script
    assert "complete -o default -F _trackly_migrate_completion trackly-migrate" in script
    home = Path(os.environ["HOME"])
    assert home.is_relative_to(tmp_path)
    assert list(home.iterdir()) == []  # showing installs nothing


@needs_bash
def test_the_shown_script_completes_in_a_real_bash(tmp_path: Path) -> None:
    script = tmp_path / "trackly-migrate.sh"
    script.write_text(bash_script())
    program = (
        f"source {script}\n"
        "COMP_WORDS=(trackly-migrate import-sends --dr); COMP_CWORD=2\n"
        "_trackly_migrate_completion trackly-migrate\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    assert BASH is not None
    done = subprocess.run(
        [BASH, "--norc", "-c", program],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["--dry-run"]


@needs_bash
def test_install_completion_installs_the_bash_script(tmp_path: Path) -> None:
    done = from_bash("--install-completion")
    home = Path(os.environ["HOME"])
    assert home.is_relative_to(tmp_path)
    installed = home / ".bash_completions" / "trackly-migrate.sh"
    assert f"bash completion installed in {installed}" in done.stdout
    assert installed.read_text() == bash_script().rstrip("\n")
    assert f"source '{installed}'" in (home / ".bashrc").read_text()
