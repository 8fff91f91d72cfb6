"""Where a command sends: API settings from the options, or an embedded sandbox."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackly_migrate.errors import UsageError

# config (tomllib, platformdirs) is imported when a command runs: --help and tab completion
# load this module too (issue 13).
if TYPE_CHECKING:
    from trackly_migrate.config import ApiSettings


@dataclass(frozen=True)
class ApiOptions:
    """The options that name the API and its key (``--base-url``, ``--api-key`` ...).

    ``--profile`` is checked on construction, so an unknown or broken profile is an error
    even on a dry run, which reads no key.
    """

    base_url: str | None
    api_key: str | None
    key_file: Path | None
    ca_bundle: Path | None
    profile: str | None = None

    def __post_init__(self) -> None:
        from trackly_migrate.config import selected_profile

        selected_profile(self.profile)

    def settings(self) -> ApiSettings:
        from trackly_migrate.config import ConnectionOptions, resolve_settings

        options = ConnectionOptions(
            self.base_url, self.api_key, self.key_file, self.ca_bundle, self.profile
        )
        settings, warnings = resolve_settings(options)
        from rich.markup import escape  # not at import: every command line loads this module

        from trackly_migrate.display import stderr_console

        for warning in warnings:
            stderr_console().print(f"[yellow]warning:[/] {escape(warning)}")
        return settings

    def optional_settings(self, *, required: bool) -> ApiSettings | None:
        try:
            return self.settings()
        except UsageError:
            if required:
                raise
            return None


def command_target(
    stack: contextlib.ExitStack,
    api: ApiOptions,
    sandbox: bool,
    sandbox_db: Path | None,
    *,
    required: bool,
) -> ApiSettings | None:
    """The API of a clear or unsubscribe: the configured one, or an embedded sandbox."""
    if sandbox_db is not None and not sandbox:
        raise UsageError("--sandbox-db needs --sandbox.", hint="Add --sandbox.")
    if sandbox:
        from trackly_migrate.pipeline.run import embedded_sandbox  # not at start-up: heavy

        return stack.enter_context(embedded_sandbox(sandbox_db))
    return api.optional_settings(required=required)


def interactive(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
