"""Issue 21, "Who may act": only members of the bot's workspace (and the teams the config
names) count, for every command and click; rules are read again when the config changes,
all or nothing; replicas on stores of their own refuse changes from chat; a shell's user
is the operating system's account, and the same person in `igor chat`."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from igor_cli.cloud66.client import Cloud66Client
from igor_cli.config import Environment, os_account
from igor_cli.core.resolve import find_stack
from igor_cli.identity import Person
from igor_cli.sandbox import Simulator
from igor_cli.state import open_store
from igor_cli.state.locks import Lock, lock_key
from tests.conftest import Igor, RunningBot, next_ts, wait_until
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack
from tests.test_guard import button_value, click

ALICE, BOB, EVE = "U0ALICE", "U0BOB", "U0EVE"  # Eve works for a partner
PARTNER = "T0PARTNER"
SHARED = "C0SHARED"  # a Slack Connect channel, with the partner's people in it
KEY = "a-key-shared-by-every-replica-of-igor"


def configure(text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = Environment().config_path()
    path.write_text(text)
    monkeypatch.setenv("IGOR_SIGNING_KEY", KEY)
    return path


def posts(sim: Simulator) -> int:
    return sim.count("POST", "/deployments")


def said_to(slack: FakeSlack, user: str) -> list[str]:
    """What igor told `user` alone (ephemeral replies, by the Web API or a response_url)."""
    told = [c.params for c in slack.calls_to("chat.postEphemeral") if c.params.get("user") == user]
    return [str(p.get("text", "")) for p in told]


def mention(slack: FakeSlack, text: str, user: str, channel: str = SHARED) -> str:
    ts = next_ts()
    slack.push_event({"type": "app_mention", "user": user, "channel": channel, "ts": ts,
                      "text": f"<@{slack.bot_user_id}> {text}", "event_ts": ts})  # fmt: skip
    return ts


@pytest.fixture
def partner(slack: FakeSlack) -> FakeSlack:
    slack.add_external_user(EVE, PARTNER)
    slack.share_channel(SHARED)
    return slack


# -- item 4: Slack Connect -------------------------------------------------------------


def test_someone_of_another_workspace_runs_nothing_and_is_told_once(
    bot: RunningBot, partner: FakeSlack, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="igor")
    bot.start()
    mention(partner, "deploy -s shop -e staging", EVE)  # the README's own open rules
    assert wait_until(lambda: said_to(partner, EVE))
    assert "only from members of the Acme workspace" in said_to(partner, EVE)[0]
    mention(partner, "list", EVE)
    partner.push_slash_command("list", user_id=EVE, channel_id=SHARED)
    assert wait_until(lambda: caplog.text.count('"reason": "not a member"') == 3)
    time.sleep(0.3)
    assert len(said_to(partner, EVE)) == 1  # told once
    assert partner.calls_to("response_url") == []  # the slash command got no answer either
    assert partner.post_message_count() == 0 and posts(sim) == 0
    assert f'"team": "{PARTNER}"' in caplog.text

    mention(partner, "list", ALICE)  # a member, in the same shared channel
    assert "shop" in partner.wait_for_calls("chat.postMessage", 1)[0].params["text"]


def test_an_outsiders_approval_or_cancel_click_does_nothing(
    bot: RunningBot, partner: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure('[slack]\napprove = ["production"]\n', monkeypatch)  # approvers unset
    bot.start()
    bot.mention("deploy -s blog", user=ALICE)
    bot.replies(1)
    value = button_value(partner)
    partner.wait_ack(click(partner, EVE, value))  # "anyone but the requester"... of ours
    assert wait_until(lambda: said_to(partner, EVE))
    time.sleep(0.3)
    assert posts(sim) == 0
    assert not partner.calls_to("response_url")  # the question was not touched
    partner.wait_ack(click(partner, BOB, value))
    assert wait_until(lambda: posts(sim) == 1)


def test_the_config_may_name_other_teams_whose_people_count(
    bot: RunningBot, partner: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(f'[slack]\nallow_teams = ["{PARTNER}"]\n', monkeypatch)
    bot.start()
    mention(partner, "deploy -s shop -e staging", EVE)
    assert "Deploy started" in partner.wait_for_calls("chat.postMessage", 1)[0].params["text"]
    assert posts(sim) == 1 and said_to(partner, EVE) == []


def test_allow_teams_takes_team_ids_only(
    bot: RunningBot, slack: FakeSlack, igor: Igor, caplog: pytest.LogCaptureFixture
) -> None:
    Environment().config_path().write_text('[slack]\nallow_teams = ["partner", "*"]\n')
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(10)
    assert bot.exit_code == 2 and "partner, * are not Slack team IDs (T… or E…)" in caplog.text
    assert "✗ bot rules" in igor("doctor").stdout


def test_a_shared_channels_message_that_says_no_team_counts_for_nobody(
    bot: RunningBot, partner: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    ts = next_ts()
    partner.push_raw({  # delivered as Slack would, but without a word of whose it is
        "envelope_id": "e-no-team", "type": "events_api", "accepts_response_payload": False,
        "payload": {"type": "event_callback", "team_id": partner.team_id,
                    "is_ext_shared_channel": True,
                    "event": {"type": "app_mention", "user": "U0WHO", "channel": SHARED,
                              "ts": ts, "text": f"<@{partner.bot_user_id}> list"}},
    })  # fmt: skip
    partner.wait_ack("e-no-team")
    assert wait_until(lambda: said_to(partner, "U0WHO"))
    time.sleep(0.3)
    # Told why (igor is not in that channel, so by direct message), and nothing else.
    posted = [str(c.params["text"]) for c in partner.calls_to("chat.postMessage")]
    assert all("only from members" in text for text in posted), posted


# -- item 5: the rules follow the config file ----------------------------------------------

ALICE_ONLY = f"""
[[slack.allow]]
commands = ["deploy", "list"]
users = ["{ALICE}"]
"""


def test_a_user_removed_from_the_rules_is_refused_without_a_restart(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="igor")
    path = configure(ALICE_ONLY, monkeypatch)
    bot.start()
    bot.mention("deploy -s shop -e staging", user=ALICE)
    assert "Deploy started" in bot.replies(1)[0].params["text"]
    path.write_text(ALICE_ONLY.replace(ALICE, BOB))
    bot.mention("deploy -s blog", user=ALICE)
    assert wait_until(lambda: slack.calls_to("chat.postEphemeral"))
    assert "No rule allows" in slack.calls_to("chat.postEphemeral")[0].params["text"]
    assert posts(sim) == 1
    assert "read again: rules now: rule 1 (commands deploy, list; users U0BOB)" in caplog.text


def test_a_command_reads_the_config_file_once_where_it_is_decided(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    # Its rules, the channel's defaults and the freezes from one reading of the file: once
    # on the thread that reads the message, once on the worker that deploys (it was read
    # seven times, and an edit between two of them could decide a command on two files).
    configure(ALICE_ONLY, monkeypatch)
    bot.start()
    reads = request.getfixturevalue("config_reads")  # counted from here
    bot.mention("deploy -s shop -e staging", user=ALICE)
    assert "Deploy started" in bot.replies(1)[0].params["text"]
    assert reads.count("igor-intake") == 1
    assert reads.count("igor-cmd") == 1
    assert posts(sim) == 1


def test_a_config_that_no_longer_reads_keeps_the_last_good_rules_and_says_so(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="igor")
    path = configure(ALICE_ONLY, monkeypatch)
    bot.start()
    path.write_text(ALICE_ONLY + '\n[slack]\nconfirm = "production"\n')  # not an array
    bot.mention("list", user=BOB)  # still refused: the last good rules hold, whole
    assert wait_until(lambda: slack.calls_to("chat.postEphemeral"))
    told = slack.calls_to("chat.postEphemeral")[0].params
    assert "No rule allows" in told["text"]
    assert "the config file changed but igor cannot use it" in json.dumps(told["blocks"])
    bot.mention("list", user=ALICE)
    answer = bot.replies(1)[0].params
    assert "shop" in answer["text"] and "cannot use it" not in json.dumps(answer["blocks"])
    assert caplog.text.count("the config file changed but cannot be used") == 1

    path.write_text(ALICE_ONLY.replace('"deploy", "list"', '"list"'))  # fixed (and changed)
    bot.mention("deploy -s shop -e staging", user=ALICE)
    assert wait_until(lambda: len(slack.calls_to("chat.postEphemeral")) == 2)
    assert "read again: rules now: rule 1 (commands list; users U0ALICE)" in caplog.text
    assert posts(sim) == 0


def test_a_config_file_that_vanishes_is_not_taken_for_no_rules(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = configure(ALICE_ONLY, monkeypatch)
    bot.start()
    path.unlink()
    bot.mention("deploy -s shop -e staging", user=BOB)
    assert wait_until(lambda: slack.calls_to("chat.postEphemeral"))
    assert "is gone" in json.dumps(slack.calls_to("chat.postEphemeral")[0].params["blocks"])
    assert posts(sim) == 0


# -- item 6: replicas on stores of their own -----------------------------------------------


@pytest.fixture
def two_bots(
    slack: FakeSlack, sim: Simulator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[RunningBot]]:
    """Two `igor serve` on one app, on the store the test set (the second one's `hello`
    said 2 connections, and it has been read)."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_APP_TOKEN", slack.app_token)
    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    bots = [RunningBot(slack, clock), RunningBot(slack, clock)]
    try:
        bots[0].start()
        bots[1].start(wait=False)
        assert wait_until(lambda: slack.live_connections() == 2)
        slack.ping_and_wait()  # the newest connection's frames, its hello first, were read
        yield bots
    finally:
        for bot in bots:
            bot.close()


