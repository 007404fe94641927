"""Stack operations (restart, maintenance, clear-caches, pause, resume): one POST to
`/stacks/{id}/actions` each when allowed, none when refused, in the shell, the chat
console and Slack; and following the action they start to its end."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from igor_cli.chat.bridge import Bridge
from igor_cli.chat.console import run_console
from igor_cli.chat.guard import Signer, rules_from_config
from igor_cli.config import Environment
from igor_cli.identity import Origin
from igor_cli.sandbox import Simulator
from tests.conftest import Igor, RunningBot, rendered, wait_until
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack
from tests.test_guard import ALICE, BOB, DEPLOYS, button_value, click, ephemerals

# Each command as typed, and the body igor posts for it.
ALLOWED = {
    "restart": (("restart", "-s", "blog"), {"command": "restart"}),
    "restart -v": (
        ("restart", "-s", "api", "-v", "web"),
        {"command": "service_restart", "service_name": "web"},
    ),
    "maintenance on": (
        ("maintenance", "on", "-s", "blog"),
        {"command": "maintenance_mode", "value": "1"},
    ),
    "clear-caches": (("clear-caches", "-s", "blog"), {"command": "clear_caches"}),
    "pause": (
        ("pause", "-s", "api", "-v", "worker"),
        {"command": "service_pause", "service_name": "worker"},
    ),
    "resume": (
        ("resume", "-s", "api", "-v", "worker"),
        {"command": "service_resume", "service_name": "worker"},
    ),
}


def posts(sim: Simulator) -> int:
    """The stack actions asked of Cloud 66 (and never a deploy instead)."""
    assert sim.count("POST", "/deployments") == 0
    return sim.count("POST", "/actions")


def bodies(sim: Simulator) -> list[dict[str, Any]]:
    return [r.body for r in sim.requests if r.method == "POST" and r.path.endswith("/actions")]


def write_config(text: str) -> None:
    Path(Environment().config_path()).write_text(text, encoding="utf-8")


# -- the shell ------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(ALLOWED))
def test_each_operation_posts_once_and_says_what(sim: Simulator, igor: Igor, case: str) -> None:
    words, body = ALLOWED[case]
    dry = igor(*words, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert (
        "Dry run: igor would ask Cloud 66 to" in dry.stdout and "Nothing was posted" in dry.stdout
    )
    assert f"command={body['command']}" in dry.stdout
    assert posts(sim) == 0

    ran = igor(*words, "--json")
    assert ran.exit_code == 0, ran.output
    said = json.loads(ran.stdout)
    assert said["result"] == "started" and said["posted"] is True
    assert said["command"] == body["command"]
    assert said["operation"] == case.removesuffix(" -v")
    assert isinstance(said["async_action_id"], int)
    assert posts(sim) == 1
    assert bodies(sim) == [body]


def test_restart_follows_the_action_to_its_end(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    ran = igor("restart", "-s", "api", "-v", "web", "--follow")
    assert ran.exit_code == 0, ran.output
    assert "Asked Cloud 66 to restart service web of api (production): action" in ran.stdout
    assert "Restart of service web of api (production) succeeded in 20s" in ran.stdout
    assert posts(sim) == 1
    sim.set_failing("blog", "production")
    failed = igor("clear-caches", "-s", "blog", "--follow", "--json")
    assert failed.exit_code == 1, failed.output
    events = [json.loads(line) for line in failed.stdout.splitlines()]
    assert events[0]["event"] == "operation" and events[0]["operation"] == "clear-caches"
    assert events[-1]["event"] == "finished" and events[-1]["state"] == "failed"
    assert events[-1]["async_action_id"] == events[0]["async_action_id"]
    assert posts(sim) == 2


def test_maintenance_mode_shows_in_list_once_cloud66_says_so(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    assert (
        igor("maintenance", "-s", "blog").stdout
        == "blog (production) is not in maintenance mode.\n"
    )
    assert igor("maintenance", "on", "blog", "--follow").exit_code == 0
    listed = igor("list", "-s", "blog", "--json")
    assert json.loads(listed.stdout)[0]["maintenance_mode"] is True
    assert "Deployed successfully (maintenance mode)" in igor("list", "-s", "blog").stdout
    again = igor("maintenance", "on", "blog")
    assert again.exit_code == 0 and "already in maintenance mode" in again.stdout
    assert posts(sim) == 1  # already so: not asked again
    assert igor("maintenance", "off", "blog", "--follow").exit_code == 0
    assert json.loads(igor("list", "-s", "blog", "--json").stdout)[0]["maintenance_mode"] is False
    assert posts(sim) == 2
    wrong = igor("maintenance", "up", "-s", "blog")
    assert wrong.exit_code == 2 and "Say `maintenance on` or `maintenance off`" in wrong.output
    assert "[on|off] [STACK]" in igor("maintenance", "blog").stderr  # the usage says the order


def test_services_on_a_classic_stack_are_refused_before_any_post(
    sim: Simulator, igor: Igor
) -> None:
    for words in (
        ("pause", "-s", "blog", "-v", "web"),
        ("resume", "-s", "blog", "-v", "web"),
        ("restart", "-s", "blog", "-v", "web"),
    ):
        ran = igor(*words)
        assert ran.exit_code == 1, ran.output
        assert "blog (production) is not a docker stack" in ran.stderr
    assert igor("pause", "-s", "api", "-v", "nosuch").exit_code == 1
    missing = igor("pause", "-s", "api")
    assert missing.exit_code == 2 and "--service" in missing.stderr
    assert igor("restart", "-s", "api", "-v", "web,worker").exit_code == 2
    assert posts(sim) == 0
    assert sim.count("GET", "/services") == 1  # only for the docker stack's unknown service


def test_a_deploying_stack_is_left_alone_unless_said(sim: Simulator, igor: Igor) -> None:
    running = sim.start_foreign_deployment("blog", "production", triggered_by="carol@example.com")
    ran = igor("restart", "-s", "blog")
    assert ran.exit_code == 1
    assert f"blog (production) is deploying (deployment {running}, started by carol" in ran.stderr
    assert "Nothing was posted" in ran.stderr and "--during-deploy" in ran.stderr
    assert json.loads(igor("restart", "-s", "blog", "--json").stdout)["result"] == "deploying"
    assert posts(sim) == 0
    assert igor("restart", "-s", "blog", "--during-deploy").exit_code == 0
    assert posts(sim) == 1


def test_locks_and_freezes_hold_operations_back(
    sim: Simulator, igor: Igor, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    igor.account = "alice"
    assert igor("lock", "-s", "blog", "--reason", "db work").exit_code == 0
    igor.account = "bob"
    for words, _ in ALLOWED.values():
        if "blog" not in words:
            continue
        ran = igor(*words)
        assert ran.exit_code == 1 and "blog (production) is locked by alice@" in ran.stderr
    assert posts(sim) == 0
    igor.account = "alice"
    assert igor("restart", "-s", "blog").exit_code == 0
    assert posts(sim) == 1

    import socket

    bob = f"bob@{socket.gethostname()}"
    write_config(
        '[[freeze]]\nenvironments = ["production"]\nfrom = 2026-01-01\nuntil = 2027-01-01\n'
        f'message = "Audit"\nbreak_glass = ["{bob}"]\n'
    )
    igor.account = "bob"
    frozen = igor("restart", "-s", "api", "-v", "web")
    assert frozen.exit_code == 1 and "api (production) is frozen until" in frozen.stderr
    assert posts(sim) == 1
    broken = igor("restart", "-s", "api", "-v", "web", "--break-glass", "--reason", "hung")
    assert broken.exit_code == 0, broken.output
    assert posts(sim) == 2


# -- chat: the bridge and the console --------------------------------------------------------


def test_chat_rules_and_confirmations_hold_operations_back(
    sim: Simulator, clock: FakeClock
) -> None:
    rules = {"slack": {
        "confirm": ["production"],
        "allow": [{"commands": ["restart", "maintenance", "clear-caches"], "users": ["U0ALICE"]}],
    }}  # fmt: skip
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    bridge = Bridge(env, rules=rules_from_config(rules), signer=Signer(b"k" * 32))
    alice, bob = Origin("slack", "U0ALICE", "Ev1"), Origin("slack", "U0BOB", "Ev2")
    refused = bridge.handle("restart -s blog", bob, "C1")
    assert refused.status == "refused" and "restart" in rendered(refused).text
    no_rule = bridge.handle("pause -s api -v web", alice, "C1")
    assert no_rule.status == "refused"
    asked = bridge.handle("maintenance on -s blog", alice, "C1")
    assert asked.status == "confirm"
    assert "turn maintenance mode on for *blog* in *production*?" in json.dumps(
        rendered(asked).blocks
    )
    assert posts(sim) == 0  # unconfirmed: nothing
    assert asked.pending is not None
    done = bridge.confirmed(asked.pending)
    assert done.status == "ok" and done.fields["operation"] == "maintenance on"
    assert done.fields["cloud66_command"] == "maintenance_mode"
    assert posts(sim) == 1
    env.close()


def test_the_console_runs_an_operation_and_tells_how_it_ended(
    sim: Simulator, clock: FakeClock
) -> None:
    out = io.StringIO()
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    text = "restart -s blog\npause -s blog -v web\nclear-caches -s blog --dry-run\n"
    assert run_console(env, "me@laptop", io.StringIO(text), out) == 0
    said = out.getvalue()
    assert "Asked Cloud 66 to restart blog (production): action" in said
    assert "Restart of blog (production) succeeded in" in said
    assert "blog (production) is not a docker stack" in said
    assert "Dry run: igor would ask Cloud 66 to clear the caches of blog" in said
    assert posts(sim) == 1


# -- Slack ------------------------------------------------------------------------------------

GUARDED = f"""
[slack]
confirm = ["production"]

