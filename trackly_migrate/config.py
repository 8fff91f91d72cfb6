"""Connection settings from flags and the environment: API key, base URL, and their rules.

The key is checked for its format before any request (``trk_`` + 32 letters/digits), read
from ``TRACKLY_API_KEY`` or a file (a key on the command line shows in ``ps``), and only ever
shown redacted. Plain ``http://`` is refused except to a loopback host, so a key never crosses
a network in clear text.

TLS certificates are verified against certifi's CAs (httpx's default, which also honours
``SSL_CERT_FILE`` and ``SSL_CERT_DIR``), or, with ``--ca-bundle`` / ``TRACKLY_CA_BUNDLE``,
against exactly the CA certificates of that PEM file: for a private CA or a company proxy
that inspects TLS. Verification is never turned off.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trackly_migrate.errors import UsageError

if TYPE_CHECKING:
    import ssl

PRODUCTION_BASE_URL = "https://app.tracklysms.com/api"

API_KEY_ENV = "TRACKLY_API_KEY"
BASE_URL_ENV = "TRACKLY_BASE_URL"
CA_BUNDLE_ENV = "TRACKLY_CA_BUNDLE"
_KEY_FORMAT = re.compile(r"^trk_[A-Za-z0-9]{32}$")


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


def check_ca_bundle(path: Path | None) -> Path | None:
    """``--ca-bundle`` (else ``TRACKLY_CA_BUNDLE``), checked to hold usable CA certificates."""
    if path is None:
        from_env = os.environ.get(CA_BUNDLE_ENV)
        if not from_env:
            return None
        path = Path(from_env)
    _context_for(path)
    return path.resolve()


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


def read_api_key(*, flag_value: str | None, key_file: Path | None) -> str:
    """The key from ``--api-key``, ``--api-key-file`` or ``TRACKLY_API_KEY``, in that order."""
    if flag_value:
        return check_api_key(flag_value)
    if key_file is not None:
        try:
            text = key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"Cannot read the API key file {key_file}: {exc.strerror}.") from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) != 1:
            raise UsageError(f"The API key file {key_file} must hold exactly one key.")
        return check_api_key(lines[0])
    from_env = os.environ.get(API_KEY_ENV)
    if from_env:
        return check_api_key(from_env)
    raise UsageError(
        "No API key.",
        hint=f"Set {API_KEY_ENV}, or pass --api-key-file PATH (a file holding only the key). "
        "To rehearse without a key, add --sandbox.",
    )


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str | None) -> str:
    """The API base URL without a trailing slash; plain http only to loopback."""
    import httpx

    url = (url or os.environ.get(BASE_URL_ENV) or PRODUCTION_BASE_URL).strip()
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
