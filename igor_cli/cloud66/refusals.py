"""What Cloud 66's refusals and failed connections mean: typed errors, in words.

An error answer becomes one of the `Cloud66Error` family, carrying the API's own
words (never a token); a failed connection is named in words ("timed out",
"connection refused"), never by a Python class name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from igor_cli.cloud66.paging import integer
from igor_cli.errors import (
    ApiError,
    Cloud66Error,
    Conflict,
    Forbidden,
    NotFound,
    OutcomeUnknown,
    Throttled,
    TrialExpired,
    Unauthorized,
    Unreachable,
)

if TYPE_CHECKING:
    from igor_cli.http import Response

HOURLY_LIMIT = 3_000  # requests per user per hour (SPEC section 4)
# igor marks spans of Slack text with private-use characters; text from the API
# must never carry them in.
_PRIVATE_USE = "[\ue000-\uf8ff]"
_SCOPE_USES = {
    "public": "needed to read stacks and deployments",
    "redeploy": "needed to deploy and cancel",
    "users": "needed to read the account's name",
}
SCOPES_HINT = (
    "Make a token in Cloud 66 under Account -> Authorized Applications -> Personal Access "
    "Token, with the scopes public (to list), redeploy (to deploy and cancel) and, "
    "optionally, users (to show the account's name)."
)


def clean_text(value: Any) -> str:
    """A string read from the API, without Unicode private-use characters (None -> "")."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    # ASCII (nearly every name, environment and word of the API) holds none: a flag
    # CPython keeps, so 50,000 stacks' fields are not each scanned by a pattern, and
    # the pattern is compiled (0.4 ms) only the day one is not ASCII.
    return text if text.isascii() else re.sub(_PRIVATE_USE, "", text)


def aware(moment: datetime) -> datetime:
    """A datetime with a timezone (UTC when it had none)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def header_int(response: Response, name: str) -> int | None:
    """An integer header (`X-RateLimit-Remaining`), None when absent or not a number."""
    return integer(response.header(name))


def api_words(body: Mapping[str, Any], token: str) -> str:
    """What the error body says: `details`, else `error_description`, else `error`
    (the Go client's order), cleaned, without the token, at most 300 characters."""
    for key in ("details", "error_description", "error"):
        value = body.get(key)
        if isinstance(value, list):
            value = "; ".join(clean_text(v) for v in value if v)
        text = " ".join(clean_text(value).split())
        if text:
            if token and len(token) >= 4:
                text = text.replace(token, "[token]")
            return text if len(text) <= 300 else text[:299] + "…"
    return ""


def error_for(
    response: Response,
    method: str,
    path: str,
    token: str,
    now: Callable[[], datetime],
) -> Cloud66Error:
    """The typed error for an HTTP error answer; carries the API's words, never a token."""
    status = response.status
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, Mapping):
        body = {}
    code = clean_text(body.get("error")).strip().casefold()
    if status == 503 and says_throttled(response):
        code = "throttled"
    words = api_words(body, token)
    said = f": {words.rstrip('.')}" if words else ""
    if status == 401:
        return Unauthorized(
            f"Cloud 66 rejected the token{said}.",
            "The token may be wrong, expired or revoked.",
            status,
        )
    if status == 402:
        return TrialExpired(
            f"The Cloud 66 account's trial has expired{said}.",
            "Choose a plan for the account in the Cloud 66 dashboard; "
            "igor works again once the account is active.",
            status,
        )
    if status == 403:
        scope = scope_for(method, path)
        return Forbidden(
            f"The Cloud 66 token lacks the {scope} scope, {_SCOPE_USES[scope]}{said}.",
            SCOPES_HINT,
            status,
            scope=scope,
        )
    if status == 404:
        return NotFound(f"Cloud 66 could not find it{said}.", status=status)
    if status == 409:
        return Conflict(f"Cloud 66 refused: {words.rstrip('.') or 'conflict'}.", status=status)
    if status == 503 and code == "throttled":
        # Unconfirmed: that the hourly window resets on the clock hour (SPEC: "until
        # the next hourly interval").
        current = aware(now()).astimezone(UTC)
        reset_at = current.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        at = reset_at.strftime("%H:%M UTC")
        return Throttled(
            f"Cloud 66 is throttling this token: its limit of {HOURLY_LIMIT:,} requests "
            f"an hour resets at {at}.",
            f"igor will not call Cloud 66 with this token again before {at}.",
            status,
            reset_at=reset_at,
        )
    if status == 429:
        return Throttled(
            f"Cloud 66 is throttling requests (HTTP 429){said}.",
            "Wait a minute and try again.",
            status,
        )
    if status >= 500:
        return ApiError(f"Cloud 66 answered HTTP {status}{said}.", "Try again later.", status)
    return ApiError(f"Cloud 66 refused the request (HTTP {status}){said}.", status=status)


def says_throttled(response: Response) -> bool:
    """A 503 is the hourly throttle when its body says so in any form (JSON or plain text:
    the docs name the status `503: throttled` but show no body) or no request is left."""
    text = response.text[:2000].casefold() if response.content else ""
    return "throttled" in text or header_int(response, "X-RateLimit-Remaining") == 0


def scope_for(method: str, path: str) -> str:
    """The token scope a call needs (SPEC section 4)."""
    if path == "/accounts" or path.startswith("/accounts/"):
        return "users"
    if method in ("POST", "DELETE") and "/deployments" in path:
        return "redeploy"
    return "public"


def unreachable(origin: str, reason: str) -> Unreachable:
    return Unreachable(
        f"Cloud 66 could not be reached at {origin} ({reason}).",
        "Check your network, or IGOR_API_URL if you set it.",
    )


def unknown(what: str, reason: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"The {what} request was sent but no answer came back: it may or may not have "
        f"happened ({reason}).",
        f"Check with `igor list -s <stack>` or the Cloud 66 dashboard whether the {what} "
        "went through.",
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and everything it wraps (urllib's URLError wraps socket errors)."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(found) < 32:
        current = todo.pop(0)
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        todo += [current.__cause__, current.__context__]
        for inner in (*current.args, getattr(current, "reason", None)):
            if isinstance(inner, BaseException):
                todo.append(inner)
            reason = getattr(inner, "reason", None)
            if isinstance(reason, BaseException):
                todo.append(reason)
    return found


def network_reason(exc: BaseException) -> str:
    """Why a request failed, in words (never a Python class name): igor's own client's
    `NetworkError` says it; slack_sdk's urllib errors are read here."""
    import socket
    import ssl

    from igor_cli.http import NetworkError

    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(e, kinds) for e in chain)

    said = next((e.words for e in chain if isinstance(e, NetworkError)), None)
    if said is not None:
        return said
    if has(TimeoutError) or names & {"ReadTimeoutError", "ConnectTimeoutError"}:
        return "timed out"
    if has(socket.gaierror) or "NameResolutionError" in names:
        return "name not resolved"
    if has(ConnectionRefusedError):
        return "connection refused"
    if has(ssl.SSLError) or "SSLError" in names:
        return "TLS error"
    if "ProxyError" in names:
        return "proxy error"
    if has(ConnectionResetError):
        return "connection reset"
    if names & {"RemoteDisconnected", "IncompleteRead", "ProtocolError", "ChunkedEncodingError"}:
        return "connection closed before a full answer"
    if has(ConnectionError):
        return "connection failed"
    return "network error"
