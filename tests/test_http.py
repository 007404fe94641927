"""igor's HTTP module (igor_cli/http.py) against real sockets on loopback: kept-alive
connections, many threads, gzip, redirects, proxies, TLS, and every failure mapped to the
same typed errors the Cloud 66 client raised on `requests` (never a traceback, never the
token); a change is never sent twice."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from igor_cli.cloud66.client import Cloud66Client, RetryPolicy, new_session
from igor_cli.errors import ApiError, Cloud66Error, OutcomeUnknown, Unreachable
from igor_cli.http import NetworkError, Session, _Answer
from tests.fakes.clock import FakeClock
from tests.fakes.web import Answer, Origin, Proxy, Seen, free_port

TOKEN = "c66-secret-token-4242"
STACK = {"uid": "u1", "name": "shop", "environment": "production", "status": 1, "health": 3}
ONE_STACK = json.dumps({"response": [STACK], "count": 1}).encode()
DEPLOYED = json.dumps({"response": {"ok": True, "message": "Deploy started"}}).encode()


def client(url: str, clock: FakeClock, **kwargs: Any) -> Cloud66Client:
    return Cloud66Client(TOKEN, url, retry=RetryPolicy(sleep=clock.sleep), **kwargs)


def said(error: Cloud66Error) -> str:
    return f"{error.message} {error.hint}"


def api(seen: Seen) -> Answer:
    """Cloud 66's answers for the calls these tests make."""
    return Answer(body=DEPLOYED if seen.method == "POST" else ONE_STACK)


# -- connections ----------------------------------------------------------------------


def test_requests_in_turn_share_one_kept_alive_connection(clock: FakeClock) -> None:
    with Origin(api) as origin, client(origin.url, clock) as c:
        for _ in range(3):
            assert [s.name for s in c.stacks()] == ["shop"]
    assert len(origin.seen) == 3
    assert len({s.connection for s in origin.seen}) == 1


