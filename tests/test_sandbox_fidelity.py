"""The simulator behaves like Cloud 66 API v3 where a kind reading of the docs would not.

Scopes, throttling, pagination without `pages` (or without any count), an
undocumented list order, long histories, and the rules of POST deployments.
The last section shows, as strict xfails, where igor itself trips over them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import Igor
from tests.fakes.clock import FakeClock
from tests.test_sandbox import START, Api

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client

HOUR = 3600.0
# START is 10:00:00Z: a fresh rate-limit hour begins exactly there.
assert START % HOUR == 0

INSUFFICIENT_SCOPE = {
    "error": "forbidden",
    "error_description": "The access token does not have the required scope",
    "details": None,
}


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sandbox(fake_clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=fake_clock) as simulator:
        yield simulator


@pytest.fixture
def api(sandbox: Simulator) -> Api:
    return Api(sandbox)


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _running(api: Api, uid: str) -> list[dict[str, Any]]:
    return [d for d in api.deployments(uid) if d["is_deploying"]]


# -- 1. token scopes ----------------------------------------------------------


def test_the_default_token_has_every_scope(sandbox: Simulator, api: Api) -> None:
    uid = api.uid("blog", "production")
    assert api.get("/accounts").status_code == 200
    assert api.deploy(uid).status_code == 200
    live = _running(api, uid)
    assert len(live) == 1
    assert api.delete(f"/stacks/{uid}/deployments/{live[0]['id']}").status_code == 200


def test_a_read_only_token_reads_but_cannot_deploy_cancel_or_list_accounts(
    sandbox: Simulator, api: Api
) -> None:
    sandbox.add_token("read-only", ["public"])
    reader = Api(sandbox, token="read-only")
    uid = reader.uid("blog", "production")
    assert reader.get(f"/stacks/{uid}/deployments").status_code == 200
    assert reader.get(f"/stacks/{uid}/actions").status_code == 200

    accounts = reader.get("/accounts")
    assert accounts.status_code == 403
    assert accounts.json() == INSUFFICIENT_SCOPE

    before = len(api.deployments(uid))
    refused = reader.deploy(uid, user_reference="should-not-run")
    assert refused.status_code == 403
    assert refused.json() == INSUFFICIENT_SCOPE
    assert len(api.deployments(uid)) == before
    assert sandbox.stack("blog", "production")["is_busy"] is False

    deployment_id = sandbox.start_foreign_deployment("blog", "production")
    assert reader.delete(f"/stacks/{uid}/deployments/{deployment_id}").status_code == 403
    assert _running(api, uid)[0]["id"] == deployment_id  # still running: nothing cancelled


def test_each_route_asks_for_its_own_scope(sandbox: Simulator, api: Api) -> None:
    uid = api.uid("blog", "production")
    sandbox.add_token("deployer", ["redeploy"])
    sandbox.add_token("people", ["users"])
    deployer = Api(sandbox, token="deployer")
    people = Api(sandbox, token="people")
    assert deployer.get("/stacks").status_code == 403
    assert deployer.deploy(uid).status_code == 200
    assert people.get("/accounts").status_code == 200
    assert people.get("/stacks").status_code == 403
    # A later add_token replaces the scopes the token had.
    sandbox.add_token("people", ["users", "public"])
    assert people.get("/stacks").status_code == 200


def test_a_token_with_no_scope_reads_publicly(sandbox: Simulator, api: Api) -> None:
    sandbox.add_token("bare", [])
    bare = Api(sandbox, token="bare")
    uid = bare.uid("blog", "production")
    assert bare.get(f"/stacks/{uid}").status_code == 200
    assert bare.get("/accounts").status_code == 403
    assert bare.deploy(uid).status_code == 403


def test_the_main_token_can_be_made_with_fewer_scopes(fake_clock: FakeClock) -> None:
    with Simulator(clock=fake_clock, scopes={"public", "admin"}) as sim:
        api = Api(sim)
        assert api.get("/stacks").status_code == 200
        answer = api.deploy(api.uid("shop", "staging"))
        assert answer.status_code == 403
        assert sim.count("POST", "/deployments") == 1
        assert Api(sim, token="unknown").get("/stacks").status_code == 401


# -- 2. accounts ----------------------------------------------------------------


def test_accounts_name_the_account_friendly_name(api: Api) -> None:
    account = api.get("/accounts").json()["response"][0]
    # The docs' fields, and the Go client's friendly_name (sources.py).
    assert set(account) == {
        "id", "owner", "friendly_name", "stack_count", "used_clouds", "created_at_iso",
        "updated_at_iso",
    }  # fmt: skip
    assert account["friendly_name"] == "igor sandbox"
    assert account["owner"] == "sandbox@igor.example"
    assert account["created_at_iso"].endswith("Z")


# -- 3. pagination ----------------------------------------------------------------


def test_pagination_has_no_pages_key_in_either_style(sandbox: Simulator, api: Api) -> None:
    uid = api.uid("shop", "production")
    body = api.get(f"/stacks/{uid}/deployments", page=2).json()
    assert body["count"] == 46
    assert body["pagination"] == {
        "previous": 1,
        "next": None,
        "current": 2,
        "per_page": 30,
        "count": 46,
    }
    sandbox.pagination_style = "prev"
    body = api.get(f"/stacks/{uid}/deployments").json()
    assert body["pagination"] == {"prev": None, "next": 2, "current": 1, "count": 46}
    assert body["count"] == 46


def test_pages_without_any_count_must_be_followed_by_next(sandbox: Simulator, api: Api) -> None:
    sandbox.include_count = False
    uid = api.uid("shop", "production")
    first = api.get(f"/stacks/{uid}/deployments").json()
    assert set(first) == {"response", "pagination"}
    assert first["pagination"] == {"previous": None, "next": 2, "current": 1, "per_page": 30}
    everything = api.deployments(uid)  # follows `next`
    assert len(everything) == 46
    assert len({d["id"] for d in everything}) == 46
    sandbox.pagination_style = "prev"
    assert api.get("/stacks").json()["pagination"] == {"prev": None, "next": None, "current": 1}


def test_pages_key_can_be_served_as_some_doc_samples_show_it(fake_clock: FakeClock) -> None:
    with Simulator(clock=fake_clock, include_pages=True) as sim:
        api = Api(sim)
        uid = api.uid("shop", "staging")
        assert api.get(f"/stacks/{uid}/deployments").json()["pagination"]["pages"] == 2


# -- 4. list order ------------------------------------------------------------------


def test_deployments_and_actions_come_newest_or_oldest_first(sandbox: Simulator, api: Api) -> None:
    uid = api.uid("shop", "production")
    stacks_before = [s["uid"] for s in api.all("/stacks")]
    newest = api.deployments(uid)
    starts = [_when(d["started_at"]) for d in newest]
    assert starts == sorted(starts, reverse=True)
    actions = api.all(f"/stacks/{uid}/actions")
    assert [a["started_at"] for a in actions] == sorted(
        (a["started_at"] for a in actions), reverse=True
    )

    sandbox.order = "oldest"
    oldest = api.deployments(uid)
    assert [d["id"] for d in oldest] == [d["id"] for d in reversed(newest)]
    assert api.get(f"/stacks/{uid}/deployments").json()["response"][0]["id"] == newest[-1]["id"]
    assert [a["id"] for a in api.all(f"/stacks/{uid}/actions")] == [
        a["id"] for a in reversed(actions)
    ]
    assert [s["uid"] for s in api.all("/stacks")] == stacks_before
    with pytest.raises(ValueError, match="order"):
        sandbox.order = "random"
    with pytest.raises(ValueError, match="order"):
        Simulator(order="newest-first")


def test_order_oldest_puts_a_running_deployment_on_the_last_page(fake_clock: FakeClock) -> None:
    with Simulator(clock=fake_clock, order="oldest") as sim:
        api = Api(sim)
        uid = api.uid("shop", "production")
        deployment_id = sim.start_foreign_deployment("shop", "production")
        assert not any(
            d["is_deploying"] for d in api.get(f"/stacks/{uid}/deployments").json()["response"]
        )
        last = api.get(f"/stacks/{uid}/deployments", page=2).json()["response"]
        assert last[-1]["id"] == deployment_id
        assert last[-1]["is_deploying"] is True


# -- 5. actions filtered by user_reference --------------------------------------------


def test_actions_filter_on_user_reference_and_stay_paged(fake_clock: FakeClock) -> None:
    with Simulator(clock=fake_clock, per_page=2) as sim:
        api = Api(sim)
        uid = api.uid("blog", "production")
        for reference in ("igor:cli:a", "other", "igor:cli:a", "igor:cli:a"):
            assert api.deploy(uid, user_reference=reference).ok
        first = api.get(f"/stacks/{uid}/actions", user_reference="igor:cli:a").json()
        assert first["count"] == 3
        assert first["pagination"]["next"] == 2
        mine = api.all(f"/stacks/{uid}/actions?user_reference=igor:cli:a")
        assert len(mine) == 3
        assert {a["metadata"]["user_reference"] for a in mine} == {"igor:cli:a"}
        none = api.get(f"/stacks/{uid}/actions", user_reference="nobody").json()
        assert (none["response"], none["count"]) == ([], 0)
        every = api.get(f"/stacks/{uid}/actions", user_reference="").json()
        assert every["count"] == len(api.all(f"/stacks/{uid}/actions")) > 4


# -- 6. histories ----------------------------------------------------------------------

# The deployment object of both docs' samples, and nothing else (sources.py).
DEPLOYMENT_KEYS = {
    "id", "triggered_by", "triggered_via", "started_at", "finished_at", "outcome", "git_hash",
    "deploy_session", "deploy_type", "is_head", "is_live", "reverted", "reverted_by",
    "reverted_at", "is_deploying", "commit_url",
}  # fmt: skip
# What the simulator records of a deploy's asking, which no source shows: turned on
# here only to check that the sandbox's own history is believable.
RECORDED = ("deployment.git_ref", "deployment.services", "deployment.deployment_profile")


def test_sample_histories_look_real(fake_clock: FakeClock) -> None:
    with Simulator(clock=fake_clock, undocumented=RECORDED) as sandbox:
        _sample_histories_look_real(sandbox, Api(sandbox))


def _sample_histories_look_real(sandbox: Simulator, api: Api) -> None:
    production = api.deployments(api.uid("shop", "production"))
    staging = api.deployments(api.uid("shop", "staging"))
    assert (len(production), len(staging)) == (46, 36)
    for history in (production, staging):
        assert all(set(d) == DEPLOYMENT_KEYS | {r.split(".")[1] for r in RECORDED} for d in history)
        assert {d["outcome"]["meaning"] for d in history} == {"success", "failed", "cancelled"}
        # Within a stack, a higher id is a newer deployment.
        assert [d["id"] for d in history] == sorted((d["id"] for d in history), reverse=True)
        assert all(d["finished_at"] > d["started_at"] for d in history)
        assert len({d["triggered_by"] for d in history}) > 1
    assert {d["git_ref"] for d in production} == {"main"}
    assert {d["git_ref"] for d in staging} == {"develop"}
    assert not {d["git_hash"] for d in production} & {d["git_hash"] for d in staging}
    # Redeploys of an unchanged branch run the same commit again.
    assert len({d["git_hash"] for d in production}) < len(production)
    assert any(d["deployment_profile"] for d in production)
    span = _when(production[0]["started_at"]) - _when(production[-1]["started_at"])
    assert span.days >= 21
    assert all(d["deploy_type"] == {"code": 0, "meaning": "build"} for d in production)

    docker = api.deployments(api.uid("api", "production"))
    assert docker[0]["services"] == ["web:1.4.2", "worker:1.4.2"]
    assert ["web:1.4.1", "worker:1.4.1"] in [d["services"] for d in docker]
    assert all(d["services"] for d in docker)
    assert all(d["services"] is None for d in production)


def test_is_live_marks_the_newest_success_only(
    sandbox: Simulator, api: Api, fake_clock: FakeClock
) -> None:
    legacy = api.deployments(api.uid("legacy", "production"))
    live = [d for d in legacy if d["is_live"]]
    assert len(live) == 1
    assert legacy[0]["outcome"]["meaning"] == "failed"
    newest_success = next(d for d in legacy if d["outcome"]["meaning"] == "success")
    assert live[0]["id"] == newest_success["id"] != legacy[0]["id"]

    uid = api.uid("shop", "production")
    before = next(d for d in api.deployments(uid) if d["is_live"])
    api.deploy(uid)
    running = api.deployments(uid)[0]
    assert (running["is_deploying"], running["is_live"]) == (True, False)
    assert next(d for d in api.deployments(uid) if d["is_live"])["id"] == before["id"]
    fake_clock.now += 60
    after = api.deployments(uid)
    assert [d["id"] for d in after if d["is_live"]] == [running["id"]]


def test_every_history_deployment_has_its_finished_action(fake_clock: FakeClock) -> None:
    # Which deployment an action ran is no documented field: turned on here only to
    # check the pairs the simulator keeps; igor links them by their times instead.
    with Simulator(clock=fake_clock, undocumented=["action.metadata.deployment_id"]) as sim:
        api = Api(sim)
        uid = api.uid("shop", "staging")
        deployments = {d["id"]: d for d in api.deployments(uid)}
        actions = api.all(f"/stacks/{uid}/actions")
    assert {a["metadata"]["deployment_id"] for a in actions} == set(deployments)
    for action in actions:
        deployment = deployments[action["metadata"]["deployment_id"]]
        assert action["finished_at"] == deployment["finished_at"]
        assert action["finished_success"] is (deployment["outcome"]["meaning"] == "success")
        assert action["user"] == deployment["triggered_by"]
        assert action["action"] == "application_deployment"  # as the 2024 sample names it


def test_add_history_goes_back_from_the_oldest_deployment(fake_clock: FakeClock) -> None:
    with Simulator(clock=fake_clock, undocumented=RECORDED) as sandbox:  # see RECORDED
        _add_history_goes_back(sandbox, Api(sandbox))


def _add_history_goes_back(sandbox: Simulator, api: Api) -> None:
    uid = api.uid("search", "staging")
    before = api.deployments(uid)
    ids = sandbox.add_history(
        "search", "staging", 6, outcomes=("success", "failed"), via="api", profiles=("fast",)
    )
    assert len(ids) == 6
    after = api.deployments(uid)
    assert len(after) == len(before) + 6
    assert after[: len(before)] == before  # the newest ones did not move
    added = after[len(before) :]
    assert [d["id"] for d in added] == ids
    assert max(d["finished_at"] for d in added) < before[-1]["started_at"]
    assert [d["outcome"]["meaning"] for d in added] == ["success", "failed"] * 3
    assert {d["triggered_via"]["meaning"] for d in added} == {"api"}
    assert {d["deployment_profile"] for d in added} == {"fast"}
    assert sandbox.stack("search", "staging")["last_activity_iso"] == before[0]["finished_at"]

    sandbox.add_history("api", "production", 2, services=["web:0.9"])
    assert api.deployments(api.uid("api", "production"))[-1]["services"] == ["web:0.9"]
    sandbox.add_history("blog", "production", 1, git_ref="release-1")
    assert api.deployments(api.uid("blog", "production"))[-1]["git_ref"] == "release-1"


def test_add_history_refuses_what_the_stack_cannot_take(sandbox: Simulator) -> None:
    with pytest.raises(ValueError, match="docker stacks only"):
        sandbox.add_history("blog", "production", 1, services=["web"])
    with pytest.raises(ValueError, match="non-docker"):
        sandbox.add_history("api", "production", 1, git_ref="main")
    with pytest.raises(ValueError, match="not found"):
        sandbox.add_history("api", "production", 1, services=["db"])
    with pytest.raises(ValueError, match="outcome"):
        sandbox.add_history("blog", "production", 1, outcomes=("Exploded",))
    with pytest.raises(KeyError):
        sandbox.add_history("nope", "production", 1)


def test_custom_stacks_can_ask_for_a_history(fake_clock: FakeClock) -> None:
    with Simulator(clock=fake_clock, stacks=[{"name": "solo", "history": 40}]) as sim:
        api = Api(sim)
        assert len(api.deployments(api.uid("solo", "production"))) == 41


def test_redeploying_a_branch_or_an_old_hash_runs_that_commit(
    sandbox: Simulator, api: Api, fake_clock: FakeClock
) -> None:
    uid = api.uid("shop", "production")
    history = api.deployments(uid)
    head = history[0]["git_hash"]
    api.deploy(uid, git_ref="main")
    assert api.deployments(uid)[0]["git_hash"] == head
    fake_clock.now += 60
    old = next(d["git_hash"] for d in history if d["git_hash"] != head)
    api.deploy(uid, git_ref=old)
    assert api.deployments(uid)[0]["git_hash"] == old
    fake_clock.now += 60
    staging_head = api.deployments(api.uid("shop", "staging"))[0]["git_hash"]
    api.deploy(uid, git_ref=staging_head[:7])  # the same repository knows the short hash
    assert api.deployments(uid)[0]["git_hash"] == staging_head


# -- 7. stacks ------------------------------------------------------------------------


def test_stacks_show_their_repository_branch_framework_and_backend(
    api: Api, fake_clock: FakeClock
) -> None:
    stacks = {(s["name"], s["environment"]): s for s in api.all("/stacks")}
    for stack in stacks.values():
        assert stack["git"].endswith(".git")
        assert stack["git_branch"]
        assert stack["framework"]
        assert "backend" not in stack  # the Go client has the field; no source its values
    # Turned on to check the values it would take (igor reads `framework`, not this).
    with Simulator(clock=fake_clock, undocumented=["stack.backend"]) as sim:
        stacks = {(s["name"], s["environment"]): s for s in Api(sim).all("/stacks")}
    production, staging = stacks["shop", "production"], stacks["shop", "staging"]
    assert production["git"] == staging["git"]
    assert (production["git_branch"], staging["git_branch"]) == ("main", "develop")
    others = [s["git"] for key, s in stacks.items() if key[0] != "shop"]
    assert len(set(others)) == len(others)
    assert production["git"] not in others
    assert stacks["api", "production"]["backend"] == "kubernetes"
    assert stacks["blog", "production"]["backend"] == ""


def test_last_activity_moves_when_a_deployment_starts(
    sandbox: Simulator, api: Api, fake_clock: FakeClock
) -> None:
    uid = api.uid("blog", "production")
    api.deploy(uid)
    stack = sandbox.stack("blog", "production")
    assert stack["last_activity_iso"] == stack["last_activity"] == "2026-11-27T10:00:00Z"
    fake_clock.now += 10
    api.deploy(uid)  # queued: nothing starts yet
    assert sandbox.stack("blog", "production")["last_activity_iso"] == "2026-11-27T10:00:00Z"
    fake_clock.now += 50  # the first ends and the queued one starts at 10:01:00
    assert sandbox.stack("blog", "production")["last_activity_iso"] == "2026-11-27T10:01:00Z"
    fake_clock.now += 60
    assert sandbox.stack("blog", "production")["last_activity_iso"] == "2026-11-27T10:02:00Z"


# -- 8. what POST deployments accepts ----------------------------------------------------


@pytest.fixture
def recording(fake_clock: FakeClock) -> Iterator[Api]:
    """A simulator serving what it records of a deploy's asking (RECORDED, no source)."""
    with Simulator(clock=fake_clock, undocumented=RECORDED) as sim:
        yield Api(sim)


