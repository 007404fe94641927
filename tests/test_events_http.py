"""`igor serve --http`: Slack's signed requests at /slack/events, acked within Slack's 3 s,
answered once however often Slack sends them; everything else refused with nothing done.

The bot runs in a thread on a free loopback port, against the fake Slack's Web API and the
simulator; `SlackHttp` (tests/fakes/slack_http.py) is Slack's side: it signs and POSTs.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from igor_cli.chat.slack.transports.events_http import (
    BODY_LIMIT,
    EventsEndpoint,
    listen_address,
    read_request,
)
from igor_cli.config import Environment
from igor_cli.errors import UsageProblem
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import next_ts, wait_until
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_http import SIGNING_SECRET, SlackHttp, sign
from tests.faults.conftest import free_port

CHANNEL = "C0DEPLOY"


class HttpBot:
    """`igor serve --http 127.0.0.1:PORT` in a thread."""

    def __init__(self, slack: FakeSlack, clock: FakeClock) -> None:
        self.slack = slack
        self.clock = clock
        self.port = free_port()
        self.stop = threading.Event()
        self.exit_code: int | None = None
        self.thread: threading.Thread | None = None
        self.url = f"http://127.0.0.1:{self.port}/slack/events"
        self.sender = SlackHttp(
            slack, self.url, retry_delays=(0.0, 0.1, 0.2)
        )  # Slack: 0, 60, 300 s

    def start(self) -> HttpBot:
        from igor_cli.chat.slack import serve

        env = Environment(monotonic=self.clock, sleep=self.clock.sleep, clock=self.clock.datetime)

        def run() -> None:
            self.exit_code = serve(env, self.stop, http=f"127.0.0.1:{self.port}")

        self.thread = threading.Thread(target=run, name="igor-serve-http", daemon=True)
        self.thread.start()
        assert wait_until(lambda: self.get("/healthz")[0] == 200, 15), "igor serve --http"
        return self

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3)
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read() or b"{}")
        except OSError:
            return 0, {}
        finally:
            connection.close()

    def mention(self, text: str, *, user: str = "U0ALICE", ts: str = "") -> tuple[str, Any]:
        """`@igor <text>` in a channel, as an Events API delivery; (ts, delivery)."""
        ts = ts or next_ts()
        return ts, self.sender.event(mention(self.slack, text, user, ts))


def mention(slack: FakeSlack, text: str, user: str, ts: str) -> dict[str, Any]:
    return {"type": "app_mention", "user": user, "text": f"<@{slack.bot_user_id}> {text}",
            "channel": CHANNEL, "ts": ts, "event_ts": ts}  # fmt: skip


def thread(slack: FakeSlack, ts: str) -> list[str]:
    return [
        str(call.params.get("text", ""))
        for call in slack.calls_to("chat.postMessage")
        if call.params.get("thread_ts") == ts
    ]


@pytest.fixture
def http_bot(
    slack: FakeSlack, sim: Simulator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HttpBot]:
    """HTTP mode's secrets from the environment, as a user sets them: no app token."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    running = HttpBot(slack, clock)
    yield running
    running.close()


# -- what Slack sends, answered --------------------------------------------------------


def test_a_signed_mention_is_acked_and_answered_in_its_thread(
    http_bot: HttpBot, slack: FakeSlack
) -> None:
    http_bot.start()
    ts, delivery = http_bot.mention("list -s shop")
    assert delivery.last.status == 200 and len(delivery.attempts) == 1
    assert wait_until(lambda: thread(slack, ts))
    assert "shop (production)" in thread(slack, ts)[0]
    assert not slack.calls_to("apps.connections.open")  # no Socket Mode, no app token


def test_url_verification_echoes_its_challenge_when_signed(http_bot: HttpBot) -> None:
    http_bot.start()
    answer = http_bot.sender.url_verification("c-hallenge")
    assert answer.status == 200 and json.loads(answer.body) == {"challenge": "c-hallenge"}
    forged = SlackHttp(http_bot.slack, http_bot.url, signing_secret="not-the-apps-secret")
    assert forged.url_verification("c-hallenge").status == 401


