"""A scripted HTTP origin and a forwarding proxy on loopback, for igor's HTTP module.

The origin answers what a test scripts, or misbehaves on purpose (drops a request unanswered,
cuts an answer short) and records every request with its connection; the proxy forwards
absolute-URI requests and CONNECT tunnels, and records what it was asked.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit


@dataclass
class Seen:
    """One request as the server read it: `connection` tells connections apart, `nth` is
    the request's place on its connection (1 for the first)."""

    connection: int
    nth: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    """What to send back. `then`: "" (keep the connection), "close" (close it after the
    answer, without saying so), "drop" (no answer at all), "cut" (half the body, closed)."""

    status: int = 200
    body: bytes = b'{"response": [], "count": 0}'
    headers: dict[str, str] = field(default_factory=dict)
    then: str = ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: Callable[[Seen], Answer]
    seen: list[Seen]
    lock: threading.Lock
    open_sockets: set[socket.socket]


class _OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def setup(self) -> None:
        super().setup()
        self.nth = 0
        server = cast(_Server, self.server)
        with server.lock:
            server.open_sockets.add(self.connection)

    def finish(self) -> None:
        server = cast(_Server, self.server)
        with server.lock:
            server.open_sockets.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        server = cast(_Server, self.server)
        self.nth += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.client_address[1], self.nth, self.command, self.path,
                    {k.lower(): v for k, v in self.headers.items()}, body)  # fmt: skip
        with server.lock:
            server.seen.append(seen)
        answer = server.script(seen)
        if answer.then == "drop":
            self.close_connection = True
            return
        size = len(answer.body) * (2 if answer.then == "cut" else 1)
        self.send_response(answer.status)
        for name, value in {"Content-Length": str(size), **answer.headers}.items():
            self.send_header(name, value)
        self.end_headers()
        sent = answer.body[: len(answer.body) // 2] if answer.then == "cut" else answer.body
        self.wfile.write(sent)
        self.wfile.flush()
        if answer.then in ("close", "cut"):
            self.close_connection = True


class Origin:
    """An HTTP (or, with `tls`, HTTPS) server on 127.0.0.1 answering what `script` says."""

    def __init__(
        self, script: Callable[[Seen], Answer] | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.server = _Server(("127.0.0.1", 0), _OriginHandler)
        self.server.script = script or (lambda seen: Answer())
        self.server.seen = []
        self.server.lock = threading.Lock()
        self.server.open_sockets = set()
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, with igor's API path."""
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}/api/3"

    @property
    def seen(self) -> list[Seen]:
        """The requests read so far."""
        with self.server.lock:
            return list(self.server.seen)

    def __enter__(self) -> Origin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        with self.server.lock:
            sockets = list(self.server.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.server.server_close()
        self._thread.join(timeout=5)


@dataclass
class Asked:
    """One request a proxy received: its request line and headers."""

    method: str
    target: str
    headers: dict[str, str]


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    asked: list[Asked]
    lock: threading.Lock


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _record(self) -> None:
        server = cast(_ProxyServer, self.server)
        with server.lock:
            server.asked.append(Asked(self.command, self.path,
                                      {k.lower(): v for k, v in self.headers.items()}))  # fmt: skip

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def _forward(self) -> None:
        """Forward an absolute-URI request to its origin, and its answer back."""
        self._record()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
        path = target.path + (f"?{target.query}" if target.query else "")
        forwarded = {k: v for k, v in self.headers.items() if k.lower() != "proxy-authorization"}
        upstream.request(self.command, path, body, forwarded)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    def do_CONNECT(self) -> None:
        """Open a tunnel to host:port and pass bytes both ways until either side closes."""
        self._record()
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        sockets = [self.connection, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 10)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.connection else self.connection).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
            self.close_connection = True


class Proxy:
    """A forwarding HTTP proxy on 127.0.0.1 (absolute URIs and CONNECT)."""

    def __init__(self) -> None:
        self.server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.asked = []
        self.server.lock = threading.Lock()
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """host:port."""
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def asked(self) -> list[Asked]:
        """What it was asked so far."""
        with self.server.lock:
            return list(self.server.asked)

    def __enter__(self) -> Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def free_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, not listening, while the test runs)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
