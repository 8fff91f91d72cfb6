"""trackly-migrate: move SMS history from another platform into Trackly SMS."""

PRODUCTION_BASE_URL = "https://app.tracklysms.com/api"

__all__ = ["PRODUCTION_BASE_URL", "__version__"]


def __getattr__(name: str) -> str:
    # Looked up on first use, not at import: importlib.metadata is a third of the start-up
    # time, and until ``__main__`` holds Ctrl-C, start-up is where a signal ends in a traceback.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("trackly-migrate")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0+source"
    globals()["__version__"] = found
    return found
