"""Three `igor serve --http` replicas behind a real nginx, sharing a real Redis (issue 25):
Slack's signed requests, some retried, some delivered to two replicas at once, and a replica
killed while it follows deployments. Counted at the fakes: every command answered exactly
once, no deploy posted twice, each followed deployment's outcome told once (by a survivor,
for the killed replica's).

Each replica is `igor serve --http 127.0.0.1:PORT` in a process of its own (`replica.py`,
with igor's clocks made short); nginx balances over them as README's example does; Slack's
side is `SlackHttp`, which signs each request and retries as Slack does (sooner).
"""

from __future__ import annotations

import http.client
import json
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from igor_cli.sandbox import Simulator
from tests.conftest import next_ts, wait_until
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_http import SIGNING_SECRET, Delivery, SlackHttp
from tests.faults.conftest import OwnNginx, OwnRedis, Replica, free_port, wait_for
from tests.test_events_http import HttpBot

pytestmark = pytest.mark.faults

CHANNEL = "C0HTTP"
READS = ("version", "help", "list", "list -s shop", "locks")
DEPLOYS = ("deploy -s blog", "deploy -s legacy", "deploy -s search", "deploy -s shop -e staging")
# The simulator's legacy stack fails its deployments: an outcome all the same.
OUTCOME = {"deploy -s blog": "Deployed blog", "deploy -s legacy": "Deployment of legacy",
           "deploy -s search": "Deployed search",
           "deploy -s shop -e staging": "Deployed shop"}  # fmt: skip


@dataclass
class Asked:
    """One command Slack delivered, and how it should be answered."""

    text: str
    ts: str = ""  # a mention's message (its thread)
    response_url: str = ""  # a slash command's
    deliveries: list[Delivery] = field(default_factory=list)


class Run:
    """The fake Slack, the simulator, the replicas and nginx of one test; all stopped."""

    def __init__(self, cloud66: Simulator, redis: OwnRedis, nginx: str, scratch: Path) -> None:
        self.cloud66 = cloud66
        self.slack = FakeSlack().start()
        self.replicas: list[Replica] = []
        ports = [free_port() for _ in range(3)]
        for n, port in enumerate(ports):
            self.replicas.append(Replica(f"r{n}", self.slack, cloud66.url, redis.url, scratch,
                                         http_port=port))  # fmt: skip
        for replica in self.replicas:
            wait_for(lambda r=replica: self.health(r.http_port) == 200, 40, self.logs)
        (scratch / "nginx").mkdir()
        self.nginx = OwnNginx(nginx, scratch / "nginx", ports).start()
        # Slack waits 0, 60 and 300 s before its three retries; here a moment.
        self.lb = SlackHttp(self.slack, self.nginx.url, retry_delays=(0.0, 0.3, 0.6),
                            clock=time.time)  # fmt: skip

    def direct(self, replica: Replica) -> SlackHttp:
        """Slack's side, talking to one replica without nginx."""
        return SlackHttp(self.slack, f"http://127.0.0.1:{replica.http_port}/slack/events",
                         clock=time.time)  # fmt: skip

    @staticmethod
    def health(port: int | None) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status
        except OSError:
            return 0
        finally:
            connection.close()

    def event(self, text: str, n: int) -> dict[str, Any]:
        ts = next_ts()
        return {"type": "app_mention", "user": f"U0USER{n % 7}", "channel": CHANNEL, "ts": ts,
                "event_ts": ts, "text": f"<@{self.slack.bot_user_id}> {text}"}  # fmt: skip

    def thread(self, ts: str) -> list[str]:
        return [
            str(call.params.get("text", ""))
            for call in self.slack.calls_to("chat.postMessage")
            if call.params.get("thread_ts") == ts
        ]

    def answers(self, asked: Asked) -> list[str]:
        if asked.ts:
            return self.thread(asked.ts)
        path = "/" + asked.response_url.split("/", 3)[3]
        return [str(c.params.get("text", "")) for c in self.slack.calls_to("response_url")
                if c.path == path]  # fmt: skip

    def missing(self, asked: list[Asked]) -> str:
        """What was not answered (and how it was delivered), then the logs."""
        gone = [(a.text, a.ts or a.response_url, [[(t.status, t.reason, t.headers.get(
            "x-upstream")) for t in d.attempts] for d in a.deliveries])
                for a in asked if not self.answers(a)]  # fmt: skip
        return f"{len(gone)} unanswered: {gone[:10]}\n{self.logs()}"

    def logs(self) -> str:
        said = "\n".join(f"--- {r.name}:\n{r.said()[-3000:]}" for r in self.replicas)
        return said + (f"\n--- nginx:\n{self.nginx.said()}" if hasattr(self, "nginx") else "")

    def close(self) -> None:
        if hasattr(self, "nginx"):
            self.nginx.stop()
        for replica in self.replicas:
            replica.stop()
        self.slack.stop()


