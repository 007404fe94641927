"""Prove tests/fakes/slack.py against the real slack_sdk clients (and a raw WebSocket client)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.builtin.internals import _build_data_frame_for_sending
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from tests.fakes.clock import FakeClock
from tests.fakes.slack import (
    CLOSE_WAIT,
    DEFAULT_BOT_SCOPES,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    ClientClose,
    FakeSlack,
    Frame,
    encode_frame,
    read_frame,
)

pytestmark = pytest.mark.timeout(20)

PING_INTERVAL = 0.3  # SocketModeClient ping_interval used below: fast failure detection


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # slack_sdk honours *_PROXY env vars (and ignores NO_PROXY); the fake is loopback only.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        yield f


@pytest.fixture
def sm_fake() -> Iterator[FakeSlack]:
    # Server pings (as Slack sends) keep SocketModeClient.close() well under its 3 s worst case.
    with FakeSlack(server_ping_interval=0.2) as f:
        yield f


def web(fake: FakeSlack, token: str | None = None, **kwargs: Any) -> WebClient:
    return WebClient(token=token or fake.bot_token, base_url=fake.api_url, timeout=5, **kwargs)


# ---------------------------------------------------------------------------
# Web API


def test_auth_test_and_recording(fake: FakeSlack) -> None:
    assert fake.api_url.startswith("http://127.0.0.1:")
    assert fake.api_url.endswith("/api/")
    resp = web(fake).auth_test()
    assert resp.data == {
        "ok": True,
        "url": "https://acme.slack.com/",
        "team": "Acme",
        "user": "igor",
        "team_id": "T0001",
        "user_id": "UIGOR",
        "bot_id": "BIGOR",
        "is_enterprise_install": False,
    }
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    (call,) = fake.calls_to("auth.test")
    assert call.token == "xoxb-test-bot"
    assert call.status == 200
    assert call.error is None
    assert call.path == "/api/auth.test"
    assert call.at <= time.monotonic()
    assert "xoxb-test-bot" not in repr(call)


def test_chat_post_message_json_and_form(fake: FakeSlack) -> None:
    fake.join("C0DEPLOY")
    client = web(fake)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*deploying*"}}]
    first = client.chat_postMessage(channel="C0DEPLOY", text="deploying", blocks=blocks)
    second = client.chat_postMessage(channel="C0DEPLOY", text="done", thread_ts=first["ts"])
    assert first["channel"] == "C0DEPLOY"
    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["user"] == "UIGOR"
    assert first["message"]["bot_id"] == "BIGOR"
    assert first["message"]["text"] == "deploying"
    assert first["message"]["blocks"] == blocks
    # The form-encoded way: blocks as a JSON string are decoded in Call.params.
    client.api_call(
        "chat.postMessage",
        params={"channel": "C0DEPLOY", "text": "form", "blocks": json.dumps(blocks)},
    )
    calls = fake.wait_for_calls("chat.postMessage", 3)
    assert [c.params["text"] for c in calls] == ["deploying", "done", "form"]
    assert calls[0].params["blocks"] == blocks
    assert calls[2].params["blocks"] == blocks
    assert calls[1].params["thread_ts"] == first["ts"]
    assert "token" not in calls[0].params
    assert fake.post_message_count() == 3
    assert calls[0].response["ts"] == first["ts"]


def test_post_message_validation(fake: FakeSlack) -> None:
    fake.join("C0DEPLOY")
    with pytest.raises(SlackApiError) as exc, pytest.warns(UserWarning, match="`text`"):
        web(fake).chat_postMessage(channel="C0DEPLOY")
    assert exc.value.response["error"] == "no_text"
    assert fake.calls_to("chat.postMessage")[0].error == "no_text"


def test_other_methods(fake: FakeSlack) -> None:
    fake.join("C0DEPLOY")
    client = web(fake)
    posted = client.chat_postMessage(channel="C0DEPLOY", text="v1")
    updated = client.chat_update(channel="C0DEPLOY", ts=posted["ts"], text="v2")
    assert (updated["channel"], updated["ts"], updated["text"]) == ("C0DEPLOY", posted["ts"], "v2")

    eph = client.chat_postEphemeral(channel="C0DEPLOY", user="U0ALICE", text="psst")
    assert float(eph["message_ts"]) > float(posted["ts"])

    assert client.reactions_add(channel="C0DEPLOY", timestamp=posted["ts"], name="eyes")["ok"]
    with pytest.raises(SlackApiError) as exc:
        client.reactions_add(channel="C0DEPLOY", timestamp=posted["ts"], name="eyes")
    assert exc.value.response["error"] == "already_reacted"

    user = client.users_info(user="U0ALICE")["user"]
    assert user["id"] == "U0ALICE"
    assert user["name"] == "alice"
    assert user["real_name"] == "Alice"
    assert user["is_bot"] is False

    channel = client.conversations_info(channel="C0DEPLOY")["channel"]
    assert channel == {
        "id": "C0DEPLOY",
        "name": "deploys",
        "is_channel": True,
        "is_private": False,
        "is_member": True,
    }
    assert fake.calls_to("users.info")[0].params == {"user": "U0ALICE"}
    assert fake.calls_to("chat.update")[0].params["ts"] == posted["ts"]


def test_get_with_query_string(fake: FakeSlack) -> None:
    resp = requests.get(
        fake.api_url + "conversations.info",
        params={"channel": "C0DEPLOY"},
        headers={"Authorization": f"Bearer {fake.bot_token}"},
        timeout=5,
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.json()["channel"]["id"] == "C0DEPLOY"
    # Legacy token-in-query also works, and is not kept in params.
    resp = requests.get(
        fake.api_url + "users.info", params={"user": "U0BOB", "token": fake.bot_token}, timeout=5
    )
    assert resp.json()["user"]["name"] == "bob"
    call = fake.calls_to("users.info")[0]
    assert call.params == {"user": "U0BOB"}
    assert call.token == fake.bot_token


def test_bad_tokens(fake: FakeSlack) -> None:
    def error_of(client: WebClient, method: str) -> str:
        with pytest.raises(SlackApiError) as exc:
            client.api_call(method)
        return str(exc.value.response["error"])

    assert error_of(web(fake, token="xoxb-wrong"), "auth.test") == "invalid_auth"
    assert error_of(web(fake, token=fake.app_token), "auth.test") == "not_allowed_token_type"
    assert error_of(web(fake, token=fake.app_token), "chat.postMessage") == "not_allowed_token_type"
    no_token = WebClient(base_url=fake.api_url, timeout=5)
    assert error_of(no_token, "auth.test") == "invalid_auth"
    with pytest.raises(SlackApiError) as exc:
        web(fake).apps_connections_open(app_token=fake.bot_token)
    assert exc.value.response["error"] == "invalid_auth"
    assert [c.error for c in fake.calls] == [
        "invalid_auth",
        "not_allowed_token_type",
        "not_allowed_token_type",
        "invalid_auth",
        "invalid_auth",
    ]


def test_apps_connections_open(fake: FakeSlack) -> None:
    url = web(fake).apps_connections_open(app_token=fake.app_token)["url"]
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port) == ("ws", "127.0.0.1", fake.port)
    assert parts.path == "/link/"
    query = parse_qs(parts.query)
    assert query["app_id"] == ["A0001"]
    assert len(query["ticket"][0]) == 36
    assert fake.calls_to("apps.connections.open")[0].token == fake.app_token


def test_token_rotation(fake: FakeSlack) -> None:
    old = web(fake)
    assert old.auth_test()["ok"]
    fake.bot_token = "xoxb-rotated"
    with pytest.raises(SlackApiError) as exc:
        old.auth_test()
    assert exc.value.response["error"] == "invalid_auth"
    assert web(fake, token="xoxb-rotated").auth_test()["user_id"] == "UIGOR"


def test_unknown_method(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as exc:
        web(fake).api_call("chat.doesNotExist")
    assert exc.value.response["error"] == "unknown_method"


def test_set_handler(fake: FakeSlack) -> None:
    fake.set_handler("chat.getPermalink", lambda p: {"permalink": f"https://x/{p['channel']}"})
    assert (
        web(fake).chat_getPermalink(channel="C1", message_ts="1.2")["permalink"] == "https://x/C1"
    )


def test_rate_limited_raises_without_retry_handler(fake: FakeSlack) -> None:
    fake.join("C0DEPLOY")
    fake.fail_next("chat.postMessage", retry_after=7)
    client = web(fake)  # default handlers retry connection errors only
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0DEPLOY", text="hi")
    assert exc.value.response.status_code == 429
    assert exc.value.response.headers["Retry-After"] == "7"
    assert exc.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C0DEPLOY", text="hi")["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]


def test_rate_limit_retry_handler_honours_retry_after(fake: FakeSlack) -> None:
    fake.join("C0DEPLOY")
    fake.fail_next("chat.postMessage", retry_after=1)
    client = web(fake, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    resp = client.chat_postMessage(channel="C0DEPLOY", text="hi")
    assert resp["ok"]
    first, second = fake.calls_to("chat.postMessage")
    assert first.status == 429
    assert second.status == 200
    # slack_sdk sleeps int(Retry-After) + random() in [0, 1)
    assert 1.0 <= second.at - first.at < 2.5


def test_fail_next_with_error(fake: FakeSlack) -> None:
    fake.fail_next("reactions.add", error="channel_not_found", count=2)
    client = web(fake)
    for _ in range(2):
        with pytest.raises(SlackApiError) as exc:
            client.reactions_add(channel="C0", timestamp="1.1", name="eyes")
        assert exc.value.response.status_code == 200
        assert exc.value.response["error"] == "channel_not_found"
    assert client.reactions_add(channel="C0", timestamp="1.1", name="eyes")["ok"]


def test_response_url(fake: FakeSlack) -> None:
    url = fake.response_url()
    assert url.startswith(f"{fake.base_url}/response/")
    resp = WebhookClient(url, timeout=5).send(text="done", response_type="in_channel")
    assert (resp.status_code, resp.body) == (200, "ok")
    (call,) = fake.wait_for_calls("response_url")
    assert call.params == {"text": "done", "response_type": "in_channel"}
    assert call.path == urlsplit(url).path
    bad = requests.post(f"{fake.base_url}/response/nope", json={"text": "x"}, timeout=5)
    assert bad.status_code == 404
    fake.fail_next("response_url", status=500)
    assert requests.post(url, json={"text": "x"}, timeout=5).status_code == 500


def test_wait_for_calls_times_out_with_useful_message(fake: FakeSlack) -> None:
    web(fake).auth_test()
    start = time.monotonic()
    with pytest.raises(AssertionError, match=r"chat\.postMessage.*got 0.*auth\.test"):
        fake.wait_for_calls("chat.postMessage", timeout=0.2)
    assert time.monotonic() - start < 1.0


def test_wait_for_calls_wakes_up_on_call(fake: FakeSlack) -> None:
    timer = threading.Timer(0.2, lambda: web(fake).auth_test())
    timer.start()
    try:
        calls = fake.wait_for_calls("auth.test", timeout=5)
    finally:
        timer.join(5)
    assert len(calls) == 1


# ---------------------------------------------------------------------------
# WebSocket protocol, with a raw client


class RawWs:
    """Minimal WebSocket client: slack_sdk's own frame builder (masked), our frame reader."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.port is not None
        self.sock = socket.create_connection(("127.0.0.1", parts.port), timeout=5)
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.rfile = self.sock.makefile("rb")
        self.status = int(self.rfile.readline().split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.rfile.readline().strip()) != b"":
            name, _, value = line.decode().partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def send(self, opcode: int, payload: bytes = b"", *, fin: bool = True) -> None:
        self.sock.sendall(_build_data_frame_for_sending(payload, opcode, fin=int(fin)))

    def recv(self) -> Frame:
        return read_frame(self.rfile.read)

    def recv_json(self) -> dict[str, Any]:
        frame = self.recv()
        assert frame.opcode == OP_TEXT, frame
        data: dict[str, Any] = json.loads(frame.payload)
        return data

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


