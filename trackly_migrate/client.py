"""``TracklyClient``: the Trackly API over one pooled httpx client.

It owns the auth header, timeouts, and the retry policy; it turns every answer into a typed
result or an error from ``errors.py`` (the parsing is in ``responses.py``). It never decides
what to import.

Every endpoint goes through one retry loop (``TracklyClient._send``) and one rule of what may
be sent again (``may_resend``): imports and unsubscribes are idempotent, so any retryable
failure is resent; a clear is not, so it is resent only when it surely had no effect, and an
answer lost after sending becomes ``OutcomeUnknownError``, never a second delete.

Retries: connection failures, timeouts, 429 and 500/502/503/504 are retried with exponential
backoff and full jitter, bounded by attempts and by time. httpx's own ``retries=`` covers only
failed connects, which is why the loop is ours. A ``Retry-After`` pauses every request of the
client, not just the one that met it: the server asked the whole client to slow down.

Two failures are not retried like the others. A TLS certificate that fails verification is
permanent: the run stops at once and says how to trust a private CA. A request that was sent
and got no answer within the timeout costs a whole timeout per try, and a server that is hung
stays hung: it gets ``max_no_answer`` tries (two: about two minutes at the default 60 s), not
eight (eight minutes).
"""

from __future__ import annotations

import contextlib
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from trackly_migrate import __version__
from trackly_migrate.config import CA_BUNDLE_ENV, ApiSettings, tls_verify
from trackly_migrate.errors import (
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    CertificateError,
    NoAnswerError,
    OutcomeUnknownError,
    ServerError,
)
from trackly_migrate.responses import (
    Delivery,
    UnsubscribeAnswer,
    json_object,
    parse_bulk_result,
    parse_unsubscribed,
    status_error,
)

BULK_PATHS = {"sends": "/v2/history/sends", "clicks": "/v2/history/clicks"}
CLEAR_PATH = "/v2/history/clear"
CONTACTS_PATH = "/v2/contacts"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    max_elapsed: float = 600.0  # seconds from the first attempt; no new attempt after it
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0  # a server asking for longer is not waited for blindly
    # Tries of one request that were sent and got no answer within the timeout; after this
    # many it is given up, whatever max_attempts allows (see the module docstring).
    max_no_answer: int = 2


def should_retry(error: ApiError) -> bool:
    """Whether a failure is of a kind worth trying again (a TLS certificate is not)."""
    if isinstance(error, ApiConnectionError):
        return True
    return isinstance(error, ApiStatusError) and error.status in RETRY_STATUSES


def may_have_taken_effect(error: ApiError) -> bool:
    """Whether the server may have done the work of a failed attempt.

    No when the request surely never reached it (connection refused, name not resolved, an
    untrusted certificate) or was refused before any work: every 4xx (key, size, rate and body
    are checked before anything is stored), and a 503 with ``Retry-After`` ("not now").
    A dropped connection, a timeout or any other 5xx may come after the work was done.
    """
    if isinstance(error, ApiConnectionError):
        return error.request_sent
    if isinstance(error, ServerError):
        return not (error.status == 503 and error.retry_after is not None)
    return False


def may_resend(error: ApiError, *, idempotent: bool) -> bool:
    """The one "may resend" rule (the attempt budget aside): any retryable failure of an
    idempotent request (imports, unsubscribe); for one that is not (clear), only a failure
    that surely had no effect, since resending a destructive request blindly is how data is
    lost twice."""
    return should_retry(error) and (idempotent or not may_have_taken_effect(error))