@pytest.fixture
def run(own_redis: OwnRedis, nginx_binary: str, tmp_path: Path) -> Iterator[Run]:
    with Simulator(deploy_seconds=6.0, rate_limit=None) as cloud66:
        running = Run(cloud66, own_redis, nginx_binary, tmp_path)
        try:
            yield running
        finally:
            running.close()


def _mention(run: Run, sender: SlackHttp, text: str, n: int) -> Asked:
    event = run.event(text, n)
    asked = Asked(text, ts=event["ts"])
    asked.deliveries.append(sender.event(event))
    return asked


def _slash(run: Run, text: str, n: int) -> Asked:
    fields = run.slack.slash_payload(text, user_id=f"U0USER{n % 7}", channel_id=CHANNEL)
    from urllib.parse import urlencode

    asked = Asked(text, response_url=fields["response_url"])
    body = urlencode(fields).encode()
    asked.deliveries.append(
        run.lb.deliver(body, "application/x-www-form-urlencoded", kind="slash", retries=0)
    )
    return asked


def _retried(run: Run, text: str, n: int) -> Asked:
    """Delivered, acked, and delivered again as Slack's retry after a late answer."""
    event = run.event(text, n)
    asked = Asked(text, ts=event["ts"])
    body = run.lb.event_body(event)
    asked.deliveries.append(run.lb.deliver(body, "application/json", kind="event"))
    again = run.lb.post(
        body,
        "application/json",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    asked.deliveries.append(Delivery("event", [again]))  # fmt: skip
    return asked


def _to_two(run: Run, text: str, n: int) -> Asked:
    """The same delivery reaching two replicas at once (as when Slack retries a slow one)."""
    event = run.event(text, n)
    asked = Asked(text, ts=event["ts"])
    body = run.lb.event_body(event)
    senders = [run.direct(run.replicas[0]), run.direct(run.replicas[1])]
    with ThreadPoolExecutor(2) as pool:
        for delivery in pool.map(lambda s: s.deliver(body, "application/json"), senders):
            asked.deliveries.append(delivery)
    return asked


def _send(jobs: list[Callable[[], Asked]]) -> list[Asked]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda job: job(), jobs))


def _wave(run: Run, start: int, mentions: int, slashes: int, retried: int, to_two: int) -> list[
    Callable[[], Asked]
]:  # fmt: skip
    jobs: list[Callable[[], Asked]] = []
    for n in range(start, start + mentions):
        jobs.append(lambda n=n: _mention(run, run.lb, READS[n % len(READS)], n))
    for n in range(start, start + slashes):
        jobs.append(lambda n=n: _slash(run, ("version", "list")[n % 2], n))
    for n in range(start, start + retried):
        jobs.append(lambda n=n: _retried(run, READS[n % len(READS)], n))
    for n in range(start, start + to_two):
        jobs.append(lambda n=n: _to_two(run, READS[n % len(READS)], n))
    return jobs


