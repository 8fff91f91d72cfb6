"""Realistic SMS history for benchmarks and the shipped samples, written as a stream.

    python benchmarks/datagen.py sends OUT.csv --records 1000000 --distinct 0.1
    python benchmarks/datagen.py clicks OUT.jsonl --records 100000 --sends-prefix bench
    python benchmarks/datagen.py samples samples/     # regenerate the files in samples/

Everything is drawn from a seeded RNG, so the same command writes the same bytes. The lists
and offers named are those of the sandbox's default seed (``trackly-migrate sandbox --print-seed``).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

LISTS = [(42, "+14155551234"), (43, "+18005551234"), (44, "+12125550100"), (45, "+13125550199")]
OFFERS = ["offer_123", "offer_456", "offer_spring", "offer_summer", "offer_fall", "offer_winter"]
SEND_COLUMNS = [
    "id",
    "to_number",
    "timestamp",
    "list_number",
    "list_id",
    "message",
    "send_type",
    "delivered",
    "length",
    "creative_id",
]
# The shape of the performance issue's measurements: a typical export's eight columns, every
# row naming its list by id (no list_number, no creative_id).
REALISTIC_COLUMNS = [
    "id",
    "list_id",
    "to_number",
    "message",
    "send_type",
    "delivered",
    "length",
    "timestamp",
]
LIST_IDS = {number: list_id for list_id, number in LISTS}
BODIES = [
    "Flash sale: 20% off everything today only!",
    "Your order has shipped. Track it here: https://trk.ly/x1",
    'Reply "STOP" to unsubscribe, "HELP" for help.',
    "New arrivals, just for you 🎉",
    "Weekend deal, 2 for 1, ends Sunday",
    "Hi {name}, your appointment is tomorrow at 10:00.\nReply C to confirm.",
    "Last chance: free shipping, no code needed",
    "Gracias por tu compra — ¡vuelve pronto!",
]
# US area codes whose 555-01xx range phonenumbers accepts as valid numbers.
AREA_CODES = ["202", "212", "310", "312", "415", "617", "646", "702", "713", "917"]
START = datetime(2023, 1, 1, tzinfo=UTC)


def phone_pool(size: int, rng: random.Random) -> list[str]:
    """``size`` distinct valid US numbers in E.164."""
    numbers: set[str] = set()
    while len(numbers) < size:
        area = rng.choice(AREA_CODES)
        exchange = rng.randint(200, 999)
        numbers.add(f"+1{area}{exchange}{rng.randint(0, 9999):04d}")
    return sorted(numbers)


def send_rows(
    count: int, *, distinct: float, prefix: str, rng: random.Random
) -> Iterator[dict[str, Any]]:
    """Valid send records in E.164/UTC; ``distinct`` is the share of distinct recipients."""
    pool = phone_pool(max(1, int(count * distinct)), rng) if distinct < 1 else None
    moment = START
    for index in range(count):
        moment += timedelta(seconds=rng.randint(1, 90))
        list_id, list_number = rng.choice(LISTS)
        body = rng.choice(BODIES)
        row: dict[str, Any] = {
            "id": f"{prefix}_{index:08d}",
            "to_number": rng.choice(pool) if pool else _unique_phone(index),
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "message": body,
            "send_type": rng.choice(["campaign", "campaign", "automation", "keyword"]),
            "delivered": rng.random() > 0.03,
            "length": len(body),
            "creative_id": rng.randint(100, 140),
        }
        if rng.random() < 0.5:
            row["list_number"] = list_number
        else:
            row["list_id"] = list_id
        yield row


def _unique_phone(index: int) -> str:
    area = AREA_CODES[index % len(AREA_CODES)]
    rest = 2_000_000 + (index // len(AREA_CODES)) % 8_000_000
    return f"+1{area}{rest:07d}"


def click_rows(
    count: int, *, sends: int, prefix: str, rng: random.Random
) -> Iterator[dict[str, Any]]:
    """Valid clicks on the first ``sends`` messages of ``send_rows(prefix=prefix)``."""
    for index in rng.sample(range(sends), min(count, sends)):
        moment = START + timedelta(seconds=index * 45 + rng.randint(60, 7200))
        yield {
            "message_id": f"{prefix}_{index:08d}",
            "offer_id": rng.choice(OFFERS),
            "phone_number": _unique_phone(index),
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def write_csv(
    rows: Iterator[dict[str, Any]], out: IO[str], columns: list[str] = SEND_COLUMNS
) -> int:
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    realistic = columns is REALISTIC_COLUMNS
    written = 0
    for row in rows:
        if "delivered" in row and isinstance(row["delivered"], bool):
            row = {**row, "delivered": "true" if row["delivered"] else "false"}
        if realistic and "list_id" not in row:
            row = {**row, "list_id": LIST_IDS[row["list_number"]]}
        writer.writerow(row)
        written += 1
    return written


def write_jsonl(rows: Iterator[dict[str, Any]], out: IO[str]) -> int:
    written = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        written += 1
    return written


# -- the shipped samples -------------------------------------------------------------------


def _human_format(e164: str, rng: random.Random) -> str:
    digits = e164[2:]
    style = rng.randrange(4)
    if style == 0:
        return f"+1 ({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    if style == 1:
        return f"+1.{digits[:3]}.{digits[3:6]}.{digits[6:]}"
    if style == 2:
        return f"+1-{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    return e164


def _timestamp_text(moment: datetime, rng: random.Random) -> str:
    style = rng.randrange(4)
    if style == 0:
        return moment.strftime("%Y-%m-%d %H:%M:%S") + "+00:00"
    if style == 1:
        local = moment - timedelta(hours=5)
        return local.strftime("%Y-%m-%dT%H:%M:%S") + "-05:00"
    if style == 2:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{rng.randint(0, 999):03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sample_sends(rng: random.Random, count: int = 3000) -> list[dict[str, Any]]:
    rows = list(send_rows(count, distinct=0.4, prefix="sample", rng=rng))
    for row in rows:
        row["_recipient"] = row["to_number"]
        row["to_number"] = _human_format(row["to_number"], rng)
        row["timestamp"] = _timestamp_text(
            datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00")), rng
        )
    # Messy rows a real export has; each is rejected (locally or by the server) or skipped.
    rows[17]["to_number"] = "415-555-01"  # too short: invalid_phone
    rows[101]["id"] = ""  # missing_id
    rows[256]["timestamp"] = "2024-02-30T10:00:00Z"  # no such day: invalid_timestamp
    rows[400]["timestamp"] = "2024-03-01 09:15:00"  # no offset: invalid_timestamp
    rows[512]["delivered"] = "maybe"  # invalid_type
    rows[777]["length"] = "twenty"  # invalid_type
    rows[1024].pop("list_number", None)
    rows[1024]["list_id"] = 99  # not a list of this account: list_not_found (server)
    rows[1500].pop("list_id", None)
    rows[1500]["list_number"] = "+16175550100"  # not a list of this account (server)
    rows[2048]["to_number"] = "+1 555 555 5555"  # 555-5555 is not a real number
    rows[2222]["message"] = '=HYPERLINK("https://example.com","Click")'  # must stay text
    rows[2500]["id"] = rows[2499]["id"]  # the same message twice: a duplicate
    return rows


def sample_clicks(
    rng: random.Random, sends: list[dict[str, Any]], count: int = 1500
) -> list[dict[str, Any]]:
    rows = []
    for index in sorted(rng.sample(range(len(sends)), count)):
        send = sends[index]
        moment = START + timedelta(seconds=index * 45 + rng.randint(60, 7200))
        rows.append(
            {
                "message_id": f"sample_{index:08d}",
                "offer_id": rng.choice(OFFERS),
                "phone_number": send["_recipient"],
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    rows[5]["message_id"] = "sample_99999999"  # no such message: message_not_found (server)
    rows[60]["offer_id"] = "offer_unknown"  # offer_not_found (server)
    rows[300]["phone_number"] = "12345"  # invalid_phone
    rows[700].pop("offer_id")  # missing_offer_id
    rows[900]["timestamp"] = "2024-13-01T00:00:00Z"  # month 13: invalid_timestamp
    return rows


def other_platform_rows(rng: random.Random, count: int = 400) -> Iterator[dict[str, str]]:
    """An export in another platform's column names, national numbers and local times."""
    for index, row in enumerate(send_rows(count, distinct=0.5, prefix="op", rng=rng)):
        digits = row["to_number"][2:]
        local = datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00")) - timedelta(hours=5)
        yield {
            "MessageID": f"OP-{index:06d}",
            "Recipient": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
            "SentAt": local.strftime("%Y-%m-%d %H:%M:%S"),
            "SenderNumber": row.get("list_number") or "+14155551234",
            "Body": row["message"],
            "Campaign": row["send_type"],
            "Delivered": "Yes" if row["delivered"] else "No",
            "Characters": str(row["length"]),
            "Segments": "1",
            "Carrier": rng.choice(["Verizon", "AT&T", "T-Mobile"]),
        }


