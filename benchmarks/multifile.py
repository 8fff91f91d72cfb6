"""Benchmark: 100 files of 10,000 sends against one file of 1,000,000 (issue 14).

    .venv/bin/python benchmarks/multifile.py            # 100 x 10,000 vs 1 x 1,000,000
    .venv/bin/python benchmarks/multifile.py --quick    # 20 x 5,000 vs 1 x 100,000
    .venv/bin/python benchmarks/multifile.py --rounds 6 # six pairs, and their median ratio
    .venv/bin/python benchmarks/multifile.py --files 1000   # 1,000 x 1,000: the cost of a file

Both runs import the same records into a sandbox in *sink* mode (checked and counted, not
stored: the client is what is measured), in a process each; it prints both rates (records
over the wall time of the whole process, start-up and the files' switches included), their
ratio, and each run's peak RSS from the OS (``wait4``). A run over many files should be as
fast as one over one file, and its memory as flat. The runs keep their checkpoints and
ledger in a state folder of the benchmark's own, new each time: the machine's ledger (each
sandbox's port is another account) would grow with every benchmark run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "multifile"
STATE = OUT / "state"  # checkpoints and ledger (platformdirs' user state folder)
DEMO_KEY = "trk_sandboxdemokey000000000000000000"
sys.path.insert(0, str(HERE))

from bytecode import compile_package  # noqa: E402
from datagen import send_rows, write_csv  # noqa: E402


def write_parts(files: int, per_file: int) -> tuple[Path, Path]:
    """The same records as ``files`` parts in a folder and as one file."""
    parts, single = OUT / f"parts-{files}x{per_file}", OUT / f"one-{files * per_file}.csv"
    if not parts.exists():
        parts.mkdir(parents=True)
        rows = send_rows(files * per_file, distinct=0.1, prefix="mf", rng=random.Random(14))
        kept = list(rows)  # a message may hold a newline: split records, never lines
        with single.open("w", newline="", encoding="utf-8") as whole:
            write_csv(iter(kept), whole)
        for n in range(files):
            chunk = kept[n * per_file : (n + 1) * per_file]
            with (parts / f"sends-{n:04d}.csv").open("w", newline="", encoding="utf-8") as part:
                write_csv(iter(chunk), part)
    return parts, single


def measured(inputs: Path, url: str, errors: Path) -> dict[str, float]:
    args = [sys.executable, "-m", "trackly_migrate", "import-sends", str(inputs), "--json", "-q"]
    args += ["--errors", str(errors), "--restart"]
    env = {**os.environ, "TRACKLY_API_KEY": DEMO_KEY, "TRACKLY_BASE_URL": url}
    env["XDG_STATE_HOME"] = str(STATE)
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{inputs} exited {os.waitstatus_to_exitcode(status)}")
    summary = json.loads(output)
    settled = summary["imported"] + summary["duplicates"]
    return {
        "records": settled,
        "seconds": seconds,
        "rate": settled / seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        # The client's own CPU (both processes: reader and sender): on a shared machine it
        # moves less than the wall clock, which waits for whatever else runs.
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 x 5,000 against 1 x 100,000")
    parser.add_argument(
        "--rounds", type=int, default=1, help="pairs of runs, one after the other (shared machine)"
    )
    parser.add_argument(
        "--files",
        type=int,
        help="split the same records into this many files instead (a divisor of the total)",
    )
    parser.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    compile_package()
    files, per_file = (20, 5_000) if options.quick else (100, 10_000)
    if options.files:
        total = files * per_file
        if options.files <= 0 or total % options.files:
            parser.error(f"--files must divide {total:,}")
        files, per_file = options.files, total // options.files
    if options.write_only:
        write_parts(files, per_file)
        return 0
    # Written by a process of its own: a child's peak RSS (wait4) starts from its parent's at
    # fork, and the million rows held while writing would show in every run's figure.
    subprocess.run([sys.executable, __file__, "--write-only", *sys.argv[1:]], check=True)
    parts, single = write_parts(files, per_file)  # written: only their paths
    shutil.rmtree(STATE, ignore_errors=True)
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trackly_migrate",
            "sandbox",
            "--port",
            "0",
            "--db",
            ":memory:",
            "--sink",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert sandbox.stdout is not None
    url = sandbox.stdout.readline().strip()
    pairs: list[tuple[dict[str, float], dict[str, float]]] = []
    try:
        reports = OUT / "reports"
        reports.mkdir(exist_ok=True)
        for round_number in range(options.rounds):
            # Every other pair runs the many files first, so that a machine that warms up or
            # gets busier during the benchmark favours neither run.
            if round_number % 2:
                many = measured(parts, url, reports)
                one = measured(single, url, OUT / "one.errors.csv")
            else:
                one = measured(single, url, OUT / "one.errors.csv")
                many = measured(parts, url, reports)
            pairs.append((one, many))
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    print(
        f"{'run':<28}{'records':>12}{'seconds':>10}{'records/s':>12}{'CPU s':>8}{'peak RSS MB':>13}"
    )
    for one, many in pairs:
        for name, result in (
            (f"1 file of {files * per_file:,}", one),
            (f"{files} files of {per_file:,}", many),
        ):
            print(
                f"{name:<28}{result['records']:>12,.0f}{result['seconds']:>10.1f}"
                f"{result['rate']:>12,.0f}{result['cpu_s']:>8.1f}{result['peak_rss_mb']:>13.0f}"
            )
        print(
            f"ratio (many files / one file): throughput {many['rate'] / one['rate']:.2f}, "
            f"CPU {many['cpu_s'] / one['cpu_s']:.2f}, "
            f"peak RSS {many['peak_rss_mb'] / one['peak_rss_mb']:.2f}"
        )
    if len(pairs) > 1:
        ratios = sorted(many["rate"] / one["rate"] for one, many in pairs)
        cpu = sorted(many["cpu_s"] / one["cpu_s"] for one, many in pairs)
        print(
            f"over {len(pairs)} pairs: throughput ratio median {statistics.median(ratios):.2f} "
            f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}), "
            f"CPU ratio median {statistics.median(cpu):.2f}"
        )
    results = [{"one": one, "many": many} for one, many in pairs]
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
