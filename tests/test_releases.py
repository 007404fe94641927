"""`igor rollback`, `igor promote` and `igor list --wide`, in the shell and in chat.

Every test counts what reached the simulator: the POSTs and their `git_ref`,
`services` and `deployment_profile`, and, for each refusal, that nothing was
posted and why.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from igor_cli.chat.bridge import Bridge
from igor_cli.chat.guard import Signer, rules_from_config
from igor_cli.config import Environment
from igor_cli.identity import Origin
from igor_cli.render.text import render_text
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import Igor, RunningBot, rendered
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack
from tests.test_guard_resolved import CONFIRM_ONLY, _click, _configure, _questions, _value


def _posts(sim: Simulator) -> list[Any]:
    return [r for r in sim.requests if r.method == "POST" and r.path.endswith("/deployments")]


def _history(igor: Igor, *args: str) -> list[dict[str, Any]]:
    ran = igor("history", *args, "-n", "1000", "--json")
    assert ran.exit_code == 0, ran.output
    listed: list[dict[str, Any]] = json.loads(ran.stdout)
    return listed


def _live(listed: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in listed if d["is_live"])


def _previous_other(listed: list[dict[str, Any]]) -> dict[str, Any]:
    """The rollback target by hand: the newest success before the live one, other code."""
    live = _live(listed)
    older = listed[listed.index(live) + 1 :]
    return next(
        d for d in older if d["outcome"] == "succeeded" and d["git_hash"] != live["git_hash"]
    )


def _bridge(clock: FakeClock, *, confirm: bool = False) -> Bridge:
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    if not confirm:
        return Bridge(env)
    rules = rules_from_config({"slack": {"confirm": ["production"]}})
    return Bridge(env, rules=rules, signer=Signer(b"k" * 32))


@pytest.fixture
def custom(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """A simulator with stacks made for the refusals the samples do not show."""
    stacks = [
        # A docker stack whose past deployments do not show their image tags.
        {"name": "queue", "framework": "docker", "services": ["web"], "history": [{"count": 3}]},
        # One deployment only: nothing to go back to.
        {"name": "solo", "environment": "production"},
        # Same name, different repositories.
        {"name": "site", "environment": "production", "git": "git@github.com:example/site.git"},
        {"name": "site", "environment": "staging", "git": "https://github.com/other/site"},
        # The ssh and https forms of one repository; staging never deployed successfully.
        {"name": "docs", "environment": "production", "git": "git@github.com:example/docs.git"},
        {"name": "docs", "environment": "staging", "git": "https://github.com/Example/docs/",
         "status": 2, "history": [{"count": 2, "outcomes": ("Failed", "Cancelled")}]},
        # A docker stack in two environments, staging a tag ahead.
        {"name": "jobs", "environment": "production", "services": ["web"]},
        {"name": "jobs", "environment": "staging",
         "services": [{"name": "web", "image": "example/jobs:2.1", "containers": []}]},
    ]  # fmt: skip
    with Simulator(clock=clock, stacks=stacks) as simulator:
        monkeypatch.setenv("IGOR_API_URL", simulator.url)
        monkeypatch.setenv("IGOR_CLOUD66_TOKEN", SANDBOX_TOKEN)
        yield simulator


# -- rollback in the shell ---------------------------------------------------------------


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_rollback_posts_the_last_good_hash_before_the_live_one(
    order: str, sim: Simulator, igor: Igor
) -> None:
    sim.order = order
    before = _history(igor, "-s", "shop", "-e", "production")
    live, target = _live(before), _previous_other(before)
    sim.reset_requests()
    ran = igor("rollback", "-s", "shop", "-e", "production")
    assert ran.exit_code == 0, ran.output
    said = (
        f"roll back shop (production) from {live['git_hash'][:7]} to {target['git_hash'][:7]} "
        f"(deployment {target['id']} of "
    )
    assert f"Started to {said}" in ran.stdout
    posts = _posts(sim)
    assert len(posts) == 1
    assert posts[0].body["git_ref"] == target["git_hash"]  # the full commit, not a branch
    assert "services" not in posts[0].body and "deployment_profile" not in posts[0].body
    assert posts[0].body["user_reference"].startswith("igor:cli:")
    # The newest end only, read once: page 1 when newest first (the order is known from
    # the history above); page 1 for the count, then the last, when oldest first.
    assert sim.count("GET", "/deployments") == (1 if order == "newest" else 2)
    # The sandbox records the hash: history shows the rollback running that commit.
    after = _history(igor, "-s", "shop", "-e", "production")
    assert after[0]["git_hash"] == target["git_hash"] and after[0]["outcome"] == "running"
    assert after[0]["igor"]["via"] == "cli"


def test_rollback_dry_run_and_json_post_nothing(sim: Simulator, igor: Igor) -> None:
    before = _history(igor, "-s", "shop", "-e", "production")
    target = _previous_other(before)
    ran = igor("rollback", "-s", "shop", "-e", "production", "--dry-run")
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.startswith("Dry run: would roll back shop (production) from ")
    assert "Nothing was posted." in ran.stdout
    facts = json.loads(igor("rollback", "-s", "shop", "-e", "production", "--dry-run",
                            "--json").stdout)  # fmt: skip
    assert facts["result"] == "would_start" and facts["posted"] is False
    assert facts["ref"] == target["git_hash"]
    assert facts["to"]["deployment_id"] == target["id"]
    assert facts["from"]["deployment_id"] == _live(before)["id"]
    assert _posts(sim) == []


def test_rollback_to_a_chosen_deployment(sim: Simulator, igor: Igor) -> None:
    listed = _history(igor, "-s", "shop", "-e", "production")
    live = _live(listed)
    chosen = next(
        d for d in listed[5:] if d["outcome"] == "succeeded" and d["git_hash"] != live["git_hash"]
    )
    ran = igor("rollback", "-s", "shop", "-e", "production", "--to", chosen["id"])
    assert ran.exit_code == 0, ran.output
    assert f"to {chosen['git_hash'][:7]} (deployment {chosen['id']} of" in ran.stdout
    posts = _posts(sim)
    assert len(posts) == 1 and posts[0].body["git_ref"] == chosen["git_hash"]


def test_rollback_refusals_say_why_and_post_nothing(sim: Simulator, igor: Igor) -> None:
    listed = _history(igor, "-s", "shop", "-e", "production")
    live = _live(listed)
    failed = next(d for d in listed if d["outcome"] == "failed")
    same = next((d for d in listed[1:] if d["git_hash"] == live["git_hash"]), None)
    cases = [
        (live["id"], f"Deployment {live['id']} is the live one on shop (production)"),
        (failed["id"], f"Deployment {failed['id']} of shop (production) failed; igor rolls back "
                       "only to a deployment that succeeded"),
        ("99999999", "shop (production) has no deployment 99999999."),
    ]  # fmt: skip
    if same is not None and same["outcome"] == "succeeded":
        cases.append((same["id"], "which is what shop (production) runs now"))
    for to, why in cases:
        ran = igor("rollback", "-s", "shop", "-e", "production", "--to", to)
        assert ran.exit_code == 1, (to, ran.output)
        assert why in ran.stderr, (to, ran.stderr)
        assert "Nothing was posted." in ran.stderr
        assert "igor history -s shop -e production" in ran.stderr
    assert _posts(sim) == []


def _two_igor_deploys_of_api(igor: Igor, clock: FakeClock) -> None:
    """web and worker at 1.5, then web alone at 1.6: what igor sent is on its record."""
    for tags in ("web:1.5,worker:1.5", "web:1.6"):
        assert igor("deploy", "-s", "api", "-v", tags).exit_code == 0
        clock.advance(120)


def test_rollback_on_a_docker_stack_posts_the_image_tags_igor_deployed(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    _two_igor_deploys_of_api(igor, clock)
    sim.reset_requests()
    ran = igor("rollback", "-s", "api")
    assert ran.exit_code == 0, ran.output
    # From what the services run now (GET services) to what igor deployed before.
    assert "from web:1.6, worker:1.5 to web:1.5, worker:1.5" in ran.stdout
    posts = _posts(sim)
    assert len(posts) == 1
    assert posts[0].body["services"] == "web:1.5,worker:1.5"
    assert "git_ref" not in posts[0].body and "deployment_profile" not in posts[0].body
    assert sim.count("GET", "/services") == 1


def test_docker_rollback_past_a_deployment_igor_did_not_make_says_why(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    assert igor("deploy", "-s", "api", "-v", "web:1.5,worker:1.5").exit_code == 0
    clock.advance(120)
    # Its only predecessor is the sandbox's own: no source shows which tags that ran.
    ran = igor("rollback", "-s", "api")
    assert ran.exit_code == 1
    assert "Cloud 66 does not show which image tags deployment" in ran.stderr
    assert "igor has no record of deploying it" in ran.stderr
    assert len(_posts(sim)) == 1  # the deploy only


def test_rollback_refusals_of_the_custom_stacks(custom: Simulator, igor: Igor) -> None:
    ran = igor("rollback", "-s", "queue")
    assert ran.exit_code == 1
    assert "Cloud 66 does not show which image tags deployment" in ran.stderr
    assert "igor deploy -s queue -e production -v SERVICE:TAG" in ran.stderr
    ran = igor("rollback", "-s", "solo")
    assert ran.exit_code == 1
    assert "solo (production) has no successful deployment before the live one" in ran.stderr
    assert _posts(custom) == []


def test_rollback_on_a_busy_stack_follows_the_w_rule(sim: Simulator, igor: Igor) -> None:
    sim.start_foreign_deployment("shop", "production")
    ran = igor("rollback", "-s", "shop", "-e", "production", "-w", "false")
    assert ran.exit_code == 1
    assert "shop (production) is busy, not queued" in ran.stderr
    assert "-w true" in ran.stderr
    assert _posts(sim) == []
    ran = igor("rollback", "-s", "shop", "-e", "production")
    assert ran.exit_code == 0, ran.output
    assert "Queued to roll back shop (production)" in ran.stdout
    assert len(_posts(sim)) == 1
    ran = igor("rollback", "-s", "shop", "-e", "production")  # igor's own is queued now
    assert ran.exit_code == 1 and "already deploying" in ran.stderr
    assert len(_posts(sim)) == 1


def test_rollback_follow_reports_the_outcome(sim: Simulator, igor: Igor) -> None:
    target = _previous_other(_history(igor, "-s", "blog"))
    ran = igor("rollback", "-s", "blog", "--follow")
    assert ran.exit_code == 0, ran.output
    # The last word names the rollback, not a plain deploy.
    said = f"Rollback of blog (production) to {target['git_hash'][:7]} succeeded in"
    assert said in ran.stdout and "Deployed blog" not in ran.stdout
    assert len(_posts(sim)) == 1


def test_promote_follow_reports_the_outcome(sim: Simulator, igor: Igor) -> None:
    staging = _live(_history(igor, "-s", "shop", "-e", "staging"))
    ran = igor("promote", "-s", "shop", "--from", "staging", "--to", "production", "--follow")
    assert ran.exit_code == 0, ran.output
    said = f"Promotion of {staging['git_hash'][:7]} from staging to shop (production) succeeded in"
    assert said in ran.stdout
    assert len(_posts(sim)) == 1


def test_a_followed_rollback_in_slack_ends_naming_the_rollback(
    bot: RunningBot, slack: FakeSlack, igor: Igor
) -> None:
    target = _previous_other(_history(igor, "-s", "blog"))
    bot.start()
    bot.mention("rollback -s blog", user="U0ALICE")
    final = bot.replies(2, timeout=30)[1].params["text"]
    assert f"Rollback of blog (production) to {target['git_hash'][:7]} succeeded in" in final
    assert "<@U0ALICE>" in final


# -- promote in the shell -------------------------------------------------------------


def test_promote_dry_run_then_post(sim: Simulator, igor: Igor) -> None:
    staging = _live(_history(igor, "-s", "shop", "-e", "staging"))
    production = _live(_history(igor, "-s", "shop", "-e", "production"))
    assert staging["git_hash"] != production["git_hash"]
    ran = igor("promote", "-s", "shop", "--from", "staging", "--to", "production", "--dry-run")
    assert ran.exit_code == 0, ran.output
    since = staging["finished_at"][:16].replace("T", " ")
    assert (
        f"Dry run: would deploy {staging['git_hash'][:7]} (running in staging since {since} UTC) "
        f"to shop (production), which runs {production['git_hash'][:7]}. Nothing was posted."
    ) in ran.stdout
    assert _posts(sim) == []
    ran = igor("promote", "-s", "shop", "--from", "staging", "--to", "production", "--json")
    assert ran.exit_code == 0, ran.output
    facts = json.loads(ran.stdout)
    assert facts["result"] == "started" and facts["stack"]["environment"] == "production"
    assert facts["from"]["git_hash"] == staging["git_hash"]
    posts = _posts(sim)
    assert len(posts) == 1
    assert posts[0].path.endswith(f"/stacks/{sim.stack('shop', 'production')['uid']}/deployments")
    assert posts[0].body["git_ref"] == staging["git_hash"]
    assert "services" not in posts[0].body and "deployment_profile" not in posts[0].body


def test_a_promoted_hash_is_recorded_then_promote_again_is_refused_and_rollback_undoes_it(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    staging = _live(_history(igor, "-s", "shop", "-e", "staging"))
    production = _live(_history(igor, "-s", "shop", "-e", "production"))
    assert igor("promote", "-s", "shop", "--from", "staging", "--to", "production").exit_code == 0
    clock.advance(600)  # the deployment finishes
    now = _live(_history(igor, "-s", "shop", "-e", "production"))
    assert now["git_hash"] == staging["git_hash"]
    ran = igor("promote", "-s", "shop", "--from", "staging", "--to", "production")
    assert ran.exit_code == 1
    assert f"shop (production) already runs {staging['git_hash'][:7]}" in ran.stderr
    assert len(_posts(sim)) == 1
    ran = igor("rollback", "-s", "shop", "-e", "production")
    assert ran.exit_code == 0, ran.output
    assert f"from {staging['git_hash'][:7]} to {production['git_hash'][:7]}" in ran.stdout
    assert _posts(sim)[-1].body["git_ref"] == production["git_hash"]


def test_promote_refusals(custom: Simulator, igor: Igor) -> None:
    ran = igor("promote", "-s", "site", "--from", "staging", "--to", "production")
    assert ran.exit_code == 1
    assert "site (staging) deploys from https://github.com/other/site" in ran.stderr
    assert "igor promotes only within one repository" in ran.stderr
    ran = igor("promote", "-s", "docs", "--from", "staging", "--to", "production")
    assert ran.exit_code == 1  # one repository in two spellings: the check passes, then
    assert "docs (staging) has no successful deployment to promote" in ran.stderr
    ran = igor("promote", "-s", "docs", "--from", "production", "--to", "PRODUCTION")
    assert ran.exit_code == 2 and "--from and --to both name" in ran.stderr
    assert _posts(custom) == []


def test_promote_on_docker_stacks_posts_the_image_tags(custom: Simulator, igor: Igor) -> None:
    ran = igor("promote", "-s", "jobs", "--from", "staging", "--to", "production")
    assert ran.exit_code == 0, ran.output
    assert "Started to deploy web:2.1 (running in staging since" in ran.stdout
    assert "to jobs (production), which runs web:1.0." in ran.stdout
    posts = _posts(custom)
    assert len(posts) == 1
    assert posts[0].body["services"] == "web:2.1"
    assert "git_ref" not in posts[0].body and "deployment_profile" not in posts[0].body


# -- list --wide --------------------------------------------------------------------------


def test_list_wide_shows_what_runs_at_one_list_per_stack(sim: Simulator, igor: Igor) -> None:
    assert igor("list").exit_code == 0
    # 7 stacks: page 1 each, and the last of shop's 46 (production) and 36 (staging),
    # which tells the order their lists are in.
    assert sim.count("GET", "/deployments") == 9
    sim.reset_requests()
    ran = igor("list", "--wide")
    assert ran.exit_code == 0, ran.output
    assert ran.stdout.splitlines()[0].split()[-1] == "RUNNING"
    # The order known, each stack's newest page tells what it runs: one request each,
    # and the docker stack's services the tags they run.
    assert sim.count("GET", "/deployments") == 7
    assert sim.count("GET", "/services") == 1
    assert sim.count("GET", "/stacks") == 1
    production = _live(_history(igor, "-s", "shop", "-e", "production"))
    shop = next(line for line in ran.stdout.splitlines() if line.startswith("shop") and
                "production" in line)  # fmt: skip
    assert shop.rstrip().endswith(production["git_hash"][:7])
    assert "web:1.4.2, worker:1.4.2" in ran.stdout
    listed = json.loads(igor("list", "--wide", "-s", "shop", "--json").stdout)
    shown = {s["environment"]: s["running"]["git_hash"] for s in listed}
    assert shown["production"] == production["git_hash"]
    plain = json.loads(igor("list", "--json").stdout)
    assert "running" not in plain[0]
    assert sim.count("POST") == 0


def test_list_wide_refuses_beyond_its_bound(sim: Simulator, igor: Igor) -> None:
    sim.add_stacks(50)
    sim.reset_requests()
    ran = igor("list", "--wide")
    assert ran.exit_code == 1
    assert "57 stacks would cost at least 57 requests" in ran.stderr
    assert "at most 50 stacks with -s or -e" in ran.stderr
    assert sim.count("GET", "/deployments") == 0
    assert igor("list", "--wide", "-s", "app-00").exit_code == 0  # 50 stacks: at the bound


def test_list_wide_in_chat_is_a_table_with_what_runs(sim: Simulator, clock: FakeClock) -> None:
    reply = _bridge(clock).handle("list --wide -s shop", Origin("slack", "U1", "e-w"))
    table = next(b["text"]["text"] for b in rendered(reply).blocks if "```" in json.dumps(b))
    header = table.strip("`").splitlines()[0].split()
    staging = next(line for line in table.strip("`").splitlines() if "staging" in line)
    assert header[-1] == "RUNNING" and len(staging.split()[-1]) == 7  # its short hash
    console = render_text(reply, clock.datetime())
    assert console.splitlines()[0] == "2 stacks:"  # the summary, then the table
    assert console.splitlines()[1].split()[-1] == "RUNNING"
    assert sim.count("GET", "/deployments") == 4  # shop in two environments, two pages each


# -- chat ----------------------------------------------------------------------------------


def test_rollback_and_promote_from_chat(sim: Simulator, clock: FakeClock, igor: Igor) -> None:
    _two_igor_deploys_of_api(igor, clock)
    sim.reset_requests()
    bridge = _bridge(clock)
    reply = bridge.handle("rollback -s api", Origin("slack", "U1", "e-1"))
    assert "Started to roll back api (production)" in rendered(reply).text
    assert reply.deployment_to_follow is not None  # followed in the thread, as deploys are
    promote = "promote -s shop --from staging --to production"
    reply = bridge.handle(promote, Origin("slack", "U1", "e-2"))
    text = render_text(reply, clock.datetime())
    assert text.startswith("Started to deploy ") and "to shop (production), which runs" in text
    posts = _posts(sim)
    assert len(posts) == 2
    assert posts[0].body["services"] == "web:1.5,worker:1.5"
    assert posts[0].body["user_reference"] == "igor:slack:U1:e-1"
    assert len(posts[1].body["git_ref"]) == 40
    dry = bridge.handle("rollback -s blog --dry-run", Origin("slack", "U1", "e-3"))
    assert dry.deployment_to_follow is None and "Dry run" in rendered(dry).text
    assert len(_posts(sim)) == 2


def test_a_refusal_in_chat_is_answered_before_any_question(
    sim: Simulator, clock: FakeClock, igor: Igor
) -> None:
    bridge = _bridge(clock, confirm=True)
    live = _live(_history(igor, "-s", "shop", "-e", "production"))
    reply = bridge.handle(f"rollback -s shop -e production --to {live['id']}",
                          Origin("slack", "U1", "e-4"), "C1")  # fmt: skip
    assert reply.question is None and reply.error is not None
    assert "is the live one" in rendered(reply).text
    assert _posts(sim) == []


def test_a_confirmation_deploys_what_it_named_or_nothing(sim: Simulator, clock: FakeClock) -> None:
    bridge = _bridge(clock, confirm=True)
    asked = bridge.handle("rollback -s shop -e production", Origin("slack", "U1", "e-5"), "C1")
    assert asked.question is not None and asked.pending is not None
    expected = asked.pending.expect
    assert len(expected) == 40
    # Someone deploys a new commit meanwhile: the rollback would now go elsewhere.
    igor_deploy = bridge.perform(
        "deploy", _deploy("shop", "production", "hotfix"), Origin("slack", "U2", "e-7")
    )
    assert igor_deploy.outcome is not None
    clock.advance(600)
    posts = len(_posts(sim))
    reply = bridge.confirmed(asked.pending)
    assert reply.error is not None
    assert f"not the {expected[:7]} you confirmed" in rendered(reply).text
    assert len(_posts(sim)) == posts


def _deploy(stack: str, environment: str, ref: str) -> Any:
    from igor_cli.features.deploy import DeployRequest

    return DeployRequest(stack=stack, environment=environment, ref=ref)


def test_the_confirmation_names_the_hash_and_the_click_posts_it(
    bot: RunningBot,
    slack: FakeSlack,
    sim: Simulator,
    igor: Igor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = _previous_other(_history(igor, "-s", "shop", "-e", "production"))
    staging = _live(_history(igor, "-s", "shop", "-e", "staging"))
    _configure(CONFIRM_ONLY, monkeypatch)
    bot.start()
    bot.mention("rollback -s shop -e production")
    bot.mention("promote -s shop --from staging --to production")
    deadline = time.monotonic() + 10
    while len(_questions(slack)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    questions = {json.dumps(q.params["blocks"]): q for q in _questions(slack)}
    assert len(questions) == 2
    rollback = next(q for text, q in questions.items() if "roll back *shop*" in text)
    promote = next(q for text, q in questions.items() if "from *staging*" in text)
    assert f"to `{target['git_hash'][:7]}`" in json.dumps(rollback.params["blocks"])
    assert f"deploy `{staging['git_hash'][:7]}` from *staging*" in json.dumps(
        promote.params["blocks"]
    )
    assert _posts(sim) == []  # the questions looked (dry runs); nothing was posted
    _click(slack, _value(rollback), rollback)
    deadline = time.monotonic() + 10
    while not _posts(sim) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    posts = _posts(sim)
    assert len(posts) == 1
    assert posts[0].body["git_ref"] == target["git_hash"]
    assert "services" not in posts[0].body and "deployment_profile" not in posts[0].body
    assert posts[0].body["user_reference"].startswith("igor:slack:U0ALICE:")


def test_rules_gate_rollback_and_promote_on_the_resolved_stack(
    sim: Simulator, clock: FakeClock
) -> None:
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    rules = rules_from_config(
        {"slack": {"allow": [{"commands": ["rollback", "promote"], "environments": ["staging"]}]}}
    )
    bridge = Bridge(env, rules=rules)
    for text in ("rollback -s blog", "promote -s shop --from staging --to production"):
        reply = bridge.handle(text, Origin("slack", "U1", f"r-{text}"), "C1")
        assert reply.refusal is not None, text
    allowed = bridge.handle("rollback -s shop -e staging", Origin("slack", "U1", "r-ok"), "C1")
    assert allowed.outcome is not None
    assert len(_posts(sim)) == 1


def test_the_audit_line_says_what_a_rollback_deployed(
    bot: RunningBot,
    slack: FakeSlack,
    sim: Simulator,
    caplog: pytest.LogCaptureFixture,
    igor: Igor,
    clock: FakeClock,
) -> None:
    _two_igor_deploys_of_api(igor, clock)  # igor's record, shared through the state store
    sim.reset_requests()
    caplog.set_level(logging.INFO, logger="igor")
    bot.start()
    bot.mention("rollback -s api", user="U0ALICE", channel="C9")
    assert "Started to roll back api (production)" in bot.replies(1)[0].params["text"]
    time.sleep(0.2)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "igor.audit"]
    assert len(lines) == 1
    line = lines[0]
    assert (line["command"], line["stack"], line["environment"]) == (
        "rollback",
        "api",
        "production",
    )
    assert line["result"] == "started" and line["outcome"] == "ok"
    assert line["deploys"] == "web:1.5,worker:1.5"
    assert len(_posts(sim)) == 1


def test_a_named_deployment_ends_in_the_same_words_as_a_deploy() -> None:
    from igor_cli.cloud66.models import Stack, StackHealth, StackStatus
    from igor_cli.core.follow import Progress
    from igor_cli.render.sentences import progress_sentence

    stack = Stack("u1", "blog", "production", StackStatus.DEPLOYED, StackHealth.HEALTHY, False)
    what = "Rollback of blog (production) to b3cb9fe"
    cancelled = Progress(60.0, True, False, "Deployment cancelled by alice", cancelled=True)
    failed = Progress(60.0, True, False, "build failed")
    assert (
        progress_sentence(stack, cancelled, what)
        == f"{what} was cancelled (by alice) after 1m 00s."
    )
    assert progress_sentence(stack, failed, what) == f"{what} failed after 1m 00s: build failed."
    assert progress_sentence(stack, failed) == (
        "Deployment of blog (production) failed after 1m 00s: build failed."
    )
