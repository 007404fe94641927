"""A command's requests do not grow with a stack's history (issue 20).

Every command that talks to Cloud 66 runs against stacks with 45 past
deployments and against stacks with 3,000, in both list orders, with an empty
cache (a first run, a restarted bot) and with the one the first run left. With
3,000 it may cost at most 2 requests more than with 45, and never more than 10.
The table the issue asks for is `python -m benchmarks.command_cost`.
"""

from __future__ import annotations

import pytest

from benchmarks.command_cost import COMMANDS, cost, examples, simulator
from igor_cli.sandbox import Simulator
from tests.fakes.clock import FakeClock

MOST = 10  # requests one command may cost, whatever the stack's history
MORE = 2  # requests 3,000 past deployments may add to what 45 cost


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("name", [c[0] for c in COMMANDS])
def test_no_command_costs_more_for_a_long_history(name: str, order: str) -> None:
    found = {}
    for past in (45, 3000):
        clock = FakeClock()
        with simulator(past, order, clock) as sim:
            found[past] = cost(sim, clock, name)
    (short_cold, short_warm, short_code), (long_cold, long_warm, long_code) = (
        found[45],
        found[3000],
    )
    assert short_code == long_code, found  # the same answer, whatever the history
    assert long_cold <= short_cold + MORE, found
    assert long_warm <= short_warm + MORE, found
    assert max(long_cold, long_warm, short_cold, short_warm) <= MOST, found


def test_every_command_that_talks_to_cloud66_is_measured_by_its_own_examples() -> None:
    from igor_cli import cli
    from igor_cli.core.request import Request
    from tests.test_registry import _sample_requests

    # Its idle case comes from its examples (its help's lines), not from a list to extend.
    measured = {cli.index()[words[0]].name for _, _, words in examples()}
    talking = set()
    for name in cli.commands():
        if name == "help":
            continue  # answers with help text
        # The shell's setup commands (register, doctor) check a token with one GET /stacks.
        if any(isinstance(r, Request) and r.needs_cloud66 for r in _sample_requests(name)):
            talking.add(name)
    assert {"list", "deploy", "cancel", "watch", "history", "rollback", "promote"} <= talking
    assert talking <= measured, talking - measured


def test_the_bots_commands_share_one_read_of_a_stack_for_a_few_seconds(
    sim: Simulator, clock: FakeClock
) -> None:
    from igor_cli.chat.bridge import Bridge
    from igor_cli.config import Environment
    from igor_cli.identity import Origin

    bridge = Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))

    def say(text: str) -> None:
        assert bridge.handle(text, Origin("slack", "U1", f"e-{text}-{clock()}")).error is None

    say("list -s shop -e production")
    read = sim.count("GET", "/deployments")
    say("history -s shop -e production")
    say("watch -s shop -e production")
    assert sim.count("GET", "/deployments") == read  # the list's read served both
    clock.advance(30)
    say("history -s shop -e production")
    assert sim.count("GET", "/deployments") == read + 1  # stale: read again, once
    say("deploy -s shop -e production")  # a change reads afresh
    assert sim.count("GET", "/deployments") == read + 2
    say("list -s shop -e production")  # and what it changed is read anew after it
    assert sim.count("GET", "/deployments") == read + 3
    live = bridge.handle("list -s shop -e production --json", Origin("slack", "U1", "e-last"))
    assert live.outcome is not None and live.outcome.deploy_facts


@pytest.mark.parametrize(
    "text",
    [
        "deploy -s shop -e production",
        "cancel shop -e production",
        "redeploy shop -e production --dry-run",
    ],
)
def test_a_change_from_chat_reads_its_stack_once(
    sim: Simulator, clock: FakeClock, text: str
) -> None:
    # The bridge resolves the stack to decide the rules on it; the action acts on that
    # stack (issue 27): one GET of it a command, not one for the rules and one for the action.
    from igor_cli.chat.bridge import Bridge
    from igor_cli.config import Environment
    from igor_cli.identity import Origin

    bridge = Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))
    assert bridge.handle("list", Origin("slack", "U1", "e-list")).error is None  # the cache
    uid = sim.stack("shop", "production")["uid"]
    sim.reset_requests()
    reply = bridge.handle(text, Origin("slack", "U1", "e-change"))
    assert reply.error is None and reply.outcome is not None
    assert sim.count("GET", f"/stacks/{uid}") == 1
    assert sim.count("GET", "/stacks") == 0  # not listed either


@pytest.mark.parametrize(
    ("text", "together", "result", "deletes"),
    [
        ("deploy -s shop -e production --dry-run",
         ["actions", "actions?user_reference", "deployments"], "would_queue", 0),
        ("cancel -s shop -e production", ["actions", "deployments"], "cancelling", 1),
    ],
)  # fmt: skip
def test_a_changes_reads_are_asked_together_not_one_after_another(
    sim: Simulator, text: str, together: list[str], result: str, deletes: int
) -> None:
    # Issue 27: a stack's changes wait in line, so each read that waits for the one
    # before it costs every command behind it a round trip. A deploy on a busy stack
    # reads its newest deployments, igor's actions by this request's reference and its
    # newest actions; a cancel, what runs and what waits: each asked before any answers.
    import threading
    import time

    from igor_cli.chat.bridge import Bridge
    from igor_cli.config import Environment
    from igor_cli.identity import Origin

    bridge = Bridge(Environment())
    assert bridge.handle("list", Origin("slack", "U1", "e-list")).error is None  # the cache
    sim.start_foreign_deployment("shop", "production")
    uid = sim.stack("shop", "production")["uid"]
    sim.reset_requests()
    sim.latency = 1.0  # seconds each request is held: one after another, 3 s of reads
    replies = []
    asked = threading.Thread(
        target=lambda: replies.append(bridge.handle(text, Origin("slack", "U1", "e-2")))
    )
    asked.start()

    def reads() -> list[str]:
        return sorted(
            r.path.rsplit("/", 1)[1] + ("?" + ",".join(r.query) if r.query else "")
            for r in list(sim.requests)
            if r.path.startswith(f"/api/3/stacks/{uid}/")
        )

    deadline = time.monotonic() + 10
    while not reads() and time.monotonic() < deadline:  # after the GET of the stack itself
        time.sleep(0.01)
    first = time.monotonic()
    while len(reads()) < len(together) and time.monotonic() < first + 0.6:  # within one
        time.sleep(0.01)
    assert reads() == together
    asked.join(15)
    assert replies and replies[0].outcome is not None
    assert replies[0].outcome.result.value == result
    assert (sim.count("POST"), sim.count("DELETE")) == (0, deletes)  # after the reads, once


def test_a_listing_reads_its_deploy_facts_on_the_shared_threads(
    sim: Simulator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 27: the bot lists again and again; a pool of the listing's own started and
    # joined a thread per stack at every `list` (CPU for nothing, most reads being shared).
    import threading

    from igor_cli.chat.bridge import Bridge
    from igor_cli.config import Environment
    from igor_cli.identity import Origin

    bridge = Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))
    assert bridge.handle("list", Origin("slack", "U1", "e-1")).outcome is not None
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    reply = bridge.handle("list", Origin("slack", "U1", "e-2"))
    assert reply.outcome is not None and reply.outcome.deploy_facts  # LAST DEPLOY was read
    assert not [name for name in started if name.startswith("igor-deploys")], started
