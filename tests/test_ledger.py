"""``--skip-done`` and ``history``: the ledger of files each account finished (issue 14)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.helpers import send_row, stored_imported_ids, summary_of, write_sends_csv
from trackly_migrate.config import ApiSettings
from trackly_migrate.pipeline.ledger import Entry, Fingerprint, Ledger, account_of
from trackly_migrate.pipeline.request import Target
from trackly_migrate.sandbox.seed import DEMO_API_KEY


def test_nightly_drop_folder_imports_only_what_is_new(sandbox, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write_sends_csv(drop / "2025-01-01.csv", [send_row(i) for i in range(20)])
    args = ["import-sends", str(drop), "--skip-done", "--json"]
    first = run_cli(args, sandbox=sandbox, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert summary_of(first.stdout)["imported"] == 20

    again = run_cli(args, sandbox=sandbox, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    summary = summary_of(again.stdout)
    assert summary["read"] == 0
    assert "nothing new" in " ".join(summary["notes"])
    assert [row["status"] for row in summary["files"]] == ["skipped"]
    assert "skipping" in again.stderr and "2025-01-01.csv" in again.stderr

    write_sends_csv(drop / "2025-01-02.csv", [send_row(i) for i in range(20, 30)])
    # Same name, new content: the ledger knows files by content, never by name alone.
    write_sends_csv(drop / "2025-01-01.csv", [send_row(i) for i in range(100, 105)])
    third = run_cli(args, sandbox=sandbox, cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    summary = summary_of(third.stdout)
    assert {Path(row["path"]).name: row["read"] for row in summary["files"]} == {
        "2025-01-01.csv": 5,
        "2025-01-02.csv": 10,
    }
    stored = stored_imported_ids(sandbox)
    assert len(stored) == len(set(stored))
    assert summary["duplicates"] == 0  # nothing finished was sent again

    history = run_cli(["history", "--json"], cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    entries = json.loads(history.stdout)["files"]
    assert len(entries) == 3
    assert {entry["counts"]["read"] for entry in entries} == {20, 10, 5}
    assert all(entry["finished_at"] for entry in entries)
    table = run_cli(["history"], cwd=tmp_path)
    assert "2025-01-02.csv" in "".join(table.stdout.split())  # long paths fold
    ledger_file = tmp_path / "state" / "trackly-migrate" / "ledger.json"
    assert DEMO_API_KEY not in ledger_file.read_text() + history.stdout + table.stdout
    assert ledger_file.stat().st_mode & 0o777 == 0o600


def test_the_ledger_is_per_account(tmp_path: Path) -> None:
    one = Target(settings=ApiSettings("https://api.example", DEMO_API_KEY))
    other = Target(settings=ApiSettings("https://api.example", DEMO_API_KEY + "x"))
    assert account_of(one) != account_of(other)
    assert DEMO_API_KEY not in str(account_of(one))
    assert account_of(Target(dry_run=True)) is None
    source = write_sends_csv(tmp_path / "a.csv", [send_row(1)])
    ledger = Ledger(tmp_path / "ledger.json")
    fingerprint = Fingerprint.of(str(source))
    ledger.record(Entry("import-sends", str(account_of(one)), fingerprint, str(source), "now"))
    assert ledger.find("import-sends", str(account_of(one)), fingerprint) is not None
    assert ledger.find("import-sends", str(account_of(other)), fingerprint) is None
    assert ledger.find("import-clicks", str(account_of(one)), fingerprint) is None


@given(st.binary(min_size=0, max_size=300_000), st.integers(min_value=0, max_value=299_999))
def test_a_changed_byte_at_either_end_changes_the_fingerprint(data: bytes, position: int) -> None:
    import tempfile

    if not data:
        return
    position %= len(data)
    near_an_end = position < 64 * 1024 or position >= len(data) - 64 * 1024
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.csv"
        path.write_bytes(data)
        before = Fingerprint.of(str(path))
        changed = bytearray(data)
        changed[position] ^= 0xFF
        path.write_bytes(bytes(changed))
        os.utime(path, ns=(before.mtime_ns, before.mtime_ns))
        after = Fingerprint.of(str(path))
    if near_an_end:
        assert before != after
    else:  # the middle is not read: the size and time must tell (README "The ledger")
        assert before == after


def test_files_finished_together_are_recorded_in_one_write(tmp_path: Path) -> None:
    account = str(account_of(Target(settings=ApiSettings("https://api.example", DEMO_API_KEY))))
    ledger = Ledger(tmp_path / "ledger.json")
    first = write_sends_csv(tmp_path / "a.csv", [send_row(1)])
    second = write_sends_csv(tmp_path / "b.csv", [send_row(2)])
    one, two = Fingerprint.of(str(first)), Fingerprint.of(str(second))
    ledger.record(Entry("import-sends", account, one, str(first), "monday"))
    ledger.record_all(
        [
            Entry("import-sends", account, one, str(first), "tuesday"),  # imported again
            Entry("import-sends", account, two, str(second), "tuesday"),
        ]
    )
    entries = ledger.entries()
    assert sorted((Path(e.path).name, e.finished_at) for e in entries) == [
        ("a.csv", "tuesday"),
        ("b.csv", "tuesday"),
    ]


def test_a_write_by_another_run_is_never_lost_to_what_a_ledger_read_before(
    tmp_path: Path,
) -> None:
    # A run keeps the entries it read or wrote, so that finishing file after file does not
    # read a year of entries each time; a write by another run in between must still count.
    account = str(account_of(Target(settings=ApiSettings("https://api.example", DEMO_API_KEY))))
    path = tmp_path / "ledger.json"
    ours, theirs = Ledger(path), Ledger(path)
    files = [write_sends_csv(tmp_path / f"{n}.csv", [send_row(n)]) for n in range(3)]
    prints = [Fingerprint.of(str(file)) for file in files]
    ours.record(Entry("import-sends", account, prints[0], str(files[0]), "monday"))
    theirs.record(Entry("import-sends", account, prints[1], str(files[1]), "monday"))
    assert ours.find("import-sends", account, prints[1]) is not None
    ours.record(Entry("import-sends", account, prints[2], str(files[2]), "tuesday"))
    theirs.record(Entry("import-sends", account, prints[0], str(files[0]), "tuesday"))
    names = [(Path(e.path).name, e.finished_at) for e in Ledger(path).entries()]
    assert names == [("1.csv", "monday"), ("2.csv", "tuesday"), ("0.csv", "tuesday")]
    assert [(Path(e.path).name, e.finished_at) for e in ours.entries()] == names


texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
entries = st.builds(
    Entry,
    command=st.sampled_from(["import-sends", "import-clicks"]),
    account=texts,
    fingerprint=st.builds(Fingerprint, st.integers(0, 2**40), st.integers(0, 2**62), texts),
    path=texts,
    finished_at=texts,
    counts=st.dictionaries(texts, st.integers(0, 10**9), max_size=3),
    errors_report=st.none() | texts,
)


@given(st.lists(st.lists(entries, max_size=4), min_size=1, max_size=4))
def test_the_ledger_file_is_the_json_of_its_entries_whatever_they_hold(
    writes: list[list[Entry]],
) -> None:
    # Each entry is serialised once and kept: the file must still be exactly orjson's.
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "ledger.json")
        expected: dict[tuple[str, str, Fingerprint], Entry] = {}
        for batch in writes:
            ledger.record_all(batch)
            for entry in batch:
                expected.pop(entry.key, None)
                expected[entry.key] = entry
            whole = {"version": 1, "files": list(expected.values())}
            written = ledger.path.read_bytes()
            assert written == orjson.dumps(whole, option=orjson.OPT_INDENT_2)
            assert Ledger(ledger.path).entries() == list(expected.values())
