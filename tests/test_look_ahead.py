"""A deploy or a cancel reads its stack's record at once with what it decides on (issue 27).

`find_stack` confirms the uid the completion cache knows with `GET /stacks/{uid}`; a
deploy then reads the stack's newest deployments and actions (and its own actions, for
a request Slack may retry) before it decides, and a cancel what runs and waits. On a
stack the cache names once, those reads go together (a deploy's under the stack's lock,
taken first): one round trip, not two, in the shell and in chat. A cache that names the
wrong stack costs the look, never the change.
"""

from __future__ import annotations

import threading
import time

import pytest

from igor_cli.chat.bridge import Bridge, parse
from igor_cli.cloud66.client import Cloud66Client
from igor_cli.completion import StackCache
from igor_cli.config import Environment
from igor_cli.core import perform as core
from igor_cli.features.cancel import CancelRequest
from igor_cli.features.deploy import DeployRequest
from igor_cli.identity import Origin
from igor_cli.sandbox import Simulator
from igor_cli.state import open_store
from igor_cli.state.mutex import ChangeInProgress


def _ask(sim: Simulator, where: str, text: str) -> threading.Thread:
    """`text` on shop (production), from chat or from the shell, on a filled cache."""
    env = Environment()
    bridge = Bridge(env)
    client = Cloud66Client(sim.token, sim.url)
    StackCache(env).stacks(client.stacks())
    request = parse(text.split())[1]  # the shell's definitions

    def run() -> None:
        try:
            if where == "chat":
                bridge.handle(text, Origin("slack", "U1", "e-2"))
            else:
                core.perform(env, lambda: client, request, Origin("cli", "me"), StackCache(env))
        finally:
            client.close()
            env.close()

    sim.reset_requests()
    sim.latency = 1.0  # seconds each request is held: one after another, 2 s of reads
    return threading.Thread(target=run)


@pytest.mark.parametrize("where", ["chat", "shell"])
@pytest.mark.parametrize(
    ("text", "posted"),
    [("deploy -s shop -e production", "POST"), ("cancel -s shop -e production", "DELETE")],
)
def test_a_change_reads_its_stack_with_what_it_decides_on(
    sim: Simulator, where: str, text: str, posted: str
) -> None:
    sim.start_foreign_deployment("shop", "production")  # something to cancel, or queue behind
    uid = sim.stack("shop", "production")["uid"]
    asked = _ask(sim, where, text)
    asked.start()
    deadline = time.monotonic() + 10
    while not sim.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    first = time.monotonic()
    # A deploy from chat also reads igor's actions for this request (a Slack retry).
    mine = ["/actions"] if where == "chat" and posted == "POST" else []
    together = sorted(["", "/actions", "/deployments", *mine])
    while len(sim.requests) < len(together) and time.monotonic() < first + 0.6:  # within one
        time.sleep(0.01)
    reads = sorted(r.path.removeprefix(f"/api/3/stacks/{uid}") for r in list(sim.requests))
    asked.join(15)
    assert reads == together  # the record among them
    assert sim.count("GET", f"/stacks/{uid}") == 1  # read once: not again for the change
    assert sim.count(posted) == 1  # after them, once


@pytest.mark.parametrize("where", ["chat", "shell"])
@pytest.mark.parametrize("text", ["deploy -s shop -e production", "cancel -s shop -e production"])
def test_what_was_read_ahead_is_not_handed_to_another_thread_again(
    sim: Simulator, where: str, text: str, handed_reads: list[object]
) -> None:
    # The look's reads go to other threads at once; the change's own reads are those
    # same answers, at hand: waking a thread for each would cost more than the read.
    sim.start_foreign_deployment("shop", "production")  # busy: a deploy reads what runs too
    asked = _ask(sim, where, text)
    sim.latency = 0.0
    asked.start()
    asked.join(15)
    mine = 1 if where == "chat" and text.startswith("deploy") else 0
    assert len(handed_reads) == 2 + mine  # the look's, beside the record: nothing after it
    assert sim.count("POST") + sim.count("DELETE") == 1  # and the change was made


def test_a_deploy_holds_its_stack_before_it_reads_ahead(
    sim: Simulator, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another igor changing shop: what this one would read now may be old when it posts.
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    client = Cloud66Client(sim.token, sim.url)
    other = open_store(state_url)
    env = Environment(change_wait=0.3)
    try:
        StackCache(env).stacks(client.stacks())
        uid = sim.stack("shop", "production")["uid"]
        request = DeployRequest(stack="shop", environment="production")
        assert other.claim(f"change:{uid}", "other-replica", 60)
        sim.reset_requests()
        with pytest.raises(ChangeInProgress):
            core.perform(env, lambda: client, request, Origin("cli", "me"), StackCache(env))
        assert list(sim.requests) == []  # nothing read before the stack was its own
        assert other.release(f"change:{uid}", "other-replica")
        outcome = core.perform(env, lambda: client, request, Origin("cli", "me"), StackCache(env))
        assert outcome.exit_code == 0 and sim.count("POST") == 1
        assert other.items("change:") == {}  # held once, let go once

        # A cancel never waits for another igor's change to be decided: it looks ahead
        # holding nothing.
        assert other.claim(f"change:{uid}", "other-replica", 60)
        stop = CancelRequest(stack="shop", environment="production")
        stopped = core.perform(env, lambda: client, stop, Origin("cli", "me"), StackCache(env))
        assert stopped.exit_code == 0 and sim.count("DELETE") == 1
    finally:
        other.close()
        client.close()
        env.close()


def test_a_cache_that_names_another_stack_costs_the_look_not_the_deploy(
    sim: Simulator,
) -> None:
    client = Cloud66Client(sim.token, sim.url)
    env = Environment()
    try:
        StackCache(env).stacks(client.stacks())
        old = sim.stack("blog", "production")["uid"]
        new = sim.stack("api", "production")["uid"]
        with sim._transaction() as (state, _):  # renamed at Cloud 66 since the cache was made
            state.find_stack("blog", "production").fields["name"] = "weblog"
            state.find_stack("api", "production").fields["name"] = "blog"
            state.dirty = True
        assert StackCache(env).uids("blog", "production") == [old]
        request = DeployRequest(stack="blog", environment="production")
        outcome = core.perform(env, lambda: client, request, Origin("cli", "me"), StackCache(env))
        assert outcome.exit_code == 0
        posted = [r.path for r in sim.requests if r.method == "POST"]
        assert posted == [f"/api/3/stacks/{new}/deployments"]  # the stack named blog now
        assert env.state().items("change:") == {}  # neither stack left held
    finally:
        client.close()
        env.close()