def test_a_slash_command_is_answered_through_its_response_url(
    http_bot: HttpBot, slack: FakeSlack
) -> None:
    http_bot.start()
    delivery = http_bot.sender.slash_command("version")
    assert delivery.last.status == 200 and delivery.last.body == b""  # an empty ack
    assert wait_until(lambda: slack.calls_to("response_url"))
    assert "igor" in str(slack.calls_to("response_url")[0].params.get("text"))


def test_a_click_reaches_the_bot(http_bot: HttpBot, slack: FakeSlack) -> None:
    http_bot.start()
    ts = next_ts()
    delivery = http_bot.sender.click({
        "type": "block_actions", "user": {"id": "U0ALICE"},
        "container": {"channel_id": CHANNEL, "message_ts": ts},
        "channel": {"id": CHANNEL}, "response_url": slack.response_url(),
        "message": {"ts": ts, "text": "Deploy?"},
        "actions": [{"action_id": "igor_confirm", "value": "forged.value"}],
    })  # fmt: skip
    assert delivery.last.status == 200
    # A value igor did not sign: the clicker is told so, nothing runs.
    assert wait_until(lambda: slack.calls_to("chat.postEphemeral") or slack.calls_to(
        "response_url"))  # fmt: skip
    said = [str(c.params.get("text")) for c in slack.calls if c.method in
            ("chat.postEphemeral", "response_url")]  # fmt: skip
    assert any("not one igor made" in text for text in said), said


def test_a_retried_event_is_answered_once(
    http_bot: HttpBot, slack: FakeSlack, sim: Simulator
) -> None:
    http_bot.start()
    ts = next_ts()
    body = http_bot.sender.event_body(mention(slack, "deploy -s blog", "U0ALICE", ts))
    first = http_bot.sender.post(body, "application/json")
    again = http_bot.sender.post(
        body, "application/json",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )  # fmt: skip
    assert (first.status, again.status) == (200, 200)  # both acked: a retry is not refused
    assert wait_until(lambda: thread(slack, ts))
    time.sleep(0.5)  # a second answer would come now
    said = thread(slack, ts)
    assert sum("Deploy started: blog" in text for text in said) == 1, said
    assert sum("Deployed blog" in text for text in said) <= 1, said  # its outcome, once
    assert sim.count("POST", "/deployments") == 1


# -- what is not Slack's: refused, nothing done ------------------------------------------


def _bad_requests(sender: SlackHttp, clock: FakeClock, body: bytes) -> dict[str, int]:
    now = int(clock())
    stale, ahead = str(now - 301), str(now + 301)
    return {
        "no signature": sender.post(body, "application/json", timestamp="", signature="").status,
        "no timestamp": sender.post(
            body, "application/json", timestamp="", signature=sign(SIGNING_SECRET, "", body)
        ).status,
        "another secret": SlackHttp(sender.slack, sender.url, signing_secret="x" * 32)
        .post(body, "application/json")
        .status,
        "stale": sender.post(
            body, "application/json", timestamp=stale, signature=sign(SIGNING_SECRET, stale, body)
        ).status,
        "from the future": sender.post(
            body, "application/json", timestamp=ahead, signature=sign(SIGNING_SECRET, ahead, body)
        ).status,
        "body changed after signing": sender.post(
            body.replace(b"blog", b"shop"),
            "application/json",
            signature=sign(SIGNING_SECRET, str(now), body),
        ).status,
        "malformed timestamp": sender.post(
            body, "application/json", timestamp="12e9", signature=sign(SIGNING_SECRET, "12e9", body)
        ).status,
    }


