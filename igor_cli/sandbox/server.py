"""The simulator's HTTP side: a real server on 127.0.0.1 speaking Cloud 66 API v3.

`Simulator` owns the state (in memory, or in a JSON file shared between
processes), advances simulated time lazily on every request, records every
request for tests, and can inject faults (error statuses, dropped connections,
latency) to exercise a client's retry and "outcome unknown" paths. Like the real
API it checks each token's scopes, throttles each token to a budget per clock
hour, and leaves the things the docs leave open (list order, whether a page
carries a count) for tests to choose.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from igor_cli.sandbox.payloads import WORDS_IN_CODE, WORDS_IN_MEANING
from igor_cli.sandbox.records import SandboxError
from igor_cli.sandbox.requests import SANDBOX_TOKEN, RecordedRequest
from igor_cli.sandbox.routes import (
    RATE_LIMIT,
    Reply,
    error_body,
    page_number,
    route,
    scope_needed,
)
from igor_cli.sandbox.sources import UNDOCUMENTED
from igor_cli.sandbox.state import DEFAULT_OUTCOMES, SandboxState

if sys.platform != "win32":
    import fcntl

API_PREFIX = "/api/3"
PAGINATION_STYLES = ("previous", "prev")
ORDERS = ("newest", "oldest")
SCOPES = frozenset({"public", "redeploy", "users", "admin"})
# Unconfirmed: the header names. The API docs show them in their samples (with a
# limit of 3600 there, against the 3,000 an hour their text states).
LIMIT_HEADER = "X-RateLimit-Limit"
REMAINING_HEADER = "X-RateLimit-Remaining"


@dataclass
class _Fault:
    """An injected answer (or a dropped connection when status is None)."""

    status: int | None
    remaining: int
    path_contains: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    method: str = ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 drops connections when a client fetches pages in parallel;
    # a client fetching every page of 50,000 stacks at once opens 1,666 (a dropped SYN
    # costs it a second, and the benchmarks' floors would be slower than they are).
    request_queue_size = 2048
    simulator: Simulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients that hang up mid-answer are expected here."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Cloud66Sandbox/1.0"
    # Idle keep-alive connections are closed by stop(); this only bounds leaks.
    timeout = 300

    @property
    def sim(self) -> Simulator:
        """The simulator this server belongs to."""
        return cast(_Server, self.server).simulator

    def setup(self) -> None:
        """Track the connection so stop() can close idle keep-alive sockets."""
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus the
        # client's delayed ACK adds ~40 ms to every keep-alive answer.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sim._track(self.connection, add=True)

    def finish(self) -> None:
        """Forget the connection."""
        self.sim._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        """Answer a GET."""
        self._handle("GET")

    def do_POST(self) -> None:
        """Answer a POST."""
        self._handle("POST")

    def do_DELETE(self) -> None:
        """Answer a DELETE."""
        self._handle("DELETE")

    def do_PUT(self) -> None:
        """Answer a PUT (no such route)."""
        self._handle("PUT")

    def do_PATCH(self) -> None:
        """Answer a PATCH (no such route)."""
        self._handle("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging."""

    def _handle(self, method: str) -> None:
        sim = self.sim
        if sim._stopped:
            self.close_connection = True
            return
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        body, body_problem = _parse_body(raw, self.headers.get("Content-Type", ""))
        request = RecordedRequest(method, split.path, query, body)
        if method == "GET" and split.path.startswith("/stacks/"):
            self._send_page(sim.dashboard_page(split.path))
            return
        sim._record(request)
        fault, drop = sim._take_faults(method, split.path)
        if sim.latency > 0:
            time.sleep(sim.latency)
        if fault is not None and fault.status is not None:
            # An injected answer never reached the API, so it spends no budget.
            headers = {
                **sim._rate_headers(self.headers.get("Authorization")),
                **(fault.headers or {}),
            }
            reply = Reply(fault.status, fault.body or error_body(fault.status), headers)
        else:
            try:
                reply = sim._answer(
                    request,
                    body_problem=body_problem,
                    authorization=self.headers.get("Authorization"),
                )
            except Exception as exc:  # a simulator bug must still answer in API shape
                reply = Reply(500, error_body(500, description=f"sandbox error: {exc!r}"), {})
        if drop:
            # No response at all: the client sees a reset with its request delivered.
            self.close_connection = True
            return
        self._send(reply)
        if sim._stopped:
            self.close_connection = True

    def _send_page(self, page: tuple[int, str]) -> None:
        status, text = page
        data = text.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def _send(self, reply: Reply) -> None:
        data = json.dumps(reply.payload).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True


