"""What a fresh sandbox holds: the default seed, and seed files in the same shape.

A seed is a list of accounts, each with its API keys, sending lists (with their contacts),
offers, messages (live or imported), clicks and revenue. The default seed is a seed file in
the package (``default_seed.json``), so both go through one parser and there is one copy.

The default seed makes every example request of the vendor's pages succeed verbatim with
``DEMO_API_KEY``, and gives a second account (``OTHER_API_KEY``) to prove isolation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from trackly_migrate.sandbox.validation import (
    is_api_key_format,
    is_valid_e164,
    normalize_timestamp,
)

DEMO_API_KEY = "trk_sandboxdemokey000000000000000000"
OTHER_API_KEY = "trk_sandboxotherkey00000000000000000"

_INT64_MAX = 2**63 - 1


class SeedError(ValueError):
    """The seed file cannot be used; the message names the file and the faulty entry."""


@dataclass(frozen=True)
class SeedContact:
    phone: str
    active: bool = True
    unsubscribe_reason: str | None = None
    send_count: int = 0
    click_count: int = 0
    last_clicked_at: str | None = None  # normalized UTC


@dataclass(frozen=True)
class SeedList:
    id: int | None
    number: str
    name: str | None
    contacts: tuple[SeedContact, ...]


@dataclass(frozen=True)
class SeedMessage:
    id: str
    list_number: str | None  # list references are resolved to the (unique) number
    to_number: str
    timestamp: str  # normalized UTC
    imported: bool
    message: str | None = None
    send_type: str | None = None
    delivered: bool | None = None
    length: int | None = None
    creative_id: int | None = None


@dataclass(frozen=True)
class SeedClick:
    message_id: str
    offer_id: str
    phone_number: str
    timestamp: str
    send_timestamp: str | None


@dataclass(frozen=True)
class SeedRevenue:
    message_id: str | None
    amount: float
    timestamp: str


@dataclass(frozen=True)
class SeedOffer:
    id: str
    name: str | None


@dataclass(frozen=True)
class SeedAccount:
    name: str
    api_keys: tuple[str, ...]
    lists: tuple[SeedList, ...]
    offers: tuple[SeedOffer, ...]
    messages: tuple[SeedMessage, ...]
    clicks: tuple[SeedClick, ...]
    revenue: tuple[SeedRevenue, ...]


@dataclass(frozen=True)
class Seed:
    accounts: tuple[SeedAccount, ...]

    def with_api_key(self, api_key: str) -> Seed:
        """This seed with ``api_key`` given to the first account (the "demo" account).

        The key is added, not substituted: keys listed in the file keep working. A key that
        the file gives to another account is refused, since one key means one account.
        """
        for index, account in enumerate(self.accounts):
            if api_key in account.api_keys:
                if index != 0:
                    raise SeedError(
                        f"the sandbox key is already the key of seed account {account.name!r}; "
                        "it must belong to the first account"
                    )
                return self
        first = self.accounts[0]
        updated = SeedAccount(
            first.name,
            (*first.api_keys, api_key),
            first.lists,
            first.offers,
            first.messages,
            first.clicks,
            first.revenue,
        )
        return Seed((updated, *self.accounts[1:]))


# The default seed is a seed file in the package (its one copy). Its imported history
# straddles the clear example's before_date (2025-12-01T00:00:00Z) so that its answer is
# meaningful: 3 sends, 1 click and 3 revenue records go; a send and a click stamped exactly at
# before_date stay.
DEFAULT_SEED_FILE = "default_seed.json"


def default_seed_data() -> Any:
    """The default seed as decoded JSON (what ``trackly-migrate sandbox --print-seed`` prints)."""
    return orjson.loads(default_seed_bytes())


def default_seed_bytes() -> bytes:
    return resources.files("trackly_migrate.sandbox").joinpath(DEFAULT_SEED_FILE).read_bytes()


def default_seed() -> Seed:
    """The built-in seed (demo and other account)."""
    return parse_seed(default_seed_data(), "the default seed")


def load_seed(path: Path) -> Seed:
    """Read and check a seed file; any problem raises SeedError naming the file and entry."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SeedError(f"cannot read seed file {path}: {exc.strerror or exc}") from exc
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SeedError(f"seed file {path} is not valid JSON: {exc}") from exc
    return parse_seed(data, f"seed file {path}")


