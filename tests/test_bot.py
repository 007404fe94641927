"""`igor serve` end to end: the real slack_sdk Socket Mode client, the fake Slack, the simulator."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import keyring
import pytest

from igor_cli import cli
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import RunningBot, next_ts, wait_until
from tests.fakes.slack import FakeSlack


def text_of(call: object) -> str:
    params = call.params  # type: ignore[attr-defined]
    blocks = json.dumps(params.get("blocks", []))
    return str(params.get("text", "")) + "\n" + blocks


def test_a_mention_is_answered_in_its_thread(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    ts = bot.mention("list -s shop")
    reply = bot.replies(1)[0]
    assert reply.params["channel"] == "C0DEPLOY"
    assert reply.params["thread_ts"] == ts
    assert "shop (production)" in reply.params["text"]  # the plain-text fallback
    assert reply.params["blocks"][0]["type"] == "section"
    assert "Deployed successfully" in reply.params["blocks"][0]["text"]["text"]


def test_every_envelope_is_acked_at_once(bot: RunningBot, slack: FakeSlack, sim: Simulator) -> None:
    bot.start()
    sim.latency = 0.5  # slow Cloud 66 must not delay the ack
    envelope = slack.push_event(
        {"type": "app_mention", "user": "U0ALICE", "text": "<@UIGOR> list",
         "channel": "C1", "ts": next_ts()}
    )  # fmt: skip
    ack = slack.wait_ack(envelope)
    assert ack.acked_at - ack.sent_at < 0.4
    bot.replies(1)


def test_a_reply_in_a_thread_stays_in_that_thread(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    parent = next_ts()
    slack.push_event(
        {"type": "app_mention", "user": "U0ALICE", "text": "<@UIGOR> version",
         "channel": "C1", "ts": next_ts(), "thread_ts": parent}
    )  # fmt: skip
    assert bot.replies(1)[0].params["thread_ts"] == parent


def test_direct_messages_need_no_name(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    for text in ("version", "igor version"):
        slack.push_event(
            {"type": "message", "channel_type": "im", "user": "U0ALICE", "text": text,
             "channel": "D1", "ts": next_ts()}
        )  # fmt: skip
    replies = bot.replies(2)
    assert all("igor 0.1.0" in r.params["text"] for r in replies)


def test_channel_messages_need_igors_name(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    slack.push_event(
        {"type": "message", "channel_type": "channel", "user": "U0ALICE",
         "text": "we should deploy the shop soon", "channel": "C1", "ts": next_ts()}
    )  # fmt: skip
    slack.push_event(
        {"type": "message", "channel_type": "channel", "user": "U0ALICE",
         "text": "Igor: version", "channel": "C1", "ts": next_ts()}
    )  # fmt: skip
    replies = bot.replies(1)
    time.sleep(0.3)
    assert slack.post_message_count() == 1
    assert "igor 0.1.0" in replies[0].params["text"]


def test_slash_command_answers_through_the_response_url(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    envelope = slack.push_slash_command("list -e staging")
    slack.wait_ack(envelope)
    answer = slack.wait_for_calls("response_url", 1)[0]
    assert answer.params["response_type"] == "in_channel"
    assert "search (staging)" in answer.params["text"]
    assert slack.post_message_count() == 0


def test_one_post_delivered_twice_runs_once(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    ts = next_ts()
    event = {"user": "U0ALICE", "text": "<@UIGOR> deploy -s blog", "channel": "C1", "ts": ts}
    slack.push_event({"type": "app_mention", **event}, event_id="Ev1")
    slack.push_event({"type": "message", "channel_type": "channel", **event}, event_id="Ev2")
    slack.push_event({"type": "app_mention", **event}, event_id="Ev1", retry_attempt=1,
                     retry_reason="timeout")  # fmt: skip
    bot.replies(2)  # "deploy started", then the outcome
    time.sleep(0.5)
    posts = slack.calls_to("chat.postMessage")
    assert len([c for c in posts if "Deploy started" in c.params["text"]]) == 1
    assert slack.post_message_count() == 2
    assert sim.count("POST", "/deployments") == 1


def test_bots_edits_and_igor_itself_are_ignored(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    base = {"type": "message", "channel_type": "im", "channel": "D1", "text": "igor version"}
    slack.push_event({**base, "user": "UIGOR", "ts": next_ts()})
    slack.push_event({**base, "user": "U0OTHER", "bot_id": "B0OTHER", "ts": next_ts()})
    slack.push_event({**base, "user": "U0ALICE", "subtype": "message_changed", "ts": next_ts()})
    slack.push_event({**base, "subtype": "channel_join", "user": "U0ALICE", "ts": next_ts()})
    slack.push_event({**base, "user": "U0ALICE", "ts": next_ts()})  # the one to answer
    bot.replies(1)
    time.sleep(0.5)
    assert slack.post_message_count() == 1


def test_typography_and_escaping_are_undone(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    bot.mention("deploy \u2014stack \u201cPayments Portal\u201d \u2013e production \u2014dry-run")
    reply = bot.replies(1)[0]
    assert (
        "Dry run: a deploy of Payments Portal (production) would start now" in reply.params["text"]
    )
    bot.mention("list -s &lt;nothing&gt; -e <mailto:prod@x.io|production>")
    # Slack shows `&lt;` as `<`: the text is the user's, escaped so it cannot become markup.
    said = bot.replies(2)[1].params["text"]
    assert "No stacks named like '&lt;nothing&gt;' in 'production'." in said
    assert sim.count("POST", "/deployments") == 0


def test_unbalanced_quote_gets_a_clear_reply(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    bot.mention('deploy -s "Payments Portal')
    assert "A quote in that message is not closed." in bot.replies(1)[0].params["text"]


CHAT_COMMANDS = cli.chat_commands()


def test_chat_lists_its_commands_in_helps_order_without_the_shells() -> None:
    assert CHAT_COMMANDS[:3] == ("list", "deploy", "cancel")
    assert CHAT_COMMANDS[-2:] == ("help", "version")
    assert not {"serve", "register", "reset"} & set(CHAT_COMMANDS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deploy", "Usage: @igor deploy [OPTIONS]"),
        ("deploy -s shop -w maybe", "'maybe' is not true or false"),
        ("deploy -h", "Aliases: redeploy."),
        ("halt --help", "Cancel the stack's running deployment"),
        # What chat may run, in its help's order (the registry's list: a new command is in it).
        ("frobnicate", f"Unknown command 'frobnicate'. Commands: {', '.join(CHAT_COMMANDS)}."),
        ("serve", "Unknown command 'serve'."),
        ("help", "deploy   Deploy a stack"),
        ("", "list     List your stacks"),
    ],
)
def test_usage_help_and_unknown_commands_match_the_shell(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, text: str, expected: str
) -> None:
    bot.start()
    bot.mention(text)
    assert expected in text_of(bot.replies(1)[0])
    assert sim.count("POST", "/deployments") == 0


def test_deploy_is_followed_and_the_requester_mentioned(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    ts = bot.mention("deploy -s blog", user="U0ALICE")
    replies = bot.replies(2, timeout=30)  # generous: a loaded CI machine, not a budget
    assert "Deploy started: blog (production)." in replies[0].params["text"]
    final = replies[1].params
    assert final["thread_ts"] == ts
    assert "<@U0ALICE>" in final["text"]
    assert "Deployed blog (production) in" in final["text"]
    updates = slack.wait_for_calls("chat.update", 1)
    assert all(u.params["ts"] == replies[0].response["ts"] for u in updates)  # type: ignore[index]
    # The "started" message ends up saying how it went (no mention: edits ping nobody).
    deadline = time.monotonic() + 20
    while "Deployed blog" not in slack.calls_to("chat.update")[-1].params["text"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "<@" not in slack.calls_to("chat.update")[-1].params["text"]
    posted = next(r for r in sim.requests if r.method == "POST")
    assert posted.body["user_reference"] == f"igor:slack:U0ALICE:C0DEPLOY-{ts}"


def test_a_failed_deployment_is_reported_as_failed(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    bot.mention("deploy -s legacy")
    final = bot.replies(2, timeout=10)[1].params["text"]
    assert "Deployment of legacy (production) failed" in final


def test_several_people_following_one_deployment_share_one_poll_loop(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    sim.deploy_seconds = 10**9  # type: ignore[misc]  # running until Bob is told (see below)
    bot.start()
    bot.mention("deploy -s blog", user="U0ALICE", channel="C1")
    first = bot.replies(1)[0]
    assert "Deploy started" in first.params["text"]
    bot.mention("deploy -s blog", user="U0BOB", channel="C2")
    second = bot.replies(2)[1]
    assert "already deploying, started by <@U0ALICE>" in second.params["text"]
    sim.deploy_seconds = 600  # type: ignore[misc]
    finals = bot.replies(4, timeout=15)[2:]
    assert {c.params["channel"] for c in finals} == {"C1", "C2"}
    assert all("Deployed blog" in c.params["text"] for c in finals)
    polls = [r for r in sim.requests if "/actions/" in r.path]
    # One loop: 600 s of deployment, one look every 10 s (not two loops' worth).
    assert len(polls) <= 600 / 10 + 3
    assert sim.count("POST", "/deployments") == 1


def test_cancel_in_chat(bot: RunningBot, slack: FakeSlack, sim: Simulator) -> None:
    sim.start_foreign_deployment("blog", "production", triggered_by="dana@example.com")
    bot.start()
    bot.mention("stop -s blog")
    assert "Cancelling deployment" in bot.replies(1)[0].params["text"]
    assert "dana@example.com" in bot.replies(1)[0].params["text"]
    bot.mention("cancel -s blog")
    assert "already cancelling" in bot.replies(2)[1].params["text"]
    bot.mention("cancel -s shop -e staging")
    assert "not deploying, nothing to cancel" in bot.replies(3)[2].params["text"]
    assert sim.count("DELETE") == 2


def test_a_long_stack_list_fits_block_kit(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    sim.add_stacks(1500)
    bot.start()
    bot.mention("list")
    reply = bot.replies(1, timeout=10)[0].params
    assert reply.get("error") is None
    assert len(reply["blocks"]) <= 50
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in reply["blocks"])
    assert "more. Narrow the list" in json.dumps(reply["blocks"])
    assert len(reply["text"]) < 4000


def test_cloud66_token_problems_are_answered_and_fixed_without_restart(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IGOR_CLOUD66_TOKEN")
    bot.start()
    bot.mention("list")
    missing = bot.replies(1)[0].params["text"]
    assert "No Cloud 66 token is set" in missing and "`igor register`" in missing
    assert "stored token" not in missing  # there is none
    keyring.set_password("igor", "cloud66", "wrong-token")
    bot.mention("list")
    assert (
        "I can't reach Cloud 66 with the stored token; run `igor register`."
        in bot.replies(2)[1].params["text"]
    )
    keyring.set_password("igor", "cloud66", SANDBOX_TOKEN)  # what `igor register` stores
    bot.mention("list")
    assert "shop (production)" in bot.replies(3)[2].params["text"]


def test_commands_and_follow_loops_share_one_connection_pool(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    bot.mention("list -s shop")
    assert "shop (production)" in bot.replies(1)[0].params["text"]
    # LAST DEPLOY reads the two stacks' deployments at once: a connection each at most.
    first = sim.connections_opened
    assert 1 <= first <= 2
    for n in range(2, 5):
        bot.mention("list -s shop")
        assert "shop (production)" in bot.replies(n)[n - 1].params["text"]
    assert sim.connections_opened == first  # kept alive from one command to the next
    bot.mention("deploy -s blog")
    assert "Deploy started" in bot.replies(5)[4].params["text"]
    # The deploy reads its stack's record, deployments and actions, and its own actions at
    # once (four connections at most), and posts on a new one (a POST is never sent on a
    # kept connection to Cloud 66); the follow loop borrows a pooled one.
    assert sim.connections_opened <= max(first, 4) + 1


def test_a_disconnect_frame_is_survived(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    slack.send_disconnect(close_after=0.2)
    slack.wait_connected(count=2, timeout=10)
    bot.mention("version")
    assert "igor 0.1.0" in bot.replies(1)[0].params["text"]


def test_a_dropped_socket_is_survived(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    slack.drop_connections(mode="reset")
    slack.wait_connected(count=2, timeout=10)
    bot.mention("version")
    assert "igor 0.1.0" in bot.replies(1)[0].params["text"]


def test_stopping_is_clean_and_quick(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    started = time.monotonic()
    bot.close()
    assert bot.thread is not None
    assert not bot.thread.is_alive()
    assert bot.exit_code == 0
    assert time.monotonic() - started < 10


def test_one_log_line_per_command_and_never_a_token(
    bot: RunningBot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="igor")
    bot.start()
    bot.mention("deploy -s shop -e staging --dry-run", user="U0ALICE", channel="C9")
    bot.replies(1)
    time.sleep(0.2)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "igor.audit"]
    assert len(lines) == 1
    line = lines[0]
    assert line["user"] == "U0ALICE"
    assert line["channel"] == "C9"
    assert line["command"] == "deploy"
    assert (line["stack"], line["environment"]) == ("shop", "staging")
    assert line["outcome"] == "ok"
    assert isinstance(line["duration_ms"], int)
    everything = caplog.text
    for token in (slack.bot_token, slack.app_token, SANDBOX_TOKEN):
        assert token not in everything


def test_a_rejected_bot_token_stops_the_bot(
    bot: RunningBot,
    slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-the-one")
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(10)
    assert bot.exit_code == 4
    assert "Slack rejected the Slack bot token (xoxb-)" in caplog.text
    assert "xoxb-not-the-one" not in caplog.text
    assert slack.connections_opened == 0


def test_a_rejected_app_token_stops_the_bot(
    bot: RunningBot,
    slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-not-the-one")
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(10)
    assert bot.exit_code == 4
    assert "Slack app-level token (xapp-)" in caplog.text


def test_unreachable_slack_is_retried_then_given_up(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch, clock: object
) -> None:
    monkeypatch.setenv("IGOR_SLACK_API_URL", "http://127.0.0.1:9/api/")
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(10)
    assert bot.exit_code == 5
    assert len(clock.slept) == 3  # type: ignore[attr-defined]


def test_sigterm_closes_igor_serve_within_10_seconds(
    slack: FakeSlack, sim: Simulator, tmp_path: object
) -> None:
    env = dict(
        os.environ,
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_APP_TOKEN=slack.app_token,
        IGOR_SLACK_API_URL=slack.api_url,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "igor_cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        slack.wait_connected(timeout=15)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = process.communicate(timeout=12)
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "connected to Slack as igor" in stderr
    assert "received SIGTERM; shutting down" in stderr
    assert "Traceback" not in stderr


def test_a_dry_run_during_igors_deployment_follows_nothing(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    # Running until Bob's dry run is answered: Alice's follow moves the fake clock, and on a
    # loaded machine the deployment could end first.
    sim.deploy_seconds = 10**9  # type: ignore[misc]
    bot.start()
    bot.mention("deploy -s blog", user="U0ALICE", channel="C1")
    assert "Deploy started" in bot.replies(1)[0].params["text"]
    bot.mention("deploy -s blog --dry-run", user="U0BOB", channel="C2")
    assert "already deploying" in bot.replies(2)[1].params["text"]
    sim.deploy_seconds = 600  # type: ignore[misc]
    finals = [c for c in bot.replies(3, timeout=15)[2:] if "Deployed blog" in c.params["text"]]
    time.sleep(0.3)
    assert [c.params["channel"] for c in finals] == ["C1"]
    assert all(c.params["channel"] != "C2" for c in slack.calls_to("chat.postMessage")[2:])


def test_a_burst_of_lists_waits_on_a_slow_cloud66_side_by_side(
    bot: RunningBot, sim: Simulator, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 500 lists at 100 ms a request took 6x their time at 0 ms on 8 workers (issue 27): the
    # workers wait on Cloud 66, so more of them wait side by side, one request each.
    import threading
    import types

    from igor_cli.sandbox import server

    held = threading.Event()
    in_flight = [0, 0]  # now, most
    lock = threading.Lock()

    def hold(seconds: float) -> None:  # the simulator's latency: held until counted
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        held.wait(20)
        with lock:
            in_flight[0] -= 1

    clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if n[0] != "_"})
    clock.sleep = hold
    monkeypatch.setattr(server, "time", clock)
    bot.start()
    sim.latency = 0.001
    try:
        threads = [bot.mention("list", user=f"U0{n:03d}") for n in range(24)]
        assert wait_until(lambda: in_flight[1] >= 20, timeout=20), in_flight
    finally:
        held.set()
    replies = bot.replies(len(threads), timeout=30)
    assert {call.params["thread_ts"] for call in replies} >= set(threads)