def write_samples(folder: Path) -> None:
    rng = random.Random(20251115)
    folder.mkdir(parents=True, exist_ok=True)
    sends = sample_sends(rng)
    with (folder / "sends.csv").open("w", encoding="utf-8", newline="") as out:
        write_csv(iter(sends), out)
    with (folder / "clicks.jsonl").open("w", encoding="utf-8") as out:
        clicks = sample_clicks(rng, sends)
        write_jsonl(iter(clicks[:450]), out)
        out.write('{"message_id": "sample_00000001", "offer_id": \n')  # a broken line
        out.write("\n")
        write_jsonl(iter(clicks[450:]), out)
    other = folder / "other-platform"
    other.mkdir(exist_ok=True)
    rows = list(other_platform_rows(rng))
    with (other / "messages_export.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    sends = sub.add_parser("sends", help="valid send records (CSV or JSONL by extension)")
    sends.add_argument("out", type=Path)
    sends.add_argument("--records", type=int, default=100_000)
    sends.add_argument("--distinct", type=float, default=0.1, help="share of distinct numbers")
    sends.add_argument("--prefix", default="bench")
    sends.add_argument("--seed", type=int, default=1)
    sends.add_argument(
        "--columns",
        choices=["all", "realistic"],
        default="all",
        help="all: every send field; realistic: the 8 columns of the performance issue",
    )
    clicks = sub.add_parser("clicks", help="valid clicks on messages of a 'sends' file")
    clicks.add_argument("out", type=Path)
    clicks.add_argument("--records", type=int, default=10_000)
    clicks.add_argument("--sends", type=int, default=100_000, help="records of that sends file")
    clicks.add_argument("--prefix", default="bench")
    clicks.add_argument("--seed", type=int, default=1)
    samples = sub.add_parser("samples", help="regenerate the shipped samples")
    samples.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.what == "samples":
        write_samples(args.folder)
        return 0
    rng = random.Random(args.seed)
    rows: Iterator[dict[str, Any]]
    if args.what == "sends":
        rows = send_rows(args.records, distinct=args.distinct, prefix=args.prefix, rng=rng)
    else:
        rows = click_rows(args.records, sends=args.sends, prefix=args.prefix, rng=rng)
    with args.out.open("w", encoding="utf-8", newline="") as out:
        is_csv = args.out.suffix == ".csv"
        columns = REALISTIC_COLUMNS if getattr(args, "columns", "all") == "realistic" else None
        if is_csv:
            written = write_csv(rows, out, columns or SEND_COLUMNS)
        else:
            written = write_jsonl(rows, out)
    print(f"wrote {written:,} records to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
