"""`igor serve` under faults on both sides: every reply reaches someone, nothing hangs.

Driven end to end: the real slack_sdk clients, the fake Slack, the simulator (or a
Cloud 66 that accepts connections and never answers).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import RunningBot, next_ts
from tests.fakes.slack import FakeSlack


class HungServer:
    """A Cloud 66 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/3"

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self.accepted:
            conn.close()
        self.listener.close()


@pytest.fixture
def hung() -> Iterator[HungServer]:
    server = HungServer()
    yield server
    server.close()


def _mention(slack: FakeSlack, text: str, channel: str = "C0DEPLOY", user: str = "U0ALICE") -> str:
    ts = next_ts()
    slack.push_event({"type": "app_mention", "user": user, "channel": channel, "ts": ts,
                      "text": f"<@{slack.bot_user_id}> {text}"})  # fmt: skip
    return ts


def test_cheap_commands_are_answered_while_every_worker_waits_on_cloud66(
    bot: RunningBot, slack: FakeSlack, hung: HungServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_API_URL", hung.url)
    bot.start()
    for _ in range(12):  # more than the workers
        _mention(slack, "list")
    time.sleep(0.3)
    started = time.monotonic()
    _mention(slack, "version")
    _mention(slack, "help")
    _mention(slack, "deploy --bogus")
    replies = slack.wait_for_calls("chat.postMessage", 3, timeout=5)
    assert time.monotonic() - started < 3
    said = " ".join(r.params["text"] for r in replies)
    assert "igor 0.1.0" in said
    assert "No such option: --bogus" in said


def test_deploys_of_one_stack_wait_in_line_not_on_workers(
    bot: RunningBot, slack: FakeSlack, hung: HungServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_API_URL", hung.url)
    bot.start()
    for _ in range(10):  # many people deploying one stack, in any case
        _mention(slack, "deploy -s Shop -e production")
        _mention(slack, "deploy -s shop")
    deadline = time.monotonic() + 5
    while not hung.accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert len(hung.accepted) == 1  # one worker is on Cloud 66 for shop; the rest wait in line
    _mention(slack, "list")  # the other workers are free for everything else
    _mention(slack, "deploy -s blog")
    deadline = time.monotonic() + 5
    while len(hung.accepted) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(hung.accepted) == 3


def test_sigterm_ends_serve_within_10_seconds_while_cloud66_hangs(
    slack: FakeSlack, hung: HungServer
) -> None:
    env = dict(
        os.environ,
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_APP_TOKEN=slack.app_token,
        IGOR_SLACK_API_URL=slack.api_url,
        IGOR_API_URL=hung.url,
        IGOR_CLOUD66_TOKEN=SANDBOX_TOKEN,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "igor_cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        slack.wait_connected(timeout=15)
        for number in range(10):  # ten stacks: deploys of one stack would take one worker
            _mention(slack, f"deploy -s shop{number} -e production")
        deadline = time.monotonic() + 5
        while len(hung.accepted) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(hung.accepted) >= 8  # every worker is stuck on Cloud 66
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = process.communicate(timeout=15)
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
    print(f"SIGTERM to exit under a hung Cloud 66: {took:.1f} s")
    assert took < 10, stderr
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_replies_survive_slack_rate_limits(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    slack.fail_next("chat.postMessage", status=429, retry_after=1, count=4)
    _mention(slack, "version")
    replies = slack.wait_for_calls("chat.postMessage", 5, timeout=15)
    delivered = [c for c in replies if c.status == 200 and not c.error]
    assert len(delivered) == 1
    assert "igor 0.1.0" in delivered[0].params["text"]


def test_a_channel_igor_cannot_post_in_gets_a_direct_message(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    slack.fail_next("chat.postMessage", error="not_in_channel")
    _mention(slack, "deploy -s blog", channel="C0LOCKED")
    posts = slack.wait_for_calls("chat.postMessage", 2, timeout=10)
    direct = [c for c in posts if c.params["channel"] == "U0ALICE"]
    assert direct, [c.params for c in posts]
    assert "Deploy started: blog (production)." in direct[0].params["text"]
    assert "could not answer in" in json.dumps(direct[0].params["blocks"])
    assert sim.count("POST", "/deployments") == 1


def test_a_reply_nobody_can_receive_is_logged_with_the_outcome(
    bot: RunningBot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="igor")
    bot.start()
    slack.fail_next("chat.postMessage", error="token_revoked", count=3)
    _mention(slack, "version")
    deadline = time.monotonic() + 5
    while "could not deliver" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(r for r in caplog.records if "could not deliver" in r.getMessage())
    assert line.levelno == logging.ERROR
    assert "token_revoked" in line.getMessage()
    assert "command version, outcome ok" in line.getMessage()
    assert slack.bot_token not in caplog.text


def test_a_failed_response_url_falls_back_to_the_channel(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    slack.join("C0DEPLOY") if hasattr(slack, "join") else None
    slack.fail_next("response_url", status=404)
    slack.push_slash_command("version", channel_id="C0DEPLOY")
    posted = slack.wait_for_calls("chat.postMessage", 1, timeout=10)[0]
    assert "igor 0.1.0" in posted.params["text"]


def test_stopping_during_a_follow_tells_the_thread(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    sim.deploy_seconds = 100_000  # type: ignore[misc]
    bot.start()
    ts = _mention(slack, "deploy -s blog")
    assert "Deploy started" in slack.wait_for_calls("chat.postMessage", 1)[0].params["text"]
    time.sleep(0.3)
    bot.close()
    notes = [
        c for c in slack.calls_to("chat.postMessage") if "stopped watching" in c.params["text"]
    ]
    assert len(notes) == 1
    assert notes[0].params["thread_ts"] == ts
    assert "igor list -s blog" in notes[0].params["text"]


def test_a_passing_404_does_not_end_a_follow(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    sim.fail_next(404, count=1, path_contains="/actions/")
    _mention(slack, "deploy -s blog")
    finals = slack.wait_for_calls("chat.postMessage", 2, timeout=15)
    assert "Deployed blog (production)" in finals[1].params["text"]


def test_pending_confirmations_share_one_timer_thread(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from igor_cli.config import Environment

    Environment().config_path().write_text('[slack]\nconfirm = ["production"]\n')
    monkeypatch.setenv("IGOR_SIGNING_KEY", "k" * 32)
    bot.start()
    for number in range(200):
        _mention(slack, "deploy -s blog", channel=f"C0Q{number:04d}")
    slack.wait_for_calls("chat.postMessage", 200, timeout=30)
    time.sleep(0.3)
    names = [thread.name for thread in threading.enumerate()]
    assert names.count("igor-timer") == 1, names
    assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    assert sim.count("POST", "/deployments") == 0