def test_unsigned_wrongly_signed_or_stale_requests_are_refused_and_nothing_is_done(
    http_bot: HttpBot, slack: FakeSlack, sim: Simulator, clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    http_bot.start()
    ts = next_ts()
    body = http_bot.sender.event_body(mention(slack, "deploy -s blog", "U0ALICE", ts))
    statuses = _bad_requests(http_bot.sender, clock, body)
    assert statuses == dict.fromkeys(statuses, 401), statuses
    time.sleep(0.5)
    assert not thread(slack, ts) and not slack.calls_to("chat.postMessage")
    assert sim.count("POST", "/deployments") == 0 and sim.count("GET", "/stacks") == 0
    # Still Slack's own, the same body signed now, is taken: the refusals were about them.
    assert http_bot.sender.post(body, "application/json").status == 200
    assert wait_until(lambda: thread(slack, ts))


def test_a_body_over_the_limit_is_refused_unread(
    http_bot: HttpBot, slack: FakeSlack, sim: Simulator
) -> None:
    http_bot.start()
    text = "deploy -s blog " + "x" * BODY_LIMIT
    body = http_bot.sender.event_body(mention(slack, text, "U0ALICE", next_ts()))
    stamp = str(int(time.time()))
    # The headers alone, signed, saying the body's length: the answer comes before a byte
    # of the body is sent (sending it all races the server's close: a reset, not a 413).
    connection = http.client.HTTPConnection("127.0.0.1", http_bot.port, timeout=5)
    try:
        connection.putrequest("POST", "/slack/events")
        for name, value in (
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Slack-Request-Timestamp", stamp),
            ("X-Slack-Signature", sign(SIGNING_SECRET, stamp, body)),
        ):
            connection.putheader(name, value)
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    time.sleep(0.3)
    assert not slack.calls_to("chat.postMessage") and sim.count("GET", "/stacks") == 0


def test_the_endpoint_refuses_a_body_without_a_length_past_the_limit() -> None:
    """Under a server of the user's own, a chunked body has no Content-Length: the endpoint
    reads at most one byte past the limit, and refuses."""
    taken: list[str] = []
    endpoint = EventsEndpoint(_Secret(), lambda kind, payload: taken.append(kind) or True,
                              health=lambda: "")  # fmt: skip
    statuses: list[str] = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/slack/events",
               "CONTENT_TYPE": "application/json",
               "wsgi.input": io.BytesIO(b"{" + b" " * BODY_LIMIT + b"}")}  # fmt: skip
    endpoint(environ, lambda status, headers: statuses.append(status))  # type: ignore[arg-type]
    assert statuses == ["413 Content Too Large"] and not taken


class _Secret:
    value = SIGNING_SECRET

    def reread(self) -> bool:
        return False


def test_what_slack_sends_is_read_as_socket_mode_names_it() -> None:
    form = "application/x-www-form-urlencoded"
    assert read_request("application/json", b'{"type": "event_callback", "event": {}}') == (
        "events_api", {"type": "event_callback", "event": {}},
    )  # fmt: skip
    assert read_request(form, b"command=%2Figor&text=list")[0] == "slash_commands"
    assert read_request(form, b"payload=%7B%22type%22%3A%22block_actions%22%7D") == (
        "interactive", {"type": "block_actions"},
    )  # fmt: skip
    assert read_request("application/json", b"[1]") is None
    assert read_request("application/json", b"\xff") is None
    assert read_request("application/json", b"[" * 100_000 + b"]" * 100_000) is None
    assert read_request("text/plain", b"hello") is None


def test_listen_addresses() -> None:
    assert str(listen_address("")) == "127.0.0.1:3000"
    assert str(listen_address("8080")) == "127.0.0.1:8080"
    assert str(listen_address("0.0.0.0:3000")) == "0.0.0.0:3000"
    assert str(listen_address("[::]:3000")) == "[::]:3000"
    fullwidth = "\uff13\uff10\uff10\uff10"  # 3000 in full-width digits
    for wrong in ("::1:3000", "host:", ":3000", "[::1]", "3000x", "99999", fullwidth):
        with pytest.raises(UsageProblem):
            listen_address(wrong)


# -- Slack's 3 seconds, whatever Cloud 66 does ------------------------------------------


