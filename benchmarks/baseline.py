"""The baseline: the vendor docs' Python example, generalized to a file.

Read the file, send sequential 1,000-record batches with httpx, wait for each answer before
the next, no validation. (The docs use ``requests.post`` per batch; a pooled
``httpx.Client`` is kinder to the baseline, so the comparison is, if anything, generous.)

    python benchmarks/baseline.py FILE BASE_URL      # key from TRACKLY_API_KEY

Prints one JSON object: records, seconds.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def main(path: str, base_url: str) -> None:
    headers = {"X-Api-Key": os.environ["TRACKLY_API_KEY"], "Content-Type": "application/json"}
    started = time.perf_counter()
    sent = 0
    with httpx.Client(headers=headers, timeout=60) as client, Path(path).open(newline="") as handle:
        batch: list[dict[str, Any]] = []
        for row in csv.DictReader(handle):
            batch.append({key: value for key, value in row.items() if value})
            if len(batch) == 1000:
                sent += send(client, base_url, batch)
                batch = []
        if batch:
            sent += send(client, base_url, batch)
    print(json.dumps({"records": sent, "seconds": time.perf_counter() - started}))


def send(client: httpx.Client, base_url: str, batch: list[dict[str, Any]]) -> int:
    response = client.post(f"{base_url}/v2/history/sends", json={"records": batch})
    response.raise_for_status()
    return len(batch)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
