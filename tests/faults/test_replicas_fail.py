"""Replicas that die or stop mid-POST and mid-follow, and a Redis that stalls or comes back
empty under them (issue 22): counted at the fakes, every deploy is told in its thread (none
is silent), every outcome is posted exactly once, and nothing is deployed twice.

Each replica is `igor serve` in a process of its own (`replica.py`, with igor's clocks made
short), talking to one fake Slack, one Redis of the test's own, and the simulator through a
proxy of its own (which can hold a deploy POST, to kill its replica while it is out).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from igor_cli.chat.slack.takeover import TAKEN_OVER, TOLD_LATE
from igor_cli.sandbox import Simulator
from tests.conftest import next_ts
from tests.fakes.slack import FakeSlack
from tests.faults.conftest import (
    Cloud66Proxy,
    OwnRedis,
    Replica,
    connect_in_order,
    wait_for,
)

pytestmark = pytest.mark.faults

CHANNEL = "C0FAULTS"


@pytest.fixture
def cloud66() -> Iterator[Simulator]:
    """The simulator on real time (the replicas poll it as they would Cloud 66)."""
    with Simulator(deploy_seconds=5.0, rate_limit=None) as simulator:
        yield simulator


class Run:
    """One test's fake Slack, proxies and replicas, all stopped at the end."""

    def __init__(self, cloud66: Simulator, redis: OwnRedis, scratch: Path) -> None:
        self.cloud66 = cloud66
        self.redis = redis
        self.scratch = scratch
        self.slack = FakeSlack(server_ping_interval=0.5).start()
        self.proxies: list[Cloud66Proxy] = []
        self.replicas: list[Replica] = []

    def replica(self, name: str, timings: dict[str, float] | None = None) -> Replica:
        """Start one more replica (the newest connection: events are pushed to it)."""
        proxy = Cloud66Proxy(self.cloud66.url)
        self.proxies.append(proxy)
        replica = Replica(name, self.slack, proxy.url, self.redis.url, self.scratch, timings)
        replica.proxy = proxy  # type: ignore[attr-defined]
        self.replicas.append(replica)
        connect_in_order(self.slack, self.replicas)
        return replica

    def mention(self, text: str, user: str = "U0ALICE") -> str:
        ts = next_ts()
        self.slack.push_event({"type": "app_mention", "user": user, "channel": CHANNEL,
                               "ts": ts, "event_ts": ts,
                               "text": f"<@{self.slack.bot_user_id}> {text}"})  # fmt: skip
        return ts

    def killed_mid_post(self, text: str, reached: bool) -> tuple[str, Cloud66Proxy]:
        """A survivor and a victim; `text` asked of the victim, killed while its POST is held
        at its proxy (passed on to Cloud 66 when `reached`): the thread's ts, the proxy."""
        self.replica("survivor")
        victim = self.replica("victim")
        held: Cloud66Proxy = victim.proxy  # type: ignore[attr-defined]
        held.hold_posts, held.pass_on_when_gone = 3.0, reached
        ts = self.mention(text)
        wait_for(held.holding.is_set, 20, self.logs)
        victim.kill()  # its POST is out: Slack will never deliver the message again
        return ts, held

    def thread(self, ts: str) -> list[str]:
        """What was posted in a thread, in order."""
        return [
            str(call.params.get("text", ""))
            for call in self.slack.calls_to("chat.postMessage")
            if call.params.get("thread_ts") == ts and call.params.get("channel") == CHANNEL
        ]

    def outcomes(self, ts: str) -> list[str]:
        return [text for text in self.thread(ts) if "Deployed blog" in text]

    def logs(self) -> str:
        return "\n".join(f"--- {r.name}:\n{r.said()[-4000:]}" for r in self.replicas)

    def close(self) -> None:
        for replica in self.replicas:
            replica.stop()
        for proxy in self.proxies:
            proxy.close()
        self.slack.stop()


@pytest.fixture
def run(cloud66: Simulator, own_redis: OwnRedis, tmp_path: Path) -> Iterator[Run]:
    running = Run(cloud66, own_redis, tmp_path)
    try:
        yield running
    finally:
        running.close()


def _posts(cloud66: Simulator) -> int:
    return cloud66.count("POST", "/deployments")


