"""trackly-migrate: move SMS history from another platform into Trackly SMS.

Use from Python (README "Use from Python")::

    from trackly_migrate import ImportRequest, Kind, Source, Target, run_import

The names below are looked up on first use, not at import (see ``__getattr__``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and editors
    from trackly_migrate.client import RetryPolicy
    from trackly_migrate.config import PRODUCTION_BASE_URL, ApiSettings
    from trackly_migrate.counts import Counts
    from trackly_migrate.errors import (
        ApiConnectionError,
        ApiError,
        AuthenticationError,
        ExitCode,
        InputDamagedError,
        InputError,
        OutputError,
        RateLimitedError,
        RequestRejectedError,
        ServerError,
        TracklyMigrateError,
        UsageError,
    )
    from trackly_migrate.pipeline import (
        ImportOutcome,
        ImportRequest,
        Limits,
        Normalization,
        Output,
        Resume,
        Source,
        StopEvents,
        Target,
        run_import,
    )
    from trackly_migrate.readers import InputFormat
    from trackly_migrate.records import Kind
    from trackly_migrate.report import Summary

from trackly_migrate.pipeline import __all__ as _pipeline_names  # light: its names load lazily

# The public Python API: name -> the module that defines it.
_PUBLIC = {
    # The pipeline package lists (and lazily loads) its own public names: one list, not two.
    **dict.fromkeys(_pipeline_names, "trackly_migrate.pipeline"),
    "Counts": "trackly_migrate.counts",
    "Summary": "trackly_migrate.report",
    "Kind": "trackly_migrate.records",
    "InputFormat": "trackly_migrate.readers",
    "ApiSettings": "trackly_migrate.config",
    "PRODUCTION_BASE_URL": "trackly_migrate.config",
    "RetryPolicy": "trackly_migrate.client",
    **dict.fromkeys(
        (
            "ExitCode",
            "TracklyMigrateError",
            "UsageError",
            "InputError",
            "OutputError",
            "InputDamagedError",
            "ApiError",
            "ApiConnectionError",
            "AuthenticationError",
            "RateLimitedError",
            "ServerError",
            "RequestRejectedError",
        ),
        "trackly_migrate.errors",
    ),
}

__all__ = [
    "PRODUCTION_BASE_URL",
    "ApiConnectionError",
    "ApiError",
    "ApiSettings",
    "AuthenticationError",
    "Counts",
    "ExitCode",
    "ImportOutcome",
    "ImportRequest",
    "InputDamagedError",
    "InputError",
    "InputFormat",
    "Kind",
    "Limits",
    "Normalization",
    "Output",
    "OutputError",
    "RateLimitedError",
    "RequestRejectedError",
    "Resume",
    "RetryPolicy",
    "ServerError",
    "Source",
    "StopEvents",
    "Summary",
    "Target",
    "TracklyMigrateError",
    "UsageError",
    "__version__",
    "run_import",
]


def __getattr__(name: str) -> Any:
    # Looked up on first use, not at import: importlib.metadata is a third of the start-up
    # time, and until ``__main__`` holds Ctrl-C, start-up is where a signal ends in a traceback.
    # The API's modules are imported on first use for the same reason.
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("trackly-migrate")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0+source"
    globals()["__version__"] = found
    return found