def test_every_request_is_acked_within_slacks_3_seconds_while_cloud66_is_slow(
    http_bot: HttpBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("igor_cli.chat.lines.LINE_LIMIT", 2)
    http_bot.start()
    sim.latency = 1.0  # each Cloud 66 request: a third of Slack's whole budget
    asked = [(next_ts(), f"U0USER{n}") for n in range(8)]

    def send(ts_user: tuple[str, str]) -> Any:
        ts, user = ts_user
        return http_bot.mention("cancel -s blog", user=user, ts=ts)[1]  # nothing to cancel

    with ThreadPoolExecutor(len(asked)) as pool:
        deliveries = list(pool.map(send, asked))
    acks = [d.last.seconds for d in deliveries]
    assert all(len(d.attempts) == 1 and d.last.status == 200 for d in deliveries)
    assert max(acks) < 1.0, acks  # far within 3 s: the ack never waits for Cloud 66
    # One runs, two wait in blog's line, the rest are told "busy" at once (the bounds of
    # the bot's workers, as over Socket Mode).
    assert wait_until(lambda: all(thread(slack, ts) for ts, _ in asked), 20)
    busy = [ts for ts, _ in asked if "already waiting" in thread(slack, ts)[0]]
    assert len(busy) == 5, [thread(slack, ts) for ts, _ in asked]
    sim.latency = 0.0  # the two in line finish at once: the bot stops without waiting


def test_a_stopping_bot_answers_503_and_nothing_is_taken(
    http_bot: HttpBot, slack: FakeSlack
) -> None:
    http_bot.start()
    assert http_bot.get("/healthz") == (200, {"ok": True})
    http_bot.close()
    assert http_bot.exit_code == 0
    # Stopped: the port is closed (a load balancer moves on at once; Slack retries).
    assert http_bot.get("/healthz")[0] == 0
    ts, delivery = http_bot.mention("version")
    assert delivery.last.status == 0 and delivery.last.reason == "connection_failed"
    assert not thread(slack, ts)


# -- under a server of the user's own ----------------------------------------------------


def _own_server(slack: FakeSlack, cloud66: Simulator, tmp_path: Path, port: int,
                **extra: str) -> subprocess.Popen[bytes]:  # fmt: skip
    """`waitress-serve --call igor_cli.wsgi:app`: igor's factory under a server's own CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGOR_", "SLACK_"))}
    env.update({
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "IGOR_SLACK_API_URL": slack.api_url, "IGOR_API_URL": cloud66.url,
        "IGOR_CLOUD66_TOKEN": SANDBOX_TOKEN, "IGOR_CONFIG": str(tmp_path / "config.toml"),
        "XDG_DATA_HOME": str(tmp_path / "data"), "IGOR_CACHE_DIR": str(tmp_path / "cache"),
        **extra,
    })  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "waitress", "--listen", f"127.0.0.1:{port}",
         "--call", "igor_cli.wsgi:app"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_the_app_runs_under_a_server_of_ones_own(tmp_path: Path) -> None:
    port = free_port()
    with FakeSlack() as slack, Simulator() as cloud66:
        process = _own_server(slack, cloud66, tmp_path, port)
        try:
            sender = SlackHttp(slack, f"http://127.0.0.1:{port}/slack/events", clock=time.time)
            assert wait_until(lambda: sender.url_verification().status == 200, 20)
            ts = next_ts()
            assert sender.event(mention(slack, "list -s shop", "U0ALICE", ts)).last.status == 200
            assert wait_until(lambda: thread(slack, ts), 10)
            assert "shop (production)" in thread(slack, ts)[0]
        finally:
            process.send_signal(signal.SIGTERM)
            said = process.communicate(timeout=20)[0].decode()
        assert "serving Slack's requests at /slack/events as igor" in said, said
        assert SIGNING_SECRET not in said and slack.bot_token not in said


def test_the_app_says_why_it_cannot_start_under_a_server_of_ones_own(tmp_path: Path) -> None:
    with FakeSlack() as slack, Simulator() as cloud66:
        process = _own_server(slack, cloud66, tmp_path, free_port(), SLACK_SIGNING_SECRET="")
        said = process.communicate(timeout=30)[0].decode()
    assert process.returncode != 0
    assert "igor serve --http needs the Slack signing secret; it is not set." in said, said
    assert "`igor register --slack --http`, or set SLACK_SIGNING_SECRET" in said
