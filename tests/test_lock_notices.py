"""A lock forced open tells its Slack holder, in the thread they locked it in: from a shell
through a notice in the shared state store that one bot replica takes and posts, from chat
at once (and never twice)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest

from igor_cli.identity import Person
from igor_cli.sandbox import Simulator
from igor_cli.state import open_store
from igor_cli.state.locks import ForcedUnlock, Lock, leave_notice, take_notices
from tests.conftest import Igor, RunningBot, next_ts, wait_until
from tests.fakes.slack import Call, FakeSlack

ALICE, BOB = "U0ALICE", "U0BOB"


@pytest.fixture(autouse=True)
def often(state_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot looks every 0.2 s; the store is SQLite, then Redis."""
    monkeypatch.setattr("igor_cli.chat.slack.bypass_watch.BYPASS_CHECK_SECONDS", 0.2)
    monkeypatch.setenv("IGOR_STATE_URL", state_url)


def forced(slack: FakeSlack) -> list[Call]:
    """What the bot posted about locks forced open (delivered)."""
    return [
        c
        for c in slack.calls_to("chat.postMessage")
        if "forced open" in str(c.params.get("text")) and not c.error
    ]


def mention_in_thread(bot: RunningBot, text: str, user: str, channel: str, thread: str) -> str:
    ts = next_ts()
    bot.slack.push_event(
        {"type": "app_mention", "user": user, "text": f"<@{bot.slack.bot_user_id}> {text}",
         "channel": channel, "ts": ts, "event_ts": ts, "thread_ts": thread}
    )  # fmt: skip
    return ts


def test_a_shell_forcing_a_slack_lock_tells_the_holder_in_their_thread_once(
    bot: RunningBot, slack: FakeSlack, igor: Igor, state_url: str
) -> None:
    bot.start()
    locked_in = bot.mention("lock -s blog --reason 'migration'", user=ALICE)
    bot.replies(1)
    ran = igor("unlock", "-s", "blog", "--force", "--reason", "hotfix waiting")
    assert ran.exit_code == 0, ran.output
    assert "The forced unlock is on record. `igor serve` tells them in Slack" in ran.stdout
    assert wait_until(lambda: forced(slack))
    told = forced(slack)[0].params
    assert (told["channel"], told["thread_ts"]) == ("C0DEPLOY", locked_in)
    assert "<@U0ALICE>, your lock on blog (production)" in told["text"]
    assert "(from a shell)" in told["text"] and "hotfix waiting" in told["text"]
    time.sleep(0.8)  # several more looks
    assert len(forced(slack)) == 1
    assert len(slack.calls_to("chat.postMessage")) == 2  # the lock's reply, and this
    store = open_store(state_url)
    try:
        assert store.items("notice:") == {}
        audit = [json.loads(v) for v in store.items("audit:").values()]
        assert [a["reason"] for a in audit] == ["hotfix waiting"]
    finally:
        store.close()


def test_a_lock_recorded_without_its_place_is_told_by_direct_message(
    bot: RunningBot, slack: FakeSlack, igor: Igor, state_url: str
) -> None:
    listed = igor("list", "-s", "blog", "-e", "production", "--json")
    uid = json.loads(listed.stdout)[0]["uid"]
    old = (  # as igor wrote locks before it kept their place
        f'{{"stack":{{"uid":"{uid}","name":"blog","environment":"production"}},'
        f'"holder":{{"via":"slack","user":"{ALICE}"}},"reason":"",'
        f'"started_at":"2026-11-30T10:00:00+00:00","expires_at":"2030-01-01T00:00:00+00:00"}}'
    )
    store = open_store(state_url)
    try:
        assert store.claim(f"lock:{uid}", old, 3600)
    finally:
        store.close()
    assert igor("unlock", "-s", "blog", "--force").exit_code == 0
    bot.start()
    assert wait_until(lambda: forced(slack))
    told = forced(slack)[0].params
    assert told["channel"] == ALICE and "thread_ts" not in told  # the app's DM with them
    assert "(no reason given)" in told["text"]


