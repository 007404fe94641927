"""Three `igor serve` replicas against one fake Slack, one Redis and one simulator (issue 13,
"Proof"): 200 commands spread over the replicas' connections (some delivered to every
one), one replica killed (SIGKILL) mid-run. Every command is answered once, no event makes
two deploy POSTs, each deployment is polled by one replica at a time (the killed one's
taken over by a survivor), and every followed deployment's outcome is posted once.

Each replica reaches the simulator through a recording proxy of its own, so the test
knows which replica sent each request.
"""

from __future__ import annotations

import http.client
import itertools
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from igor_cli.chat.leases import JOB_PREFIX, LEASE_PREFIX
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from igor_cli.state import open_store
from tests.fakes.slack import Call, FakeSlack

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "C0REPLICA"
REPLICAS = 3
DEPLOY_SECONDS = 20.0  # the first deployments outlive the kill
WHOLE_RUN = 80.0  # seconds: startup, 200 commands, takeover (30 s lease), outcomes
FOLLOWED = ("Deploy started", "queued behind", "already deploying")

# One round of ten commands; twenty rounds make the 200. Several stacks are deployed, some
# by two people at once; the rest are answered at once.
ROUND: tuple[tuple[str, str], ...] = (
    ("U0ALICE", "list"),
    ("U0BOB", "deploy -s blog"),
    ("U0CAROL", "list -s shop"),
    ("U0DAN", "deploy -s api"),
    ("U0ERIN", "help"),
    ("U0FRANK", 'deploy -s "Payments Portal"'),
    ("U0ALICE", "deploy -s shop -e staging"),
    ("U0BOB", "list -e staging"),
    ("U0CAROL", "deploy -s search"),
    ("U0DAN", "deploy -s nope"),
)


class AnsweredTwice(AssertionError):
    """A thread got more (or fewer) answers than its command asked for."""


@dataclass(frozen=True)
class Seen:
    """One request a replica sent to Cloud 66 (the simulator)."""

    replica: int
    method: str
    path: str
    at: float


class _Proxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, replica: int, upstream: str, seen: list[Seen], lock: threading.Lock):
        self.replica = replica
        self.upstream = urlsplit(upstream)
        self.seen = seen
        self.seen_lock = lock
        super().__init__(("127.0.0.1", 0), _Forward)


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def _forward(self) -> None:
        proxy = self.server
        assert isinstance(proxy, _Proxy)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        with proxy.seen_lock:
            proxy.seen.append(
                Seen(proxy.replica, self.command, self.path.split("?")[0], time.monotonic())
            )
        skip = {"host", "connection", "content-length", "transfer-encoding"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        upstream = http.client.HTTPConnection(
            proxy.upstream.hostname or "127.0.0.1", proxy.upstream.port, timeout=30
        )
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in skip:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            upstream.close()


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator[tuple[Simulator, list[_Proxy], list[Seen]]]:
    """The simulator, one recording proxy to it per replica, and what they saw."""
    seen: list[Seen] = []
    lock = threading.Lock()
    with Simulator(deploy_seconds=DEPLOY_SECONDS, rate_limit=None) as sim:
        servers = [_Proxy(n, sim.url, seen, lock) for n in range(REPLICAS)]
        threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            for s in servers
        ]
        for thread in threads:
            thread.start()
        try:
            yield sim, servers, seen
        finally:
            for server in servers:
                server.shutdown()
                server.server_close()
            for thread in threads:
                thread.join(5)


