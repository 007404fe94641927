"""The Cloud 66 client against the simulator: paging, retries, throttling, errors, models."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from igor_cli.cloud66.client import Cloud66Client, RetryPolicy, new_session
from igor_cli.cloud66.models import (
    Account,
    AsyncAction,
    Deployment,
    Service,
    Stack,
    StackHealth,
    StackStatus,
)
from igor_cli.errors import (
    ApiError,
    BadApiUrl,
    Cloud66Error,
    Conflict,
    ExitCode,
    Forbidden,
    NotFound,
    OutcomeUnknown,
    Throttled,
    TrialExpired,
    Unauthorized,
    Unreachable,
)
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.fakes.clock import FakeClock

# A 503 that is not the throttle: a gateway having a bad moment.
UNAVAILABLE = {"error": "service_unavailable", "error_description": "Try later", "details": None}


def client_for(sim: Simulator, clock: FakeClock, **kwargs: Any) -> Cloud66Client:
    return Cloud66Client(
        SANDBOX_TOKEN, sim.url, retry=RetryPolicy(sleep=clock.sleep), now=clock.datetime, **kwargs
    )


def text_of(error: Cloud66Error) -> str:
    return f"{error.message} {error.hint}"


# -- paging -----------------------------------------------------------------


@pytest.mark.parametrize("style", ["previous", "prev"])
def test_every_page_is_read_in_order_with_either_pagination_shape(
    sim: Simulator, clock: FakeClock, style: str
) -> None:
    sim.pagination_style = style
    sim.add_stacks(100)  # 107 stacks: 4 pages of 30
    with client_for(sim, clock) as client:
        stacks = client.stacks()
    assert len(stacks) == 107
    pages = sorted(r.query.get("page", "1") for r in sim.requests if r.path.endswith("/stacks"))
    assert pages == ["1", "2", "3", "4"]
    generated = [s.name for s in stacks if s.name.startswith("app-")]
    assert generated == sorted(generated)  # pages kept in order


def test_pages_after_the_first_are_fetched_concurrently(sim: Simulator, clock: FakeClock) -> None:
    sim.add_stacks(233)  # 240 stacks: 8 pages
    sim.latency = 0.2
    started = time.perf_counter()
    with client_for(sim, clock) as client:
        assert len(client.stacks()) == 240
    took = time.perf_counter() - started
    # One after another would be 8 x 0.2 = 1.6 s; first page then 7 at once ~0.4 s.
    assert took < 1.0, took


def _three_more_deployments(client: Cloud66Client, clock: FakeClock, uid: str) -> None:
    for n in range(3):
        client.deploy(uid, user_reference=f"igor:test:{n}")
        clock.advance(120)  # each one finishes before the next


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_deployments_and_actions_are_read_from_the_newest_end_only_as_far_as_asked(
    order: str,
) -> None:
    clock = FakeClock()
    with Simulator(clock=clock, per_page=1, stacks=[{"name": "blog"}], order=order) as sim:
        uid = sim.stack("blog", "production")["uid"]
        with client_for(sim, clock) as client:
            _three_more_deployments(client, clock, uid)
            sim.reset_requests()
            newest = client.newest_deployments(uid, lambda found: len(found) >= 2)
            every = client.newest_deployments(uid, lambda found: False, max_pages=10)
            actions = client.newest_actions(uid, lambda found: False, max_pages=10)
        assert [d.id for d in newest.items] == [d.id for d in every.items][:2]
        assert (newest.total, newest.complete, every.complete) == (4, False, True)
        # Page 1 (the count) and the last (the order, learned anew without a memory),
        # then from the newest end: page 2 when newest first, 3 when oldest first.
        pages = [r.query.get("page", "1") for r in sim.requests if r.path.endswith("/deployments")]
        assert pages[:3] == ["1", "4", "2" if order == "newest" else "3"]
        assert len(every.items) == 4  # the seeded one and three more, one a page
        starts = [d.started_at for d in every.items]
        assert starts == sorted(starts, reverse=True)  # newest first, whatever the order
        assert len(actions.items) == 4  # the seeded deployment has an action too
        assert {a.user_reference for a in actions.items} == {
            "", *(f"igor:test:{n}" for n in range(3))
        }  # fmt: skip


def test_actions_send_the_user_reference_filter(sim: Simulator, clock: FakeClock) -> None:
    uid = sim.stack("blog", "production")["uid"]
    with client_for(sim, clock) as client:
        assert client.actions_for(uid, "igor:slack:U1:Ev1") == []
        client.newest_actions(uid)
    asked = [r.query for r in sim.requests if r.path.endswith("/actions")]
    assert asked == [{"user_reference": "igor:slack:U1:Ev1"}, {}]


def test_stack_is_one_get(sim: Simulator, clock: FakeClock) -> None:
    uid = sim.stack("blog", "production")["uid"]
    with client_for(sim, clock) as client:
        assert client.stack(uid).name == "blog"
    assert [r.path for r in sim.requests] == [f"/api/3/stacks/{uid}"]


# -- models -----------------------------------------------------------------


def test_models_read_the_api_fields(sim: Simulator, clock: FakeClock) -> None:
    with client_for(sim, clock) as client:
        stacks = {(s.name, s.environment): s for s in client.stacks()}
        legacy = stacks[("legacy", "production")]
        assert legacy.status is StackStatus.DEPLOY_FAILED
        assert legacy.health is StackHealth.FAILED
        assert legacy.last_activity is not None
        assert legacy.git.endswith(".git")
        assert legacy.git_branch == "main"
        assert [s.name for s in client.services(stacks[("api", "production")].uid)] == [
            "web",
            "worker",
        ]
        history = client.newest_deployments(legacy.uid).items
        assert history[0].outcome == "failed"  # a string code in the simulator
        assert not history[0].is_deploying


def test_outcome_codes_compare_on_meaning() -> None:
    integer = Deployment.from_api({"id": 1, "outcome": {"code": 1, "meaning": "Success"}})
    text = Deployment.from_api({"id": 2, "outcome": {"code": "failed", "meaning": "Failed"}})
    assert (integer.outcome, text.outcome) == ("Success", "Failed")


def test_unknown_codes_do_not_crash() -> None:
    stack = Stack.from_api({"uid": "x", "name": "n", "status": 42, "health": "bad"})
    assert stack.status is StackStatus.UNKNOWN
    assert stack.health is StackHealth.UNKNOWN
    action = AsyncAction.from_api({"id": 5, "finished_at": None, "metadata": None})
    assert not action.finished


def test_private_use_characters_never_come_in_from_the_api() -> None:
    marker = "\ue000"
    stack = Stack.from_api(
        {"uid": "u\uf8ff", "name": f"sh{marker}op", "environment": f"prod{marker}", "git": marker}
    )
    assert (stack.uid, stack.name, stack.environment, stack.git) == ("u", "shop", "prod", "")
    deployment = Deployment.from_api(
        {"id": 1, "triggered_by": f"al{marker}ice", "outcome": {"meaning": f"Fail{marker}ed"},
         "triggered_via": {"code": f"w{marker}eb", "meaning": "Web"}}
    )  # fmt: skip
    assert deployment.triggered_by == "alice"
    assert deployment.outcome == "Failed"
    assert deployment.triggered_via_code == "web"
    service = Service.from_api({"name": "web", "image_tag": f"1.{marker}2"})
    assert service.tag == "1.2"
    action = AsyncAction.from_api(
        {
            "id": 2,
            "finished_message": f"ok{marker}",
            "metadata": {"user_reference": f"igor:{marker}x"},
        }
    )
    assert (action.finished_message, action.user_reference) == ("ok", "igor:x")
    account = Account.from_api({"id": 3, "friendly_name": f"Acme{marker}", "owner": "o"})
    assert account.name == "Acme"
    # Characters just outside the private-use block stay.
    assert Stack.from_api({"name": "a\ud7ff\uf900b"}).name == "a\ud7ff\uf900b"


def test_stack_knows_whether_it_runs_containers_from_its_framework_only() -> None:
    assert Stack.from_api({"framework": "docker"}).is_docker
    # `backend` is a field only the Go client shows; a documented rails stack says
    # kubernetes there: it stays a classic stack, which takes a git ref.
    assert not Stack.from_api({"framework": "rails", "backend": "kubernetes"}).is_docker
    assert not Stack.from_api({"backend": "docker"}).is_docker
    classic = Stack.from_api({"framework": "rails", "backend": "", "git": "g", "git_branch": "b"})
    assert not classic.is_docker
    assert (classic.git, classic.git_branch) == ("g", "b")


def test_deployment_reads_only_documented_fields() -> None:
    deployment = Deployment.from_api(
        {"id": 9, "git_ref": "release-1", "services": "web:1.2, worker", "deploy_type": "redeploy",
         "is_live": True, "deployment_profile": "fast"}
    )  # fmt: skip
    # What a deployment ran beyond its hash is no documented field: igor fills these
    # only from its own record of what it sent.
    assert (deployment.git_ref, deployment.services, deployment.deployment_profile) == (
        "",
        (),
        "",
    )
    assert deployment.deploy_type == "redeploy"
    assert deployment.is_live
    bare = Deployment.from_api({"id": 10})
    assert (bare.is_live, bare.via_api) == (False, None)


@pytest.mark.parametrize(
    ("via", "api"),
    [
        ({"code": 0, "meaning": "web"}, False),  # the docs' sample
        ({"code": "web", "meaning": "Web Interface"}, False),  # the short word in `code`
        ({"code": 2, "meaning": "api"}, True),
        ({"code": "api", "meaning": "API request"}, True),
        ({"code": "api", "meaning": "Programmatic"}, True),
        ({"code": 5, "meaning": "Hook"}, False),
    ],
)
def test_how_a_deployment_was_started_is_read_from_code_and_meaning(
    via: dict[str, Any], api: bool
) -> None:
    assert Deployment.from_api({"id": 1, "triggered_via": via}).via_api is api


def test_outcomes_are_read_from_code_and_meaning() -> None:
    from igor_cli.cloud66.activity import deployment_state

    for outcome, state in [
        ({"code": 1, "meaning": "success"}, "succeeded"),
        ({"code": "success", "meaning": "Successful"}, "succeeded"),
        ({"code": "failed", "meaning": "Deployment failed"}, "failed"),
        ({"code": "cancelled", "meaning": "Cancelled by dana"}, "cancelled"),
    ]:
        assert deployment_state(Deployment.from_api({"id": 1, "outcome": outcome})) == state


def test_a_services_tag_comes_from_the_go_clients_field_or_its_containers_images() -> None:
    assert Service.from_api({"name": "web", "image_tag": "1.4"}).tag == "1.4"
    docs = {"name": "web", "containers": [{"image": "quay.io/cloud66/sample-rails"}]}
    assert Service.from_api(docs).tag == ""  # the docs' sample: no tag shown
    tagged = {"name": "web", "containers": [{"image": "ghcr.io/x/web:2.0"}] * 2}
    assert Service.from_api(tagged).tag == "2.0"
    mixed = {"name": "web", "containers": [{"image": "x:1"}, {"image": "x:2"}]}
    assert Service.from_api(mixed).tag == ""  # a rollout half done: igor cannot tell


def test_account_name_is_the_friendly_name(sim: Simulator, clock: FakeClock) -> None:
    assert Account.from_api({"friendly_name": "Acme", "name": "old"}).name == "Acme"
    assert Account.from_api({"name": "fallback"}).name == "fallback"
    sim.fail_next(
        200,
        path_contains="/accounts",
        body={
            "response": [{"id": 1, "owner": "o@x", "friendly_name": "Acme Ltd", "stack_count": 7}],
            "count": 1,
            "pagination": {"previous": None, "next": None, "current": 1},
        },
    )
    with client_for(sim, clock) as client:
        [account] = client.accounts()
    assert (account.name, account.owner, account.stack_count) == ("Acme Ltd", "o@x", 7)


# -- deploy and cancel -----------------------------------------------------


def test_deploy_posts_the_optional_fields_only_when_given(sim: Simulator, clock: FakeClock) -> None:
    docker = sim.stack("api", "production")["uid"]
    classic = sim.stack("blog", "production")["uid"]
    with client_for(sim, clock) as client:
        client.deploy(docker)
        clock.advance(120)
        client.deploy(
            docker,
            services=["web:1.2", "worker"],
            user_reference="igor:cli:me",
            deployment_profile="fast",
        )
        client.deploy(classic, git_ref="v2")
    first, second, third = (r.body for r in sim.requests if r.method == "POST")
    assert first == {}
    assert second == {
        "services": "web:1.2,worker",
        "user_reference": "igor:cli:me",
        "deployment_profile": "fast",
    }
    assert third == {"git_ref": "v2"}


def test_user_reference_is_cut_to_255_characters(sim: Simulator, clock: FakeClock) -> None:
    uid = sim.stack("blog", "production")["uid"]
    with client_for(sim, clock) as client:
        answer = client.deploy(uid, user_reference="igor:" + "x" * 400)
    assert answer.ok
    posted = next(r for r in sim.requests if r.method == "POST")
    assert len(posted.body["user_reference"]) == 255


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_5xx_answer_to_a_deploy_is_an_unknown_outcome_never_retried(
    sim: Simulator, clock: FakeClock, status: int
) -> None:
    uid = sim.stack("blog", "production")["uid"]
    sim.fail_next(status, count=5, method="POST")
    with client_for(sim, clock) as client, pytest.raises(OutcomeUnknown) as caught:
        client.deploy(uid, user_reference="igor:cli:test")
    assert sim.count("POST") == 1
    assert clock.slept == []
    assert "may or may not have happened" in caught.value.message
    assert "igor list -s" in caught.value.hint
    assert "try again" not in text_of(caught.value).casefold()


def test_a_non_throttle_503_to_a_cancel_is_unknown(sim: Simulator, clock: FakeClock) -> None:
    deployment = sim.start_foreign_deployment("blog", "production")
    uid = sim.stack("blog", "production")["uid"]
    sim.fail_next(503, method="DELETE", body=UNAVAILABLE)
    with client_for(sim, clock) as client, pytest.raises(OutcomeUnknown):
        client.cancel(uid, str(deployment))
    assert sim.count("DELETE") == 1


def test_cancel_delete_without_answer_is_unknown(sim: Simulator, clock: FakeClock) -> None:
    deployment = sim.start_foreign_deployment("blog", "production")
    uid = sim.stack("blog", "production")["uid"]
    sim.drop_next(method="DELETE")
    with client_for(sim, clock) as client, pytest.raises(OutcomeUnknown) as caught:
        client.cancel(uid, str(deployment))
    assert sim.count("DELETE") == 1
    assert "try again" not in text_of(caught.value).casefold()


@pytest.mark.parametrize(
    ("status", "kind"), [(400, ApiError), (404, NotFound), (409, Conflict), (429, Throttled)]
)
def test_a_4xx_answer_to_a_deploy_is_a_definite_refusal(
    sim: Simulator, clock: FakeClock, status: int, kind: type[Cloud66Error]
) -> None:
    uid = sim.stack("blog", "production")["uid"]
    sim.fail_next(status, count=5, method="POST")
    with client_for(sim, clock) as client, pytest.raises(kind) as caught:
        client.deploy(uid)
    assert not isinstance(caught.value, OutcomeUnknown)
    assert sim.count("POST") == 1
    assert clock.slept == []


# -- retries and throttling ------------------------------------------------


def test_retries_are_bounded_and_back_off(sim: Simulator, clock: FakeClock) -> None:
    sim.fail_next(429, count=50)
    with client_for(sim, clock) as client, pytest.raises(Throttled) as caught:
        client.stacks()
    assert sim.count("GET", "/stacks") == 5
    assert len(clock.slept) == 4
    assert all(0 <= s <= 8 for s in clock.slept)
    assert caught.value.reset_at is None


def test_a_5xx_on_a_get_is_retried_honouring_retry_after(sim: Simulator, clock: FakeClock) -> None:
    sim.fail_next(502, count=2, headers={"Retry-After": "7"})
    with client_for(sim, clock) as client:
        assert client.stacks()
    assert sim.count("GET", "/stacks") == 3
    assert clock.slept == [7.0, 7.0]


def test_retry_gives_up_when_out_of_total_time(sim: Simulator, clock: FakeClock) -> None:
    sim.fail_next(503, count=50, body=UNAVAILABLE, headers={"Retry-After": "20"})
    with client_for(sim, clock) as client, pytest.raises(ApiError):
        client.stacks()
    assert clock.slept == [20.0]  # a second 20 s wait would pass the 30 s budget
    assert sim.count("GET", "/stacks") == 2


def test_the_sleep_is_injectable_and_may_interrupt(sim: Simulator, clock: FakeClock) -> None:
    class Interrupted(Exception):
        pass

    def interrupted(seconds: float) -> None:
        raise Interrupted

    sim.fail_next(502, count=5)
    client = Cloud66Client(SANDBOX_TOKEN, sim.url, retry=RetryPolicy(sleep=interrupted))
    with client, pytest.raises(Interrupted):
        client.stacks()
    assert sim.count("GET", "/stacks") == 1


def test_a_throttled_answer_is_final_until_the_next_hour(sim: Simulator) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 14, 25, 10, tzinfo=UTC).timestamp())
    sim.fail_next(503, count=50, body={"error": "throttled", "error_description": "slow down"})
    with client_for(sim, clock) as client:
        with pytest.raises(Throttled) as caught:
            client.stacks()
        assert sim.count("GET", "/stacks") == 1  # no retry
        assert clock.slept == []
        throttled = caught.value
        assert throttled.reset_at == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
        assert "3,000 requests an hour" in throttled.message
        assert "15:00 UTC" in throttled.message
        assert throttled.exit_code == ExitCode.UNAVAILABLE
        assert "try again later" not in text_of(throttled).casefold()

        # Refused locally, with no request, until the hour turns.
        clock.advance(30 * 60)
        for call in (client.stacks, lambda: client.deploy("x"), lambda: client.action("x", "1")):
            with pytest.raises(Throttled) as again:
                call()
            assert again.value.reset_at == throttled.reset_at
            assert again.value.message == throttled.message
        assert len(sim.requests) == 1


def test_the_client_asks_again_after_the_reset(sim: Simulator) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 14, 59, 0, tzinfo=UTC).timestamp())
    sim.fail_next(503, count=1, body={"error": "throttled"})
    with client_for(sim, clock) as client:
        with pytest.raises(Throttled):
            client.stacks()
        clock.advance(61)  # 15:00:01
        assert len(client.stacks()) == 7
    assert sim.count("GET", "/stacks") == 2


def test_a_throttled_deploy_is_a_definite_refusal(sim: Simulator, clock: FakeClock) -> None:
    uid = sim.stack("blog", "production")["uid"]
    sim.fail_next(503, method="POST", body={"error": "throttled"})
    with client_for(sim, clock) as client, pytest.raises(Throttled):
        client.deploy(uid)
    assert sim.count("POST") == 1


def test_rate_limit_headers_are_read_from_every_answer(sim: Simulator, clock: FakeClock) -> None:
    with client_for(sim, clock) as client:
        assert (client.rate_remaining, client.rate_limit) == (None, None)
        sim.fail_next(
            200,
            path_contains="/stacks",
            body={"response": [], "count": 0, "pagination": {}},
            headers={"X-RateLimit-Remaining": "2999", "X-RateLimit-Limit": "3000"},
        )
        client.stacks()
        assert (client.rate_remaining, client.rate_limit) == (2999, 3000)
        sim.fail_next(404, headers={"X-RateLimit-Remaining": "2998"})
        with pytest.raises(NotFound):
            client.stack("nope")
        assert (client.rate_remaining, client.rate_limit) == (2998, 3000)
        client.stacks()  # the simulator's own count, one request spent
        assert client.rate_limit == 3000
        assert client.rate_remaining is not None and client.rate_remaining < 3000


# -- error answers ---------------------------------------------------------


def test_wrong_token_is_unauthorized_and_never_echoed(sim: Simulator, clock: FakeClock) -> None:
    with Cloud66Client("secret-4242", sim.url) as client, pytest.raises(Unauthorized) as caught:
        client.stacks()
    assert "secret-4242" not in text_of(caught.value)
    assert sim.count("GET", "/stacks") == 1  # a 401 is not retried


def test_404_is_not_found(sim: Simulator, clock: FakeClock) -> None:
    with client_for(sim, clock) as client, pytest.raises(NotFound):
        client.stack("no-such-uid")


def test_an_expired_trial_is_its_own_error(sim: Simulator, clock: FakeClock) -> None:
    sim.fail_next(
        402, count=5, body={"error": "trial_expired", "error_description": "Trial expired"}
    )
    with client_for(sim, clock) as client, pytest.raises(TrialExpired) as caught:
        client.stacks()
    assert sim.count("GET", "/stacks") == 1
    assert caught.value.exit_code == ExitCode.NOT_AUTHORISED
    assert "the Cloud 66 account's trial has expired" in caught.value.message.replace("The", "the")
    assert "try again later" not in text_of(caught.value).casefold()


def test_error_text_prefers_details_then_description_then_error(
    sim: Simulator, clock: FakeClock
) -> None:
    bodies = [
        {"error": "not_found", "error_description": "Not found", "details": "Stack abc is gone"},
        {"error": "not_found", "error_description": "Not found here", "details": None},
        {"error": "stack_missing"},
    ]
    messages = []
    with client_for(sim, clock) as client:
        for body in bodies:
            sim.fail_next(404, body=body)
            with pytest.raises(NotFound) as caught:
                client.stack("x")
            messages.append(caught.value.message)
    assert "Stack abc is gone" in messages[0]
    assert "Not found" not in messages[0]
    assert "Not found here" in messages[1]
    assert "stack_missing" in messages[2]


def test_error_text_never_carries_the_token(sim: Simulator, clock: FakeClock) -> None:
    sim.fail_next(400, body={"error": "bad", "details": f"token {SANDBOX_TOKEN} is odd"})
    with client_for(sim, clock) as client, pytest.raises(ApiError) as caught:
        client.stacks()
    assert SANDBOX_TOKEN not in text_of(caught.value)


@pytest.mark.parametrize(
    ("call", "scope"),
    [
        (lambda c, uid: c.accounts(), "users"),
        (lambda c, uid: c.deploy(uid), "redeploy"),
        (lambda c, uid: c.cancel(uid, "1"), "redeploy"),
        (lambda c, uid: c.stacks(), "public"),
        (lambda c, uid: c.newest_deployments(uid), "public"),
        (lambda c, uid: c.action(uid, "1"), "public"),
    ],
)
def test_403_names_the_scope_the_call_needed(
    sim: Simulator, clock: FakeClock, call: Any, scope: str
) -> None:
    uid = sim.stack("blog", "production")["uid"]
    sim.fail_next(403, count=5)
    with client_for(sim, clock) as client, pytest.raises(Forbidden) as caught:
        call(client, uid)
    forbidden = caught.value
    assert forbidden.scope == scope
    assert f"lacks the {scope} scope" in forbidden.message
    assert "Account -> Authorized Applications -> Personal Access Token" in forbidden.hint
    for word in ("public", "redeploy", "users"):
        assert word in forbidden.hint
    assert forbidden.exit_code == ExitCode.NOT_AUTHORISED
    assert len(sim.requests) == 1  # never retried


# -- transport -------------------------------------------------------------


def test_a_timeout_on_a_get_is_retried(sim: Simulator, clock: FakeClock) -> None:
    sim.latency = 0.5
    with client_for(sim, clock, timeout=(1.0, 0.2)) as client, pytest.raises(Unreachable) as caught:
        client.stacks()
    assert "could not be reached" in caught.value.message
    assert "timed out" in caught.value.message
    assert sim.count("GET", "/stacks") == 5


def test_a_dropped_get_is_retried(sim: Simulator, clock: FakeClock) -> None:
    sim.drop_next(2, method="GET", path_contains="/stacks")
    with client_for(sim, clock) as client:
        assert len(client.stacks()) == 7
    assert sim.count("GET", "/stacks") == 3


def test_network_errors_name_the_place_not_the_path_or_token(
    sim: Simulator, clock: FakeClock
) -> None:
    url = sim.url
    sim.stop()  # nothing listens there any more
    with (
        Cloud66Client("secret-4242", url, retry=RetryPolicy(sleep=clock.sleep)) as client,
        pytest.raises(Unreachable) as caught,
    ):
        client.stacks()
    message = caught.value.message
    assert f"http://127.0.0.1:{url.split(':')[2].split('/')[0]} (connection refused)" in message
    assert "/api/3" not in message
    assert "secret-4242" not in text_of(caught.value)
    assert "Error" not in message  # no Python class names


@pytest.mark.parametrize(
    "url", ["app.cloud66.com", "app.cloud66.com/api/3", "localhost:8066", "ftp://x/api", ""]
)
def test_a_malformed_base_url_is_a_configuration_error(url: str) -> None:
    with pytest.raises(BadApiUrl) as caught:
        Cloud66Client("tok", url)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "IGOR_API_URL" in caught.value.hint


def test_a_base_url_holding_the_token_is_not_echoed() -> None:
    with pytest.raises(BadApiUrl) as caught:
        Cloud66Client("secret-4242", "secret-4242")
    assert "secret-4242" not in text_of(caught.value)


# -- sessions --------------------------------------------------------------


def test_clients_with_different_tokens_share_one_session(sim: Simulator, clock: FakeClock) -> None:
    session = new_session()
    try:
        good = Cloud66Client(SANDBOX_TOKEN, sim.url, session=session)
        bad = Cloud66Client("wrong-token", sim.url, session=session)
        assert len(good.stacks()) == 7
        with pytest.raises(Unauthorized):
            bad.stacks()
        assert len(good.stacks()) == 7
        good.close()
        bad.close()
        # The borrowed session is still open and usable, and holds no token of its own.
        assert session.request("GET", sim.url + "/stacks", headers={}).status == 401
    finally:
        session.close()
    assert sim.count("GET", "/stacks") == 4


def test_an_own_session_is_closed_with_the_client(sim: Simulator) -> None:
    client = Cloud66Client(SANDBOX_TOKEN, sim.url)
    client.stacks()
    own = client._session
    closed: list[bool] = []
    original = own.close
    own.close = lambda: (closed.append(True), original())[1]  # type: ignore[method-assign]
    client.close()
    assert closed == [True]


def test_netrc_does_not_replace_the_token(
    sim: Simulator, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with Cloud66Client(SANDBOX_TOKEN, sim.url) as client:
        assert len(client.stacks()) == 7


def test_a_listings_stacks_link_the_dashboard_from_one_shared_origin(
    sim: Simulator, clock: FakeClock
) -> None:
    # A big account holds 50,000 stacks: the link is made when asked, from the one
    # origin string the listing shares, not held once a stack.
    with client_for(sim, clock) as client:
        stacks = client.stacks()
    origin = sim.url.split("/api/")[0]
    assert stacks[0].dashboard_url == f"{origin}/stacks/{stacks[0].uid}"
    assert len({id(s.api_origin) for s in stacks}) == 1
    assert Stack.from_api({"name": "no uid"}, origin).dashboard_url == ""
