"""`igor deploy --ref/--profile` and `igor history`, in the shell and in chat.

Every test counts what reached the simulator: what was posted (and its body),
what was refused before anything was posted, and that history reads every page.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from igor_cli.chat.bridge import Bridge
from igor_cli.cloud66.activity import deployment_state
from igor_cli.cloud66.models import Deployment
from igor_cli.config import Environment
from igor_cli.features.history import PastDeployment
from igor_cli.identity import Origin
from igor_cli.render.text import render_text
from igor_cli.sandbox import Simulator
from tests.conftest import Igor, RunningBot, rendered
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack
from tests.test_guard_resolved import CONFIRM_ONLY, _click, _configure, _questions, _value


def _posts(sim: Simulator) -> list[Any]:
    return [r for r in sim.requests if r.method == "POST" and r.path.endswith("/deployments")]


def _bridge(clock: FakeClock) -> Bridge:
    return Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))


# -- deploy --ref / --profile ---------------------------------------------------------


def test_deploy_ref_and_profile_are_posted_once(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "shop", "-e", "staging", "--ref", "v2.0", "--profile", "quick")
    assert ran.exit_code == 0, ran.output
    assert "Deploy started: shop (staging) (ref v2.0; profile quick)." in ran.stdout
    posts = _posts(sim)
    assert len(posts) == 1
    assert posts[0].body["git_ref"] == "v2.0"
    assert posts[0].body["deployment_profile"] == "quick"
    assert "services" not in posts[0].body


def test_deploy_without_ref_posts_neither_field(sim: Simulator, igor: Igor) -> None:
    assert igor("deploy", "-s", "blog").exit_code == 0
    posts = _posts(sim)
    assert len(posts) == 1
    assert "git_ref" not in posts[0].body and "deployment_profile" not in posts[0].body


def test_a_ref_on_a_docker_stack_is_refused_before_posting(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "api", "--ref", "v2.0")
    assert ran.exit_code == 1
    assert "api (production) is a docker stack: --ref applies to classic stacks only" in ran.stderr
    assert "-v name:tag" in ran.stderr
    assert _posts(sim) == []
    assert sim.count("GET", "/deployments") == 0  # refused before even looking


def test_dry_run_names_the_ref_and_profile_and_posts_nothing(sim: Simulator, igor: Igor) -> None:
    ran = igor("deploy", "-s", "shop", "-e", "production", "--ref", "9b7e0d4", "--dry-run")
    assert ran.exit_code == 0, ran.output
    assert "Dry run: a deploy of shop (production) (ref 9b7e0d4) would start now." in ran.stdout
    facts = json.loads(
        igor("deploy", "-s", "shop", "-e", "production", "--profile", "fast", "--dry-run",
             "--json").stdout
    )  # fmt: skip
    assert facts["result"] == "would_start" and facts["posted"] is False
    assert facts["profile"] == "fast" and facts["ref"] is None
    assert _posts(sim) == []


def test_deploy_ref_from_chat_is_posted(sim: Simulator, clock: FakeClock) -> None:
    reply = _bridge(clock).handle(
        "deploy -s shop -e staging --ref release/7 --profile quick", Origin("slack", "U1", "e-1")
    )
    assert "Deploy started: shop (staging) (ref release/7; profile quick)." in rendered(reply).text
    posts = _posts(sim)
    assert len(posts) == 1
    assert posts[0].body["git_ref"] == "release/7"
    assert posts[0].body["deployment_profile"] == "quick"
    assert posts[0].body["user_reference"] == "igor:slack:U1:e-1"


def test_a_ref_on_a_docker_stack_is_refused_in_chat(sim: Simulator, clock: FakeClock) -> None:
    reply = _bridge(clock).handle("deploy -s api --ref v2", Origin("slack", "U1", "e-2"))
    assert reply.error is not None
    blocks = json.dumps(rendered(reply).blocks)
    assert "is a docker stack" in blocks and "-v name:tag" in blocks
    assert _posts(sim) == []


def test_the_confirmation_names_the_ref_and_the_click_posts_it(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(CONFIRM_ONLY, monkeypatch)
    bot.start()
    bot.mention("deploy -s blog --ref v1.9.3 --profile fast")
    question = bot.replies(1)[0]
    asked = json.dumps(question.params["blocks"])
    assert "at ref `v1.9.3`" in asked and "with profile `fast`" in asked
    assert _questions(slack) == [question]
    assert _posts(sim) == []
    _click(slack, _value(question), question)
    deadline = time.monotonic() + 10
    while not _posts(sim) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    posts = _posts(sim)
    assert len(posts) == 1
    assert posts[0].body["git_ref"] == "v1.9.3"
    assert posts[0].body["deployment_profile"] == "fast"


# -- history --------------------------------------------------------------------------


def _history(igor: Igor, *args: str) -> list[dict[str, Any]]:
    ran = igor("history", *args, "--json")
    assert ran.exit_code == 0, ran.output
    listed: list[dict[str, Any]] = json.loads(ran.stdout)
    return listed


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_history_is_newest_first_across_every_page(order: str, sim: Simulator, igor: Igor) -> None:
    sim.order = order
    everything = _history(igor, "-s", "shop", "-e", "production", "-n", "1000")
    assert len(everything) > 30  # more than one page
    assert sim.count("GET", "/deployments") == 2
    starts = [d["started_at"] for d in everything]
    assert starts == sorted(starts, reverse=True)
    # Within a sandbox stack a higher id is a newer deployment: the newest may sit on page 2.
    ids = [int(d["id"]) for d in everything]
    assert ids == sorted(ids, reverse=True)
    newest = _history(igor, "-s", "shop", "-e", "production")
    assert [d["id"] for d in newest] == [d["id"] for d in everything[:10]]
    assert {d["outcome"] for d in everything} <= {"succeeded", "failed", "cancelled", "running"}
    assert {"succeeded", "failed", "cancelled"} <= {d["outcome"] for d in everything}
    live = [d for d in everything if d["is_live"]]
    assert len(live) == 1 and live[0]["outcome"] == "succeeded"
    # Cloud 66 shows no profile on a deployment (igor fills it only for its own deploys).
    assert not any(d["deployment_profile"] for d in everything)
    assert sim.count("POST") == 0


def test_history_table_in_the_shell(sim: Simulator, igor: Igor) -> None:
    ran = igor("deployments", "-s", "shop", "-e", "production", "-n", "3")
    assert ran.exit_code == 0, ran.output
    lines = ran.stdout.splitlines()
    assert lines[0].split() == ["ID", "STARTED", "TOOK", "OUTCOME", "BY", "VIA", "WHAT"]
    assert len(lines) == 4
    first = _history(igor, "-s", "shop", "-e", "production", "-n", "1")[0]
    assert lines[1].startswith(str(first["id"]))
    assert "succeeded (live)" in lines[1]
    # The short hash only; no ref: Cloud 66 shows none on a deployment igor did not make.
    assert lines[1].rstrip().endswith(first["git_hash"][:7])
    assert first["git_hash"] not in ran.stdout
    assert "the 3 newest of" in ran.stderr and "is live" in ran.stderr


def test_history_shows_the_service_tags_igor_deployed_on_a_docker_stack(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    # Cloud 66 shows no image tags on a deployment: igor shows those it sent itself.
    deployed = igor("deploy", "-s", "api", "-v", "web:1.5,worker:1.5", "--profile", "canary")
    assert deployed.exit_code == 0, deployed.output
    clock.advance(120)
    ran = igor("history", "-s", "api", "-n", "30")
    assert "web:1.5, worker:1.5 (profile canary)" in ran.stdout.splitlines()[1]
    assert "web:1.4.1" not in ran.stdout  # the sandbox's own history: tags nobody can tell
    listed = _history(igor, "-s", "api")
    assert listed[0]["services"] == ["web:1.5", "worker:1.5"]
    assert listed[0]["igor"]["via"] == "cli"
    assert not any(d["services"] for d in listed[1:])


def test_history_names_igor_deployments_from_a_shell_and_from_slack(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    assert igor("deploy", "-s", "shop", "-e", "staging", "--ref", "feature/x").exit_code == 0
    clock.advance(600)
    reply = _bridge(clock).handle("deploy -s blog", Origin("slack", "U0BOB", "e-3"))
    assert reply.error is None
    staging = _history(igor, "-s", "shop", "-e", "staging", "-n", "2")
    assert staging[0]["igor"]["via"] == "cli" and staging[0]["git_ref"] == "feature/x"
    assert staging[1]["igor"] is None
    ran = igor("history", "-s", "shop", "-e", "staging", "-n", "1")
    assert "igor (shell)" in ran.stdout and "feature/x" in ran.stdout
    blog = igor("history", "-s", "blog", "-n", "2")
    assert "running" in blog.stdout.splitlines()[1]
    assert "igor (Slack)" in blog.stdout and "Slack user U0BOB" in blog.stdout


def test_history_in_chat_is_a_table(sim: Simulator, clock: FakeClock) -> None:
    bridge = _bridge(clock)
    reply = bridge.handle("history -s shop -e production -n 5", Origin("slack", "U1", "e-4"))
    assert reply.outcome is not None
    message = rendered(reply)
    assert "shop (production): the 5 newest of" in message.text
    code = [b for b in message.blocks if "```" in b.get("text", {}).get("text", "")]
    assert len(code) == 1
    table = code[0]["text"]["text"]
    assert table.startswith("```ID") and table.count("\n") == 5
    console = render_text(reply, clock.datetime())
    assert console.splitlines()[1].split()[0] == "ID" and len(console.splitlines()) == 7
    as_json = bridge.handle("deployments -s shop -e production --json", Origin("slack", "U1"))
    shown = "\n".join(b["text"]["text"].strip("`") for b in rendered(as_json).blocks)
    assert len(json.loads(shown)) == 10
    assert _posts(sim) == []


def test_history_through_the_fake_slack_needs_no_confirmation(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(CONFIRM_ONLY, monkeypatch)
    bot.start()
    bot.mention("history -s shop -e production -n 2")
    reply = bot.replies(1)[0]
    blocks = json.dumps(reply.params["blocks"])
    assert "```ID  " in blocks and "succeeded (live)" in blocks
    assert _questions(slack) == []
    assert _posts(sim) == []


def test_history_of_an_unknown_stack_fails(sim: Simulator, igor: Igor) -> None:
    ran = igor("history", "-s", "shopp")
    assert ran.exit_code == 1
    assert "No stack named 'shopp'" in ran.stderr
    assert sim.count("GET", "/deployments") == 0


def test_outcome_meanings_compare_in_any_case() -> None:
    def state(outcome: str, deploying: bool = False) -> str:
        when = datetime(2026, 1, 1, tzinfo=UTC)
        return deployment_state(Deployment("1", "x", "Web", when, None, outcome, deploying))

    assert state("SUCCESS") == "succeeded" and state("success") == "succeeded"
    assert state("Failed") == "failed" and state("CANCELLED") == "cancelled"
    assert state("In progress") == "running" and state("", deploying=True) == "running"
    assert state("Rolled back") == "rolled back"  # Cloud 66's own word when igor has none
    deployment = Deployment("1", "x", "Web", None, None, "Success", False)
    assert PastDeployment(deployment).state == "succeeded"