def test_git_ref_and_deployment_profile_are_recorded(recording: Api) -> None:
    api = recording
    uid = api.uid("shop", "staging")
    answer = api.deploy(uid, git_ref="feature/cart", deployment_profile="fast")
    assert answer.status_code == 200
    live = api.deployments(uid)[0]
    assert (live["git_ref"], live["deployment_profile"]) == ("feature/cart", "fast")
    action = api.get(f"/stacks/{uid}/actions/{answer.json()['response']['async_action_id']}")
    assert action.json()["response"]["metadata"] == {"user_reference": None}


def test_services_are_recorded_from_a_string_or_a_list(recording: Api) -> None:
    api = recording
    uid = api.uid("api", "production")
    answer = api.deploy(uid, services=["web:1.5", "worker"])
    assert answer.status_code == 200
    assert api.deployments(uid)[0]["services"] == ["web:1.5", "worker"]


def test_services_on_a_classic_stack_and_git_ref_on_a_docker_stack_are_refused(
    sandbox: Simulator, api: Api
) -> None:
    shop = api.uid("shop", "production")
    docker = api.uid("api", "production")
    services = api.deploy(shop, services="web")
    assert services.status_code == 400
    assert services.json() == {
        "error": "bad_request",
        "error_description": "services apply to docker stacks only",
        "details": None,
    }
    git_ref = api.deploy(docker, git_ref="main")
    assert git_ref.status_code == 400
    assert git_ref.json()["error_description"] == "git_ref applies to non-docker stacks only"
    assert sandbox.count("POST", "/deployments") == 2
    assert not _running(api, shop)
    assert not _running(api, docker)


