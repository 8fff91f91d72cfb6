"""An opened input (a file, gzip or not, or stdin), and what reading it can break on."""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import zlib
from pathlib import Path
from typing import IO, cast

from trackly_migrate.errors import InputDamagedError, InputError, UsageError

STDIN = "-"
# What reading a damaged file raises: gzip cut short (EOFError), a bad CRC or length
# (BadGzipFile, an OSError), a corrupt deflate stream (zlib.error), a failing disk (OSError).
DAMAGE = (EOFError, OSError, zlib.error)
# How much of the start of the input is looked at to tell what kind of file it is.
SNIFF_BYTES = 4096
# How much one read of an input file asks the OS for. Python's default is the file system's
# block size (often 4 KiB): a read per 30 records, and each read lets another thread of the
# run (the sender's, the next file's opening) take the interpreter, then wait to get it back.
# Measured (1,000,000 rows, --dry-run): 4.70 -> 4.39 s; 100 files of 10,000: 29,665 -> 1,926
# context switches, 5.33 -> 4.66 s. Bigger than this gained nothing more.
READ_BUFFER_BYTES = 256 * 1024
# Enough for the head and a header line in one read, where nothing more is read: a whole
# buffer's read cost 110 us a file (most of it the kernel's copy and the new pages).
HEAD_BUFFER_BYTES = 16 * 1024

GZIP_MAGIC = b"\x1f\x8b"


def is_regular_file(path: str) -> bool:
    """A file on disk that can be read again (not stdin, a named pipe or a device)."""
    try:
        return path != STDIN and stat.S_ISREG(Path(path).stat().st_mode)
    except OSError:
        return False


class InputSource:
    """An opened input: the binary stream, its size, and how far it has been read."""

    def __init__(
        self, path: str, *, start_offset: int = 0, buffer_bytes: int = READ_BUFFER_BYTES
    ) -> None:
        """``buffer_bytes``: how much one read asks for; less where only the head is read."""
        self.path = path
        self.display_name = "<stdin>" if path == STDIN else path
        self._raw: IO[bytes]
        self.total_bytes: int | None = None
        self.info: os.stat_result | None = None  # the opened file's (None: stdin)
        if path == STDIN:
            if start_offset:
                raise UsageError("Cannot resume a run that reads from stdin.")
            self._raw = sys.stdin.buffer
        else:
            file_path = Path(path)
            try:
                self._raw = file_path.open("rb", buffering=buffer_bytes)
            except FileNotFoundError:
                raise InputError(f"{path}: no such file.") from None
            except IsADirectoryError:
                raise InputError(f"{path}: is a folder, not a file.") from None
            except PermissionError:
                raise InputError(f"{path}: permission denied.") from None
            except OSError as exc:
                raise InputError(f"{path}: cannot open ({exc.strerror}).") from None
            # The file opened (also if the path was replaced meanwhile): its size here, and
            # its identity for the checkpoint (``InputIdentity.opened``).
            self.info = info = os.fstat(self._raw.fileno())
            self.total_bytes = info.st_size if stat.S_ISREG(info.st_mode) else None
        self.stream: IO[bytes] = self._raw
        self._bytes_at_close: int | None = None
        if self._is_gzip():
            self.stream = cast(IO[bytes], gzip.GzipFile(fileobj=self._raw, mode="rb"))

    def _is_gzip(self) -> bool:
        if not isinstance(self._raw, io.BufferedReader):
            return False
        # peek, not read + seek: stdin, a named pipe or <(process substitution) cannot seek.
        head = self._raw.peek(2)[:2]
        if len(head) < 2:  # a pipe that has not written two bytes yet: trust the name
            return self.path != STDIN and self.path.lower().endswith(".gz")
        return head == GZIP_MAGIC

    def head(self) -> bytes:
        """The first bytes of the (decompressed) input, not consumed; empty when unknown."""
        stream = self.stream
        if not isinstance(stream, io.BufferedReader | gzip.GzipFile):
            return b""
        try:
            return stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        except DAMAGE as exc:
            raise InputError(
                f"{self.display_name}: cannot be read from its first line: {damage_reason(exc)}.",
                hint="Repair the file or fetch it again.",
            ) from None

    def raw_head(self) -> bytes:
        """The first bytes of the input as it is on disk or on stdin (compressed or not)."""
        if isinstance(self._raw, io.BufferedReader):
            return self._raw.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        return b""

    @property
    def bytes_read(self) -> int:
        """Bytes of the file itself read so far (compressed bytes for gzip): drives progress."""
        if self.path == STDIN:
            return 0
        if self._bytes_at_close is not None:
            return self._bytes_at_close
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        """Close the input; ``bytes_read`` still says how far it was read."""
        if self._bytes_at_close is None:
            self._bytes_at_close = self.bytes_read
        if self.stream is not self._raw:
            self.stream.close()
        if self._raw is not sys.stdin.buffer:
            self._raw.close()


def skip_to(stream: IO[bytes], offset: int, current: int) -> None:
    """Move a stream forward to ``offset`` (gzip streams can only be read forward)."""
    if isinstance(stream, io.BufferedReader | io.FileIO):
        stream.seek(offset)
        return
    remaining = offset - current
    while remaining > 0:
        try:
            chunk = stream.read(min(remaining, 1 << 20))
        except DAMAGE as exc:
            raise InputError(
                f"The input cannot be read up to where the checkpoint says: {damage_reason(exc)}."
            ) from None
        if not chunk:
            raise InputError("The input is shorter than the checkpoint says; it has changed.")
        remaining -= len(chunk)


def damage_reason(exc: BaseException) -> str:
    """What a read error means, in words: a damaged gzip file is the usual cause."""
    if isinstance(exc, EOFError):
        return "the compressed data is cut short (an incomplete download or copy?)"
    if isinstance(exc, gzip.BadGzipFile):
        text = str(exc)
        if text.startswith("Not a gzipped file"):
            return "unreadable bytes after the compressed data (two files joined?)"
        return f"the compressed data is corrupt ({text})"
    if isinstance(exc, zlib.error):
        return f"the compressed data is corrupt ({exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"read error: {exc.strerror}"
    return f"read error: {exc}"


def damaged(name: str, line: int, exc: BaseException) -> InputDamagedError:
    """The error that ends a run whose input breaks off after ``line``."""
    return InputDamagedError(
        f"{name}: the input breaks off after line {line:,}: {damage_reason(exc)}. "
        f"Reading stopped there; every record before it is accounted for.",
        hint="Repair the file or fetch it again, then import the repaired file (add --restart "
        "if a checkpoint was kept: a changed file cannot be resumed, and records already "
        "imported come back as duplicates). --resume continues from the checkpoint only while "
        "the file is unchanged, e.g. after a passing disk or network read error.",
    )
