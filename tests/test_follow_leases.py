"""One follower per deployment across replicas, through the state store (both backends):
a thread whose replica died (or was restarted) still gets its deployment's outcome, and
a deployment another replica holds is not polled twice."""

from __future__ import annotations

import json
import time

import pytest

from igor_cli.chat.leases import FollowJob
from igor_cli.cloud66.models import Stack
from igor_cli.sandbox import Simulator
from igor_cli.state import open_store
from tests.conftest import Igor, RunningBot, next_ts, wait_until
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack


@pytest.fixture
def store_url(state_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    monkeypatch.setattr("igor_cli.chat.slack.takeover.RENEW_SECONDS", 0.2)
    return state_url


def _started(igor: Igor, sim: Simulator) -> tuple[Stack, str]:
    """A deployment of blog running now (as a replica that died had started it)."""
    ran = igor("deploy", "-s", "blog", "--json")
    assert ran.exit_code == 0, ran.output
    facts = json.loads(ran.stdout)
    stack = Stack.from_api({**facts["stack"]})
    return stack, str(facts["async_action_id"])


def _outcomes(slack: FakeSlack, thread: str) -> list[str]:
    return [
        str(c.params.get("text", ""))
        for c in slack.calls_to("chat.postMessage")
        if c.params.get("thread_ts") == thread and "Deployed blog" in str(c.params.get("text"))
    ]


def test_a_thread_whose_replica_died_gets_its_outcome(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, igor: Igor, store_url: str
) -> None:
    stack, action = _started(igor, sim)
    thread = next_ts()
    job = FollowJob.of(stack, action, "C0DEPLOY", thread, "U0ALICE")
    store = open_store(store_url)
    try:
        assert store.claim(job.key, job.dumps(), 3600)  # its lease died with its replica
        bot.start()
        assert wait_until(lambda: _outcomes(slack, thread)), slack.calls_to("chat.postMessage")
        said = _outcomes(slack, thread)
        assert len(said) == 1 and "<@U0ALICE>" in said[0]
        assert wait_until(lambda: store.items("follow:") == {} and store.items("lease:") == {})
    finally:
        store.close()


def test_a_deployment_another_replica_holds_is_not_polled_here(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, igor: Igor, store_url: str
) -> None:
    stack, action = _started(igor, sim)
    thread = next_ts()
    job = FollowJob.of(stack, action, "C0DEPLOY", thread, "U0ALICE")
    store = open_store(store_url)
    try:
        store.claim(job.key, job.dumps(), 3600)
        assert store.claim(f"lease:follow:{job.deployment}", "other-replica", 60)
        sim.reset_requests()
        bot.start()
        time.sleep(1.0)  # five looks for orphans
        assert sim.count("GET", f"/actions/{action}") == 0
        assert _outcomes(slack, thread) == []
        # The other replica goes away (its lease lapses, or it lets go): this one takes over.
        assert store.release(f"lease:follow:{job.deployment}", "other-replica")
        assert wait_until(lambda: _outcomes(slack, thread))
        assert len(_outcomes(slack, thread)) == 1
    finally:
        store.close()


def test_a_followed_deployment_leaves_nothing_behind(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, store_url: str
) -> None:
    bot.start()
    ts = bot.mention("deploy -s blog")
    assert wait_until(lambda: _outcomes(slack, ts))
    store = open_store(store_url)
    try:
        assert wait_until(lambda: store.items("follow:") == {} and store.items("lease:") == {})
    finally:
        store.close()
    time.sleep(0.5)  # no replica takes the finished deployment up again
    assert len(_outcomes(slack, ts)) == 1


@pytest.mark.parametrize("ran_before", [45.0, 600.0])
def test_a_taken_over_deployment_is_timed_from_its_own_start(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, igor: Igor, clock: FakeClock,
    store_url: str, ran_before: float,
) -> None:  # fmt: skip
    """A replica that takes over (or a restarted bot) counts from Cloud 66's start of the
    deployment, not from its own first look: 45 s in, or long finished (a restart)."""
    stack, action = _started(igor, sim)  # the sandbox deploys in one minute
    clock.advance(ran_before)
    thread = next_ts()
    job = FollowJob.of(stack, action, "C0DEPLOY", thread, "U0ALICE")
    store = open_store(store_url)
    try:
        assert store.claim(job.key, job.dumps(), 3600)
        bot.start()
        assert wait_until(lambda: _outcomes(slack, thread)), slack.calls_to("chat.postMessage")
    finally:
        store.close()
    said = _outcomes(slack, thread)
    assert len(said) == 1
    assert "Deployed blog (production) in 1m 00s" in said[0], said


def test_a_job_keeps_how_it_was_asked_for_and_older_records_still_load() -> None:
    # A replica that takes a rollback's follow over names it as the rollback it is.
    job = FollowJob("s1", "blog", "production", "a1", "C1", "1.2", "U1", "Rollback of blog to abc")
    assert FollowJob.loads(job.dumps()) == job
    older = {k: v for k, v in json.loads(job.dumps()).items() if k != "what"}
    loaded = FollowJob.loads(json.dumps(older))
    assert loaded is not None and loaded.what == "" and loaded.action_id == "a1"
