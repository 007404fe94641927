"""A fake Slack for tests: Web API over HTTP and Socket Mode over a hand-written WebSocket.

Everything listens on one 127.0.0.1 port:

* ``POST|GET /api/<method>``   Web API (form-encoded, JSON or query-string parameters)
* ``POST /response/<id>``      response_url (slash commands, :meth:`FakeSlack.response_url`)
* ``GET /link/?ticket=...``    Socket Mode WebSocket endpoint (RFC 6455, server side)

The real ``slack_sdk`` clients talk to it unmodified::

    with FakeSlack() as fake:
        web = WebClient(token=fake.bot_token, base_url=fake.api_url)
        sm = SocketModeClient(app_token=fake.app_token, web_client=web)
        sm.connect()
        fake.wait_connected()
        envelope_id = fake.push_event({"type": "app_mention", "text": "<@UIGOR> help"})
        fake.wait_ack(envelope_id)

Threads: one accept loop, one thread per TCP connection (for a WebSocket that thread is the
connection's reader), one short-lived thread per :meth:`FakeSlack.send_disconnect`. All are
daemon threads and :meth:`FakeSlack.stop` closes every socket and joins them.

The fake enforces the rules a bot meets on first contact with the real Slack, so a test
catches what Slack would refuse (each can be relaxed for a test that is about something else):

* Channel membership (``enforce_membership``): in a channel (``C...``/``G...``) the bot is not
  a member of, chat.postMessage, chat.postEphemeral, chat.update and conversations.replies
  answer ``not_in_channel``. A pushed ``message``/``app_mention`` event makes the bot a member
  (Slack only delivers those from channels the bot is in); slash commands and interactive
  payloads do not. ``chat:write.public`` (``bot_scopes``/:meth:`FakeSlack.grant`) lets
  chat.postMessage reach public channels anyway. DMs (``D...``) and user IDs always work.
* response_url: 5 posts each, within 30 minutes of issue; then HTTP 404.
* conversations.replies: the parent first, ``limit`` counting it, ``has_more`` and a cursor.
* Rate limits per method (``rate_limits``; chat.update: 50 a minute): HTTP 429 + Retry-After.
* Revoked tokens (:meth:`FakeSlack.revoke_bot_token`, :meth:`FakeSlack.revoke_app_token`).
* At most ``max_connections`` (10) open connections per app; one more is turned away with a
  ``too_many_websockets`` disconnect. Socket Mode turned off in the app's settings
  (:meth:`FakeSlack.disable_socket_mode`): every connection gets ``link_disabled``.
* The closing handshake (RFC 6455 §5.5.1, §7.1.1): a Close the fake sends is followed by TCP's
  close only once the client answered with its own Close (or after ``CLOSE_WAIT`` seconds);
  every Close a client sends is kept in ``close_frames``.

Time for these rules comes from the injectable ``clock`` (epoch seconds).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import random
import secrets
import socket
import string
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from types import TracebackType
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "CLOSE_WAIT",
    "DEFAULT_BOT_SCOPES",
    "DEFAULT_RATE_LIMITS",
    "MAX_CONNECTIONS",
    "RESPONSE_URL_LIFETIME",
    "RESPONSE_URL_MAX_POSTS",
    "Ack",
    "Call",
    "ClientClose",
    "FakeSlack",
    "Frame",
    "RateLimit",
    "encode_frame",
    "read_frame",
    "websocket_accept",
]

logger = logging.getLogger(__name__)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

#: Parameters that slack_sdk (or a bot) may send as JSON-encoded strings in form bodies.
_JSON_STRING_FIELDS = ("blocks", "attachments", "user_auth_blocks", "metadata")

_JOIN_BUDGET = 2.0


class RateLimit(NamedTuple):
    """At most ``calls`` calls to a method in any ``seconds`` long window."""

    calls: int
    seconds: float


#: chat.update is Tier 3 ("about 50 a minute"). Slack does not publish its exact algorithm;
#: the fake uses a sliding window over accepted calls.
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {"chat.update": RateLimit(50, 60.0)}

#: What igor's manifest asks for (and no chat:write.public).
DEFAULT_BOT_SCOPES: frozenset[str] = frozenset(
    {"app_mentions:read", "channels:history", "chat:write", "commands", "groups:history",
     "im:history", "users:read"}
)  # fmt: skip

#: Methods that need the bot to be in the channel (C.../G...).
_MEMBERSHIP_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.update", "conversations.replies"}
)

#: Socket Mode allows an app "up to 10 open WebSocket connections at the same time"
#: (api.slack.com/apis/connections/socket-implement, "Using multiple connections").
MAX_CONNECTIONS = 10
#: How long the fake waits for a client's Close after sending its own before it closes TCP
#: (RFC 6455 §7.1.1 leaves the wait to the server).
CLOSE_WAIT = 1.0

#: A response_url takes this many posts, for this long after it was issued.
RESPONSE_URL_MAX_POSTS = 5
RESPONSE_URL_LIFETIME = 30 * 60.0

#: conversations.replies' default (and maximum) page size on Slack's reference page, for internal
#: apps (commercially distributed non-Marketplace apps now get 15, and 1 request a minute).
_REPLIES_DEFAULT_LIMIT = 1000


def _needs_membership(channel: str) -> bool:
    """Public (C...) and private (G...) channels; DMs (D...) and user IDs (U.../W...) do not."""
    return channel[:1] in ("C", "G")


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


# ---------------------------------------------------------------------------
# WebSocket framing (RFC 6455), shared with the tests' raw client


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    masked: bool
    payload: bytes


def websocket_accept(key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key."""
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` (masking and unmasking are the same)."""
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def encode_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """One frame; unmasked (server to client) unless a 4-byte ``mask`` is given."""
    b1 = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n <= 125:
        header = struct.pack("!BB", b1, mask_bit | n)
    elif n <= 0xFFFF:
        header = struct.pack("!BBH", b1, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", b1, mask_bit | 127, n)
    if mask is None:
        return header + payload
    if len(mask) != 4:
        raise ValueError("mask must be 4 bytes")
    return header + mask + apply_mask(payload, mask)


def read_frame(read: Callable[[int], bytes]) -> Frame:
    """Read one frame with ``read(n)`` (which must return n bytes, or fewer only at EOF).

    Raises EOFError when the stream ends before a whole frame arrived.
    """

    def exactly(n: int) -> bytes:
        if n == 0:
            return b""
        data = read(n)
        if len(data) != n:
            raise EOFError(f"stream ended after {len(data)} of {n} bytes")
        return data

    b1, b2 = exactly(2)
    length = b2 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", exactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", exactly(8))
    masked = bool(b2 & 0x80)
    mask = exactly(4) if masked else b""
    payload = exactly(length)
    if masked:
        payload = apply_mask(payload, mask)
    return Frame(fin=bool(b1 & 0x80), opcode=b1 & 0x0F, masked=masked, payload=payload)


# ---------------------------------------------------------------------------
# Public records


@dataclass
class Call:
    """One HTTP request received (every request is recorded, including rejected ones)."""

    method: str  # Web API method, or "response_url"
    params: dict[str, Any]  # merged query/form/JSON params, JSON-string fields decoded
    token: str | None = field(repr=False)  # bearer (or form) token; kept out of repr
    at: float  # time.monotonic() when received
    # Extras beyond the brief (all defaulted):
    path: str = ""  # request path, e.g. "/api/chat.postMessage" or "/response/<id>"
    status: int = 200  # HTTP status answered
    error: str | None = None  # the "error" answered ({"ok": false}) or None when ok
    response: Any = field(default=None, repr=False)  # the JSON (or text) answered


@dataclass
class Ack:
    envelope_id: str
    sent_at: float  # monotonic time the envelope was pushed (nan if never pushed)
    acked_at: float  # monotonic time the ack frame arrived
    payload: dict[str, Any] | None


@dataclass(frozen=True)
class ClientClose:
    """A Close frame a client sent (RFC 6455 §5.5.1): its status code (None: none given)."""

    conn_id: int
    code: int | None
    reason: str


@dataclass
class _Failure:
    status: int
    retry_after: int
    error: str | None


@dataclass
class _ResponseUrl:
    issued_at: float  # FakeSlack.clock() when issued
    posts: int = 0  # accepted posts so far


ConnState = Literal["open", "disconnecting", "silent", "closed"]


class _WsConn:
    """Server side of one WebSocket. ``state`` is guarded by the FakeSlack condition."""

    def __init__(self, conn_id: int, sock: socket.socket, ticket: str) -> None:
        self.id = conn_id
        self.sock = sock
        self.ticket = ticket
        self.write_lock = threading.Lock()
        self.state: ConnState = "open"
        self.opened_at = time.monotonic()
        self.closed_at: float | None = None
        self.pings_received = 0
        self.pongs: list[bytes] = []  # payloads of the client's pongs, in arrival order
        self.close_sent = False
        self.reset_requested = False
        self.rfile: BufferedIOBase | None = None
        self.finished = threading.Event()  # set once the reader thread let go of the socket

    def send_frame(self, opcode: int, payload: bytes = b"") -> None:
        data = encode_frame(opcode, payload)
        with self.write_lock:
            self.sock.sendall(data)

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        with self.write_lock:
            if self.close_sent:
                return
            self.close_sent = True
            self.sock.sendall(encode_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()))

    def __repr__(self) -> str:
        return f"<ws #{self.id} {self.state}>"


def _shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(how)


# ---------------------------------------------------------------------------
# HTTP plumbing


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        sock: socket.socket = request
        if self.fake._stopping.is_set():
            self.shutdown_request(sock)
            return
        thread = threading.Thread(
            target=self._run_tracked,
            args=(sock, client_address),
            name=f"fake-slack-conn-{client_address[1]}",
            daemon=True,
        )
        self.fake._track(thread, sock)
        thread.start()

    def _run_tracked(self, sock: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(sock, client_address)
        finally:
            self.fake._untrack(threading.current_thread(), sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake slack: error handling %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSlack/1.0"
    timeout = 30  # idle keep-alive connections; WebSockets switch to blocking mode

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake slack: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _fake(self) -> FakeSlack:
        assert isinstance(self.server, _HTTPServer)
        return self.server.fake

    def _dispatch(self) -> None:
        fake = self._fake()
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") == "/link":
            fake._handle_websocket(self, parts.query)
            return
        body = self._read_body()
        content_type = self.headers.get("Content-Type", "")
        if parts.path.startswith("/api/"):
            status, headers, payload = fake._handle_api(
                method=parts.path[len("/api/") :],
                path=parts.path,
                query=parts.query,
                body=body,
                content_type=content_type,
                authorization=self.headers.get("Authorization"),
            )
        elif parts.path.startswith("/response/") and self.command == "POST":
            status, headers, payload = fake._handle_response_url(parts.path, body, content_type)
        else:
            status, headers, payload = (
                404,
                {"Content-Type": "text/plain; charset=utf-8"},
                b"not found",
            )
        self.respond(status, headers, payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def respond(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        # Headers and body go out in two writes: without this, Nagle and the client's
        # delayed ACK hold every answer on a kept-alive connection ~40 ms (igor keeps its
        # connection to the Web API alive). Not on WebSockets: those never come here.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data).encode("utf-8")


def _decode_params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    params: dict[str, Any] = {}

    def merge_form(text: str) -> None:
        for key, values in parse_qs(text, keep_blank_values=True).items():
            params[key] = values[0] if len(values) == 1 else values

    if query:
        merge_form(query)
    if body:
        text = body.decode("utf-8", errors="replace")
        if "json" in content_type.lower() or (not content_type and text.lstrip()[:1] == "{"):
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict):
                params.update(data)
        elif "form-urlencoded" in content_type.lower() or not content_type:
            merge_form(text)
    for name in _JSON_STRING_FIELDS:
        value = params.get(name)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                params[name] = json.loads(value)
    return params


def _ratelimited(retry_after: int) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Slack's answer to a rate-limited call: HTTP 429, Retry-After in seconds."""
    return 429, {"Retry-After": str(retry_after)}, {"ok": False, "error": "ratelimited"}


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[len("bearer ") :].strip() or None
    return None


# ---------------------------------------------------------------------------
# The fake


ApiHandler = Callable[[dict[str, Any]], dict[str, Any]]


class FakeSlack:
    """Fake Slack Web API + Socket Mode server. See the module docstring."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-bot",
        app_token: str = "xapp-test-app",
        bot_user_id: str = "UIGOR",
        bot_id: str = "BIGOR",
        bot_name: str = "igor",
        team_id: str = "T0001",
        team_name: str = "Acme",
        app_id: str = "A0001",
        server_ping_interval: float | None = None,
        enforce_membership: bool = True,
        bot_scopes: Iterable[str] | None = None,
        clock: Callable[[], float] = time.time,
        rate_limits: Mapping[str, tuple[int, float]] | None = None,
    ) -> None:
        """``server_ping_interval``: if set, send a PING on every live connection that often,
        as real Slack does. This also makes slack_sdk's ``SocketModeClient.close()`` return
        sooner: it waits for its reader's blocking ``recv`` (3 s timeout) to return.

        ``enforce_membership``: refuse channel posts the bot could not make (``not_in_channel``).
        ``bot_scopes``: the scopes granted (default :data:`DEFAULT_BOT_SCOPES`).
        ``clock``: epoch seconds for response_url expiry and rate limits.
        ``rate_limits``: method -> (calls, seconds); default :data:`DEFAULT_RATE_LIMITS`,
        ``{}`` turns them off.
        """
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.team_id = team_id
        self.team_name = team_name
        self.app_id = app_id
        self.server_ping_interval = server_ping_interval
        self.enforce_membership = enforce_membership
        self.bot_scopes: set[str] = set(DEFAULT_BOT_SCOPES if bot_scopes is None else bot_scopes)
        self.clock = clock
        limits = DEFAULT_RATE_LIMITS if rate_limits is None else rate_limits
        self.rate_limits: dict[str, RateLimit] = {
            method: RateLimit(int(calls), float(seconds))
            for method, (calls, seconds) in limits.items()
        }

        self.api_url = ""  # set by start(): "http://127.0.0.1:<port>/api/"
        self.base_url = ""  # set by start(): "http://127.0.0.1:<port>"
        self.port = 0

        self.calls: list[Call] = []
        self.acks: dict[str, Ack] = {}  # first ack per envelope
        self.ack_log: list[Ack] = []  # every ack frame, in arrival order
        self.client_messages: list[Any] = []  # client text frames that are not acks
        self.protocol_errors: list[str] = []  # WebSocket protocol violations by clients
        self.close_frames: list[ClientClose] = []  # every Close a client sent, in order
        self.connections_opened = 0  # connections greeted with hello and kept
        self.connections_refused = 0  # connections turned away (too_many_websockets, ...)
        self.max_connections = MAX_CONNECTIONS
        self.socket_mode = True  # False once disable_socket_mode() was called
        # Unconfirmed: whether Slack sends hello before a too_many_websockets disconnect (the
        # reason's name is from slackapi/node-slack-sdk's socket-mode tests and issue reports;
        # Slack's docs name only the limit). A test may choose either.
        self.hello_before_refusal = False

        self._cond = threading.Condition(threading.RLock())
        self._failures: dict[str, deque[_Failure]] = {}
        self._handlers: dict[str, ApiHandler] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.replies": self._conversations_replies,
        }
        # Messages as Slack would show them now, (channel, ts) -> message: what the bot posted
        # and the people's messages pushed as message/app_mention events.
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._members: set[str] = set()  # conversations the bot is in
        self.users: dict[str, dict[str, str]] = {}  # add_user: members users.info knows
        # Slack Connect: people of other teams (user -> team) and the channels shared with
        # them; their events, slash commands and clicks say whose they are (`team_of`).
        self.external_users: dict[str, str] = {}
        self.shared_channels: set[str] = set()
        self._revoked: set[str] = set()  # tokens that Slack no longer accepts
        self._rate_windows: dict[str, deque[float]] = {}  # method -> clock() of accepted calls
        self._tickets: set[str] = set()
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._reactions: set[tuple[str, str, str]] = set()
        self._pushed: dict[str, float] = {}
        self._conns: list[_WsConn] = []
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._ts_micros = 1_700_000_000 * 1_000_000
        self._latest_known_micros = 0
        self._conn_counter = 0
        self._server: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FakeSlack:
        if self._server is not None:
            raise RuntimeError("FakeSlack already started")
        self._stopping.clear()
        server = _HTTPServer(self)
        self._server = server
        self.port = int(server.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.base_url}/api/"
        self._serve_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-slack-accept",
            daemon=True,
        )
        self._serve_thread.start()
        if self.server_ping_interval is not None:
            pinger = threading.Thread(target=self._ping_loop, name="fake-slack-pinger", daemon=True)
            with self._cond:
                self._threads.add(pinger)
            pinger.start()
        return self

    def _ping_loop(self) -> None:
        interval = self.server_ping_interval or 1.0
        while not self._stopping.wait(interval):
            with self._cond:
                conns = [c for c in self._conns if c.state in ("open", "disconnecting")]
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.send_frame(OP_PING, f"fake:{time.time()}".encode())

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._stopping.set()
        deadline = time.monotonic() + _JOIN_BUDGET
        server.shutdown()
        server.server_close()
        with self._cond:
            sockets = list(self._sockets)
            for conn in self._conns:
                conn.state = "closed"
            self._cond.notify_all()
        for sock in sockets:
            _shutdown(sock)
        threads = [*self._threads, *([self._serve_thread] if self._serve_thread else [])]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        self._server = None
        self._serve_thread = None
        if stuck:
            logger.warning("fake slack: threads still alive after stop(): %s", stuck)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _track(self, thread: threading.Thread, sock: socket.socket) -> None:
        with self._cond:
            self._threads.add(thread)
            self._sockets.add(sock)

    def _untrack(self, thread: threading.Thread, sock: socket.socket) -> None:
        with self._cond:
            self._threads.discard(thread)
            self._sockets.discard(sock)

    # -- Web API: inspection and failure injection -----------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def post_message_count(self) -> int:
        return len(self.calls_to("chat.postMessage"))

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until at least ``count`` calls to ``method`` were received; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls if c.method == method]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(
                        f"expected >= {count} call(s) to {method} within {timeout}s, "
                        f"got {len(found)}; all calls so far: {seen}"
                    )
                self._cond.wait(remaining)

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int = 1,
        error: str | None = None,
        count: int = 1,
    ) -> None:
        """Make the next ``count`` (authenticated) calls to ``method`` fail.

        Without ``error``: HTTP ``status`` (default 429, which adds ``Retry-After:
        retry_after`` and ``"error": "ratelimited"``). With ``error`` (e.g. "not_in_channel",
        "channel_not_found", "token_revoked"): ``{"ok": false, "error": error}`` with HTTP
        ``status``, default 200 (404 for "response_url", whose body is then ``error``).
        ``method`` may be "response_url"; a failed response_url post does not use up the URL.
        """
        if status is None and error is None:
            status = 429
        elif status is None:
            status = 404 if method == "response_url" else 200
        with self._cond:
            queue = self._failures.setdefault(method, deque())
            for _ in range(count):
                queue.append(_Failure(status=status, retry_after=retry_after, error=error))

    def set_handler(self, method: str, handler: ApiHandler) -> None:
        """Add or replace a Web API method: ``handler(params) -> response dict``.

        The bot token is required; failure injection and recording still apply.
        """
        with self._cond:
            self._handlers[method] = handler

    def response_url(self) -> str:
        """A fresh response_url (e.g. for a block_actions payload given to push_interactive).

        It takes :data:`RESPONSE_URL_MAX_POSTS` posts within :data:`RESPONSE_URL_LIFETIME`
        seconds of now (by ``clock``).
        """
        response_id = uuid.uuid4().hex
        with self._cond:
            self._response_urls[response_id] = _ResponseUrl(issued_at=self.clock())
        return f"{self.base_url}/response/{response_id}"

    # -- Slack's rules: membership, scopes, tokens --------------------------------

    def join(self, channel: str) -> None:
        """The bot is now a member of ``channel`` (as after /invite @igor)."""
        with self._cond:
            self._members.add(channel)

    def leave(self, channel: str) -> None:
        """The bot is no longer a member of ``channel`` (it was removed, or left)."""
        with self._cond:
            self._members.discard(channel)

    def is_member(self, channel: str) -> bool:
        """Whether the bot may post in ``channel`` as a member (DMs and user IDs: always)."""
        with self._cond:
            return not _needs_membership(channel) or channel in self._members

    def grant(self, *scopes: str) -> None:
        """Add bot scopes (e.g. ``grant("chat:write.public")``), as a reinstall would."""
        with self._cond:
            self.bot_scopes.update(scopes)

    def revoke_bot_token(self) -> None:
        """From now on every Web API call with the current bot token answers token_revoked.

        Setting ``bot_token`` to a new value afterwards models a reinstall: the new one works.
        """
        with self._cond:
            self._revoked.add(self.bot_token)

    def revoke_app_token(self) -> None:
        """The app-level token stops working: apps.connections.open answers invalid_auth,
        WebSocket URLs already issued are refused, and every open connection is closed
        (close frame, then TCP FIN), so the client's reconnects fail.
        """
        with self._cond:
            self._revoked.add(self.app_token)
            self._tickets.clear()
            conns = [c for c in self._conns if c.state != "closed"]
            self._cond.notify_all()
        # Unconfirmed: how Slack closes a Socket Mode connection whose token was revoked
        # (close code, or a "disconnect" message first); 1008 is the WebSocket "policy" code.
        self._close_gracefully(conns, 1008, "token revoked")
        deadline = time.monotonic() + _JOIN_BUDGET
        for conn in conns:
            conn.finished.wait(max(0.0, deadline - time.monotonic()))

    def _membership_error(self, method: str, params: dict[str, Any]) -> str | None:
        if method not in _MEMBERSHIP_METHODS or not self.enforce_membership:
            return None
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel or self.is_member(channel):
            return None  # a missing channel is the method's own channel_not_found
        with self._cond:
            public_write = "chat:write.public" in self.bot_scopes
        # chat:write.public: "Send messages to channels @app isn't a member of" (public only).
        # Unconfirmed: that it does not cover chat.postEphemeral (the fake says it does not).
        if method == "chat.postMessage" and public_write and channel.startswith("C"):
            return None
        # not_in_channel is documented for chat.postMessage and chat.postEphemeral.
        # Unconfirmed: that chat.update and conversations.replies answer not_in_channel too
        # (their error lists do not name it; channel_not_found is the other candidate).
        return "not_in_channel"

    def _rate_limited(self, method: str) -> int | None:
        """Seconds to wait when ``method`` is over its window, else None (the call counts)."""
        with self._cond:
            limit = self.rate_limits.get(method)
            if limit is None:
                return None
            now = self.clock()
            window = self._rate_windows.setdefault(method, deque())
            while window and window[0] <= now - limit.seconds:
                window.popleft()
            if len(window) >= limit.calls:
                # Unconfirmed: Slack's Retry-After is whole seconds; its exact value here is
                # the fake's (until the oldest call in the window leaves it).
                return max(1, math.ceil(window[0] + limit.seconds - now))
            window.append(now)
            return None

    def remember_pushed(self, event: dict[str, Any]) -> None:
        """A message/app_mention pushed from a channel: the bot is in it, and the message
        exists (so it can be a thread's parent in conversations.replies)."""
        if event.get("type") not in ("message", "app_mention"):
            return
        channel, ts = event.get("channel"), event.get("ts")
        if not isinstance(channel, str) or not channel:
            return
        with self._cond:
            if _needs_membership(channel):
                self._members.add(channel)
            if isinstance(ts, str) and ts and not event.get("subtype"):
                stored = {k: v for k, v in event.items() if k not in ("channel", "event_ts")}
                stored["type"] = "message"
                self.messages.setdefault((channel, ts), stored)
                parent = event.get("thread_ts")
                if isinstance(parent, str) and parent and parent != ts:
                    # A reply to a message the test never pushed: Slack has that parent.
                    self.messages.setdefault(
                        (channel, parent),
                        {"type": "message", "ts": parent, "thread_ts": parent, "text": ""},
                    )
                with contextlib.suppress(ValueError):
                    micros = round(float(ts) * 1_000_000)
                    self._latest_known_micros = max(self._latest_known_micros, micros)

    # -- Web API: request handling ---------------------------------------------

    def _take_failure(self, method: str) -> _Failure | None:
        with self._cond:
            queue = self._failures.get(method)
            if queue:
                return queue.popleft()
            return None

    @staticmethod
    def _failure_response(failure: _Failure) -> tuple[int, dict[str, str], dict[str, Any]]:
        if failure.status == 429:
            status, headers, response = _ratelimited(failure.retry_after)
            return status, headers, {**response, "error": failure.error or "ratelimited"}
        if failure.error is not None:
            return failure.status, {}, {"ok": False, "error": failure.error}
        return failure.status, {}, {"ok": False, "error": f"http_{failure.status}"}

    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _handle_api(
        self,
        *,
        method: str,
        path: str,
        query: str,
        body: bytes,
        content_type: str,
        authorization: str | None,
    ) -> tuple[int, dict[str, str], bytes]:
        at = time.monotonic()
        params = _decode_params(query, body, content_type)
        form_token = params.pop("token", None)
        token = _bearer(authorization) or (form_token if isinstance(form_token, str) else None)
        status, headers, response = self._api_response(method, params, token)
        self._record(
            Call(
                method=method,
                params=params,
                token=token,
                at=at,
                path=path,
                status=status,
                error=None if response.get("ok") else str(response.get("error")),
                response=response,
            )
        )
        return status, {**_JSON_HEADERS, **headers}, _json_bytes(response)

    def _api_response(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._cond:
            handler = self._handlers.get(method)
            bot_token, app_token = self.bot_token, self.app_token
            revoked = token is not None and token in self._revoked
            scopes = ",".join(sorted(self.bot_scopes))
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        if method == "apps.connections.open":
            # Unconfirmed: the error for a revoked app-level token (invalid_auth or
            # token_revoked); the fake says invalid_auth.
            if token != app_token or revoked:
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            headers: dict[str, str] = {}
        else:
            is_app_token = token is not None and (token == app_token or token.startswith("xapp-"))
            if is_app_token:
                return 200, {}, {"ok": False, "error": "not_allowed_token_type"}
            if revoked:
                return 200, {}, {"ok": False, "error": "token_revoked"}
            if token != bot_token:
                return 200, {}, {"ok": False, "error": "invalid_auth"}
            headers = {"X-OAuth-Scopes": scopes}  # Slack lists the token's scopes here
        failure = self._take_failure(method)
        if failure is not None:
            status, extra, response = self._failure_response(failure)
            return status, {**headers, **extra}, response
        retry_after = self._rate_limited(method)
        if retry_after is not None:
            status, extra, response = _ratelimited(retry_after)
            return status, {**headers, **extra}, response
        refusal = self._membership_error(method, params)
        if refusal is not None:
            return 200, headers, {"ok": False, "error": refusal}
        response = handler(params)
        response.setdefault("ok", True)
        return 200, headers, response

    def _handle_response_url(
        self, path: str, body: bytes, content_type: str
    ) -> tuple[int, dict[str, str], bytes]:
        at = time.monotonic()
        params = _decode_params("", body, content_type)
        if isinstance(params.get("payload"), str):  # form-encoded payload=<json>
            try:
                decoded = json.loads(params["payload"])
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                params = decoded
        response_id = path[len("/response/") :].strip("/")
        text_headers = {"Content-Type": "text/plain; charset=utf-8"}
        status, headers, text, error = 200, text_headers, "ok", None
        with self._cond:
            issued = self._response_urls.get(response_id)
            refusal: str | None = None
            if issued is None:
                refusal = "invalid_response_url"
            elif self.clock() - issued.issued_at > RESPONSE_URL_LIFETIME:
                refusal = "expired_url"
            elif issued.posts >= RESPONSE_URL_MAX_POSTS:
                refusal = "used_url"
            failure = self._take_failure("response_url") if refusal is None else None
            if issued is not None and refusal is None and failure is None:
                issued.posts += 1
        if refusal is not None:
            # Slack: a response_url takes 5 posts within 30 minutes. Unconfirmed: that a refused
            # post answers HTTP 404 with exactly "used_url" / "expired_url" as its body.
            status, text, error = 404, refusal, refusal
        elif failure is not None:
            status, extra, response = self._failure_response(failure)
            headers = {**text_headers, **extra}
            error = str(response["error"])
            text = error
        self._record(
            Call(
                method="response_url",
                params=params,
                token=None,
                at=at,
                path=path,
                status=status,
                error=error,
                response=text,
            )
        )
        return status, headers, text.encode("utf-8")

    # -- Web API: methods ------------------------------------------------------

    def _next_ts(self) -> str:
        """A fresh message ts, later than every message the fake knows (as Slack's are)."""
        with self._cond:
            self._ts_micros = max(self._ts_micros + 100, self._latest_known_micros + 100)
            micros = self._ts_micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://acme.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = str(uuid.uuid4())
        with self._cond:
            self._tickets.add(ticket)
        return {
            "ok": True,
            "url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}",
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message = {k: v for k, v in params.items() if k != "channel"}
        message.update(
            {"type": "message", "ts": ts, "user": self.bot_user_id, "bot_id": self.bot_id}
        )
        with self._cond:
            self.messages[(str(channel), ts)] = dict(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not ts:
            return {"ok": False, "error": "message_not_found"}
        with self._cond:
            stored = self.messages.get((str(channel), str(ts)))
            if stored is None:
                return {"ok": False, "error": "message_not_found"}
            if stored.get("user") != self.bot_user_id:
                return {"ok": False, "error": "cant_update_message"}  # a person's message
            # chat.update replaces text and blocks; absent blocks are removed.
            stored["text"] = params.get("text", "")
            stored["blocks"] = params.get("blocks", [])
        return {"ok": True, "channel": channel, "ts": ts, "text": params.get("text", "")}

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parent first (always, on the first page), then replies in ts order.

        oldest/latest (exclusive unless ``inclusive``) select replies; ``limit`` counts the
        parent, so limit=1 is the parent alone; a cut page has ``has_more`` and a cursor.
        """
        channel, ts = str(params.get("channel") or ""), str(params.get("ts") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        try:
            oldest = float(params.get("oldest") or 0)
        except ValueError:
            return {"ok": False, "error": "invalid_ts_oldest"}
        try:
            latest = float(params.get("latest") or "inf")
        except ValueError:
            return {"ok": False, "error": "invalid_ts_latest"}
        inclusive = _truthy(params.get("inclusive", ""))
        try:
            limit = int(params.get("limit") or _REPLIES_DEFAULT_LIMIT)
        except ValueError:
            return {"ok": False, "error": "invalid_limit"}
        limit = max(1, min(limit, _REPLIES_DEFAULT_LIMIT))
        cursor = str(params.get("cursor") or "")
        after: float | None = None
        if cursor:
            try:
                after = float(base64.b64decode(cursor, validate=True).decode().split(":", 1)[1])
            except (ValueError, IndexError):
                return {"ok": False, "error": "invalid_cursor"}
        with self._cond:
            found = self.messages.get((channel, ts))
            parent_ts = str(found.get("thread_ts") or ts) if found is not None else ts
            parent = self.messages.get((channel, parent_ts))
            if parent is None:
                return {"ok": False, "error": "thread_not_found"}
            thread = sorted(
                (
                    (float(t), dict(m))
                    for (c, t), m in self.messages.items()
                    if c == channel and t != parent_ts and m.get("thread_ts") == parent_ts
                ),
                key=lambda item: item[0],
            )
            parent = dict(parent)
        if thread:
            parent.update(
                thread_ts=parent_ts,
                reply_count=len(thread),
                latest_reply=thread[-1][1]["ts"],
            )

        def wanted(at: float) -> bool:
            if inclusive:
                return oldest <= at <= latest
            return oldest < at < latest

        replies = [(at, m) for at, m in thread if wanted(at) and (after is None or at >= after)]
        # Unconfirmed: that oldest/latest never drop the parent, and that pages after the
        # first (cursor) leave the parent out.
        head = [parent] if after is None else []
        room = limit - len(head)
        page = head + [m for _, m in replies[:room]]
        response: dict[str, Any] = {"ok": True, "messages": page, "has_more": False}
        if len(replies) > room:
            response["has_more"] = True
            next_at = replies[room][1]["ts"]
            next_cursor = base64.b64encode(f"next_ts:{next_at}".encode()).decode()
            response["response_metadata"] = {"next_cursor": next_cursor}
        return response

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts, name = params.get("channel"), params.get("timestamp"), params.get("name")
        if not channel or not ts:
            return {"ok": False, "error": "no_item_specified"}
        if not name:
            return {"ok": False, "error": "invalid_name"}
        key = (str(channel), str(ts), str(name))
        with self._cond:
            if key in self._reactions:
                return {"ok": False, "error": "already_reacted"}
            self._reactions.add(key)
        return {"ok": True}

    def add_user(
        self, user_id: str, *, name: str, real_name: str = "", display_name: str = ""
    ) -> None:
        """A member of the workspace, as users.info shows them (`display_name` may be "",
        as it is for people who never set one)."""
        with self._cond:
            self.users[user_id] = {"name": name, "real_name": real_name,
                                   "display_name": display_name}  # fmt: skip

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        # docs.slack.dev users.info: bot scope users:read; errors user_not_found (an ID
        # that is no one's); the profile's fields "may not be present at all, may be null
        # or may contain the empty string". Without the scope Slack answers missing_scope,
        # naming what was needed and what the token has (as for every method).
        with self._cond:
            scopes = set(self.bot_scopes)
            known = dict(self.users)
        if "users:read" not in scopes:
            return {"ok": False, "error": "missing_scope", "needed": "users:read",
                    "provided": ",".join(sorted(scopes))}  # fmt: skip
        user_id = params.get("user")
        if not user_id or not isinstance(user_id, str):
            return {"ok": False, "error": "user_not_found"}
        is_bot = user_id == self.bot_user_id
        if user_id in known:
            person = known[user_id]
            name, real_name = person["name"], person["real_name"]
            display_name = person["display_name"]
        elif is_bot:
            name, real_name, display_name = self.bot_name, self.bot_name.title(), ""
        elif user_id.startswith("U0"):  # the tests' people: U0ALICE is alice, Alice
            name = user_id[2:].lower() or "user"
            real_name, display_name = name.title(), name
        else:
            return {"ok": False, "error": "user_not_found"}
        return {
            "ok": True,
            "user": {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": real_name,
                "deleted": False,
                "is_bot": is_bot,
                "tz": "Europe/London",
                "profile": {"real_name": real_name, "display_name": display_name},
            },
        }

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": "deploys",
                "is_channel": True,
                "is_private": str(channel).startswith("G"),
                "is_member": self.is_member(str(channel)) or not self.enforce_membership,
            },
        }

    # -- Socket Mode: server side ----------------------------------------------

    def _handle_websocket(self, h: _Handler, query: str) -> None:
        h.close_connection = True
        upgrade = h.headers.get("Upgrade", "").lower()
        connection = h.headers.get("Connection", "").lower()
        key = h.headers.get("Sec-WebSocket-Key", "").strip()
        version = h.headers.get("Sec-WebSocket-Version", "").strip()
        if h.command != "GET" or upgrade != "websocket" or "upgrade" not in connection or not key:
            h.respond(400, _JSON_HEADERS, _json_bytes({"ok": False, "error": "not_websocket"}))
            return
        if version != "13":
            h.respond(
                426, {**_JSON_HEADERS, "Sec-WebSocket-Version": "13"}, _json_bytes({"ok": False})
            )
            return
        ticket = parse_qs(query).get("ticket", [""])[0]
        with self._cond:
            known = ticket in self._tickets and not self._stopping.is_set()
        if not known:
            h.respond(401, _JSON_HEADERS, _json_bytes({"ok": False, "error": "invalid_ticket"}))
            return

        sock = h.connection
        sock.settimeout(None)
        handshake = (
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {websocket_accept(key)}\r\n"
            "\r\n"
        ).encode("ascii")
        hello = {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "fake", "approximate_connection_time": 3600},
            "connection_info": {"app_id": self.app_id},
        }
        with self._cond:
            self._conn_counter += 1
            conn = _WsConn(self._conn_counter, sock, ticket)
        refusal: str | None = None
        # Hold the write lock while registering so that no push overtakes the hello.
        with conn.write_lock:
            with self._cond:
                if not self.socket_mode:
                    refusal = "link_disabled"  # Unconfirmed: what a connection made while off gets
                elif sum(1 for c in self._conns if c.state != "closed") >= self.max_connections:
                    refusal = "too_many_websockets"
                self._conns.append(conn)
                hello["num_connections"] = sum(1 for c in self._conns if c.state != "closed")
                if refusal is not None:
                    conn.state = "disconnecting"
                    self.connections_refused += 1
            greet = refusal is None or (refusal != "link_disabled" and self.hello_before_refusal)
            try:
                sock.sendall(
                    handshake + (encode_frame(OP_TEXT, _json_bytes(hello)) if greet else b"")
                )
            except OSError:
                self._finish_conn(conn)
                return
            if refusal is None:
                with self._cond:
                    self.connections_opened += 1
                    self._cond.notify_all()
        logger.debug("fake slack: websocket %s opened (refused: %s)", conn, refusal)
        if refusal is not None:
            self._disconnect(conn, refusal, close_after=0.05)
        conn.rfile = h.rfile
        try:
            self._read_loop(conn, h.rfile)
        finally:
            self._finish_conn(conn)

    def _read_loop(self, conn: _WsConn, rfile: BufferedIOBase) -> None:
        fragments: list[bytes] | None = None
        message_opcode = OP_TEXT
        try:
            while True:
                frame = read_frame(rfile.read)
                if not frame.masked:
                    self._protocol_error(conn, "unmasked client frame")
                    break
                if frame.opcode >= 0x8:  # control frame
                    if not frame.fin or len(frame.payload) > 125:
                        self._protocol_error(conn, "fragmented or oversized control frame")
                        break
                    if frame.opcode == OP_PING:
                        with self._cond:
                            conn.pings_received += 1
                            silent = conn.state == "silent"
                        if not silent:
                            conn.send_frame(OP_PONG, frame.payload)
                    elif frame.opcode == OP_CLOSE:
                        with self._cond:
                            silent = conn.state == "silent"
                        if silent:
                            continue  # nothing gets through; the client's TCP close ends it
                        code = None
                        if len(frame.payload) >= 2:
                            (code,) = struct.unpack("!H", frame.payload[:2])
                        reason = frame.payload[2:].decode("utf-8", errors="replace")
                        with self._cond:
                            self.close_frames.append(ClientClose(conn.id, code, reason))
                            self._cond.notify_all()
                        # RFC 6455 §5.5.1: answered (unless this was the answer), then TCP
                        # closed by the server (§7.1.1).
                        conn.send_close(1000 if code is None else code)
                        break
                    elif frame.opcode == OP_PONG:
                        with self._cond:
                            conn.pongs.append(frame.payload)
                            self._cond.notify_all()
                    else:
                        self._protocol_error(conn, f"unknown control opcode {frame.opcode:#x}")
                        break
                    continue
                if frame.opcode == OP_CONTINUATION:
                    if fragments is None:
                        self._protocol_error(conn, "continuation without a started message")
                        break
                    fragments.append(frame.payload)
                elif frame.opcode in (OP_TEXT, OP_BINARY):
                    if fragments is not None:
                        self._protocol_error(conn, "new data frame inside a fragmented message")
                        break
                    fragments = [frame.payload]
                    message_opcode = frame.opcode
                else:
                    self._protocol_error(conn, f"reserved opcode {frame.opcode:#x}")
                    break
                if frame.fin:
                    data = b"".join(fragments)
                    fragments = None
                    self._on_client_message(conn, message_opcode, data)
        except (OSError, EOFError):
            pass

    def _protocol_error(self, conn: _WsConn, what: str) -> None:
        with self._cond:
            self.protocol_errors.append(f"{conn!r}: {what}")
        with contextlib.suppress(OSError):
            conn.send_close(1002, what[:100])

    def _on_client_message(self, conn: _WsConn, opcode: int, data: bytes) -> None:
        now = time.monotonic()
        with self._cond:
            if conn.state == "silent":
                return
        try:
            message: Any = json.loads(data.decode("utf-8")) if opcode == OP_TEXT else data
        except ValueError:
            message = data.decode("utf-8", errors="replace")
        with self._cond:
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                envelope_id = message["envelope_id"]
                payload = message.get("payload")
                ack = Ack(
                    envelope_id=envelope_id,
                    sent_at=self._pushed.get(envelope_id, math.nan),
                    acked_at=now,
                    payload=payload if isinstance(payload, dict) else None,
                )
                self.ack_log.append(ack)
                self.acks.setdefault(envelope_id, ack)
            else:
                self.client_messages.append(message)
            self._cond.notify_all()

    def _close_conn(self, conn: _WsConn) -> None:
        """Close from any thread: FIN (or, if a reset was requested, just wake the reader)."""
        with self._cond:
            conn.state = "closed"
            if conn.closed_at is None:
                conn.closed_at = time.monotonic()
            self._cond.notify_all()
        # SHUT_RD wakes the reader thread without sending anything; it then sends the RST.
        _shutdown(conn.sock, socket.SHUT_RD if conn.reset_requested else socket.SHUT_RDWR)

    def _finish_conn(self, conn: _WsConn) -> None:
        """Run by the reader thread when it leaves: the socket is torn down here."""
        with self._cond:
            conn.state = "closed"
            if conn.closed_at is None:
                conn.closed_at = time.monotonic()
            reset = conn.reset_requested
            self._cond.notify_all()
        if reset:
            # A real close() with SO_LINGER 0 sends RST instead of FIN. The fd is only released
            # once the handler's buffered reader (which holds a reference) is closed too.
            try:
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if conn.rfile is not None:
                    conn.rfile.close()
                conn.sock.close()
            except OSError:
                pass
        else:
            _shutdown(conn.sock)
        conn.finished.set()
        logger.debug("fake slack: websocket %s closed", conn)

    # -- Socket Mode: test controls --------------------------------------------

    def live_connections(self) -> int:
        """Connections that are open and accept pushes."""
        with self._cond:
            return sum(1 for c in self._conns if c.state == "open")

    def open_connections(self) -> int:
        """Connections not closed yet, whatever their state: what Slack's limit counts."""
        with self._cond:
            return sum(1 for c in self._conns if c.state != "closed")

    def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        """Until ``connections_opened >= count`` and a connection is live (hello sent)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (
                self.connections_opened >= count and any(c.state == "open" for c in self._conns)
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected >= {count} Socket Mode connection(s) with one live within "
                        f"{timeout}s; opened={self.connections_opened}, "
                        f"connections={self._conns}, "
                        f"apps.connections.open calls={self._count('apps.connections.open')}"
                    )
                self._cond.wait(remaining)

    def wait_disconnected(self, timeout: float = 5.0) -> None:
        """Until no connection is live (e.g. after the client closed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(c.state in ("open", "disconnecting") for c in self._conns):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"connections still live after {timeout}s: {self._conns}")
                self._cond.wait(remaining)

    def _count(self, method: str) -> int:
        return sum(1 for c in self.calls if c.method == method)

    def _newest_open(self) -> _WsConn:
        with self._cond:
            for conn in reversed(self._conns):
                if conn.state == "open":
                    return conn
            raise AssertionError(
                "no live Socket Mode connection to push to "
                f"(opened={self.connections_opened}, connections={self._conns})"
            )

    def _send(self, message: dict[str, Any]) -> None:
        conn = self._newest_open()
        envelope_id = message.get("envelope_id")
        data = _json_bytes(message)
        if isinstance(envelope_id, str):
            with self._cond:
                self._pushed[envelope_id] = time.monotonic()
        try:
            conn.send_frame(OP_TEXT, data)
        except OSError as exc:
            self._close_conn(conn)
            raise AssertionError(f"push on {conn!r} failed: {exc}") from exc

    def push_raw(self, message: dict[str, Any]) -> None:
        """Send any JSON object as a text frame on the newest live connection."""
        self._send(message)

    # -- Slack Connect -------------------------------------------------------------

    def add_external_user(self, user: str, team: str) -> None:
        """`user` is a person of another team (an organisation sharing a channel with ours)."""
        with self._cond:
            self.external_users[user] = team

    def share_channel(self, channel: str) -> None:
        """`channel` is a Slack Connect channel: shared with other organisations."""
        with self._cond:
            self.shared_channels.add(channel)

    def team_of(self, user: str) -> str:
        """The team a person belongs to: another one for an external user, else this one."""
        with self._cond:
            return self.external_users.get(user, self.team_id)

    def _with_teams(self, event: dict[str, Any]) -> dict[str, Any]:
        """A person's message as Slack delivers it, saying whose it is.

        docs.slack.dev: a message event carries `team` (the example payloads of
        message.channels and of the Events API wrapper); an `app_mention` or `message`
        from someone of another workspace or organisation also `user_team` and
        `source_team` (@slack/types AppMentionEvent: "can exist when the user who
        mentioned this bot is in a different workspace/org"). Unconfirmed: that
        `team` then names the person's team too (the fake says it does).
        """
        user = event.get("user")
        if event.get("type") not in ("message", "app_mention") or not isinstance(user, str):
            return event
        if event.get("bot_id") or event.get("subtype"):
            return event
        team = self.team_of(user)
        said = {"team": team, **event}
        if team != self.team_id:
            said = {"user_team": team, "source_team": team, **said}
        return said

    def event_payload(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        """The Events API's outer event (docs.slack.dev, "Events API": the wrapper): what a
        Socket Mode envelope carries as its payload and what HTTP mode POSTs as JSON.

        Remembers a pushed message (see :meth:`remember_pushed`), as delivering it would.
        """
        alphabet = string.ascii_uppercase + string.digits
        self.remember_pushed(event)
        event = self._with_teams(event)
        with self._cond:
            shared = event.get("channel") in self.shared_channels
        return {
            "token": "verification",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or "Ev" + "".join(secrets.choice(alphabet) for _ in range(10)),
            "event_time": int(self.clock()),
            "authorizations": [
                {"team_id": self.team_id, "user_id": self.bot_user_id, "is_bot": True}
            ],
            # docs.slack.dev, the Events API wrapper: whether the event's channel is
            # shared with other organisations (Slack Connect).
            "is_ext_shared_channel": shared,
        }

    def _event_envelope(
        self, event: dict[str, Any], event_id: str | None, retry_attempt: int, retry_reason: str
    ) -> dict[str, Any]:
        return {
            "envelope_id": str(uuid.uuid4()),
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
            "payload": self.event_payload(event, event_id),
        }

    def push_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Deliver one Events API envelope; returns its envelope_id.

        A ``message``/``app_mention`` event from a channel makes the bot a member of it, and
        its message (``channel`` + ``ts``) exists from then on (e.g. as a thread's parent).
        """
        envelope = self._event_envelope(event, event_id, retry_attempt, retry_reason)
        self._send(envelope)
        return str(envelope["envelope_id"])

    def push_event_everywhere(self, event: dict[str, Any]) -> list[str]:
        """Deliver one event on every live connection, each in its own envelope (as Slack
        retries a delivery on another connection, i.e. another replica); their ids."""
        with self._cond:
            conns = [c for c in self._conns if c.state == "open"]
        ids = []
        for conn in conns:
            envelope = self._event_envelope(event, None, 0, "")
            with self._cond:
                self._pushed[str(envelope["envelope_id"])] = time.monotonic()
            conn.send_frame(OP_TEXT, _json_bytes(envelope))
            ids.append(str(envelope["envelope_id"]))
        return ids

    def push_event_at_random(self, event: dict[str, Any], rng: random.Random) -> str:
        """Deliver one event on one live connection chosen by ``rng`` (as Slack spreads
        events over an app's connections, i.e. its replicas); its envelope_id."""
        with self._cond:
            conns = [c for c in self._conns if c.state == "open"]
        if not conns:
            raise AssertionError(f"no live Socket Mode connection to push to: {self._conns}")
        conn = rng.choice(conns)
        envelope = self._event_envelope(event, None, 0, "")
        envelope_id = str(envelope["envelope_id"])
        with self._cond:
            self._pushed[envelope_id] = time.monotonic()
        try:
            conn.send_frame(OP_TEXT, _json_bytes(envelope))
        except OSError as exc:
            self._close_conn(conn)
            raise AssertionError(f"push on {conn!r} failed: {exc}") from exc
        return envelope_id

    def push_events(self, events: list[dict[str, Any]]) -> list[str]:
        """Deliver many Events API envelopes back to back in ONE socket send, as a backlog
        arrives after a reconnect; returns their envelope_ids (each trackable by wait_ack).
        """
        envelopes = [self._event_envelope(event, None, 0, "") for event in events]
        ids = [str(envelope["envelope_id"]) for envelope in envelopes]
        data = b"".join(encode_frame(OP_TEXT, _json_bytes(envelope)) for envelope in envelopes)
        conn = self._newest_open()
        with self._cond:
            now = time.monotonic()
            for envelope_id in ids:
                self._pushed[envelope_id] = now
        try:
            with conn.write_lock:
                conn.sock.sendall(data)
        except OSError as exc:
            self._close_conn(conn)
            raise AssertionError(f"push on {conn!r} failed: {exc}") from exc
        return ids

    def push_slash_command(
        self,
        text: str,
        *,
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        channel_id: str = "C0DEPLOY",
        command: str = "/igor",
    ) -> str:
        envelope_id = str(uuid.uuid4())
        payload = self.slash_payload(
            text, user_id=user_id, user_name=user_name, channel_id=channel_id, command=command
        )
        self._send(
            {
                "envelope_id": envelope_id,
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": payload,
            }
        )
        return envelope_id

    def slash_payload(
        self,
        text: str,
        *,
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        channel_id: str = "C0DEPLOY",
        command: str = "/igor",
    ) -> dict[str, str]:
        """A slash command's fields (docs.slack.dev, "Implementing slash commands"): what a
        Socket Mode envelope carries and what HTTP mode POSTs, form-encoded."""
        return {
            "token": "verification",
            # docs.slack.dev, slash commands: the team of whoever typed it.
            "team_id": self.team_of(user_id),
            "team_domain": "acme",
            "channel_id": channel_id,
            "channel_name": "deploys",
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": self.response_url(),
            "trigger_id": f"{secrets.randbelow(10**9)}.{secrets.token_hex(8)}",
        }

    def interactive_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """An interactive payload; a `block_actions` one says whose click it is as Slack's
        does (docs.slack.dev block_actions payload: `user.team_id`, and `team`), unless the
        test wrote those itself."""
        if payload.get("type") == "block_actions" and isinstance(payload.get("user"), dict):
            user = dict(payload["user"])
            user.setdefault("team_id", self.team_of(str(user.get("id", ""))))
            payload = {"team": {"id": self.team_id, "domain": "acme"}, **payload, "user": user}
        return payload

    def push_interactive(self, payload: dict[str, Any]) -> str:
        """An interactive payload (see :meth:`interactive_payload`) over Socket Mode."""
        envelope_id = str(uuid.uuid4())
        self._send(
            {
                "envelope_id": envelope_id,
                "type": "interactive",
                "accepts_response_payload": False,
                "payload": self.interactive_payload(payload),
            }
        )
        return envelope_id

    def wait_acks(self, envelope_ids: Iterable[str], timeout: float = 5.0) -> list[Ack]:
        """Until every envelope in ``envelope_ids`` was acked (one deadline for all)."""
        wanted = list(envelope_ids)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                missing = [e for e in wanted if e not in self.acks]
                if not missing:
                    return [self.acks[e] for e in wanted]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{len(missing)} of {len(wanted)} envelope(s) not acked within "
                        f"{timeout}s (first missing: {missing[0]})"
                    )
                self._cond.wait(remaining)

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self.acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pushed = envelope_id in self._pushed
                    raise AssertionError(
                        f"no ack for envelope {envelope_id} within {timeout}s "
                        f"(pushed={pushed}, acks so far={list(self.acks)}, "
                        f"connections={self._conns})"
                    )
                self._cond.wait(remaining)
            return self.acks[envelope_id]

    def ping_and_wait(self, timeout: float = 5.0) -> None:
        """Ping the newest live connection and wait for the client's pong. A client reads
        its connection in order, so every frame pushed before was read by then."""
        conn = self._newest_open()
        payload = f"probe:{uuid.uuid4()}".encode()
        conn.send_frame(OP_PING, payload)
        deadline = time.monotonic() + timeout
        with self._cond:
            while payload not in conn.pongs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no pong to {payload!r} within {timeout}s on {conn!r}")
                self._cond.wait(remaining)

    def send_disconnect(
        self, reason: str = "refresh_requested", *, close_after: float = 1.0
    ) -> None:
        """Send a ``disconnect`` message on the newest live connection, then (after
        ``close_after`` seconds) a close frame and a TCP close, as Slack does.

        From the disconnect on, that connection takes no more pushes.
        """
        self._disconnect(self._newest_open(), reason, close_after=close_after)

    def _disconnect(self, conn: _WsConn, reason: str, *, close_after: float) -> None:
        with self._cond:
            conn.state = "disconnecting"
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}}
        try:
            conn.send_frame(OP_TEXT, _json_bytes(message))
        except OSError:
            self._close_conn(conn)
            return

        self._later(close_after, lambda: self._close_gracefully([conn], 1001, "disconnect"))

    def _later(self, delay: float, action: Callable[[], None]) -> None:
        """Run `action` on a thread of its own after `delay` seconds (unless the fake stops)."""

        def run() -> None:
            try:
                if not self._stopping.wait(delay):
                    action()
            finally:
                with self._cond:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name="fake-slack-later", daemon=True)
        with self._cond:
            self._threads.add(thread)
        thread.start()

    def _close_gracefully(self, conns: list[_WsConn], code: int, reason: str) -> None:
        """Close frames, then TCP once each client answered with its Close (RFC 6455 §5.5.1;
        §7.1.1: the server closes TCP first) or after CLOSE_WAIT seconds."""
        for conn in conns:
            with self._cond:
                silent = conn.state == "silent"  # nothing gets through
                if conn.state != "closed" and not silent:
                    conn.state = "disconnecting"
            if not silent:
                with contextlib.suppress(OSError):
                    conn.send_close(code, reason)
        deadline = time.monotonic() + CLOSE_WAIT
        for conn in conns:
            conn.finished.wait(max(0.0, deadline - time.monotonic()))  # the reader got the Close
            self._close_conn(conn)

    def send_close(self, code: int = 1001, reason: str = "going away") -> None:
        """Close the newest live connection with a Close frame and no ``disconnect`` first.
        Slack's docs do not say when it does that; RFC 6455 §5.5.1 lets any server, and a
        client answers with a Close of its own before the server closes TCP (§7.1.1)."""
        conn = self._newest_open()
        with self._cond:
            conn.state = "disconnecting"  # no more pushes
        self._later(0.0, lambda: self._close_gracefully([conn], code, reason))

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are onto the newest live connection: frames the real Slack never
        sends (masked, reserved bits, lengths no message has), to test the client's RFC 6455
        checks. Every frame ``data`` holds is sent in one write."""
        conn = self._newest_open()
        with conn.write_lock:
            conn.sock.sendall(data)

    def disable_socket_mode(self) -> None:
        """Socket Mode is turned off in the app's settings: every live connection gets the
        ``link_disabled`` disconnect message (api.slack.com/apis/connections/socket-implement,
        "Handle disconnects gracefully") and is closed; later connections get it at once.
        Unconfirmed: what apps.connections.open answers while it is off (the fake still hands
        out URLs), and how soon Slack closes after the message (the fake: 0.2 s).
        """
        with self._cond:
            self.socket_mode = False
            conns = [c for c in self._conns if c.state in ("open", "disconnecting")]
        for conn in conns:
            self._disconnect(conn, "link_disabled", close_after=0.2)

    def go_silent(self) -> None:
        """The newest live connection goes half-dead, as after a network partition: the TCP
        socket stays open, but the fake sends nothing on it (no events, no pings, no pongs)
        and ignores what arrives (acks included). New connections work normally.
        """
        conn = self._newest_open()
        with self._cond:
            conn.state = "silent"
            self._cond.notify_all()

    def silent_connections(self) -> int:
        """Connections made silent (by go_silent or drop_connections) that are still open."""
        with self._cond:
            return sum(1 for c in self._conns if c.state == "silent")

    def drop_connections(self, *, mode: Literal["reset", "close", "silent"] = "reset") -> None:
        """Abruptly lose every live connection, without a close frame.

        ``reset``: TCP RST (the client's recv fails at once); ``close``: TCP FIN;
        ``silent``: keep the socket but stop answering (no pongs, acks ignored), like a
        half-open connection; the client notices only by its ping timeout.
        """
        with self._cond:
            conns = [c for c in self._conns if c.state in ("open", "disconnecting")]
            for conn in conns:
                if mode == "silent":
                    conn.state = "silent"
                else:
                    conn.reset_requested = mode == "reset"
            self._cond.notify_all()
        if mode == "silent":
            return
        for conn in conns:
            self._close_conn(conn)
        deadline = time.monotonic() + _JOIN_BUDGET
        for conn in conns:
            conn.finished.wait(max(0.0, deadline - time.monotonic()))