def test_a_shell_lock_forced_from_a_shell_leaves_no_notice(
    sim: Simulator, igor: Igor, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    igor.account = "carol"
    assert igor("lock", "-s", "blog").exit_code == 0
    igor.account = "dave"
    ran = igor("unlock", "-s", "blog", "--force")
    assert "which carol@" in ran.stdout and "on record." in ran.stdout
    assert "told in Slack" not in ran.stdout  # nobody in Slack to tell
    store = open_store(state_url)
    try:
        assert store.items("notice:") == {} and len(store.items("audit:")) == 1
    finally:
        store.close()


def test_forcing_in_chat_tells_the_holder_once(
    bot: RunningBot, slack: FakeSlack, state_url: str
) -> None:
    bot.start()
    locked_in = bot.mention("lock -s blog", user=ALICE)
    bot.replies(1)
    # Elsewhere: the reply mentions Alice; her lock's thread is told, without a second ping.
    forced_in = bot.mention("unlock -s blog --force --reason 'hotfix'", user=BOB, channel="C0OPS")
    replies = bot.replies(3)
    reply = next(c.params for c in replies if c.params.get("thread_ts") == forced_in)
    assert "which <@U0ALICE> held" in reply["text"] and "They are told in Slack." in reply["text"]
    assert wait_until(lambda: forced(slack))
    told = forced(slack)[0].params
    assert (told["channel"], told["thread_ts"]) == ("C0DEPLOY", locked_in)
    assert told["text"].startswith("The lock on blog (production)")
    assert "<@U0ALICE>" not in told["text"] and "forced open by <@U0BOB>" in told["text"]

    # In the lock's own thread: the reply is all there is.
    again = bot.mention("lock -s blog", user=ALICE)
    bot.replies(4)
    mention_in_thread(bot, "unlock -s blog --force", BOB, "C0DEPLOY", again)
    bot.replies(5)
    time.sleep(0.8)  # several looks
    assert len(forced(slack)) == 1
    assert len(slack.calls_to("chat.postMessage")) == 5
    store = open_store(state_url)
    try:
        assert store.items("notice:") == {}
    finally:
        store.close()


def test_a_notice_is_taken_by_one_replica(state_url: str) -> None:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    lock = Lock("s1", "blog", "production", Person.in_slack(ALICE), "", now, now, "C0DEPLOY", "1.2")
    stores = [open_store(state_url) for _ in range(8)]
    try:
        leave_notice(stores[0], ForcedUnlock(lock, Person.in_shell("bob@laptop"), "why", now))
        taken: list[ForcedUnlock] = []
        start = threading.Barrier(len(stores))

        def take(index: int) -> None:
            start.wait()
            taken.extend(take_notices(stores[index]))

        threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert [(n.lock, n.by_user, n.reason) for n in taken] == [(lock, "bob@laptop", "why")]
    finally:
        for store in stores:
            store.close()


def test_a_notice_left_while_no_bot_ran_is_told_soon_after_one_starts(
    bot: RunningBot, slack: FakeSlack, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Looks an hour apart: only the first look, soon after start, can tell it.
    monkeypatch.setattr("igor_cli.chat.slack.bypass_watch.BYPASS_CHECK_SECONDS", 3600.0)
    monkeypatch.setattr("igor_cli.chat.slack.bypass_watch.FIRST_LOOK_SECONDS", 0.2)
    now = datetime.now(UTC)
    lock = Lock("s1", "blog", "production", Person.in_slack(ALICE), "", now, now, "C0DEPLOY", "1.2")
    store = open_store(state_url)
    try:
        leave_notice(store, ForcedUnlock(lock, Person.in_shell("bob@laptop"), "hotfix", now))
    finally:
        store.close()
    slack.join("C0DEPLOY")
    bot.start()
    assert wait_until(lambda: forced(slack))
    told = forced(slack)[0].params
    assert (told["channel"], told.get("thread_ts")) == ("C0DEPLOY", "1.2")
    assert "<@U0ALICE>, your lock on blog" in told["text"]
