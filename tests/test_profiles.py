"""Profiles: the TOML file in the config folder, ``--profile`` / ``TRACKLY_PROFILE``, and the
one precedence (flag > environment > profile > default), through config.py and the real CLI.

conftest points XDG_CONFIG_HOME and HOME into the test's tmp_path, so each test has its own
config folder and the developer's own profiles never take part.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import SAMPLES, invoke, stored_imported_ids
from trackly_migrate.config import (
    PRODUCTION_BASE_URL,
    ConnectionOptions,
    first_set,
    resolve_settings,
)
from trackly_migrate.errors import UsageError
from trackly_migrate.profiles import load_profiles, profiles_path
from trackly_migrate.sandbox.seed import DEMO_API_KEY, OTHER_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

DEAD_URL = "http://127.0.0.1:9/api"  # the discard port: nothing listens there


def write_profiles(text: str) -> Path:
    path = profiles_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def key_file(name: str, key: str, mode: int = 0o600) -> Path:
    path = profiles_path().parent / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


def test_profiles_file_is_in_the_isolated_config_folder(tmp_path: Path) -> None:
    assert profiles_path().is_relative_to(tmp_path)


def test_first_set_takes_the_first_given_value_in_order() -> None:
    assert first_set(("flag", None), ("env", ""), ("profile", "p"), ("default", "d")) == (
        "profile",
        "p",
    )
    assert first_set(("flag", None)) is None


def test_precedence_flag_then_environment_then_profile_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file("staging.key", OTHER_API_KEY)
    write_profiles(
        '[profiles.staging]\nbase_url = "https://staging.example.com/api"\n'
        'api_key_file = "staging.key"\n'
    )
    # default: no profile, no env, no flag -> production URL (and no key: an error)
    with pytest.raises(UsageError, match="No API key"):
        resolve_settings(ConnectionOptions())
    monkeypatch.setenv("TRACKLY_API_KEY", DEMO_API_KEY)
    assert resolve_settings(ConnectionOptions())[0].base_url == PRODUCTION_BASE_URL
    monkeypatch.delenv("TRACKLY_API_KEY")
    # profile
    settings, _ = resolve_settings(ConnectionOptions(profile="staging"))
    assert settings.base_url == "https://staging.example.com/api"
    assert settings.api_key == OTHER_API_KEY
    # environment beats the profile
    monkeypatch.setenv("TRACKLY_BASE_URL", "https://env.example.com/api")
    monkeypatch.setenv("TRACKLY_API_KEY", DEMO_API_KEY)
    settings, _ = resolve_settings(ConnectionOptions(profile="staging"))
    assert (settings.base_url, settings.api_key) == ("https://env.example.com/api", DEMO_API_KEY)
    # a flag beats the environment
    flag_key = "trk_" + "f" * 32
    flags = ConnectionOptions(
        base_url="https://flag.example.com/api", api_key=flag_key, profile="staging"
    )
    settings, _ = resolve_settings(flags)
    assert (settings.base_url, settings.api_key) == ("https://flag.example.com/api", flag_key)


def test_profile_selected_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key_file("staging.key", OTHER_API_KEY)
    write_profiles('[profiles.staging]\napi_key_file = "staging.key"\n')
    monkeypatch.setenv("TRACKLY_PROFILE", "staging")
    settings, _ = resolve_settings(ConnectionOptions())
    assert settings.api_key == OTHER_API_KEY
    assert settings.base_url == PRODUCTION_BASE_URL


def test_key_file_readable_by_others_is_warned_about() -> None:
    path = key_file("staging.key", OTHER_API_KEY, mode=0o644)
    write_profiles('[profiles.staging]\napi_key_file = "staging.key"\n')
    _, warnings = resolve_settings(ConnectionOptions(profile="staging"))
    assert len(warnings) == 1
    assert str(path) in warnings[0] and "chmod 600" in warnings[0]
    path.chmod(0o600)
    assert resolve_settings(ConnectionOptions(profile="staging"))[1] == []
    # --api-key-file gets the same check
    _, warnings = resolve_settings(
        ConnectionOptions(api_key_file=key_file("x.key", DEMO_API_KEY, 0o640))
    )
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[profiles.staging\n", r"not valid TOML: .*line 1"),
        ('\n\n[profiles.staging]\nbase_url = "x\n', r"not valid TOML: .*line 4"),
        ('[profiles.staging]\napi_key = "trk_x"\n', "holds an API key itself"),
        ('[profiles.staging]\nbase = "x"\n', r"unknown key\(s\): base.*base_url, api_key_file"),
        ("[profiles.staging]\nbase_url = 3\n", "base_url must be a non-empty string"),
        ('[staging]\nbase_url = "x"\n', r"unknown top-level key\(s\): staging"),
    ],
)
def test_malformed_profiles_file_is_a_usage_error(text: str, expected: str) -> None:
    path = write_profiles(text)
    with pytest.raises(UsageError, match=expected) as caught:
        load_profiles()
    assert str(path) in caught.value.message


def test_relative_key_file_is_relative_to_the_profiles_folder_and_tilde_expands() -> None:
    write_profiles(
        '[profiles.a]\napi_key_file = "keys/a.key"\n[profiles.b]\napi_key_file = "~/b.key"\n'
    )
    profiles = load_profiles()
    assert profiles["a"].api_key_file == profiles_path().parent / "keys" / "a.key"
    assert profiles["b"].api_key_file == Path(os.environ["HOME"]) / "b.key"


# --- through the real CLI -------------------------------------------------------------------


def test_import_with_a_profile_reaches_its_server_with_its_key(sandbox: RunningSandbox) -> None:
    key_file("sandbox.key", DEMO_API_KEY)
    write_profiles(
        f'[profiles.rehearsal]\nbase_url = "{sandbox.url}"\napi_key_file = "sandbox.key"\n'
    )
    result = invoke(
        ["import-sends", str(SAMPLES / "sends.csv"), "--profile", "rehearsal", "--json"],
        api_key=None,
    )
    assert result.returncode in (0, 1), result.output
    assert stored_imported_ids(sandbox)
    assert DEMO_API_KEY not in result.output


def test_environment_overrides_the_profile_on_the_cli(sandbox: RunningSandbox) -> None:
    key_file("other.key", OTHER_API_KEY)
    write_profiles(f'[profiles.p]\nbase_url = "{DEAD_URL}"\napi_key_file = "other.key"\n')
    result = invoke(
        ["import-sends", str(SAMPLES / "sends.csv"), "-q"],
        sandbox=sandbox,  # TRACKLY_BASE_URL and TRACKLY_API_KEY (demo) beat the profile's
        env={"TRACKLY_PROFILE": "p"},
    )
    assert result.returncode in (0, 1), result.output
    assert stored_imported_ids(sandbox, "demo")


@pytest.mark.parametrize(
    ("profiles", "args", "expected"),
    [
        (None, ["--profile", "staging"], "There is no profiles file"),
        ('[profiles.prod]\napi_key_file = "k"\n', ["--profile", "staging"], "Unknown profile"),
        ('[profiles.p]\napi_key_file = "gone.key"\n', ["--profile", "p"], "does not exist"),
        ("[profiles.p\n", ["--profile", "p"], "line 1"),
    ],
)
def test_profile_problems_exit_2_even_on_a_dry_run(
    profiles: str | None, args: list[str], expected: str
) -> None:
    if profiles is not None:
        write_profiles(profiles)
        key_file("k", DEMO_API_KEY)
    result = invoke(["import-sends", str(SAMPLES / "sends.csv"), "--dry-run", *args])
    assert result.returncode == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["import-clicks", str(SAMPLES / "clicks.jsonl"), "--dry-run"],
        ["clear", "sends", "--all-time", "--dry-run"],
        ["unsubscribe", "+14155559876", "--list", "+18005551234"],
    ],
)
def test_every_api_command_takes_profile(command: list[str]) -> None:
    result = invoke([*command, "--profile", "missing"], api_key=None)
    assert result.returncode == 2, result.output
    assert "Unknown profile 'missing'" in result.stderr


def test_profiles_lists_them_with_keys_redacted() -> None:
    key_file("staging.key", OTHER_API_KEY, mode=0o644)
    write_profiles(
        '[profiles.staging]\nbase_url = "https://staging.example.com/api"\n'
        'api_key_file = "staging.key"\n[profiles.prod]\napi_key_file = "prod.key"\n'
    )
    result = invoke(["profiles"], api_key=None, env={"TRACKLY_PROFILE": "staging"})
    assert result.returncode == 0, result.output
    assert OTHER_API_KEY not in result.output
    assert f"* staging: https://staging.example.com/api, key trk_…{OTHER_API_KEY[-4:]}" in (
        result.stdout
    )
    assert "  prod: " in result.stdout and "is missing" in result.stdout
    assert "readable by other users" in result.stderr


def test_profiles_without_a_file_says_where_to_write_one() -> None:
    result = invoke(["profiles"], api_key=None)
    assert result.returncode == 0, result.output
    assert str(profiles_path()) in result.stderr and "[profiles.staging]" in result.stderr


def test_the_tool_never_writes_the_profiles_file(sandbox: RunningSandbox) -> None:
    path = key_file("sandbox.key", DEMO_API_KEY)
    text = f'[profiles.r]\nbase_url = "{sandbox.url}"\napi_key_file = "{path}"\n'
    write_profiles(text)
    invoke(["import-sends", str(SAMPLES / "sends.csv"), "--profile", "r", "-q"], api_key=None)
    invoke(["profiles"], api_key=None)
    assert profiles_path().read_text(encoding="utf-8") == text
    assert sorted(p.name for p in profiles_path().parent.iterdir()) == [
        "profiles.toml",
        "sandbox.key",
    ]
