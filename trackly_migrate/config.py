"""Connection settings from flags and the environment: API key, base URL, and their rules.

The key is checked for its format before any request (``trk_`` + 32 letters/digits), read
from ``TRACKLY_API_KEY`` or a file (a key on the command line shows in ``ps``), and only ever
shown redacted. Plain ``http://`` is refused except to a loopback host, so a key never crosses
a network in clear text.

TLS certificates are verified against certifi's CAs (httpx's default, which also honours
``SSL_CERT_FILE`` and ``SSL_CERT_DIR``), or, with ``--ca-bundle`` / ``TRACKLY_CA_BUNDLE``,
against exactly the CA certificates of that PEM file: for a private CA or a company proxy
that inspects TLS. Verification is never turned off.

Each setting has one precedence, ``first_set``: a flag, then the environment, then the
profile (``--profile`` / ``TRACKLY_PROFILE``, see ``profiles.py``), then the default.
``resolve_settings`` applies it to the base URL, the key and the CA bundle at once.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from trackly_migrate.errors import UsageError
from trackly_migrate.profiles import Profile, find_profile, key_file_warning

if TYPE_CHECKING:
    import ssl

PRODUCTION_BASE_URL = "https://app.tracklysms.com/api"

API_KEY_ENV = "TRACKLY_API_KEY"
BASE_URL_ENV = "TRACKLY_BASE_URL"
CA_BUNDLE_ENV = "TRACKLY_CA_BUNDLE"
PROFILE_ENV = "TRACKLY_PROFILE"
_KEY_FORMAT = re.compile(r"^trk_[A-Za-z0-9]{32}$")

T = TypeVar("T")


def first_set(*candidates: tuple[str, T | None]) -> tuple[str, T] | None:
    """The precedence, in one place: the first ``(where, value)`` whose value is set.

    Callers list their candidates in the documented order: flag, environment, profile,
    default. An empty string counts as not set (``TRACKLY_BASE_URL=`` means "unset").
    """
    for where, value in candidates:
        if value is not None and value != "":
            return where, value
    return None


@dataclass(frozen=True)
class ApiSettings:
    """Where to send requests and with which key; ``repr`` never shows the key."""

    base_url: str
    api_key: str = field(repr=False)
    ca_bundle: Path | None = None  # PEM file of the CA certificates to trust instead

    @property
    def redacted_key(self) -> str:
        return redact_key(self.api_key)

    @property
    def host(self) -> str:
        import httpx  # not at import: it is most of the command line's start-up time

        return httpx.URL(self.base_url).host


def tls_verify(settings: ApiSettings) -> ssl.SSLContext | bool:
    """What httpx's ``verify=`` gets: a context trusting ``ca_bundle``, else its default."""
    if settings.ca_bundle is None:
        return True
    return _context_for(settings.ca_bundle)


def check_ca_bundle(path: Path | None, profile: Profile | None = None) -> Path | None:
    """``--ca-bundle``, else ``TRACKLY_CA_BUNDLE``, else the profile's; checked to be usable."""
    from_env = os.environ.get(CA_BUNDLE_ENV)
    chosen = first_set(
        ("flag", path),
        ("env", Path(from_env) if from_env else None),
        ("profile", profile.ca_bundle if profile else None),
    )
    if chosen is None:
        return None
    _context_for(chosen[1])
    return chosen[1].resolve()


def _context_for(path: Path) -> ssl.SSLContext:
    import ssl

    hint = "Give a PEM file holding the CA certificate(s) that signed the server's certificate."
    try:
        return ssl.create_default_context(cafile=str(path))
    except ssl.SSLError:  # before OSError, of which it is a subclass
        raise UsageError(f"The CA bundle {path} holds no usable certificate.", hint=hint) from None
    except OSError as exc:
        raise UsageError(f"Cannot read the CA bundle {path}: {exc.strerror}.", hint=hint) from None


def redact_key(key: str) -> str:
    """``trk_…WXYZ``: enough to tell two keys apart, never enough to use one."""
    return f"trk_…{key[-4:]}" if len(key) > 8 else "trk_…"


def check_api_key(key: str) -> str:
    """The key, stripped, if it has the Trackly format; a usage error (not echoing it) if not."""
    key = key.strip()
    if not _KEY_FORMAT.match(key):
        shape = f"{len(key)} characters" + ("" if key.startswith("trk_") else ", no trk_ prefix")
        raise UsageError(
            f"The API key does not look like a Trackly key ({shape}).",
            hint="A key is trk_ followed by 32 letters or digits; copy it again from "
            "Settings → API in Trackly.",
        )
    return key


