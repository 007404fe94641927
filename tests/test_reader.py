"""igor's reader of the Socket Mode connection: each envelope acked once, before igor takes it.

The transport runs against the fake Slack with the real slack_sdk client; `dispatch` is the
test's, to see what igor's intake is handed and when.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from igor_cli.chat.slack.transports import socket_reader as reader
from igor_cli.chat.slack.transports.socket_mode import SocketModeTransport
from igor_cli.chat.slack.transports.socket_reader import MESSAGE_LIMIT, SKIP_LIMIT
from igor_cli.chat.slack.web import SlackWeb
from igor_cli.config import Environment
from tests.conftest import RunningBot, next_ts, wait_until
from tests.fakes.slack import CLOSE_WAIT, OP_CONTINUATION, OP_PING, OP_TEXT, FakeSlack, encode_frame


class Taken:
    """What the transport handed to igor: (type, event text), in order."""

    def __init__(self, then: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.items: list[tuple[str, str]] = []
        self.then = then
        self._cond = threading.Condition()

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        with self._cond:
            self.items.append((kind, str((payload.get("event") or {}).get("text"))))
            self._cond.notify_all()
        if self.then is not None:
            self.then(kind, payload)

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[str, str]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, timeout):
                raise AssertionError(f"{len(self.items)} of {count} envelopes taken")
            return list(self.items)


@pytest.fixture
def transport_for(slack: FakeSlack) -> Iterator[Callable[[Taken], SocketModeTransport]]:
    started: list[SocketModeTransport] = []

    def start(taken: Taken) -> SocketModeTransport:
        env = Environment(
            environ={"SLACK_APP_TOKEN": slack.app_token}, slack_ping_interval=0.3
        )  # fmt: skip
        web = SlackWeb(slack.bot_token, slack.api_url)
        transport = SocketModeTransport(env, web, taken, threading.Event())
        started.append(transport)
        transport.connect()
        slack.wait_connected()
        return transport

    yield start
    for transport in started:
        transport.stop.set()
        transport.close(timeout=5)


def event(text: str, channel: str = "C0READ") -> dict[str, Any]:
    ts = next_ts()
    return {"type": "message", "channel": channel, "user": "U0ALICE", "text": text, "ts": ts}


def test_acks_leave_without_waiting_for_slacks_tcp_ack(
    slack: FakeSlack, transport_for: Callable[[Taken], SocketModeTransport]
) -> None:
    # With Nagle's algorithm on, a burst's last acks waited for Slack's delayed TCP ACK
    # (40 ms on Linux) behind the acks sent before them: the ack p99's slow runs.
    import socket

    taken = Taken()
    transport = transport_for(taken)
    slack.push_event(event("first"))
    taken.wait(1)  # the reader runs on this connection
    session = transport.socket.current_session
    assert session is not None and session.sock is not None
    assert session.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_an_envelope_is_acked_before_igor_takes_it(
    slack: FakeSlack, transport_for: Callable[[Taken], SocketModeTransport]
) -> None:
    envelopes: dict[str, str] = {}  # text -> envelope_id
    seen_first: list[bool] = []

    def check(kind: str, payload: dict[str, Any]) -> None:
        # The ack must have reached Slack already: this call holds the reader, so an ack
        # sent after it could never arrive while we wait.
        text = str(payload["event"]["text"])
        slack.wait_ack(envelopes[text], timeout=5)
        seen_first.append(True)

    transport_for(Taken(check))
    for number in range(5):
        text = f"one by one {number}"
        envelopes[text] = slack.push_event(event(text))
    batch = [event(f"in one write {number}") for number in range(200)]
    for item, envelope_id in zip(batch, slack.push_events(batch), strict=True):
        envelopes[str(item["text"])] = envelope_id
    slack.wait_acks(list(envelopes.values()), timeout=20)
    slack.ping_and_wait()
    assert len(seen_first) == 205


def test_each_envelope_is_acked_and_taken_once_even_when_taking_it_fails(
    slack: FakeSlack, transport_for: Callable[[Taken], SocketModeTransport]
) -> None:
    def fail_on_boom(kind: str, payload: dict[str, Any]) -> None:
        if "boom" in str(payload["event"]["text"]):
            raise RuntimeError("igor's intake broke")

    taken = Taken(fail_on_boom)
    transport_for(taken)
    texts = ["before", "boom 1", "between", "boom 2", "after"]
    ids = [slack.push_event(event(text)) for text in texts]
    ids += slack.push_events([event("boom in a batch"), event("last")])
    slack.wait_acks(ids, timeout=10)
    assert [kind for kind, _ in taken.wait(7)] == ["events_api"] * 7
    slack.ping_and_wait()  # everything pushed was read: nothing more is coming
    assert [text for _, text in taken.items] == [*texts, "boom in a batch", "last"]
    acked = [ack.envelope_id for ack in slack.ack_log]
    assert sorted(acked) == sorted(ids)  # each once, none twice
    assert slack.protocol_errors == []  # every ack a well-formed, masked frame


def test_a_backlog_of_2000_in_one_write_is_acked_and_taken_in_order(
    slack: FakeSlack, transport_for: Callable[[Taken], SocketModeTransport]
) -> None:
    # slack_sdk's own reader recurses once per buffered frame and loses such a backlog
    # (tests/test_fake_slack.py); igor's reads it whole at Python's default recursion limit.
    taken = Taken()
    transport_for(taken)
    backlog = [event(f"m{number}") for number in range(2000)]
    ids = slack.push_events(backlog)
    slack.wait_acks(ids, timeout=60)
    assert [text for _, text in taken.wait(2000, timeout=60)] == [f"m{n}" for n in range(2000)]
    assert len(slack.ack_log) == 2000


def test_the_acks_of_one_read_draw_their_masks_in_one_urandom_call(
    slack: FakeSlack,
    transport_for: Callable[[Taken], SocketModeTransport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each os.urandom call lets go of the GIL; under a burst the reader then waits behind
    # the intake threads to get it back once per ack. One draw a read: the frames still
    # carry a fresh 4-byte key each (RFC 6455 section 5.3), and the fake reads them all.
    draws: list[int] = []

    def counted(size: int) -> bytes:
        draws.append(size)
        return os.urandom(size)

    # The reader's own `os` only (slack_sdk's pings draw theirs from the real one).
    monkeypatch.setattr(reader, "os", SimpleNamespace(urandom=counted))
    taken = Taken()
    transport_for(taken)
    ids = slack.push_events([event(f"m{number}") for number in range(200)])
    slack.wait_acks(ids, timeout=30)
    taken.wait(200, timeout=30)
    assert sum(draws) == 4 * 200  # a key for every ack
    assert len(draws) < 200 / 4  # drawn a read at a time, not an ack at a time
    assert slack.protocol_errors == []  # every ack a well-formed, masked frame
    assert sorted(ack.envelope_id for ack in slack.ack_log) == sorted(ids)


def test_after_stop_listening_nothing_is_acked_or_taken(
    slack: FakeSlack, transport_for: Callable[[Taken], SocketModeTransport]
) -> None:
    taken = Taken()
    transport = transport_for(taken)
    slack.wait_ack(slack.push_event(event("still listening")))
    transport.stop_listening()
    late = slack.push_event(event("too late"))
    slack.ping_and_wait()  # the reader has read the late envelope by now
    assert late not in slack.acks  # Slack delivers it again, to a replica still listening
    assert [text for _, text in taken.wait(1)] == ["still listening"]
    assert len(taken.items) == 1


def test_envelopes_are_acked_while_intake_waits_on_the_state_store(
    bot: RunningBot, slack: FakeSlack, tmp_path: Any
) -> None:
    # Another process holds the SQLite store's write lock: every dedupe claim waits (up
    # to its 10 s busy timeout). The acks must not wait with it.
    bot.start()
    bot.mention("help")  # the store is open and in use
    bot.replies(1)
    store = next((tmp_path / "xdg-data").rglob("*.db"))
    holder = sqlite3.connect(store, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        envelopes = [
            slack.push_event({"type": "app_mention", "user": "U0ALICE", "channel": "C0STORE",
                              "ts": ts, "event_ts": ts, "text": f"<@{slack.bot_user_id}> help"})
            for ts in (next_ts() for _ in range(20))
        ]  # fmt: skip
        slack.wait_acks(envelopes, timeout=5)
        assert slack.post_message_count() == 1  # none of the twenty answered yet
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(bot.replies(21, timeout=20)) == 21


def test_a_slack_sdk_without_what_the_reader_needs_stops_the_bot_saying_so(
    transport_for: Callable[[Taken], SocketModeTransport],
    slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A slack_sdk whose connection lost a private name igor reads frames with: the bot
    # must stop with the reason, not stay connected and ack nothing.
    monkeypatch.setattr(reader, "CONNECTION_NEEDS", (*reader.CONNECTION_NEEDS, "sock_v2"))
    taken = Taken()
    transport = transport_for(taken)
    assert transport.stop.wait(10)
    assert transport.failure is not None
    assert "Connection.sock_v2" in transport.failure.message
    assert "slack_sdk>=3.27,<4" in transport.failure.hint
    late = slack.push_event(event("list"))
    time.sleep(0.5)  # room for a reader that should not exist to ack it
    assert late not in slack.acks and taken.items == []


# -- what Slack may send, and what igor does with what it may not (RFC 6455) --------------


def envelope_frame(text: str, envelope_id: str) -> bytes:
    """The text frame of an Events API envelope, as Slack frames it (unmasked)."""
    message = {"envelope_id": envelope_id, "type": "events_api", "payload": {"event": event(text)}}
    return encode_frame(OP_TEXT, json.dumps(message).encode())


def igors_closes(slack: FakeSlack, conn_id: int = 1) -> list[int | None]:
    """The status codes of the Close frames igor sent on one connection."""
    return [close.code for close in slack.close_frames if close.conn_id == conn_id]


def test_slacks_close_frame_is_answered_with_one(
    slack: FakeSlack, transport_for: Callable[[Taken], SocketModeTransport]
) -> None:
    transport_for(Taken())
    slack.send_close(1001, "going away")
    assert wait_until(lambda: igors_closes(slack) == [1001], timeout=CLOSE_WAIT * 0.9)
    slack.wait_connected(count=2)  # and a new connection at once
    assert slack.protocol_errors == []  # igor's Close is masked, as a client's must be


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (encode_frame(OP_TEXT, b'{"envelope_id": "masked"}', mask=b"\x01\x02\x03\x04"), 1002),
        (bytes([0x80 | 0x40 | OP_TEXT, 2]) + b"{}", 1002),  # RSV1, with no extension agreed
        (bytes([0x80 | 0x3, 0]), 1002),  # a reserved data opcode
        (bytes([OP_PING, 0]), 1002),  # a control frame split in two
        (encode_frame(OP_CONTINUATION, b"}"), 1002),  # the rest of no message
        (encode_frame(OP_TEXT, b'{"text": "\xff"}'), 1007),  # text that is not UTF-8
        (b"\x81\x7f" + (2**62).to_bytes(8, "big") + b"{" * 64, 1009),  # 4 EiB, said to follow
    ],
    ids=["masked", "rsv", "opcode", "split-ping", "continuation", "not-utf8", "2**62-bytes"],
)
def test_a_frame_no_server_may_send_fails_the_connection_at_once(
    slack: FakeSlack,
    transport_for: Callable[[Taken], SocketModeTransport],
    bad: bytes,
    code: int,
) -> None:
    taken = Taken()
    transport_for(taken)
    slack.send_raw(envelope_frame("before it", "good-1") + bad + envelope_frame("after", "good-2"))
    slack.wait_connected(count=2)  # a new connection at once, not after the watchdog's wait
    assert igors_closes(slack) == [code]  # the Close says why (RFC 6455 §7.1.7, §7.4.1)
    slack.wait_ack("good-1")  # what came before the bad frame is read, acked and taken
    assert [text for _, text in taken.wait(1)] == ["before it"]
    assert set(slack.acks) == {"good-1"}  # the rest is Slack's to deliver again
    later = slack.push_event(event("on the new connection"))
    slack.wait_ack(later)
    assert [text for _, text in taken.wait(2)][1] == "on the new connection"


def test_a_message_nested_too_deep_is_dropped_alone(
    slack: FakeSlack,
    transport_for: Callable[[Taken], SocketModeTransport],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="igor")
    taken = Taken()
    transport_for(taken)
    deep = '{"envelope_id": "deep", "payload": ' + "[" * 100_000 + "]" * 100_000 + "}"
    slack.send_raw(
        envelope_frame("first", "e-1")
        + encode_frame(OP_TEXT, deep.encode())
        + envelope_frame("third", "e-3")
    )
    slack.wait_acks(["e-1", "e-3"])
    assert [text for _, text in taken.wait(2)] == ["first", "third"]
    slack.ping_and_wait()
    assert "deep" not in slack.acks
    assert slack.connections_opened == 1 and slack.close_frames == []  # the connection lives
    dropped = [r for r in caplog.records if "cannot read" in r.getMessage()]
    assert len(dropped) == 1


def test_a_message_too_big_to_keep_is_dropped_alone(
    slack: FakeSlack,
    transport_for: Callable[[Taken], SocketModeTransport],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="igor")
    taken = Taken()
    transport_for(taken)
    big = json.dumps({"envelope_id": "big", "payload": {"blob": "x" * MESSAGE_LIMIT}})
    slack.send_raw(
        envelope_frame("before", "e-1")
        + encode_frame(OP_TEXT, big.encode())
        + envelope_frame("after", "e-2")
    )
    slack.wait_acks(["e-1", "e-2"], timeout=10)
    assert [text for _, text in taken.wait(2)] == ["before", "after"]
    assert "big" not in slack.acks
    assert slack.connections_opened == 1 and slack.close_frames == []
    assert len([r for r in caplog.records if "dropped it unread" in r.getMessage()]) == 1


def test_an_unfinished_message_is_never_kept_past_the_limit(
    slack: FakeSlack, transport_for: Callable[[Taken], SocketModeTransport]
) -> None:
    # 12 MB of fragments with no last frame yet: igor holds no more than MESSAGE_LIMIT
    # of it (before, every fragment was kept until the last came, or forever).
    taken = Taken()
    transport_for(taken)
    part = b"x" * (256 * 1024)
    tracemalloc.start()
    try:
        slack.send_raw(encode_frame(OP_TEXT, b'{"envelope_id": "huge", "blob": "', fin=False))
        for _ in range(48):
            slack.send_raw(encode_frame(OP_CONTINUATION, part, fin=False))
        slack.ping_and_wait(timeout=20)  # igor has read all of it by its pong
        held = sum(
            stat.size
            for stat in tracemalloc.take_snapshot()
            .filter_traces([tracemalloc.Filter(True, reader.__file__)])
            .statistics("filename")
        )
    finally:
        tracemalloc.stop()
    assert held < MESSAGE_LIMIT, held
    slack.send_raw(encode_frame(OP_CONTINUATION, b'"}') + envelope_frame("next", "e-next"))
    slack.wait_ack("e-next")
    assert [text for _, text in taken.wait(1)] == ["next"]
    assert "huge" not in slack.acks
    assert slack.connections_opened == 1 and slack.close_frames == []


def test_a_message_that_grows_past_what_igor_reads_past_ends_the_connection(
    slack: FakeSlack, transport_for: Callable[[Taken], SocketModeTransport]
) -> None:
    transport_for(Taken())
    part = b"x" * (1024 * 1024)
    frames = [encode_frame(OP_TEXT, b"{", fin=False)]
    frames += [
        encode_frame(OP_CONTINUATION, part, fin=False) for _ in range(SKIP_LIMIT // len(part))
    ]
    slack.send_raw(b"".join(frames))
    slack.wait_connected(count=2, timeout=20)
    assert igors_closes(slack) == [1009]  # "message too big" (RFC 6455 §7.4.1)