[[slack.allow]]
commands = ["restart", "maintenance", "clear-caches", "pause", "resume", "lock"]
channels = ["{DEPLOYS}"]
"""


def test_slack_asks_runs_once_and_follows_in_the_thread(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(GUARDED)
    monkeypatch.setenv("IGOR_SIGNING_KEY", "a-key-shared-by-every-replica-of-igor")
    bot.start()
    ts = bot.mention("restart -s api -v web", user=ALICE)
    question = bot.replies(1)[0].params
    assert (
        "restart service *web* of *api* in *production*?" in question["blocks"][0]["text"]["text"]
    )
    assert [e["text"]["text"] for e in question["blocks"][1]["elements"]] == ["Restart", "Cancel"]
    assert posts(sim) == 0
    value = button_value(slack)
    slack.wait_ack(click(slack, BOB, value))
    assert "Only <@U0ALICE> can confirm this." in ephemerals(slack)[0]
    assert posts(sim) == 0
    slack.wait_ack(click(slack, ALICE, value))
    started = bot.replies(2)[1].params
    assert "Asked Cloud 66 to restart service web of api (production)" in started["text"]
    assert started["thread_ts"] == ts
    assert posts(sim) == 1
    ended = bot.replies(3, timeout=15)[2].params
    assert "<@U0ALICE> Restart of service web of api (production) succeeded" in ended["text"]
    assert ended["thread_ts"] == ts

    bot.mention("pause -s blog -v web", user=ALICE)  # not docker: refused before any POST
    assert "not a docker stack" in bot.replies(4)[3].params["text"]
    bot.mention("restart -s blog", user=ALICE, channel="C0ELSEWHERE")  # no rule there
    assert wait_until(lambda: slack.calls_to("chat.postEphemeral"))
    time.sleep(0.3)
    assert posts(sim) == 1


def test_slack_refuses_an_operation_on_a_stack_someone_else_locked(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    bot.start()
    bot.mention("lock -s blog --reason 'release train'", user="U0ALICE")
    bot.replies(1)
    bot.mention("clear-caches -s blog", user="U0BOB")
    reply = bot.replies(2)[1]
    assert "locked by" in reply.params["text"] and "release train" in reply.params["text"]
    bot.mention("maintenance on -s blog", user="U0BOB")
    assert "locked by" in bot.replies(3)[2].params["text"]
    assert posts(sim) == 0


# -- following any async action: takeover by another replica -----------------------------


def test_a_replica_takes_over_an_operations_follow_and_names_it(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, igor: Igor, state_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A thread waiting for a restart whose replica died hears its end from another, in
    the restart's words (not a deployment's), and the job carries them in the store."""
    from igor_cli.chat.leases import FollowJob
    from igor_cli.cloud66.models import Stack
    from igor_cli.core.follow import Followed
    from igor_cli.state import open_store
    from tests.conftest import next_ts

    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    ran = igor("restart", "-s", "api", "-v", "web", "--json")
    facts = json.loads(ran.stdout)
    stack = Stack.from_api(facts["stack"])
    followed = Followed(stack, str(facts["async_action_id"]), what="Restart of service web of "
                        "api (production)", doing="Restarting web")  # fmt: skip
    thread = next_ts()
    job = FollowJob.of(stack, followed.action_id, DEPLOYS, thread, ALICE, followed.what,
                       followed.doing)  # fmt: skip
    assert FollowJob.loads(job.dumps()) == job
    store = open_store(state_url)

    def told() -> list[str]:
        return [
            str(c.params.get("text"))
            for c in slack.calls_to("chat.postMessage")
            if c.params.get("thread_ts") == thread
        ]

    try:
        assert store.claim(job.key, job.dumps(), 3600)  # its lease died with its replica
        bot.start()
        assert wait_until(told, timeout=15), slack.calls_to("chat.postMessage")
    finally:
        store.close()
    said = told()
    assert len(said) == 1
    assert "<@U0ALICE> Restart of service web of api (production) succeeded in 20s" in said[0]
    assert "Deploy" not in said[0]
    assert posts(sim) == 1  # the other replica only looked