def read_api_key(
    *, flag_value: str | None, key_file: Path | None, profile: Profile | None = None
) -> str:
    """The key from ``--api-key``, ``--api-key-file``, ``TRACKLY_API_KEY`` or the profile."""
    chosen = _key_choice(flag_value, key_file, profile)
    if chosen is None:
        raise UsageError(
            "No API key.",
            hint=f"Set {API_KEY_ENV}, pass --api-key-file PATH (a file holding only the key) "
            "or --profile NAME. To rehearse without a key, add --sandbox.",
        )
    value = chosen[1]
    if isinstance(value, str):
        return check_api_key(value)
    return _key_from_file(value)


def _key_choice(
    flag_value: str | None, key_file: Path | None, profile: Profile | None
) -> tuple[str, str | Path] | None:
    candidates: list[tuple[str, str | Path | None]] = [
        ("flag", flag_value),
        ("flag", key_file),
        ("env", os.environ.get(API_KEY_ENV)),
        ("profile", profile.api_key_file if profile else None),
    ]
    return first_set(*candidates)


def _key_from_file(key_file: Path) -> str:
    try:
        text = key_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"Cannot read the API key file {key_file}: {exc.strerror}.") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise UsageError(f"The API key file {key_file} must hold exactly one key.")
    return check_api_key(lines[0])


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str | None, profile: Profile | None = None) -> str:
    """The API base URL without a trailing slash; plain http only to loopback."""
    import httpx

    chosen = first_set(
        ("flag", url),
        ("env", os.environ.get(BASE_URL_ENV)),
        ("profile", profile.base_url if profile else None),
        ("default", PRODUCTION_BASE_URL),
    )
    assert chosen is not None  # the default is always set
    url = chosen[1].strip()
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UsageError(f"The base URL {url!r} is not a URL ({exc}).") from None
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise UsageError(
            f"The base URL {url!r} is not an http(s) URL.",
            hint=f"For example {PRODUCTION_BASE_URL}",
        )
    if parsed.scheme == "http" and not is_loopback_host(parsed.host):
        raise UsageError(
            f"Refusing plain http:// to {parsed.host}: the API key would cross the network "
            "unencrypted.",
            hint="Use https://, or http:// only to localhost / 127.0.0.1.",
        )
    if parsed.userinfo:
        raise UsageError("The base URL must not carry a user name or password.")
    return url.rstrip("/")


@dataclass(frozen=True)
class ConnectionOptions:
    """What a caller says about the API: flags (``None`` = not given) and a profile name."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_file: Path | None = None
    ca_bundle: Path | None = None
    profile: str | None = None  # else TRACKLY_PROFILE, else none


def profile_name(name: str | None) -> str | None:
    """The profile in use: ``--profile NAME``, else ``TRACKLY_PROFILE``, else none."""
    chosen = first_set(("flag", name), ("env", os.environ.get(PROFILE_ENV)))
    return None if chosen is None else chosen[1]


def selected_profile(name: str | None) -> Profile | None:
    """The profile ``profile_name(name)`` names, checked; or none."""
    chosen = profile_name(name)
    return None if chosen is None else find_profile(chosen)


def redacted_key_in(path: Path) -> str:
    """The key in a key file, redacted, or what is wrong with the file: for listings."""
    try:
        return redact_key(_key_from_file(path))
    except UsageError as error:
        return f"({error.message.rstrip('.')})"


def resolve_settings(options: ConnectionOptions) -> tuple[ApiSettings, list[str]]:
    """The API settings, each by ``first_set``'s precedence, and warnings to show the user.

    The warnings (for now: a key file that others can read) are returned, not printed:
    this module never prints.
    """
    profile = selected_profile(options.profile)
    key = read_api_key(flag_value=options.api_key, key_file=options.api_key_file, profile=profile)
    settings = ApiSettings(
        base_url=check_base_url(options.base_url, profile),
        api_key=key,
        ca_bundle=check_ca_bundle(options.ca_bundle, profile),
    )
    chosen = _key_choice(options.api_key, options.api_key_file, profile)
    warning = key_file_warning(chosen[1]) if chosen and isinstance(chosen[1], Path) else None
    return settings, [warning] if warning else []
