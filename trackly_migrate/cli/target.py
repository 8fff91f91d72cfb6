"""Where a command sends: API settings from the options, or an embedded sandbox."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackly_migrate.config import ApiSettings, check_base_url, check_ca_bundle, read_api_key
from trackly_migrate.errors import UsageError


@dataclass(frozen=True)
class ApiOptions:
    """The options that name the API and its key (``--base-url``, ``--api-key`` ...)."""

    base_url: str | None
    api_key: str | None
    key_file: Path | None
    ca_bundle: Path | None

    def settings(self) -> ApiSettings:
        url = check_base_url(self.base_url)
        key = read_api_key(flag_value=self.api_key, key_file=self.key_file)
        return ApiSettings(base_url=url, api_key=key, ca_bundle=check_ca_bundle(self.ca_bundle))

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
