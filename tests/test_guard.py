"""Guard rails: authorisation rules, signed confirmations, the manifest, the audit file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from igor_cli.chat.guard import BadConfirmation, PendingCommand, Rules, Signer, rules_from_config
from igor_cli.chat.slack.manifest import EVENT_SCOPES, WEB_API_SCOPES, bot_scopes, manifest
from igor_cli.config import Environment
from igor_cli.errors import UsageProblem
from igor_cli.sandbox import Simulator
from tests.conftest import Igor, RunningBot
from tests.fakes.clock import FakeClock
from tests.fakes.slack import Call, FakeSlack

ALICE, BOB = "U0ALICE", "U0BOB"
DEPLOYS, GENERAL = "C0DEPLOY", "C0GENERAL"

RULES = f"""
[slack]
confirm = ["production"]

[[slack.allow]]
commands = ["list", "help", "version"]

[[slack.allow]]
commands = ["deploy", "cancel"]
environments = ["production"]
channels = ["{DEPLOYS}"]
users = ["{ALICE}"]

[[slack.allow]]
commands = ["deploy", "cancel"]
environments = ["staging"]
"""


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> Path:
    path = Environment().config_path()
    path.write_text(RULES)
    monkeypatch.setenv("IGOR_SIGNING_KEY", "a-key-shared-by-every-replica-of-igor")
    return path


def ephemerals(slack: FakeSlack, count: int = 1) -> list[str]:
    return [c.params["text"] for c in slack.wait_for_calls("chat.postEphemeral", count)]


def question(slack: FakeSlack) -> Call:
    """The newest message with confirmation buttons."""
    asked = [
        c for c in slack.calls_to("chat.postMessage")
        if any(b["type"] == "actions" for b in c.params.get("blocks", []))
    ]  # fmt: skip
    assert asked, "no question was asked"
    return asked[-1]


def click(
    slack: FakeSlack, user: str, value: str, action: str = "igor_confirm", ts: str = ""
) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": DEPLOYS},
        "container": {"type": "message", "channel_id": DEPLOYS,
                      "message_ts": ts or question(slack).response["ts"]},  # type: ignore[index]
        "response_url": slack.response_url(),
        "actions": [{"action_id": action, "value": value, "type": "button"}],
    }  # fmt: skip
    return slack.push_interactive(payload)


def button_value(slack: FakeSlack) -> str:
    actions = next(b for b in question(slack).params["blocks"] if b["type"] == "actions")
    return str(actions["elements"][0]["value"])


# -- rules ----------------------------------------------------------------------


def test_rules_match_on_ids_and_fail_closed() -> None:
    rules = rules_from_config({"slack": {"allow": [{"commands": ["list"], "users": [ALICE]}]}})
    assert rules.check("list", None, GENERAL, ALICE) is None
    refusal = rules.check("list", None, GENERAL, BOB)
    assert refusal is not None
    assert "rule 1 (commands list; users U0ALICE)" in refusal.sentence()
    assert rules.check("deploy", "staging", GENERAL, ALICE) is not None
    assert Rules().check("deploy", "production", GENERAL, BOB) is None  # no rules: allowed


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"slack": {"allow": [{"users": ["alice"]}]}}, "alice are not Slack user IDs"),
        ({"slack": {"allow": [{"channels": ["#deploys"]}]}}, "are not Slack channel IDs"),
        ({"slack": {"allow": [{"command": ["list"]}]}}, "unknown key(s): command"),
        ({"slack": {"allow": [{}]}}, "is empty"),
        ({"slack": {"alow": []}}, "unknown key(s) in [slack]: alow"),
        ({"slack": {"confirm_seconds": 1}}, "confirm_seconds must be a number from 5 to 900"),
    ],
)
def test_malformed_rules_are_refused(config: dict[str, object], message: str) -> None:
    with pytest.raises(UsageProblem) as caught:
        rules_from_config(config, "igor.toml")
    assert message in caught.value.message
    assert caught.value.message.startswith("igor.toml")


def test_a_broken_config_stops_serve_at_start(
    bot: RunningBot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    Environment().config_path().write_text("[slack]\nconfirm = production\n")
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(10)
    assert bot.exit_code == 2
    assert "is not valid TOML" in caplog.text
    assert "line 2" in caplog.text
    assert slack.connections_opened == 0


def test_confirmations_without_a_signing_key_stop_serve(
    bot: RunningBot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    Environment().config_path().write_text('[slack]\nconfirm = ["production"]\n')
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(10)
    assert bot.exit_code == 2
    assert "no signing key" in caplog.text
    assert slack.connections_opened == 0


def test_a_refused_command_gets_an_ephemeral_reply_and_touches_nothing(
    guarded: Path, bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    bot.mention("deploy -s shop -e production", user=BOB, channel=DEPLOYS)
    bot.mention("cancel -s shop -e production", user=ALICE, channel=GENERAL)
    refusals = {
        c.params["user"]: c.params["text"] for c in slack.wait_for_calls("chat.postEphemeral", 2)
    }
    assert set(refusals) == {ALICE, BOB}
    assert "No rule allows <@U0BOB> to run `deploy` in production in <#C0DEPLOY>" in refusals[BOB]
    assert "rule 2 (commands cancel, deploy; environments production" in refusals[BOB]
    assert (
        "No rule allows <@U0ALICE> to run `cancel` in production in <#C0GENERAL>" in refusals[ALICE]
    )
    assert slack.post_message_count() == 0
    assert sim.requests == []  # not even a GET


def test_allowed_commands_run(
    guarded: Path, bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    bot.mention("list", user=BOB, channel=GENERAL)
    bot.mention("deploy -s shop -e staging", user=BOB, channel=GENERAL)
    replies = bot.replies(2)
    texts = " ".join(r.params["text"] for r in replies)
    assert "shop (staging)" in texts
    assert "Deploy started: shop (staging)." in texts
    assert sim.count("POST", "/deployments") == 1


def test_yes_is_not_an_option_in_chat(
    guarded: Path, bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    bot.mention("deploy -s shop -e production --yes", user=ALICE)
    assert "No such option: --yes" in bot.replies(1)[0].params["text"]
    assert sim.count("POST", "/deployments") == 0


# -- confirmations --------------------------------------------------------------


def test_a_click_reads_the_config_file_once_where_it_is_decided(
    guarded: Path, bot: RunningBot, slack: FakeSlack, sim: Simulator,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    # As a typed command does (test_trust_members): once on the thread that reads the
    # click, once on the worker that deploys.
    bot.start()
    bot.mention("deploy -s shop -e production", user=ALICE)
    bot.replies(1)
    reads = request.getfixturevalue("config_reads")  # counted from here
    slack.wait_ack(click(slack, ALICE, button_value(slack)))
    assert "Deploy started: shop (production)." in bot.replies(2)[1].params["text"]
    assert reads.count("igor-intake") == 1
    assert reads.count("igor-cmd") == 1
    assert sim.count("POST", "/deployments") == 1


def test_only_the_requesters_click_deploys(
    guarded: Path, bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    ts = bot.mention("deploy -s shop -e production", user=ALICE)
    question = bot.replies(1)[0].params
    assert question["thread_ts"] == ts
    assert "deploy *shop* to *production*?" in question["blocks"][0]["text"]["text"]
    assert [e["text"]["text"] for e in question["blocks"][1]["elements"]] == ["Deploy", "Cancel"]
    assert sim.count("POST", "/deployments") == 0
    value = button_value(slack)

    slack.wait_ack(click(slack, BOB, value))
    assert "Only <@U0ALICE> can confirm this." in ephemerals(slack)[0]
    assert sim.count("POST", "/deployments") == 0

    slack.wait_ack(click(slack, ALICE, value))
    decided = slack.wait_for_calls("response_url", 1)[0].params
    assert decided["replace_original"] is True
    assert "Confirmed by <@U0ALICE> at" in decided["text"]
    assert all(b["type"] != "actions" for b in decided["blocks"])
    started = bot.replies(2)[1].params
    assert "Deploy started: shop (production)." in started["text"]
    assert started["thread_ts"] == ts
    assert sim.count("POST", "/deployments") == 1

    # The same click again (a replay, or a second replica): nothing new is posted.
    slack.wait_ack(click(slack, ALICE, value))
    assert "already answered" in ephemerals(slack, 2)[1]
    time.sleep(0.3)
    assert sim.count("POST", "/deployments") == 1


def test_declining_does_nothing(
    guarded: Path, bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    sim.start_foreign_deployment("shop", "production")  # something to cancel: asked first
    bot.start()
    bot.mention("cancel -s shop -e production", user=ALICE)
    bot.replies(1)
    slack.wait_ack(click(slack, ALICE, button_value(slack), action="igor_decline"))
    decided = slack.wait_for_calls("response_url", 1)[0].params
    assert "Declined by <@U0ALICE>" in decided["text"]
    assert sim.count("DELETE") == 0
    assert {r.method for r in sim.requests} == {"GET"}  # it looked, and changed nothing


def test_a_forged_button_is_refused(
    guarded: Path, bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    bot.mention("deploy -s shop -e production", user=ALICE)
    bot.replies(1)
    genuine = button_value(slack)
    body, mac = genuine.split(".")
    forged = Signer(b"someone else's key").sign(
        PendingCommand(["deploy", "-s", "shop", "-e", "staging"], ALICE, DEPLOYS, "1", "r", 9e9)
    )
    for value in (forged, body + "." + mac[::-1], "garbage"):
        slack.wait_ack(click(slack, ALICE, value))
    refusals = ephemerals(slack, 3)
    assert all("not one igor made" in r for r in refusals)
    assert sim.count("POST", "/deployments") == 0


def test_an_unanswered_question_expires(
    guarded: Path, bot: RunningBot, slack: FakeSlack, sim: Simulator, clock: FakeClock
) -> None:
    Environment().config_path().write_text(RULES.replace("[slack]", "[slack]\nconfirm_seconds = 5"))
    bot.start()
    bot.mention("deploy -s shop -e production", user=ALICE)
    question = bot.replies(1)[0]
    value = button_value(slack)
    clock.advance(6)  # the click below comes too late, whatever the timer does
    expired = slack.wait_for_calls("chat.update", 1, timeout=10)[0].params
    assert "Nobody confirmed within the time" in expired["text"]
    stored = slack.messages[(DEPLOYS, question.response["ts"])]  # type: ignore[index]
    assert all(b["type"] != "actions" for b in stored["blocks"])
    slack.wait_ack(click(slack, ALICE, value))
    late = ephemerals(slack)[0]  # to the clicker: the question's words stay as they are
    assert "This request expired" in late
    assert sim.count("POST", "/deployments") == 0


def test_signer_round_trip_and_expiry() -> None:
    signer = Signer(b"k")
    pending = PendingCommand(["list"], ALICE, DEPLOYS, "1.2", "req", expires=100.0)
    assert signer.verify(signer.sign(pending), now=99.0) == pending
    with pytest.raises(BadConfirmation, match="expired"):
        signer.verify(signer.sign(pending), now=101.0)
    assert (
        len(signer.sign(PendingCommand(["deploy", "-s", "x" * 200], ALICE, DEPLOYS, "1", "r", 1)))
        < 2000
    )


# -- audit, doctor, manifest ------------------------------------------------------


def test_the_audit_file_gets_every_command_refusal_and_confirmation(
    guarded: Path, bot: RunningBot, slack: FakeSlack, tmp_path: Path
) -> None:
    audit = tmp_path / "audit" / "igor.jsonl"
    guarded.write_text(
        guarded.read_text().replace("[slack]", f'[audit]\npath = "{audit}"\n\n[slack]')
    )
    bot.start()
    bot.mention("list", user=BOB)
    bot.mention("deploy -s shop -e production", user=BOB)
    bot.mention("deploy -s shop -e production", user=ALICE)
    bot.replies(2)
    slack.wait_ack(click(slack, ALICE, button_value(slack)))
    bot.replies(3)
    time.sleep(0.3)
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    by_outcome = [(line["user"], line["command"], line["outcome"]) for line in lines]
    assert (BOB, "list", "ok") in by_outcome
    assert (BOB, "deploy", "refused") in by_outcome
    assert (ALICE, "deploy", "confirm") in by_outcome
    confirmed = next(line for line in lines if line.get("confirmation") == "confirmed")
    assert confirmed["confirmed_by"] == ALICE
    assert confirmed["text"] == "deploy -s shop -e production"  # what was typed, then confirmed
    assert confirmed["stack"] == "shop"
    assert confirmed["environment"] == "production"


def test_doctor_reports_the_rules(guarded: Path, sim: Simulator, igor: Igor) -> None:
    ran = igor("doctor")
    assert (
        "bot rules: rule 2 (commands cancel, deploy; environments production; "
        "channels C0DEPLOY; users U0ALICE)"
    ) in ran.stdout
    assert "bot rules: rule 1 (commands help, list, version)" in ran.stdout
    assert "confirm in production (expires after 60 s)" in ran.stdout
    assert "confirmation signing key: from environment" in ran.stdout


def test_register_slack_creates_the_signing_key(
    slack: FakeSlack, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    ran = igor("register", "--slack", "--stdin", input=f"{slack.bot_token}\n{slack.app_token}\n")
    assert "Created the confirmation signing key" in ran.stdout
    key = keyring.get_password("igor", "signing-key")
    assert key and len(key) >= 32
    igor("register", "--slack", "--stdin", input=f"{slack.bot_token}\n{slack.app_token}\n")
    assert keyring.get_password("igor", "signing-key") == key  # kept, not replaced


def test_manifest_asks_for_exactly_what_the_bot_uses(
    guarded: Path, bot: RunningBot, slack: FakeSlack, igor: Igor
) -> None:
    printed = json.loads(igor("slack-manifest", "--name", "deploybot").stdout)
    assert printed == manifest("deploybot")
    assert printed["settings"]["socket_mode_enabled"] is True
    assert printed["settings"]["interactivity"]["is_enabled"] is True
    assert printed["features"]["slash_commands"][0]["command"] == "/deploybot"
    assert printed["features"]["bot_user"]["display_name"] == "deploybot"
    about = printed["display_information"]["long_description"]
    assert about.startswith("deploybot runs igor ")
    assert 175 <= len(about) <= 4000  # Slack refuses a manifest outside these bounds
    assert not manifest()["display_information"]["long_description"].startswith("igor is igor")
    assert set(printed["settings"]["event_subscriptions"]["bot_events"]) == set(EVENT_SCOPES)
    # Drive every kind of call the bot makes, then check each is listed with its scopes.
    bot.start()
    bot.mention("cancel -s shop -e production", user=BOB)  # refused: ephemeral
    bot.mention("deploy -s shop -e production", user=ALICE)  # question
    bot.replies(1)
    slack.wait_ack(click(slack, ALICE, button_value(slack)))
    bot.replies(3, timeout=10)  # started, then the outcome
    slack.wait_for_calls("chat.update", 1)
    called = {c.method for c in slack.calls if c.method != "response_url"}
    assert called <= set(WEB_API_SCOPES), called - set(WEB_API_SCOPES)
    needed = {scope for method in called for scope in WEB_API_SCOPES[method]}
    assert needed <= set(printed["oauth_config"]["scopes"]["bot"])
    assert printed["oauth_config"]["scopes"]["bot"] == bot_scopes()
    assert "commands" in bot_scopes()