def _parse_body(raw: bytes, content_type: str) -> tuple[dict[str, Any], str | None]:
    """JSON or form fields from a request body, and a problem description if unreadable."""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return {}, None
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/json" or (
        kind != "application/x-www-form-urlencoded" and text.lstrip().startswith(("{", "["))
    ):
        try:
            value = json.loads(text)
        except ValueError:
            return {}, "The request body is not valid JSON"
        if not isinstance(value, dict):
            return {}, "The request body must be a JSON object"
        return value, None
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}, None


class Simulator:
    """A Cloud 66 API v3 simulator served over HTTP on 127.0.0.1."""

    def __init__(
        self,
        *,
        stacks: list[dict[str, Any]] | None = None,
        state_path: Path | None = None,
        clock: Callable[[], float] = time.time,
        token: str = SANDBOX_TOKEN,
        scopes: Iterable[str] = SCOPES,
        port: int = 0,
        deploy_seconds: float = 60.0,
        action_seconds: float = 20.0,
        per_page: int = 30,
        pagination_style: str = "previous",
        include_count: bool = True,
        include_pages: bool = False,
        order: str = "newest",
        rate_limit: int | None = RATE_LIMIT,
        undocumented: Iterable[str] = (),
        words: str = WORDS_IN_MEANING,
    ) -> None:
        """Configure it; nothing is bound or read until used (a state file beats `stacks`).

        `scopes` are those of `token`; `add_token()` accepts more tokens.
        `include_count=False` serves pages without any count (a client must
        follow `next`); `include_pages=True` adds the `pages` key the doc
        samples show. `order` is that of the deployments and actions lists.
        `rate_limit` is each token's budget per clock hour (None: unlimited).
        `undocumented` turns on fields no source shows (sources.UNDOCUMENTED names
        them and why one may be wanted); `words` is which half of {code, meaning}
        holds the short word of `outcome` and `triggered_via` (the docs disagree).
        """
        unknown = sorted(set(undocumented) - set(UNDOCUMENTED))
        if unknown:
            raise ValueError(f"no such undocumented field: {', '.join(unknown)}")
        if words not in (WORDS_IN_MEANING, WORDS_IN_CODE):
            raise ValueError(f"words must be {WORDS_IN_MEANING!r} or {WORDS_IN_CODE!r}")
        self.undocumented = frozenset(undocumented)
        self.words = words
        if pagination_style not in PAGINATION_STYLES:
            raise ValueError(f"pagination_style must be one of {PAGINATION_STYLES}")
        if per_page < 1:
            raise ValueError("per_page must be at least 1")
        self.requests: list[RecordedRequest] = []
        self.latency = 0.0
        self.pagination_style = pagination_style
        self.per_page = per_page
        self.include_count = include_count
        self.include_pages = include_pages
        self.order = order
        self.rate_limit = rate_limit
        self.deploy_seconds = deploy_seconds
        self.action_seconds = action_seconds  # how long a stack action runs (restart, ...)
        # Where a damaged state file was moved before the sandbox reseeded, if it was.
        self.recovered: Path | None = None
        self._seed_stacks = stacks
        self._state_path = Path(state_path) if state_path is not None else None
        self._clock = clock
        self._token = token
        self._tokens: dict[str, frozenset[str]] = {token: frozenset(scopes)}
        self._spent: dict[str, tuple[int, int]] = {}
        self._port = port
        self._state: SandboxState | None = None
        self._disk_signature: tuple[int, int, int] | None = None
        self._lock = threading.RLock()
        self._side_lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._drops: list[_Fault] = []
        self._connections: set[socket.socket] = set()
        self.connections_opened = 0  # TCP connections clients opened (keep-alive reuses them)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- lifecycle --------------------------------------------------------

    def start(self) -> Simulator:
        """Bind 127.0.0.1 and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        with self._transaction():
            pass  # load or seed now, so the first request is not the one paying for it
        server = _Server(("127.0.0.1", self._port), _Handler)
        server.simulator = self
        self._stopped = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"igor-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopped = True
        server.shutdown()
        server.server_close()
        with self._side_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Simulator:
        """Start the simulator."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the simulator."""
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server is bound to."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The API base URL, e.g. http://127.0.0.1:8066/api/3."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def token(self) -> str:
        """The bearer token this simulator was made with."""
        return self._token

    @property
    def order(self) -> str:
        """ "newest" or "oldest": which end the deployments and actions lists start at."""
        return self._order

    @order.setter
    def order(self, value: str) -> None:
        # Cloud 66 documents no order for these lists: tests run both ways.
        if value not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}")
        self._order = value

    def add_token(self, token: str, scopes: Iterable[str]) -> None:
        """Accept one more bearer token, with these scopes (replacing any it had)."""
        with self._side_lock:
            self._tokens[token] = frozenset(scopes)

    # -- request log and fault injection ----------------------------------

    def count(self, method: str, path_suffix: str = "") -> int:
        """How many recorded requests used `method` on a path ending with `path_suffix`."""
        with self._side_lock:
            recorded = list(self.requests)
        return sum(1 for r in recorded if r.method == method and r.path.endswith(path_suffix))

    def reset_requests(self) -> None:
        """Forget the recorded requests."""
        with self._side_lock:
            self.requests.clear()

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        path_contains: str = "",
        method: str = "",
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` instead of serving them.

        A request matches when its path contains `path_contains` and, if
        `method` is given, it uses that method.
        """
        with self._side_lock:
            self._faults.append(_Fault(status, count, path_contains, body, headers, method))

    def drop_next(self, count: int = 1, *, path_contains: str = "", method: str = "") -> None:
        """Serve the next `count` matching requests, then close without answering."""
        with self._side_lock:
            self._drops.append(_Fault(None, count, path_contains, method=method))

    def _record(self, request: RecordedRequest) -> None:
        with self._side_lock:
            self.requests.append(request)

    def _take_faults(self, method: str, path: str) -> tuple[_Fault | None, bool]:
        with self._side_lock:
            fault = _take(self._faults, method, path)
            return fault, _take(self._drops, method, path) is not None

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._side_lock:
            if add:
                self.connections_opened += 1
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def dashboard_page(self, path: str) -> tuple[int, str]:
        """The "dashboard" page of a stack (`/stacks/<uid>`), where igor's links point.

        A plain page naming the stack and its deployments, so a link igor prints
        while the sandbox runs leads somewhere; the real dashboard needs a login.
        """
        import html

        uid = path.removeprefix("/stacks/").strip("/")
        with self._transaction() as (state, _):
            try:
                stack = dict(state.get_stack(uid).fields)
            except SandboxError:
                return 404, "<!doctype html><title>Not found</title><p>No such stack.</p>\n"
            _, deployments = state.list_deployments(uid, window=slice(0, 10))
        rows = "".join(
            f"<li>{d['id']}: {html.escape(str(d['outcome']['meaning']))} "
            f"({html.escape(str(d['triggered_by']))}, {d['started_at']})</li>"
            for d in deployments
        )
        title = html.escape(f"{stack['name']} ({stack['environment']})")
        return 200, (
            f"<!doctype html><title>{title}: igor sandbox</title>"
            f"<h1>{title}</h1><p>The igor sandbox's stand-in for the Cloud 66 dashboard.</p>"
            f"<ul>{rows}</ul>\n"
        )

    # -- test helpers -----------------------------------------------------

    def add_stacks(self, n: int, *, prefix: str = "app") -> None:
        """Add `n` production stacks named f"{prefix}-{i:04d}", deployed and healthy."""
        with self._transaction() as (state, now):
            state.add_stacks(n, prefix, now)

    def set_failing(self, stack_name: str, environment: str, failing: bool = True) -> None:
        """Make that stack's deployments end in failure (or succeed again)."""
        with self._transaction() as (state, _):
            state.set_failing(state.find_stack(stack_name, environment).uid, failing)

    def start_foreign_deployment(
        self, stack_name: str, environment: str, *, triggered_by: str = "alice@example.com"
    ) -> int:
        """Start a deployment from "the dashboard" (no user_reference); returns its id."""
        with self._transaction() as (state, now):
            uid = state.find_stack(stack_name, environment).uid
            deployment, _, _ = state.deploy(uid, now=now, user=triggered_by, via="web")
            return deployment.id

    def stack(self, name: str, environment: str) -> dict[str, Any]:
        """The stack's JSON as the API would show it now (KeyError if there is none)."""
        with self._transaction() as (state, _):
            return dict(state.find_stack(name, environment).fields)

    def add_history(
        self,
        stack_name: str,
        environment: str,
        count: int,
        *,
        outcomes: Sequence[str] = DEFAULT_OUTCOMES,
        via: str = "web",
        services: Sequence[str] | None = None,
        git_ref: str | None = None,
        profiles: Sequence[str | None] = (None,),
    ) -> list[int]:
        """Add `count` finished deployments older than the stack's oldest; newest id first.

        They are spread over the past weeks, cycle through `outcomes` and
        `profiles` (deployment profiles) newest first, and each has a finished
        async action. KeyError for an unknown stack, ValueError for arguments
        the stack cannot take (services on a non-docker stack, and so on).
        """
        with self._transaction() as (state, now):
            uid = state.find_stack(stack_name, environment).uid
            return state.add_history(
                uid,
                count,
                now=now,
                outcomes=outcomes,
                via=via,
                services=services,
                git_ref=git_ref,
                profiles=profiles,
            )

    def reset(self) -> None:
        """Start the account over: the sample stacks (or `stacks`) as first seeded."""
        with self._lock, self._file_lock():
            self._state = SandboxState.seed(self._clock(), self._seed_stacks)
            self._save(self._state)

    # -- state and persistence --------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[tuple[SandboxState, float]]:
        """Load the latest state, bring it to clock(), and save what the caller changes."""
        with self._lock, self._file_lock():
            self._sync()
            state = self._state
            assert state is not None
            now = float(self._clock())
            state.advance(now, self.deploy_seconds)
            try:
                yield state, now
            finally:
                if state.dirty:
                    self._save(state)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise read-modify-write of the state file across processes."""
        if self._state_path is None or sys.platform == "win32":
            yield
            return
        lock_path = self._state_path.with_name(self._state_path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _sync(self) -> None:
        """Adopt the state file if another process changed it; seed if there is none."""
        path = self._state_path
        if path is None:
            if self._state is None:
                self._state = SandboxState.seed(self._clock(), self._seed_stacks)
                self._state.dirty = False
            return
        try:
            info = path.stat()
        except FileNotFoundError:
            if self._state is None:
                self._state = SandboxState.seed(self._clock(), self._seed_stacks)
            self._save(self._state)
            return
        signature = (info.st_mtime_ns, info.st_size, info.st_ino)
        if self._state is not None and signature == self._disk_signature:
            return
        try:
            self._state = SandboxState.from_json(json.loads(path.read_text(encoding="utf-8")))
            self._disk_signature = signature
        except FileNotFoundError:
            # Removed between stat() and read: the same as never having existed.
            if self._state is None:
                self._state = SandboxState.seed(self._clock(), self._seed_stacks)
            self._save(self._state)
        except ValueError:
            # A sandbox's state is disposable: start over rather than refuse to run,
            # but keep the damaged file where someone can look at it.
            self.recovered = self._set_aside(path)
            self._state = SandboxState.seed(self._clock(), self._seed_stacks)
            self._save(self._state)

    def _set_aside(self, path: Path) -> Path | None:
        """Move a damaged state file to `<name>.damaged-<epoch>`; None if it cannot be."""
        stamp = int(self._clock())
        target = path.with_name(f"{path.name}.damaged-{stamp}")
        serial = 1
        while target.exists():
            serial += 1
            target = path.with_name(f"{path.name}.damaged-{stamp}-{serial}")
        try:
            os.replace(path, target)
        except OSError:
            return None
        return target

    def _save(self, state: SandboxState) -> None:
        state.dirty = False
        path = self._state_path
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temp.write_text(json.dumps(state.to_json(), separators=(",", ":")), encoding="utf-8")
        os.replace(temp, path)
        info = path.stat()
        self._disk_signature = (info.st_mtime_ns, info.st_size, info.st_ino)

    # -- the API ----------------------------------------------------------

    def _answer(
        self, request: RecordedRequest, *, body_problem: str | None, authorization: str | None
    ) -> Reply:
        """Serve one request against the state (faults were handled by the caller)."""
        method, path, query, body = request.method, request.path, request.query, request.body
        token = self._authorised(authorization)
        if token is None:
            return Reply(401, error_body(401), {})
        allowed, headers = self._spend(token)
        if not allowed:
            description = (
                f"Rate limit exceeded: {self.rate_limit or 0:,} requests per user per hour"
            )
            # No Retry-After: the budget comes back at the top of the next hour.
            return Reply(503, error_body(503, "throttled", description), headers)
        if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            return Reply(404, error_body(404, description="Route not found"), headers)
        parts = [p for p in path[len(API_PREFIX) :].split("/") if p]
        if parts and parts[-1].endswith(".json"):
            # The official Go client asks for `/stacks.json`; Cloud 66 answers both forms.
            parts[-1] = parts[-1].removesuffix(".json")
        needed = scope_needed(method, parts)
        if needed is not None and needed not in self._scopes(token):
            return Reply(403, error_body(403), headers)
        if body_problem is not None:
            return Reply(400, error_body(400, description=body_problem), headers)
        try:
            page = page_number(query)
            with self._transaction() as (state, now):
                reply = route(self, state, now, method, parts, page=page, params={**query, **body})
        except SandboxError as exc:
            reply = Reply(exc.status, error_body(exc.status, exc.error, exc.description), {})
        reply.headers.update(headers)
        return reply

    def _authorised(self, authorization: str | None) -> str | None:
        """The known token this Authorization header carries, or None."""
        scheme, _, credential = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        offered = credential.strip().encode()
        with self._side_lock:
            tokens = list(self._tokens)
        found = None
        for token in tokens:  # compare with every token, so timing says nothing
            if hmac.compare_digest(offered, token.encode()):
                found = token
        return found

    def _scopes(self, token: str) -> frozenset[str]:
        with self._side_lock:
            scopes = self._tokens.get(token, frozenset())
        # Unconfirmed: the docs give a token with no scope public read-only access.
        return scopes or frozenset({"public"})

    def _spend(self, token: str) -> tuple[bool, dict[str, str]]:
        """Spend one request of the token's hourly budget: (allowed, rate headers)."""
        limit = self.rate_limit
        if limit is None:
            return True, {}
        hour = int(self._clock() // 3600)
        with self._side_lock:
            window, used = self._spent.get(token, (hour, 0))
            if window != hour:
                used = 0
            allowed = used < limit
            if allowed:
                used += 1
            self._spent[token] = (hour, used)
        return allowed, {LIMIT_HEADER: str(limit), REMAINING_HEADER: str(max(0, limit - used))}

    def _rate_headers(self, authorization: str | None) -> dict[str, str]:
        """The rate headers of this request's token without spending anything."""
        limit = self.rate_limit
        token = self._authorised(authorization)
        if limit is None or token is None:
            return {}
        hour = int(self._clock() // 3600)
        with self._side_lock:
            window, used = self._spent.get(token, (hour, 0))
        used = used if window == hour else 0
        return {LIMIT_HEADER: str(limit), REMAINING_HEADER: str(max(0, limit - used))}


def _take(faults: list[_Fault], method: str, path: str) -> _Fault | None:
    """Consume one use of the first fault matching the request (caller holds the lock)."""
    for fault in faults:
        wanted = fault.path_contains in path and fault.method in ("", method)
        if wanted and fault.remaining > 0:
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.remove(fault)
            return fault
    return None
