"""Human deploy locks, on both state backends: the shell (CliRunner) and chat (the bridge,
and the bot through the fake Slack)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from igor_cli.chat.bridge import Bridge
from igor_cli.chat.guard import rules_from_config
from igor_cli.config import Environment
from igor_cli.core import perform as core
from igor_cli.core.request import Change, Outcome, QuestionWords
from igor_cli.identity import Origin
from igor_cli.render.said import Said
from igor_cli.render.text import render_text
from igor_cli.sandbox import Simulator
from igor_cli.state import open_store
from igor_cli.state.locks import StackLocked
from tests.conftest import Igor, RunningBot, rendered
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack


@pytest.fixture
def store_url(state_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """igor keeps its state at this store (SQLite, then Redis)."""
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    return state_url


def as_user(igor: Igor, name: str) -> None:
    """Who the shell user is: the operating system account igor runs as."""
    igor.account = name


def locks_json(igor: Igor) -> list[Any]:
    """`igor locks --json`: the locks."""
    ran = igor("locks", "--json")
    assert ran.exit_code == 0, ran.output
    locks: list[Any] = json.loads(ran.stdout)["locks"]
    return locks


def posts(sim: Simulator) -> int:
    return sim.count("POST", "/deployments")


# -- the shell ----------------------------------------------------------------------


def test_a_lock_holds_back_everyone_but_its_holder(
    sim: Simulator, igor: Igor, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(igor, "alice")
    ran = igor("lock", "-s", "shop", "-e", "production", "--reason", "release 4.2", "--for", "2h")
    assert ran.exit_code == 0, ran.output
    assert "Locked shop (production) for alice@" in ran.stdout
    assert "release 4.2" in ran.stdout and "(in 2 hours)" in ran.stdout

    as_user(igor, "bob")
    refused = igor("deploy", "-s", "shop", "-e", "production")
    assert refused.exit_code == 1
    assert "shop (production) is locked by alice@" in refused.stderr
    assert "release 4.2" in refused.stderr and "(in 2 hours)" in refused.stderr
    assert "Nothing was posted" in refused.stderr
    dry = igor("deploy", "-s", "shop", "-e", "production", "--dry-run")
    assert dry.exit_code == 1 and "locked by alice@" in dry.stderr
    assert posts(sim) == 0
    # Other stacks, and the same name in another environment, are not held back.
    assert igor("deploy", "-s", "shop", "-e", "staging").exit_code == 0
    assert posts(sim) == 1

    as_user(igor, "alice")
    mine = igor("deploy", "-s", "shop", "-e", "production")
    assert mine.exit_code == 0, mine.output
    assert posts(sim) == 2


def test_cancel_stays_allowed_while_locked(
    sim: Simulator, igor: Igor, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(igor, "alice")
    assert igor("lock", "-s", "blog").exit_code == 0
    assert igor("deploy", "-s", "blog").exit_code == 0
    as_user(igor, "bob")
    ran = igor("cancel", "-s", "blog")
    assert ran.exit_code == 0, ran.output
    assert "Cancelling deployment" in ran.stdout
    assert sim.count("DELETE", "") == 1


def test_someone_elses_lock_is_neither_taken_nor_released_without_force(
    sim: Simulator, igor: Igor, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(igor, "alice")
    assert igor("lock", "-s", "blog", "--reason", "db migration").exit_code == 0
    as_user(igor, "bob")
    taken = igor("lock", "-s", "blog", "--reason", "mine now")
    assert taken.exit_code == 1
    assert "already locked by alice@" in taken.stderr and "db migration" in taken.stderr
    released = igor("unlock", "-s", "blog")
    assert released.exit_code == 1
    assert "not by you" in released.stderr and "--force" in released.stderr
    held = locks_json(igor)
    assert [(lock["holder"]["user"].split("@")[0], lock["reason"]) for lock in held] == [
        ("alice", "db migration")
    ]

    forced = igor("unlock", "-s", "BLOG", "--force")
    assert forced.exit_code == 0, forced.output
    assert "which alice@" in forced.stdout and "on record" in forced.stdout
    assert locks_json(igor) == []
    store = open_store(store_url)
    try:
        audit = [json.loads(v) for v in store.items("audit:").values()]
    finally:
        store.close()
    assert len(audit) == 1
    assert audit[0]["event"] == "force-unlock"
    assert audit[0]["by"]["user"].startswith("bob@")
    assert audit[0]["lock"]["holder"]["user"].startswith("alice@")


def test_the_holder_extends_and_releases_their_lock(
    sim: Simulator, igor: Igor, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(igor, "alice")
    assert igor("lock", "-s", "blog", "--reason", "first").exit_code == 0
    again = igor("lock", "-s", "blog", "--reason", "second", "--for", "1d", "--json")
    assert again.exit_code == 0
    facts = json.loads(again.stdout)
    assert facts["result"] == "extended" and facts["lock"]["reason"] == "second"
    listed = locks_json(igor)
    assert len(listed) == 1 and listed[0]["reason"] == "second"
    assert listed[0]["stack"]["name"] == "blog"
    assert igor("unlock", "-s", "blog").exit_code == 0
    nothing = igor("unlock", "-s", "blog")
    assert nothing.exit_code == 1 and "not locked" in nothing.stderr
    assert "No stack is locked." in igor("locks").stdout


def test_an_expired_lock_vanishes(
    sim: Simulator, igor: Igor, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(igor, "alice")
    assert igor("lock", "-s", "blog", "--for", "1s").exit_code == 0
    deadline = time.monotonic() + 10
    while locks_json(igor) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert locks_json(igor) == []
    as_user(igor, "bob")
    assert igor("deploy", "-s", "blog").exit_code == 0
    assert posts(sim) == 1


def test_lock_checks_its_stack_and_its_options(sim: Simulator, igor: Igor, store_url: str) -> None:
    unknown = igor("lock", "-s", "shopp")
    assert unknown.exit_code == 1 and "No stack named 'shopp'" in unknown.stderr
    ambiguous = igor("lock", "-s", "shop")
    assert ambiguous.exit_code == 1 and "-e" in ambiguous.stderr
    for bad in ("soon", "0s", "15d", "2"):
        ran = igor("lock", "-s", "blog", "--for", bad)
        assert ran.exit_code == 2, (bad, ran.output)
    assert locks_json(igor) == []


def test_unlock_asks_which_environment_when_both_are_locked(
    sim: Simulator, igor: Igor, store_url: str
) -> None:
    assert igor("lock", "-s", "shop", "-e", "production").exit_code == 0
    assert igor("lock", "-s", "shop", "-e", "staging").exit_code == 0
    ran = igor("unlock", "-s", "shop")
    assert ran.exit_code == 1 and "production, staging" in ran.stderr
    assert igor("unlock", "-s", "shop", "-e", "staging").exit_code == 0
    assert [lock["stack"]["environment"] for lock in locks_json(igor)] == ["production"]


def test_the_lock_check_costs_no_extra_cloud66_request(
    sim: Simulator, igor: Igor, store_url: str
) -> None:
    assert igor("deploy", "-s", "api", "--dry-run").exit_code == 0  # fills the stack cache
    sim.reset_requests()
    assert igor("deploy", "-s", "api", "--dry-run").exit_code == 0
    unlocked = sorted((r.method, r.path) for r in sim.requests)  # some asked at once
    assert igor("lock", "-s", "blog").exit_code == 0  # a lock elsewhere: the check looks
    sim.reset_requests()
    assert igor("deploy", "-s", "api", "--dry-run").exit_code == 0
    assert sorted((r.method, r.path) for r in sim.requests) == unlocked  # found once
    assert unlocked


# -- any change, whatever its command ---------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RestartRequest(Change):
    """A change someone adds later, without a word about locks."""

    def question(self, stack: Any, literal: Any) -> QuestionWords:
        return QuestionWords(f"restart *{literal(stack.name)}*?", "Restart", "Cancel")

    def act(self, run: Any) -> Restarted:
        RESTARTED.append(self.stack)
        return Restarted(self.stack)


RESTARTED: list[str] = []  # what a RestartRequest restarted


@dataclass(frozen=True)
class Restarted(Outcome):
    stack: str

    @property
    def posted(self) -> bool:
        return True

    def said(self, now: Any) -> Said:
        return Said(f"Restarted {self.stack}.", tone="started")

    def facts(self) -> Any:
        return {"stack": self.stack}


def test_a_new_change_is_held_back_without_knowing_about_locks(
    sim: Simulator, store_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from igor_cli.cloud66.client import Cloud66Client

    RESTARTED.clear()
    env = Environment(clock=clock.datetime)
    client = Cloud66Client(sim.token, sim.url)
    try:
        alice, bob = Origin("slack", "U0ALICE"), Origin("slack", "U0BOB")
        from igor_cli.features.locks import LockRequest

        core.perform(env, lambda: client, LockRequest(stack="blog"), alice)
        with pytest.raises(StackLocked, match="locked by Slack user U0ALICE"):
            core.perform(env, lambda: client, RestartRequest(stack="blog"), bob)
        assert RESTARTED == []
        core.perform(env, lambda: client, RestartRequest(stack="blog"), alice)
        assert RESTARTED == ["blog"]
    finally:
        client.close()
        env.close()


# -- chat -----------------------------------------------------------------------


def _bridge(clock: FakeClock, config: dict[str, Any] | None = None) -> Bridge:
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    return Bridge(env, rules=rules_from_config(config or {}))


def test_chat_locks_hold_back_other_slack_users(
    sim: Simulator, store_url: str, clock: FakeClock
) -> None:
    bridge = _bridge(clock)
    alice, bob = Origin("slack", "U0ALICE", "Ev1"), Origin("slack", "U0BOB", "Ev2")
    taken = bridge.handle("lock -s blog --reason 'hotfix'", alice, "C1")
    assert taken.status == "ok"
    assert "<@U0ALICE>" in rendered(taken).text and "hotfix" in rendered(taken).text

    refused = bridge.handle("deploy -s blog", bob, "C1")
    assert refused.status == "error" and isinstance(refused.error, StackLocked)
    assert "U0ALICE" in rendered(refused).text and "hotfix" in rendered(refused).text
    assert posts(sim) == 0
    listed = render_text(bridge.handle("locks", bob, "C1"), clock.datetime())
    assert "blog (production): locked by Slack user U0ALICE" in listed

    # A shell user is someone else too.
    from tests.conftest import Igor as ShellIgor

    shell = ShellIgor(clock)("deploy", "-s", "blog")
    assert shell.exit_code == 1 and "Slack user U0ALICE" in shell.stderr
    assert bridge.handle("deploy -s blog", alice, "C1").status == "ok"
    assert posts(sim) == 1
    bridge.env.close()


def test_forcing_a_lock_in_chat_needs_a_rule_and_names_the_holder(
    sim: Simulator, store_url: str, clock: FakeClock
) -> None:
    rules = {"slack": {"allow": [
        {"commands": ["lock", "unlock", "locks", "deploy"]},
        {"commands": ["unlock --force"], "users": ["U0LEAD"]},
    ]}}  # fmt: skip
    bridge = _bridge(clock, rules)
    alice, bob, lead = (Origin("slack", u) for u in ("U0ALICE", "U0BOB", "U0LEAD"))
    assert bridge.handle("lock -s blog --reason 'db work'", alice, "C1").status == "ok"
    not_allowed = bridge.handle("unlock -s blog --force", bob, "C1")
    assert not_allowed.status == "refused"
    assert "unlock --force" in rendered(not_allowed).text
    not_yours = bridge.handle("unlock -s blog", bob, "C1")
    assert not_yours.status == "failed"
    assert "--force" in json.dumps(rendered(not_yours).blocks)
    forced = bridge.handle("unlock -s blog --force", lead, "C1")
    assert forced.status == "ok" and forced.fields["result"] == "forced"
    text = rendered(forced).text
    assert "<@U0ALICE>" in text and "db work" in text  # the holder is told, in the thread
    assert bridge.handle("deploy -s blog", bob, "C1").status == "ok"
    bridge.env.close()


def test_the_bot_refuses_a_locked_deploy_and_posts_nothing(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, store_url: str
) -> None:
    bot.start()
    bot.mention("lock -s blog --reason 'release train'", user="U0ALICE")
    assert ":lock:" in json.dumps(bot.replies(1)[0].params["blocks"])
    bot.mention("deploy -s blog", user="U0BOB")
    reply = bot.replies(2)[1]
    assert "locked by alice " in reply.params["text"]  # as Slack shows her name, not U0ALICE
    assert "release train" in reply.params["text"]
    assert posts(sim) == 0
    bot.mention("cancel -s blog", user="U0BOB")  # allowed: nothing runs, so nothing to cancel
    assert "nothing to cancel" in bot.replies(3)[2].params["text"]


# -- the race ------------------------------------------------------------------

_RACER = """
import sys
from igor_cli.identity import Origin
from igor_cli.cloud66.models import Stack
from igor_cli.config import now_utc
from igor_cli.features.locks import take_lock
from igor_cli.state import open_store

