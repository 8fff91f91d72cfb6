"""Named connection profiles: the TOML file a team shares, read and checked.

The file lives in the user's config folder (``profiles_path()``, e.g.
``~/.config/trackly-migrate/profiles.toml``) and holds one table per profile::

    [profiles.staging]
    base_url = "https://staging.tracklysms.com/api"
    api_key_file = "~/.config/trackly-migrate/staging.key"   # relative: to this file's folder

    [profiles.production]
    api_key_file = "production.key"

A profile names a key *file*, never a key: the profiles file is the one a team copies around,
so an ``api_key`` in it is refused rather than read. The tool only reads this file; it never
writes one. Which profile applies, and how it ranks against flags and the environment, is
``config.py``'s business.
"""

from __future__ import annotations

import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from trackly_migrate.errors import UsageError

PROFILE_KEYS = ("base_url", "api_key_file", "ca_bundle")


@dataclass(frozen=True)
class Profile:
    """One named profile; paths are absolute (resolved against the profiles file's folder)."""

    name: str
    base_url: str | None = None
    api_key_file: Path | None = None
    ca_bundle: Path | None = None


def profiles_path() -> Path:
    """Where the profiles file is looked for: the user's config folder (platformdirs)."""
    return platformdirs.user_config_path("trackly-migrate") / "profiles.toml"


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """Every profile of the file at ``path`` (default ``profiles_path()``); none if it is absent.

    A malformed file is a usage error naming the file and the line, as TOML reports it.
    """
    path = path or profiles_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Cannot read the profiles file {path}: {exc}.") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message ends "(at line N, column M)": the place to fix.
        raise UsageError(
            f"The profiles file {path} is not valid TOML: {exc}.",
            hint="Each profile is a table such as [profiles.staging] with base_url and "
            "api_key_file.",
        ) from None
    unknown = sorted(set(document) - {"profiles"})
    if unknown:
        raise UsageError(
            f"The profiles file {path} has unknown top-level key(s): {', '.join(unknown)}.",
            hint="Put each profile under [profiles.NAME].",
        )
    tables = document.get("profiles", {})
    if not isinstance(tables, dict):
        raise UsageError(f"In {path}, profiles must be tables: [profiles.NAME].")
    return {name: _profile(path, name, table) for name, table in tables.items()}


def _profile(path: Path, name: str, table: Any) -> Profile:
    where = f"In {path}, profile {name!r}"
    if not isinstance(table, dict):
        raise UsageError(f"{where} is not a table.", hint=f"Write it as [profiles.{name}].")
    if "api_key" in table:
        raise UsageError(
            f"{where} holds an API key itself; profiles name a key file instead.",
            hint="Move the key to a file only you can read (chmod 600) and set "
            'api_key_file = "PATH" in the profile.',
        )
    unknown = sorted(set(table) - set(PROFILE_KEYS))
    if unknown:
        raise UsageError(
            f"{where} has unknown key(s): {', '.join(unknown)}; a profile may set "
            f"{', '.join(PROFILE_KEYS)}."
        )
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{where}: {key} must be a non-empty string, not {value!r}.")

    def file(key: str) -> Path | None:
        value = table.get(key)
        return None if value is None else (path.parent / Path(value).expanduser()).resolve()

    return Profile(name, table.get("base_url"), file("api_key_file"), file("ca_bundle"))


def find_profile(name: str, path: Path | None = None) -> Profile:
    """The profile called ``name``, checked to name a key file that exists."""
    path = path or profiles_path()
    profiles = load_profiles(path)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        hint = (
            f"Profiles in {path}: {known}. `trackly-migrate profiles` lists them."
            if path.exists()
            else f"There is no profiles file: create {path} with a [profiles.{name}] table."
        )
        raise UsageError(f"Unknown profile {name!r}.", hint=hint)
    profile = profiles[name]
    if profile.api_key_file is not None and not profile.api_key_file.is_file():
        raise UsageError(
            f"Profile {name!r} names the API key file {profile.api_key_file}, which does "
            "not exist.",
            hint=f"Create it (one line, the key; chmod 600) or fix api_key_file in {path}.",
        )
    return profile


def key_file_warning(path: Path) -> str | None:
    """A warning if users other than the owner may read the key file at ``path``."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # reading it will report the problem
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"the API key file {path} is readable by other users (mode "
            f"{stat.S_IMODE(mode):03o}); make it private: chmod 600 {path}"
        )
    return None
