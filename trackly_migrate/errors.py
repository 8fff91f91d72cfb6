"""Exit codes and the error tree.

Every failure the user can cause or meet is one of these; the CLI is the single place that
turns them into a message (``cli.py``'s error boundary), and ``exit_code_for`` the single
place that turns a run's outcome, error or signal into an exit code.
Each class also carries ``machine_code``, its stable name in the ``--json`` output
(``error_json``; README "JSON output for scripts").

    TracklyMigrateError                  exit code carried by each class
    ├── UsageError                       2: bad option, bad key format, refused URL; nothing sent
    ├── InputError                       2: unreadable or malformed input; nothing sent
    ├── RejectLimitReached               1: too many records rejected (--max-rejects); stopped
    ├── ClearDeclined                    1: the clear was not confirmed at the prompt
    ├── OutputError                      3: a report or checkpoint could not be written mid-run
    ├── InputDamagedError                3: the input broke off mid-run (cut-short or corrupt gzip)
    └── ApiError                         3: the run cannot go on
        ├── CertificateError             the server's TLS certificate is not trusted
        ├── ResponseShapeError           a 2xx answer whose body breaks the contract
        ├── ApiConnectionError           server unreachable, connection dropped, timeout
        │   ├── NoAnswerError            sent, but no answer within --timeout
        │   └── OutcomeUnknownError      the request may have been applied (clear after timeout)
        └── ApiStatusError               a non-2xx answer; ``status``, ``code``, ``message``
            ├── AuthenticationError      401: wrong or revoked key
            ├── RateLimitedError         429 (carries ``retry_after``)
            ├── ServerError              5xx
            └── RequestRejectedError     other 4xx: the request itself is wrong
"""

from __future__ import annotations

import signal
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; documented in the README and pinned by tests."""

    OK = 0  # every record imported or already there
    REJECTED = 1  # finished, but some records were rejected (or the user declined)
    USAGE = 2  # usage or input error: nothing was sent
    ABORTED = 3  # auth failure, server unreachable, retries exhausted, unaccounted records
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # SIGTERM (128 + SIGTERM)


class TracklyMigrateError(Exception):
    """Base of every error the tool reports to the user without a traceback."""

    exit_code: ExitCode = ExitCode.ABORTED
    # The stable machine name of the error in ``--json`` output (README "Error codes"):
    # scripts branch on it, so a code, once published, is never renamed.
    machine_code: str = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self) -> tuple[object, ...]:
        # Errors cross from the sender process by pickle; the keyword-only constructors
        # would not survive the default reduction.
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(
    cls: type[TracklyMigrateError], message: str, state: dict[str, object]
) -> TracklyMigrateError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class UsageError(TracklyMigrateError):
    """The command line or configuration is wrong; nothing was sent."""

    machine_code = "usage"
    exit_code = ExitCode.USAGE


class InputError(TracklyMigrateError):
    """The input cannot be read as a whole (missing file, missing column, bad header)."""

    machine_code = "input"
    exit_code = ExitCode.USAGE


class RejectLimitReached(TracklyMigrateError):
    """Too many records were rejected: the input (or an option) is clearly wrong."""

    machine_code = "reject_limit"
    exit_code = ExitCode.REJECTED


class ClearDeclined(TracklyMigrateError):
    """The user did not type ``clear`` at the prompt: nothing was deleted."""

    machine_code = "declined"
    exit_code = ExitCode.REJECTED


class OutputError(TracklyMigrateError):
    """A report, log or checkpoint could not be written once the run had started (disk full)."""

    machine_code = "output"
    exit_code = ExitCode.ABORTED


class InputDamagedError(TracklyMigrateError):
    """The input could not be read past some line once the run had started.

    Everything read before the damage is settled and accounted for first, so the run ends like
    any other abort: summary, checkpoint kept, exit 3.
    """

    machine_code = "input_damaged"
    exit_code = ExitCode.ABORTED


class ApiError(TracklyMigrateError):
    """The API could not be used to finish the run.

    Where an operation gives up (the client's retry loop, the importer's ``deliver``), it
    records on the error what it spent and whether it may have taken effect, so that the
    run's summary counts every request tried and its checkpoint knows what may be stored.
    These are plain attributes, so they cross the sender process with the error (pickle).
    """

    machine_code = "api_error"
    exit_code = ExitCode.ABORTED
    requests: int = 0  # requests tried by the operation that gave up, the last one included
    retries: int = 0  # of those, the resends
    # False only when every attempt was refused before any work (401, 400, 413, 429, never
    # connected): nothing of the request can be stored.
    may_have_applied: bool = True


class CertificateError(ApiError):
    """The server's TLS certificate failed verification: permanent, so never retried."""

    machine_code = "certificate"


