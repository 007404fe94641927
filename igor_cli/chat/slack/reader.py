"""Reading a Socket Mode connection: every envelope acked as soon as its frame is read.

slack_sdk's built-in client keeps the connection (handshake, pings, reconnects,
`disconnect` messages) and igor reads the frames. Its own reader hands frames
over only when a `recv` happens to end where a frame ends, so under a burst the
first envelopes wait for the last; it recurses once per buffered frame (a
backlog of ~1,000 overflows the stack); and each envelope then crosses a queue,
a dispatcher thread and a pool of ten before it is acked, each hop waiting for
the GIL behind igor's busy intake threads. Here, on the connection's receive
thread, the frames of one `recv` are parsed at once, their acks leave in one
send, and only then are the payloads handed to igor's intake: the ack never
waits for intake work, and a burst costs a few sends instead of one per envelope.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_sdk.socket_mode.builtin.connection import Connection, ConnectionState

log = logging.getLogger("igor.socket")

RECEIVE_BYTES = 256 * 1024  # one recv takes what has arrived (on wss://, one TLS record)
IDLE_SECONDS = 0.2  # slack_sdk's pause while a session has no socket yet (or any more)

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
# slack_sdk's handshake reads the response's lines up to each "\r", so the "\n"
# that ends the last one reaches the frame reader first. 0x0A cannot start a
# frame (a control frame is never fragmented), so it is skipped there.
STRAY_NEWLINE = 0x0A

Envelope = tuple[str, str, dict[str, Any]]  # envelope_id, type, payload

# What igor takes over from slack_sdk's built-in client: the method its receive thread
# runs for each connection, and the connection's socket, locks and ping answer.
# Private names: a slack_sdk that renames one must stop the bot, not leave it
# connected and deaf (nothing acked, Slack delivering every message again).
CLIENT_NEEDS = ("_run_current_session", "_on_message", "_on_close")
CONNECTION_NEEDS = ("sock", "sock_receive_lock", "sock_send_lock", "pong", "disconnect")


def unsupported(client: object, connection: object) -> list[str]:
    """The names igor's reader needs that this slack_sdk's client or connection lacks."""
    return [
        f"{type(owner).__name__}.{name}"
        for owner, names in ((client, CLIENT_NEEDS), (connection, CONNECTION_NEEDS))
        for name in names
        if not hasattr(owner, name)
    ]


def ack_frame(envelope_id: str) -> bytes:
    """The masked text frame `{"envelope_id": ...}` (a client masks every frame, RFC 6455)."""
    data = json.dumps({"envelope_id": envelope_id}).encode()
    size = len(data)
    if size <= 125:
        header = struct.pack("!BB", 0x80 | OP_TEXT, 0x80 | size)
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", 0x80 | OP_TEXT, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | OP_TEXT, 0x80 | 127, size)
    mask = os.urandom(4)
    return header + mask + _masked(data, mask)


def _masked(data: bytes, mask: bytes) -> bytes:
    """`data` XOR the repeated 4-byte `mask` (masking and unmasking are the same)."""
    size = len(data)
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


class SessionReader:
    """The frames of one connection until its state ends: envelopes acked, then taken.

    `listening()` says whether envelopes are still taken (when not, they are
    neither acked nor taken, and Slack delivers them again, to another replica).
    `take` gets each acked envelope; `other` gets every other text message (the
    `hello` and `disconnect` messages, for slack_sdk's own handling); `closed`
    gets a close frame's code and reason (slack_sdk reconnects from there).
    """

    def __init__(
        self,
        session: Connection,
        state: ConnectionState,
        *,
        listening: Callable[[], bool],
        take: Callable[[str, dict[str, Any]], None],
        other: Callable[[str], None],
        closed: Callable[[int, str], None],
    ) -> None:
        self.session = session
        self.state = state
        self.listening = listening
        self.take = take
        self.other = other
        self.closed = closed
        self._buffer = bytearray()
        self._fragments: list[bytes] | None = None

    def run(self) -> None:
        """Read until the session ends (closed here, by slack_sdk, or by a new connection)."""
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
            self._handle(self._frames())

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

    def _frames(self) -> list[tuple[int, bytes]]:
        """The whole messages in the buffer (opcode, payload); what is left waits for more."""
        buffer, at, end = self._buffer, 0, len(self._buffer)
        messages: list[tuple[int, bytes]] = []
        while at < end:
            if buffer[at] == STRAY_NEWLINE:
                at += 1
                continue
            if end - at < 2:
                break
            first, second = buffer[at], buffer[at + 1]
            size, start = second & 0x7F, at + 2
            if size == 126:
                if end - at < 4:
                    break
                (size,) = struct.unpack_from("!H", buffer, at + 2)
                start = at + 4
            elif size == 127:
                if end - at < 10:
                    break
                (size,) = struct.unpack_from("!Q", buffer, at + 2)
                start = at + 10
            mask = b""
            if second & 0x80:  # servers do not mask; unmask anyway
                mask = bytes(buffer[start : start + 4])
                start += 4
            if end < start + size:
                break
            payload = bytes(buffer[start : start + size])
            if mask and size:
                payload = _masked(payload, mask)
            at = start + size
            message = self._assemble(first & 0x80 != 0, first & 0x0F, payload)
            if message is not None:
                messages.append(message)
        del self._buffer[:at]
        return messages

    def _assemble(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        """A whole message from its fragments (control frames come whole, in between)."""
        if opcode >= OP_CLOSE:
            return opcode, payload
        if opcode != OP_CONTINUATION:
            self._fragments = [bytes([opcode]), payload]
        elif self._fragments is not None:
            self._fragments.append(payload)
        else:
            return None  # a continuation of nothing: nothing to make of it
        if not fin:
            return None
        kind, *parts = self._fragments
        self._fragments = None
        return kind[0], b"".join(parts)

    def _handle(self, messages: list[tuple[int, bytes]]) -> None:
        """Ack this read's envelopes in one send, then hand each message on, in order."""
        envelopes: list[Envelope] = []
        later: list[Envelope | str] = []
        listening = self.listening()
        for opcode, payload in messages:
            if opcode == OP_TEXT:
                text = payload.decode("utf-8", errors="replace")
                envelope = _envelope(text)
                if envelope is None:
                    later.append(text)
                elif listening:
                    envelopes.append(envelope)
                    later.append(envelope)
            elif opcode == OP_PING:
                self.session.pong(payload)
            elif opcode == OP_PONG:
                self._pong(payload)
            elif opcode == OP_CLOSE:
                self._ack_and_take(envelopes, later)
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._end()
                self.closed(code, payload[2:].decode("utf-8", errors="replace"))
                return
            else:
                log.warning("Slack sent a frame igor does not read (opcode %#x)", opcode)
        self._ack_and_take(envelopes, later)

    def _ack_and_take(self, envelopes: list[Envelope], later: list[Envelope | str]) -> None:
        if envelopes and not self._ack(envelopes):
            acked = {envelope_id for envelope_id, _, _ in envelopes}
            later[:] = [m for m in later if isinstance(m, str) or m[0] not in acked]
        for item in later:
            if isinstance(item, str):
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
        data = b"".join(ack_frame(envelope_id) for envelope_id, _, _ in envelopes)
        try:
            with self.session.sock_send_lock:
                sock = self.session.sock
                if sock is None:
                    raise ConnectionError("the connection was closed")
                sock.sendall(data)
        except OSError as error:
            log.warning("could not ack %d envelope(s) (%s); Slack will deliver them again",
                        len(envelopes), type(error).__name__)  # fmt: skip
            return False
        return True

    def _pong(self, payload: bytes) -> None:
        """slack_sdk's pings carry `session_id:time`; the answer says the connection lives."""
        session_id, _, sent = payload.decode("utf-8", errors="replace").partition(":")
        if session_id == self.session.session_id:
            with contextlib.suppress(ValueError):
                self.session.last_ping_pong_time = float(sent)


def _envelope(text: str) -> Envelope | None:
    """An envelope to ack (it has an `envelope_id`), or None for Slack's other messages."""
    if not text.startswith("{"):
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    envelope_id = message.get("envelope_id")
    if not isinstance(envelope_id, str) or not envelope_id:
        return None
    payload = message.get("payload")
    return envelope_id, str(message.get("type", "")), payload if isinstance(payload, dict) else {}
