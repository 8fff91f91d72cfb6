"""Installed as users install it: the wheel built from this checkout, in a fresh virtual
environment with no access to the editable install, runs --version, --help and a dry run.

The wheel's dependencies come from the package index (pip's own configuration), so the test
is skipped, saying why, when no index answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO, SAMPLES

# Read at import, before the autouse fixture points HOME at the test's folder: pip's cache
# makes a second run of the suite fast instead of downloading every dependency again.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
INDEX_DOWN = ("No matching distribution", "Could not find a version", "NewConnectionError")


def pip(python: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIP_CACHE_DIR": PIP_CACHE, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run(
        [str(python), "-m", "pip", "--quiet", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def checked(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        if any(marker in result.stderr for marker in INDEX_DOWN):
            pytest.skip(f"no package index reachable to {what}: {result.stderr[-300:]}")
        pytest.fail(f"{what} failed:\n{result.stderr}")


@pytest.mark.timeout(300)
def test_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    checked(pip(Path(sys.executable), "wheel", str(REPO), "--no-deps", "-w", str(wheels)), "build")
    (wheel,) = wheels.glob("trackly_migrate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "trackly_migrate/sandbox/default_seed.json" in names
    assert "trackly_migrate/py.typed" in names
    assert not [name for name in names if name.startswith("tests/")]

    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True, system_site_packages=False)
    python = env_dir / "bin" / "python"
    checked(pip(python, "install", f"{wheel}[sandbox]"), "install the wheel's dependencies")
    command = env_dir / "bin" / "trackly-migrate"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLY_", "PYTHON"))}
        return subprocess.run(
            [str(command), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=clean,
            timeout=60,
            check=False,
        )

    where = subprocess.run(
        [str(python), "-c", "import trackly_migrate; print(trackly_migrate.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert Path(where).is_relative_to(env_dir), where  # not the editable checkout
    version = run("-V")
    assert version.returncode == 0 and version.stdout.startswith("trackly-migrate "), version
    assert run("--help").returncode == 0
    dry = run("import-sends", str(SAMPLES / "sends.csv"), "--dry-run", "--json")
    assert dry.returncode in (0, 1), dry.stderr  # 1: rows wrong on purpose in the sample
    assert '"read"' in dry.stdout
    seed = run("sandbox", "--print-seed")
    assert seed.returncode == 0 and "accounts" in seed.stdout, seed.stderr
