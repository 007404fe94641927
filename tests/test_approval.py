"""Second-person approval in chat: a change waits for a click from someone other than its
requester (or from the approvers the rules name); the button is signed, expires, and is
used once (recorded in the state store); at approval every check is made again."""

from __future__ import annotations

import time

import pytest

from igor_cli.chat.guard import rules_from_config
from igor_cli.config import Environment
from igor_cli.sandbox import Simulator
from tests.conftest import RunningBot
from tests.fakes.slack import FakeSlack
from tests.test_guard import button_value, click, ephemerals

ALICE, BOB, CAROL, LEAD = "U0ALICE", "U0BOB", "U0CAROL", "U0LEAD"


def configure(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    Environment().config_path().write_text(text)
    monkeypatch.setenv("IGOR_SIGNING_KEY", "a-key-shared-by-every-replica-of-igor")


def posts(sim: Simulator) -> int:
    return sim.count("POST", "/deployments")


def test_someone_other_than_the_requester_approves_once(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure('[slack]\napprove = ["production"]\n', monkeypatch)
    bot.start()
    ts = bot.mention("deploy -s blog", user=ALICE)
    asked = bot.replies(1)[0].params
    assert asked["thread_ts"] == ts
    text = asked["blocks"][0]["text"]["text"]
    assert "<@U0ALICE> asks to deploy *blog* to *production*." in text
    assert "approval by someone other than them" in text
    assert [e["text"]["text"] for e in asked["blocks"][1]["elements"]] == ["Approve", "Reject"]
    value = button_value(slack)

    slack.wait_ack(click(slack, ALICE, value))
    assert "Someone else must approve your own request" in ephemerals(slack)[0]
    assert posts(sim) == 0

    slack.wait_ack(click(slack, BOB, value))
    decided = slack.wait_for_calls("response_url", 1)[0].params
    assert "Approved by <@U0BOB> at" in decided["text"]
    started = bot.replies(2)[1].params
    assert "Deploy started: blog (production)." in started["text"]
    assert posts(sim) == 1
    posted = next(r for r in sim.requests if r.method == "POST")
    assert "U0ALICE" in posted.body["user_reference"]  # deployed for its requester

    slack.wait_ack(click(slack, CAROL, value))  # a replay, or a third person
    assert "already answered" in ephemerals(slack, 2)[1]
    time.sleep(0.3)
    assert posts(sim) == 1


def test_only_the_named_approvers_approve_and_the_requester_may_withdraw(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure('[slack]\napprove = ["production"]\napprovers = ["U0LEAD"]\n', monkeypatch)
    bot.start()
    bot.mention("deploy -s blog", user=ALICE)
    bot.replies(1)
    value = button_value(slack)
    slack.wait_ack(click(slack, BOB, value))
    assert "Only <@U0LEAD> can approve this." in ephemerals(slack)[0]
    slack.wait_ack(click(slack, ALICE, value, action="igor_decline"))
    decided = slack.wait_for_calls("response_url", 1)[0].params
    assert "Rejected by <@U0ALICE>" in decided["text"]
    slack.wait_ack(click(slack, LEAD, value))  # too late: it was withdrawn
    assert "already answered" in ephemerals(slack, 2)[1]
    time.sleep(0.3)
    assert posts(sim) == 0


def test_at_approval_the_stack_is_checked_again(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    configure('[slack]\napprove = ["production"]\n', monkeypatch)
    bot.start()
    bot.mention("deploy -s blog", user=ALICE)
    bot.replies(1)
    value = button_value(slack)
    bot.mention("lock -s blog --reason 'incident'", user=CAROL)  # meanwhile
    assert "Locked blog (production)" in bot.replies(2)[1].params["text"]
    slack.wait_ack(click(slack, BOB, value))
    refused = bot.replies(3)[2].params["text"]
    assert "blog (production) is locked by carol " in refused  # as Slack shows her name
    assert "incident" in refused
    time.sleep(0.3)
    assert posts(sim) == 0


def test_the_approval_rules_are_read_and_checked() -> None:
    rules = rules_from_config({"slack": {"approve": ["Production"], "approvers": [LEAD]}})
    assert rules.needs_approval("production") and not rules.needs_approval("staging")
    assert rules.may_approve(LEAD, ALICE) and not rules.may_approve(BOB, ALICE)
    assert not rules.may_approve(LEAD, LEAD)  # never one's own
    assert "approval in production by U0LEAD" in rules.summary()
    from igor_cli.errors import UsageProblem

    with pytest.raises(UsageProblem, match="not Slack user IDs"):
        rules_from_config({"slack": {"approve": ["production"], "approvers": ["lead"]}})


def test_cancel_needs_no_approval(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure('[slack]\napprove = ["production"]\n', monkeypatch)
    bot.start()
    bot.mention("cancel -s blog", user=ALICE)
    assert "nothing to cancel" in bot.replies(1)[0].params["text"]