def _job_names(run: Run, message_ts: str) -> bool:
    """Whether a follow job in the store names this "deploy started" message."""
    import redis

    client = redis.Redis.from_url(run.redis.url, decode_responses=True)
    try:
        return any(message_ts in str(client.get(key) or "")
                   for key in client.scan_iter("igor:follow:*"))  # fmt: skip
    finally:
        client.close()


# -- killed or stopped while Cloud 66 answers a deploy ------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.parametrize("reached", [True, False], ids=["cloud66-got-it", "never-got-there"])
def test_a_replica_killed_mid_post_leaves_no_silent_deploy(run: Run, reached: bool) -> None:
    ts, held = run.killed_mid_post("deploy -s blog", reached)
    if reached:
        wait_for(lambda: run.outcomes(ts), 40, run.logs)
    else:
        wait_for(lambda: any("was not started" in t for t in run.thread(ts)), 40, run.logs)
    time.sleep(1.5)  # a second telling would come now
    said = run.thread(ts)
    if reached:
        assert _posts(run.cloud66) == 1
        assert len(said) == 2, said
        assert "Deploy started: blog (production)" in said[0] and TAKEN_OVER[:40] in said[0]
        assert "Deployed blog" in said[1] and "<@U0ALICE>" in said[1]
    else:
        assert _posts(run.cloud66) == 0 and held.dropped == 1
        assert len(said) == 1 and "Your deploy of blog (production) was not started" in said[0]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("reached", [True, False], ids=["cloud66-got-it", "never-got-there"])
def test_a_replica_killed_mid_stack_action_leaves_its_thread_told_once(
    run: Run, reached: bool
) -> None:
    # A stack action takes no reference to find it by: the thread is told, once, that
    # whether it started is not known and where to look; never a guess, never a second POST.
    ts, _held = run.killed_mid_post("restart -s blog", reached)
    wait_for(lambda: any("is not known" in t for t in run.thread(ts)), 40, run.logs)
    time.sleep(1.5)  # a second telling would come now
    said = run.thread(ts)
    assert run.cloud66.count("POST", "/actions") == (1 if reached else 0)
    assert len(said) == 1, said
    assert "Whether igor's request to restart blog (production) started is not known" in said[0]
    assert "before asking again" in said[0]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("hold", [5.0, 8.0], ids=["answered-in-time", "handed-over"])
def test_sigterm_mid_post_waits_for_the_answer_or_hands_it_over(run: Run, hold: float) -> None:
    # Long enough that a POST still out at the end of the shutdown budget can come back.
    timings = {"igor_cli.chat.intents.POST_SECONDS": 12.0}
    run.replica("survivor", timings)
    victim = run.replica("victim", timings)
    held: Cloud66Proxy = victim.proxy  # type: ignore[attr-defined]
    held.hold_posts = hold
    ts = run.mention("deploy -s blog")
    wait_for(held.holding.is_set, 20, run.logs)
    took = victim.terminate()  # a rolling restart
    assert took < 10.0, run.logs()
    wait_for(lambda: run.outcomes(ts), 45, run.logs)
    time.sleep(1.5)
    said = run.thread(ts)
    started = [text for text in said if "Deploy started: blog (production)" in text]
    assert _posts(run.cloud66) == 1
    assert len(started) == 1, said
    # Answered within the budget, the stopping replica says it; past it, the survivor does.
    assert (TAKEN_OVER[:40] in started[0]) == (hold > 6.0), said
    assert len(run.outcomes(ts)) == 1, said


@pytest.mark.timeout(90)
def test_a_replica_starved_mid_post_says_nothing_once_its_deploy_was_taken_over(
    run: Run,
) -> None:
    # A replica that stalls while its POST is out (a loaded machine, a paused VM) looks dead:
    # its heartbeat lapses, and another igor tells the thread. When it wakes to Cloud 66's
    # answer, the deploy is no longer its to tell.
    run.replica("survivor")
    starved = run.replica("starved")
    held: Cloud66Proxy = starved.proxy  # type: ignore[attr-defined]
    held.hold_posts = 2.0  # passed on to Cloud 66 while the replica is stopped
    ts = run.mention("deploy -s blog")
    wait_for(held.holding.is_set, 20, run.logs)
    starved.pause()
    try:
        wait_for(lambda: any(TAKEN_OVER[:40] in t for t in run.thread(ts)), 40, run.logs)
    finally:
        starved.resume()  # it reads Cloud 66's answer now
    wait_for(lambda: run.outcomes(ts), 40, run.logs)
    time.sleep(2.0)  # its reply would come now
    said = run.thread(ts)
    assert _posts(run.cloud66) == 1
    assert len([t for t in said if "Deploy started: blog (production)" in t]) == 1, said
    assert len(run.outcomes(ts)) == 1, said


