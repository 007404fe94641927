"""HTTP/1.1 for igor's API clients, on the standard library's `http.client`.

Why not `requests`: it cost `igor list` about 38 ms of its start (urllib3, http.cookiejar,
charset_normalizer, idna, importlib.metadata) and 0.75 ms of CPU a GET of a page (this
module: 0.25), under the GIL, which a list of 1,667 pages and the bot's workers pay. igor
asks little of HTTP: JSON over kept-alive connections, used from many threads. This module
does that and what a user's network needs, as `requests` did:

- TLS verified against the system's certificate store (`ssl.create_default_context()`,
  which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), or the bundle `REQUESTS_CA_BUNDLE` or
  `CURL_CA_BUNDLE` names (`requests`' variables). Not certifi's bundle: igor trusts what
  the system trusts (as curl, git and gh do), a company's root included.
- Proxies from the environment as `urllib.request.getproxies()` and `proxy_bypass()` read
  them (the system's settings on macOS and Windows), `NO_PROXY` with CIDR ranges as
  `requests` reads it; https through an http proxy's CONNECT tunnel; user:password in the
  proxy URL as Basic proxy authorization.
- gzip and deflate answers decoded; a connect and a read timeout, within a total.
- A GET follows up to 30 redirects; the Authorization header goes to the same origin
  only (or its upgrade to https). Other methods are never redirected nor sent twice: a
  change opens a fresh connection, so a failure after it is connected may mean it arrived.
  A caller may let a change go on a kept-alive connection (`keep_alive=True`: Slack's
  Web API, a post a second): one idle for at most 4 s (servers close idle connections,
  Apache after 5 s, and one closing as the change is sent loses it), never sent again.

Not reproduced: cookies (igor keeps none), .netrc, https:// and socks proxies (said in
the error), client certificates, HTTP/2, streaming bodies.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

MAX_REDIRECTS = 30  # as requests
# A change goes on a kept-alive connection idle at most this long: under the shortest
# keep-alive timeout servers commonly set (Apache's 5 s), so one is rarely closed under it.
CHANGE_REUSE_SECONDS = 4.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class NetworkError(Exception):
    """A request that got no full answer. `words` says why (never a class name, never a
    header); `sent` is False only when nothing of the request can have left igor."""

    def __init__(self, words: str, *, sent: bool) -> None:
        super().__init__(words)
        self.words = words
        self.sent = sent


class Response:
    """A full answer: status, headers (names in lower case), the decoded body."""

    __slots__ = ("content", "headers", "status", "url")

    def __init__(self, status: int, headers: dict[str, str], content: bytes, url: str) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        self.url = url

    def __repr__(self) -> str:
        return f"<Response {self.status}>"  # never the headers: a proxy's may carry secrets

    def header(self, name: str) -> str | None:
        """One header's value (several joined by ", "), None when absent."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON (ValueError when it is not)."""
        return json.loads(self.content)

    @property
    def text(self) -> str:
        """The body as text, in the charset the answer names (UTF-8 otherwise)."""
        kind = self.headers.get("content-type", "")
        charset = kind.partition("charset=")[2].split(";")[0].strip().strip('"') or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


class _Route:
    """Where a request for one scheme and host goes: straight there, or through a proxy."""

    __slots__ = ("host", "port", "proxy", "proxy_auth", "proxy_problem", "scheme")

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.proxy: tuple[str, int] | None = None
        self.proxy_auth = ""  # "Basic ..." from the proxy URL's user:password
        # A proxy igor cannot use (https://, socks): said when a request is made.
        self.proxy_problem = ""

    @property
    def key(self) -> tuple[str, str, int, tuple[str, int] | None]:
        return (self.scheme, self.host, self.port, self.proxy)


