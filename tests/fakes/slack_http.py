"""Slack's side of HTTP mode for tests: what Slack POSTs to an app's request URL, signed.

:class:`SlackHttp` sends the payloads :class:`~tests.fakes.slack.FakeSlack` builds (the same
ones it carries over Socket Mode), as Slack's documentation says they travel:

* Signing (docs.slack.dev, "Verifying requests from Slack"): ``X-Slack-Request-Timestamp``
  (epoch seconds) and ``X-Slack-Signature: v0=`` + the hex HMAC-SHA256, keyed with the app's
  signing secret, of ``v0:{timestamp}:{body}``.
* The Events API (docs.slack.dev, "Events API"): the outer event as JSON
  (``Content-Type: application/json``); setting the request URL sends ``url_verification``
  with a ``challenge`` to echo.
* Slash commands (docs.slack.dev, "Implementing slash commands"): their fields,
  ``application/x-www-form-urlencoded``.
* Interactivity (docs.slack.dev, "Handling user interaction"): one form field, ``payload``,
  holding the JSON.
* Retries of the Events API (docs.slack.dev, "Events API", error handling): a delivery that
  failed (no answer within 3 seconds: ``http_timeout``; an answer other than a 2xx:
  ``http_error``; no connection: ``connection_failed``) is sent again with
  ``X-Slack-Retry-Num`` (1 to 3) and ``X-Slack-Retry-Reason``: at once, after a minute,
  after five minutes (``retry_delays``, which tests shorten). On a timeout Slack retries
  without waiting for the late answer. A failed response with ``X-Slack-No-Retry: 1`` is not
  retried. Slash commands and clicks are not retried: the person sees an error instead.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from tests.fakes.slack import FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99edabcd00d5"  # the shape of docs.slack.dev's example
ACK_SECONDS = 3.0  # Slack's limit for an answer
RETRY_DELAYS = (0.0, 60.0, 300.0)  # Slack's three retries: at once, after 1 min, after 5 min


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's `X-Slack-Signature` for a body sent at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Attempt:
    """One POST: its answer (status 0: none came), when, how long it took, and which retry."""

    status: int
    body: bytes
    headers: dict[str, str]
    seconds: float
    retry: int = 0
    reason: str = ""  # why the next one was sent (Slack's retry reason), if it was
    at: float = 0.0  # time.monotonic() when it was sent


@dataclass
class Delivery:
    """One thing Slack sent, with every attempt it took."""

    kind: str  # "event", "slash", "click", "raw"
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        """Whether some attempt got a 2xx."""
        return any(200 <= a.status < 300 for a in self.attempts)

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]


class SlackHttp:
    """Sends signed Slack requests to `url` (an app's request URL), as Slack would."""

    def __init__(
        self,
        slack: FakeSlack,
        url: str,
        *,
        signing_secret: str = SIGNING_SECRET,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        timeout: float = ACK_SECONDS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.slack = slack
        self.url = url
        self.signing_secret = signing_secret
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.clock = clock or slack.clock  # the timestamp Slack signs with

    # -- what Slack sends ------------------------------------------------------------

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, url: str | None = None
    ) -> Delivery:
        """An Events API event, retried as Slack retries it."""
        body = json.dumps(self.slack.event_payload(event, event_id)).encode()
        return self.deliver(body, "application/json", kind="event", url=url)

    def event_body(self, event: dict[str, Any], event_id: str | None = None) -> bytes:
        """The body of an event's delivery (to send the same one again, elsewhere)."""
        return json.dumps(self.slack.event_payload(event, event_id)).encode()

    def slash_command(self, text: str, **fields: Any) -> Delivery:
        """A slash command (not retried)."""
        body = urlencode(self.slack.slash_payload(text, **fields)).encode()
        return self.deliver(body, "application/x-www-form-urlencoded", kind="slash", retries=0)

    def click(self, payload: dict[str, Any]) -> Delivery:
        """An interactive payload: a button clicked (not retried)."""
        form = {"payload": json.dumps(self.slack.interactive_payload(payload))}
        body = urlencode(form).encode()
        return self.deliver(body, "application/x-www-form-urlencoded", kind="click", retries=0)

    def url_verification(self, challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmd") -> Attempt:
        """What Slack sends when the request URL is set in the app's settings."""
        body = json.dumps(
            {"token": "verification", "challenge": challenge, "type": "url_verification"}
        ).encode()
        return self.post(body, "application/json")

    # -- how it travels --------------------------------------------------------------

    def deliver(
        self,
        body: bytes,
        content_type: str,
        *,
        kind: str = "raw",
        retries: int | None = None,
        url: str | None = None,
    ) -> Delivery:
        """POST `body` until it is acked, or Slack's retries are spent (`retries`: at most
        this many; default as many as `retry_delays`)."""
        delivery = Delivery(kind)
        most = len(self.retry_delays) if retries is None else retries
        retry, reason = 0, ""
        while True:
            headers = {}
            if retry:
                headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": reason}
            attempt = self.post(body, content_type, headers=headers, url=url)
            attempt.retry = retry
            delivery.attempts.append(attempt)
            if 200 <= attempt.status < 300 or retry >= most:
                return delivery
            if attempt.headers.get("x-slack-no-retry") == "1":
                return delivery
            reason = attempt.reason
            time.sleep(self.retry_delays[retry])
            retry += 1

    def post(
        self,
        body: bytes,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        timestamp: str | None = None,
        signature: str | None = None,
        url: str | None = None,
    ) -> Attempt:
        """One signed POST (or signed as told: `timestamp`, `signature`; "" leaves it out)."""
        stamp = str(int(self.clock())) if timestamp is None else timestamp
        sent = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if stamp:
            sent["X-Slack-Request-Timestamp"] = stamp
        signed = sign(self.signing_secret, stamp, body) if signature is None else signature
        if signed:
            sent["X-Slack-Signature"] = signed
        sent.update(headers or {})
        where = urlsplit(url or self.url)
        started = time.monotonic()
        connection = http.client.HTTPConnection(
            where.hostname or "127.0.0.1", where.port, timeout=self.timeout
        )
        try:
            connection.request("POST", where.path or "/", body=body, headers=sent)
            answer = connection.getresponse()
            payload = answer.read()
        except TimeoutError:
            return Attempt(0, b"", {}, time.monotonic() - started, reason="http_timeout",
                           at=started)  # fmt: skip
        except OSError:
            return Attempt(0, b"", {}, time.monotonic() - started, reason="connection_failed",
                           at=started)  # fmt: skip
        finally:
            connection.close()
        got = {name.lower(): value for name, value in answer.getheaders()}
        reason = "" if 200 <= answer.status < 300 else "http_error"
        return Attempt(answer.status, payload, got, time.monotonic() - started, reason=reason,
                       at=started)  # fmt: skip
