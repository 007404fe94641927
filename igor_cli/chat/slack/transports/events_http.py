"""Slack over HTTP (`igor serve --http`): the Events API, interactivity and slash commands.

Slack POSTs each of them to one request URL, `/slack/events` (as Bolt does), and
wants a 2xx within 3 seconds, or it sends the request again: at once, after a
minute, after five (`X-Slack-Retry-Num`, `X-Slack-Retry-Reason`). Each request
is checked with slack_sdk's `SignatureVerifier` (the `v0=` HMAC-SHA256 of
`v0:{timestamp}:{body}` with the app's signing secret, the timestamp within five
minutes) before anything in it is read: an unsigned, wrongly signed or stale
request is answered 401, a body over BODY_LIMIT 413, and nothing is done. A
signed one is handed to the bot's intake and answered at once: the ack never
waits for Cloud 66 or Slack (beyond their queue the bot's bounded workers
answer "busy" in the thread). The same message delivered twice, a retry or one
delivery to each of two replicas, runs once: the bot claims each post in the
state store (SQLite for one process, Redis for replicas), as over Socket Mode.

`GET /healthz` answers 200 while the bot can work and 503 with the reason
otherwise (stopping, the state store down), for a load balancer's checks.

The server is waitress (pure Python, no dependencies, kept by the Pylons
project): its event loop reads each request whole before a thread of its pool
runs the application, so a slow or idle client costs no thread, and a body
over the limit is refused before it is buffered. igor binds the listening
socket itself (a taken port is said at start; port 0 picks a free one) and
stops in order: the listening socket closes first (a load balancer moves on to
another replica at once), the bot finishes what it took, then every connection
closes, on waitress's own loop thread. `EventsEndpoint` is a plain WSGI
application: `igor_cli.wsgi:app()` runs it under a server of the user's own.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from igor_cli.errors import IgorError, UsageProblem

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from igor_cli.config import Environment

log = logging.getLogger("igor.http")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_LISTEN = f"{DEFAULT_HOST}:{DEFAULT_PORT}"
# Slack's largest payloads are clicks, which carry the clicked message (at most 50
# blocks of 3,000 characters): far under this.
BODY_LIMIT = 1024 * 1024
STALE_SECONDS = 300  # SignatureVerifier's own bound (five minutes), named in the log
HTTP_THREADS = 4  # waitress's pool: a request holds a thread well under a millisecond
SECRET_RECHECK_SECONDS = 10.0  # a failed signature reads the secret again, this seldom
REFUSALS_SAID_EVERY = 60.0  # refused requests: the first said at once, then a count
_RETRY_REASON = re.compile(r"[a-z_]{1,40}")  # Slack's reasons: http_timeout, http_error...

Response = tuple[str, list[tuple[str, str]], bytes]
Take = Callable[[str, dict[str, Any]], bool]


class CannotListen(IgorError):
    """The address of `--http` cannot be listened on (taken, not this machine's, a port
    that needs privileges)."""


@dataclass(frozen=True)
class Address:
    """Where `igor serve --http` listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def listen_address(text: str) -> Address:
    """`[HOST:]PORT` (`3000`, `0.0.0.0:3000`, `[::]:3000`) as an Address; UsageProblem when
    it is not one. A port alone listens on 127.0.0.1 (a proxy on this machine); nothing at
    all on DEFAULT_LISTEN."""
    text = text.strip() or DEFAULT_LISTEN
    if text.isascii() and text.isdigit():
        host, port = DEFAULT_HOST, text
    elif text.startswith("["):  # an IPv6 address, bracketed as in a URL: [::]:3000
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    digits = port.isascii() and port.isdigit()
    if not host or not digits or (":" in host and not text.startswith("[")):
        raise UsageProblem(
            f"--http takes [HOST:]PORT, e.g. 3000, 0.0.0.0:3000 or [::]:3000; not {text!r}.",
            f"Without a value, igor serve --http listens on {DEFAULT_LISTEN}.",
        )
    number = int(port)
    if number > 65535:
        raise UsageProblem(f"--http: {number} is not a port (0 to 65535).")
    return Address(host, number)


