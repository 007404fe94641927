"""Deployments started outside igor while a stack is locked or frozen are reported once:
to the lock holder (a direct message) and to the `[slack] notify` channel."""

from __future__ import annotations

import time

import pytest

from igor_cli.chat.guard import rules_from_config
from igor_cli.config import Environment
from igor_cli.errors import UsageProblem
from igor_cli.sandbox import Simulator
from tests.conftest import RunningBot
from tests.fakes.slack import FakeSlack


@pytest.fixture(autouse=True)
def often(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("igor_cli.chat.slack.bot.BYPASS_CHECK_SECONDS", 0.2)


def told(slack: FakeSlack, channel: str) -> list[str]:
    return [
        str(c.params["text"])
        for c in slack.calls_to("chat.postMessage")
        if c.params.get("channel") == channel and "outside igor" in str(c.params["text"])
    ]


def _wait(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_a_dashboard_deploy_of_a_locked_stack_is_reported_once(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    Environment().config_path().write_text('[slack]\nnotify = "C0OPS"\n')
    bot.start()
    bot.mention("lock -s blog --reason 'migration'", user="U0ALICE")
    bot.replies(1)
    deployment = sim.start_foreign_deployment("blog", "production", triggered_by="dave@corp")
    assert _wait(lambda: told(slack, "U0ALICE") and told(slack, "C0OPS"))
    said = told(slack, "U0ALICE")[0]
    assert f"Deployment {deployment} of blog (production)" in said
    assert "dave@corp via Web" in said and "migration" in said
    assert "cancel -s blog -e production" in said
    time.sleep(0.8)  # several more looks: reported once
    assert len(told(slack, "U0ALICE")) == 1 and len(told(slack, "C0OPS")) == 1


def test_igors_own_deploys_and_unheld_stacks_are_not_reported(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    Environment().config_path().write_text('[slack]\nnotify = "C0OPS"\n')
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
    bot.start()
    sim.start_foreign_deployment("blog", "production", triggered_by="erin@corp")
    assert _wait(lambda: told(slack, "C0OPS"))
    said = told(slack, "C0OPS")[0]
    assert "blog (production)" in said and "erin@corp" in said and "Year end" in said
