"""Benchmark harness: trackly-migrate against the vendor-docs baseline and its own limit.

    .venv/bin/python benchmarks/run.py            # the whole suite (about 2 minutes)
    .venv/bin/python benchmarks/run.py --quick    # smaller inputs, a smoke run
    .venv/bin/python benchmarks/run.py --only store   # one group: sink, store, latency, rss

It generates realistic sends (benchmarks/datagen.py: the 8 columns id, list_id, to_number,
message, send_type, delivered, length, timestamp; 10% distinct numbers unless said), starts
the sandbox on loopback in *sink* mode (it checks and counts requests without storing them,
so the sandbox is not what is measured) in its own process, and measures, in the same run:

1. the table of issue 13, side by side: start-up (``--version``, ``import-sends --help``)
   against sqlite-utils' (median of 9 runs each, wall clock, console scripts of this venv);
   50,000 and 200,000 sends under 100 ms of latency per request against the vendor docs'
   loop (wall clock, start-up included, for both); ``--dry-run`` of 1,000,000 sends against a
   bare ``csv.DictReader`` pass over the same file (each program's own clock, best of 3);
2. baseline: the vendor docs' loop (benchmarks/baseline.py): sequential 1,000-record batches;
3. trackly-migrate end to end with default options, no latency;
4. limit: trackly-migrate --dry-run (read + validate + encode, no network), with 10% and
   100% distinct phone numbers;
5. store: trackly-migrate end to end into a sandbox in *store* mode (SQLite file), right after
   its --dry-run, and one client posting 1,000-send batches to a store-mode sandbox;

and peak RSS (from the OS, ``wait4``; the median of three runs) importing 100,000 and
1,000,000 sends. Rates in 2-4 use each program's own clock (startup excluded); RSS is the
whole process's peak. It prints the tables and targets and writes benchmarks/out/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DEMO_KEY = "trk_sandboxdemokey000000000000000000"
BIN = Path(sys.executable).parent
STARTUP_RUNS = 9
BARE_PARSE = """
import csv, json, sys, time
started = time.perf_counter()
count = 0
with open(sys.argv[1], newline="", encoding="utf-8") as handle:
    for _row in csv.DictReader(handle):
        count += 1
print(json.dumps({"records": count, "seconds": time.perf_counter() - started}))
"""


@dataclass
class Measure:
    name: str
    records: int
    seconds: float
    peak_rss_mb: float
    # User + system CPU of the whole program (the sender process included: wait4 counts the
    # children a process waited for). It moves much less with the machine's load than seconds.
    cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def run_measured(args: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """Run a command; its stdout, its peak RSS in MB and its CPU seconds (the kernel's, via
    wait4: with the children it waited for)."""
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        raise RuntimeError(f"{args[:4]} exited {process.returncode}")
    return output, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def generate(records: int, distinct: float) -> Path:
    """The 8-column realistic sends file (made once, then reused: datagen is seeded)."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"sends8-{records}-{distinct:g}.csv"
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "datagen.py"),
                "sends",
                str(path),
                "--records",
                str(records),
                "--distinct",
                str(distinct),
                "--columns",
                "realistic",
            ],
            check=True,
        )
    return path


