"""The options the commands share, as ``Annotated`` types (their checks are the core's).

Ranges such as ``--batch-size 1-1000`` are checked by the request (``pipeline/request.py``),
in one place for the command line and for Python callers alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trackly_migrate.config import API_KEY_ENV, BASE_URL_ENV, CA_BUNDLE_ENV
from trackly_migrate.readers import InputFormat

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
    InputFormat | None,
    typer.Option(
        "--format",
        metavar="csv|jsonl",
        help="Input format; inferred from the file name, needed for stdin.",
    ),
]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", metavar="NAME", help="Text encoding of the input, e.g. cp1252.")
]
DelimiterOpt = Annotated[
    str, typer.Option("--delimiter", metavar="CHAR", help="CSV delimiter: ',' ';' or 'tab'.")
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
