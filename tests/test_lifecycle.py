"""A deployment's life as users see it: cancel, the outcome of a follow, list, watch, --json."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests

from igor_cli.chat.console import run_console
from igor_cli.cloud66.models import Deployment, Stack, StackHealth, StackStatus
from igor_cli.config import Environment, os_account
from igor_cli.features.stacks import StackDeploys, last_activity
from igor_cli.features.watch import WatchOutcome
from igor_cli.render.terminal import TerminalRenderer, _TickingLine
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from igor_cli.terminal import main
from tests.conftest import Igor, RunningBot
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack


def deletes(sim: Simulator) -> list[str]:
    """The deployment ids igor asked Cloud 66 to cancel."""
    return [r.path.rsplit("/", 1)[1] for r in sim.requests if r.method == "DELETE"]


def queued_behind_dana(sim: Simulator, igor: Igor) -> int:
    """Dana deploys blog from the dashboard; igor's deploy queues behind it."""
    foreign = sim.start_foreign_deployment("blog", "production", triggered_by="dana@example.com")
    ran = igor("deploy", "-s", "blog")
    assert "queued behind the running deployment" in ran.stdout
    return foreign


# -- 1. cancel says which deployment, and never guesses --------------------------


def test_cancel_refuses_to_guess_between_a_running_and_a_queued_deployment(
    sim: Simulator, igor: Igor
) -> None:
    foreign = queued_behind_dana(sim, igor)
    ran = igor("cancel", "-s", "blog")
    assert ran.exit_code == 1
    assert deletes(sim) == []  # nothing was cancelled
    assert f"deployment {foreign} is running (started by dana@example.com via web" in ran.stderr
    assert "igor's deploy asked for by" in ran.stderr and "waits behind it" in ran.stderr
    assert "Nothing was cancelled" in ran.stderr
    assert "Cloud 66's API cannot cancel a waiting deploy" in ran.stderr
    assert "`igor cancel -s blog -e production --running`" in ran.stderr
    assert "--queued" not in ran.output  # nothing igor could do: never offered


def test_cancel_running_names_whoever_started_it_not_igors_requester(
    sim: Simulator, igor: Igor
) -> None:
    foreign = queued_behind_dana(sim, igor)
    ran = igor("cancel", "-s", "blog", "--running")
    assert ran.exit_code == 0
    assert f"Cancelling deployment {foreign} of blog (production)" in ran.stdout
    assert "started by dana@example.com via web" in ran.stdout
    assert "through igor" not in ran.stdout
    assert deletes(sim) == [str(foreign)]


