"""Issue 21, "What is approved is what runs": what a question shows is what runs; the glass
of a freeze is recorded when a change is made and told where the team sees it; a decided
question keeps its decision; a button's value has one spelling; an empty freeze is a
config error; only the store says which deployments are igor's; freezes at the changes
of daylight saving time."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from igor_cli.cloud66.client import Cloud66Client
from igor_cli.config import Environment
from igor_cli.core.resolve import find_stack
from igor_cli.sandbox import Simulator
from igor_cli.state import open_store
from tests.conftest import Igor, RunningBot, next_ts, wait_until
from tests.fakes.clock import FakeClock
from tests.fakes.slack import Call, FakeSlack
from tests.test_guard_resolved import _click, _value

ALICE, LEAD = "U0ALICE", "U0LEAD"
KEY = "a-key-shared-by-every-replica-of-igor"
CONFIRM = '[slack]\nconfirm = ["production"]\n'
FROZEN = """
[[freeze]]
environments = ["production"]
from = 2026-11-01
until = 2026-12-31
message = "Year end"
break_glass = ["U0ALICE", "U0LEAD"]
"""


def configure(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    Environment().config_path().write_text(text)
    monkeypatch.setenv("IGOR_SIGNING_KEY", KEY)


def posts(sim: Simulator) -> int:
    return sim.count("POST", "/deployments")


def records() -> list[dict[str, object]]:
    store = open_store(Environment().state_url())
    try:
        return [json.loads(v) for v in store.items("audit:").values()]
    finally:
        store.close()


def questions(slack: FakeSlack) -> list[Call]:
    asked = slack.calls_to("chat.postMessage")
    return [c for c in asked if any(b["type"] == "actions" for b in c.params.get("blocks", []))]


# -- item 9: what the question shows ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("deploy", "-s", "blog", "--ref", "main\u200b"), "--ref holds U+200B ZERO WIDTH SPACE"),
        (("deploy", "bl\u202eog"), "The stack name holds U+202E RIGHT-TO-LEFT OVERRIDE"),
        (("lock", "-s", "blog", "--reason", "ok\u2066x"), "--reason holds U+2066"),
        (("deploy", "-s", "blog", "--ref", "main\u00a0"), "U+00A0 NO-BREAK SPACE"),
    ],
)
def test_invisible_and_bidirectional_characters_are_refused(
    sim: Simulator, igor: Igor, args: tuple[str, ...], named: str
) -> None:
    ran = igor(*args)
    assert ran.exit_code == 2
    assert named in ran.stderr and "nothing was done" in ran.stderr
    assert posts(sim) == 0 and igor("locks", "--json").stdout.count('"stack"') == 0


def test_chat_refuses_them_before_any_question(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(CONFIRM, monkeypatch)
    bot.start()
    bot.mention("deploy -s blog --ref main\u200b")
    reply = bot.replies(1)[0].params
    assert "U+200B ZERO WIDTH SPACE" in reply["text"]
    assert questions(slack) == [] and posts(sim) == 0


def test_a_question_writes_what_is_not_ascii_as_codes_and_says_it_breaks_the_glass(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(CONFIRM + FROZEN, monkeypatch)
    bot.start()
    bot.mention("deploy -s blog --ref m\u0430in --break-glass --reason 'payments down'")
    asked = bot.replies(1)[0].params
    assert "at ref `m\\u0430in`" in asked["text"]  # a Cyrillic a, written as its code
    assert "m\u0430in" not in asked["text"]
    assert "Characters outside ASCII are written as their codes" in asked["text"]
    assert "This breaks the glass of a freeze" in asked["text"] and "Year end" in asked["text"]
    assert "The reason given: payments down." in asked["text"]
    assert posts(sim) == 0


# -- item 10: the broken glass, recorded when the change is made, and told -----------------


def test_the_glass_is_recorded_when_the_change_is_made_not_when_it_is_asked(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(CONFIRM + FROZEN, monkeypatch)
    bot.start()
    for number in range(1, 4):  # asked three times, declined
        bot.mention("deploy -s blog --break-glass --reason 'payments down'")
        asked = bot.replies(number)[-1]
        _click(slack, _value(asked), asked, action="igor_decline")
    assert wait_until(lambda: len(slack.calls_to("response_url")) == 3)
    assert records() == [] and posts(sim) == 0
    bot.mention("deploy -s blog --break-glass --reason 'payments down'")
    asked = bot.replies(4)[-1]
    _click(slack, _value(asked), asked)
    assert wait_until(lambda: posts(sim) == 1)
    assert wait_until(lambda: len(records()) == 1)
    record = records()[0]
    assert record["event"] == "break-glass" and record["reason"] == "payments down"


def test_a_glass_broken_in_a_direct_message_is_told_in_the_notify_channel(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure('[slack]\nnotify = "C0OPS"\n' + FROZEN, monkeypatch)
    slack.join("C0OPS")
    bot.start()
    ts = next_ts()
    slack.push_event({"type": "message", "channel_type": "im", "user": LEAD,
                      "channel": "D0LEAD", "ts": ts,
                      "text": "deploy -s blog --break-glass --reason 'payments down'"})  # fmt: skip
    assert wait_until(lambda: any(c.params["channel"] == "C0OPS" for c in bot.replies(1)))
    told = next(c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "C0OPS")
    assert "<@U0LEAD> broke the glass" in told.params["text"]
    assert "payments down" in told.params["text"] and "Year end" in told.params["text"]
    in_dm = [c for c in slack.calls_to("chat.postMessage") if c.params["channel"] == "D0LEAD"]
    assert all("broke the glass" not in c.params["text"] for c in in_dm)

    # A slash command from a channel igor is not in: the notify channel hears of it too.
    slack.push_slash_command(
        "deploy -s blog --break-glass --reason again", user_id=LEAD, channel_id="C0ELSEWHERE"
    )
    assert wait_until(lambda: len([c for c in slack.calls_to("chat.postMessage")
                                   if c.params["channel"] == "C0OPS"]) == 2)  # fmt: skip


# -- item 11: a decided question keeps its decision ------------------------------------------


def test_a_late_click_does_not_overwrite_a_decision(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    configure(CONFIRM, monkeypatch)
    bot.start()
    bot.mention("deploy -s blog")
    asked = bot.replies(1)[0]
    _click(slack, _value(asked), asked)
    assert wait_until(lambda: posts(sim) == 1)
    assert "Confirmed by" in slack.wait_for_calls("response_url", 1)[0].params["text"]
    clock.advance(600)  # long after the question's 60 s
    _click(slack, _value(asked), asked)
    assert wait_until(lambda: slack.calls_to("chat.postEphemeral"))
    assert "already answered" in slack.calls_to("chat.postEphemeral")[0].params["text"]
    time.sleep(0.3)
    replaced = [str(c.params.get("text")) for c in slack.calls_to("response_url")]
    replaced += [str(c.params.get("text")) for c in slack.calls_to("chat.update")]
    assert not any("nothing was done" in text for text in replaced), replaced
    assert posts(sim) == 1


# -- item 12: one spelling of a signed value --------------------------------------------------


@pytest.mark.parametrize("alter", ["padding", "alphabet"])
def test_another_spelling_of_a_used_button_is_refused(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch, alter: str,
) -> None:  # fmt: skip
    configure(CONFIRM + "confirm_seconds = 900\n", monkeypatch)
    bot.start()
    bot.mention("deploy -s blog")
    asked = bot.replies(1)[0]
    value = _value(asked)
    _click(slack, value, asked)
    assert wait_until(lambda: posts(sim) == 1)
    clock.advance(120)  # that deployment is over; the button has 13 minutes left
    body, mac = value.split(".")
    if alter == "padding":
        spelled = f"{body}==.{mac}=="
    else:  # the standard alphabet's + and / for the URL-safe - and _
        spelled = f"{body}.{mac}".translate(str.maketrans("-_", "+/"))
        if spelled == value:
            spelled = f"{body}=.{mac}"
    assert spelled != value
    _click(slack, spelled, asked)
    assert wait_until(lambda: slack.calls_to("chat.postEphemeral"))
    assert "not one igor made" in slack.calls_to("chat.postEphemeral")[0].params["text"]
    time.sleep(0.3)
    assert posts(sim) == 1


# -- item 13: a freeze of no stacks -------------------------------------------------------------


def test_a_freeze_of_an_empty_list_of_stacks_is_a_config_error(sim: Simulator, igor: Igor) -> None:
    Environment().config_path().write_text(
        '# the year-end freeze\n[[freeze]]\nenvironments = ["production"]\nstacks = []\n'
        "from = 2026-11-01\nuntil = 2026-12-31\n"
    )
    for args in (("locks",), ("deploy", "-s", "blog"), ("doctor",)):
        ran = igor(*args)
        assert ran.exit_code == 2, (args, ran.output)
        assert "'stacks' in [[freeze]] at line 4 is empty" in ran.output
        assert "Frozen now" not in ran.output
    assert posts(sim) == 0


# -- item 14: only the store says a deployment is igor's --------------------------------------


@pytest.fixture
def watching(bot: RunningBot, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> RunningBot:
    """A bot that looks for deployments outside igor often, telling C0OPS; blog locked."""
    monkeypatch.setattr("igor_cli.chat.slack.bypass_watch.BYPASS_CHECK_SECONDS", 0.2)
    Environment().config_path().write_text('[slack]\nnotify = "C0OPS"\n')
    slack.join("C0OPS")
    bot.start()
    bot.mention("lock -s blog --reason migration", user=ALICE)
    bot.replies(1)
    return bot


def told_in_ops(slack: FakeSlack) -> list[Call]:
    said = slack.calls_to("chat.postMessage")
    return [c for c in said if c.params["channel"] == "C0OPS" and "outside" in c.params["text"]]


def test_a_deployment_that_only_claims_to_be_igors_is_reported(
    watching: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    with Cloud66Client(sim.token, sim.url) as client:  # someone with an API token
        blog = find_stack(client, "blog", None)
        client.deploy(blog.uid, user_reference="igor:slack:U0ALICE:C0DEPLOY-1.0")

    assert wait_until(lambda: told_in_ops(slack))
    assert "blog (production)" in told_in_ops(slack)[0].params["text"]


def test_igors_own_deploy_is_still_igors(
    watching: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    watching.mention("deploy -s blog", user=ALICE)  # the holder, through igor
    watching.replies(2)
    time.sleep(1.0)  # five looks
    assert told_in_ops(slack) == [] and posts(sim) == 1


# -- item 15: freezes at the changes of daylight saving time -----------------------------------

LONDON = """
[[freeze]]
environments = ["production"]
from = "{start}"
until = "{end}"
timezone = "Europe/London"
"""


@pytest.mark.parametrize(
    ("start", "end", "now", "frozen"),
    [
        # 2027-03-28: London's clocks go from 01:00 GMT to 02:00 BST; 01:30 never shows.
        # A freeze from Sun 01:30 begins when they jump (01:00 UTC), not at 01:30 UTC.
        ("Sun 01:30", "Sun 04:00", datetime(2027, 3, 28, 1, 15, tzinfo=UTC), True),
        ("Sun 01:30", "Sun 04:00", datetime(2027, 3, 28, 0, 55, tzinfo=UTC), False),
        # Until a time never shown: it ends when the clocks jump past it.
        ("Sat 22:00", "Sun 01:30", datetime(2027, 3, 28, 0, 59, tzinfo=UTC), True),
        ("Sat 22:00", "Sun 01:30", datetime(2027, 3, 28, 1, 0, 1, tzinfo=UTC), False),
        # 2027-10-31: from 02:00 BST back to 01:00 GMT; 01:30 shows twice. A freeze until
        # Sun 01:30 lasts until its second showing (01:30 UTC), not its first (00:30 UTC).
        ("Sat 22:00", "Sun 01:30", datetime(2027, 10, 31, 1, 10, tzinfo=UTC), True),
        ("Sat 22:00", "Sun 01:30", datetime(2027, 10, 31, 1, 31, tzinfo=UTC), False),
        # From Sun 01:30: from its first showing (00:30 UTC).
        ("Sun 01:30", "Sun 04:00", datetime(2027, 10, 31, 0, 40, tzinfo=UTC), True),
    ],
)
def test_a_weekly_freeze_over_a_change_of_clocks(
    sim: Simulator, igor: Igor, clock: FakeClock,
    start: str, end: str, now: datetime, frozen: bool,
) -> None:  # fmt: skip
    Environment().config_path().write_text(LONDON.format(start=start, end=end))
    clock.now = now.timestamp()
    ran = igor("deploy", "-s", "blog", "--dry-run")
    assert (ran.exit_code == 1 and "is frozen until" in ran.stderr) is frozen, ran.output