def test_the_go_clients_empty_fields_are_accepted_on_both_kinds(recording: Api) -> None:
    api = recording
    # cloud66-oss/cloud66 RedeployStack always sends these, empty when unset.
    empty = {"git_ref": "", "deploy_strategy": "", "deployment_profile": "", "services": None}
    for name in ("shop", "api"):
        uid = api.uid(name, "production")
        assert api.deploy(uid, **empty).status_code == 200
        live = api.deployments(uid)[0]
        assert live["deployment_profile"] is None
        assert live["git_ref"] == "main"


# -- 9. throttling --------------------------------------------------------------------


def test_every_answer_carries_the_rate_headers(api: Api) -> None:
    first = api.get("/stacks")
    second = api.get("/nothing")
    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == (
        "3000",
        "2999",
    )
    assert second.status_code == 404
    assert second.headers["X-RateLimit-Remaining"] == "2998"


def test_a_spent_budget_throttles_until_the_next_hour(fake_clock: FakeClock) -> None:
    fake_clock.now = START + 1800  # 10:30
    with Simulator(clock=fake_clock, rate_limit=3) as sim:
        api = Api(sim)
        uid = api.uid("blog", "production")  # 1
        assert api.get(f"/stacks/{uid}").headers["X-RateLimit-Remaining"] == "1"  # 2
        assert api.get("/accounts").headers["X-RateLimit-Remaining"] == "0"  # 3
        throttled = api.deploy(uid)
        assert throttled.status_code == 503
        assert throttled.json() == {
            "error": "throttled",
            "error_description": "Rate limit exceeded: 3 requests per user per hour",
            "details": None,
        }
        assert "Retry-After" not in throttled.headers
        assert throttled.headers["X-RateLimit-Remaining"] == "0"
        assert sim.stack("blog", "production")["is_busy"] is False  # the POST did nothing

        sim.add_token("teammate", ["public"])
        assert Api(sim, token="teammate").get("/stacks").status_code == 200  # its own budget

        fake_clock.now = START + HOUR - 1  # 10:59:59, still the same hour
        assert api.get("/stacks").status_code == 503
        fake_clock.now = START + HOUR  # 11:00:00
        fresh = api.get("/stacks")
        assert fresh.status_code == 200
        assert fresh.headers["X-RateLimit-Remaining"] == "2"


