"""Slack's Web API, and a slash command's `response_url`, on igor's kept-alive HTTP
session (igor_cli/http.py).

Why not slack_sdk's `WebClient` (or its `WebhookClient`): each of its calls opens a new
connection (urllib's `urlopen`: a TCP and, to slack.com, a TLS handshake) and it takes no
session to keep one open; its asyncio client does, on aiohttp, which igor's threads do not
run. A busy bot posts and edits a message a second: in the bot benchmark's deploy burst
(py-spy), its Web API calls were a third of `igor serve`'s CPU, half of that opening and
closing connections; a post's CPU on loopback is 240 us here, 510 there. What igor keeps of
slack_sdk: `SlackResponse.validate()` judges each answer (not ok, or not HTTP 200, raises
`SlackApiError`, as `WebClient` does), so what callers catch and read is unchanged.

On the wire as slack_sdk sends it (its `base_client.py`): every method a POST with the
token as a Bearer header; `chat.*` with a JSON body, the rest form-encoded (booleans as
1/0); arguments that are None left out. Slack's docs (docs.slack.dev, "Using the Slack Web
API"): JSON bodies are accepted by write methods, form-encoded by every method.

A post is never sent twice: one that fails once it may have left igor is reported
(`SlackUnreachable`, `sent`), and the caller decides; a connection that could not be made is
tried once more at once, as slack_sdk's default retry handler did.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from igor_cli import __version__

if TYPE_CHECKING:
    from slack_sdk.web import SlackResponse

    from igor_cli.http import Response, Session

USER_AGENT = f"igor/{__version__} (+https://github.com/cloud66-oss/igor)"
TIMEOUT = (15.0, 15.0)  # connect, read (slack_sdk's WebClient: 15 s for each, as igor set it)
TOTAL = 30.0
MAX_RATE_LIMIT_SECONDS = 120.0  # the longest Retry-After igor waits out


class SlackUnreachable(OSError):
    """A call that got no answer from Slack; `words` says why, `sent` whether it may have
    arrived."""

    def __init__(self, words: str, *, sent: bool) -> None:
        super().__init__(words)
        self.words = words
        self.sent = sent


class SlackWeb:
    """Web API calls with one token, on one kept-alive session shared by igor's threads."""

    def __init__(self, token: str, base_url: str, session: Session | None = None) -> None:
        from igor_cli.http import Session

        self.token = token
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.session = session or Session(pool_size=16)

    def __repr__(self) -> str:
        return f"<SlackWeb {self.base_url}>"  # never the token

    def call(self, method: str, *, token: str | None = None, **arguments: Any) -> SlackResponse:
        """One Web API method (`chat.postMessage`) with these arguments: its answer, or
        `SlackApiError` when Slack refused it, `SlackUnreachable` when none came."""
        from slack_sdk.web import SlackResponse

        given = {k: v for k, v in arguments.items() if v is not None}
        headers = {
            "Authorization": f"Bearer {token or self.token}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if method.startswith("chat."):
            headers["Content-Type"] = "application/json;charset=utf-8"
            body = json.dumps(given).encode("utf-8")
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode({k: _form_value(v) for k, v in given.items()}).encode("ascii")
        url = self.base_url + method
        answer = self._post(url, headers, body)
        try:
            data: Any = answer.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):  # a proxy's or a load balancer's page, not Slack's
            data = {"ok": False, "error": f"HTTP {answer.status}"}
        response = SlackResponse(
            client=None, http_verb="POST", api_url=url, req_args={}, data=data,
            headers=answer.headers, status_code=answer.status,
        )  # fmt: skip
        response.validate()  # type: ignore[no-untyped-call]  # raises SlackApiError
        return response

    def respond(self, url: str, payload: dict[str, Any]) -> int:
        """POST a reply to a `response_url` (JSON, no token: the URL is the credential); the
        HTTP status Slack answered (`SlackUnreachable` when none came)."""
        headers = {"Content-Type": "application/json;charset=utf-8", "User-Agent": USER_AGENT}
        given = {k: v for k, v in payload.items() if v is not None}
        return self._post(url, headers, json.dumps(given).encode("utf-8")).status

    def close(self) -> None:
        """Close the kept connections."""
        self.session.close()

    def _post(self, url: str, headers: dict[str, str], body: bytes) -> Response:
        from igor_cli.http import NetworkError

        for attempt in (1, 2):
            try:
                return self.session.request(
                    "POST", url, headers=headers, body=body, timeout=TIMEOUT, total=TOTAL,
                    keep_alive=True,
                )  # fmt: skip
            except NetworkError as error:
                if error.sent or attempt == 2:
                    raise SlackUnreachable(error.words, sent=error.sent) from error
        raise AssertionError("unreachable")  # pragma: no cover


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"  # as slack_sdk's convert_bool_to_0_or_1
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def retry_after(headers: Any) -> float:
    """Seconds a 429 asks to wait (its Retry-After; 1 s when absent), at most 2 minutes."""
    value = None
    if headers is not None:
        for name in ("Retry-After", "retry-after"):
            found = headers.get(name)
            if found:
                value = found[0] if isinstance(found, list) else found
                break
    try:
        return min(MAX_RATE_LIMIT_SECONDS, max(1.0, float(value))) if value else 1.0
    except ValueError:
        return 1.0
