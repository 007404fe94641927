"""Guard decisions rest on the stack a command resolves to, whatever the message says.

Every change command goes through every trigger (mention, direct message, channel
message, slash command, then the button), with and without `-e`, under a
`confirm` config alone and under one with an allow rule that does not name
environments. Wherever the resolved environment needs a confirmation, one is
asked and nothing reaches Cloud 66 before the click.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from igor_cli.chat.bridge import Bridge
from igor_cli.chat.guard import PendingCommand, Signer, rules_from_config
from igor_cli.config import Environment
from igor_cli.identity import Origin
from igor_cli.sandbox import Simulator
from tests.conftest import Igor, RunningBot, next_ts, rendered
from tests.fakes.clock import FakeClock
from tests.fakes.slack import Call, FakeSlack

ALICE = "U0ALICE"
KEY = "a-key-shared-by-every-replica-of-igor"

# `Production` in mixed case: confirm compares names as allow does, in any case.
CONFIRM_ONLY = '[slack]\nconfirm = ["Production"]\n'
CONFIRM_AND_OPEN_RULE = """
[slack]
confirm = ["production"]

[[slack.allow]]
commands = ["deploy", "cancel", "list", "help", "version"]
"""

# blog and legacy exist only in production: leaving out -e must not skip the question.
COMMANDS = [
    "deploy -s blog",
    "deploy -s blog -e production",
    "cancel -s legacy",
    "cancel -s legacy -e PRODUCTION",
]


def _configure(config: str, monkeypatch: pytest.MonkeyPatch) -> None:
    Environment().config_path().write_text(config)
    monkeypatch.setenv("IGOR_SIGNING_KEY", KEY)


def _trigger(slack: FakeSlack, kind: str, text: str) -> None:
    ts = next_ts()
    if kind == "mention":
        slack.push_event({"type": "app_mention", "user": ALICE, "channel": "C0DEPLOY", "ts": ts,
                          "text": f"<@{slack.bot_user_id}> {text}"})  # fmt: skip
    elif kind == "dm":
        slack.push_event({"type": "message", "channel_type": "im", "user": ALICE,
                          "channel": "D0ALICE", "ts": ts, "text": text})  # fmt: skip
    elif kind == "channel message":
        slack.push_event({"type": "message", "channel_type": "channel", "user": ALICE,
                          "channel": "C0DEPLOY", "ts": ts, "text": f"igor {text}"})  # fmt: skip
    else:
        slack.push_slash_command(text, user_id=ALICE, channel_id="C0DEPLOY")


def _questions(slack: FakeSlack) -> list[Call]:
    said = slack.calls_to("chat.postMessage") + slack.calls_to("response_url")
    return [c for c in said if any(b.get("type") == "actions" for b in c.params.get("blocks", []))]


def _value(question: Call) -> str:
    actions = next(b for b in question.params["blocks"] if b["type"] == "actions")
    return str(actions["elements"][0]["value"])


@pytest.mark.parametrize("config", [CONFIRM_ONLY, CONFIRM_AND_OPEN_RULE])
def test_every_change_through_every_trigger_asks_on_the_resolved_environment(
    config: str,
    bot: RunningBot,
    slack: FakeSlack,
    sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _configure(config, monkeypatch)
    sim.start_foreign_deployment("legacy", "production")  # something to cancel
    bot.start()
    triggers = ("mention", "dm", "channel message", "slash command")
    attempts = [(kind, text) for kind in triggers for text in COMMANDS]
    for kind, text in attempts:
        _trigger(slack, kind, text)
    deadline = time.monotonic() + 15
    while len(_questions(slack)) < len(attempts) and time.monotonic() < deadline:
        time.sleep(0.05)
    questions = _questions(slack)
    assert len(questions) == len(attempts), [c.params.get("text") for c in slack.calls]
    assert sim.count("POST", "/deployments") == 0
    assert sim.count("DELETE") == 0
    for question in questions:  # each names the resolved stack, even without -e
        text = json.dumps(question.params["blocks"])
        assert "production" in text, text

    # The button: each deploy question confirmed once deploys once; cancels cancel.
    deploys = [q for q in questions if "deploy *blog*" in json.dumps(q.params["blocks"])]
    assert len(deploys) == 8
    _click(slack, _value(deploys[0]), deploys[0])
    deadline = time.monotonic() + 10
    while sim.count("POST", "/deployments") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert sim.count("POST", "/deployments") == 1


def _click(slack: FakeSlack, value: str, question: Call, action: str = "igor_confirm") -> str:
    ts = question.response["ts"] if isinstance(question.response, dict) else next_ts()
    channel = question.params.get("channel", "C0DEPLOY")
    payload = {
        "type": "block_actions",
        "user": {"id": ALICE},
        "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel, "message_ts": ts},
        "response_url": slack.response_url(),
        "actions": [{"action_id": action, "value": value, "type": "button"}],
    }
    envelope = slack.push_interactive(payload)
    slack.wait_ack(envelope)
    return envelope


def test_environment_rules_apply_to_the_resolved_stack(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bob may change staging only: blog (production only) is refused without -e too.
    _configure('[[slack.allow]]\ncommands = ["deploy"]\nenvironments = ["staging"]\n', monkeypatch)
    bot.start()
    bot.mention("deploy -s blog", user="U0BOB")
    bot.mention("deploy -s shop -e staging", user="U0BOB")
    refusal = slack.wait_for_calls("chat.postEphemeral", 1)[0].params["text"]
    assert "No rule allows <@U0BOB> to run `deploy` in production" in refusal
    started = bot.replies(1)[0].params["text"]
    assert "Deploy started: shop (staging)." in started
    time.sleep(0.3)
    posted = [r for r in sim.requests if r.method == "POST"]
    assert len(posted) == 1
    assert posted[0].path.endswith(f"/stacks/{sim.stack('shop', 'staging')['uid']}/deployments")


def test_a_typed_environment_that_no_rule_allows_is_refused_without_cloud66(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure('[[slack.allow]]\ncommands = ["deploy"]\nenvironments = ["staging"]\n', monkeypatch)
    bot.start()
    bot.mention("deploy -s shop -e production", user="U0BOB")
    slack.wait_for_calls("chat.postEphemeral", 1)
    assert sim.requests == []


def test_a_declined_question_cannot_be_confirmed_afterwards(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(CONFIRM_ONLY, monkeypatch)
    bot.start()
    bot.mention("deploy -s blog")
    question = bot.replies(1)[0]
    value = _value(question)
    _click(slack, value, question, action="igor_decline")
    slack.wait_for_calls("response_url", 1)
    # A Slack retry, a second client, or a replace that failed: the same value again.
    _click(slack, value, question)
    said = slack.wait_for_calls("chat.postEphemeral", 1)[0].params["text"]
    assert "already answered" in said
    time.sleep(0.3)
    assert sim.count("POST", "/deployments") == 0


def test_a_question_answered_elsewhere_is_not_acted_on(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another replica declined: the question in Slack no longer shows its buttons.
    _configure(CONFIRM_ONLY, monkeypatch)
    bot.start()
    bot.mention("deploy -s blog")
    question = bot.replies(1)[0]
    key = (question.params["channel"], question.response["ts"])  # type: ignore[index]
    slack.messages[key]["blocks"] = [{"type": "section", "text": {"type": "mrkdwn",
                                                                  "text": "Declined"}}]  # fmt: skip
    _click(slack, _value(question), question)
    assert "already answered" in slack.wait_for_calls("chat.postEphemeral", 1)[0].params["text"]
    time.sleep(0.3)
    assert sim.count("POST", "/deployments") == 0


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_a_replayed_confirmation_finds_its_deployment_past_the_first_page(
    order: str, sim: Simulator, clock: FakeClock
) -> None:
    sim.order = order
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    bridge = Bridge(env, rules=rules_from_config({"slack": {"confirm": ["production"]}}),
                    signer=Signer(b"k" * 32))  # fmt: skip
    blog = sim.stack("blog", "production")
    pending = PendingCommand(["deploy", "-s", "blog"], ALICE, "C1", "1.1", "C1-1.1",
                             expires=clock.now + 60, stack_uid=blog["uid"])  # fmt: skip
    first = bridge.confirmed(pending)
    assert "Deploy started" in rendered(first).text
    # 31 newer actions on the stack: the first deployment's action is on page 2 now.
    for number in range(31):
        origin = Origin("slack", "U0BOB", f"other-{number}")
        bridge.perform("deploy", _deploy_request("blog"), origin)
    posts = sim.count("POST", "/deployments")
    again = bridge.confirmed(pending)
    assert "already deploying" in rendered(again).text
    assert sim.count("POST", "/deployments") == posts
    filtered = [
        r for r in sim.requests if r.query.get("user_reference") == "igor:slack:U0ALICE:C1-1.1"
    ]
    assert filtered, "the retry check uses Cloud 66's user_reference filter"


def _deploy_request(stack: str) -> Any:
    from igor_cli.features.deploy import DeployRequest

    return DeployRequest(stack=stack, environment="production")


def test_a_confirmed_command_must_still_mean_the_same_stack(
    sim: Simulator, clock: FakeClock
) -> None:
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    bridge = Bridge(env, rules=rules_from_config({"slack": {"confirm": ["production"]}}),
                    signer=Signer(b"k" * 32))  # fmt: skip
    pending = PendingCommand(["deploy", "-s", "blog"], ALICE, "C1", "1.1", "C1-2.2",
                             expires=clock.now + 60, stack_uid="a-different-uid")  # fmt: skip
    reply = bridge.confirmed(pending)
    assert reply.status == "refused"
    assert "no longer means the stack you confirmed" in rendered(reply).text
    assert sim.count("POST", "/deployments") == 0


def test_doctor_flags_confirm_names_no_stack_has(sim: Simulator, igor: Igor) -> None:
    Environment().config_path().write_text('[slack]\nconfirm = ["Production", "prod"]\n')
    ran = igor("doctor")
    assert "confirm environments: prod match no environment of your stacks" in ran.stdout
    assert ran.exit_code == 2


def test_dry_runs_and_reads_are_not_confirmed(
    sim: Simulator, clock: FakeClock, tmp_path: Path
) -> None:
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    bridge = Bridge(env, rules=rules_from_config({"slack": {"confirm": ["production"]}}),
                    signer=Signer(b"k" * 32))  # fmt: skip
    for text in ("deploy -s blog --dry-run", "list -e production", "version"):
        reply = bridge.handle(text, Origin("slack", ALICE, f"r-{text}"), "C1")
        assert reply.status == "ok", (text, rendered(reply).text)
    assert sim.count("POST", "/deployments") == 0