class Session:
    """Kept-alive connections, shared by many threads: a connection serves one request at
    a time, and goes back to a small pool per origin when its answer was read in full.

    Nothing a request carries (the Authorization header) is kept on the session.
    """

    def __init__(self, pool_size: int = 10) -> None:
        self.pool_size = max(1, pool_size)
        self._lock = threading.Lock()
        self._tls_lock = threading.Lock()
        # Idle connections per route, each with when it became idle (monotonic).
        self._idle: dict[tuple[Any, ...], list[tuple[http.client.HTTPConnection, float]]] = {}
        self._routes: dict[tuple[str, str, int], _Route] = {}
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    def close(self) -> None:
        """Close the idle connections; those in use close when their answer is read."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection, _ in connections:
                connection.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        total: float | None = None,
        keep_alive: bool = False,
    ) -> Response:
        """One request and its full answer (a GET's redirects followed); `NetworkError`
        when none came. `timeout`: connect and read limits, each within `total` seconds.
        A change goes on a fresh connection unless `keep_alive` (the module says when)."""
        end = time.monotonic() + total if total is not None else None
        if method != "GET":
            return self._exchange(
                method, url, headers, body, timeout, end,
                fresh=not keep_alive, idle_within=CHANGE_REUSE_SECONDS,
            )  # fmt: skip
        sent = dict(headers)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._exchange(method, url, sent, None, timeout, end, fresh=False)
            location = response.header("location")
            if response.status not in _REDIRECTS or not location:
                return response
            target = urljoin(url, location)
            if not _keeps_authorization(url, target):
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
            url = target
        raise NetworkError("too many redirects", sent=True)

    # -- one exchange ------------------------------------------------------

    def _exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: tuple[float, float],
        end: float | None,
        *,
        fresh: bool,
        idle_within: float | None = None,
    ) -> Response:
        route, target = self._route(url)
        connection = None if fresh else self._reuse(route, idle_within)
        reused = connection is not None
        if connection is None:
            connection = self._connect(route, timeout[0], end)
        read_timeout = _within(timeout[1], end)
        if read_timeout is None:
            connection.close()
            raise NetworkError("timed out", sent=False)
        if connection.sock is not None:
            connection.sock.settimeout(read_timeout)
        wanted = {"Accept-Encoding": "gzip, deflate", **headers}
        if route.proxy_auth and route.scheme == "http":  # https: said to the tunnel only
            wanted["Proxy-Authorization"] = route.proxy_auth
        try:
            try:
                connection.request(method, target, body, wanted)
            except ValueError as exc:  # refused before a byte was written (a control character)
                connection.close()
                words = "invalid URL" if isinstance(exc, http.client.InvalidURL) else "bad header"
                raise NetworkError(words, sent=False) from None
            answer = connection.getresponse()
            content = answer.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            connection.close()
            if reused and method == "GET":
                # The server closed a kept-alive connection as it was taken: a GET may be
                # asked again at once, on a new connection (only a GET: it changes nothing).
                return self._exchange(method, url, headers, body, timeout, end, fresh=True)
            raise NetworkError(_words(exc), sent=True) from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise NetworkError(_words(exc), sent=True) from None
        found = _headers_of(answer)
        try:
            response = Response(answer.status, found, _decoded(content, found), url)
        except NetworkError:
            connection.close()
            raise
        if answer.will_close:
            connection.close()
        else:
            self._keep(route, connection)
        return response

    def _route(self, url: str) -> tuple[_Route, str]:
        """The route to a URL's origin (read from the environment once per origin), and
        what goes on the request line: the path, or (to an http proxy) the whole URL."""
        try:
            parts = urlsplit(url)
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        except ValueError:
            raise NetworkError("invalid URL", sent=False) from None
        scheme, host = parts.scheme.lower(), parts.hostname or ""
        if scheme not in _DEFAULT_PORTS or not host:
            raise NetworkError("invalid URL", sent=False)
        key = (scheme, host, port)
        route = self._routes.get(key)
        if route is None:
            route = _Route(scheme, host, port)
            _set_proxy(route)
            with self._lock:
                route = self._routes.setdefault(key, route)
        if route.proxy_problem:
            raise NetworkError(route.proxy_problem, sent=False)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        if route.proxy is not None and scheme == "http":
            return route, f"{scheme}://{parts.netloc.rpartition('@')[2]}{path}"
        return route, path

    def _reuse(
        self, route: _Route, idle_within: float | None = None
    ) -> http.client.HTTPConnection | None:
        """An idle connection to the route that the server has not closed meanwhile (and,
        with `idle_within`, idle no longer than that many seconds)."""
        while True:
            with self._lock:
                idle = self._idle.get(route.key)
                if not idle:
                    return None
                connection, since = idle.pop()  # the last kept: the least idle
            if idle_within is not None and time.monotonic() - since > idle_within:
                connection.close()  # the others kept are older still: they wait for a GET
                return None
            if not _dropped(connection):
                return connection
            connection.close()

    def _keep(self, route: _Route, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed:
                idle = self._idle.setdefault(route.key, [])
                if len(idle) < self.pool_size:
                    idle.append((connection, time.monotonic()))
                    return
        connection.close()

    def _connect(
        self, route: _Route, connect_timeout: float, end: float | None
    ) -> http.client.HTTPConnection:
        """A new connection, connected (TCP, the proxy's tunnel, TLS): every failure here
        happened before any byte of the request was sent."""
        limit = _within(connect_timeout, end)
        if limit is None:
            raise NetworkError("timed out", sent=False)
        host, port = route.proxy or (route.host, route.port)
        connection: http.client.HTTPConnection
        if route.scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=limit, context=self._context()
            )
            if route.proxy is not None:
                auth = {"Proxy-Authorization": route.proxy_auth} if route.proxy_auth else None
                connection.set_tunnel(route.host, route.port, headers=auth)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=limit)
        connection.response_class = _Answer
        try:
            connection.connect()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            connection.close()
            words = _words(exc)
            raise NetworkError(
                f"proxy error: {words}" if route.proxy is not None else words, sent=False
            ) from None
        return connection

    def _context(self) -> ssl.SSLContext:
        """The TLS settings, made once: the system's store, or the bundle a variable names."""
        with self._tls_lock:  # made once (loading a store takes milliseconds)
            if self._tls is None:
                self._tls = _tls_context()
            return self._tls


def _tls_context() -> ssl.SSLContext:
    environ = os.environ
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests' order
        bundle = environ.get(name)
        if bundle:
            try:
                if os.path.isdir(bundle):
                    return ssl.create_default_context(capath=bundle)
                return ssl.create_default_context(cafile=bundle)
            except (OSError, ValueError):
                raise NetworkError(
                    f"TLS error: the CA bundle {name} names cannot be read", sent=False
                ) from None
    named = environ.get("SSL_CERT_FILE")
    if named and not os.path.isfile(named):  # OpenSSL would pass over it in silence
        raise NetworkError("TLS error: the CA bundle SSL_CERT_FILE names is no file", sent=False)
    return ssl.create_default_context()


def _set_proxy(route: _Route) -> None:
    """The proxy for the route's scheme and host, as urllib and requests read it."""
    url = _proxy_url(route.scheme, route.host, route.port)
    if not url:
        return
    if "://" not in url:
        url = "http://" + url  # requests reads "proxy:3128" as http
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 0)
    except ValueError:
        route.proxy_problem = "proxy error: the proxy setting is not a URL"
        return
    if parts.scheme.lower() != "http" or not parts.hostname:
        kind = parts.scheme.lower() or "this"
        route.proxy_problem = f"proxy error: igor speaks to http:// proxies only, not {kind}://"
        return
    route.proxy = (parts.hostname, port)
    if parts.username is not None:
        import base64

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        route.proxy_auth = "Basic " + base64.b64encode(pair.encode()).decode()


def _proxy_url(scheme: str, host: str, port: int) -> str:
    """The proxy URL for a scheme and host ("" for none): the environment's `*_proxy`
    variables (and, on macOS and Windows, the system's settings), `no_proxy` honoured."""
    if sys.platform not in ("darwin", "win32") and not any(
        name[-6:].lower() == "_proxy" for name in os.environ
    ):
        return ""  # what getproxies() finds here, without importing urllib.request (5 ms)
    import urllib.request

    proxies = urllib.request.getproxies()
    url = proxies.get(scheme) or proxies.get("all") or ""
    # "host:port": a no_proxy entry may name either (urllib splits it).
    if url and (urllib.request.proxy_bypass(f"{host}:{port}") or _in_ranges(host, proxies)):
        return ""
    return url


def _in_ranges(host: str, proxies: Mapping[str, str]) -> bool:
    """An IP address inside a CIDR range of `no_proxy` (requests honours those)."""
    no_proxy = proxies.get("no", "")
    if "/" not in no_proxy:
        return False
    import ipaddress

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for entry in no_proxy.replace(" ", "").split(","):
        if "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _keeps_authorization(old: str, new: str) -> bool:
    """Whether a redirect keeps the Authorization header: the same origin, or its upgrade
    from http to https on the default ports (requests' rule)."""
    a, b = urlsplit(old), urlsplit(new)
    if a.hostname != b.hostname:
        return False
    if (a.scheme, a.port, b.scheme, b.port) in (("http", None, "https", None),):
        return True
    return (a.scheme, a.port) == (b.scheme, b.port)


def _within(limit: float, end: float | None) -> float | None:
    """`limit`, or less if the total ends sooner; None when it has ended."""
    if end is None:
        return limit
    left = end - time.monotonic()
    return min(limit, left) if left > 0 else None


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether the server closed (or wrote to) an idle connection: it is not reused."""
    sock = connection.sock
    if sock is None:
        return True
    import select

    try:
        if hasattr(select, "poll"):
            poll = select.poll()
            poll.register(sock, select.POLLIN)
            return bool(poll.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _Answer(http.client.HTTPResponse):
    """An answer whose header block is read as the `Name: value` lines servers send.

    http.client reads every header block with the email package: 72 us of CPU an answer
    on a 2-core VM, most of what reading a small answer costs, paid for each page `igor
    list` reads and each call the bot makes. The lines become the same `HTTPMessage`
    (`set_raw`, as the email parser stores them); a block with anything else in it (a
    folded line, a line that is no header) goes to http.client's own reader, so nothing
    is read otherwise. `begin` is http.client's (the same in CPython 3.11 to 3.13) but
    for that: this class is the one user of http.client's private names.
    """

    def begin(self) -> None:
        """Read the status line and the headers; what follows is the body."""
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            http.client._read_headers(self.fp)  # a 100 Continue's: skipped
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        lines = http.client._read_headers(self.fp)
        self.headers = self.msg = _header_block(lines)
        encoding = self.headers.get("transfer-encoding")
        self.chunked = bool(encoding) and encoding.lower() == "chunked"
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if (
            status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
            or 100 <= status < 200
            or self._method == "HEAD"
        ):
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True


def _header_block(lines: list[bytes]) -> http.client.HTTPMessage:
    """The headers of an answer (its lines, the blank one last), as http.client reads them."""
    message = http.client.HTTPMessage()
    for raw in lines:
        if raw in (b"\r\n", b"\n", b""):
            break
        line = raw.decode("iso-8859-1").removesuffix("\n").removesuffix("\r")
        name, colon, value = line.partition(":")
        # A name of printable ASCII without spaces, and no carriage return but the line's
        # end (the email parser would end the line there): else its reader reads it.
        plain = name.isascii() and name.isprintable() and " " not in name and "\r" not in line
        if not (colon and name and plain):
            import io

            return http.client.parse_headers(io.BytesIO(b"".join(lines)))
        message.set_raw(name, value.lstrip(" \t"))
    return message


def _headers_of(answer: http.client.HTTPResponse) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in answer.getheaders():
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _decoded(content: bytes, headers: Mapping[str, str]) -> bytes:
    """The body without its content encoding (gzip, deflate)."""
    encoding = headers.get("content-encoding")
    if not encoding or not content:
        return content
    import zlib

    kind = encoding.strip().lower()
    try:
        if kind in ("gzip", "x-gzip"):
            return zlib.decompress(content, 16 + zlib.MAX_WBITS)
        if kind == "deflate":
            try:
                return zlib.decompress(content)
            except zlib.error:  # raw deflate, as some servers send it
                return zlib.decompress(content, -zlib.MAX_WBITS)
    except zlib.error:
        raise NetworkError("an answer that could not be decompressed", sent=True) from None
    return content


def _words(exc: BaseException | None) -> str:
    """Why a connection or an exchange failed, in words."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "name not resolved"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = (exc.verify_message or "certificate verify failed").rstrip(".")
        return f"TLS error: {why}"
    if isinstance(exc, ssl.SSLError):
        return "TLS error"
    if isinstance(exc, http.client.InvalidURL):
        return "invalid URL"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, http.client.RemoteDisconnected | http.client.IncompleteRead):
        return "connection closed before a full answer"
    if isinstance(exc, OSError) and str(exc).startswith("Tunnel connection failed:"):
        status = str(exc).split(":", 1)[1].split()[:1]
        return f"the proxy refused the tunnel (HTTP {status[0] if status else '?'})"
    if isinstance(exc, http.client.HTTPException):
        return "an answer that is not HTTP"
    if isinstance(exc, OSError) and exc.strerror:  # "network is unreachable", "no route to host"
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return "connection failed"