def _serve(
    n: int, slack: FakeSlack, proxy: _Proxy, state_url: str, scratch: Path
) -> subprocess.Popen[bytes]:
    """Replica `n`: `igor serve` in a process of its own, as it runs."""
    home = scratch / f"replica-{n}"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGOR_", "SLACK_"))}
    env.update({
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
        "IGOR_SLACK_API_URL": slack.api_url,
        "IGOR_API_URL": f"http://127.0.0.1:{proxy.server_address[1]}{proxy.upstream.path}",
        "IGOR_CLOUD66_TOKEN": SANDBOX_TOKEN, "IGOR_CACHE_DIR": str(home / "cache"),
        "IGOR_CONFIG": str(home / "config.toml"), "IGOR_STATE_URL": state_url,
    })  # fmt: skip
    with (home / "serve.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "igor_cli", "serve"], env=env, cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip


def _wait(condition: Callable[[], bool], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _replies(slack: FakeSlack, threads: set[str]) -> dict[str, list[Call]]:
    """The answers in each thread: a command waiting behind others for its stack is told so
    first (issue 22), which is not an answer."""
    replies: dict[str, list[Call]] = {ts: [] for ts in threads}
    for call in slack.calls_to("chat.postMessage"):
        thread = str(call.params.get("thread_ts"))
        waiting = str(call.params.get("text", "")).startswith("Waiting behind")
        if thread in replies and call.params.get("channel") == CHANNEL and not waiting:
            replies[thread].append(call)
    return replies


def _followed(calls: list[Call]) -> bool:
    return bool(calls) and any(word in str(calls[0].params.get("text")) for word in FOLLOWED)


def _logs(scratch: Path) -> str:
    return "\n".join(
        f"--- replica {n}:\n" + (scratch / f"replica-{n}" / "serve.log").read_text()[-3000:]
        for n in range(REPLICAS)
        if (scratch / f"replica-{n}" / "serve.log").exists()
    )


@pytest.mark.timeout(120)  # WHOLE_RUN bounds the waits; this, the processes' start and stop
def test_three_replicas_answer_once_and_follow_once_when_one_dies(
    redis_server: str,
    proxies: tuple[Simulator, list[_Proxy], list[Seen]],
    tmp_path: Path,
) -> None:
    import redis

    client = redis.Redis.from_url(redis_server)
    try:
        client.flushdb()
    finally:
        client.close()
    sim, servers, seen = proxies
    rng = random.Random(13)
    started = time.monotonic()
    deadline = started + WHOLE_RUN
    store = open_store(redis_server)
    bots: list[subprocess.Popen[bytes]] = []
    with FakeSlack(server_ping_interval=0.5) as slack:
        try:
            bots = [_serve(n, slack, servers[n], redis_server, tmp_path) for n in range(3)]
            assert _wait(lambda: slack.live_connections() == REPLICAS, started + 30), (
                f"{slack.live_connections()} of {REPLICAS} replicas connected\n{_logs(tmp_path)}"
            )
            users: dict[str, str] = {}  # thread ts -> who asked
            texts: dict[str, str] = {}  # thread ts -> what was asked

            def send(rounds: range) -> set[str]:
                sent = set()
                for number in (r * len(ROUND) + i for r in rounds for i in range(len(ROUND))):
                    user, text = ROUND[number % len(ROUND)]
                    ts = f"{1_800_000_000 + number}.000100"
                    event = {"type": "app_mention", "user": user, "channel": CHANNEL, "ts": ts,
                             "event_ts": ts, "text": f"<@{slack.bot_user_id}> {text}"}  # fmt: skip
                    if number % 7 == 3:  # delivered to every replica, as a retry can be
                        slack.push_event_everywhere(event)
                    else:
                        slack.push_event_at_random(event, rng)
                    users[ts], texts[ts] = user, text
                    sent.add(ts)
                return sent

            def answered(threads: set[str]) -> bool:
                return all(_replies(slack, threads).values())

            first = send(range(10))
            assert _wait(lambda: answered(first), deadline), _logs(tmp_path)

            # Kill the replica that follows the most deployments, while they still run.
            leases = store.items(LEASE_PREFIX)
            holders = Counter(holder.split(":")[1] for holder in leases.values())
            assert holders, f"no deployment followed before the kill\n{_logs(tmp_path)}"
            victim_pid = int(holders.most_common(1)[0][0])
            victim = next(n for n, bot in enumerate(bots) if bot.pid == victim_pid)
            orphaned = {
                key.removeprefix(LEASE_PREFIX)
                for key, holder in leases.items()
                if holder.split(":")[1] == str(victim_pid)
            }
            bots[victim].send_signal(signal.SIGKILL)
            bots[victim].wait(10)
            killed_at = time.monotonic()
            assert _wait(lambda: slack.live_connections() == REPLICAS - 1, deadline)

            second = send(range(10, 20))
            threads = first | second
            assert len(threads) == 200
            assert _wait(lambda: answered(second), deadline), _logs(tmp_path)

            def all_told() -> bool:
                replies = _replies(slack, threads)
                outcomes = all(len(c) >= 2 for c in replies.values() if _followed(c))
                return outcomes and not store.items(JOB_PREFIX) and not store.items(LEASE_PREFIX)

            assert _wait(all_told, deadline), (
                f"follows left: {store.items(JOB_PREFIX)}\n{_logs(tmp_path)}"
            )
            for n, bot in enumerate(bots):
                assert n == victim or bot.poll() is None, _logs(tmp_path)
        finally:
            for bot in bots:
                if bot.poll() is None:
                    bot.kill()
                bot.wait(10)
            store.close()
        replies = _replies(slack, threads)

    # At most one deploy POST per event, each with its own user_reference.
    posts = [
        r for r in list(sim.requests) if r.method == "POST" and r.path.endswith("/deployments")
    ]
    references = Counter(str(r.body.get("user_reference")) for r in posts)
    assert posts and references.most_common(1)[0][1] == 1, references
    deploys = [
        ts for ts in threads if texts[ts].startswith("deploy -s ") and "nope" not in texts[ts]
    ]
    assert len(posts) <= len(deploys)

    # One poll loop per deployment: the replicas that polled an action did so one after
    # another (a holder lets go, another takes over), never side by side; and each
    # deployment the killed replica held was polled again by a survivor after the kill.
    polls: dict[str, dict[int, list[float]]] = {}
    for request in seen:
        match = re.search(r"/stacks/([^/]+)/actions/(\d+)$", request.path)
        if request.method == "GET" and match:
            times = polls.setdefault(f"{match[1]}:{match[2]}", {}).setdefault(request.replica, [])
            times.append(request.at)
    assert polls
    for deployment, by_replica in polls.items():
        spans = sorted((min(at), max(at), n) for n, at in by_replica.items())
        for before, after in itertools.pairwise(spans):
            assert before[1] < after[0], f"{deployment} polled side by side: {spans}"
    for deployment in orphaned:
        survivors = [
            at for n, ats in polls.get(deployment, {}).items() if n != victim for at in ats
        ]
        assert any(at > killed_at for at in survivors), f"{deployment} not taken over: {polls}"

    # Every command is answered exactly once; a followed deployment's outcome once more.
    wrong = []
    followed = 0
    for ts, calls in sorted(replies.items()):
        said = [str(c.params.get("text", ""))[:70] for c in calls]
        if _followed(calls):
            followed += 1
            if len(calls) != 2 or f"<@{users[ts]}>" not in said[1]:
                wrong.append(f"{texts[ts]!r}: {said}")
        elif len(calls) != 1:
            wrong.append(f"{texts[ts]!r}: {said}")
    if wrong:
        raise AnsweredTwice("\n".join(wrong))
    assert followed >= 20
