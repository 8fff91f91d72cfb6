"""``unsubscribe``: one contact from a list, or many from a file (an import of contacts)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from trackly_migrate.cli.boundary import error_boundary
from trackly_migrate.cli.imports import Presentation, run_request, sending_target
from trackly_migrate.cli.json_output import emit
from trackly_migrate.cli.options import (
    ApiKeyFileOpt,
    ApiKeyOpt,
    BaseUrlOpt,
    CaBundleOpt,
    ConcurrencyOpt,
    DelimiterOpt,
    EncodingOpt,
    ForceOpt,
    FormatOpt,
    JsonOpt,
    LogFileOpt,
    MapOpt,
    ProfileOpt,
    QuietOpt,
    QuotecharOpt,
    RegionOpt,
    SandboxDbOpt,
    SandboxOpt,
    TimeoutOpt,
)
from trackly_migrate.cli.target import ApiOptions, command_target
from trackly_migrate.errors import UsageError

# The client (httpx), records (phonenumbers), the pipeline and the display (Rich) are imported
# in the command's body: ``--help`` and tab completion load this module too.

# One segment of a bulk unsubscribe is sent one request per contact by one worker; small
# segments spread the contacts over all the workers.
UNSUBSCRIBE_SEGMENT = 25


@error_boundary
def unsubscribe_command(
    phone: Annotated[
        str | None,
        typer.Argument(metavar="PHONE", help="The contact's number (E.164, e.g. +14155559876)."),
    ] = None,
    list_number: Annotated[
        str | None,
        typer.Option(
            "--list",
            metavar="LIST_NUMBER",
            help="The sending list's number; with --file, fills rows that lack one.",
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            metavar="FILE",
            help="CSV or JSONL with phone_number and list_number columns, or - for stdin.",
        ),
    ] = None,
    input_format: FormatOpt = None,
    encoding: EncodingOpt = "utf-8",
    delimiter: DelimiterOpt = None,
    quotechar: QuotecharOpt = '"',
    map_options: MapOpt = None,
    default_region: RegionOpt = None,
    concurrency: ConcurrencyOpt = 8,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate only; send nothing.")
    ] = False,
    errors: Annotated[
        Path | None,
        typer.Option("--errors", metavar="PATH", help="Errors report for --file (.csv/.jsonl)."),
    ] = None,
    force: ForceOpt = False,
    sandbox: SandboxOpt = False,
    sandbox_db: SandboxDbOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    api_key: ApiKeyOpt = None,
    ca_bundle: CaBundleOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 60.0,
    json_output: JsonOpt = False,
    quiet: QuietOpt = False,
    log_file: LogFileOpt = None,
) -> None:
    """Unsubscribe one contact from a list, or many from a file (--file)."""
    import orjson

    from trackly_migrate.client import TracklyClient
    from trackly_migrate.display import stderr_console
    from trackly_migrate.normalize import check_region
    from trackly_migrate.pipeline import ImportRequest, Limits, Normalization, Output, Source
    from trackly_migrate.readers import InputFormat
    from trackly_migrate.records import Kind
    from trackly_migrate.unsubscribing import NOT_CHANGED_MEANING, contact_record

    if (phone is None) == (file is None):
        raise UsageError(
            "Give either a PHONE (with --list) or --file FILE.",
            hint="trackly-migrate unsubscribe +14155559876 --list +18005551234",
        )
    if file is not None:
        api = ApiOptions(base_url, api_key, api_key_file, ca_bundle, profile)
        request = ImportRequest(
            kind=Kind.CONTACTS,
            source=Source(
                file,
                InputFormat(input_format) if input_format else None,
                encoding or "utf-8",
                delimiter,
                quotechar,
            ),
            target=sending_target(dry_run, sandbox, sandbox_db, api),
            normalization=Normalization(
                map_options or [],
                default_region,
                defaults={"list_number": list_number} if list_number else {},
            ),
            limits=Limits(batch_size=UNSUBSCRIBE_SEGMENT, concurrency=concurrency, timeout=timeout),
            output=Output(errors, force),
        )
        run_request(request, Presentation(json_output, quiet, log_file))
        return
    assert phone is not None
    record = contact_record(phone, list_number, region=check_region(default_region))
    console = stderr_console()
    if dry_run:
        sys.stdout.write(orjson.dumps(record).decode() + "\n")
        console.print("Dry run: nothing was sent.")
        return
    with contextlib.ExitStack() as stack:
        api = ApiOptions(base_url, api_key, api_key_file, ca_bundle, profile)
        settings = command_target(stack, api, sandbox, sandbox_db, required=True)
        assert settings is not None
        with TracklyClient(settings, timeout=timeout) as client:
            answer = client.unsubscribe(record["phone_number"], record["list_number"])
    if answer.unsubscribed:
        console.print(
            f"Unsubscribed {record['phone_number']} from list {record['list_number']}.",
            markup=False,
        )
    else:
        console.print(
            f"{record['phone_number']} on list {record['list_number']}: {NOT_CHANGED_MEANING}.",
            markup=False,
        )
    if json_output:
        emit({**record, "unsubscribed": answer.unsubscribed})