@pytest.mark.timeout(90)
def test_a_redis_stalled_while_the_reply_goes_out_tells_the_deploy_once(run: Run) -> None:
    # The store stalls while the POST is out: Cloud 66's answer cannot be recorded, nor the
    # intent taken out of the store when the reply would go. The thread hears it once, when
    # the store answers again, from whichever replica settles the intent.
    run.replica("one")
    two = run.replica("two")
    held: Cloud66Proxy = two.proxy  # type: ignore[attr-defined]
    held.hold_posts = 1.0
    ts = run.mention("deploy -s blog")
    wait_for(held.holding.is_set, 20, run.logs)
    run.redis.stall()
    try:
        wait_for(lambda: _posts(run.cloud66) == 1, 20, run.logs)
        time.sleep(4.0)  # the reply's turn comes and goes (every heartbeat lapses meanwhile)
    finally:
        run.redis.resume()
    wait_for(lambda: run.outcomes(ts), 40, run.logs)
    time.sleep(2.0)  # a second telling would come now
    said = run.thread(ts)
    assert _posts(run.cloud66) == 1
    started = [t for t in said if "Deploy started: blog (production)" in t]
    assert len(started) == 1, said
    assert len(run.outcomes(ts)) == 1, said
    # Said as what happened: whichever replica tells it, nobody was stopped.
    assert TOLD_LATE[:40] in started[0] or TAKEN_OVER[:40] in started[0], started


# -- killed, stalled or emptied while a deployment is followed -----------------------------


@pytest.mark.timeout(90)
def test_a_follow_taken_over_edits_the_started_message_and_tells_once(run: Run) -> None:
    run.replica("survivor")
    victim = run.replica("victim")
    ts = run.mention("deploy -s blog")
    wait_for(lambda: run.thread(ts), 20, run.logs)
    started_ts = next(
        str(call.response.get("ts"))
        for call in run.slack.calls_to("chat.postMessage")
        if call.params.get("thread_ts") == ts
    )
    # Killed once its follow names the message (a replica killed before it learns the
    # message's ts leaves nobody a message to edit: another test's case).
    wait_for(lambda: _job_names(run, started_ts), 20, run.logs)
    victim.kill()
    killed_at = time.monotonic()
    wait_for(lambda: run.outcomes(ts), 40, run.logs)
    time.sleep(1.5)
    assert len(run.outcomes(ts)) == 1, run.thread(ts)
    edits = [
        str(call.params.get("text", ""))
        for call in run.slack.calls_to("chat.update")
        if call.params.get("ts") == started_ts and call.at > killed_at
    ]
    assert any("Deployed blog" in text for text in edits), edits
    assert _posts(run.cloud66) == 1


@pytest.mark.timeout(90)
def test_a_redis_stalled_mid_follow_leaves_one_outcome(run: Run) -> None:
    run.replica("one")
    run.replica("two")
    ts = run.mention("deploy -s blog")
    wait_for(lambda: run.thread(ts), 20, run.logs)
    run.redis.stall()  # longer than a lease: the deployment ends meanwhile
    time.sleep(7.0)
    run.redis.resume()
    wait_for(lambda: run.outcomes(ts), 40, run.logs)
    time.sleep(2.0)  # a second outcome would come now
    assert len(run.outcomes(ts)) == 1, run.thread(ts)
    assert _posts(run.cloud66) == 1


@pytest.mark.timeout(90)
def test_a_redis_restarted_empty_mid_follow_leaves_one_outcome_and_refuses_changes(
    run: Run,
) -> None:
    run.replica("one")
    run.replica("two")
    ts = run.mention("deploy -s blog")
    wait_for(lambda: run.thread(ts), 20, run.logs)
    run.redis.restart_empty()
    wait_for(lambda: run.outcomes(ts), 40, run.logs)
    time.sleep(1.5)
    assert len(run.outcomes(ts)) == 1, run.thread(ts)
    # The store lost its locks: no change goes through until an operator says so.
    again = run.mention("deploy -s api", user="U0BOB")
    wait_for(lambda: run.thread(again), 20, run.logs)
    assert "was reset" in run.thread(again)[0]
    assert _posts(run.cloud66) == 1
    assert "was reset" in run.logs()  # and the log says it
