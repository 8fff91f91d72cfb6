"""``ImportRequest``: everything that decides one import run, checked when it is made.

The request is made of small frozen parts, so that a caller names only what it changes and
each part's checks live beside its fields. Construction runs every check the command line
runs: a library caller with ``default_region="usa"`` gets the same usage error as
``--default-region usa``, before anything is read or sent. Messages name both spellings
(``default_region (--default-region)``) because both kinds of caller read them.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import TypeVar

from trackly_migrate.client import RetryPolicy
from trackly_migrate.columns import parse_map_options
from trackly_migrate.config import ApiSettings
from trackly_migrate.errors import UsageError
from trackly_migrate.normalize import ISO, check_region, check_timestamp_format, check_timezone
from trackly_migrate.pipeline.bounds import DEFAULT_CONCURRENCY as DEFAULT_CONCURRENCY
from trackly_migrate.pipeline.bounds import MAX_BATCH_SIZE as MAX_BATCH_SIZE
from trackly_migrate.pipeline.bounds import MAX_BODY_BYTES as MAX_BODY_BYTES
from trackly_migrate.pipeline.bounds import MAX_CONCURRENCY as MAX_CONCURRENCY
from trackly_migrate.readers import InputFormat
from trackly_migrate.records import FIELDS, FieldType, Kind

T = TypeVar("T")
V = TypeVar("V")


def _checked(name: str, option: str, check: Callable[[T], V], value: T) -> V:
    """``check(value)``, its usage error prefixed with the field's and the option's names."""
    try:
        return check(value)
    except UsageError as error:
        raise UsageError(f"{name} ({option}): {error.message}", hint=error.hint) from None


def _require(ok: bool, name: str, option: str, rule: str, value: object) -> None:
    if not ok:
        raise UsageError(f"{name} ({option}) must be {rule}, not {value!r}.")


@dataclass(frozen=True)
class Source:
    """The input: a path (``-`` for stdin) and how to read it."""

    path: str
    format: InputFormat | None = None  # inferred from the file name when None
    encoding: str = "utf-8"  # a UTF-16/32 byte-order mark in the file overrides it
    delimiter: str | None = None  # None: detected from the header; "tab" (or "\\t") is a tab
    quotechar: str = '"'

    def __post_init__(self) -> None:
        if self.format is not None:
            fmt = _checked("format", "--format", _input_format, self.format)
            object.__setattr__(self, "format", fmt)
        if self.delimiter is not None and self.delimiter.lower() in {"tab", "\\t"}:
            object.__setattr__(self, "delimiter", "\t")
        for name, value in (("delimiter", self.delimiter), ("quotechar", self.quotechar)):
            if value is not None:
                one = len(value) == 1 and value not in "\r\n"
                _require(one, name, f"--{name}", "one character (not a line break)", value)
        _require(
            self.delimiter != self.quotechar,
            "quotechar",
            "--quotechar",
            "different from the delimiter",
            self.quotechar,
        )


def _input_format(value: InputFormat | str) -> InputFormat:
    try:
        return InputFormat(value)
    except ValueError:
        raise UsageError(f"{value!r} is not an input format.", hint="Use csv or jsonl.") from None


@dataclass(frozen=True)
class Normalization:
    """How rows become records: the column mapping and the defaults for values."""

    # {field: column}, or FIELD=COLUMN strings as --map takes them
    mapping: Mapping[str, str] | Sequence[str] = field(default_factory=dict)
    default_region: str | None = None  # ISO region for national numbers, e.g. "US"
    timezone: tzinfo | str | None = None  # IANA zone for timestamps without an offset
    defaults: Mapping[str, str] = field(default_factory=dict)  # e.g. list_number from --list
    # How timestamps are written: "iso", "epoch", "epoch_ms" or a strptime pattern, for every
    # timestamp field; FIELD=FORMAT strings (as --timestamp-format takes them, repeatable) or
    # a {field: format} mapping set single fields. Resolved to {field: format} for the kind.
    timestamp_format: str | Sequence[str] | Mapping[str, str] = ISO

    def __post_init__(self) -> None:
        object.__setattr__(self, "timestamp_format", _timestamp_formats(self.timestamp_format))
        region = _checked("default_region", "--default-region", check_region, self.default_region)
        object.__setattr__(self, "default_region", region)
        if isinstance(self.timezone, str):
            zone = _checked("timezone", "--timezone", check_timezone, self.timezone)
            object.__setattr__(self, "timezone", zone)
        object.__setattr__(self, "defaults", dict(self.defaults))

    @property
    def zone(self) -> tzinfo | None:
        assert not isinstance(self.timezone, str)  # resolved on construction
        return self.timezone

    @property
    def timestamp_formats(self) -> dict[str, str]:
        """{field: format} for each timestamp field ("" keys the default before ``checked_for``)."""
        assert isinstance(self.timestamp_format, dict)
        return self.timestamp_format

    @property
    def fields(self) -> dict[str, str]:
        """The checked {field: column} mapping (see ``ImportRequest``)."""
        assert isinstance(self.mapping, dict)
        return self.mapping

    def checked_for(self, kind: Kind) -> Normalization:
        """This normalization with its mapping checked against ``kind``'s fields."""
        options = (
            [f"{name}={column}" for name, column in self.mapping.items()]
            if isinstance(self.mapping, Mapping)
            else list(self.mapping)
        )
        mapping = _checked("mapping", "--map", lambda o: parse_map_options(o, kind), options)
        formats = self.timestamp_formats
        stamps = [spec.name for spec in FIELDS[kind] if spec.type is FieldType.TIMESTAMP]
        unknown = sorted(set(formats) - {"", *stamps})
        if unknown:
            raise UsageError(
                f"timestamp_format (--timestamp-format) names {unknown[0]!r}, which is not a "
                f"timestamp field of {kind}.",
                hint=f"Timestamp fields of {kind}: {', '.join(stamps)}; "
                "e.g. --timestamp-format timestamp=epoch.",
            )
        every = formats.get("", ISO)
        resolved = {name: formats.get(name, every) for name in stamps}
        return dataclasses.replace(
            self, mapping=mapping, timezone=self.timezone, timestamp_format=resolved
        )