def test_the_rate_limit_changes_at_runtime_and_can_be_lifted(sandbox: Simulator, api: Api) -> None:
    sandbox.rate_limit = 1
    assert api.get("/stacks").status_code == 200
    answer = api.get("/stacks")
    assert answer.status_code == 503
    assert answer.json()["error_description"] == (
        "Rate limit exceeded: 1 requests per user per hour"
    )
    sandbox.rate_limit = 3000
    # Two requests spent: the throttled answer cost nothing.
    assert api.get("/stacks").headers["X-RateLimit-Remaining"] == "2998"
    sandbox.rate_limit = None
    unlimited = api.get("/stacks")
    assert unlimited.status_code == 200
    assert "X-RateLimit-Remaining" not in unlimited.headers


def test_the_documented_limit_is_the_default(sandbox: Simulator, api: Api) -> None:
    assert sandbox.rate_limit == 3000
    sandbox.fail_next(503)
    assert api.get("/stacks").json()["error_description"] == (
        "Rate limit exceeded: 3,000 requests per user per hour"
    )


def test_injected_faults_carry_the_headers_but_spend_nothing(sandbox: Simulator, api: Api) -> None:
    api.get("/stacks")
    sandbox.fail_next(502)
    fault = api.get("/stacks")
    assert fault.status_code == 502
    assert fault.headers["X-RateLimit-Remaining"] == "2999"
    assert api.get("/stacks").headers["X-RateLimit-Remaining"] == "2998"
    unknown = Api(sandbox, token="nobody").get("/stacks")
    assert unknown.status_code == 401
    assert "X-RateLimit-Remaining" not in unknown.headers


