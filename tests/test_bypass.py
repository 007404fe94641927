"""Deployments started outside igor while a stack is locked or frozen are reported once:
in the thread the lock was taken in (a direct message for a lock that recorded no place)
and in the `[slack] notify` channel, with a Cancel button whose click is checked against
the rules when it comes, cancels exactly that deployment, and works once."""

from __future__ import annotations

import json
import logging
import time

import pytest

from igor_cli.chat.guard import rules_from_config
from igor_cli.config import Environment
from igor_cli.errors import UsageProblem
from igor_cli.sandbox import Simulator
from tests.conftest import Igor, RunningBot, wait_until
from tests.fakes.clock import FakeClock
from tests.fakes.slack import Call, FakeSlack


@pytest.fixture(autouse=True)
def often(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("igor_cli.chat.slack.bypass_watch.BYPASS_CHECK_SECONDS", 0.2)


def reports(slack: FakeSlack, channel: str) -> list[Call]:
    return [
        c
        for c in slack.calls_to("chat.postMessage")
        if c.params.get("channel") == channel
        and "outside igor" in str(c.params["text"])
        and not c.error  # delivered
    ]


def told(slack: FakeSlack, channel: str) -> list[str]:
    return [str(c.params["text"]) for c in reports(slack, channel)]


def test_a_dashboard_deploy_of_a_locked_stack_is_reported_once(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    Environment().config_path().write_text('[slack]\nnotify = "C0OPS"\n')
    slack.join("C0OPS")  # the notify channel: the bot is a member
    bot.start()
    locked_in = bot.mention("lock -s blog --reason 'migration'", user="U0ALICE")
    bot.replies(1)
    deployment = sim.start_foreign_deployment("blog", "production", triggered_by="dave@corp")
    assert wait_until(lambda: told(slack, "C0DEPLOY") and told(slack, "C0OPS"))
    in_thread = reports(slack, "C0DEPLOY")[0].params
    assert in_thread["thread_ts"] == locked_in  # the thread the lock was taken in
    said = in_thread["text"]
    assert f"Deployment {deployment} of blog (production)" in said
    # "web": the word of the docs' sample, which the simulator now uses.
    assert "dave@corp via web" in said and "migration" in said and "<@U0ALICE>" in said
    # No signing key: no button, but the command that cancels exactly this deployment.
    assert f"cancel -s blog -e production --id {deployment}" in said
    assert not any(b["type"] == "actions" for b in in_thread["blocks"])
    assert reports(slack, "C0OPS")[0].params.get("thread_ts") is None
    time.sleep(0.8)  # several more looks: reported once
    assert len(told(slack, "C0DEPLOY")) == 1 and len(told(slack, "C0OPS")) == 1
    assert told(slack, "U0ALICE") == []  # no direct message besides


def test_igors_own_deploys_and_unheld_stacks_are_not_reported(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    Environment().config_path().write_text('[slack]\nnotify = "C0OPS"\n')
    slack.join("C0OPS")  # the notify channel: the bot is a member
    bot.start()
    bot.mention("lock -s blog", user="U0ALICE")
    bot.mention("deploy -s blog", user="U0ALICE")  # the holder, through igor
    sim.start_foreign_deployment("api", "production")  # not locked
    bot.replies(2)
    time.sleep(1.0)
    assert told(slack, "C0OPS") == [] and told(slack, "U0ALICE") == []


def test_nothing_is_asked_of_cloud66_when_nothing_is_held(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    slack.join("C0OPS")  # the notify channel: the bot is a member
    bot.start()
    sim.reset_requests()
    time.sleep(1.0)  # five looks
    assert sim.requests == []


def test_notify_names_one_channel_by_id() -> None:
    assert rules_from_config({"slack": {"notify": "C0OPS"}}).notify == "C0OPS"
    with pytest.raises(UsageProblem, match="not Slack channel IDs"):
        rules_from_config({"slack": {"notify": "#ops"}})


def test_a_deploy_during_a_freeze_is_reported_to_the_channel(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    Environment().config_path().write_text(
        '[slack]\nnotify = "C0OPS"\n\n[[freeze]]\nenvironments = ["production"]\n'
        'from = 2026-11-01\nuntil = 2026-12-31\nmessage = "Year end"\n'
    )
    slack.join("C0OPS")  # the notify channel: the bot is a member
    bot.start()
    sim.start_foreign_deployment("blog", "production", triggered_by="erin@corp")
    assert wait_until(lambda: told(slack, "C0OPS"))
    said = told(slack, "C0OPS")[0]
    assert "blog (production)" in said and "erin@corp" in said and "Year end" in said


# -- the Cancel button ------------------------------------------------------------------

ALICE, BOB, LEAD = "U0ALICE", "U0BOB", "U0LEAD"
CANCELLERS = f"""
[slack]
notify = "C0OPS"

[[slack.allow]]
commands = ["lock", "unlock", "locks"]

[[slack.allow]]
commands = ["cancel"]
environments = ["production"]
users = ["{LEAD}"]
"""


def press(slack: FakeSlack, report: Call, user: str, *, action: str = "igor_cancel_offer") -> str:
    """A click on a report's button, as Slack sends it (with the message as shown)."""
    button = next(b for b in report.params["blocks"] if b["type"] == "actions")["elements"][0]
    channel = str(report.params["channel"])
    shown = {"ts": report.response["ts"], "text": report.params["text"],
             "blocks": report.params["blocks"]}  # fmt: skip
    return slack.push_interactive({
        "type": "block_actions", "user": {"id": user}, "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel, "message_ts": shown["ts"],
                      "thread_ts": report.params.get("thread_ts")},
        "message": shown, "response_url": slack.response_url(),
        "actions": [{"action_id": action, "value": button["value"], "type": "button"}],
    })  # fmt: skip


def _ephemerals(slack: FakeSlack, count: int) -> list[str]:
    return [str(c.params["text"]) for c in slack.wait_for_calls("chat.postEphemeral", count)]


def test_the_cancel_button_cancels_that_deployment_once_for_those_allowed(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    monkeypatch.setenv("IGOR_SIGNING_KEY", "a-key-shared-by-every-replica-of-igor")
    Environment().config_path().write_text(CANCELLERS)
    slack.join("C0OPS")  # the notify channel: the bot is a member
    bot.start()
    locked_in = bot.mention("lock -s blog --reason 'migration'", user=ALICE)
    bot.replies(1)
    deployment = sim.start_foreign_deployment("blog", "production", triggered_by="dave@corp")
    assert wait_until(lambda: reports(slack, "C0DEPLOY") and reports(slack, "C0OPS"))
    in_thread, in_ops = reports(slack, "C0DEPLOY")[0], reports(slack, "C0OPS")[0]
    assert in_thread.params["thread_ts"] == locked_in
    buttons = [b for b in in_thread.params["blocks"] if b["type"] == "actions"]
    assert buttons[0]["elements"][0]["text"]["text"] == f"Cancel deployment {deployment}"
    sim.reset_requests()

    slack.wait_ack(press(slack, in_thread, BOB))  # no rule lets Bob cancel
    refused = _ephemerals(slack, 1)[0]
    assert "No rule allows <@U0BOB> to run `cancel` in production" in refused
    time.sleep(0.3)
    assert sim.count("DELETE") == 0

    slack.wait_ack(press(slack, in_thread, LEAD))
    answered = slack.wait_for_calls("chat.postMessage", 4)[3].params
    assert answered["channel"] == "C0DEPLOY" and answered["thread_ts"] == locked_in
    assert f"Cancelling deployment {deployment}" in answered["text"], answered["text"]
    assert sim.count("DELETE", f"/deployments/{deployment}") == 1
    assert sim.count("DELETE") == 1
    replaced = slack.wait_for_calls("response_url", 1)[0].params
    assert "<@U0LEAD> pressed Cancel at" in json.dumps(replaced["blocks"])
    assert not any(b["type"] == "actions" for b in replaced["blocks"])
    assert "outside igor" in json.dumps(replaced["blocks"])  # the report itself stays

    # The same click again, and a click on the notify channel's button: nothing more.
    slack.wait_ack(press(slack, in_thread, LEAD))
    slack.wait_ack(press(slack, in_ops, LEAD))
    again = _ephemerals(slack, 3)[1:]
    assert all("already pressed Cancel" in text for text in again), again
    time.sleep(0.3)
    assert sim.count("DELETE") == 1
    assert len(slack.calls_to("chat.postMessage")) == 4


def test_a_cancel_offer_is_not_a_confirmation_nor_the_other_way_round(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_SIGNING_KEY", "a-key-shared-by-every-replica-of-igor")
    Environment().config_path().write_text('[slack]\nnotify = "C0OPS"\n')
    slack.join("C0OPS")  # the notify channel: the bot is a member
    bot.start()
    bot.mention("lock -s blog", user=ALICE)
    bot.replies(1)
    sim.start_foreign_deployment("blog", "production")
    assert wait_until(lambda: reports(slack, "C0OPS"))
    sim.reset_requests()
    slack.wait_ack(press(slack, reports(slack, "C0OPS")[0], ALICE, action="igor_confirm"))
    assert "not one igor made" in _ephemerals(slack, 1)[0]
    time.sleep(0.3)
    assert sim.count("DELETE") == 0 and sim.count("POST") == 0


def test_the_cancel_button_expires(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("IGOR_SIGNING_KEY", "a-key-shared-by-every-replica-of-igor")
    Environment().config_path().write_text('[slack]\nnotify = "C0OPS"\n')
    slack.join("C0OPS")  # the notify channel: the bot is a member
    bot.start()
    bot.mention("lock -s blog --for 3h", user=ALICE)
    bot.replies(1)
    sim.start_foreign_deployment("blog", "production")
    assert wait_until(lambda: reports(slack, "C0OPS"))
    sim.reset_requests()
    clock.advance(3601)
    slack.wait_ack(press(slack, reports(slack, "C0OPS")[0], ALICE))
    assert "has expired; nothing was done" in _ephemerals(slack, 1)[0]
    time.sleep(0.3)
    assert sim.count("DELETE") == 0


def test_a_shell_lock_is_reported_to_the_notify_channel_only(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, igor: Igor
) -> None:
    Environment().config_path().write_text('[slack]\nnotify = "C0OPS"\n')
    assert igor("lock", "-s", "blog").exit_code == 0
    slack.join("C0OPS")  # the notify channel: the bot is a member
    bot.start()
    sim.start_foreign_deployment("blog", "production")
    assert wait_until(lambda: reports(slack, "C0OPS"))
    time.sleep(0.5)
    assert [c.params["channel"] for c in slack.calls_to("chat.postMessage")] == ["C0OPS"]


def test_with_nobody_to_tell_the_log_says_so(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, igor: Igor,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    assert igor("lock", "-s", "blog").exit_code == 0
    caplog.set_level(logging.WARNING, logger="igor.serve")
    slack.join("C0OPS")  # the notify channel: the bot is a member
    bot.start()
    deployment = sim.start_foreign_deployment("blog", "production")
    assert wait_until(lambda: "nobody could be told" in caplog.text), caplog.text
    assert f"deployment {deployment} of blog (production)" in caplog.text
    assert slack.calls_to("chat.postMessage") == []


def test_a_lock_recorded_before_places_were_kept_still_loads() -> None:
    from igor_cli.chat.slack.holders import holder_place
    from igor_cli.state.locks import Lock

    old = (
        '{"stack":{"uid":"s1","name":"blog","environment":"production"},'
        '"holder":{"via":"slack","user":"U0ALICE"},"reason":"","started_at":'
        '"2026-12-01T10:00:00+00:00","expires_at":"2026-12-01T14:00:00+00:00"}'
    )
    lock = Lock.loads(old)
    assert lock is not None and (lock.channel, lock.thread) == ("", "")
    place = holder_place(lock)
    assert place is not None and (place.channel, place.thread) == ("U0ALICE", "")  # the DM
    assert Lock.loads(lock.dumps()) == lock


def test_a_cancel_another_replica_pressed_does_nothing_here(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from igor_cli.state import open_store

    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    monkeypatch.setenv("IGOR_SIGNING_KEY", "a-key-shared-by-every-replica-of-igor")
    Environment().config_path().write_text('[slack]\nnotify = "C0OPS"\n')
    slack.join("C0OPS")
    bot.start()
    bot.mention("lock -s blog", user=ALICE)
    bot.replies(1)
    deployment = sim.start_foreign_deployment("blog", "production")
    assert wait_until(lambda: reports(slack, "C0OPS"))
    uid = next(r.path for r in sim.requests if r.path.endswith("/deployments")).split("/")[-2]
    # Another replica took the click (and died before replacing the report): only the
    # store knows.
    other = open_store(state_url)
    try:
        assert other.claim(f"used:cancel:bypass:{uid}:{deployment}", "other-replica", 60)
    finally:
        other.close()
    sim.reset_requests()
    slack.wait_ack(press(slack, reports(slack, "C0OPS")[0], BOB))
    assert "already pressed Cancel" in _ephemerals(slack, 1)[0]
    time.sleep(0.3)
    assert sim.count("DELETE") == 0
    assert slack.calls_to("response_url") == []  # the report is left as it is


def test_the_cancel_command_shown_reads_back_as_the_words_it_names() -> None:
    # A stack name with a space: the command in the report must parse back whole.
    from igor_cli.chat.bypass import Bypass
    from igor_cli.chat.text import normalise, split_words
    from igor_cli.cloud66.models import Deployment, Stack, StackHealth, StackStatus
    from igor_cli.render.slack import render_bypass

    stack = Stack("u9", "Payments Portal", "production", StackStatus.DEPLOYING,
                  StackHealth.HEALTHY, True)  # fmt: skip
    deployment = Deployment("77", "dave@corp", "Web", None, None, "", True)
    bypass = Bypass(stack, deployment)
    text = render_bypass(bypass, "").text
    shown = text.split("Cancel it with `", 1)[1].split("`", 1)[0]
    assert split_words(normalise(shown)) == bypass.cancel_words()
    assert bypass.cancel_words()[:3] == ["cancel", "-s", "Payments Portal"]