def test_a_replica_on_a_store_of_its_own_refuses_changes_and_says_why(
    two_bots: list[RunningBot], slack: FakeSlack, sim: Simulator, igor: Igor
) -> None:
    ts = mention(slack, "deploy -s blog", ALICE, "C0DEPLOY")  # to the newest connection
    assert wait_until(lambda: slack.calls_to("chat.postMessage"))
    reply = slack.calls_to("chat.postMessage")[0].params
    assert reply["thread_ts"] == ts
    assert "Slack says 2 connections of this app are open" in reply["text"]
    assert "IGOR_STATE_URL" in reply["text"]
    mention(slack, "lock -s blog", ALICE, "C0DEPLOY")  # a lock is kept in the store too
    assert wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 2)
    assert "Changes from chat are refused" in slack.calls_to("chat.postMessage")[1].params["text"]
    mention(slack, "list", ALICE, "C0DEPLOY")  # reading is fine
    assert wait_until(lambda: len(slack.calls_to("chat.postMessage")) == 3)
    assert posts(sim) == 0
    doctor = igor("doctor")
    assert doctor.exit_code == 2
    assert "✗ state store" in doctor.stdout and "Slack last said 2 connection(s)" in doctor.stdout


@pytest.fixture
def shared_redis(redis_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import redis

    redis.Redis.from_url(redis_server).flushdb()
    monkeypatch.setenv("IGOR_STATE_URL", redis_server)
    return redis_server


def test_replicas_that_share_redis_make_changes(
    shared_redis: str, two_bots: list[RunningBot], slack: FakeSlack, sim: Simulator
) -> None:
    mention(slack, "deploy -s blog", ALICE, "C0DEPLOY")
    assert "Deploy started" in slack.wait_for_calls("chat.postMessage", 1)[0].params["text"]
    assert posts(sim) == 1


def test_a_reconnect_of_one_bot_is_not_taken_for_a_replica(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    slack.send_disconnect(close_after=1.0)  # the new connection opens before the old closes
    slack.wait_connected(2)
    slack.ping_and_wait()
    bot.mention("deploy -s blog")
    assert "Deploy started" in bot.replies(1)[0].params["text"]


def test_a_shell_lock_on_a_local_store_does_not_promise_what_it_cannot_hold(
    sim: Simulator, igor: Igor, redis_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = igor("lock", "-s", "blog")
    assert local.exit_code == 0
    assert "Others' changes to it are refused" not in local.stdout
    assert "through igor on this machine are refused" in local.stdout
    assert "IGOR_STATE_URL" in local.stdout
    monkeypatch.setenv("IGOR_STATE_URL", redis_server)
    shared = igor("lock", "-s", "shop", "-e", "production")
    assert "Others' changes to it are refused until then." in shared.stdout


# -- items 7 and 8: who a shell's user is ----------------------------------------------------


def test_the_shell_user_is_the_os_account_not_what_user_says(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    me = os_account()
    host = socket.gethostname()
    client = Cloud66Client(sim.token, sim.url)
    store = open_store(Environment().state_url())
    try:
        now = clock.datetime()
        blog = find_stack(client, "blog", None)
        alice = Person.in_shell(f"alice@{host}")
        alices = Lock(blog.uid, blog.name, blog.environment, alice, "mine",
                      now, now + timedelta(hours=1))  # fmt: skip
        assert store.claim(lock_key(blog.uid), alices.dumps(), 3600)
    finally:
        store.close()
        client.close()
    assert me != "alice"
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    released = igor("unlock", "-s", "blog")
    assert released.exit_code == 1 and "not by you" in released.stderr
    deploy = igor("deploy", "-s", "blog")
    assert deploy.exit_code == 1 and f"locked by alice@{host}" in deploy.stderr
    assert posts(sim) == 0
    taken = igor("lock", "-s", "shop", "-e", "staging")
    assert f"for {me}@{host}" in taken.stdout


def test_the_shell_and_igor_chat_on_one_machine_are_one_person(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    from io import StringIO

    from igor_cli.chat.console import run_console

    assert igor("lock", "-s", "blog", "--reason", "release").exit_code == 0
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    out = StringIO()
    me = f"{os_account()}@{socket.gethostname()}"
    run_console(env, me, StringIO("deploy -s blog\nlock -s shop -e staging\n"), out)
    assert "Deploy started" in out.getvalue(), out.getvalue()  # their own lock
    assert posts(sim) == 1
    ran = igor("deploy", "-s", "shop", "-e", "staging")  # the console's lock, from the shell
    assert ran.exit_code == 0, ran.output
    assert igor("unlock", "-s", "shop").exit_code == 0  # theirs: no --force
    assert posts(sim) == 2
