"""The first second of an import (issue 13): how soon the first request leaves, and how many
are in flight, for 50,000 sends against a sandbox that adds 100 ms to every request.

    .venv/bin/python benchmarks/first_second.py [--records 50000] [--runs 3] [--latency 100ms]

The sandbox runs in sink mode (it checks and counts, stores nothing) in a process of its own;
its request journal gives each request's arrival time and duration. Times are whole-process:
from just before the import is started to its exit, start-up included. Prints the median of
``--runs`` runs of: time to the first request, total time, and the most requests in flight.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DEMO_KEY = "trk_sandboxdemokey000000000000000000"


def sends_file(records: int) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"sends8-{records}-0.1.csv"  # the name benchmarks/run.py gives the same file
    if not path.exists():
        generator = [sys.executable, str(HERE / "datagen.py"), "sends", str(path)]
        generator += ["--records", str(records), "--distinct", "0.1", "--columns", "realistic"]
        subprocess.run(generator, check=True)
    return path


def start_sandbox(latency: str) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "trackly_migrate", "sandbox", "--port", "0"]
    args += ["--db", ":memory:", "--sink", "--latency", latency, "--journal-size", "10000"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1"):
        raise RuntimeError("the sandbox did not start")
    return process, url


def one_run(path: Path, url: str) -> dict[str, float]:
    """One import; its figures from the sandbox's request journal."""
    root = "/".join(url.split("/")[:3])  # the sandbox prints its API's base URL
    httpx.post(f"{root}/_sandbox/reset", timeout=30).raise_for_status()
    args = [sys.executable, "-m", "trackly_migrate", "import-sends", str(path), "--json", "-q"]
    args += ["--errors", str(OUT / "first-second.errors.csv"), "--force", "--restart"]
    env = {**os.environ, "TRACKLY_API_KEY": DEMO_KEY, "TRACKLY_BASE_URL": url}
    started = time.time()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    total = time.time() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"the import exited {done.returncode}: {done.stderr[-500:]}")
    answer = httpx.get(f"{root}/_sandbox/requests", params={"limit": 10000}, timeout=30)
    entries = [e for e in answer.json()["requests"] if e["path"].startswith("/api")]
    spans = []
    for entry in entries:
        begin = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
        spans.append((begin, begin + entry["duration_ms"] / 1000))
    first = min(begin for begin, _ in spans) - started
    events = sorted([(b, 1) for b, _ in spans] + [(e, -1) for _, e in spans])
    in_flight = most = 0
    for _, step in events:
        in_flight += step
        most = max(most, in_flight)
    return {"first_request_s": first, "total_s": total, "requests": len(spans), "most": most}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", default="100ms")
    options = parser.parse_args()
    from bytecode import compile_package  # beside this file

    compile_package()
    path = sends_file(options.records)
    sandbox, url = start_sandbox(options.latency)
    try:
        runs = [one_run(path, url) for _ in range(options.runs)]
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    for run in runs:
        print(
            f"first request {run['first_request_s']:.3f} s, total {run['total_s']:.3f} s, "
            f"{run['requests']:.0f} requests, at most {run['most']:.0f} in flight"
        )
    first = statistics.median(r["first_request_s"] for r in runs)
    total = statistics.median(r["total_s"] for r in runs)
    most = statistics.median(r["most"] for r in runs)
    print(
        f"median of {len(runs)}: first request after {first:.3f} s, {options.records:,} rows "
        f"in {total:.3f} s, at most {most:.0f} in flight"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