store = open_store(sys.argv[1])
stack = Stack.from_api({"uid": "u-race", "name": "shop", "environment": "production"})
store.get("warm-up")  # connected before the start
print("ready", flush=True)
sys.stdin.readline()
outcome = take_lock(store, stack, Origin("cli", sys.argv[2]), "race", 60, now_utc())
print(outcome.result.value, flush=True)
store.close()
"""


def test_twenty_processes_race_for_one_lock_and_one_wins(state_url: str) -> None:
    root = Path(__file__).resolve().parent.parent
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, state_url, f"racer{i}@host"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        for i in range(20)
    ]
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stderr is not None
            said = racer.stdout.readline().strip()
            assert said == "ready", racer.stderr.read()
        for racer in racers:  # all at once: every one is waiting on this line
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        results = [racer.communicate(timeout=60)[0].strip() for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait(10)
    assert sorted(results) == ["held"] * 19 + ["taken"]
    assert all(racer.returncode == 0 for racer in racers)
    store = open_store(state_url)
    try:
        values = store.items("lock:")
    finally:
        store.close()
    assert len(values) == 1
    winner = next(r for r, result in zip(range(20), results, strict=True) if result == "taken")
    assert f"racer{winner}@host" in next(iter(values.values()))


def test_no_confirmation_is_asked_for_a_change_a_lock_would_refuse(
    sim: Simulator, store_url: str, clock: FakeClock
) -> None:
    from igor_cli.chat.guard import Signer

    bridge = _bridge(clock, {"slack": {"confirm": ["production"]}})
    bridge.signer = Signer(b"k" * 32)
    alice, bob = Origin("slack", "U0ALICE"), Origin("slack", "U0BOB")
    assert bridge.handle("lock -s blog", alice, "C1").status == "ok"
    refused = bridge.handle("deploy -s blog", bob, "C1")
    assert refused.status == "error" and isinstance(refused.error, StackLocked)
    assert refused.question is None
    assert bridge.handle("deploy -s blog", alice, "C1").status == "confirm"
    # Nothing deploys: said at once; something does: cancel may be asked (not locked).
    assert bridge.handle("cancel -s blog", bob, "C1").status == "failed"
    sim.start_foreign_deployment("blog", "production")
    assert bridge.handle("cancel -s blog", bob, "C1").status == "confirm"
    assert posts(sim) == 0
    bridge.env.close()


# -- several replicas ---------------------------------------------------------------


def test_two_replicas_that_both_receive_a_post_run_it_once(
    slack: FakeSlack, sim: Simulator, clock: FakeClock, store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.conftest import next_ts

    if not store_url.startswith("redis"):
        pytest.skip("replicas on a local store refuse changes (test_trust_members)")
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_APP_TOKEN", slack.app_token)
    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    replicas = [RunningBot(slack, clock), RunningBot(slack, clock)]
    try:
        replicas[0].start()
        replicas[1].start(wait=False)
        slack.wait_connected(2)
        deadline = time.monotonic() + 5
        while slack.live_connections() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slack.live_connections() == 2
        for text in ("deploy -s blog", "version"):
            ts = next_ts()
            said = f"<@{slack.bot_user_id}> {text}"
            event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0DEPLOY",
                     "text": said, "ts": ts, "event_ts": ts}  # fmt: skip
            assert len(slack.push_event_everywhere(event)) == 2
        replies = slack.wait_for_calls("chat.postMessage", 2, 5.0)
        time.sleep(0.5)  # a second answer to either post would come now
        texts = [c.params["text"] for c in slack.calls if c.method == "chat.postMessage"]
        assert sum("Deploy started" in text for text in texts) == 1, texts
        assert sum("igor 0." in text for text in texts) == 1, texts
        assert sum("Deployed blog" in text for text in texts) <= 1, texts  # one follower
        assert posts(sim) == 1
        assert replies
    finally:
        for replica in replicas:
            replica.close()


# -- one change to a stack at a time, across processes ---------------------------------


def test_a_change_waits_for_another_igor_changing_the_same_stack(
    sim: Simulator, store_url: str, clock: FakeClock
) -> None:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.core.resolve import find_stack
    from igor_cli.features.deploy import DeployRequest
    from igor_cli.state.mutex import ChangeInProgress

    client = Cloud66Client(sim.token, sim.url)
    other = open_store(store_url)  # another replica, mid-deploy of blog
    env = Environment(clock=clock.datetime, change_wait=0.3)
    try:
        uid = find_stack(client, "blog", None).uid
        assert other.claim(f"change:{uid}", "other-replica", 60)
        with pytest.raises(ChangeInProgress, match="Another igor is changing"):
            core.perform(env, lambda: client, DeployRequest(stack="blog"), Origin("cli", "me"))
        assert posts(sim) == 0
        assert other.get(f"change:{uid}") == "other-replica"  # not taken from its holder
        # A dry run posts nothing: it waits for nobody's change, and holds nothing.
        looked = core.perform(
            env, lambda: client, DeployRequest(stack="blog", dry_run=True), Origin("cli", "me")
        )
        assert looked.exit_code == 0 and posts(sim) == 0
        assert other.get(f"change:{uid}") == "other-replica"

        assert other.release(f"change:{uid}", "other-replica")
        assert other.claim(f"change:{uid}", "other-replica", 0.5)  # finishing soon
        env.change_wait = 10.0
        outcome = core.perform(
            env, lambda: client, DeployRequest(stack="blog"), Origin("cli", "me")
        )
        assert outcome.exit_code == 0 and posts(sim) == 1
        assert other.items("change:") == {}  # released after the change
    finally:
        other.close()
        client.close()
        env.close()


def test_a_button_another_replica_used_does_nothing_here(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import base64
    import hashlib

    from tests.test_guard_resolved import CONFIRM_ONLY, _click, _configure, _value

    _configure(CONFIRM_ONLY, monkeypatch)
    bot.start()
    bot.mention("deploy -s blog")
    question = bot.replies(1)[0]
    value = _value(question)
    # Another replica took the click and died before it could replace the question:
    # Slack still shows the buttons; only the store knows.
    other = open_store(store_url)
    try:
        signed = base64.urlsafe_b64decode(value.split(".")[0] + "==")  # what it signs
        used = "used:" + hashlib.sha256(signed).hexdigest()
        assert other.claim(used, "other-replica", 60)
    finally:
        other.close()
    _click(slack, value, question)
    said = slack.wait_for_calls("chat.postEphemeral", 1)[0].params["text"]
    assert "already answered" in said
    time.sleep(0.3)
    assert posts(sim) == 0


def test_a_button_is_used_once_and_recorded_in_the_store(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from tests.test_guard_resolved import CONFIRM_ONLY, _click, _configure, _value

    _configure(CONFIRM_ONLY, monkeypatch)
    bot.start()
    bot.mention("deploy -s blog")
    question = bot.replies(1)[0]
    _click(slack, _value(question), question)
    deadline = time.monotonic() + 5
    while posts(sim) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert posts(sim) == 1
    store = open_store(store_url)
    try:
        assert len(store.items("used:")) == 1
    finally:
        store.close()


# -- rollback and promote are changes like deploy, with no word about locks in them ----


def test_rollback_and_promote_are_held_back_by_locks_and_freezes(
    sim: Simulator, igor: Igor, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_user(igor, "alice")
    assert igor("lock", "-s", "shop", "-e", "production", "--reason", "audit").exit_code == 0
    as_user(igor, "bob")
    for words in (
        ("rollback", "-s", "shop", "-e", "production"),
        ("promote", "-s", "shop", "--from", "staging", "--to", "production"),
        ("promote", "-s", "shop", "--from", "staging", "--to", "production", "--dry-run"),
    ):
        ran = igor(*words)
        assert ran.exit_code == 1, (words, ran.output)
        assert "shop (production) is locked by alice@" in ran.stderr and "audit" in ran.stderr
    # The other way round the target is staging: not locked.
    assert igor("promote", "-s", "shop", "--from", "production", "--to", "staging").exit_code == 0
    assert posts(sim) == 1
    as_user(igor, "alice")
    assert igor("rollback", "-s", "shop", "-e", "production").exit_code == 0
    assert posts(sim) == 2

    Environment().config_path().write_text(
        '[[freeze]]\nenvironments = ["staging"]\nfrom = 2026-01-01\nuntil = 2027-01-01\n'
    )
    frozen = igor("rollback", "-s", "shop", "-e", "staging")
    assert frozen.exit_code == 1 and "shop (staging) is frozen until" in frozen.stderr
    assert posts(sim) == 2