def retry_delay(
    policy: RetryPolicy, attempt: int, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

    Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): a uniform draw up to
    the exponential bound, so that many clients do not retry in lockstep. A ``Retry-After``
    is honoured as a floor, capped by the policy.
    """
    bound = min(policy.backoff_cap, policy.backoff_base * (2 ** (attempt - 1)))
    delay = rng.uniform(0, bound)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.retry_after_cap))
    return delay


# Requests in flight before the first answer, like TCP's initial window (RFC 6928 raised
# that from about 4 segments to 10). Each round trip of slow start costs a whole latency:
# from 4, the default ceiling of 16 took two of them; from 8, one.
SLOW_START_WINDOW = 8


class AdaptiveLimit:
    """How many requests may be in flight: grows while the server keeps up, halves on 429/503.

    Like TCP's congestion window: it starts small, doubles every round trip (one step per
    success) until the first sign of overload, then grows by one per round trip; a 429 or a
    503 halves it. ``ceiling`` (``--concurrency``) is never exceeded.

    ``on_change(in_flight, current)``, when set, hears of every change, in order (it is called
    under the lock): the sender process passes them on for the progress line.
    """

    def __init__(self, ceiling: int, start: int = SLOW_START_WINDOW) -> None:
        self.ceiling = max(1, ceiling)
        self.current = min(self.ceiling, max(1, start))
        self.in_flight = 0
        self.on_change: Callable[[int, int], None] | None = None
        self._slow_start = True
        self._successes = 0
        self._condition = threading.Condition()

    def acquire(self) -> None:
        with self._condition:
            while self.in_flight >= self.current:
                self._condition.wait()
            self.in_flight += 1
            self._changed()

    def release(self, *, overloaded: bool) -> None:
        with self._condition:
            self.in_flight -= 1
            if overloaded:
                self.current = max(1, self.current // 2)
                self._slow_start = False
                self._successes = 0
            else:
                self._successes += 1
                if self._slow_start or self._successes >= self.current:
                    self.current = min(self.ceiling, self.current + 1)
                    self._successes = 0
            self._changed()
            self._condition.notify_all()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.in_flight, self.current)


def _is_overload(error: ApiError) -> bool:
    return isinstance(error, ApiStatusError) and error.status in (429, 503)


class PauseGate:
    """A moment before which no request of this client starts (set by Retry-After)."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def pause_for(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self) -> None:
        while True:
            with self._lock:
                remaining = self._until - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.5))


RetryListener = Callable[[ApiError, float], None]


@dataclass(frozen=True, slots=True)
class Operation:
    """One endpoint as the retry loop sees it: whether a resend is harmless, and what the user
    may do when a request that may have been applied is given up on."""

    name: str
    method: str
    path: str
    idempotent: bool
    advice: str


_IMPORT_ADVICE = (
    "The batch may have been stored: --resume sends it again safely (imports are idempotent "
    "by id, so records stored already come back as duplicates)."
)
IMPORTS = {
    kind: Operation("import", "POST", path, idempotent=True, advice=_IMPORT_ADVICE)
    for kind, path in BULK_PATHS.items()
}
UNSUBSCRIBE = Operation(
    "unsubscribe",
    "DELETE",
    CONTACTS_PATH,
    idempotent=True,
    advice="Running the same command again is safe: unsubscribing a contact twice changes nothing.",
)
CLEAR = Operation(
    "clear",
    "DELETE",
    CLEAR_PATH,
    idempotent=False,
    advice="Check in Trackly (Reports) whether the imported history in scope is still there. "
    "Running the same clear command again is safe only once you know what happened.",
)


@dataclass(frozen=True, slots=True)
class _Answered:
    response: httpx.Response
    attempts: int
    # An earlier attempt failed in a way that may have been applied.
    after_ambiguous_failure: bool


