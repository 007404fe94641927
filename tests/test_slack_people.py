"""Slack, as a team uses it (issue 26 item 6): each person told once where they asked,
people named as Slack shows them, lock and unlock resolved as deploy is, and no click
asked for a cancel with nothing to cancel."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from igor_cli.config import Environment
from igor_cli.sandbox import Simulator
from tests.conftest import RunningBot
from tests.fakes.slack import Call, FakeSlack


def text_of(call: Call) -> str:
    return str(call.params.get("text", "")) + "\n" + json.dumps(call.params.get("blocks", []))


def answers_in(slack: FakeSlack, thread: str, count: int = 1, timeout: float = 10.0) -> list[str]:
    """What igor posted in a thread (the parent's ts), once there are `count` posts."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            text_of(c) for c in slack.calls_to("chat.postMessage")
            if c.params.get("thread_ts") == thread
        ]  # fmt: skip
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _config(text: str) -> None:
    Path(Environment().config_path()).write_text(text, encoding="utf-8")


def test_each_watcher_is_mentioned_once_in_the_thread_they_asked_in(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    # The deployment runs until both watchers are watching: Alice's follow moves the fake
    # clock, and on a loaded machine it could end before their watches arrive.
    sim.deploy_seconds = 10**9  # type: ignore[misc]
    bot.start()
    alice = bot.mention("deploy -s blog", user="U0ALICE", channel="C1")
    assert "Deploy started" in answers_in(slack, alice)[0]
    bob = bot.mention("watch -s blog", user="U0BOB", channel="C2")
    carol = bot.mention("watch -s blog", user="U0CAROL", channel="C2", ts="")
    assert answers_in(slack, bob) and answers_in(slack, carol)  # both are watching
    sim.deploy_seconds = 600  # type: ignore[misc]
    finals_alice = answers_in(slack, alice, 2, timeout=20)
    finals_bob = answers_in(slack, bob, 2, timeout=20)
    finals_carol = answers_in(slack, carol, 2, timeout=20)
    alice_final = next(t for t in finals_alice if "Deployed blog" in t)
    assert "<@U0ALICE>" in alice_final
    assert "<@U0BOB>" not in alice_final and "<@U0CAROL>" not in alice_final
    for finals, user, other in (
        (finals_bob, "U0BOB", "U0CAROL"),
        (finals_carol, "U0CAROL", "U0BOB"),
    ):
        final = next(t for t in finals if "Deployed blog" in t)
        assert f"<@{user}>" in final and "<@U0ALICE>" not in final and f"<@{other}>" not in final
    told = [t for t in map(text_of, slack.calls_to("chat.postMessage")) if "Deployed blog" in t]
    mentions = " ".join(told)
    for user in ("U0ALICE", "U0BOB", "U0CAROL"):
        assert mentions.count(f"<@{user}>") == 2, mentions  # the text and its block: once


def test_people_are_named_as_slack_shows_them_never_by_id(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    slack.add_user("U0BOB", name="bob", real_name="Bob Baker", display_name="bobby")
    slack.add_user("U0DANA", name="dana", real_name="Dana Diaz")  # no display name set
    # Dana's deployment runs throughout: the bot's follow loop moves the simulator's clock
    # on, and a history read as it ended (deployment still running, its action finished
    # a moment later) could not tell it was igor's.
    sim.deploy_seconds = 3600.0
    bot.start()
    locked = bot.mention("lock -s blog --reason release", user="U0BOB")
    assert "Locked blog" in answers_in(slack, locked)[0]
    for _ in range(2):
        refused = answers_in(slack, bot.mention("deploy -s blog", user="U0ALICE"))[0]
        assert "is locked by bobby " in refused, refused
        assert "U0BOB" not in refused and "Slack user" not in refused
    assert sim.count("POST", "/deployments") == 0
    assert "Unlocked" in answers_in(slack, bot.mention("unlock -s blog", user="U0BOB"))[0]
    shipped = bot.mention("deploy -s shop -e staging", user="U0DANA")
    assert "Deploy started" in answers_in(slack, shipped)[0]
    history = answers_in(slack, bot.mention("history -s shop -e staging -n 2"))[0]
    assert "Dana Diaz" in history and "U0DANA" not in history  # the table's BY column
    listed = answers_in(slack, bot.mention("list -s shop"))[0]
    assert "Dana Diaz" in listed and "U0DANA" not in listed  # LAST DEPLOY: who
    asked = [c.params.get("user") for c in slack.calls_to("users.info")]
    assert asked.count("U0BOB") == 1 and asked.count("U0DANA") == 1  # kept, not asked again


def test_without_users_read_the_id_stands_in_and_nothing_breaks(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    slack.bot_scopes.discard("users:read")  # an app installed from an older manifest
    bot.start()
    assert "Locked blog" in answers_in(slack, bot.mention("lock -s blog", user="U0BOB"))[0]
    refused = answers_in(slack, bot.mention("deploy -s blog", user="U0ALICE"))[0]
    assert "is locked by U0BOB " in refused
    assert [c.error for c in slack.calls_to("users.info")] == ["missing_scope"]


def test_lock_and_unlock_need_no_e_under_rules_per_environment(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    _config(
        '[[slack.allow]]\ncommands = ["deploy", "lock", "unlock", "history"]\n'
        'environments = ["production"]\n'
    )
    bot.start()
    for command in ("deploy -s blog --dry-run", "lock -s blog", "history -s blog -n 1",
                    "unlock -s blog"):  # fmt: skip
        answer = answers_in(slack, bot.mention(command))[0]
        assert "name the environment with -e" not in answer, (command, answer)
        assert "No rule allows" not in answer, (command, answer)
    assert "Unlocked blog (production)" in answer
    bot.mention("lock -s search")  # a staging stack: refused, to the requester only
    refusal = text_of(slack.wait_for_calls("chat.postEphemeral", 1, 10)[0])
    assert "No rule allows" in refusal and "in staging" in refusal


@pytest.mark.parametrize("words", ["cancel -s blog", "cancel -s blog --running"])
def test_cancel_with_nothing_deploying_asks_no_click_in_a_confirm_environment(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch, words: str
) -> None:
    _config('[slack]\nconfirm = ["production"]\n')
    monkeypatch.setenv("IGOR_SIGNING_KEY", "k" * 32)
    bot.start()
    answer = answers_in(slack, bot.mention(words))[0]
    assert "blog (production)" in answer and "nothing to cancel" in answer
    assert '"actions"' not in answer and "Only you can answer" not in answer
    assert sim.count("DELETE") == 0
    sim.start_foreign_deployment("blog", "production")
    asked = answers_in(slack, bot.mention(words))[0]
    assert "cancel the " in asked and '"actions"' in asked  # something runs: the question
    assert sim.count("DELETE") == 0