def parse_seed(data: Any, source: str) -> Seed:
    """Check seed data (already decoded JSON) and turn it into a Seed."""
    return _SeedParser(source).seed(data)


class _SeedParser:
    """Walks the seed JSON, checking every entry; errors name the JSON path of the entry."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.list_ids: set[int] = set()
        self.list_numbers: set[str] = set()
        self.keys: set[str] = set()
        self.names: set[str] = set()

    def fail(self, where: str, problem: str) -> SeedError:
        return SeedError(f"{self.source}: {where}: {problem}")

    def seed(self, data: Any) -> Seed:
        obj = self.obj(data, "top level", required={"accounts"}, optional=set())
        accounts = self.array(obj["accounts"], "accounts")
        if not accounts:
            raise self.fail("accounts", "at least one account is needed")
        return Seed(tuple(self.account(item, f"accounts[{i}]") for i, item in enumerate(accounts)))

    def account(self, data: Any, where: str) -> SeedAccount:
        fields = {"api_keys", "lists", "offers", "messages", "clicks", "revenue"}
        obj = self.obj(data, where, required={"name"}, optional=fields)
        name = self.text(obj["name"], f"{where}.name")
        if name in self.names:
            raise self.fail(f"{where}.name", f"account name {name!r} is used twice")
        self.names.add(name)
        keys = tuple(
            self.api_key(key, f"{where}.api_keys[{i}]")
            for i, key in enumerate(self.array(obj.get("api_keys", []), f"{where}.api_keys"))
        )
        lists = tuple(
            self.sending_list(item, f"{where}.lists[{i}]")
            for i, item in enumerate(self.array(obj.get("lists", []), f"{where}.lists"))
        )
        offers = self.offers(obj.get("offers", []), f"{where}.offers")
        numbers = {item.number for item in lists}
        by_id = {item.id: item.number for item in lists if item.id is not None}
        messages = self.messages(obj.get("messages", []), f"{where}.messages", numbers, by_id)
        message_ids = {message.id for message in messages}
        offer_ids = {offer.id for offer in offers}
        clicks = self.clicks(obj.get("clicks", []), f"{where}.clicks", message_ids, offer_ids)
        revenue = tuple(
            self.revenue(item, f"{where}.revenue[{i}]", message_ids)
            for i, item in enumerate(self.array(obj.get("revenue", []), f"{where}.revenue"))
        )
        return SeedAccount(name, keys, lists, offers, messages, clicks, revenue)

    def api_key(self, data: Any, where: str) -> str:
        key = self.text(data, where)
        if not is_api_key_format(key):
            # The key itself is not repeated: error messages may end up in logs.
            raise self.fail(where, "an API key must be 'trk_' followed by 32 letters or digits")
        if key in self.keys:
            raise self.fail(where, "this API key is listed twice")
        self.keys.add(key)
        return key

    def sending_list(self, data: Any, where: str) -> SeedList:
        obj = self.obj(data, where, required={"number"}, optional={"id", "name", "contacts"})
        list_id = self.optional_int(obj.get("id"), f"{where}.id")
        if list_id is not None:
            if list_id < 1:
                raise self.fail(f"{where}.id", "a list id must be a positive integer")
            if list_id in self.list_ids:
                raise self.fail(f"{where}.id", f"list id {list_id} is used twice")
            self.list_ids.add(list_id)
        number = self.phone(obj["number"], f"{where}.number")
        if number in self.list_numbers:
            raise self.fail(f"{where}.number", f"list number {number} is used twice")
        self.list_numbers.add(number)
        name = self.optional_text(obj.get("name"), f"{where}.name")
        phones: set[str] = set()
        contacts = []
        for i, item in enumerate(self.array(obj.get("contacts", []), f"{where}.contacts")):
            contact = self.contact(item, f"{where}.contacts[{i}]")
            if contact.phone in phones:
                raise self.fail(f"{where}.contacts[{i}]", "this contact is listed twice")
            phones.add(contact.phone)
            contacts.append(contact)
        return SeedList(list_id, number, name, tuple(contacts))

    def contact(self, data: Any, where: str) -> SeedContact:
        optional = {
            "active",
            "unsubscribe_reason",
            "send_count",
            "click_count",
            "last_clicked_at",
        }
        obj = self.obj(data, where, required={"phone"}, optional=optional)
        active = self.optional_bool(obj.get("active"), f"{where}.active")
        last = obj.get("last_clicked_at")
        return SeedContact(
            phone=self.phone(obj["phone"], f"{where}.phone"),
            active=True if active is None else active,
            unsubscribe_reason=self.optional_text(
                obj.get("unsubscribe_reason"), f"{where}.unsubscribe_reason"
            ),
            send_count=self.count(obj.get("send_count"), f"{where}.send_count"),
            click_count=self.count(obj.get("click_count"), f"{where}.click_count"),
            last_clicked_at=None
            if last is None
            else self.timestamp(last, f"{where}.last_clicked_at"),
        )

    def offers(self, data: Any, where: str) -> tuple[SeedOffer, ...]:
        offers: list[SeedOffer] = []
        for i, item in enumerate(self.array(data, where)):
            obj = self.obj(item, f"{where}[{i}]", required={"id"}, optional={"name"})
            offer = SeedOffer(
                self.text(obj["id"], f"{where}[{i}].id"),
                self.optional_text(obj.get("name"), f"{where}[{i}].name"),
            )
            if any(known.id == offer.id for known in offers):
                raise self.fail(f"{where}[{i}].id", f"offer {offer.id!r} is listed twice")
            offers.append(offer)
        return tuple(offers)

    def messages(
        self, data: Any, where: str, numbers: set[str], by_id: Mapping[int, str]
    ) -> tuple[SeedMessage, ...]:
        messages: list[SeedMessage] = []
        seen: set[str] = set()
        for i, item in enumerate(self.array(data, where)):
            message = self.message(item, f"{where}[{i}]", numbers, by_id)
            if message.id in seen:
                raise self.fail(f"{where}[{i}].id", f"message id {message.id!r} is used twice")
            seen.add(message.id)
            messages.append(message)
        return tuple(messages)

    def message(
        self, data: Any, where: str, numbers: set[str], by_id: Mapping[int, str]
    ) -> SeedMessage:
        optional = {
            "list_id",
            "list_number",
            "imported",
            "message",
            "send_type",
            "delivered",
            "length",
            "creative_id",
        }
        required = {"id", "to_number", "timestamp"}
        obj = self.obj(data, where, required=required, optional=optional)
        list_number = self.message_list(obj, where, numbers, by_id)
        imported = self.optional_bool(obj.get("imported"), f"{where}.imported")
        return SeedMessage(
            id=self.text(obj["id"], f"{where}.id"),
            list_number=list_number,
            to_number=self.phone(obj["to_number"], f"{where}.to_number"),
            timestamp=self.timestamp(obj["timestamp"], f"{where}.timestamp"),
            imported=bool(imported),
            message=self.optional_text(obj.get("message"), f"{where}.message"),
            send_type=self.optional_text(obj.get("send_type"), f"{where}.send_type"),
            delivered=self.optional_bool(obj.get("delivered"), f"{where}.delivered"),
            length=self.optional_int(obj.get("length"), f"{where}.length"),
            creative_id=self.optional_int(obj.get("creative_id"), f"{where}.creative_id"),
        )

    def message_list(
        self, obj: Mapping[str, Any], where: str, numbers: set[str], by_id: Mapping[int, str]
    ) -> str | None:
        """The number of the message's list (given by id or number), or None."""
        list_id = self.optional_int(obj.get("list_id"), f"{where}.list_id")
        list_number = obj.get("list_number")
        if list_number is not None:
            list_number = self.phone(list_number, f"{where}.list_number")
            if list_number not in numbers:
                raise self.fail(f"{where}.list_number", "no list of this account has it")
        if list_id is not None:
            if list_id not in by_id:
                raise self.fail(f"{where}.list_id", "no list of this account has this id")
            if list_number is not None and by_id[list_id] != list_number:
                raise self.fail(where, "list_id and list_number name different lists")
            return by_id[list_id]
        return list_number

    def clicks(
        self, data: Any, where: str, message_ids: set[str], offer_ids: set[str]
    ) -> tuple[SeedClick, ...]:
        clicks: list[SeedClick] = []
        clicked: set[str] = set()
        for i, item in enumerate(self.array(data, where)):
            here = f"{where}[{i}]"
            obj = self.obj(
                item,
                here,
                required={"message_id", "offer_id", "phone_number", "timestamp"},
                optional={"send_timestamp"},
            )
            message_id = self.text(obj["message_id"], f"{here}.message_id")
            if message_id not in message_ids:
                raise self.fail(f"{here}.message_id", "no message of this account has this id")
            if message_id in clicked:
                raise self.fail(f"{here}.message_id", "one click per message (it is the key)")
            clicked.add(message_id)
            offer_id = self.text(obj["offer_id"], f"{here}.offer_id")
            if offer_id not in offer_ids:
                raise self.fail(f"{here}.offer_id", "no offer of this account has this id")
            send_ts = obj.get("send_timestamp")
            clicks.append(
                SeedClick(
                    message_id,
                    offer_id,
                    self.phone(obj["phone_number"], f"{here}.phone_number"),
                    self.timestamp(obj["timestamp"], f"{here}.timestamp"),
                    None if send_ts is None else self.timestamp(send_ts, f"{here}.send_timestamp"),
                )
            )
        return tuple(clicks)

    def revenue(self, data: Any, where: str, message_ids: set[str]) -> SeedRevenue:
        obj = self.obj(data, where, required={"amount", "timestamp"}, optional={"message_id"})
        message_id = self.optional_text(obj.get("message_id"), f"{where}.message_id")
        if message_id is not None and message_id not in message_ids:
            raise self.fail(f"{where}.message_id", "no message of this account has this id")
        amount = obj["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise self.fail(f"{where}.amount", "must be a number")
        if not math.isfinite(amount):
            raise self.fail(f"{where}.amount", "must be a finite number")
        return SeedRevenue(
            message_id, float(amount), self.timestamp(obj["timestamp"], f"{where}.timestamp")
        )

    # Typed accessors: each returns the value or raises SeedError naming the entry.

    def obj(
        self, data: Any, where: str, *, required: set[str], optional: set[str]
    ) -> Mapping[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(where, "must be a JSON object")
        missing = sorted(required - data.keys())
        if missing:
            raise self.fail(where, f"missing field(s): {', '.join(missing)}")
        unknown = sorted(data.keys() - required - optional)
        if unknown:
            raise self.fail(where, f"unknown field(s): {', '.join(unknown)}")
        return data

    def array(self, data: Any, where: str) -> Sequence[Any]:
        if not isinstance(data, list):
            raise self.fail(where, "must be a JSON array")
        return data

    def text(self, data: Any, where: str) -> str:
        if not isinstance(data, str) or not data:
            raise self.fail(where, "must be a non-empty string")
        return data

    def optional_text(self, data: Any, where: str) -> str | None:
        if data is None:
            return None
        if not isinstance(data, str):
            raise self.fail(where, "must be a string")
        return data

    def optional_bool(self, data: Any, where: str) -> bool | None:
        if data is not None and not isinstance(data, bool):
            raise self.fail(where, "must be true or false")
        return data

    def optional_int(self, data: Any, where: str) -> int | None:
        if data is None:
            return None
        if isinstance(data, bool) or not isinstance(data, int) or abs(data) > _INT64_MAX:
            raise self.fail(where, "must be an integer")
        return data

    def count(self, data: Any, where: str) -> int:
        value = self.optional_int(data, where)
        if value is not None and value < 0:
            raise self.fail(where, "must not be negative")
        return value or 0

    def phone(self, data: Any, where: str) -> str:
        if not isinstance(data, str) or not is_valid_e164(data):
            raise self.fail(where, f"{data!r} is not a valid E.164 phone number")
        return data

    def timestamp(self, data: Any, where: str) -> str:
        normalized = normalize_timestamp(data) if isinstance(data, str) else None
        if normalized is None:
            raise self.fail(where, f"{data!r} is not an ISO 8601 timestamp with an offset")
        return normalized
