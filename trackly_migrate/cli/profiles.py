"""``profiles``: list the connection profiles of the profiles file, keys redacted."""

from __future__ import annotations

import sys

from trackly_migrate.cli.boundary import error_boundary

EXAMPLE = """\
[profiles.staging]
base_url = "https://staging.tracklysms.com/api"
api_key_file = "staging.key"      # relative to this folder; chmod 600
"""


@error_boundary
def profiles_command() -> None:
    """List the connection profiles (base URL and API key file), keys redacted.

    Select one with --profile NAME or TRACKLY_PROFILE. A flag or a TRACKLY_* variable
    overrides what the profile says.
    """
    # Imported here, not at the top: every command line loads the CLI modules (start-up).
    from rich.markup import escape

    from trackly_migrate.config import (
        PRODUCTION_BASE_URL,
        PROFILE_ENV,
        profile_name,
        redacted_key_in,
    )
    from trackly_migrate.display import stderr_console
    from trackly_migrate.profiles import key_file_warning, load_profiles, profiles_path

    path = profiles_path()
    profiles = load_profiles(path)
    console = stderr_console()
    if not profiles:
        console.print(f"No profiles: {escape(str(path))} does not exist or holds none.")
        console.print("To add one, write for example:\n")
        console.print(EXAMPLE, markup=False, highlight=False)
        return
    active = profile_name(None)
    # Plain lines on stdout, one per profile: a table would cut the paths on a narrow terminal.
    lines = [f"Profiles in {path} (* = selected by {PROFILE_ENV}):"]
    warnings = []
    for name, profile in sorted(profiles.items()):
        key_file = profile.api_key_file
        if key_file is not None and (warning := key_file_warning(key_file)):
            warnings.append(warning)
        if key_file is None:
            key = "no key file"
        elif not key_file.is_file():
            key = f"key file {key_file} is missing"
        else:
            key = f"key {redacted_key_in(key_file)} from {key_file}"
        url = profile.base_url or f"{PRODUCTION_BASE_URL} (default)"
        lines.append(f"{'*' if name == active else ' '} {name}: {url}, {key}")
    sys.stdout.write("\n".join(lines) + "\n")
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