def ws_url(fake: FakeSlack) -> str:
    return str(web(fake).apps_connections_open(app_token=fake.app_token)["url"])


@contextlib.contextmanager
def raw_ws(fake: FakeSlack) -> Iterator[RawWs]:
    ws = RawWs(ws_url(fake))
    try:
        yield ws
    finally:
        ws.close()


def test_frame_length_encodings() -> None:
    assert encode_frame(OP_TEXT, b"x" * 125)[:2] == b"\x81\x7d"
    assert encode_frame(OP_TEXT, b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert encode_frame(OP_TEXT, b"x" * 65535)[:4] == b"\x81\x7e\xff\xff"
    assert encode_frame(OP_TEXT, b"x" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")
    assert encode_frame(OP_PONG, b"", fin=False) == b"\x0a\x00"
    for size in (0, 1, 125, 126, 65535, 65536, 100_000):
        payload = os.urandom(size)
        # slack_sdk's (masked, client-side) encoder against our decoder
        data = _build_data_frame_for_sending(payload, OP_BINARY)
        pos = 0

        def read(n: int, data: bytes = data) -> bytes:
            nonlocal pos
            chunk = data[pos : pos + n]
            pos += n
            return chunk

        frame = read_frame(read)
        assert frame == Frame(fin=True, opcode=OP_BINARY, masked=True, payload=payload)
        assert pos == len(data)


def test_handshake_hello_and_accept_key(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        assert ws.status == 101
        assert ws.headers["upgrade"].lower() == "websocket"
        assert ws.headers["connection"].lower() == "upgrade"
        expected = base64.b64encode(
            hashlib.sha1((ws.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        assert ws.headers["sec-websocket-accept"] == expected
        hello = ws.recv_json()
        assert hello == {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "fake", "approximate_connection_time": 3600},
            "connection_info": {"app_id": "A0001"},
        }
        fake.wait_connected()
        assert fake.connections_opened == 1


def test_handshake_rejections(fake: FakeSlack) -> None:
    bad = RawWs(f"ws://127.0.0.1:{fake.port}/link/?ticket=not-issued&app_id=A0001")
    try:
        assert bad.status == 401
    finally:
        bad.close()
    plain = requests.get(f"{fake.base_url}/link/?ticket=x", timeout=5)
    assert plain.status_code == 400
    assert fake.connections_opened == 0
    with pytest.raises(AssertionError, match="no live Socket Mode connection"):
        fake.push_event({"type": "app_mention"})
    with pytest.raises(AssertionError, match="expected >= 1 Socket Mode"):
        fake.wait_connected(timeout=0.1)


def test_ping_fragments_and_close(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        ws.recv_json()  # hello
        ws.send(OP_PING, b"are-you-there")
        assert ws.recv() == Frame(fin=True, opcode=OP_PONG, masked=False, payload=b"are-you-there")
        envelope_id = fake.push_event({"type": "message", "text": "hi"})
        assert ws.recv_json()["envelope_id"] == envelope_id
        ack = json.dumps({"envelope_id": envelope_id, "payload": {"text": "got it"}}).encode()
        ws.send(OP_TEXT, ack[:10], fin=False)
        ws.send(OP_PING, b"mid")  # control frames may interleave with fragments
        ws.send(OP_CONTINUATION, ack[10:20], fin=False)
        ws.send(OP_CONTINUATION, ack[20:], fin=True)
        assert ws.recv().payload == b"mid"
        got = fake.wait_ack(envelope_id)
        assert got.payload == {"text": "got it"}
        assert got.sent_at <= got.acked_at
        ws.send(OP_TEXT, b'{"type": "not-an-ack"}')
        ws.send(OP_CLOSE, (1000).to_bytes(2, "big") + b"bye")
        close = ws.recv()
        assert close.opcode == OP_CLOSE
        assert close.payload[:2] == (1000).to_bytes(2, "big")
        assert ws.rfile.read(1) == b""  # then the server closes TCP
    fake.wait_disconnected()
    assert fake.client_messages == [{"type": "not-an-ack"}]
    assert fake.protocol_errors == []


def test_send_disconnect_raw(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        ws.recv_json()
        fake.send_disconnect("warning", close_after=0.3)
        sent = time.monotonic()
        assert ws.recv_json() == {
            "type": "disconnect",
            "reason": "warning",
            "debug_info": {"host": "fake"},
        }
        assert fake.live_connections() == 0  # takes no more pushes
        with pytest.raises(AssertionError, match="no live Socket Mode connection"):
            fake.push_event({"type": "app_mention"})
        close = ws.recv()
        assert close.opcode == OP_CLOSE
        assert close.payload[:2] == (1001).to_bytes(2, "big")
        assert time.monotonic() - sent >= 0.25
        assert ws.rfile.read(1) == b""


def test_a_close_from_the_fake_waits_for_the_clients_close(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        ws.recv_json()
        fake.send_close(1001, "going away")
        close = ws.recv()
        assert (close.opcode, close.payload) == (
            OP_CLOSE,
            (1001).to_bytes(2, "big") + b"going away",
        )
        assert fake.live_connections() == 0  # no more pushes once the Close is sent
        ws.sock.settimeout(CLOSE_WAIT / 2)
        with pytest.raises(TimeoutError):
            ws.sock.recv(1)  # TCP stays open: the server waits for the client's Close
        ws.sock.settimeout(5)
        ws.send(OP_CLOSE, (1001).to_bytes(2, "big"))
        assert ws.sock.recv(1) == b""  # then closes TCP (RFC 6455 §7.1.1)
    assert fake.close_frames == [ClientClose(1, 1001, "")]


def test_a_client_that_never_answers_a_close_is_cut_off(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        ws.recv_json()
        started = time.monotonic()
        fake.send_close(1001)
        assert ws.recv().opcode == OP_CLOSE
        assert ws.rfile.read(1) == b""
        assert CLOSE_WAIT * 0.9 <= time.monotonic() - started < CLOSE_WAIT + 2
    assert fake.close_frames == []


@pytest.mark.parametrize("hello_first", [False, True])
def test_more_connections_than_an_app_may_hold_are_turned_away(
    fake: FakeSlack, hello_first: bool
) -> None:
    fake.max_connections = 2
    fake.hello_before_refusal = hello_first
    with raw_ws(fake) as first, raw_ws(fake) as second, raw_ws(fake) as third:
        assert first.recv_json()["type"] == second.recv_json()["type"] == "hello"
        if hello_first:
            assert third.recv_json()["type"] == "hello"
        assert third.recv_json() == {
            "type": "disconnect", "reason": "too_many_websockets", "debug_info": {"host": "fake"},
        }  # fmt: skip
        close = third.recv()
        assert (close.opcode, close.payload[:2]) == (OP_CLOSE, (1001).to_bytes(2, "big"))
        third.send(OP_CLOSE, (1001).to_bytes(2, "big"))
        assert third.rfile.read(1) == b""
        assert (fake.connections_opened, fake.connections_refused) == (2, 1)
        envelope_id = fake.push_event({"type": "app_mention", "text": "to a kept one"})
        assert second.recv_json()["envelope_id"] == envelope_id  # never to the refused one
    fake.wait_disconnected()
    assert fake.open_connections() == 0


def test_socket_mode_turned_off_disconnects_every_connection(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        ws.recv_json()
        fake.disable_socket_mode()
        assert ws.recv_json()["reason"] == "link_disabled"
        assert ws.recv().opcode == OP_CLOSE
        with raw_ws(fake) as late:  # a URL is still handed out (unconfirmed), but
            assert late.recv_json()["reason"] == "link_disabled"  # no hello comes
            assert late.recv().opcode == OP_CLOSE
    assert fake.connections_opened == 1
    assert fake.connections_refused == 1


def test_send_raw_writes_bytes_as_they_are(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        ws.recv_json()
        fake.send_raw(encode_frame(OP_TEXT, b"{}", mask=b"abcd") + b"\xc1\x00")
        assert ws.recv() == Frame(fin=True, opcode=OP_TEXT, masked=True, payload=b"{}")
        assert ws.rfile.read(2) == b"\xc1\x00"


def test_unmasked_client_frame_is_a_protocol_error(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        ws.recv_json()
        ws.sock.sendall(encode_frame(OP_TEXT, b'{"envelope_id": "x"}'))  # no mask
        close = ws.recv()
        assert close.opcode == OP_CLOSE
        assert close.payload[:2] == (1002).to_bytes(2, "big")
    assert fake.protocol_errors
    assert fake.acks == {}


def test_large_raw_frame_uses_64_bit_length(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        ws.recv_json()
        fake.push_raw({"type": "blob", "data": "y" * 100_000})
        header = ws.rfile.read(10)
        length = int.from_bytes(header[2:], "big")
        assert header[:2] == b"\x81\x7f"
        body = ws.rfile.read(length)
        assert json.loads(body) == {"type": "blob", "data": "y" * 100_000}


def test_stop_is_quick_and_leaves_no_threads() -> None:
    fake = FakeSlack(server_ping_interval=0.1).start()
    session = requests.Session()
    ws: RawWs | None = None
    try:
        assert session.post(fake.api_url + "auth.test", timeout=5).json()["ok"] is False
        ws = RawWs(ws_url(fake))
        ws.recv_json()
        fake.wait_connected()
        start = time.monotonic()
        fake.stop()
        assert time.monotonic() - start < 2.5
        assert [t.name for t in threading.enumerate() if t.name.startswith("fake-slack")] == []
        ws.sock.settimeout(2)
        ws.rfile.read()  # reads up to EOF (TimeoutError if the server kept the socket open)
        assert ws.rfile.read(1) == b""
    finally:
        session.close()
        if ws is not None:
            ws.close()
        fake.stop()


# ---------------------------------------------------------------------------
# The real slack_sdk SocketModeClient


class Recorder:
    """A socket_mode_request_listener that acks every request and remembers it."""

    def __init__(self, ack_payload: dict[str, Any] | None = None) -> None:
        self.requests: list[SocketModeRequest] = []
        self.message_types: list[str | None] = []
        self.ack_payload = ack_payload
        self._cond = threading.Condition()

    def on_request(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id, payload=self.ack_payload)
        )
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()

    def on_message(
        self, client: BaseSocketModeClient, message: dict[str, Any], raw: str | None
    ) -> None:
        with self._cond:
            self.message_types.append(message.get("type"))

    def wait(self, count: int, timeout: float = 5.0) -> list[SocketModeRequest]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            assert ok, f"listener got {len(self.requests)} of {count} requests"
            return list(self.requests)


@contextlib.contextmanager
def socket_mode(fake: FakeSlack, recorder: Recorder) -> Iterator[SocketModeClient]:
    client = SocketModeClient(
        app_token=fake.app_token,
        web_client=web(fake),
        ping_interval=PING_INTERVAL,
        auto_reconnect_enabled=True,
    )
    try:
        client.socket_mode_request_listeners.append(recorder.on_request)
        client.message_listeners.append(recorder.on_message)
        client.connect()
        fake.wait_connected()
        yield client
    finally:
        client.close()


def test_events_api_roundtrip(sm_fake: FakeSlack) -> None:
    rec = Recorder()
    with socket_mode(sm_fake, rec) as client:
        assert client.is_connected()
        event = {"type": "app_mention", "user": "U0ALICE", "text": "<@UIGOR> deploy", "ts": "1.2"}
        envelope_id = sm_fake.push_event(
            event, event_id="Ev0001", retry_attempt=1, retry_reason="x"
        )
        ack = sm_fake.wait_ack(envelope_id)
        (req,) = rec.wait(1)
        assert req.type == "events_api"
        assert req.envelope_id == envelope_id
        assert req.accepts_response_payload is False
        assert (req.retry_attempt, req.retry_reason) == (1, "x")
        # As Slack delivers it: saying whose the message is (the poster's team).
        assert req.payload["event"] == {**event, "team": sm_fake.team_id}
        assert req.payload["is_ext_shared_channel"] is False
        assert req.payload["event_id"] == "Ev0001"
        assert req.payload["type"] == "event_callback"
        assert req.payload["team_id"] == "T0001"
        assert req.payload["api_app_id"] == "A0001"
        assert req.payload["authorizations"][0]["user_id"] == "UIGOR"
        assert abs(req.payload["event_time"] - time.time()) < 60
        assert ack.payload is None
        assert 0 <= ack.acked_at - ack.sent_at < 5
        assert "hello" in rec.message_types
        generated = sm_fake.push_event({"type": "app_mention"})
        sm_fake.wait_ack(generated)
        assert rec.wait(2)[1].payload["event_id"].startswith("Ev")
    assert sm_fake.calls_to("apps.connections.open")[0].token == sm_fake.app_token


def test_slash_command_and_response_url(sm_fake: FakeSlack) -> None:
    rec = Recorder(ack_payload={"text": "on it"})
    with socket_mode(sm_fake, rec):
        envelope_id = sm_fake.push_slash_command("deploy web", user_id="U0BOB", user_name="bob")
        ack = sm_fake.wait_ack(envelope_id)
        assert ack.payload == {"text": "on it"}
        (req,) = rec.wait(1)
        assert req.type == "slash_commands"
        assert req.accepts_response_payload is True
        payload = req.payload
        assert (payload["command"], payload["text"]) == ("/igor", "deploy web")
        assert (payload["user_id"], payload["user_name"]) == ("U0BOB", "bob")
        assert payload["channel_id"] == "C0DEPLOY"
        assert payload["trigger_id"]
        assert payload["response_url"].startswith(f"{sm_fake.base_url}/response/")
        resp = WebhookClient(payload["response_url"], timeout=5).send(text="deployed")
        assert resp.body == "ok"
        assert sm_fake.wait_for_calls("response_url")[0].params == {"text": "deployed"}


def test_interactive(sm_fake: FakeSlack) -> None:
    rec = Recorder()
    with socket_mode(sm_fake, rec):
        payload = {
            "type": "block_actions",
            "user": {"id": "U0ALICE"},
            "actions": [{"action_id": "approve", "value": "deploy-42"}],
            "response_url": sm_fake.response_url(),
        }
        envelope_id = sm_fake.push_interactive(payload)
        sm_fake.wait_ack(envelope_id)
        (req,) = rec.wait(1)
        assert req.type == "interactive"
        # As Slack sends it: the clicker's team (`user.team_id`) and the workspace's.
        said = {**payload, "user": {"id": "U0ALICE", "team_id": sm_fake.team_id},
                "team": {"id": sm_fake.team_id, "domain": "acme"}}  # fmt: skip
        assert req.payload == said


def test_disconnect_message_then_reconnect(sm_fake: FakeSlack) -> None:
    rec = Recorder()
    with socket_mode(sm_fake, rec):
        sm_fake.wait_ack(sm_fake.push_event({"type": "app_mention", "text": "before"}))
        sm_fake.send_disconnect()
        sm_fake.wait_connected(2)
        assert sm_fake.connections_opened == 2
        assert len(sm_fake.calls_to("apps.connections.open")) == 2
        envelope_id = sm_fake.push_event({"type": "app_mention", "text": "after"})
        sm_fake.wait_ack(envelope_id)
        assert [r.payload["event"]["text"] for r in rec.wait(2)] == ["before", "after"]
        assert sm_fake.live_connections() == 1
        assert "disconnect" not in rec.message_types  # handled inside the client


@pytest.mark.parametrize("mode", ["reset", "close", "silent"])
def test_dropped_connection_then_reconnect(sm_fake: FakeSlack, mode: str) -> None:
    rec = Recorder()
    with socket_mode(sm_fake, rec):
        sm_fake.drop_connections(mode=mode)  # type: ignore[arg-type]
        assert sm_fake.live_connections() == 0
        with pytest.raises(AssertionError):
            sm_fake.push_event({"type": "app_mention", "text": "nobody"})
        sm_fake.wait_connected(2, timeout=10)
        envelope_id = sm_fake.push_event({"type": "app_mention", "text": "again"})
        sm_fake.wait_ack(envelope_id)
        assert rec.wait(1)[0].payload["event"]["text"] == "again"
        assert sm_fake.connections_opened == 2


def test_large_envelope(sm_fake: FakeSlack) -> None:
    rec = Recorder()
    with socket_mode(sm_fake, rec):
        text = "".join(chr(ord("a") + i % 26) for i in range(100_000))
        envelope_id = sm_fake.push_event({"type": "message", "text": text})
        sm_fake.wait_ack(envelope_id)
        (req,) = rec.wait(1)
        assert req.payload["event"]["text"] == text


def test_burst_of_envelopes(sm_fake: FakeSlack) -> None:
    rec = Recorder()
    with socket_mode(sm_fake, rec):
        ids = [sm_fake.push_event({"type": "message", "text": f"m{i}"}) for i in range(40)]
        for envelope_id in ids:
            sm_fake.wait_ack(envelope_id)
        texts = sorted(r.payload["event"]["text"] for r in rec.wait(40))
        assert texts == sorted(f"m{i}" for i in range(40))
        assert len(sm_fake.ack_log) == 40


# ---------------------------------------------------------------------------
# Slack's rules: channel membership and chat:write.public


def refusal(call: Any) -> str:
    """The error of a Web API call that must fail (SlackApiError), checking it came as HTTP 200."""
    with pytest.raises(SlackApiError) as exc:
        call()
    assert exc.value.response.status_code == 200
    return str(exc.value.response["error"])


def test_a_channel_the_bot_is_not_in_refuses_posts(fake: FakeSlack) -> None:
    client = web(fake)
    assert not fake.is_member("C0OTHER")
    assert refusal(lambda: client.chat_postMessage(channel="C0OTHER", text="hi")) == (
        "not_in_channel"
    )
    assert refusal(lambda: client.chat_postMessage(channel="G0PRIVATE", text="hi")) == (
        "not_in_channel"
    )
    assert (
        refusal(lambda: client.chat_postEphemeral(channel="C0OTHER", user="U0ALICE", text="x"))
        == "not_in_channel"
    )
    assert refusal(lambda: client.chat_update(channel="C0OTHER", ts="1.2", text="x")) == (
        "not_in_channel"
    )
    assert refusal(lambda: client.conversations_replies(channel="C0OTHER", ts="1.2")) == (
        "not_in_channel"
    )
    assert client.conversations_info(channel="C0OTHER")["channel"]["is_member"] is False
    # DMs and user IDs always work.
    assert client.chat_postMessage(channel="D0ALICE", text="hi")["ok"]
    assert client.chat_postMessage(channel="U0ALICE", text="hi")["ok"]
    assert client.chat_postEphemeral(channel="D0ALICE", user="U0ALICE", text="x")["ok"]
    assert [c.error for c in fake.calls if c.method != "conversations.info"] == [
        "not_in_channel"
    ] * 5 + [None] * 3
    assert {channel for channel, _ in fake.messages} == {"D0ALICE", "U0ALICE"}  # none refused

    fake.join("C0OTHER")
    assert fake.is_member("C0OTHER")
    posted = client.chat_postMessage(channel="C0OTHER", text="now I can")
    assert client.chat_update(channel="C0OTHER", ts=posted["ts"], text="edited")["ok"]
    assert client.conversations_info(channel="C0OTHER")["channel"]["is_member"] is True
    fake.leave("C0OTHER")
    assert refusal(lambda: client.chat_update(channel="C0OTHER", ts=posted["ts"], text="x")) == (
        "not_in_channel"
    )
    assert (
        fake.messages[("C0OTHER", posted["ts"])]["text"] == "edited"
    )  # the refusal changed nothing


def test_chat_write_public_covers_post_message_to_public_channels_only() -> None:
    with FakeSlack(bot_scopes=DEFAULT_BOT_SCOPES | {"chat:write.public"}) as fake:
        client = web(fake)
        posted = client.chat_postMessage(channel="C0PUBLIC", text="hello from outside")
        assert posted["ok"]
        assert not fake.is_member("C0PUBLIC")  # posting does not join
        assert "chat:write.public" in posted.headers["X-OAuth-Scopes"].split(",")
        assert refusal(lambda: client.chat_postMessage(channel="G0PRIVATE", text="x")) == (
            "not_in_channel"
        )
        assert (
            refusal(lambda: client.chat_postEphemeral(channel="C0PUBLIC", user="U0A", text="x"))
            == "not_in_channel"
        )
        assert (
            refusal(lambda: client.chat_update(channel="C0PUBLIC", ts=posted["ts"], text="x"))
            == "not_in_channel"
        )
    with FakeSlack() as fake:
        client = web(fake)
        assert "chat:write.public" not in client.auth_test().headers["X-OAuth-Scopes"]
        assert refusal(lambda: client.chat_postMessage(channel="C0PUBLIC", text="x")) == (
            "not_in_channel"
        )
        fake.grant("chat:write.public")
        assert client.chat_postMessage(channel="C0PUBLIC", text="x")["ok"]


def test_membership_can_be_turned_off() -> None:
    with FakeSlack(enforce_membership=False) as fake:
        client = web(fake)
        posted = client.chat_postMessage(channel="C0ANY", text="x")
        assert client.chat_update(channel="C0ANY", ts=posted["ts"], text="y")["ok"]
        assert client.chat_postEphemeral(channel="G0ANY", user="U0ALICE", text="x")["ok"]
        assert client.conversations_replies(channel="C0ANY", ts=posted["ts"])["ok"]
        assert client.conversations_info(channel="C0ANY")["channel"]["is_member"] is True
        assert all(c.error is None for c in fake.calls)


def test_chat_update_only_edits_the_bots_own_existing_messages(fake: FakeSlack) -> None:
    fake.join("C0DEPLOY")
    client = web(fake)
    assert refusal(lambda: client.chat_update(channel="C0DEPLOY", ts="1.000001", text="x")) == (
        "message_not_found"
    )
    with raw_ws(fake) as ws:
        ws.recv_json()
        fake.push_event(
            {"type": "message", "channel": "C0DEPLOY", "user": "U0ALICE", "text": "mine",
             "ts": "1700000500.000100"}
        )  # fmt: skip
        ws.recv_json()
    assert (
        refusal(lambda: client.chat_update(channel="C0DEPLOY", ts="1700000500.000100", text="x"))
        == "cant_update_message"
    )
    assert fake.messages[("C0DEPLOY", "1700000500.000100")]["text"] == "mine"


def test_events_make_the_bot_a_member_but_commands_and_clicks_do_not(sm_fake: FakeSlack) -> None:
    rec = Recorder()
    client = web(sm_fake)
    with socket_mode(sm_fake, rec):
        pushed = [
            sm_fake.push_slash_command("list", channel_id="C0SLASH"),
            sm_fake.push_interactive(
                {"type": "block_actions", "channel": {"id": "C0CLICK"},
                 "container": {"channel_id": "C0CLICK", "message_ts": "1.2"},
                 "response_url": sm_fake.response_url(), "actions": []}
            ),
            sm_fake.push_event({"type": "app_mention", "channel": "C0MENTION", "user": "U0A",
                                "text": "<@UIGOR> hi", "ts": "1700000100.000100"}),
            sm_fake.push_event({"type": "message", "channel": "G0PRIVATE", "user": "U0A",
                                "text": "igor hi", "ts": "1700000101.000100"}),
            sm_fake.push_event({"type": "message", "channel": "D0ALICE", "channel_type": "im",
                                "user": "U0A", "text": "hi", "ts": "1700000102.000100"}),
            sm_fake.push_event({"type": "reaction_added", "user": "U0A", "reaction": "eyes",
                                "item": {"type": "message", "channel": "C0REACT", "ts": "1.2"}}),
        ]  # fmt: skip
        sm_fake.wait_acks(pushed)
    for channel in ("C0SLASH", "C0CLICK", "C0REACT"):
        assert not sm_fake.is_member(channel), channel
        assert refusal(lambda c=channel: client.chat_postMessage(channel=c, text="x")) == (
            "not_in_channel"
        )
    for channel in ("C0MENTION", "G0PRIVATE", "D0ALICE"):
        assert sm_fake.is_member(channel), channel
        reply = client.chat_postMessage(channel=channel, text="x", thread_ts="1.0")
        assert reply["ok"]
        # Slack's ts are later than the message the reply answers.
        assert float(reply["ts"]) > 1700000102.0001


# ---------------------------------------------------------------------------
# response_url: 5 posts, 30 minutes


def test_a_response_url_takes_five_posts() -> None:
    clock = FakeClock()
    with FakeSlack(clock=clock) as fake:
        url = fake.response_url()
        hook = WebhookClient(url, timeout=5)
        fake.fail_next("response_url", status=500)  # a failed post does not use the URL up
        assert hook.send(text="flaky").status_code == 500
        for i in range(5):
            resp = hook.send(text=f"post {i}")
            assert (resp.status_code, resp.body) == (200, "ok")
        sixth = hook.send(text="one too many")  # slack_sdk returns the 404, never raises
        assert (sixth.status_code, sixth.body) == (404, "used_url")
        assert hook.send(text="again").status_code == 404
        calls = fake.calls_to("response_url")
        assert [c.status for c in calls] == [500] + [200] * 5 + [404, 404]
        assert [c.error for c in calls[-2:]] == ["used_url", "used_url"]
        assert calls[-2].params == {"text": "one too many"}  # refused posts are recorded
        refused = [c for c in calls if c.status == 404]
        assert len(refused) == 2
        # Another response_url has its own five.
        assert WebhookClient(fake.response_url(), timeout=5).send(text="x").status_code == 200


def test_a_response_url_expires_30_minutes_after_it_was_issued() -> None:
    clock = FakeClock()
    with FakeSlack(clock=clock) as fake:
        url = fake.response_url()
        clock.advance(10 * 60)
        later = fake.response_url()
        clock.advance(20 * 60)  # exactly 30 minutes: still accepted
        assert WebhookClient(url, timeout=5).send(text="just in time").status_code == 200
        clock.advance(1)
        resp = WebhookClient(url, timeout=5).send(text="too late")
        assert (resp.status_code, resp.body) == (404, "expired_url")
        assert WebhookClient(later, timeout=5).send(text="fine").status_code == 200
        clock.advance(10 * 60)
        assert WebhookClient(later, timeout=5).send(text="late").body == "expired_url"
        assert [c.error for c in fake.calls_to("response_url")] == [
            None,
            "expired_url",
            None,
            "expired_url",
        ]


def test_a_slash_commands_response_url_counts_from_the_push(sm_fake: FakeSlack) -> None:
    clock = FakeClock()
    sm_fake.clock = clock
    rec = Recorder()
    with socket_mode(sm_fake, rec):
        sm_fake.wait_ack(sm_fake.push_slash_command("deploy web"))
        url = rec.wait(1)[0].payload["response_url"]
    clock.advance(30 * 60 + 1)
    assert WebhookClient(url, timeout=5).send(text="done").body == "expired_url"


# ---------------------------------------------------------------------------
# conversations.replies: the parent first, limit counts it


def texts(response: Any) -> list[str]:
    return [str(m.get("text")) for m in response["messages"]]


def test_replies_put_the_parent_first_and_count_it_in_limit(fake: FakeSlack) -> None:
    fake.join("C0DEPLOY")
    client = web(fake)
    parent = client.chat_postMessage(channel="C0DEPLOY", text="P")["ts"]
    replies = [
        client.chat_postMessage(channel="C0DEPLOY", text=f"R{i}", thread_ts=parent)["ts"]
        for i in range(1, 5)
    ]
    other = client.chat_postMessage(channel="C0DEPLOY", text="other")["ts"]
    client.chat_postMessage(channel="C0DEPLOY", text="elsewhere", thread_ts=other)

    whole = client.conversations_replies(channel="C0DEPLOY", ts=parent)
    assert texts(whole) == ["P", "R1", "R2", "R3", "R4"]
    assert whole["has_more"] is False
    assert "response_metadata" not in whole.data
    assert whole["messages"][0]["reply_count"] == 4
    assert whole["messages"][0]["latest_reply"] == replies[-1]
    # Any message of the thread names the thread.
    assert texts(client.conversations_replies(channel="C0DEPLOY", ts=replies[1])) == texts(whole)

    only_parent = client.conversations_replies(channel="C0DEPLOY", ts=parent, limit=1)
    assert texts(only_parent) == ["P"]
    assert only_parent["has_more"] is True
    assert only_parent["response_metadata"]["next_cursor"]

    # What igor asks to read its own question back: parent first, so limit=1 misses it.
    one = replies[1]
    trap = client.conversations_replies(
        channel="C0DEPLOY", ts=parent, oldest=one, latest=one, inclusive=True, limit=1
    )
    assert texts(trap) == ["P"]
    found = client.conversations_replies(
        channel="C0DEPLOY", ts=parent, oldest=one, latest=one, inclusive=True, limit=2
    )
    assert texts(found) == ["P", "R2"]
    # oldest/latest are exclusive unless inclusive; they never drop the parent.
    exclusive = client.conversations_replies(
        channel="C0DEPLOY", ts=parent, oldest=replies[0], latest=replies[2]
    )
    assert texts(exclusive) == ["P", "R2"]
    inclusive = client.conversations_replies(
        channel="C0DEPLOY", ts=parent, oldest=replies[0], latest=replies[2], inclusive=True
    )
    assert texts(inclusive) == ["P", "R1", "R2", "R3"]

    first = client.conversations_replies(channel="C0DEPLOY", ts=parent, limit=3)
    assert texts(first) == ["P", "R1", "R2"]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    second = client.conversations_replies(channel="C0DEPLOY", ts=parent, limit=3, cursor=cursor)
    assert texts(second) == ["R3", "R4"]
    assert second["has_more"] is False

    # slack_sdk's own pagination walks the cursor to the end, each message once.
    pages = [texts(page) for page in client.conversations_replies(
        channel="C0DEPLOY", ts=parent, limit=2)]  # fmt: skip
    assert pages == [["P", "R1"], ["R2", "R3"], ["R4"]]

    assert refusal(lambda: client.conversations_replies(channel="C0DEPLOY", ts="9.9")) == (
        "thread_not_found"
    )
    assert (
        refusal(lambda: client.conversations_replies(channel="C0DEPLOY", ts=parent, cursor="@@"))
        == "invalid_cursor"
    )


def test_a_pushed_message_is_the_parent_of_the_bots_replies(fake: FakeSlack) -> None:
    client = web(fake)
    asked = "1700000200.000100"
    with raw_ws(fake) as ws:
        ws.recv_json()
        fake.push_event(
            {"type": "app_mention", "channel": "C0THREAD", "user": "U0ALICE",
             "text": "<@UIGOR> deploy", "ts": asked, "event_ts": asked}
        )  # fmt: skip
        ws.recv_json()
        answer = client.chat_postMessage(channel="C0THREAD", text="started", thread_ts=asked)
        assert float(answer["ts"]) > float(asked)
        # A reply in a thread whose parent the test never pushed: the parent exists in Slack.
        fake.push_event(
            {"type": "message", "channel": "C0THREAD", "user": "U0BOB", "text": "igor list",
             "ts": "1700000300.000100", "thread_ts": "1700000250.000100"}
        )  # fmt: skip
        ws.recv_json()
    thread = client.conversations_replies(channel="C0THREAD", ts=asked)
    assert [(m["user"], m["text"]) for m in thread["messages"]] == [
        ("U0ALICE", "<@UIGOR> deploy"),
        ("UIGOR", "started"),
    ]
    other = client.conversations_replies(channel="C0THREAD", ts="1700000300.000100")
    assert [m["ts"] for m in other["messages"]] == ["1700000250.000100", "1700000300.000100"]


# ---------------------------------------------------------------------------
# Rate limits


def test_chat_update_is_limited_to_50_a_minute() -> None:
    clock = FakeClock()
    with FakeSlack(clock=clock) as fake:
        fake.join("C0DEPLOY")
        client = web(fake)  # no retry handler: the 429 reaches the caller
        ts = client.chat_postMessage(channel="C0DEPLOY", text="v0")["ts"]
        for i in range(50):
            assert client.chat_update(channel="C0DEPLOY", ts=ts, text=f"v{i + 1}")["ok"]
        with pytest.raises(SlackApiError) as exc:
            client.chat_update(channel="C0DEPLOY", ts=ts, text="v51")
        assert exc.value.response.status_code == 429
        assert exc.value.response.headers["Retry-After"] == "60"
        assert exc.value.response["error"] == "ratelimited"
        assert fake.messages[("C0DEPLOY", ts)]["text"] == "v50"  # the refused one changed nothing
        clock.advance(45)
        with pytest.raises(SlackApiError) as exc:
            client.chat_update(channel="C0DEPLOY", ts=ts, text="v51")
        assert exc.value.response.headers["Retry-After"] == "15"
        clock.advance(15)
        assert client.chat_update(channel="C0DEPLOY", ts=ts, text="v51")["ok"]
        for _ in range(60):  # other methods have no limit by default
            client.auth_test()
        statuses = [c.status for c in fake.calls_to("chat.update")]
        assert statuses == [200] * 50 + [429, 429, 200]


def test_rate_limits_are_configurable_and_can_be_turned_off() -> None:
    clock = FakeClock()
    with FakeSlack(clock=clock, rate_limits={"chat.postMessage": (2, 1.0)}) as fake:
        client = web(fake)
        client.chat_postMessage(channel="D0A", text="1")
        client.chat_postMessage(channel="D0A", text="2")
        with pytest.raises(SlackApiError) as exc:
            client.chat_postMessage(channel="D0A", text="3")
        assert exc.value.response.headers["Retry-After"] == "1"
        clock.advance(1)
        assert client.chat_postMessage(channel="D0A", text="3")["ok"]
        for i in range(60):  # chat.update is unlimited once rate_limits replaces the default
            client.chat_update(channel="D0A", ts=fake.calls[0].response["ts"], text=str(i))
    with FakeSlack(clock=clock, rate_limits={}) as fake:
        fake.join("C0DEPLOY")
        client = web(fake)
        ts = client.chat_postMessage(channel="C0DEPLOY", text="x")["ts"]
        for i in range(120):
            client.chat_update(channel="C0DEPLOY", ts=ts, text=str(i))
        assert all(c.status == 200 for c in fake.calls)


# ---------------------------------------------------------------------------
# Fault injection and revoked tokens


def test_fail_next_injects_429s_and_slack_errors(fake: FakeSlack) -> None:
    fake.join("C0DEPLOY")
    client = web(fake)
    fake.fail_next("chat.update", retry_after=30, count=2)
    posted = client.chat_postMessage(channel="C0DEPLOY", text="x")
    for _ in range(2):
        with pytest.raises(SlackApiError) as exc:
            client.chat_update(channel="C0DEPLOY", ts=posted["ts"], text="y")
        assert exc.value.response.status_code == 429
        assert exc.value.response.headers["Retry-After"] == "30"
    assert client.chat_update(channel="C0DEPLOY", ts=posted["ts"], text="y")["ok"]
    for error in ("not_in_channel", "channel_not_found", "token_revoked"):
        fake.fail_next("chat.postMessage", error=error)
        assert refusal(lambda: client.chat_postMessage(channel="C0DEPLOY", text="x")) == error
    assert client.chat_postMessage(channel="C0DEPLOY", text="x")["ok"]
    fake.fail_next("response_url", error="used_url")
    resp = WebhookClient(fake.response_url(), timeout=5).send(text="x")
    assert (resp.status_code, resp.body) == (404, "used_url")


def test_a_revoked_bot_token_is_refused_everywhere(fake: FakeSlack) -> None:
    old = web(fake)
    assert old.auth_test()["ok"]
    fake.revoke_bot_token()
    for call in (
        old.auth_test,
        lambda: old.chat_postMessage(channel="D0A", text="x"),
        lambda: old.users_info(user="U0ALICE"),
    ):
        assert refusal(call) == "token_revoked"
    # The app-level token still opens connections.
    assert old.apps_connections_open(app_token=fake.app_token)["ok"]
    fake.bot_token = "xoxb-reinstalled"
    assert web(fake).auth_test()["ok"]
    assert refusal(old.auth_test) == "token_revoked"
    assert refusal(web(fake, token="xoxb-never-issued").auth_test) == "invalid_auth"


def test_a_revoked_app_token_closes_connections_and_refuses_new_ones(
    sm_fake: FakeSlack,
) -> None:
    unused_url = ws_url(sm_fake)  # issued before the revocation, never used
    rec = Recorder()
    with socket_mode(sm_fake, rec):
        opens_before = len(sm_fake.calls_to("apps.connections.open"))
        sm_fake.revoke_app_token()
        assert sm_fake.live_connections() == 0
        sm_fake.wait_disconnected()
        # slack_sdk notices and tries to reconnect; each try is refused.
        tries = sm_fake.wait_for_calls("apps.connections.open", opens_before + 1, timeout=10)
        assert all(c.error == "invalid_auth" for c in tries[opens_before:])
        assert sm_fake.connections_opened == 1
        with pytest.raises(AssertionError, match="no live Socket Mode connection"):
            sm_fake.push_event({"type": "app_mention"})
    refused = RawWs(unused_url)
    try:
        assert refused.status == 401
    finally:
        refused.close()
    assert web(sm_fake).auth_test()["ok"]  # the bot token is untouched


# ---------------------------------------------------------------------------
# A silent (half-dead) connection


def test_a_silent_connection_sends_nothing_and_hears_nothing(sm_fake: FakeSlack) -> None:
    with raw_ws(sm_fake) as ws:
        ws.recv_json()
        sm_fake.go_silent()
        assert sm_fake.live_connections() == 0
        assert sm_fake.silent_connections() == 1
        with pytest.raises(AssertionError, match="no live Socket Mode connection"):
            sm_fake.push_event({"type": "app_mention"})
        ws.send(OP_PING, b"anyone?")
        ws.send(OP_TEXT, json.dumps({"envelope_id": "late-ack"}).encode())
        # Four server ping intervals: no ping, no pong, no event. (The socket, not ws.rfile:
        # a file object is unusable after a timeout.)
        ws.sock.settimeout(0.8)
        with pytest.raises(TimeoutError):
            ws.sock.recv(1)
        assert "late-ack" not in sm_fake.acks
        # A new connection works normally meanwhile.
        with raw_ws(sm_fake) as fresh:
            fresh.recv_json()
            sm_fake.wait_connected(2)
            envelope_id = sm_fake.push_event({"type": "app_mention", "text": "hi"})
            frame = fresh.recv()
            while frame.opcode == OP_PING:  # the fake pings live connections
                frame = fresh.recv()
            assert json.loads(frame.payload)["envelope_id"] == envelope_id
        ws.send(OP_CLOSE, (1000).to_bytes(2, "big"))
        ws.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            ws.sock.recv(1)  # not even the close is answered
        assert sm_fake.silent_connections() == 1  # the TCP socket is still open


def test_slack_sdk_reconnects_from_a_silent_connection_by_its_ping_timeout(
    sm_fake: FakeSlack,
) -> None:
    rec = Recorder()
    with socket_mode(sm_fake, rec):
        sm_fake.go_silent()
        sm_fake.wait_connected(2, timeout=10)
        envelope_id = sm_fake.push_event({"type": "app_mention", "text": "after"})
        sm_fake.wait_ack(envelope_id)
        assert rec.wait(1)[0].payload["event"]["text"] == "after"


# ---------------------------------------------------------------------------
# Bursts: a backlog in one socket send


def backlog(count: int) -> list[dict[str, Any]]:
    return [
        {"type": "message", "channel": "C0BUSY", "user": "U0ALICE", "text": f"m{i}",
         "ts": f"{1_700_001_000 + i}.000100"}
        for i in range(count)
    ]  # fmt: skip


def test_push_events_writes_one_send_and_tracks_each_ack(fake: FakeSlack) -> None:
    with raw_ws(fake) as ws:
        ws.recv_json()
        ids = fake.push_events(backlog(3))
        assert len(set(ids)) == 3
        received = [ws.recv_json() for _ in ids]
        assert [r["envelope_id"] for r in received] == ids
        assert [r["payload"]["event"]["text"] for r in received] == ["m0", "m1", "m2"]
        for envelope_id in reversed(ids):
            ws.send(OP_TEXT, json.dumps({"envelope_id": envelope_id}).encode())
        acks = fake.wait_acks(ids)
        assert [a.envelope_id for a in acks] == ids
        assert all(a.sent_at <= a.acked_at for a in acks)
    assert fake.is_member("C0BUSY")


def test_slack_sdk_takes_a_backlog_of_200(sm_fake: FakeSlack) -> None:
    rec = Recorder()
    with socket_mode(sm_fake, rec):
        ids = sm_fake.push_events(backlog(200))
        sm_fake.wait_acks(ids, timeout=10)
        assert len(rec.wait(200)) == 200


def test_slack_sdks_builtin_reader_breaks_on_a_backlog_of_2000(sm_fake: FakeSlack) -> None:
    """slack_sdk's builtin frame reader (_fetch_messages) recurses once per frame in the
    bytes it has read, so a backlog of ~1,000 frames in the socket overflows Python's stack:
    RecursionError, the frames it had parsed are dropped unacked, and the reader goes on from
    the middle of a frame. The fake reproduces that; igor reads the frames itself
    (igor_cli/chat/slack/transports/socket_reader.py, tests/test_reader.py).
    """
    # Python's default limit, as a plain slack_sdk program has it.
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    errors: list[BaseException] = []
    got_error = threading.Event()

    def on_error(error: BaseException) -> None:
        errors.append(error)
        got_error.set()

    client = SocketModeClient(
        app_token=sm_fake.app_token, web_client=web(sm_fake), ping_interval=PING_INTERVAL
    )
    client.socket_mode_request_listeners.append(
        lambda c, req: c.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
    )
    client.on_error_listeners.append(on_error)
    try:
        client.connect()
        sm_fake.wait_connected()
        ids = sm_fake.push_events(backlog(2000))
        assert got_error.wait(10), "slack_sdk read 2,000 frames without an error: fixed upstream?"
        time.sleep(0.5)  # what gets acked after the error, if anything
        acked = [envelope_id for envelope_id in ids if envelope_id in sm_fake.acks]
    finally:
        client.close()
        sys.setrecursionlimit(previous)
    assert any(isinstance(e, RecursionError) for e in errors), errors
    assert len(acked) < len(ids)  # slack_sdk 3.48: none at all
