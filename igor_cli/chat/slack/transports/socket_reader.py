"""Reading a Socket Mode connection: every envelope acked as soon as its frame is read.

slack_sdk's built-in client makes the connection (handshake, pings) and igor
reads the frames (socket_mode.py decides when to reconnect). slack_sdk's reader hands frames
over only when a `recv` happens to end where a frame ends, so under a burst the
first envelopes wait for the last; it recurses once per buffered frame (a
backlog of ~1,000 overflows the stack); and each envelope then crosses a queue,
a dispatcher thread and a pool of ten before it is acked, each hop waiting for
the GIL behind igor's busy intake threads. Here, on the connection's receive
thread, the frames of one `recv` are parsed at once, their acks leave in one
send, and only then are the payloads handed to igor's intake: the ack never
waits for intake work, and a burst costs a few sends instead of one per envelope.

What a server may send is checked as RFC 6455 says: a masked frame, a reserved
bit or opcode, a split control frame, frames out of order or text that is not
UTF-8 fail the connection (a Close saying why, then a new connection at once);
a Close from Slack is answered with a Close. One message that cannot be read
(too big to keep, JSON nested past Python's limit) is dropped alone, and no
message is ever buffered past MESSAGE_LIMIT.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_sdk.socket_mode.builtin.connection import Connection, ConnectionState

log = logging.getLogger("igor.socket")

RECEIVE_BYTES = 256 * 1024  # one recv takes what has arrived (on wss://, one TLS record)
IDLE_SECONDS = 0.2  # slack_sdk's pause while a session has no socket yet (or any more)
# Slack's envelopes are a few kilobytes. A message over MESSAGE_LIMIT is not kept: its
# bytes are read past as they arrive and it alone is dropped (unacked: Slack delivers it
# again, then gives up). One that claims more than SKIP_LIMIT is not worth reading past:
# the connection is failed and replaced at once.
MESSAGE_LIMIT = 4 * 1024 * 1024
SKIP_LIMIT = 16 * 1024 * 1024

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
OPCODES = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG})
# slack_sdk's handshake reads the response's lines up to each "\r", so the "\n"
# that ends the last one reaches the frame reader first. 0x0A cannot start a
# frame (a control frame is never fragmented), so it is skipped before the first.
STRAY_NEWLINE = 0x0A
# Close codes (RFC 6455 §7.4.1) igor fails a connection with.
PROTOCOL_ERROR = 1002
NOT_UTF8 = 1007
TOO_BIG = 1009
# The codes a Close frame may carry (§7.4.1, §7.4.2): 1005, 1006 and 1015 only ever
# stand for "none given" or "closed without a frame", and 1004 is reserved.
SENDABLE_CLOSE_CODES = frozenset(range(1000, 1012)) - {1004, 1005, 1006} | frozenset(
    range(3000, 5000)
)

Envelope = tuple[str, str, dict[str, Any]]  # envelope_id, type, payload

# What igor takes over from slack_sdk's built-in client: the method its receive thread
# runs for each connection, the one its monitor reconnects with (socket_mode.py), and the
# connection's socket, locks, ping answer and first ping's time.
# Private names: a slack_sdk that renames one must stop the bot, not leave it
# connected and deaf (nothing acked, Slack delivering every message again).
CLIENT_NEEDS = ("_run_current_session", "connect_to_new_endpoint", "current_session_state")
CONNECTION_NEEDS = (
    "sock", "sock_receive_lock", "sock_send_lock", "disconnect", "_first_ping_time",
)  # fmt: skip


def unsupported(client: object, connection: object) -> list[str]:
    """The names igor's reader needs that this slack_sdk's client or connection lacks."""
    return [
        f"{type(owner).__name__}.{name}"
        for owner, names in ((client, CLIENT_NEEDS), (connection, CONNECTION_NEEDS))
        for name in names
        if not hasattr(owner, name)
    ]


def ack_frame(envelope_id: str, mask: bytes | None = None) -> bytes:
    """The masked text frame `{"envelope_id": ...}` (a client masks every frame, RFC 6455)."""
    return client_frame(OP_TEXT, json.dumps({"envelope_id": envelope_id}).encode(), mask)


def ack_frames(envelope_ids: list[str]) -> bytes:
    """The acks of one read, their masking keys drawn in one `os.urandom` call: each call
    lets go of the GIL (a getrandom system call), and under a burst a thread that let go
    waits behind igor's busy intake threads to get it back, once per ack instead of once a
    read (p99 under load 1.20 s against 0.34 s, issue 27)."""
    keys = os.urandom(4 * len(envelope_ids))
    return b"".join(
        ack_frame(envelope_id, keys[4 * n : 4 * n + 4])
        for n, envelope_id in enumerate(envelope_ids)
    )


def close_frame(code: int | None) -> bytes:
    """The masked Close frame with `code` as its status (None: a Close with no status)."""
    return client_frame(OP_CLOSE, b"" if code is None else struct.pack("!H", code))


def client_frame(opcode: int, data: bytes, mask: bytes | None = None) -> bytes:
    """One whole frame from a client: FIN set, masked with `mask`, 4 fresh random bytes
    (drawn here when not given; RFC 6455 §5.3)."""
    size = len(data)
    if size <= 125:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    mask = os.urandom(4) if mask is None else mask
    return header + mask + _masked(data, mask)


def _masked(data: bytes, mask: bytes) -> bytes:
    """`data` XOR the repeated 4-byte `mask` (masking and unmasking are the same)."""
    size = len(data)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


class Broken(Exception):
    """What the server sent breaks RFC 6455: the connection is failed (§7.1.7) with `code`."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(what)
        self.code = code
        self.what = what