def test_progress_names_what_runs() -> None:
    from igor_cli.cloud66.models import Stack
    from igor_cli.core.follow import Followed, Progress
    from igor_cli.render import sentences

    stack = Stack.from_api({"uid": "u1", "name": "api", "environment": "production"})
    watched = Followed(stack, "9001", what="Restart of api (production)", doing="Restarting")
    assert sentences.watching_line(watched, 12.0) == "Restarting: api (production)… 12s"
    running = Progress(70.0, False)
    assert sentences.progress_step(stack, running, watched.doing).startswith("Restarting: api")
    timed_out = Progress(3600.0, False, timed_out=True)
    assert "Restart of api (production) still runs after" in sentences.progress_sentence(
        stack, timed_out, watched.what, watched.doing
    )
    failed = Progress(30.0, True, False, "Action failed")
    said = sentences.progress_sentence(stack, failed, watched.what, watched.doing)
    assert said == "Restart of api (production) failed after 30s: Action failed."
    assert sentences.after_failure(stack, watched.doing) == []  # no `igor deploy` to retry
    # A deployment reads as before.
    assert sentences.progress_step(stack, running) == "Deploying: api (production)… 1 min so far."


# -- completion ------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_tab_knows_the_operations_and_the_services_of_the_stack_typed(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch, shell: str
) -> None:
    from tests.test_completion import values, via_igor

    assert igor("list").exit_code == 0  # the stacks, in the completion cache
    assert igor("pause", "-s", "api", "-v", "web", "--dry-run").exit_code == 0  # its services
    listed = set(values(via_igor(shell, "igor ", monkeypatch)))
    assert {"restart", "maintenance", "clear-caches", "pause", "resume"} <= listed
    assert values(via_igor(shell, "igor restart -s api -v ", monkeypatch)) == ["web", "worker"]
    assert values(via_igor(shell, "igor pause -s api -v w", monkeypatch)) == ["web", "worker"]
    assert values(via_igor(shell, "igor resume -s blog -v ", monkeypatch)) == []
    assert values(via_igor(shell, "igor maintenance ", monkeypatch))[:2] == ["on", "off"]
    options = set(values(via_igor(shell, "igor restart --", monkeypatch)))
    assert {"--service", "--follow", "--dry-run", "--during-deploy"} <= options