def bind(address: Address) -> socket.socket:
    """A socket bound to `address`, not yet listening; CannotListen saying why not."""
    try:
        found = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        raise CannotListen(
            f"igor cannot listen on {address}: {error.strerror or 'unknown host'}.",
            "Give an address of this machine with --http HOST:PORT (0.0.0.0: all of them).",
        ) from None
    family, kind, proto, _, where = found[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
    except OSError as error:
        sock.close()
        hint = "Stop what listens there, or choose another port with --http HOST:PORT."
        if address.port < 1024:
            hint = "Ports below 1024 need privileges: choose a higher one behind your proxy."
        raise CannotListen(f"igor cannot listen on {address}: {error.strerror}.", hint) from None
    return sock


class SigningSecret:
    """The app's signing secret (SLACK_SIGNING_SECRET, or the keyring's `slack-signing`).

    Read at start; read again when a signature fails (at most every
    SECRET_RECHECK_SECONDS), so that a secret regenerated at Slack and stored with
    `igor register --slack --http` takes effect without a restart.
    """

    def __init__(self, env: Environment) -> None:
        from igor_cli.credentials import TokenKind, require_token

        self.env = env
        self.value = require_token(TokenKind.SLACK_SIGNING, env)
        self._read_at = env.monotonic()
        self._lock = threading.Lock()

    def reread(self) -> bool:
        """Read the secret again if it is time; whether it changed."""
        from igor_cli.credentials import TokenKind, require_token

        with self._lock:
            now = self.env.monotonic()
            if now - self._read_at < SECRET_RECHECK_SECONDS:
                return False
            self._read_at = now
            try:
                value = require_token(TokenKind.SLACK_SIGNING, self.env)
            except IgorError:
                return False  # gone or unreadable now: the one read before stays
            changed, self.value = value != self.value, value
            return changed


class Refusals:
    """Requests refused for their signature or size: the first of each reason is said at once,
    then how many more, at most once a minute (forged requests do not flood the log)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._unsaid: dict[str, int] = {}
        self._said_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def refused(self, reason: str, client: str) -> None:
        """One more request refused for `reason`."""
        now = time.monotonic()
        with self._lock:
            self.counts[reason] = self.counts.get(reason, 0) + 1
            self._unsaid[reason] = self._unsaid.get(reason, 0) + 1
            said_at = self._said_at.get(reason)
            if said_at is not None and now - said_at < REFUSALS_SAID_EVERY:
                return
            count, self._unsaid[reason], self._said_at[reason] = self._unsaid[reason], 0, now
        if count == 1:
            log.warning("refused a request from %s: %s; nothing was done", client, reason)
        else:
            log.warning("refused %d requests (%s) since the last said; nothing was done",
                        count, reason)  # fmt: skip


class EventsEndpoint:
    """The WSGI application: Slack's signed requests at `/slack/events`, and `/healthz`.

    `take(kind, payload)` gets each signed request as Socket Mode names it
    (`events_api`, `slash_commands`, `interactive`) and says whether it was taken;
    `health()` says why the bot cannot work ("" when it can); `clock()` is the time
    in epoch seconds a request's timestamp is checked against.
    """

    path = EVENTS_PATH

    def __init__(
        self,
        secret: SigningSecret,
        take: Take,
        *,
        health: Callable[[], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.take = take
        self.health = health
        self.clock = clock
        self.taking = True
        self.refusals = Refusals()
        self._now = _clock(clock)

    def stop_taking(self) -> None:
        """Take no more requests: each is answered 503 (Slack sends it again, elsewhere)."""
        self.taking = False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, headers, body = self.answer(environ)
        except Exception:  # a bug must not take the server down; Slack sends it again
            log.warning("could not answer a request", exc_info=True)
            status, headers, body = _json("500 Internal Server Error", {"ok": False})
        start_response(status, headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

    def answer(self, environ: WSGIEnvironment) -> Response:
        """The response to one request (see the module)."""
        path, method = environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "")
        if path == HEALTH_PATH:
            if method not in ("GET", "HEAD"):
                return _not_allowed("GET, HEAD")
            why = "" if self.taking else "igor is stopping"
            why = why or self.health()
            if why:
                return _json("503 Service Unavailable", {"ok": False, "reason": why})
            return _json("200 OK", {"ok": True})
        if path != EVENTS_PATH:
            return _json("404 Not Found", {"ok": False, "error": "not_found"})
        if method != "POST":
            return _not_allowed("POST")
        body = _body(environ)
        if body is None:
            self.refusals.refused(f"a body over {BODY_LIMIT} bytes", _client(environ))
            return _json("413 Content Too Large", {"ok": False, "error": "too_large"})
        content_type = str(environ.get("CONTENT_TYPE") or "")
        if _ssl_check(content_type, body):  # Slack's certificate check: answered, unread
            return _json("200 OK", {"ok": True})
        problem = self._unsigned(environ, body)
        if problem:
            self.refusals.refused(problem, _client(environ))
            return _json("401 Unauthorized", {"ok": False, "error": "invalid_request"})
        return self._signed(environ, content_type, body)

    def _unsigned(self, environ: WSGIEnvironment, body: bytes) -> str:
        """Why a request is not Slack's, in words ("" when its signature holds)."""
        from slack_sdk.signature import SignatureVerifier

        timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
        if not timestamp or not signature:
            return "no signature"
        if not (timestamp.isascii() and timestamp.isdigit()) or not signature.isascii():
            return "a malformed signature"

        def valid() -> bool:
            try:
                verifier = SignatureVerifier(self.secret.value, self._now)
                return verifier.is_valid(body, timestamp, signature)
            except ValueError:  # a body that is not UTF-8 cannot have been signed by Slack
                return False

        if valid():
            return ""
        if abs(self.clock() - int(timestamp)) > STALE_SECONDS:
            return "a timestamp more than five minutes away (a replay, or this clock is wrong)"
        if self.secret.reread() and valid():
            return ""
        return "a wrong signature (another app's, or SLACK_SIGNING_SECRET is not this app's)"

    def _signed(self, environ: WSGIEnvironment, content_type: str, body: bytes) -> Response:
        """A request Slack signed: handed to the bot, and acked."""
        retry = str(environ.get("HTTP_X_SLACK_RETRY_NUM") or "")
        if retry:
            reason = str(environ.get("HTTP_X_SLACK_RETRY_REASON") or "")
            log.info("Slack sent a request again (retry %s, %s); the bot answers it once",
                     retry if retry.isdigit() else "?",
                     reason if _RETRY_REASON.fullmatch(reason) else "no reason")  # fmt: skip
        read = read_request(content_type, body)
        if read is None:
            return _json("400 Bad Request", {"ok": False, "error": "unreadable"})
        kind, payload = read
        if kind == "url_verification":  # Slack checks the request URL when it is set
            return _json("200 OK", {"challenge": str(payload.get("challenge", ""))})
        if kind == "app_rate_limited":
            log.warning("Slack held back this app's events for a minute: more than 30,000 "
                        "an hour (app_rate_limited)")  # fmt: skip
            return _json("200 OK", {"ok": True})
        if not self.taking or not self.take(kind, payload):
            return _json("503 Service Unavailable", {"ok": False, "error": "stopping"})
        return "200 OK", [("Content-Length", "0")], b""


def _clock(clock: Callable[[], float]) -> Any:
    """`clock` as the SignatureVerifier's clock (slack_sdk.signature.Clock)."""
    from slack_sdk.signature import Clock

    class Now(Clock):
        def now(self) -> float:
            return clock()

    return Now()


def read_request(content_type: str, body: bytes) -> tuple[str, dict[str, Any]] | None:
    """What Slack sent, as (kind, payload): an Events API callback as `events_api` (its
    payload as Socket Mode carries it), a slash command's form as `slash_commands`, a
    click's `payload` field as `interactive`; `url_verification`, `app_rate_limited`;
    `ignored` for what igor does not answer. None when it cannot be read."""
    from urllib.parse import parse_qs

    media = content_type.partition(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
        if media == "application/json":
            data = json.loads(text)
            if not isinstance(data, dict):
                return None
            kind = data.get("type")
            if kind in ("url_verification", "app_rate_limited"):
                return str(kind), data
            return ("events_api" if kind == "event_callback" else "ignored"), data
        if media == "application/x-www-form-urlencoded":
            form = {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
            if "payload" in form:
                payload = json.loads(form["payload"])
                return ("interactive", payload) if isinstance(payload, dict) else None
            return ("slash_commands" if "command" in form else "ignored"), dict(form)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested past Python's limit
        return None
    return None


def _ssl_check(content_type: str, body: bytes) -> bool:
    """Slack's `ssl_check=1`: a slash command URL's certificate being checked (Bolt answers it
    before verifying; it asks nothing and is told nothing)."""
    from urllib.parse import parse_qs

    if not content_type.lower().startswith("application/x-www-form-urlencoded"):
        return False
    try:
        return parse_qs(body.decode("ascii")).get("ssl_check") == ["1"]
    except ValueError:
        return False


def _body(environ: WSGIEnvironment) -> bytes | None:
    """The request's body, or None when it is over BODY_LIMIT (then it is not read)."""
    stream = environ["wsgi.input"]
    length = str(environ.get("CONTENT_LENGTH") or "")
    if length.isdigit():
        if int(length) > BODY_LIMIT:
            return None
        return bytes(stream.read(int(length)))
    body = bytes(stream.read(BODY_LIMIT + 1))  # no length (chunked): at most one byte more
    return None if len(body) > BODY_LIMIT else body


def _client(environ: WSGIEnvironment) -> str:
    return str(environ.get("REMOTE_ADDR") or "an unknown address")


def _json(status: str, data: dict[str, Any]) -> Response:
    body = json.dumps(data).encode()
    return status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body


def _not_allowed(allow: str) -> Response:
    status, headers, body = _json("405 Method Not Allowed", {"ok": False, "error": "method"})
    return status, [*headers, ("Allow", allow)], body


class HttpTransport:
    """`igor serve --http`: waitress serving an `EventsEndpoint` on a socket igor bound."""

    def __init__(
        self, env: Environment, endpoint: EventsEndpoint, address: Address, stop: threading.Event
    ) -> None:
        self.env = env
        self.endpoint = endpoint
        self.address = address
        self.stop = stop
        self.failure: IgorError | None = None
        self.url = ""
        self._map: dict[int, Any] = {}  # waitress's socket map: every channel of this server
        self._server: Any = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def listen(self) -> None:
        """Listen, and serve on a thread of its own; CannotListen when the address cannot
        be had."""
        from waitress.server import create_server

        self._listener = bind(self.address)
        self._server = create_server(
            self.endpoint, map=self._map, sockets=[self._listener], threads=HTTP_THREADS,
            max_request_body_size=BODY_LIMIT, asyncore_use_poll=True, ident="igor",
        )  # fmt: skip
        host, port = self._listener.getsockname()[:2]
        self.url = f"http://{Address(host, port)}{EVENTS_PATH}"
        self._thread = threading.Thread(target=self._run, name="igor-http", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._server.run()
        except Exception as error:  # the loop itself failed: the bot cannot be reached
            log.error("the HTTP server stopped (%s)", type(error).__name__)
            self.failure = IgorError(f"igor's HTTP server stopped ({type(error).__name__}).")
            self.stop.set()

    def stop_listening(self) -> None:
        """Answer no more requests (503) and close the listening socket: a load balancer
        sends the next ones to another replica; the connections open now stay."""
        self.endpoint.stop_taking()

        def close_listener() -> None:
            self._server.del_channel()  # out of the loop's map, then closed
            if self._listener is not None:
                self._listener.close()

        self._in_loop(close_listener)

    def close(self, timeout: float = 2.0) -> None:
        """Close every connection and stop waitress's threads (bounded)."""
        from waitress import wasyncore

        if self._server is None:
            return
        self._in_loop(lambda: wasyncore.close_all(self._map))
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the HTTP server did not stop within %.0f s", timeout)
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=timeout)

    def _in_loop(self, thunk: Callable[[], None]) -> None:
        """Run `thunk` on waitress's loop thread (its sockets are that thread's alone), or
        here when the loop has ended."""
        if self._server is None:
            return
        if self._thread is not None and self._thread.is_alive():
            try:
                self._server.trigger.pull_trigger(thunk)
                return
            except OSError:
                pass  # the trigger is closed: the loop is ending
        thunk()