class TracklyClient:
    """The four endpoints of the contract, with retries where they are safe."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        timeout: float = 60.0,
        max_connections: int = 8,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self._rng = rng or random.Random()
        self._gate = PauseGate()
        self.limit = AdaptiveLimit(max_connections)
        self.on_retry: RetryListener | None = None
        self._http = httpx.Client(
            base_url=settings.base_url,
            headers={
                "X-Api-Key": settings.api_key,
                "User-Agent": f"trackly-migrate/{__version__}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
            verify=tls_verify(settings),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TracklyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- endpoints -----------------------------------------------------------------------

    def import_batch(self, kind: str, body: bytes, count: int) -> Delivery:
        """POST one encoded batch (``{"records": [...]}``, ``count`` records), with retries."""
        answered = self._send(IMPORTS[kind], body)
        with _spent_on(answered):
            result = parse_bulk_result(json_object(answered.response), count)
        return Delivery(result, answered.attempts, answered.after_ambiguous_failure)

    def clear(self, body: dict[str, Any]) -> dict[str, Any]:
        """DELETE /v2/history/clear: the ``cleared`` counts. Resent only when the request
        surely had no effect; otherwise given up on as ``OutcomeUnknownError``."""
        answered = self._send(CLEAR, orjson.dumps(body))
        with _spent_on(answered):
            cleared = json_object(answered.response).get("cleared")
            if not isinstance(cleared, dict):
                reason = f"the answer has no 'cleared' counts: {answered.response.text[:200]}"
                raise _outcome_unknown(CLEAR, reason)
        return cleared

    def unsubscribe(self, phone_number: str, list_number: str) -> UnsubscribeAnswer:
        """DELETE /v2/contacts, retried (it is idempotent)."""
        body = orjson.dumps({"phone_number": phone_number, "list_number": list_number})
        answered = self._send(UNSUBSCRIBE, body)
        with _spent_on(answered):
            unsubscribed = parse_unsubscribed(answered.response)
        return UnsubscribeAnswer(unsubscribed, answered.attempts)

    # -- plumbing ------------------------------------------------------------------------

    def _send(self, operation: Operation, body: bytes) -> _Answered:
        """The one retry loop: send until answered or given up (``may_resend`` and the
        policy's budget); the error given up on says what was spent."""
        attempt = no_answer = 0
        ambiguous = False
        started = time.monotonic()
        while True:
            attempt += 1
            self._gate.wait()
            self.limit.acquire()
            try:
                response = self._request(operation.method, operation.path, body)
            except ApiError as error:
                self.limit.release(overloaded=_is_overload(error))
                ambiguous = ambiguous or may_have_taken_effect(error)
                no_answer += isinstance(error, NoAnswerError)
                if (
                    not may_resend(error, idempotent=operation.idempotent)
                    or not self._may_retry(attempt, started)
                    or no_answer >= self.policy.max_no_answer
                ):
                    if not operation.idempotent and may_have_taken_effect(error):
                        error = _outcome_unknown(operation, error.message)
                    elif isinstance(error, NoAnswerError):
                        error = self._no_answer(no_answer, operation.advice)
                    error.requests, error.retries = attempt, attempt - 1
                    error.may_have_applied = ambiguous
                    raise error from None
                retry_after = getattr(error, "retry_after", None)
                if retry_after is not None:
                    self._gate.pause_for(min(retry_after, self.policy.retry_after_cap))
                delay = retry_delay(self.policy, attempt, retry_after, self._rng)
                self._notify_retry(error, delay)
                time.sleep(delay)
            else:
                self.limit.release(overloaded=False)
                return _Answered(response, attempt, ambiguous)

    def _no_answer(self, tries: int, resend_advice: str) -> NoAnswerError:
        tried = "1 attempt" if tries == 1 else f"{tries} attempts"
        return NoAnswerError(
            f"No answer from {self.settings.host} within {self.timeout:g} s ({tried}): the "
            "server took the request but did not answer (it may be hung or overloaded, or a "
            "proxy may be holding the request). Gave up on it.",
            hint=f"{resend_advice} For a server that is merely slow, raise --timeout.",
        )

    def _may_retry(self, attempt: int, started: float) -> bool:
        return (
            attempt < self.policy.max_attempts
            and time.monotonic() - started < self.policy.max_elapsed
        )

    def _notify_retry(self, error: ApiError, delay: float) -> None:
        if self.on_retry is not None:
            self.on_retry(error, delay)

    def _request(self, method: str, path: str, body: bytes) -> httpx.Response:
        try:
            response = self._http.request(method, path, content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            untrusted = _certificate_failure(exc)
            if untrusted is not None:
                raise self._untrusted(untrusted) from None
            raise ApiConnectionError(
                f"Cannot connect to {self.settings.host}: {_reason(exc)}.",
                hint="Check the network and --base-url / TRACKLY_BASE_URL.",
                request_sent=False,
            ) from None
        except httpx.TimeoutException:  # read or write: the request was (partly) sent
            raise NoAnswerError(
                f"No answer from {self.settings.host} within {self.timeout:g} s "
                "(the request was sent)."
            ) from None
        except httpx.TransportError as exc:
            raise ApiConnectionError(
                f"The connection to {self.settings.host} dropped: {_reason(exc)}."
            ) from None
        if response.status_code >= 300:
            raise status_error(response)
        return response

    def _untrusted(self, failure: ssl.SSLCertVerificationError) -> CertificateError:
        host = self.settings.host
        reason = failure.verify_message or failure.reason or "verification failed"
        return CertificateError(
            f"The TLS certificate of {host} is not trusted ({reason}), so nothing was sent. "
            "A certificate does not fix itself, so the request was not retried.",
            hint=f"If {host} uses a certificate from a private or company CA (or a proxy that "
            f"inspects TLS), trust that CA: --ca-bundle PATH or {CA_BUNDLE_ENV}=PATH, a PEM "
            "file of the CA certificate(s) (SSL_CERT_FILE=PATH works too). Otherwise check "
            "--base-url: this may not be the server you meant.",
        )


def _certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error under an httpx connect error, if that is its cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


@contextlib.contextmanager
def _spent_on(answered: _Answered) -> Iterator[None]:
    """An answer that cannot be used still cost its attempts, and may have been applied."""
    try:
        yield
    except ApiError as error:
        error.requests, error.retries = answered.attempts, answered.attempts - 1
        raise


def _outcome_unknown(operation: Operation, reason: str) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"The {operation.name} request was sent but its outcome is unknown ({reason}). It was "
        "NOT sent again: resending a destructive request blindly is how data is lost twice.",
        hint=operation.advice,
    )