def test_cancel_queued_says_cloud66_cannot_and_sends_nothing(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    foreign = queued_behind_dana(sim, igor)
    ran = igor("cancel", "-s", "blog", "--queued")
    assert ran.exit_code == 1
    assert "Cloud 66's API cannot cancel a deploy that waits to start" in ran.stderr
    assert "Cancel it in the Cloud 66 dashboard" in ran.stderr
    assert deletes(sim) == []
    clock.advance(90)  # dana's deployment ended at 60 s; igor's runs behind it
    shown = json.loads(igor("list", "-s", "blog", "--json").stdout)[0]
    assert shown["live_deployment"] is not None
    assert shown["last_deploy"]["id"] == foreign  # Cloud 66's type: a number


def test_queued_is_no_longer_offered_in_help(igor: Igor) -> None:
    shown = igor("cancel", "--help").stdout
    assert "--running" in shown and "--id" in shown
    assert "--queued" not in shown


def test_cancel_by_id_and_only_one_choice_at_a_time(sim: Simulator, igor: Igor) -> None:
    foreign = queued_behind_dana(sim, igor)
    both = igor("cancel", "-s", "blog", "--running", "--id", str(foreign))
    assert both.exit_code == 2
    assert "Choose one of --running and --id." in both.stderr
    ran = igor("cancel", "-s", "blog", "--id", str(foreign))
    assert ran.exit_code == 0
    assert f"Cancelling deployment {foreign} of blog (production)" in ran.stdout
    assert deletes(sim) == [str(foreign)]


def test_cancel_by_id_of_a_finished_deployment_sends_nothing(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    foreign = sim.start_foreign_deployment("blog", "production")
    clock.advance(120)  # it is over
    ran = igor("cancel", "-s", "blog", "--id", str(foreign))
    assert ran.exit_code == 1
    assert f"Deployment {foreign} of blog (production) is over (succeeded" in ran.stderr
    assert "Nothing was sent" in ran.stderr
    assert "Cancelling" not in ran.output
    assert deletes(sim) == []
    missing = igor("cancel", "-s", "blog", "--id", "999999")
    assert missing.exit_code == 1
    assert "blog (production) has no deployment 999999" in missing.stderr
    assert deletes(sim) == []


def test_cancel_of_igors_own_deployment_names_its_requester(sim: Simulator, igor: Igor) -> None:
    igor("deploy", "-s", "blog")
    ran = igor("cancel", "-s", "blog")
    assert ran.exit_code == 0
    assert "through igor" in ran.stdout
    assert len(deletes(sim)) == 1


def test_chat_gets_the_same_choice(
    bot: RunningBot,
    slack: FakeSlack,
    sim: Simulator,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    foreign = sim.start_foreign_deployment("blog", "production", triggered_by="dana@example.com")
    # Following the queued deploy must not end Dana's deployment (in simulated time) meanwhile.
    done, sleep = threading.Event(), clock.sleep
    monkeypatch.setattr(clock, "sleep", lambda seconds: (done.wait(10), sleep(seconds)))
    bot.start()
    bot.mention("deploy -s blog")
    assert "queued behind" in bot.replies(1)[0].params["text"]
    bot.mention("cancel -s blog")
    asked = bot.replies(2)[1].params
    said = asked["text"] + json.dumps(asked["blocks"])
    assert "Nothing was cancelled" in said
    assert "`cancel -s blog -e production --running`" in said
    assert "--queued" not in said
    assert sim.count("DELETE") == 0
    bot.mention("cancel -s blog --running")
    assert f"Cancelling deployment {foreign}" in bot.replies(3)[2].params["text"]
    assert deletes(sim) == [str(foreign)]
    done.set()


# -- 2. a cancel is a cancel, and list shows what happened last --------------------


def test_a_cancelled_follow_says_by_whom_and_exits_3(
    sim: Simulator, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    uid = sim.stack("blog", "production")["uid"]
    cancelled: list[str] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if not cancelled:  # someone cancels it from the dashboard while igor follows
            auth = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
            live = requests.get(f"{sim.url}/stacks/{uid}/deployments", headers=auth, timeout=5)
            number = next(d["id"] for d in live.json()["response"] if d["is_deploying"])
            requests.delete(f"{sim.url}/stacks/{uid}/deployments/{number}", headers=auth, timeout=5)
            cancelled.append(str(number))

    env = Environment(clock=clock.datetime, monotonic=clock, sleep=sleep)
    code = main(["deploy", "-s", "blog", "--follow"], env)
    out = capsys.readouterr().out
    assert code == 3
    assert "Deployment of blog (production) was cancelled (by sandbox@igor.example)" in out
    assert "failed" not in out
    listed = main(["list", "-s", "blog"], Environment(clock=clock.datetime))
    table = capsys.readouterr().out
    assert listed == 0
    assert f"cancelled · {os_account()} just now" in table  # igor's requester
    assert "Deployed successfully" in table  # Cloud 66's status; LAST DEPLOY says the rest


def test_last_deploy_column_and_json_facts(sim: Simulator, igor: Igor, clock: FakeClock) -> None:
    sim.start_foreign_deployment("blog", "production", triggered_by="dana@example.com")
    ran = igor("list")
    assert "LAST DEPLOY" in ran.stdout
    blog = next(line for line in ran.stdout.splitlines() if line.startswith("blog"))
    assert "running · dana just now" in blog
    legacy = next(line for line in ran.stdout.splitlines() if line.startswith("legacy"))
    assert "failed · sandbox 6d ago" in legacy
    facts = {s["name"]: s for s in json.loads(igor("list", "-s", "blog", "--json").stdout)}
    live = facts["blog"]["live_deployment"]
    assert live["triggered_by"] == "dana@example.com"
    assert live["outcome"] == "running"
    assert facts["blog"]["deployments_read"] is True
    assert facts["blog"]["last_deploy"]["outcome"] == "succeeded"


def test_a_long_list_does_not_read_every_stacks_deployments(sim: Simulator, igor: Igor) -> None:
    sim.add_stacks(40)
    ran = igor("list")
    assert ran.exit_code == 0
    assert sim.count("GET", "/deployments") == 0
    assert "narrow the list with -s or -e" in ran.stderr
    assert igor("list", "-s", "app-000").exit_code == 0
    assert sim.count("GET", "/deployments") == 9  # app-0001 .. app-0009


def test_last_activity_moves_when_a_deployment_starts() -> None:
    then = datetime(2026, 1, 1, tzinfo=UTC)
    stack = Stack("u", "blog", "production", StackStatus.DEPLOYING, StackHealth.BUILDING, True,
                  last_activity=then)  # fmt: skip
    started = then + timedelta(minutes=5)
    live = Deployment("7", "dana@example.com", "Web", started, None, "In progress", True)
    assert last_activity(stack, StackDeploys(live=live)) == started
    assert last_activity(stack, None) == then


# -- 4. a failed deployment says what to do next -----------------------------------


def test_a_failed_follow_shows_the_message_the_dashboard_and_what_next(
    sim: Simulator, igor: Igor
) -> None:
    uid = sim.stack("legacy", "production")["uid"]
    ran = igor("deploy", "-s", "legacy", "--follow")
    assert ran.exit_code == 1
    assert "Deployment of legacy (production) failed after" in ran.stdout
    assert ": Deployment failed." in ran.stdout  # Cloud 66's own words
    link = f"{sim.url.rsplit('/api/', 1)[0]}/stacks/{uid}"
    assert f"See it in Cloud 66: {link}" in ran.stderr
    page = requests.get(link, timeout=5)  # the sandbox's stand-in for the dashboard
    assert page.status_code == 200
    assert "legacy (production)" in page.text
    assert "`igor history -s legacy -e production` to see what ran" in ran.stderr
    assert "`igor deploy -s legacy -e production` to try again" in ran.stderr


def test_a_failed_deployment_in_slack_links_the_dashboard(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    uid = sim.stack("legacy", "production")["uid"]
    bot.start()
    bot.mention("deploy -s legacy")
    final = bot.replies(2, timeout=10)[1].params
    blocks = json.dumps(final["blocks"])
    assert "failed" in final["text"]
    assert f"/stacks/{uid}|Open legacy (production) in Cloud 66>" in blocks
    assert "`history -s legacy -e production` to see what ran" in blocks


def test_a_failed_deployment_in_the_console_says_what_next(
    sim: Simulator, clock: FakeClock
) -> None:
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    out = io.StringIO()
    run_console(env, "me@laptop", io.StringIO("deploy -s legacy\n"), out)
    said = out.getvalue()
    assert "Deployment of legacy (production) failed" in said
    assert "See it in Cloud 66: " in said
    assert "`deploy -s legacy -e production` to try again" in said


# -- 7. --json is for programs ------------------------------------------------------


def test_follow_json_is_json_lines_naming_stack_and_deployment(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "blog", "--follow", "--json")
    assert ran.exit_code == 0
    lines = ran.stdout.splitlines()
    events = [json.loads(line) for line in lines]  # every line a whole document
    assert events[0]["event"] == "deploy"
    assert events[-1]["event"] == "finished"
    assert events[-1]["state"] == "succeeded"
    assert {e["event"] for e in events[1:-1]} == {"progress"}
    for event in events:
        assert event["stack"] == "blog"
        assert event["environment"] == "production"
        assert event["async_action_id"]


def test_an_error_with_json_is_also_a_json_object(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "blgo", "--json")
    assert ran.exit_code == 1
    said = json.loads(ran.stdout)
    assert said["error"] == "stack_not_found"
    assert said["message"] == "No stack named 'blgo'."
    assert said["exit_code"] == 1
    assert "Error:" in ran.stderr  # the diagnostics stay on stderr
    usage = igor("deploy", "--json")
    assert usage.exit_code == 2
    assert json.loads(usage.stdout)["error"] == "usage"
    assert json.loads(usage.stdout)["exit_code"] == 2


def test_version_json(igor: Igor) -> None:
    ran = igor("version", "--json")
    assert ran.exit_code == 0
    assert set(json.loads(ran.stdout)) == {"version"}


# -- 11. watch, Ctrl-C, and the live line ---------------------------------------------


def test_watch_follows_a_running_deployment_to_its_end(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    foreign = sim.start_foreign_deployment("blog", "production", triggered_by="dana@example.com")
    clock.advance(20)
    ran = igor("watch", "-s", "blog")
    assert ran.exit_code == 0, ran.output
    assert f"Watching deployment {foreign} of blog (production)" in ran.stdout
    assert "started by dana@example.com" in ran.stdout
    # The time counts from the deployment's start, not from when igor began watching.
    assert "Deployed blog (production) in 1m 00s" in ran.stdout
    assert sim.count("POST") == 0


def test_watch_with_nothing_deploying(sim: Simulator, igor: Igor) -> None:
    ran = igor("watch", "-s", "blog")
    assert ran.exit_code == 1
    assert "blog (production) is not deploying, nothing to watch." in ran.stderr


def test_ctrl_c_while_following_leaves_the_deployment_running(
    sim: Simulator, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    env = Environment(clock=clock.datetime, monotonic=clock, sleep=interrupted)
    code = main(["deploy", "-s", "blog", "--follow"], env)
    err = capsys.readouterr().err
    assert code == 130
    assert "the deployment goes on" in err
    assert "`igor cancel -s blog -e production`" in err
    assert sim.count("DELETE") == 0
    sim_env = Environment(clock=clock.datetime, monotonic=clock, sleep=interrupted)
    assert main(["watch", "-s", "blog"], sim_env) == 130
    assert "Stopped watching blog (production)" in capsys.readouterr().err


def test_the_live_line_ticks_between_polls_and_gives_an_estimate(clock: FakeClock) -> None:
    stack = Stack("u", "blog", "production", StackStatus.DEPLOYING, StackHealth.BUILDING, True)
    watched = WatchOutcome(stack, "9001", typical=250.0)
    line = _TickingLine(watched, clock, already=5.0)
    assert line.text() == "Deploying: blog (production)… 5s (usually about 4m 10s)"
    clock.advance(60)  # no poll answered in between
    assert line.text() == "Deploying: blog (production)… 1m 05s (usually about 4m 10s)"
    clock.advance(300)
    assert "taking longer" in line.text()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_live_line_is_drawn_on_a_terminal_only(clock: FakeClock) -> None:
    stack = Stack("u", "blog", "production", StackStatus.DEPLOYING, StackHealth.BUILDING, True)
    watched = WatchOutcome(stack, "9001", typical=250.0)
    tty, piped = _Terminal(), io.StringIO()
    for err in (tty, piped):
        renderer = TerminalRenderer(io.StringIO(), err, clock.datetime())
        with renderer.watching(watched, clock) as update:
            clock.advance(75)  # the last draw shows the time now, no update needed
            del update
    assert "1m 15s" in tty.getvalue()
    assert piped.getvalue() == ""


def test_watch_in_chat_joins_the_one_poll_loop(
    bot: RunningBot,
    slack: FakeSlack,
    sim: Simulator,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim.deploy_seconds = 300  # type: ignore[misc]
    # The poll loop waits (in simulated time too) until Bob has attached.
    attached, sleep = threading.Event(), clock.sleep
    monkeypatch.setattr(clock, "sleep", lambda seconds: (attached.wait(10), sleep(seconds)))
    bot.start()
    bot.mention("deploy -s blog", user="U0ALICE", channel="C1")
    assert "Deploy started" in bot.replies(1)[0].params["text"]
    bot.mention("watch -s blog", user="U0BOB", channel="C2")
    watching = bot.replies(2)[1].params["text"]
    attached.set()
    assert "Watching deployment" in watching
    finals = bot.replies(4, timeout=15)[2:]
    assert {c.params["channel"] for c in finals} == {"C1", "C2"}
    assert all("Deployed blog" in c.params["text"] for c in finals)
    polls = [r for r in sim.requests if "/actions/" in r.path]
    assert len(polls) <= 300 / 10 + 3  # one loop, not one each


def test_without_deployment_ids_a_later_request_never_takes_the_running_ones_name() -> None:
    from igor_cli.cloud66.activity import action_running
    from igor_cli.cloud66.models import AsyncAction

    start = datetime(2026, 1, 1, tzinfo=UTC)
    live = Deployment("7", "dana@example.com", "api", start, None, "in progress", True)
    dana = AsyncAction("1", start, None, None, "", user="dana@example.com")
    mine = AsyncAction("2", start + timedelta(minutes=3), None, None, "",
                       user_reference="igor:cli:me@laptop", user="dana@example.com")  # fmt: skip
    assert action_running(live, [mine]) is None  # asked for after it started: it waits
    assert action_running(live, [dana, mine]) is None  # dana's is not igor's
    early = AsyncAction("3", start, None, None, "", user_reference="igor:slack:U1:Ev1",
                        user="sam@example.com")  # fmt: skip
    # Cloud 66 says which user asked; igor does not need it to agree (a shared token).
    assert action_running(live, [early, mine]) is early
    twins = [early, AsyncAction("4", start, None, None, "", user_reference="igor:cli:x")]
    assert action_running(live, twins) is None  # two could be it: igor does not guess
    web = Deployment("8", "dana@example.com", "web", start, None, "in progress", True)
    assert action_running(web, [early]) is None  # Cloud 66 says it came from the dashboard


def test_list_answers_even_when_the_deployments_cannot_be_read(sim: Simulator, igor: Igor) -> None:
    sim.fail_next(500, 100, path_contains="/deployments")
    ran = igor("list", "-s", "blog")
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.splitlines()[1].startswith("blog")
    assert "LAST DEPLOY could not be read" in ran.stderr
    facts = json.loads(igor("list", "-s", "blog", "--json").stdout)[0]
    assert facts["deployments_read"] is False
    assert sim.count("GET", "/deployments") >= 2  # it was asked, and retried


def test_lists_at_once_in_chat_read_each_stacks_deployments_once(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, clock: FakeClock
) -> None:
    bot.start()
    for n in range(1, 4):
        bot.mention("list -s blog")
        assert "blog (production)" in bot.replies(n)[n - 1].params["text"]
    assert sim.count("GET", "/stacks") == 3  # the listing: fresh every time
    assert sim.count("GET", "/deployments") == 1  # LAST DEPLOY: read once for the three
    clock.advance(30)
    bot.mention("list -s blog")
    assert "blog (production)" in bot.replies(4)[3].params["text"]
    assert sim.count("GET", "/deployments") == 2  # and read again once it is stale


def test_a_list_in_chat_hands_no_thread_the_reads_it_shares(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, handed_reads: list[object]
) -> None:
    # Each stack's history read moments ago is at hand: a thread is woken only for a read.
    bot.start()
    bot.mention("list")
    assert "blog (production)" in bot.replies(1)[0].params["text"]
    read = sim.count("GET", "/deployments")
    assert read >= 2
    assert len(handed_reads) >= 2  # the first listing's reads of its stacks, at once
    handed_reads.clear()
    bot.mention("list")
    assert "blog (production)" in bot.replies(2)[1].params["text"]
    assert sim.count("GET", "/deployments") == read  # read once for both
    assert handed_reads == []


# -- issue 26 item 5: the live line moves, estimates compare like with like, one id ------


@pytest.mark.parametrize("columns", [60, 80])
def test_the_live_line_moves_from_queued_to_deploying_at_a_terminal(
    sim: Simulator, clock: FakeClock, columns: int
) -> None:
    from tests.fakes.terminal import PtyIgor

    sim.start_foreign_deployment("blog", "production", triggered_by="dana@example.com")
    with PtyIgor(
        "deploy", "-s", "blog", "--follow", columns=columns, follow_interval=0.1,
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"},
    ) as pty:  # fmt: skip
        pty.wait_for("Queued: blog (production)…")
        clock.advance(61)  # dana's deployment ends; igor's starts behind it
        pty.wait_for("Deploying: blog (production)…")
        clock.advance(61)
        code = pty.wait()
    assert code == 0, pty.text
    assert "Deployed blog (production) in" in pty.text
    assert all(len(line) <= columns for line in pty.lines)
    # Its first igor deploy: the dashboard's past deployments of minutes say nothing of it.
    assert "usually about" not in pty.written


def test_the_estimate_comes_from_deployments_of_the_same_kind(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    def typical(*args: str) -> float | None:
        started = json.loads(igor(*args, "--json").stdout.splitlines()[0])
        return started.get("typical_seconds")

    # The sandbox's history: dashboard deployments of 3 to 12 minutes. igor deploys
    # through the API in a minute: its first has nothing of its kind to go by.
    web = json.loads(igor("history", "-s", "blog", "--json").stdout)
    assert all(d["duration_seconds"] > 170 for d in web if d["outcome"] == "succeeded")
    assert igor("deploy", "-s", "blog").exit_code == 0
    assert typical("watch", "-s", "blog") is None
    clock.advance(61)
    assert igor("deploy", "-s", "blog").exit_code == 0
    assert typical("watch", "-s", "blog") == pytest.approx(60.0, abs=2)  # the last one's
    clock.advance(61)
    sim.start_foreign_deployment("blog", "production")  # from the dashboard, as the history
    assert typical("watch", "-s", "blog") > 170


def test_deploy_follow_json_names_ids_as_cloud66_types_them_and_none_it_cannot_know(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    """Ids are numbers, as in Cloud 66's JSON, wherever igor gives one. Which deployment
    a freshly asked deploy's async action runs, Cloud 66 does not say (SPEC section 4):
    `deploy --follow` names its action and leaves `deployment_id` null rather than
    guess; `watch`, which reads the running deployment, names it."""
    foreign = sim.start_foreign_deployment("blog", "production")
    ran = igor("deploy", "-s", "blog", "--follow", "--json")
    assert ran.exit_code == 0, ran.output
    events = [json.loads(line) for line in ran.stdout.splitlines()]
    progress = [e for e in events if e["event"] in ("progress", "finished")]
    assert {e["deployment_id"] for e in progress} == {None}
    states = [e["state"] for e in progress]
    assert states[0] == "queued" and "running" in states and states[-1] == "succeeded"
    assert all(isinstance(e["async_action_id"], int) for e in events)
    history = json.loads(igor("history", "-s", "blog", "--json").stdout)
    assert all(isinstance(d["id"], int) for d in history) and foreign in [d["id"] for d in history]
    assert igor("deploy", "-s", "blog").exit_code == 0
    watched = json.loads(igor("watch", "-s", "blog", "--json").stdout.splitlines()[0])
    assert isinstance(watched["deployment_id"], int)
    assert watched["deployment_id"] in [d["id"] for d in history] or watched["deployment_id"] > max(
        d["id"] for d in history
    )
