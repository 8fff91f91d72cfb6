"""UTF-16/32 with a byte-order mark read without flags, with exact byte offsets; gzip on stdin."""

from __future__ import annotations

import gzip
import json
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.helpers import (
    SEED_IMPORTED,
    send_row,
    start_cli,
    stored_imported_ids,
    summary_of,
    write_sends_csv,
)
from tests.test_resume_cli import HOLD, wait_for_checkpoint
from trackly_migrate.readers import InputFormat, InputSource, RawRow, open_reader
from trackly_migrate.sandbox.server import RunningSandbox

BOM_ENCODINGS = ["utf-16", "utf-16-be", "utf-32", "utf-32-be"]


def _with_bom(text: str, encoding: str) -> bytes:
    """``text`` encoded with a byte-order mark (Python's utf-16/utf-32 write one, LE here)."""
    if encoding.endswith("-be"):
        mark = "\ufeff".encode(encoding)
        return mark + text.encode(encoding)
    return text.encode(encoding)


def _read(path: Path, fmt: InputFormat, start: RawRow | None = None) -> list[RawRow]:
    source = InputSource(str(path))
    try:
        reader = open_reader(
            source,
            fmt,
            delimiter=",",
            start_offset=start.end_offset if start else 0,
            start_line=start.next_line if start else 1,
        )
        return list(reader)
    finally:
        source.close()


# Characters whose UTF-16/32 code units hold a 0x0A byte that is not a newline (U+010A, U+0A00,
# U+0A0A), multi-line cells and CRLF: what cutting lines at byte 0x0A would get wrong.
CELL = st.text(alphabet=st.sampled_from("aZ09 ,\n\r\u010a\u0a00\u0a0a\u00e9\U0001f600"), max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(CELL, CELL), min_size=1, max_size=6), st.sampled_from(BOM_ENCODINGS))
def test_offsets_count_encoded_bytes_and_a_resume_starts_at_the_next_record(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str]], encoding: str
) -> None:
    lines = ["id,message\r\n"] + [
        '"' + a.replace('"', '""') + '","' + b.replace('"', '""') + '"\r\n' for a, b in rows
    ]
    path = tmp_path_factory.mktemp("enc") / "in.csv"
    path.write_bytes(_with_bom("".join(lines), encoding))
    read = _read(path, InputFormat.CSV)
    assert [row.data for row in read] == [list(pair) for pair in rows]
    assert read[-1].end_offset == path.stat().st_size
    prefix = len(_with_bom(lines[0], encoding))
    for row, line in zip(read, lines[1:], strict=True):
        prefix += len(line.encode(encoding if encoding.endswith("-be") else f"{encoding}-le"))
        assert row.end_offset == prefix
    for index, row in enumerate(read):
        rest = _read(path, InputFormat.CSV, start=row)
        assert [r.data for r in rest] == [r.data for r in read[index + 1 :]]
        assert [r.line for r in rest] == [r.line for r in read[index + 1 :]]


@pytest.mark.parametrize("encoding", BOM_ENCODINGS)
def test_jsonl_in_utf16_and_utf32(tmp_path: Path, encoding: str) -> None:
    text = '{"id": "a\u010a"}\n\n{"id": "b"}\r\n'
    path = tmp_path / "in.jsonl"
    path.write_bytes(_with_bom(text, encoding))
    read = _read(path, InputFormat.JSONL)
    assert [row.data for row in read] == [{"id": "a\u010a"}, {"id": "b"}]
    assert [row.line for row in read] == [1, 3]
    assert _read(path, InputFormat.JSONL, start=read[0])[0].data == {"id": "b"}


def test_a_nul_character_in_utf16_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes("id,message\na,x\x00y\nb,ok\n".encode("utf-16"))
    first, second = _read(path, InputFormat.CSV)
    assert first.problem is not None and first.problem.code == "invalid_encoding"
    assert second.problem is None


def _excel_unicode_text(path: Path, rows: list[dict[str, str]]) -> Path:
    """What Excel's "Unicode text" export writes: UTF-16 LE with a BOM, tab-separated, CRLF."""
    csv_path = write_sends_csv(path.with_suffix(".csv"), rows)
    text = csv_path.read_text(encoding="utf-8").replace(",", "\t")
    csv_path.unlink()
    path.write_bytes(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-16"))
    return path


def test_excel_unicode_text_imports_without_flags(sandbox: RunningSandbox, tmp_path: Path) -> None:
    rows = [send_row(i, message=f"h\u00e9llo \u010a {i}") for i in range(20)]
    source = _excel_unicode_text(tmp_path / "export.txt", rows)
    result = run_cli(["import-sends", str(source), "--json"], sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.output
    assert summary_of(result.stdout)["imported"] == 20
    assert "UTF-16 LE tab-separated" in result.stderr
    assert set(stored_imported_ids(sandbox)) - SEED_IMPORTED == {row["id"] for row in rows}


def test_kill_9_mid_utf16_file_then_resume_stores_every_record_once(
    sandbox_factory, tmp_path: Path
) -> None:
    rows = [send_row(i, message=f"\u0a0a {i}") for i in range(4000)]
    source = _excel_unicode_text(tmp_path / "export.txt", rows)
    checkpoint = tmp_path / "ck.json"
    args = ["import-sends", str(source), "--json", "--batch-size", "250", "--concurrency", "2"]
    args += ["--checkpoint", str(checkpoint)]
    sandbox = sandbox_factory(latency=HOLD)
    process = start_cli(args, sandbox, tmp_path)
    wait_for_checkpoint(checkpoint, process, source.stat().st_size // 3)
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL
    offset = json.loads(checkpoint.read_bytes())["offset"]
    assert offset % 2 == 0 and 0 < offset < source.stat().st_size  # a code-unit boundary

    resumed = run_cli([*args, "--resume"], sandbox=sandbox, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.output
    summary = summary_of(resumed.stdout)
    assert summary["read"] == len(rows)
    assert summary["imported"] + summary["duplicates"] == len(rows)
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored))
    assert set(stored) - SEED_IMPORTED == {row["id"] for row in rows}


def test_gzip_on_stdin_is_read(sandbox: RunningSandbox, tmp_path: Path) -> None:
    rows = [send_row(i) for i in range(5)]
    text = write_sends_csv(tmp_path / "s.csv", rows).read_bytes()
    result = run_cli(
        ["import-sends", "-", "--format", "csv", "--json"],
        sandbox=sandbox,
        stdin=gzip.compress(text),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.output
    assert summary_of(result.stdout)["imported"] == 5


def test_utf16_without_a_bom_names_the_encoding_option(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    write_sends_csv(path, [send_row(1)])
    path.write_bytes(path.read_text().encode("utf-16-le"))
    refused = run_cli(["import-sends", str(path), "--dry-run"], cwd=tmp_path)
    assert refused.returncode == 2 and "--encoding utf-16-le" in refused.stderr
    read = run_cli(
        ["import-sends", str(path), "--dry-run", "--json", "--encoding", "utf-16-le"], cwd=tmp_path
    )
    assert read.returncode == 0, read.output
    assert summary_of(read.stdout)["read"] == 1