_FIELD_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


def _timestamp_formats(value: str | Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """--timestamp-format's values as {field: format}; "" is the format of every other field."""
    if isinstance(value, Mapping):
        items = [(str(name), str(fmt)) for name, fmt in value.items()]
    else:
        items = []
        for text in [value] if isinstance(value, str) else list(value):
            match = _FIELD_PREFIX.match(text.strip())
            items.append((match.group(1), match.group(2)) if match else ("", text))
    formats: dict[str, str] = {}
    for name, fmt in items:
        checked = _checked("timestamp_format", "--timestamp-format", check_timestamp_format, fmt)
        if name in formats and formats[name] != checked:
            which = f"{name}=" if name else "a format for every field"
            raise UsageError(
                f"timestamp_format (--timestamp-format) gives {which} twice "
                f"({formats[name]!r} and {checked!r})."
            )
        formats[name] = checked
    return formats


@dataclass(frozen=True)
class Target:
    """Where the records go: an API, an embedded sandbox, or nowhere (a dry run)."""

    settings: ApiSettings | None = None  # None for a dry run or the embedded sandbox
    dry_run: bool = False
    sandbox: bool = False
    sandbox_db: Path | None = None  # the embedded sandbox's file, kept; else a throw-away one
    sender_process: bool = True  # send from a process of its own (pipeline/dispatch.py)

    def __post_init__(self) -> None:
        if self.sandbox_db is not None and not self.sandbox:
            raise UsageError("sandbox_db (--sandbox-db) needs sandbox (--sandbox).")
        if self.settings is None and not (self.dry_run or self.sandbox):
            raise UsageError(
                "settings are needed to send: give ApiSettings, or dry_run or sandbox."
            )

    @property
    def name(self) -> str:
        """The target in words, for the start of a run's progress."""
        if self.dry_run:
            return "dry run"
        if self.sandbox:
            return "embedded sandbox"
        return self.settings.host if self.settings else ""


@dataclass(frozen=True)
class Limits:
    """How much at once, how long to wait, and when to give up."""

    batch_size: int = MAX_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = 60.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    max_body_bytes: int = MAX_BODY_BYTES  # larger batches are split
    max_rejects: int | None = None  # stop after this many rejections...
    max_reject_ratio: float | None = None  # ...or when this share of the records read
    grace_s: float = 10.0  # after Ctrl-C, how long in-flight requests may still finish

    def __post_init__(self) -> None:
        size, most = self.batch_size, MAX_BATCH_SIZE
        _require(1 <= size <= most, "batch_size", "--batch-size", f"1 to {most}", size)
        top = MAX_CONCURRENCY
        _require(
            1 <= self.concurrency <= top,
            "concurrency",
            "--concurrency",
            f"1 to {top}",
            self.concurrency,
        )
        _require(self.timeout > 0, "timeout", "--timeout", "positive", self.timeout)
        _require(
            self.max_body_bytes >= 1,
            "max_body_bytes",
            "--max-body-bytes",
            "at least 1",
            self.max_body_bytes,
        )
        if self.max_rejects is not None:
            _require(
                self.max_rejects >= 0, "max_rejects", "--max-rejects", "0 or more", self.max_rejects
            )
        if self.max_reject_ratio is not None:
            ratio = self.max_reject_ratio
            _require(0 <= ratio <= 1, "max_reject_ratio", "--max-rejects P%", "0 to 1", ratio)


@dataclass(frozen=True)
class Output:
    """The errors report: where (default ``<input name>.errors.csv`` here), and may it replace;
    and where to write the JSON summary file, if anywhere."""

    errors_path: Path | None = None
    force: bool = False  # an existing file at the errors report's place may be replaced
    summary_path: Path | None = None  # --summary-file: the JSON summary, whatever stdout is


@dataclass(frozen=True)
class Resume:
    """What to do with the checkpoint of an interrupted run of the same file."""

    resume: bool = False
    restart: bool = False
    checkpoint_path: Path | None = None  # default: the user's state folder


@dataclass(frozen=True)
class ImportRequest:
    """Everything that decides one import run; see the module docstring."""

    kind: Kind
    source: Source
    target: Target = field(default_factory=Target)
    normalization: Normalization = field(default_factory=Normalization)
    limits: Limits = field(default_factory=Limits)
    output: Output = field(default_factory=Output)
    resume: Resume = field(default_factory=Resume)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", _checked("kind", "the command", Kind, self.kind))
        object.__setattr__(self, "normalization", self.normalization.checked_for(self.kind))

    def for_file(self, path: str) -> ImportRequest:
        """This request for the file ``path`` (one of the files a run imports)."""
        return self._with("source", dataclasses.replace(self.source, path=path))

    def resuming(self, resume: bool) -> ImportRequest:
        """This request with ``--resume`` on or off (a file of a list with nothing to resume)."""
        return self._with("resume", dataclasses.replace(self.resume, resume=resume))

    def _with(self, name: str, part: Source | Resume) -> ImportRequest:
        # The options were checked when this request was made, and neither the input nor
        # the resume changes them: a run over many files asks for a request per file.
        one = copy.copy(self)
        object.__setattr__(one, name, part)
        return one


def parse_max_rejects(value: str | None) -> tuple[int | None, float | None]:
    """``--max-rejects``: a count (``500``) or a share of the records read (``5%``)."""
    if value is None:
        return None, None
    text = value.strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if not 0 <= share <= 1:
                raise ValueError
            return None, share
        count = int(text)
        if count < 0:
            raise ValueError
        return count, None
    except ValueError:
        raise UsageError(
            f"--max-rejects {value!r} is neither a count nor a percentage.",
            hint="For example --max-rejects 500 or --max-rejects 5%.",
        ) from None