def wall_seconds(args: list[str], env: dict[str, str] | None = None) -> float:
    """How long a command takes from start to exit (its output discarded)."""
    started = time.perf_counter()
    subprocess.run(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return time.perf_counter() - started


def startup(ours: list[str], theirs: list[str]) -> tuple[float, float]:
    """Median wall seconds of each command, run alternately so both see the same load."""
    mine, other = [], []
    for _ in range(STARTUP_RUNS):
        mine.append(wall_seconds(ours))
        other.append(wall_seconds(theirs))
    return statistics.median(mine), statistics.median(other)


def bare_parse(path: Path) -> Measure:
    output, rss, cpu = run_measured([sys.executable, "-c", BARE_PARSE, str(path)])
    result = json.loads(output)
    return Measure("bare csv.DictReader pass", result["records"], result["seconds"], rss, cpu)


def issue_table(latency_records: tuple[int, int], dry_records: int) -> list[dict[str, Any]]:
    """The rows of issue 13's table: (measure, ours, theirs, ratio, goal, met)."""
    rows: list[dict[str, Any]] = []

    def row(name: str, ours: float, theirs: float, ratio: float, goal: str, met: bool) -> None:
        rows.append(
            {
                "measure": name,
                "ours": ours,
                "theirs": theirs,
                "ratio": round(ratio, 2),
                "goal": goal,
                "met": met,
            }
        )

    sqlite_utils = BIN / "sqlite-utils"
    trackly = str(BIN / "trackly-migrate")
    if sqlite_utils.exists():
        for name, ours, theirs in (
            (
                "--version vs sqlite-utils --version",
                [trackly, "--version"],
                [str(sqlite_utils), "--version"],
            ),
            (
                "import-sends --help vs sqlite-utils insert --help",
                [trackly, "import-sends", "--help"],
                [str(sqlite_utils), "insert", "--help"],
            ),
        ):
            mine, other = startup(ours, theirs)
            row(name, mine, other, mine / other, "no slower (<= 1.0x)", mine <= other)
    else:
        print(
            "skipped the start-up rows: sqlite-utils is not installed in this venv "
            "(pip install -e '.[dev]' installs it)",
            file=sys.stderr,
        )

    slow = Sandbox(latency="100ms")
    try:
        for records, goal in zip(latency_records, (8.0, 12.0), strict=True):
            path = generate(records, 0.1)
            env = {"TRACKLY_API_KEY": DEMO_KEY}
            docs_loop = wall_seconds(
                [sys.executable, str(HERE / "baseline.py"), str(path), slow.url], env
            )
            args = [trackly, "import-sends", str(path), "-q", "--restart"]
            args += ["--errors", str(OUT / "bench.errors.csv")]
            import_run = wall_seconds(args, {**env, "TRACKLY_BASE_URL": slow.url})
            speedup = docs_loop / import_run
            row(
                f"{records:,} sends, 100 ms latency: x the docs' loop (wall clock)",
                import_run,
                docs_loop,
                speedup,
                f">= {goal:g}x",
                speedup >= goal,
            )
    finally:
        slow.stop()

    # Best of three, alternated: on a shared machine one load spike would decide a ratio of
    # two single runs.
    path = generate(dry_records, 0.1)
    bares, dries = [], []
    for _ in range(3):
        bares.append(bare_parse(path))
        dries.append(trackly_measure("--dry-run", path, None))
    bare = max(bares, key=lambda measure: measure.rate)
    dry = max(dries, key=lambda measure: measure.rate)
    ratio = dry.rate / bare.rate
    row(
        f"--dry-run of {dry_records:,}: x a bare csv.DictReader pass (rate)",
        dry.rate,
        bare.rate,
        ratio,
        ">= 0.35x",
        ratio >= 0.35,
    )
    return rows


class Sandbox:
    """``trackly-migrate sandbox --sink`` in its own process, on a free loopback port.

    With ``db``, store mode instead: every request checked and stored in that SQLite file.
    """

    def __init__(self, latency: str | None, db: Path | None = None) -> None:
        args = [sys.executable, "-m", "trackly_migrate", "sandbox", "--port", "0"]
        args += ["--db", ":memory:", "--sink"] if db is None else ["--db", str(db)]
        if latency:
            args += ["--latency", latency]
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1"):
            raise RuntimeError("the sandbox did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU the sandbox process has used so far (Linux /proc; 0 elsewhere).

        On a shared machine CPU per record moves much less than records/s with the load."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def baseline(path: Path, sandbox: Sandbox) -> Measure:
    output, rss, cpu = run_measured(
        [sys.executable, str(HERE / "baseline.py"), str(path), sandbox.url],
        env={"TRACKLY_API_KEY": DEMO_KEY},
    )
    result = json.loads(output)
    return Measure("baseline", result["records"], result["seconds"], rss, cpu)


def trackly_measure(name: str, path: Path, sandbox: Sandbox | None, *extra: str) -> Measure:
    args = [sys.executable, "-m", "trackly_migrate", "import-sends", str(path), "--json", "-q"]
    args += ["--errors", str(OUT / "bench.errors.csv"), "--restart", *extra]
    env = {"TRACKLY_API_KEY": DEMO_KEY}
    if sandbox is not None:
        env["TRACKLY_BASE_URL"] = sandbox.url
    else:
        args.append("--dry-run")
    output, rss, cpu = run_measured(args, env=env)
    summary = json.loads(output)
    settled = summary["imported"] + summary["duplicates"] + summary["pending"]
    return Measure(name, settled, summary["elapsed_s"], rss, cpu)


def store_batches(requests: int, distinct: float) -> dict[str, float]:
    """One client posting 1,000-new-send batches, one after the other, to a store-mode sandbox
    (SQLite file): records/s over all requests and the median round trip. ``distinct`` is the
    share of distinct phone numbers (1.0: every number new to the sandbox's cache)."""
    import random
    import statistics
    import tempfile

    import httpx
    import orjson

    sys.path.insert(0, str(HERE))
    from datagen import send_rows  # the benchmark's own generator, beside this file

    rng = random.Random(7)
    rows = list(send_rows(requests * 1000, distinct=distinct, prefix="store", rng=rng))
    bodies = [orjson.dumps({"records": rows[n : n + 1000]}) for n in range(0, len(rows), 1000)]
    headers = {"X-Api-Key": DEMO_KEY, "Content-Type": "application/json"}
    with tempfile.TemporaryDirectory() as folder:
        sandbox = Sandbox(latency=None, db=Path(folder) / "store.db")
        try:
            timings = []
            with httpx.Client(headers=headers, timeout=60) as client:
                cpu_before = sandbox.cpu_seconds()
                began = time.perf_counter()
                for body in bodies:
                    sent = time.perf_counter()
                    answer = client.post(f"{sandbox.url}/v2/history/sends", content=body)
                    answer.raise_for_status()
                    assert answer.json()["success_count"] == 1000, answer.text[:300]
                    timings.append((time.perf_counter() - sent) * 1000)
                seconds = time.perf_counter() - began
                cpu = sandbox.cpu_seconds() - cpu_before
        finally:
            sandbox.stop()
    return {
        "records_per_s": round(len(rows) / seconds),
        "median_ms": round(statistics.median(timings), 1),
        "sandbox_us_per_record": round(cpu / len(rows) * 1e6, 1),
    }


def import_into_store(path: Path, results: dict[str, Any]) -> Measure:
    """trackly-migrate end to end into a store-mode sandbox with a fresh database file; the
    sandbox's CPU per record goes into ``results["store_import_sandbox_us_per_record"]``."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        store = Sandbox(latency=None, db=Path(folder) / "store.db")
        try:
            before = store.cpu_seconds()
            measure = trackly_measure("trackly-migrate -> store sandbox", path, store)
            used = store.cpu_seconds() - before
            results["store_import_sandbox_us_per_record"] = round(used / measure.records * 1e6, 1)
            return measure
        finally:
            store.stop()


def median_of(runs: int, name: str, path: Path, sandbox: Sandbox) -> Measure:
    measures = sorted(
        (trackly_measure(name, path, sandbox) for _ in range(runs)), key=lambda m: m.peak_rss_mb
    )
    middle = measures[len(measures) // 2]
    middle.name = f"{name} (median of {runs})"
    return middle


GROUPS = ("table", "sink", "store", "latency", "rss")


def suite(
    records: int,
    big: int,
    issue_sizes: tuple[tuple[int, int], int],
    only: frozenset[str] = frozenset(GROUPS),
) -> dict[str, Any]:
    """The measures of the chosen ``only`` groups (all by default) and the targets they feed.

    table: issue 13's side-by-side rows; sink: baseline and trackly-migrate against a sink
    sandbox, and --dry-run; store: --dry-run, the import into a store sandbox right after it,
    and the store batches; latency: both programs with 100 ms of latency; rss: peak RSS at
    100k and ``big`` records.
    """
    results: dict[str, Any] = {"records": records, "machine": os.uname().machine}
    if "table" in only:
        results["issue_13"] = issue_table(*issue_sizes)
    table: list[Measure] = []
    common = generate(records, 0.1)

    if "sink" in only:
        fast = Sandbox(latency=None)
        try:
            table.append(baseline(common, fast))
            table.append(trackly_measure("trackly-migrate", common, fast))
        finally:
            fast.stop()
    if only & {"sink", "store"}:
        table.append(trackly_measure("limit (--dry-run)", common, None))
    if "store" in only:
        # Right after its --dry-run: the same machine state.
        table.append(import_into_store(common, results))
    if "sink" in only:
        table.append(trackly_measure("limit, all numbers distinct", generate(records, 1.0), None))

    if "latency" in only:
        slow = Sandbox(latency="100ms")
        try:
            table.append(baseline(common, slow))
            table[-1].name = "baseline, 100 ms latency"
            table.append(trackly_measure("trackly-migrate, 100 ms latency", common, slow))
        finally:
            slow.stop()

    if "rss" in only:
        sink = Sandbox(latency=None)
        try:
            # Peak RSS varies by a few MB from run to run (how far the reader got ahead when
            # the peak came): the median of three runs is what is compared.
            small = median_of(3, "RSS: import 100k", generate(100_000, 0.1), sink)
            large = median_of(3, f"RSS: import {big // 1000}k", generate(big, 0.1), sink)
        finally:
            sink.stop()
        table += [small, large]

    if "store" in only:
        results["store_batches"] = store_batches(50, 0.1)
        results["store_batches_all_distinct"] = store_batches(20, 1.0)
    results["measures"] = [
        {**asdict(measure), "records_per_s": round(measure.rate)} for measure in table
    ]
    results["targets"] = [
        {
            "target": name,
            "value": round(value, 3),
            "goal": goal,
            "met": value <= goal if "RSS" in name else value >= goal,
        }
        for name, value, goal in _targets({m.name: m for m in table}, results, big)
    ]
    return results


def _targets(
    by_name: dict[str, Measure], results: dict[str, Any], big: int
) -> list[tuple[str, float, float]]:
    """(target, value, goal) for each target whose measures were taken in this run."""

    def rate(name: str) -> float | None:
        return by_name[name].rate if name in by_name else None

    def ratio(top: str, bottom: str) -> float | None:
        high, low = rate(top), rate(bottom)
        return None if high is None or not low else high / low

    rss_large = f"RSS: import {big // 1000}k (median of 3)"
    rss_small = "RSS: import 100k (median of 3)"
    batches = results.get("store_batches")
    candidates = [
        (
            "100 ms latency: trackly-migrate >= 8x baseline",
            ratio("trackly-migrate, 100 ms latency", "baseline, 100 ms latency"),
            8.0,
        ),
        (
            "no latency, sink: trackly-migrate >= 0.6x its --dry-run",
            ratio("trackly-migrate", "limit (--dry-run)"),
            0.6,
        ),
        (
            "store sandbox: import >= 0.4x its --dry-run",
            ratio("trackly-migrate -> store sandbox", "limit (--dry-run)"),
            0.4,
        ),
        (
            "store sandbox: 1,000-send batches from one client >= 50,000/s",
            None if batches is None else batches["records_per_s"],
            50_000,
        ),
        ("--dry-run, 10% distinct >= 150,000/s", rate("limit (--dry-run)"), 150_000),
        ("--dry-run, all distinct >= 40,000/s", rate("limit, all numbers distinct"), 40_000),
        (
            f"peak RSS importing {big:,} <= 120 MB",
            by_name[rss_large].peak_rss_mb if rss_large in by_name else None,
            120.0,
        ),
        (
            "peak RSS 1M within 15% of 100k",
            by_name[rss_large].peak_rss_mb / by_name[rss_small].peak_rss_mb
            if rss_large in by_name
            else None,
            1.15,
        ),
    ]
    return [(name, value, goal) for name, value, goal in candidates if value is not None]


def print_table(results: dict[str, Any]) -> None:
    print(
        f"{'issue 13 (side by side, one run)':<66} {'ours':>10} {'theirs':>10} {'ratio':>6}  goal"
    )
    for item in results.get("issue_13", []):
        mark = "met" if item["met"] else "NOT MET"
        ours, theirs = (
            (f"{item['ours']:.3f}s", f"{item['theirs']:.3f}s")
            if "rate" not in item["measure"]
            else (f"{item['ours']:,.0f}/s", f"{item['theirs']:,.0f}/s")
        )
        print(
            f"{item['measure']:<66} {ours:>10} {theirs:>10} {item['ratio']:>5}x  "
            f"{item['goal']} {mark}"
        )
    print()
    print(
        f"{'measure':<36} {'records':>10} {'seconds':>8} {'records/s':>11} {'peak RSS':>9} "
        f"{'CPU s':>6}"
    )
    for measure in results["measures"]:
        print(
            f"{measure['name']:<36} {measure['records']:>10,} {measure['seconds']:>8.2f} "
            f"{measure['records_per_s']:>11,} {measure['peak_rss_mb']:>7.1f}MB "
            f"{measure.get('cpu_s', 0.0):>6.2f}"
        )
    if "store_import_sandbox_us_per_record" in results:
        print(
            "\nstore sandbox CPU during the import: "
            f"{results['store_import_sandbox_us_per_record']} us per record"
        )
    for key, what in (("store_batches", "10%"), ("store_batches_all_distinct", "all")):
        if key not in results:
            continue
        batches = results[key]
        print(
            f"\nstore sandbox, one client, 1,000-send batches ({what} distinct numbers): "
            f"{batches['records_per_s']:,} records/s, {batches['median_ms']} ms per request, "
            f"sandbox CPU {batches.get('sandbox_us_per_record')} us per record"
        )
    print()
    for target in results["targets"]:
        mark = "met" if target["met"] else "NOT MET"
        print(f"{mark:>8}  {target['target']}: {target['value']:,}")


def markdown(results: dict[str, Any]) -> str:
    """The README's performance tables, from a run's results."""
    lines = ["| measure (one run, side by side) | trackly-migrate | other | ratio | goal | |"]
    lines.append("|---|---:|---:|---:|---|---|")
    for item in results.get("issue_13", []):
        rate = "rate" in item["measure"]
        ours, theirs = (
            (f"{item['ours']:,.0f}/s", f"{item['theirs']:,.0f}/s")
            if rate
            else (f"{item['ours']:.2f} s", f"{item['theirs']:.2f} s")
        )
        mark = "met" if item["met"] else "not met"
        lines.append(
            f"| {item['measure']} | {ours} | {theirs} | {item['ratio']}x | {item['goal']} "
            f"| {mark} |"
        )
    if results["measures"]:
        lines += ["", "| measure | records | records/s | peak RSS |", "|---|---:|---:|---:|"]
        for measure in results["measures"]:
            lines.append(
                f"| {measure['name']} | {measure['records']:,} | {measure['records_per_s']:,} "
                f"| {measure['peak_rss_mb']:.1f} MB |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--big", type=int, default=1_000_000, help="records for the RSS run")
    parser.add_argument("--quick", action="store_true", help="20k records, 200k for RSS")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument(
        "--readme",
        action="store_true",
        help="print the last run's results (benchmarks/out/results.json) as README tables",
    )
    parser.add_argument(
        "--table-only", action="store_true", help="only the side-by-side rows of issue 13"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=GROUPS,
        help="run only this group of measures (repeatable): " + ", ".join(GROUPS),
    )
    args = parser.parse_args()
    if args.readme:
        print(markdown(json.loads((OUT / "results.json").read_text())))
        return 0
    from bytecode import compile_package  # beside this file

    compile_package()
    records, big = (20_000, 200_000) if args.quick else (args.records, args.big)
    issue_sizes = ((5_000, 20_000), 100_000) if args.quick else ((50_000, 200_000), 1_000_000)
    started = time.perf_counter()
    only = frozenset({"table"}) if args.table_only else frozenset(args.only or GROUPS)
    results = suite(records, big, issue_sizes, only)
    results["harness_seconds"] = round(time.perf_counter() - started, 1)
    OUT.mkdir(exist_ok=True)
    # A partial run does not overwrite the whole suite's results.
    name = "results.json" if only == set(GROUPS) else f"results-{'-'.join(sorted(only))}.json"
    (OUT / name).write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
        print(f"\n(results in {OUT / name}; {results['harness_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