def test_many_threads_share_one_session(clock: FakeClock) -> None:
    session = Session(pool_size=8)
    statuses: list[int] = []
    lock = threading.Lock()

    def ask(url: str) -> None:
        for _ in range(5):
            answer = session.request("GET", url + "/stacks", headers={})
            with lock:
                statuses.append(answer.status)

    with Origin(api) as origin:
        threads = [threading.Thread(target=ask, args=(origin.url,)) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        seen = origin.seen
    session.close()
    assert statuses == [200] * 200
    assert len(seen) == 200
    assert len({s.connection for s in seen}) <= 40  # never more than one a thread at once
    assert sum(len(idle) for idle in session._idle.values()) == 0  # closed


def test_an_idle_connection_the_server_closed_is_not_used(clock: FakeClock) -> None:
    def close_after_answering(seen: Seen) -> Answer:
        return Answer(body=ONE_STACK, then="close")

    with Origin(close_after_answering) as origin, client(origin.url, clock) as c:
        c.stacks()
        c.stacks()
    assert [s.nth for s in origin.seen] == [1, 1]
    assert clock.slept == []  # no retry was needed


def test_a_get_on_a_kept_alive_connection_closed_as_it_was_sent_is_asked_again_at_once(
    clock: FakeClock,
) -> None:
    # The race a pool cannot see coming: the server closes the kept-alive connection as
    # the next request arrives. A GET changes nothing: asked again on a new connection.
    def second_on_a_connection_dropped(seen: Seen) -> Answer:
        return Answer(then="drop") if seen.nth > 1 else Answer(body=ONE_STACK)

    session = Session()
    with Origin(second_on_a_connection_dropped) as origin:
        first = session.request("GET", origin.url + "/stacks", headers={})
        again = session.request("GET", origin.url + "/stacks", headers={})
        seen = origin.seen
    session.close()
    assert (first.status, again.status) == (200, 200)
    assert [s.nth for s in seen] == [1, 2, 1]
    assert seen[1].connection == seen[0].connection != seen[2].connection


def test_a_change_goes_on_a_fresh_connection_and_is_sent_once(clock: FakeClock) -> None:
    # Were the deploy sent on the kept-alive connection, this server would drop it: its
    # fate unknown. On a connection of its own it arrives, and is answered.
    def second_on_a_connection_dropped(seen: Seen) -> Answer:
        return Answer(then="drop") if seen.nth > 1 else api(seen)

    with Origin(second_on_a_connection_dropped) as origin, client(origin.url, clock) as c:
        c.stacks()
        answer = c.deploy("u1")
        seen = origin.seen
    assert answer.message == "Deploy started"
    posts = [s for s in seen if s.method == "POST"]
    assert len(posts) == 1 and posts[0].nth == 1
    assert json.loads(posts[0].body) == {}
    assert posts[0].headers["content-type"] == "application/json"


def test_a_deploy_dropped_after_it_was_sent_is_unknown_and_not_sent_again(
    clock: FakeClock,
) -> None:
    with (
        Origin(lambda seen: Answer(then="drop")) as origin,
        client(origin.url, clock) as c,
        pytest.raises(OutcomeUnknown) as caught,
    ):
        c.deploy("u1", services=["web"])
    assert [s.method for s in origin.seen] == ["POST"]
    # Closed or reset: which one the kernel reports depends on timing.
    assert caught.value.message.endswith(
        ("(connection closed before a full answer).", "(connection reset).")
    )
    assert TOKEN not in said(caught.value)


def test_a_deploy_that_cannot_connect_was_never_sent(clock: FakeClock) -> None:
    with free_port() as port, pytest.raises(Unreachable) as caught:
        client(f"http://127.0.0.1:{port}/api/3", clock).deploy("u1")
    assert "(connection refused)" in caught.value.message
    assert not isinstance(caught.value, OutcomeUnknown)


def test_an_answer_cut_short_is_retried_for_a_get_and_unknown_for_a_deploy(
    clock: FakeClock,
) -> None:
    with Origin(lambda seen: Answer(body=ONE_STACK, then="cut")) as origin:
        with client(origin.url, clock) as c, pytest.raises(Unreachable) as caught:
            c.stacks()
        assert "connection closed before a full answer" in caught.value.message
        assert [s.method for s in origin.seen] == ["GET"] * 5  # retried, then given up
        with client(origin.url, clock) as c, pytest.raises(OutcomeUnknown):
            c.deploy("u1")
        assert [s.method for s in origin.seen].count("POST") == 1


# -- what goes out and what comes back --------------------------------------------------


# Answers as servers send them, and some no server should: igor's reader of the header
# block must read each exactly as http.client's own does.
ANSWERS = {
    "plain": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"X-RateLimit-Remaining: 2999\r\n\r\n{}",
    "repeated": b"HTTP/1.1 200 OK\r\nVary: Accept\r\nvary: Origin\r\nContent-Length: 0\r\n\r\n",
    "folded": b"HTTP/1.1 200 OK\r\nX-Note: one\r\n two\r\nContent-Length: 1\r\n\r\nx",
    "no colon": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nnot a header\r\nX-A: b\r\n\r\nx",
    "space before colon": b"HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 0\r\n\r\n",
    "empty value": b"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Tab:\t v \r\nContent-Length: 0\r\n\r\n",
    "latin-1": b"HTTP/1.1 200 OK\r\nX-Name: Jos\xe9\r\nContent-Length: 0\r\n\r\n",
    "bare newlines": b"HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok",
    "carriage returns": b"HTTP/1.1 200 OK\r\nX-A: b\rX-B: c\r\nContent-Length: 0\r\n\r\n",
    "a blank after a value": b"HTTP/1.1 200 OK\r\nX-A: b\r\r\nContent-Length: 2\r\n\r\nok",
    "control characters": b"HTTP/1.1 200 OK\r\nX-A: b\x00c\x0bd\x85e \r\nContent-Length: 0\r\n\r\n",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    "closes": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
    "no length": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end",
    "bad length": b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nto the end",
    "http/1.0 kept": b"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\nok",
    "http/1.0": b"HTTP/1.0 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
    "no content": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    "continue first": b"HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n"
    b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
}


class _Wire:
    """What a socket would give an answer to read."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def _read(kind: type[http.client.HTTPResponse], raw: bytes, method: str) -> tuple[Any, ...]:
    answer = kind(_Wire(raw), method=method)  # type: ignore[arg-type]
    answer.begin()
    facts = (answer.status, answer.reason, answer.version, answer.will_close, answer.length,
             answer.chunked, answer.getheaders())  # fmt: skip
    return (*facts, answer.read(), answer.getheader("x-a"), answer.getheader("vary"))


@pytest.mark.parametrize("name", sorted(ANSWERS))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_answer_is_read_as_http_client_reads_it(name: str, method: str) -> None:
    assert _read(_Answer, ANSWERS[name], method) == _read(
        http.client.HTTPResponse, ANSWERS[name], method
    )


def test_headers_are_read_without_the_email_package_unless_they_are_unusual(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # http.client's reader (the email package) costs most of what reading an answer does:
    # the headers servers send are read without it, anything else with it.
    read_by_email: list[int] = []
    real = http.client.parse_headers

    def counted(fp: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is here:  # not the server's reading of the request
            read_by_email.append(1)
        return real(fp, *args, **kwargs)

    here = threading.current_thread()

    monkeypatch.setattr(http.client, "parse_headers", counted)
    headers = iter([{"X-RateLimit-Remaining": "2999"}, {"X-Note": "one\r\n two"}])
    with Origin(lambda seen: Answer(body=ONE_STACK, headers=next(headers))) as origin:
        session = Session()
        plain = session.request("GET", origin.url + "/stacks", headers={})
        assert plain.header("x-ratelimit-remaining") == "2999"
        assert read_by_email == []
        folded = session.request("GET", origin.url + "/stacks", headers={})
        assert folded.header("x-note") == "one\r\n two"  # as http.client reads it
        assert read_by_email == [1]
        assert plain.json() == folded.json() == json.loads(ONE_STACK)
        session.close()


def test_a_gzipped_answer_is_read(clock: FakeClock) -> None:
    def squeezed(seen: Seen) -> Answer:
        assert "gzip" in seen.headers["accept-encoding"]
        return Answer(body=gzip.compress(ONE_STACK), headers={"Content-Encoding": "gzip"})

    with Origin(squeezed) as origin, client(origin.url, clock) as c:
        assert [s.name for s in c.stacks()] == ["shop"]
    assert "gzip" in origin.seen[0].headers["accept-encoding"]


def test_a_gzipped_answer_that_does_not_unzip_is_said_and_asked_again_afresh(
    clock: FakeClock,
) -> None:
    broken = Answer(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})
    session = Session()
    with Origin(lambda seen: broken) as origin:
        with client(origin.url, clock, session=session) as c, pytest.raises(Unreachable) as caught:
            c.stacks()
        seen = origin.seen
    assert "(an answer that could not be decompressed)" in caught.value.message
    assert len(seen) == 5  # a GET: retried, each time on a new connection
    assert len({s.connection for s in seen}) == 5
    assert sum(len(idle) for idle in session._idle.values()) == 0
    session.close()


def test_a_get_follows_a_redirect_and_keeps_the_token_on_the_same_origin(
    clock: FakeClock,
) -> None:
    def moved(seen: Seen) -> Answer:
        if seen.path.startswith("/old"):
            return Answer(301, b"", {"Location": "/api/3/stacks"})
        return Answer(body=ONE_STACK)

    with Origin(moved) as origin:
        base = origin.url.replace("/api/3", "/old")
        with client(base, clock) as c:
            assert [s.name for s in c.stacks()] == ["shop"]
        seen = origin.seen
    assert [s.path for s in seen] == ["/old/stacks", "/api/3/stacks"]
    assert seen[1].headers["authorization"] == f"Bearer {TOKEN}"


def test_a_redirect_to_another_host_does_not_carry_the_token(clock: FakeClock) -> None:
    with Origin(lambda seen: Answer(body=ONE_STACK)) as other:
        elsewhere = other.url.replace("127.0.0.1", "localhost") + "/stacks"
        with (
            Origin(lambda seen: Answer(302, b"", {"Location": elsewhere})) as origin,
            client(origin.url, clock) as c,
        ):
            assert [s.name for s in c.stacks()] == ["shop"]
        assert origin.seen[0].headers["authorization"] == f"Bearer {TOKEN}"
        assert "authorization" not in other.seen[0].headers


def test_endless_redirects_are_said_as_such(clock: FakeClock) -> None:
    with (
        Origin(lambda seen: Answer(302, b"", {"Location": seen.path})) as origin,
        client(origin.url, clock) as c,
        pytest.raises(Unreachable) as caught,
    ):
        c.stack("u1")
    assert "(too many redirects)" in caught.value.message


def test_a_redirected_deploy_is_not_followed_and_says_so(clock: FakeClock) -> None:
    with (
        Origin(lambda seen: Answer(307, b"", {"Location": "/elsewhere"})) as origin,
        client(origin.url, clock) as c,
        pytest.raises(ApiError) as caught,
    ):
        c.deploy("u1")
    assert [s.method for s in origin.seen] == ["POST"]
    assert "redirect (HTTP 307); nothing was done" in caught.value.message


# -- proxies ---------------------------------------------------------------------------


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    with Proxy() as running:
        yield running


def test_an_http_proxy_from_the_environment_carries_the_request(
    proxy: Proxy, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://someone:p%40ss@{proxy.address}")
    with Origin(api) as origin, client(origin.url, clock) as c:
        assert [s.name for s in c.stacks()] == ["shop"]
        seen = origin.seen
    (asked,) = proxy.asked
    assert asked.target == origin.url + "/stacks"  # the whole URL, as a proxy is asked
    assert asked.headers["proxy-authorization"] == "Basic c29tZW9uZTpwQHNz"  # someone:p@ss
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "example.com, 127.0.0.1:{port}", "10.0.0.0/8,127.0.0.0/8", "*"]
)
def test_no_proxy_goes_straight_to_the_host(
    proxy: Proxy, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, no_proxy: str
) -> None:
    monkeypatch.setenv("http_proxy", f"http://{proxy.address}")
    with Origin(api) as origin:
        port = origin.url.split(":")[2].split("/")[0]
        monkeypatch.setenv("no_proxy", no_proxy.format(port=port))
        with client(origin.url, clock) as c:
            assert [s.name for s in c.stacks()] == ["shop"]
        assert len(origin.seen) == 1
    assert proxy.asked == []


def test_the_proxy_is_read_once_per_host(
    proxy: Proxy, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.address}")
    session = new_session()
    with Origin(api) as origin:
        with client(origin.url, clock, session=session) as c:
            c.stacks()
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # read once: the route is kept
            c.stacks()
        seen = origin.seen
    session.close()
    assert len(proxy.asked) == 2
    assert len(seen) == 2


def test_an_unreachable_proxy_is_named_as_the_proxy(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with free_port() as port, Origin(api) as origin:
        monkeypatch.setenv("HTTP_PROXY", f"http://user:hunter2@127.0.0.1:{port}")
        with client(origin.url, clock) as c, pytest.raises(Unreachable) as caught:
            c.stacks()
        with client(origin.url, clock) as c, pytest.raises(Unreachable) as refused:
            c.deploy("u1")  # nothing was sent: unreachable, not unknown
        assert origin.seen == []
    assert "(proxy error: connection refused)" in caught.value.message
    assert "hunter2" not in said(caught.value) + said(refused.value)


def test_a_socks_proxy_is_refused_in_words(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with Origin(api) as origin, client(origin.url, clock) as c:
        with pytest.raises(Unreachable) as caught:
            c.stacks()
        assert origin.seen == []
    assert "proxy error: igor speaks to http:// proxies only, not socks5://" in said(caught.value)


# -- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made by openssl) and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: the TLS tests need it to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=igor-test",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_origin(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[Origin]:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):  # the system's store
        monkeypatch.delenv(name, raising=False)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with Origin(api, tls=context) as origin:
        yield origin


def test_tls_is_verified_against_the_systems_store(tls_origin: Origin, clock: FakeClock) -> None:
    with client(tls_origin.url, clock) as c, pytest.raises(Unreachable) as caught:
        c.stacks()
    assert "(TLS error: certificate verify failed" not in caught.value.message  # no doubling
    assert "(TLS error: self-signed certificate)" in caught.value.message
    assert tls_origin.seen == []


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_a_ca_bundle_named_in_the_environment_is_trusted(
    tls_origin: Origin,
    certificate: tuple[Path, Path],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, str(certificate[0]))
    with client(tls_origin.url, clock) as c:
        assert [s.name for s in c.stacks()] == ["shop"]


def test_a_ca_bundle_that_cannot_be_read_is_said_before_anything_is_sent(
    tls_origin: Origin, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with client(tls_origin.url, clock) as c, pytest.raises(Unreachable) as caught:
        c.deploy("u1")
    assert "TLS error: the CA bundle REQUESTS_CA_BUNDLE names cannot be read" in said(caught.value)
    assert tls_origin.seen == []


def test_https_goes_through_the_proxys_tunnel(
    tls_origin: Origin,
    certificate: tuple[Path, Path],
    proxy: Proxy,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    monkeypatch.setenv("HTTPS_PROXY", f"http://someone:secret@{proxy.address}")
    with client(tls_origin.url, clock) as c:
        assert [s.name for s in c.stacks()] == ["shop"]
        c.stacks()  # on the same tunnel
    (asked,) = proxy.asked
    port = tls_origin.url.split(":")[2].split("/")[0]
    assert (asked.method, asked.target) == ("CONNECT", f"127.0.0.1:{port}")
    assert asked.headers["proxy-authorization"] == "Basic c29tZW9uZTpzZWNyZXQ="
    seen = tls_origin.seen
    assert len(seen) == 2
    assert "proxy-authorization" not in seen[0].headers  # said to the proxy only
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


# -- secrets ---------------------------------------------------------------------------


def test_the_token_is_in_no_error_and_no_repr(clock: FakeClock) -> None:
    session = new_session()
    with Origin(lambda seen: Answer(then="drop")) as origin:
        c = client(origin.url, clock, session=session)
        errors: list[BaseException] = []
        for call in (c.stacks, lambda: c.deploy("u1"), lambda: c.cancel("u1", "7")):
            try:
                call()
            except Cloud66Error as error:
                errors.append(error)
        try:
            session.request("GET", origin.url, headers={"Authorization": f"Bearer {TOKEN}"})
        except NetworkError as error:
            errors.append(error)
    with Origin(api) as origin:
        answer = session.request("GET", origin.url, headers={"Authorization": f"Bearer {TOKEN}"})
    idle = [conn for kept in session._idle.values() for conn, _ in kept]
    shown = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(answer)]
    shown += [repr(session), repr(c), *(repr(vars(conn)) for conn in idle)]
    session.close()
    assert len(errors) == 4 and len(idle) == 1  # a kept connection keeps no header
    assert not [text for text in shown if TOKEN in text]


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("http://127.0.0.1:notaport", "proxy error: the proxy setting is not a URL"),
        (
            "https://127.0.0.1:3128",
            "proxy error: igor speaks to http:// proxies only, not https://",
        ),
    ],
)
def test_a_proxy_igor_cannot_use_fails_the_command_in_words_with_exit_5(
    igor: Any, monkeypatch: pytest.MonkeyPatch, setting: str, words: str
) -> None:
    with Origin(api) as origin:
        monkeypatch.setenv("IGOR_API_URL", origin.url)
        monkeypatch.setenv("IGOR_CLOUD66_TOKEN", TOKEN)
        monkeypatch.setenv("HTTP_PROXY", setting)
        ran = igor("list")
        assert origin.seen == []
    assert ran.exit_code == 5
    said_there = " ".join(ran.stderr.split())
    assert f"could not be reached at {origin.url.split('/api')[0]} ({words}" in said_there
    assert "Traceback" not in ran.output and TOKEN not in ran.output