# -- 10. damaged state and reset ------------------------------------------------------------


def test_a_clean_start_recovers_nothing(tmp_path: Path, fake_clock: FakeClock) -> None:
    with Simulator(clock=fake_clock, state_path=tmp_path / "state.json") as sim:
        assert sim.recovered is None
    with Simulator(clock=fake_clock, state_path=tmp_path / "state.json") as again:
        assert again.recovered is None


def test_an_outdated_or_foreign_state_file_is_set_aside_too(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"format": "igor-sandbox/1", "stacks": []}))
    first = state.with_name(f"state.json.damaged-{int(START)}")
    first.write_text("an earlier one")
    with Simulator(clock=fake_clock, state_path=state) as sim:
        assert sim.recovered == state.with_name(f"state.json.damaged-{int(START)}-2")
        assert Api(sim).get("/stacks").json()["count"] == 7
    assert first.read_text() == "an earlier one"
    assert json.loads(sim.recovered.read_text())["format"] == "igor-sandbox/1"


def test_reset_starts_the_account_over(tmp_path: Path, fake_clock: FakeClock) -> None:
    state = tmp_path / "state.json"
    with Simulator(clock=fake_clock, state_path=state) as sim:
        api = Api(sim)
        api.deploy(api.uid("shop", "production"))
        sim.add_stacks(3)
        sim.add_history("blog", "production", 5)
        assert api.get("/stacks").json()["count"] == 10
        sim.reset()
        assert api.get("/stacks").json()["count"] == 7
        assert sim.stack("shop", "production")["is_busy"] is False
        assert len(api.deployments(api.uid("blog", "production"))) == 5
    with Simulator(clock=fake_clock, state_path=state) as later:
        assert Api(later).get("/stacks").json()["count"] == 7
        assert later.recovered is None


