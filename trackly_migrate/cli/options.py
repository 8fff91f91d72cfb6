"""The options the commands share, as ``Annotated`` types (their checks are the core's).

Ranges such as ``--batch-size 1-1000`` are checked by the request (``pipeline/request.py``),
in one place for the command line and for Python callers alike.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

# config.py's names, written out: config loads tomllib and platformdirs (profiles), which
# --help and tab completion would wait for (issue 13; tests/test_startup_imports.py pins them).
API_KEY_ENV = "TRACKLY_API_KEY"
BASE_URL_ENV = "TRACKLY_BASE_URL"
CA_BUNDLE_ENV = "TRACKLY_CA_BUNDLE"
PROFILE_ENV = "TRACKLY_PROFILE"


class FormatChoice(StrEnum):
    """``readers.InputFormat``'s values (``Source`` takes either): readers is not imported
    just to list two choices, or ``--help`` would wait for it (tests pin the two alike)."""

    CSV = "csv"
    JSONL = "jsonl"


SandboxOpt = Annotated[
    bool,
    typer.Option("--sandbox", help="Send to an embedded local sandbox instead (no key needed)."),
]
SandboxDbOpt = Annotated[
    Path | None,
    typer.Option(
        "--sandbox-db",
        metavar="PATH",
        help="SQLite file for --sandbox (kept, so a later import can build on it).",
    ),
]
MaxBodyOpt = Annotated[
    int,
    typer.Option(
        "--max-body-bytes",
        metavar="BYTES",
        help="Largest request body; a batch that would be larger is split (default: the "
        "API's 10 MiB).",
    ),
]

FileArg = Annotated[
    str,
    typer.Argument(
        metavar="FILE", help="CSV or JSONL file (.gz read transparently), or - for stdin."
    ),
]
FormatOpt = Annotated[
    FormatChoice | None,
    typer.Option(
        "--format",
        metavar="csv|jsonl",
        help="Input format; inferred from the file name, needed for stdin.",
    ),
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding", metavar="NAME", help="Text encoding of the input, e.g. cp1252 (utf-8)."
    ),
]
DelimiterOpt = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        metavar="CHAR",
        help="CSV delimiter: ',' ';' '|' or 'tab' (default: detected from the header line).",
    ),
]
QuotecharOpt = Annotated[
    str, typer.Option("--quotechar", metavar="CHAR", help="CSV quote character (default '\"').")
]
RecipeOpt = Annotated[
    Path | None,
    typer.Option(
        "--recipe",
        metavar="FILE.toml",
        help="How one platform's export reads: map, default_region, timezone, "
        "timestamp_format, encoding, delimiter. Options given here override it.",
    ),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        metavar="FIELD=COLUMN",
        help="Read FIELD from COLUMN; repeat for each renamed field (e.g. --map id=Sid).",
    ),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--default-region",
        metavar="REGION",
        help="Region for national numbers without +country code (ISO code, e.g. US).",
    ),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force", help="Replace a file already at the errors report's place (kept otherwise)."
    ),
]
TimezoneOpt = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        metavar="AREA/CITY",
        help="IANA time zone for timestamps written without an offset (e.g. America/New_York).",
    ),
]
TimestampFormatOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--timestamp-format",
        metavar="FORMAT",
        help="How timestamps are written: iso (default), epoch (seconds), epoch_ms, or a "
        "strptime pattern such as '%m/%d/%Y %H:%M'. FIELD=FORMAT sets one field (repeatable).",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        metavar="URL",
        envvar=BASE_URL_ENV,
        show_envvar=True,
        help="API base URL (default: production). Plain http:// only to localhost.",
    ),
]
ApiKeyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--api-key-file",
        metavar="PATH",
        help=f"File holding the API key (else {API_KEY_ENV} is used).",
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help=f"API key. Visible to other users in `ps`: prefer {API_KEY_ENV} or --api-key-file.",
    ),
]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        metavar="NAME",
        # Not envvar=: config.py reads TRACKLY_PROFILE, so flag > env > profile stays in one
        # place for the command line and for Python callers.
        help=f"Connection profile from the profiles file (`trackly-migrate profiles`); "
        f"else {PROFILE_ENV}. Flags and TRACKLY_* variables override its values.",
    ),
]
CaBundleOpt = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        metavar="PATH",
        envvar=CA_BUNDLE_ENV,
        show_envvar=True,
        help="PEM file of the CA certificate(s) to trust for https (a private or company CA).",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
]
SummaryFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--summary-file",
        metavar="PATH",
        help="Also write the JSON summary to PATH (0600, replaced atomically), for cron jobs.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary table.")]
ConcurrencyOpt = Annotated[
    int,
    typer.Option(
        "--concurrency",
        metavar="N",
        help="Requests in flight at most, 1-64 (it adapts below that to the server).",
    ),
]
TimeoutOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        min=1,
        help="Seconds to wait for one answer; a request gets 2 tries without one.",
    ),
]
LogFileOpt = Annotated[
    Path | None,
    typer.Option("--log-file", metavar="PATH", help="Append the progress lines to this file."),
]
