"""The sandbox's read-only web page, ``GET /_sandbox/``: server-rendered HTML, no script.

Accounts with their counts, the latest records of each entity, and the request journal with
its faults marked; a meta refresh reloads it. Every value from the database or a request is
escaped: a message text or an id is data, never markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

LATEST = 5  # records of each entity shown per account
JOURNAL_ROWS = 50

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .4rem; }
h3 { font-size: .95rem; margin: .9rem 0 .3rem; color: #444; }
p.meta { color: #555; margin: 0 0 1rem; }
table { border-collapse: collapse; margin-bottom: .4rem; }
th, td { border: 1px solid #d5d5d8; padding: .2rem .5rem; text-align: left; vertical-align: top; }
th { background: #f2f2f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.fault td { background: #fff1f0; }
span.fault { color: #b3261e; font-weight: 600; } span.delay { color: #8a5a00; }
td { white-space: nowrap; }
span.ok { color: #1b7f3b; } span.bad { color: #b3261e; }
.empty { color: #777; font-style: italic; }
code { font-size: 12px; }
"""


@dataclass(frozen=True)
class PageData:
    """Everything the page shows, gathered by the route (the page itself reads nothing)."""

    mode: str
    api_url: str
    refresh: int  # seconds; 0 = no refresh
    accounts: dict[str, dict[str, int]]  # name -> counts (Store.stats()["accounts"])
    latest: dict[str, dict[str, list[dict[str, Any]]]]  # name -> entity -> records
    requests: list[dict[str, Any]]  # newest first
    journal_size: int
    journal_total: int


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="empty">–</td>'
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int | float):
        return f'<td class="num">{escape(str(value))}</td>'
    text = str(value)
    shown = text if len(text) <= 60 else text[:59] + "…"
    return f'<td title="{escape(text)}">{escape(shown)}</td>'


def _table(headers: Sequence[str], rows: Iterable[str], empty: str) -> str:
    body = "".join(rows)
    if not body:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(name)}</th>" for name in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _records_table(records: list[dict[str, Any]], columns: Sequence[str], entity: str) -> str:
    rows = ("<tr>" + "".join(_cell(r.get(c)) for c in columns) + "</tr>" for r in records)
    return _table(columns, rows, f"no {entity} yet")


_SHOWN_COLUMNS = {
    "sends": ("id", "to_number", "list_number", "timestamp", "imported", "message"),
    "clicks": ("message_id", "offer_id", "phone_number", "timestamp"),
    "revenue": ("id", "message_id", "amount", "timestamp"),
    "contacts": ("list_number", "phone", "active", "send_count", "click_count"),
}

_ACCOUNT_COUNTS = (
    ("imported sends", "imported_messages"),
    ("live sends", "live_messages"),
    ("clicks", "clicks"),
    ("revenue", "revenue"),
    ("lists", "lists"),
    ("contacts", "list_contacts"),
    ("active contacts", "active_contacts"),
    ("offers", "offers"),
)


def _accounts(data: PageData) -> str:
    rows = (
        f"<tr><td>{escape(name)}</td>"
        + "".join(_cell(counts.get(key)) for _, key in _ACCOUNT_COUNTS)
        + "</tr>"
        for name, counts in data.accounts.items()
    )
    headers = ["account", *(label for label, _ in _ACCOUNT_COUNTS)]
    return _table(headers, rows, "no accounts")


def _latest(data: PageData) -> str:
    parts = []
    for name, entities in data.latest.items():
        parts.append(f"<h2>Latest records of {escape(name)}</h2>")
        for entity, records in entities.items():
            parts.append(f"<h3>{escape(entity)}</h3>")
            parts.append(_records_table(records, _SHOWN_COLUMNS[entity], entity))
    return "".join(parts)


def _status(status: Any) -> str:
    if status is None:
        return '<td class="empty">–</td>'
    kind = "ok" if isinstance(status, int) and status < 400 else "bad"
    return f'<td class="num"><span class="{kind}">{escape(str(status))}</span></td>'


_COUNT_LABELS = {
    "success_count": "stored",
    "error_count": "errors",
    "duplicates_skipped": "duplicates",
    "invalid_phones": "invalid phones",
}


def _counts(counts: Any) -> str:
    """An answer's counts, short: "stored 998 · errors 2 · duplicates 0"."""
    if not counts:
        return '<td class="empty">–</td>'
    text = " · ".join(f"{_COUNT_LABELS.get(name, name)} {value}" for name, value in counts.items())
    return f"<td>{escape(text)}</td>"


def _time(stamp: Any) -> str:
    """The time of day (the date is in the cell's title): the journal is about now."""
    if not isinstance(stamp, str):
        return _cell(stamp)
    return f'<td title="{escape(stamp)}">{escape(stamp[11:23])}</td>'


def _is_failure(fault: str) -> bool:
    """A fault that changed the answer (503, 429, a dropped connection), not a mere delay."""
    return any(not part.startswith("latency") for part in fault.split(", "))


def _request_row(entry: dict[str, Any]) -> str:
    fault: str | None = entry.get("fault")
    failed = fault is not None and _is_failure(fault)
    if fault:
        kind = "fault" if failed else "delay"
        marked = f'<td><span class="{kind}">{"⚠ " if failed else ""}{escape(fault)}</span></td>'
    else:
        marked = _cell(None)
    opening = '<tr class="fault">' if failed else "<tr>"
    return (
        opening
        + _cell(entry.get("seq"))
        + _time(entry.get("time"))
        + _cell(f"{entry.get('method')} {entry.get('path')}")
        + _cell(entry.get("key"))
        + _status(entry.get("status"))
        + _cell(entry.get("records"))
        + _counts(entry.get("counts"))
        + marked
        + _cell(entry.get("duration_ms"))
        + "</tr>"
    )


def _journal(data: PageData) -> str:
    headers = ("#", "time (UTC)", "request", "key", "status", "records", "answer", "fault", "ms")
    rows = (_request_row(entry) for entry in data.requests)
    return _table(headers, rows, "no /api request yet")


def render(data: PageData) -> str:
    """The whole page."""
    refresh = f'<meta http-equiv="refresh" content="{data.refresh}">' if data.refresh else ""
    note = f"refreshes every {data.refresh} s" if data.refresh else "no automatic refresh"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"{refresh}<title>Trackly sandbox</title><style>{_STYLE}</style></head><body>"
        "<h1>Trackly sandbox</h1>"
        f'<p class="meta">mode <b>{escape(data.mode)}</b> · API <code>{escape(data.api_url)}</code>'
        f" · {escape(note)} · read-only</p>"
        "<h2>Accounts</h2>"
        + _accounts(data)
        + f"<h2>Requests (newest {len(data.requests)} of {data.journal_total:,};"
        f" the journal keeps {data.journal_size:,})</h2>"
        + _journal(data)
        + _latest(data)
        + "</body></html>\n"
    )
