"""The read-only page ``GET /_sandbox/`` (issue 12, item 5): over HTTP with the HTML parsed by
the standard library, and as a person sees it, in headless Chromium where one is installed."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Page, api_on, get_page, send, wait_for_journal
from trackly_migrate.sandbox.seed import DEMO_API_KEY
from trackly_migrate.sandbox.server import RunningSandbox

Factory = Any
HOSTILE = "<script>alert('x')</script> & \"quotes\""


def test_page_shows_accounts_records_and_faults(sandbox_factory: Factory) -> None:
    sandbox = sandbox_factory(fail_rate=0.5, fault_seed=4)
    with api_on(sandbox) as api:
        statuses = [api.sends([send(f"pg_{n}", message=HOSTILE)]).status_code for n in range(6)]
    assert 503 in statuses and 200 in statuses  # the seed gives both
    wait_for_journal(sandbox, 6)
    response = get_page(sandbox)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    assert ("meta", {"http-equiv": "refresh", "content": "2"}) in page.tags
    assert not any(tag == "script" for tag, _ in page.tags)  # the hostile text stays text
    cells = [cell for table in page.tables for _, row in table for cell in row]
    assert HOSTILE in cells
    accounts = [row for _, row in page.tables[0]]
    assert accounts[0][:2] == ["account", "imported sends"]
    demo = next(row for row in accounts if row[0] == "demo")
    assert int(demo[1]) == 5 + statuses.count(200)
    assert any(row[0] == "other" for row in accounts)
    faulted = page.rows_with_class("fault")
    assert len(faulted) == statuses.count(503)
    assert all("⚠ fail" in row and "503" in row for row in faulted)
    journal_rows = [row for _, row in page.tables[1]][1:]
    assert len(journal_rows) == 6
    assert [row[0] for row in journal_rows] == ["6", "5", "4", "3", "2", "1"]
    assert all(row[3] == "trk_…0000" for row in journal_rows)
    assert DEMO_API_KEY not in response.text
    assert any(h.startswith("Latest records of demo") for h in page.headings)
    assert "sends" in page.headings and "contacts" in page.headings


def test_refresh_can_be_turned_off_and_is_checked(sandbox: RunningSandbox) -> None:
    page = Page(get_page(sandbox, refresh="0").text)
    assert not any(tag == "meta" and "http-equiv" in attrs for tag, attrs in page.tags)
    refused = get_page(sandbox, refresh="soon")
    assert refused.status_code == 400
    assert "refresh must be seconds from 0 (off) to 3600" in refused.text


def _chromium() -> str | None:
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the filtered scanlines of an 8-bit RGB(A) PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and color in (2, 6)
    chunks, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            chunks.append(data[position + 8 : position + 8 + length])
        position += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    stride = 1 + width * (3 if color == 2 else 4)
    return width, height, [raw[row * stride : (row + 1) * stride] for row in range(height)]


def test_page_in_a_real_browser(sandbox: RunningSandbox, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip(
            "no Chromium: neither /usr/bin/chromium nor 'chromium' on PATH "
            "(Debian: apt-get install chromium); the page is still tested over HTTP above"
        )
    with api_on(sandbox) as api:
        api.ok(api.sends([send("browser_1", message="Seen in a browser")]))
    wait_for_journal(sandbox, 1)
    shot = tmp_path / "page.png"
    profile = tempfile.mkdtemp(dir=tmp_path)
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1280,900",
            sandbox.root_url + "/_sandbox/?refresh=0",
        ],
        capture_output=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert shot.exists(), "Chromium wrote no screenshot"
    width, height, rows = _png_rows(shot.read_bytes())
    assert (width, height) == (1280, 900)
    # A rendered page, not a blank one: many distinct scanlines (text, tables, borders).
    assert len(set(rows)) > 100
