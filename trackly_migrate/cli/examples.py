"""The copyable examples that end each command's ``--help`` (and the README reference).

Each is a real command line: tests/test_help.py parses every one against its command and
runs those that need no account (a dry run or the sandbox) from the repository folder.
"""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "import-sends": [
        "trackly-migrate import-sends samples/sends.csv --dry-run",
        "trackly-migrate import-sends samples/sends.csv --sandbox --sandbox-db rehearsal.db",
        "trackly-migrate import-sends samples/other-platform/messages_export.csv "
        "--recipe samples/other-platform/recipe.toml --sandbox",
        "trackly-migrate import-sends 'exports/sends-*.csv.gz' --skip-done --profile staging",
    ],
    "import-clicks": [
        "trackly-migrate import-clicks samples/clicks.jsonl --dry-run",
        "trackly-migrate import-clicks samples/clicks.jsonl --sandbox --sandbox-db rehearsal.db",
        "trackly-migrate import-clicks clicks.jsonl.gz --profile staging --resume",
    ],
    "clear": [
        "trackly-migrate clear sends clicks --before 2024-01-01 --dry-run",
        "trackly-migrate clear sends --all-time --sandbox --yes",
        "trackly-migrate clear revenue --before 2024-01-01 --profile staging",
    ],
    "unsubscribe": [
        "trackly-migrate unsubscribe +14155559876 --list +18005551234 --dry-run",
        "trackly-migrate unsubscribe +14155559876 --list +18005551234 --sandbox",
        "trackly-migrate unsubscribe --file optouts.csv --list +18005551234 --profile staging",
    ],
    "history": [
        "trackly-migrate history",
        "trackly-migrate history --command import-sends --json",
    ],
    "profiles": [
        "trackly-migrate profiles",
        "TRACKLY_PROFILE=staging trackly-migrate profiles",
    ],
    "sandbox": [
        "trackly-migrate sandbox --port 8765 --db rehearsal.db",
        "trackly-migrate sandbox --port 0 --latency 50ms-200ms --fail-rate 0.05",
        "trackly-migrate sandbox --print-seed",
    ],
}


def epilog(command: str) -> str:
    """The ``--help`` epilog of ``command``: its examples, one per line, never rewrapped."""
    # "\b" tells Click's plain formatter not to rewrap the paragraph that follows; Typer's
    # Rich formatter keeps the lines as they are and needs no marker.
    lines = "\n".join(f"  {example}" for example in EXAMPLES[command])
    return f"\b\nExamples:\n{lines}"