@dataclass
class _Message:
    """A data message whose frames are still arriving (RFC 6455 §5.4)."""

    opcode: int
    parts: list[bytes] = field(default_factory=list)
    size: int = 0
    dropped: bool = False  # over MESSAGE_LIMIT: its bytes are read past, not kept


class SessionReader:
    """The frames of one connection until its state ends: envelopes acked, then taken.

    `listening()` says whether envelopes are still taken (when not, they are
    neither acked nor taken, and Slack delivers them again, to another replica).
    `take` gets each acked envelope; `other` gets every other message Slack sends
    (`hello`, `disconnect`), parsed; `closed` gets the close code and reason when
    the connection ends: Slack closed it (its Close frame answered with igor's,
    RFC 6455 §5.5.1), it broke, or Slack broke the protocol (igor's Close says why).
    """

    def __init__(
        self,
        session: Connection,
        state: ConnectionState,
        *,
        listening: Callable[[], bool],
        take: Callable[[str, dict[str, Any]], object],
        other: Callable[[dict[str, Any]], None],
        closed: Callable[[int, str], None],
    ) -> None:
        self.session = session
        self.state = state
        self.listening = listening
        self.take = take
        self.other = other
        self.closed = closed
        self._buffer = bytearray()
        self._message: _Message | None = None  # a fragmented message, until its last frame
        self._skip = 0  # bytes of an oversized frame still to read past
        self._started = False  # a frame was read (the stray newline only comes first)

    def run(self) -> None:
        """Read until the session ends (closed here, by slack_sdk, or by a new connection)."""
        _send_at_once(self.session.sock)
        while not self.state.terminated:
            chunk = self._receive()
            if chunk is None:
                continue
            if not chunk:  # the other end closed without a close frame
                if not self.state.terminated:  # (not a connection slack_sdk replaced)
                    log.info("Slack closed the connection; reconnecting")
                    self._end()
                    self.closed(1006, "")
                return
            self._buffer += chunk
            messages, broken = self._frames()
            self._handle(messages)
            if broken is not None and not self.state.terminated:
                self._fail(broken)

    def _receive(self) -> bytes | None:
        """One recv: bytes, b"" at the end of the stream, None when there is nothing yet."""
        sock = self.session.sock
        if sock is None:  # closed under us: slack_sdk ends this state, or reconnects
            time.sleep(IDLE_SECONDS)
            return None
        try:
            with self.session.sock_receive_lock:
                return bytes(sock.recv(RECEIVE_BYTES))
        except TimeoutError:  # the socket's 3 s timeout: the state may have ended meanwhile
            return None
        except OSError as error:
            if error.errno in (errno.EBADF, errno.ENOTSOCK) or self.session.sock is None:
                return None  # closed by slack_sdk (a reconnect, or close) while we waited
            if self.state.terminated:
                return None
            log.warning("the connection to Slack failed (%s); reconnecting", type(error).__name__)
            self._end()
            self.closed(1006, "")
            return None

    def _end(self) -> None:
        self.state.terminated = True
        self.session.disconnect()

    def _fail(self, broken: Broken) -> None:
        """Fail the connection (RFC 6455 §7.1.7): a Close saying why, then a new connection."""
        log.warning("Slack sent %s; reconnecting", broken.what)
        self._send(close_frame(broken.code))
        self._end()
        self.closed(broken.code, broken.what)

    def _frames(self) -> tuple[list[tuple[int, bytes]], Broken | None]:
        """The whole messages in the buffer (opcode, payload), and what broke the protocol
        after them if anything did; an unfinished frame waits for more."""
        buffer, at, end = self._buffer, 0, len(self._buffer)
        messages: list[tuple[int, bytes]] = []
        try:
            while at < end:
                if self._skip:
                    passed = min(self._skip, end - at)
                    self._skip -= passed
                    at += passed
                    continue
                if buffer[at] == STRAY_NEWLINE and not self._started:
                    at += 1
                    continue
                header = _header(buffer, at, end)
                if header is None:
                    break
                fin, opcode, size, start = header
                if opcode < OP_CLOSE and self._too_big(opcode, size):
                    self._drop(opcode, fin, size)  # read past as it arrives, never kept
                    self._started = True
                    self._skip = size - min(size, end - start)
                    at = min(end, start + size)
                    continue
                if end < start + size:
                    break
                payload = bytes(buffer[start : start + size])
                at = start + size
                self._started = True
                message = self._assemble(fin, opcode, payload)
                if message is not None:
                    messages.append(message)
        except Broken as broken:
            return messages, broken
        finally:
            del buffer[:at]
        return messages, None

    def _too_big(self, opcode: int, size: int) -> bool:
        """Whether this data frame's message is over MESSAGE_LIMIT (Broken: past SKIP_LIMIT,
        or out of order, RFC 6455 §5.4)."""
        message = self._message
        if opcode == OP_CONTINUATION and message is None:
            raise Broken(PROTOCOL_ERROR, "a continuation frame with no message begun (§5.4)")
        if opcode != OP_CONTINUATION and message is not None:
            raise Broken(PROTOCOL_ERROR, "a new message inside an unfinished one (§5.4)")
        so_far = message.size if message is not None else 0
        if so_far + size > SKIP_LIMIT:
            raise Broken(TOO_BIG, f"a message of more than {SKIP_LIMIT // 2**20} MB")
        return so_far + size > MESSAGE_LIMIT or (message is not None and message.dropped)

    def _drop(self, opcode: int, fin: bool, size: int) -> None:
        """Count a frame of a message too big to keep, and forget what it had so far."""
        message = self._message or _Message(opcode)
        if not message.dropped:
            log.warning(
                "Slack sent a message of more than %d MB; igor dropped it unread",
                MESSAGE_LIMIT // 2**20,
            )
        message.dropped, message.size, message.parts = True, message.size + size, []
        self._message = None if fin else message

    def _assemble(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        """A whole message from its frames (control frames come whole, in between)."""
        if opcode >= OP_CLOSE:
            return opcode, payload
        message = self._message or _Message(opcode)
        message.parts.append(payload)
        message.size += len(payload)
        if not fin:
            self._message = message
            return None
        self._message = None
        return message.opcode, b"".join(message.parts)

    def _handle(self, messages: list[tuple[int, bytes]]) -> None:
        """Ack this read's envelopes in one send, then hand each message on, in order."""
        envelopes: list[Envelope] = []
        later: list[Envelope | dict[str, Any]] = []
        listening = self.listening()
        for opcode, payload in messages:
            if opcode == OP_TEXT:
                try:
                    text = payload.decode("utf-8")
                except UnicodeDecodeError:  # RFC 6455 §8.1: fail the connection
                    self._ack_and_take(envelopes, later)
                    self._fail(Broken(NOT_UTF8, "a text message that is not UTF-8 (§8.1)"))
                    return
                message = _json_object(text)
                if message is None:  # only this one is lost: Slack sends it again
                    log.warning("Slack sent a message igor cannot read (%d bytes); dropped it",
                                len(payload))  # fmt: skip
                    continue
                envelope = _envelope(message)
                if envelope is None:
                    later.append(message)
                elif listening:
                    envelopes.append(envelope)
                    later.append(envelope)
            elif opcode == OP_PING:  # RFC 6455 §5.5.3: a Pong echoes the Ping's data
                self._send(client_frame(OP_PONG, payload))
            elif opcode == OP_PONG:
                self._pong(payload)
            elif opcode == OP_CLOSE:
                self._ack_and_take(envelopes, later)
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                # RFC 6455 §5.5.1: a Close is answered with a Close, echoing its status.
                self._send(close_frame(code if code in SENDABLE_CLOSE_CODES else None))
                self._end()
                self.closed(code, payload[2:].decode("utf-8", errors="replace"))
                return
            else:
                log.warning("Slack sent a frame igor does not read (opcode %#x)", opcode)
        self._ack_and_take(envelopes, later)

    def _ack_and_take(
        self, envelopes: list[Envelope], later: list[Envelope | dict[str, Any]]
    ) -> None:
        if envelopes and not self._ack(envelopes):
            acked = {envelope_id for envelope_id, _, _ in envelopes}
            later[:] = [m for m in later if isinstance(m, dict) or m[0] not in acked]
        for item in later:
            if isinstance(item, dict):
                self.other(item)
                continue
            _, kind, payload = item
            try:
                self.take(kind, payload)
            except Exception:  # the reader must outlive any one envelope: it is acked already
                log.exception("an envelope of type %s could not be taken", kind)
        later.clear()
        envelopes.clear()

    def _ack(self, envelopes: list[Envelope]) -> bool:
        """All acks in one send; False when the connection is gone (Slack delivers again)."""
        sent = self._send(ack_frames([envelope_id for envelope_id, _, _ in envelopes]))
        if not sent:
            log.warning("could not ack %d envelope(s); Slack will deliver them again",
                        len(envelopes))  # fmt: skip
        return sent

    def _send(self, data: bytes) -> bool:
        """Frames out on this connection; False when it is gone."""
        try:
            with self.session.sock_send_lock:
                sock = self.session.sock
                if sock is None:
                    raise ConnectionError("the connection was closed")
                sock.sendall(data)
        except OSError as error:
            log.info("could not send to Slack (%s)", type(error).__name__)
            return False
        return True

    def _pong(self, payload: bytes) -> None:
        """slack_sdk's pings carry `session_id:time`; the answer says the connection lives."""
        session_id, _, sent = payload.decode("utf-8", errors="replace").partition(":")
        if session_id == self.session.session_id:
            with contextlib.suppress(ValueError):
                self.session.last_ping_pong_time = float(sent)


def _send_at_once(sock: socket.socket | None) -> None:
    """Acks leave as soon as they are sent (TCP_NODELAY, tcp(7)). With Nagle's algorithm
    on, a send while an earlier one is unacknowledged waits for the peer's ACK, which
    Slack's end may delay (up to 40 ms on Linux) when it has nothing to send back: the
    last acks of a burst waited that long. Every WebSocket library igor could use does
    the same (aiohttp's connector, websockets)."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as error:  # not TCP (a test's socket pair): nothing to hold back
        log.debug("could not set TCP_NODELAY on the Socket Mode connection: %s", error)


def _header(buffer: bytearray, at: int, end: int) -> tuple[bool, int, int, int] | None:
    """The frame at `at`: FIN, opcode, payload size and where the payload starts (None until
    the header is whole); Broken when no server may send it (RFC 6455 §5.1, §5.2, §5.5)."""
    if end - at < 2:
        return None
    first, second = buffer[at], buffer[at + 1]
    fin, opcode = first & 0x80 != 0, first & 0x0F
    if first & 0x70:
        raise Broken(PROTOCOL_ERROR, "a frame with a reserved (RSV) bit set (§5.2)")
    if second & 0x80:
        raise Broken(PROTOCOL_ERROR, "a masked frame, which a server never sends (§5.1)")
    if opcode not in OPCODES:
        raise Broken(PROTOCOL_ERROR, f"a frame with the reserved opcode {opcode:#x} (§5.2)")
    size, start = second & 0x7F, at + 2
    if size == 126:
        if end - at < 4:
            return None
        (size,) = struct.unpack_from("!H", buffer, at + 2)
        start = at + 4
    elif size == 127:
        if end - at < 10:
            return None
        (size,) = struct.unpack_from("!Q", buffer, at + 2)
        start = at + 10
        if size >> 63:
            raise Broken(PROTOCOL_ERROR, "a frame length with its top bit set (§5.2)")
    if opcode >= OP_CLOSE and (not fin or size > 125):
        raise Broken(PROTOCOL_ERROR, "a control frame split or over 125 bytes (§5.5)")
    return fin, opcode, size, start


def _json_object(text: str) -> dict[str, Any] | None:
    """The JSON object Slack sent, or None when it is not one igor can read."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
        return None
    return message if isinstance(message, dict) else None


def _envelope(message: dict[str, Any]) -> Envelope | None:
    """An envelope to ack (it has an `envelope_id`), or None for Slack's other messages."""
    envelope_id = message.get("envelope_id")
    if not isinstance(envelope_id, str) or not envelope_id:
        return None
    payload = message.get("payload")
    return envelope_id, str(message.get("type", "")), payload if isinstance(payload, dict) else {}
