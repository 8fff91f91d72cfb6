"""trackly-migrate: move SMS history from another platform into Trackly SMS."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trackly-migrate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

PRODUCTION_BASE_URL = "https://app.tracklysms.com/api"

__all__ = ["PRODUCTION_BASE_URL", "__version__"]
