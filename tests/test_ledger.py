"""``--skip-done`` and ``history``: the ledger of files each account finished (issue 14)."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
    ledger_file = tmp_path / "state" / "trackly-migrate" / "ledger.jsonl"
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


def test_a_drop_folder_is_looked_up_in_one_read_of_the_ledger(
    sandbox, tmp_path: Path, monkeypatch
) -> None:
    # A year of nightly runs makes a ledger of tens of thousands of entries: reading it again
    # for every file of the folder made planning cost files x entries, and rewriting it
    # whole for every finished file cost 0.6 s of CPU a write.
    from tests.helpers import invoke

    drop = tmp_path / "drop"
    drop.mkdir()
    for day in range(30):
        write_sends_csv(drop / f"day-{day:02d}.csv", [send_row(day)])
    args = ["import-sends", str(drop), "--skip-done", "--json"]
    assert invoke(args, sandbox=sandbox, cwd=tmp_path).returncode == 0
    for day in range(30, 40):
        write_sends_csv(drop / f"day-{day:02d}.csv", [send_row(day)])
    reads = writes = 0
    real_read, real_record_all = Ledger._read, Ledger.record_all

    def counted_read(self: Ledger) -> list[Entry]:
        nonlocal reads
        reads += 1
        return real_read(self)

    def counted_record_all(self: Ledger, entries: list[Entry]) -> None:
        nonlocal writes
        writes += 1
        real_record_all(self, entries)

    monkeypatch.setattr(Ledger, "_read", counted_read)
    monkeypatch.setattr(Ledger, "record_all", counted_record_all)
    result = invoke(args, sandbox=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stdout)
    assert [row["status"] for row in summary["files"]].count("skipped") == 30
    assert summary["imported"] == 10
    assert writes >= 1
    assert reads == 1  # to plan the run; recording a finished file appends, reading nothing


def _entry(account: str, number: int, when: str = "monday") -> Entry:
    fingerprint = Fingerprint(number, number, f"{number:064x}")
    return Entry("import-sends", account, fingerprint, f"/drop/{number}.csv", when)


def test_entries_are_appended_and_a_later_one_replaces_an_earlier(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    for number in range(3):
        ledger.record(_entry("acct", number))
    written = (tmp_path / "ledger.jsonl").read_bytes()
    ledger.record(_entry("acct", 1, "tuesday"))  # imported again
    grown = (tmp_path / "ledger.jsonl").read_bytes()
    assert grown.startswith(written)  # appended: what was there is not rewritten
    assert len(grown.splitlines()) == 1 + 4
    assert [(e.path, e.finished_at) for e in ledger.entries()] == [
        ("/drop/0.csv", "monday"),
        ("/drop/2.csv", "monday"),
        ("/drop/1.csv", "tuesday"),
    ]
    assert (tmp_path / "ledger.jsonl").stat().st_mode & 0o777 == 0o600


def test_a_line_cut_short_by_a_crash_is_left_out_and_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.record(_entry("acct", 1))
    with path.open("ab") as handle:  # a kill -9 in the middle of an append
        handle.write(b'{"command":"import-sends","acc')
    assert [e.path for e in ledger.entries()] == ["/drop/1.csv"]
    ledger.record(_entry("acct", 2))
    assert b'"acc\n' not in path.read_bytes() and b'"acc{' not in path.read_bytes()
    assert [e.path for e in ledger.entries()] == ["/drop/1.csv", "/drop/2.csv"]


def test_a_ledger_of_mostly_replaced_lines_is_compacted_when_read(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.record_all([_entry("acct", n) for n in range(10)])
    for night in range(150):  # the same ten files recorded again, night after night
        ledger.record(_entry("acct", night % 10, f"night {night}"))
    assert len(path.read_bytes().splitlines()) == 1 + 160
    entries = ledger.entries()
    assert len(path.read_bytes().splitlines()) == 1 + 10
    assert ledger.entries() == entries
    assert {e.finished_at for e in entries} == {f"night {n}" for n in range(140, 150)}


def test_a_version_1_ledger_is_converted_on_first_use(tmp_path: Path) -> None:
    old = tmp_path / "ledger.json"
    item = {
        "command": "import-sends",
        "account": "acct",
        "fingerprint": {"size": 1, "mtime_ns": 2, "ends_sha256": "ab"},
        "path": "/drop/old.csv",
        "finished_at": "2026-01-01T00:00:00+00:00",
        "counts": {"read": 5},
        "errors_report": None,
    }
    old.write_text(json.dumps({"version": 1, "files": [item]}))
    ledger = Ledger(tmp_path / "ledger.jsonl")
    assert ledger.find("import-sends", "acct", Fingerprint(1, 2, "ab")) is not None
    assert not old.exists()
    ledger.record(_entry("acct", 7))
    assert [e.path for e in ledger.entries()] == ["/drop/old.csv", "/drop/7.csv"]


def test_a_damaged_ledger_is_a_clear_error_naming_the_line(tmp_path: Path) -> None:
    import pytest

    from trackly_migrate.errors import UsageError

    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.record_all([_entry("acct", 1), _entry("acct", 2)])
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b"{not json\n" + lines[2])
    with pytest.raises(UsageError, match="line 2") as damaged:
        ledger.entries()
    assert "Move it away" in (damaged.value.hint or "")
    path.write_bytes(b'{"version": 1, "files": []}\n')
    with pytest.raises(UsageError, match="not a ledger of this version"):
        ledger.entries()


def test_a_write_by_another_run_is_never_lost(tmp_path: Path) -> None:
    account = str(account_of(Target(settings=ApiSettings("https://api.example", DEMO_API_KEY))))
    path = tmp_path / "ledger.jsonl"
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
def test_the_ledger_gives_back_its_entries_whatever_they_hold(writes: list[list[Entry]]) -> None:
    # One line per entry: a newline or any other character in a path or a count's name must
    # not split or spoil one; the newest entry for a file comes last.
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "ledger.jsonl")
        expected: dict[tuple[str, str, Fingerprint], Entry] = {}
        for batch in writes:
            ledger.record_all(batch)
            for entry in batch:
                expected.pop(entry.key, None)
                expected[entry.key] = entry
            assert Ledger(ledger.path).entries() == list(expected.values())
