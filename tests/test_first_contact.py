"""First contact: what works against the real Cloud 66 and Slack, not only against kind fakes.

The simulator now enforces token scopes, lists in either order across pages and
throttles by the hour; the fake Slack enforces channel membership, the limits of
a `response_url`, parent-first threads and rate limits. Each test here failed
against igor before the fix it names.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from igor_cli.chat.console import run_console
from igor_cli.chat.slack.manifest import bot_scopes, manifest
from igor_cli.chat.slack.updates import Updater
from igor_cli.cloud66.client import Cloud66Client
from igor_cli.config import Environment
from igor_cli.core.follow import FollowPolicy, follow
from igor_cli.render import sentences
from igor_cli.render.slack import SlackMessage
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import Igor, RunningBot, next_ts, rendered
from tests.fakes.clock import FakeClock
from tests.fakes.slack import DEFAULT_BOT_SCOPES, FakeSlack

# -- Cloud 66 ------------------------------------------------------------------------


def test_register_works_with_a_token_without_the_users_scope(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.add_token("pat-public-and-redeploy-1234", ["public", "redeploy"])
    monkeypatch.delenv("IGOR_CLOUD66_TOKEN")
    ran = igor("register", "--stdin", input="pat-public-and-redeploy-1234\n")
    assert ran.exit_code == 0, ran.output
    assert "account name not shown (it needs the users scope), 7 stacks" in ran.stdout
    assert sim.count("GET", "/stacks") >= 1


def test_a_missing_scope_names_it_and_where_tokens_are_made(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.add_token("pat-read-only-5678", ["public"])
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "pat-read-only-5678")
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 4
    assert "redeploy" in ran.stderr
    assert "Personal Access Token" in ran.stderr
    assert sim.count("POST", "/deployments") == 1  # refused by Cloud 66, not retried


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_cancel_finds_the_live_deployment_behind_a_long_history(
    order: str, sim: Simulator, igor: Igor
) -> None:
    sim.order = order
    sim.add_history("blog", "production", 100)
    live = sim.start_foreign_deployment("blog", "production")
    ran = igor("cancel", "-s", "blog")
    assert ran.exit_code == 0, ran.output
    assert f"Cancelling deployment {live} of blog (production)" in ran.stdout
    assert [r.path for r in sim.requests if r.method == "DELETE"] == [
        f"/api/3/stacks/{sim.stack('blog', 'production')['uid']}/deployments/{live}"
    ]


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_a_deploy_behind_a_long_history_sees_igors_running_deployment(
    order: str, sim: Simulator, igor: Igor
) -> None:
    sim.order = order
    sim.add_history("blog", "production", 70)
    assert igor("deploy", "-s", "blog").exit_code == 0
    again = igor("deploy", "-s", "blog")
    assert again.exit_code == 1
    assert "already deploying" in again.stderr
    assert sim.count("POST", "/deployments") == 1


def test_services_on_a_stack_that_is_not_a_docker_stack_are_refused_first(
    sim: Simulator, igor: Igor
) -> None:
    ran = igor("deploy", "-s", "blog", "-v", "web")
    assert ran.exit_code == 1
    assert "not a docker stack" in ran.stderr
    assert sim.count("GET", "/services") == 0
    assert sim.count("POST", "/deployments") == 0
    assert sim.count("GET", "/deployments") == 0


def test_deploy_and_cancel_use_the_cached_uid_instead_of_listing(
    sim: Simulator, igor: Igor
) -> None:
    sim.add_stacks(200)
    assert igor("list").exit_code == 0  # fills the completion cache
    sim.reset_requests()
    assert igor("deploy", "-s", "blog").exit_code == 0
    assert igor("cancel", "-s", "blog", "-e", "production").exit_code == 0
    paths = [r.path for r in sim.requests]
    assert "/api/3/stacks" not in paths  # no listing of every stack
    # 4 for deploy (its stack's record, deployments and actions at once; the POST), 4 for
    # cancel.
    assert len(sim.requests) <= 8, paths


def test_a_wrong_cache_falls_back_to_the_listing(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    assert igor("list").exit_code == 0
    cache = next((Path(Environment().cache_dir()) / "completion").glob("stacks-*.json"))
    data = json.loads(cache.read_text())
    for entry in data["stacks"]:
        if entry["name"] == "blog":
            entry["uid"] = "0" * 32  # deleted since, or never right
    cache.write_text(json.dumps(data))
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 0, ran.output
    assert sim.count("GET", "/stacks") >= 1
    assert sim.count("POST", "/deployments") == 1


def test_a_stale_cache_is_not_trusted_without_an_environment(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    assert igor("list").exit_code == 0
    clock.advance(3600)  # a stack named blog may have appeared in staging since
    sim.reset_requests()
    assert igor("deploy", "-s", "blog").exit_code == 0
    assert "/api/3/stacks" in [r.path for r in sim.requests]


def test_a_cancelled_deployment_reads_cancelled(sim: Simulator, clock: FakeClock) -> None:
    uid = sim.stack("blog", "production")["uid"]
    with Cloud66Client(SANDBOX_TOKEN, sim.url) as client:
        answer = client.deploy(uid, user_reference="igor:cli:me")
        live = next(d for d in client.newest_deployments(uid).items if d.is_deploying)
        client.cancel(uid, live.id)
        policy = FollowPolicy(interval=1, clock=clock, sleep=clock.sleep)
        last = list(follow(client, uid, answer.async_action_id, policy))[-1]
    assert last.cancelled and last.exit_code == 3  # cancelled: not a failure, not a success
    stack = next(s for s in Cloud66Client(SANDBOX_TOKEN, sim.url).stacks() if s.uid == uid)
    said = sentences.progress_sentence(stack, last)
    assert "was cancelled (by sandbox@igor.example) after" in said
    assert "failed" not in said


def test_console_request_ids_differ_between_sessions(sim: Simulator, clock: FakeClock) -> None:
    import io

    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    for _ in range(2):
        run_console(env, "me@laptop", io.StringIO("deploy -s api --no-wait\n"), io.StringIO())
        clock.advance(600)
    references = [r.body["user_reference"] for r in sim.requests if r.method == "POST"]
    assert len(references) == 2
    assert references[0] != references[1]


# -- Slack ---------------------------------------------------------------------------


def test_a_slash_command_outcome_outlives_its_response_url(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    sim.deploy_seconds = 3600  # type: ignore[misc]  # longer than a response_url lives
    bot.start()
    slack.push_slash_command("deploy -s blog", channel_id="C0ELSEWHERE")
    started = slack.wait_for_calls("response_url", 1)[0]
    assert "Deploy started" in started.params["text"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        outcome = [
            c for c in slack.calls
            if "Deployed blog" in str(c.params.get("text")) and c.status == 200 and not c.error
        ]  # fmt: skip
        if outcome:
            break
        time.sleep(0.05)
    assert outcome, [(c.method, c.status, c.error) for c in slack.calls]
    assert "<@U0ALICE>" in outcome[0].params["text"]
    assert outcome[0].method == "chat.postMessage"  # the response_url had expired
    assert outcome[0].params["channel"] == "U0ALICE"  # and igor is not in C0ELSEWHERE


def test_a_slash_confirmation_where_igor_is_not_a_member_reaches_the_requester(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    Environment().config_path().write_text('[slack]\nconfirm = ["production"]\n')
    monkeypatch.setenv("IGOR_SIGNING_KEY", "k" * 32)
    bot.start()
    slack.push_slash_command("deploy -s blog", channel_id="C0ELSEWHERE")
    question = slack.wait_for_calls("response_url", 1)[0]
    actions = next(b for b in question.params["blocks"] if b["type"] == "actions")
    value = actions["elements"][0]["value"]
    click_url = slack.response_url()
    slack.wait_ack(slack.push_interactive({
        "type": "block_actions", "user": {"id": "U0ALICE"}, "channel": {"id": "C0ELSEWHERE"},
        "container": {"type": "message", "channel_id": "C0ELSEWHERE", "message_ts": next_ts()},
        "response_url": click_url,
        "actions": [{"action_id": "igor_confirm", "value": value, "type": "button"}],
    }))  # fmt: skip
    deadline = time.monotonic() + 20
    delivered: list[str] = []
    while time.monotonic() < deadline and not any("Deployed blog" in t for t in delivered):
        delivered = [
            str(c.params.get("text")) for c in slack.calls
            if c.method in ("response_url", "chat.postMessage") and c.status == 200 and not c.error
        ]  # fmt: skip
        time.sleep(0.05)
    assert any("Confirmed by" in t for t in delivered)
    assert any("Deploy started: blog (production)." in t for t in delivered)
    assert any("Deployed blog" in t for t in delivered), delivered
    assert sim.count("POST", "/deployments") == 1


def test_igor_asks_for_no_chat_write_public_and_the_readme_says_why() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    listed = re.search(r"only\s+the bot scopes the code uses \(([^)]*)\)", readme)
    assert listed is not None
    assert sorted(re.findall(r"`([^`]+)`", listed[1])) == bot_scopes()
    assert "chat:write.public" not in manifest()["oauth_config"]["scopes"]["bot"]
    assert re.search(r"igor does not ask for\s+`chat:write.public`", readme)
    assert set(bot_scopes()) == DEFAULT_BOT_SCOPES  # the fake Slack's app is made from it


def test_where_igor_is_no_member_a_failed_response_url_leaves_a_direct_message(
    bot: RunningBot, slack: FakeSlack
) -> None:
    # Slack's own rule (not an injected error) refuses the channel: without
    # chat:write.public, the requester's DM is what is left.
    bot.start()
    slack.fail_next("response_url", status=404)
    slack.push_slash_command("version", channel_id="C0NOTIN")
    posts = slack.wait_for_calls("chat.postMessage", 2, timeout=10)
    assert [(c.params["channel"], c.error) for c in posts] == [
        ("C0NOTIN", "not_in_channel"),
        ("U0ALICE", None),
    ]
    assert "igor 0.1.0" in posts[1].params["text"]
    assert len(slack.calls_to("response_url")) == 1 and not slack.is_member("C0NOTIN")


def test_a_silent_connection_is_replaced(bot: RunningBot, slack: FakeSlack) -> None:
    bot.start()
    opened = slack.connections_opened
    slack.go_silent()
    started = time.monotonic()
    slack.wait_connected(count=opened + 1, timeout=10)
    took = time.monotonic() - started
    assert took < 10, took  # two ping intervals, or the 3 s floor, plus a loaded machine
    bot.mention("version")
    assert "igor 0.1.0" in bot.replies(1, timeout=5)[0].params["text"]


def test_a_revoked_app_token_ends_serve_with_exit_4(
    bot: RunningBot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="igor")
    bot.start()
    slack.revoke_app_token()
    assert bot.thread is not None
    bot.thread.join(15)
    assert not bot.thread.is_alive()
    assert bot.exit_code == 4
    assert "Slack rejected the Slack app-level token" in caplog.text
    assert slack.app_token not in caplog.text


@pytest.mark.timeout(240)
def test_a_burst_of_2000_is_each_acked_and_answered_once(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    bot.start()
    events = []
    for _ in range(2000):
        ts = next_ts()
        events.append({"type": "app_mention", "user": "U0ALICE", "channel": "C0BURST",
                       "ts": ts, "text": f"<@{slack.bot_user_id}> list -s shop"})  # fmt: skip
    envelopes = slack.push_events(events)
    slack.wait_acks(envelopes, timeout=90)
    posts = slack.wait_for_calls("chat.postMessage", 2000, timeout=180)
    by_thread: dict[str, int] = {}
    for post in posts:
        by_thread[post.params["thread_ts"]] = by_thread.get(post.params["thread_ts"], 0) + 1
    assert len(by_thread) == 2000
    assert set(by_thread.values()) == {1}
    busy = sum("busy" in p.params["text"] for p in posts)
    answered = sum("shop (production)" in p.params["text"] for p in posts)
    assert busy + answered == 2000
    print(f"burst of 2,000: {answered} answered, {busy} told busy, 0 lost")


def test_progress_edits_go_out_only_when_their_text_changes() -> None:
    sent: list[str] = []

    def edit(said: SlackMessage) -> None:
        sent.append(said.text)

    updater = Updater(per_minute=60_000)
    try:
        for text in ("a", "a", "b", "b", "b", "c"):
            updater.offer(edit, SlackMessage(text))
            time.sleep(0.01)
        deadline = time.monotonic() + 2
        while (not sent or sent[-1] != "c") and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        updater.stop()
    assert sent == ["a", "b", "c"]


def test_a_backlog_of_edits_goes_out_in_groups_at_the_same_pace() -> None:
    # Five edits one after another, then a pause as long as theirs: a fifth of the
    # wake-ups, never faster than the limit (at most 44 in any minute at 40 a minute).
    sent: list[tuple[str, float]] = []

    def edit_of(name: str) -> Callable[[SlackMessage], None]:
        return lambda said: sent.append((name, time.monotonic()))

    updater = Updater(per_minute=600)  # a 0.1 s gap
    try:
        for number in range(12):
            updater.offer(edit_of(f"m{number}"), SlackMessage(f"text {number}"))
        deadline = time.monotonic() + 10
        while len(sent) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        updater.stop()
    at = [when for _, when in sent]
    assert sorted(name for name, _ in sent) == sorted(f"m{n}" for n in range(12))
    assert at[4] - at[0] < 0.1 and at[9] - at[5] < 0.1  # each group at once
    assert at[5] - at[0] >= 0.45 and at[10] - at[5] >= 0.45  # then the pause it earned


def test_outcome_edits_go_before_a_backlog_of_progress_edits() -> None:
    # A burst of followed deploys queues progress edits behind Slack's pace; a deployment
    # that ended must not read "deploying" until that backlog is through. A progress
    # edit offered after an outcome neither replaces nor follows it.
    sent: list[tuple[str, str]] = []
    edits = {
        name: (lambda said, name=name: sent.append((name, said.text)))
        for name in ("p0", "p1", "p2", "p3", "p4", "p5", "p6", "ended")
    }
    updater = Updater(per_minute=600)  # a 0.1 s gap: groups of five, then 0.5 s
    try:
        for name in ("p0", "p1", "p2", "p3", "p4", "p5", "p6", "ended"):
            updater.offer(edits[name], SlackMessage(f"{name} deploying"))
        updater.offer(edits["ended"], SlackMessage("ended: deployed"), final=True)
        updater.offer(edits["ended"], SlackMessage("ended deploying, late"))
        deadline = time.monotonic() + 10
        while len(sent) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
    finally:
        updater.stop()
    # The first group may have gone out before the outcome was offered (p0 at least).
    assert ("ended", "ended: deployed") in sent
    assert ("ended", "ended deploying, late") not in sent
    assert sent.index(("ended", "ended: deployed")) <= 5
    assert sorted(name for name, _ in sent) == sorted(edits)  # each message edited once


def test_many_watchers_stay_under_slacks_update_limit(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    # 60 people follow one deployment from 60 threads: one poll loop; edits are
    # sent only when their text changes, so the fake's 50-a-minute limit is never hit.
    sim.deploy_seconds = 100_000  # type: ignore[misc]
    bot.start()
    for number in range(60):
        bot.mention("deploy -s blog", channel=f"C0W{number:03d}", user=f"U0P{number:03d}")
    slack.wait_for_calls("chat.postMessage", 60, timeout=30)
    time.sleep(1)
    assert sim.count("POST", "/deployments") == 1
    polled = {r.path for r in sim.requests if "/actions/" in r.path}
    assert len(polled) == 1  # one poll loop for all sixty
    assert [c for c in slack.calls_to("chat.update") if c.status == 429] == []


def test_following_slows_down_as_the_hourly_budget_runs_out() -> None:
    policy = FollowPolicy(interval=15, hourly_budget=1800)
    assert policy.interval_for(1) == 15
    assert policy.interval_for(20) == 40  # 20 loops share 1,800 polls an hour
    assert policy.interval_for(1, remaining=2500) == 15
    assert policy.interval_for(1, remaining=300) == 18  # 200 spare requests for an hour
    assert policy.interval_for(1, remaining=50) == policy.max_backoff


def test_private_use_characters_from_cloud66_never_become_mentions(
    sim: Simulator, clock: FakeClock
) -> None:
    from igor_cli.chat.bridge import Bridge
    from igor_cli.identity import Origin

    sim.add_stacks(1, prefix="\ue000@U0BOB\ue001")
    bridge = Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))
    reply = bridge.handle("list", Origin("slack", "U0ALICE", "r-1"), "C1")
    said = rendered(reply).text + json.dumps(rendered(reply).blocks)
    assert "<@U0BOB>" not in said
    assert "@U0BOB" in said  # the name is shown, as text


def test_twenty_shells_following_for_an_hour_stay_within_one_tokens_requests(
    clock: FakeClock,
) -> None:
    from igor_cli.terminal import shell_follow_policy

    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    policy = shell_follow_policy(env)
    assert policy.interval_for(1, elapsed=0) == env.follow_interval  # quick looks at first
    assert policy.interval_for(1, elapsed=120) == 30  # then 120 an hour
    with (
        Simulator(clock=clock, deploy_seconds=7200, rate_limit=None) as sim,
        Cloud66Client(SANDBOX_TOKEN, sim.url) as client,
    ):
        uid = sim.stack("blog", "production")["uid"]
        started = client.deploy(uid, user_reference="igor:shell:test")
        hour = FollowPolicy(**{**vars(policy), "timeout": 3600.0})
        seen = list(follow(client, uid, started.async_action_id, hour))
        looks = sim.count("GET", f"/actions/{started.async_action_id}")
    assert seen[-1].timed_out and not seen[-1].finished
    assert looks == len(seen)
    # Each shell knows of no other: twenty cost twenty times one, and leave room
    # for the commands people type.
    assert 20 * looks <= 3000 - 300