def test_reset_in_memory(fake_clock: FakeClock) -> None:
    with Simulator(clock=fake_clock, stacks=[{"name": "one"}]) as sim:
        sim.add_stacks(2)
        sim.reset()
        assert [s["name"] for s in Api(sim).all("/stacks")] == ["one"]


# -- where igor trips over the real API (strict xfails, one defect each) -------------


@pytest.fixture
def client(sandbox: Simulator) -> Iterator[Cloud66Client]:
    from igor_cli.cloud66.client import Cloud66Client, RetryPolicy

    with Cloud66Client(
        SANDBOX_TOKEN, sandbox.url, retry=RetryPolicy(sleep=lambda _: None)
    ) as opened:
        yield opened


def test_igor_reads_the_account_friendly_name(client: Cloud66Client) -> None:
    assert client.accounts()[0].name == "igor sandbox"


def test_igor_follows_next_when_no_count_is_given(
    sandbox: Simulator, client: Cloud66Client
) -> None:
    sandbox.add_stacks(40)
    sandbox.include_count = False
    assert len(client.stacks()) == 47


def test_igor_does_not_retry_a_throttled_answer(sandbox: Simulator, client: Cloud66Client) -> None:
    from igor_cli.errors import Throttled

    sandbox.rate_limit = 0
    with pytest.raises(Throttled):
        client.stacks()
    assert sandbox.count("GET") == 1


def test_igor_cancels_a_deployment_listed_oldest_first(sim: Simulator, igor: Igor) -> None:
    sim.order = "oldest"
    sim.start_foreign_deployment("shop", "production")
    ran = igor("cancel", "-s", "shop", "-e", "production")
    assert sim.count("DELETE") == 1
    assert ran.exit_code == 0