class ResponseShapeError(ApiError):
    """A 2xx answer whose body is not what the contract describes."""

    machine_code = "response_shape"


class ApiConnectionError(ApiError):
    """No usable answer came back: refused, dropped, or timed out."""

    machine_code = "connection"

    def __init__(self, message: str, *, hint: str | None = None, request_sent: bool = True) -> None:
        super().__init__(message, hint=hint)
        # False only when the request surely never reached the server (connection refused,
        # name not resolved): the one case where even a non-idempotent request may be resent.
        self.request_sent = request_sent


class NoAnswerError(ApiConnectionError):
    """The request was sent and no answer came within the timeout: it may have been applied."""

    machine_code = "no_answer"


class OutcomeUnknownError(ApiConnectionError):
    """A request that must not be resent blindly may or may not have been applied."""

    machine_code = "outcome_unknown"


class ApiStatusError(ApiError):
    """The server answered with a non-2xx status."""

    machine_code = "http_status"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class AuthenticationError(ApiStatusError):
    """401: the key is wrong, revoked, or missing."""

    machine_code = "unauthorized"


class RateLimitedError(ApiStatusError):
    """429: too many requests; ``retry_after`` says how long to wait, when the server says."""

    machine_code = "rate_limited"


class ServerError(ApiStatusError):
    """5xx: the server or a proxy in front of it failed."""

    machine_code = "server_error"


class RequestRejectedError(ApiStatusError):
    """Another 4xx: the request itself was refused (missing_records, confirm_required, ...)."""

    machine_code = "request_rejected"


def status_error_class(status: int) -> type[ApiStatusError]:
    """The error class for an HTTP status (one factory, as openai-python does)."""
    if status == 401:
        return AuthenticationError
    if status == 429:
        return RateLimitedError
    if status >= 500:
        return ServerError
    return RequestRejectedError


def exit_code_for(
    error: TracklyMigrateError | None,
    *,
    interrupted_by: int | None = None,
    unaccounted: int = 0,
    rejected: int = 0,
) -> ExitCode:
    """The exit code of a command's outcome: the one mapping, for imports and every other path.

    An error decides first (it stopped the run, whatever was counted before it); then a stop
    signal (``interrupted_by``, the signal's number: SIGTERM gives 143, any other 130); then
    records not accounted for (the server's counts did not add up: 3, never hidden behind
    a 1); then rejected records (1).
    """
    if error is not None:
        return error.exit_code
    if interrupted_by is not None:
        return ExitCode.TERMINATED if interrupted_by == signal.SIGTERM else ExitCode.INTERRUPTED
    if unaccounted:
        return ExitCode.ABORTED
    if rejected:
        return ExitCode.REJECTED
    return ExitCode.OK


def error_json(error: TracklyMigrateError) -> dict[str, object]:
    """The ``error`` object of the ``--json`` output (docs/output.schema.json)."""
    payload: dict[str, object] = {
        "code": error.machine_code,
        "message": error.message,
        "hint": error.hint,
    }
    if isinstance(error, ApiStatusError):
        payload["http_status"] = error.status
        payload["server_code"] = error.code
    return payload
