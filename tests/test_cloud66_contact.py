"""The client on first contact: answer shapes the simulator cannot give, served by a tiny
local HTTP server (paging without `pages`, absurd counts, cut answers, silent servers)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from igor_cli.cloud66.client import Cloud66Client, RetryPolicy
from igor_cli.cloud66.paging import MAX_PAGES
from igor_cli.errors import ApiError, OutcomeUnknown, Unreachable
from tests.fakes.clock import FakeClock


@dataclass
class Seen:
    """One request the fake API received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    port: int  # the client's port: one per TCP connection

    @property
    def page(self) -> int:
        return int(self.query.get("page", "1"))


@dataclass
class Reply:
    """What to answer: a JSON body (or raw bytes), headers, and whether to cut it short."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False


class FakeApi:
    """An HTTP/1.1 keep-alive server on 127.0.0.1; `answer(seen)` decides every reply."""

    def __init__(self, answer: Callable[[Seen], Reply], latency: float = 0.0) -> None:
        self.answer = answer
        self.latency = latency
        self.seen: list[Seen] = []
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_DELETE(self) -> None:
                self._handle()

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                split = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                seen = Seen(
                    self.command, split.path, query, dict(self.headers), self.client_address[1]
                )
                with fake._lock:
                    fake.seen.append(seen)
                    fake.inflight += 1
                    fake.max_inflight = max(fake.max_inflight, fake.inflight)
                try:
                    if fake.latency:
                        time.sleep(fake.latency)
                    reply = fake.answer(seen)
                finally:
                    with fake._lock:
                        fake.inflight -= 1
                raw = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw) + (50 if reply.truncate else 0)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)
                if reply.truncate:
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/3"

    def __enter__(self) -> FakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def pages(self, method: str = "GET") -> list[int]:
        return [s.page for s in self.seen if s.method == method]


def listing(
    total: int,
    per_page: int = 30,
    *,
    count: str = "top",  # "top", "pagination" or "none"
    say_per_page: bool = True,
    pages: int | None = None,
) -> Callable[[Seen], Reply]:
    """A paged list of `total` items {"id": n, "uid": "n"}, shaped as asked."""

    def answer(seen: Seen) -> Reply:
        page = seen.page
        last = max(1, -(-total // per_page))
        items = [
            {"id": n, "uid": str(n)}
            for n in range((page - 1) * per_page, min(total, page * per_page))
        ]
        pagination: dict[str, Any] = {
            "previous": page - 1 if page > 1 else None,
            "next": page + 1 if page < last else None,
            "current": page,
        }
        if say_per_page:
            pagination["per_page"] = per_page
        if pages is not None:
            pagination["pages"] = pages
        body: dict[str, Any] = {"response": items, "pagination": pagination}
        if count == "top":
            body["count"] = total
        elif count == "pagination":
            pagination["count"] = total
        return Reply(body=body)

    return answer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeApi]]:
    started: list[FakeApi] = []

    def start(answer: Callable[[Seen], Reply], latency: float = 0.0) -> FakeApi:
        api = FakeApi(answer, latency).__enter__()
        started.append(api)
        return api

    yield start
    for api in started:
        api.__exit__()


def client(url: str, clock: FakeClock, **kwargs: Any) -> Cloud66Client:
    retry = kwargs.pop("retry", None) or RetryPolicy(sleep=clock.sleep)
    return Cloud66Client("tok-contact", url, retry=retry, **kwargs)


# -- how many pages --------------------------------------------------------


def test_the_page_count_comes_from_the_top_level_count_and_per_page(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    api = serve(listing(95))
    with client(api.url, clock) as c:
        stacks = c.stacks()
    assert len(stacks) == 95
    assert sorted(api.pages()) == [1, 2, 3, 4]


def test_a_count_inside_pagination_and_no_per_page_uses_the_first_page_size(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    api = serve(listing(60, per_page=25, count="pagination", say_per_page=False))
    with client(api.url, clock) as c:
        assert len(c.stacks()) == 60
    assert sorted(api.pages()) == [1, 2, 3]  # 25 + 25 + 10, never a page 4


def test_without_per_page_a_short_first_page_is_all_there_is(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    api = serve(listing(12, say_per_page=False))
    with client(api.url, clock) as c:
        assert len(c.stacks()) == 12
    assert api.pages() == [1]


def test_never_more_pages_than_the_count_implies(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    api = serve(listing(45, pages=50))
    with client(api.url, clock) as c:
        assert len(c.stacks()) == 45
    assert sorted(api.pages()) == [1, 2]


def test_with_no_count_the_client_walks_next_one_page_at_a_time(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    api = serve(listing(100, count="none"), latency=0.02)
    with client(api.url, clock) as c:
        assert [s.uid for s in c.stacks()] == [str(n) for n in range(100)]
    assert api.pages() == [1, 2, 3, 4]
    assert api.max_inflight == 1


def test_walking_stops_when_next_does_not_move_forward(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    def answer(seen: Seen) -> Reply:
        return Reply(
            body={"response": [{"id": seen.page}], "pagination": {"current": 1, "next": 1}}
        )

    api = serve(answer)
    with client(api.url, clock) as c:
        assert len(c.stacks()) == 1
    assert api.pages() == [1]


@pytest.mark.parametrize(
    "body",
    [
        {"response": [], "count": 10_000_000, "pagination": {"per_page": 30}},
        {"response": [], "pagination": {"pages": MAX_PAGES + 1}},
        {"response": [], "pagination": {"current": 1, "next": MAX_PAGES + 1}},
    ],
    ids=["count", "pages", "next"],
)
def test_absurd_paging_is_refused_after_one_request(
    serve: Callable[..., FakeApi], clock: FakeClock, body: dict[str, Any]
) -> None:
    api = serve(lambda seen: Reply(body=body))
    with client(api.url, clock) as c, pytest.raises(ApiError) as caught:
        c.stacks()
    assert len(api.seen) == 1
    assert "at most 5,000 pages" in caught.value.message


def test_the_order_of_the_pages_is_kept_not_sorted(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    ids = [[5, 9, 1], [7, 2, 30], [8]]

    def answer(seen: Seen) -> Reply:
        return Reply(
            body={
                "response": [{"uid": str(n)} for n in ids[seen.page - 1]],
                "count": 7,
                "pagination": {"current": seen.page, "per_page": 3},
            }
        )

    api = serve(answer)
    with client(api.url, clock) as c:
        assert [s.uid for s in c.stacks()] == ["5", "9", "1", "7", "2", "30", "8"]
    assert sorted(api.pages()) == [1, 2, 3]


def test_workers_scale_with_the_pages_and_the_pool_keeps_their_connections(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    api = serve(listing(40 * 30), latency=0.1)  # 40 pages
    with client(api.url, clock) as c:
        assert len(c.stacks()) == 1200
        first_connections = len({s.port for s in api.seen})
        assert len(c.stacks()) == 1200
    # Every page after the first at once (issue 27: no fixed cap of 32 workers).
    assert 32 < api.max_inflight <= 39
    # Every connection of the first listing went back to the pool and was used again.
    assert len({s.port for s in api.seen}) == first_connections <= 40


def test_pages_in_flight_stop_at_the_cap_and_at_the_requests_left_this_hour(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    capped = serve(listing(40 * 30), latency=0.05)
    with client(capped.url, clock, pages_in_flight=6) as c:
        assert len(c.stacks()) == 1200
    assert 1 < capped.max_inflight <= 6

    pages = listing(40 * 30)

    def few_left(seen: Seen) -> Reply:
        return replace(pages(seen), headers={"X-RateLimit-Remaining": "4"})

    budgeted = serve(few_left, latency=0.05)
    with client(budgeted.url, clock) as c:
        assert len(c.stacks()) == 1200
    assert 1 < budgeted.max_inflight <= 4


def test_the_token_goes_with_each_request(serve: Callable[..., FakeApi], clock: FakeClock) -> None:
    api = serve(listing(61))
    with client(api.url, clock) as c:
        c.stacks()
    assert len(api.seen) == 3
    assert {s.headers.get("Authorization") for s in api.seen} == {"Bearer tok-contact"}
    assert all(s.headers.get("User-Agent", "").startswith("igor/") for s in api.seen)


# -- answers that say nothing for sure --------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=b'{"response": {"ok": true, "queued": fal', truncate=True),
        Reply(body=b"<html>upstream gone</html>"),
        Reply(body=b"[1, 2]"),
    ],
    ids=["cut", "html", "not-an-object"],
)
def test_an_unreadable_2xx_answer_to_a_deploy_is_an_unknown_outcome(
    serve: Callable[..., FakeApi], clock: FakeClock, reply: Reply
) -> None:
    api = serve(lambda seen: reply)
    with client(api.url, clock) as c, pytest.raises(OutcomeUnknown) as caught:
        c.deploy("uid")
    assert api.pages("POST") == [1]
    assert len(api.seen) == 1
    assert "try again" not in (caught.value.message + caught.value.hint).casefold()
    assert "igor list -s" in caught.value.hint


def test_a_redirected_deploy_is_not_followed(
    serve: Callable[..., FakeApi], clock: FakeClock
) -> None:
    api = serve(lambda seen: Reply(302, {}, {"Location": "/elsewhere"}))
    with client(api.url, clock) as c, pytest.raises(ApiError) as caught:
        c.deploy("uid")
    assert [s.method for s in api.seen] == ["POST"]
    assert "redirect" in caught.value.message


# -- bounded time ----------------------------------------------------------


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/3"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.stacks(), Unreachable),
        (lambda c: c.action("uid", "1"), Unreachable),
        (lambda c: c.deploy("uid"), OutcomeUnknown),
        (lambda c: c.cancel("uid", "1"), OutcomeUnknown),
    ],
)
def test_a_server_that_never_answers_fails_the_call_within_its_deadline(
    silent: str, call: Callable[[Cloud66Client], object], error: type[Exception]
) -> None:
    # Real sleeps: the deadline must hold in real time, with the default 30 s read timeout.
    policy = RetryPolicy(total_seconds=1.0, sleep=time.sleep)
    started = time.monotonic()
    with Cloud66Client("tok", silent, retry=policy) as c, pytest.raises(error) as caught:
        call(c)
    took = time.monotonic() - started
    assert took < 8, took  # generous: the deadline is 1 s, the read timeout 30 s
    assert "timed out" in caught.value.args[0]


def test_a_big_listing_streams_its_json_in_the_bytes_of_the_whole() -> None:
    """`igor list --json` writes rows as each is made: the bytes of the whole list, in
    several writes, so that 50,000 stacks' objects are never held at once."""
    import io

    from igor_cli.json_output import JsonOutput

    class Writes(io.StringIO):
        count = 0

        def write(self, text: str) -> int:
            self.count += 1
            return super().write(text)

    rows = [{"uid": str(n), "name": f"app-{n}", "busy": n % 2 == 0} for n in range(1200)]
    for shape in (JsonOutput(), JsonOutput(("name",))):
        out = Writes()
        shape.write_each(iter(rows), out)
        assert out.getvalue() == "".join(line + "\n" for line in shape.lines(rows))
        assert out.count > 3  # not one string of the whole
    empty = Writes()
    JsonOutput().write_each(iter([]), empty)
    assert empty.getvalue() == "[]\n"