@pytest.mark.timeout(150)
def test_three_replicas_behind_nginx_answer_every_command_once_through_a_kill(run: Run) -> None:
    victim = run.replicas[2]
    # Wave A: the deploys go to the victim (it follows them), the rest through nginx.
    deploys = [_mention(run, run.direct(victim), text, n) for n, text in enumerate(DEPLOYS)]
    wave_a = _send(_wave(run, 0, mentions=100, slashes=20, retried=16, to_two=10))
    asked = deploys + wave_a
    assert len(asked) == 150
    wait_for(lambda: all(run.answers(a) for a in asked), 60, lambda: run.missing(asked))
    assert run.cloud66.count("POST", "/deployments") == len(DEPLOYS)

    victim.process.send_signal(signal.SIGKILL)  # while its four deployments run
    victim.process.wait(10)
    killed_at = time.monotonic()

    # Wave B, through nginx, which finds the victim's port closed and moves on.
    wave_b = _send(_wave(run, 200, mentions=120, slashes=20, retried=10, to_two=0))
    asked += wave_b
    assert len(asked) == 300
    wait_for(lambda: all(run.answers(a) for a in wave_b), 60, lambda: run.missing(wave_b))
    for deploy in deploys:
        wait_for(
            lambda d=deploy: any(OUTCOME[d.text] in t for t in run.answers(d)),
            60,
            lambda: f"{[run.answers(d) for d in deploys]}\n{run.logs()}",
        )
    time.sleep(2.0)  # a second answer, or a second outcome, would come now

    # Every delivery was acked within Slack's 3 seconds (nginx moved on from the dead one).
    attempts = [attempt for a in asked for d in a.deliveries for attempt in d.attempts]
    assert all(d.acked for a in asked for d in a.deliveries), run.logs()
    assert max(attempt.seconds for attempt in attempts) < 3.0
    # Every command answered exactly once; each deploy: started once, its outcome told once.
    for a in asked:
        said = run.answers(a)
        if a.text in OUTCOME:
            assert sum("Deploy started" in t for t in said) == 1, (a.text, said)
            assert sum(OUTCOME[a.text] in t for t in said) == 1, (a.text, said)
        else:
            assert len(said) == 1, (a.text, said)
    assert run.cloud66.count("POST", "/deployments") == len(DEPLOYS)  # none twice
    expected = sum(2 if a.text in OUTCOME else 1 for a in asked if a.ts)
    assert len(run.slack.calls_to("chat.postMessage")) == expected
    assert len(run.slack.calls_to("response_url")) == sum(1 for a in asked if a.response_url)
    # The killed replica's follows were taken over; Slack's retries were seen as retries.
    survivors = run.replicas[0].said() + run.replicas[1].said()
    assert "no replica follows" in survivors, run.logs()
    assert "Slack sent a request again (retry 1, http_timeout)" in survivors
    assert time.monotonic() - killed_at < 90
    assert all(run.health(r.http_port) == 200 for r in run.replicas[:2])
    unsigned = run.lb.post(b"{}", "application/json", signature="")
    assert unsigned.status == 401 and json.loads(unsigned.body)["error"] == "invalid_request"


@pytest.mark.timeout(60)
def test_healthz_says_503_while_the_state_store_is_down(
    own_redis: OwnRedis, slack: FakeSlack, sim: Simulator, clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr("igor_cli.chat.slack.takeover.RENEW_SECONDS", 0.2)  # looks often
    monkeypatch.setattr("igor_cli.state.health.PROBE_SECONDS", 0.2)
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    monkeypatch.setenv("IGOR_STATE_URL", own_redis.url)
    bot = HttpBot(slack, clock).start()
    try:
        assert bot.get("/healthz") == (200, {"ok": True})
        own_redis.stall()  # Redis answers nothing: the bot's next look at it fails
        assert wait_until(lambda: bot.get("/healthz")[0] == 503, 15)
        status, said = bot.get("/healthz")
        assert (
            status == 503
            and said["ok"] is False
            and said["reason"].startswith("the state store cannot be used")
        )
        own_redis.resume()
        assert wait_until(lambda: bot.get("/healthz") == (200, {"ok": True}), 15)
    finally:
        own_redis.resume()
        bot.close()
