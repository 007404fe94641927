"""The Cloud 66 client against the simulator: paging, concurrency, retries, errors."""

from __future__ import annotations

import time

import pytest

from igor_cli.cloud66 import (
    AsyncAction,
    Cloud66Client,
    Deployment,
    RetryPolicy,
    Stack,
    StackHealth,
    StackStatus,
)
from igor_cli.errors import (
    ApiError,
    Cloud66Error,
    NotFound,
    OutcomeUnknown,
    Throttled,
    Unauthorized,
    Unreachable,
)
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.fakes.clock import FakeClock


def client_for(sim: Simulator, clock: FakeClock, **kwargs: object) -> Cloud66Client:
    return Cloud66Client(
        SANDBOX_TOKEN,
        sim.url,
        retry=RetryPolicy(sleep=clock.sleep),
        **kwargs,  # type: ignore[arg-type]
    )


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


def test_models_read_the_api_fields(sim: Simulator, clock: FakeClock) -> None:
    with client_for(sim, clock) as client:
        stacks = {(s.name, s.environment): s for s in client.stacks()}
        legacy = stacks[("legacy", "production")]
        assert legacy.status is StackStatus.DEPLOY_FAILED
        assert legacy.health is StackHealth.FAILED
        assert legacy.last_activity is not None
        assert [s.name for s in client.services(stacks[("api", "production")].uid)] == [
            "web",
            "worker",
        ]
        history = client.deployments(legacy.uid)
        assert history[0].outcome == "Failed"  # a string code in the simulator
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


def test_wrong_token_is_unauthorized_and_never_echoed(sim: Simulator, clock: FakeClock) -> None:
    with Cloud66Client("secret-4242", sim.url) as client, pytest.raises(Unauthorized) as caught:
        client.stacks()
    assert "secret-4242" not in str(caught.value) + caught.value.hint
    assert sim.count("GET", "/stacks") == 1  # a 401 is not retried


def test_404_is_not_found(sim: Simulator, clock: FakeClock) -> None:
    with client_for(sim, clock) as client, pytest.raises(NotFound):
        client.stack("no-such-uid")


def test_retries_are_bounded_and_back_off(sim: Simulator, clock: FakeClock) -> None:
    sim.fail_next(429, count=50)
    with client_for(sim, clock) as client, pytest.raises(Throttled):
        client.stacks()
    assert sim.count("GET", "/stacks") == 5
    assert len(clock.slept) == 4
    assert all(0 <= s <= 8 for s in clock.slept)


def test_retry_gives_up_when_out_of_total_time(sim: Simulator, clock: FakeClock) -> None:
    sim.fail_next(503, count=50, headers={"Retry-After": "20"})
    with client_for(sim, clock) as client, pytest.raises(Cloud66Error):
        client.stacks()
    assert clock.slept == [20.0]  # a second 20 s wait would pass the 30 s budget


def test_deploy_post_is_sent_once_even_on_5xx(sim: Simulator, clock: FakeClock) -> None:
    uid = sim.stack("blog", "production")["uid"]
    sim.fail_next(500, method="POST")
    with client_for(sim, clock) as client, pytest.raises(ApiError):
        client.deploy(uid, user_reference="igor:cli:test")
    assert sim.count("POST") == 1
    assert clock.slept == []


def test_cancel_delete_without_answer_is_unknown(sim: Simulator, clock: FakeClock) -> None:
    deployment = sim.start_foreign_deployment("blog", "production")
    uid = sim.stack("blog", "production")["uid"]
    sim.drop_next(method="DELETE")
    with client_for(sim, clock) as client, pytest.raises(OutcomeUnknown):
        client.cancel(uid, str(deployment))
    assert sim.count("DELETE") == 1


def test_user_reference_is_cut_to_255_characters(sim: Simulator, clock: FakeClock) -> None:
    uid = sim.stack("blog", "production")["uid"]
    with client_for(sim, clock) as client:
        answer = client.deploy(uid, user_reference="igor:" + "x" * 400)
    assert answer.ok
    posted = next(r for r in sim.requests if r.method == "POST")
    assert len(posted.body["user_reference"]) == 255


def test_a_timeout_on_a_get_is_retried(sim: Simulator, clock: FakeClock) -> None:
    sim.latency = 0.5
    with client_for(sim, clock, timeout=(1.0, 0.2)) as client, pytest.raises(Unreachable) as caught:
        client.stacks()
    assert "could not be reached" in str(caught.value)
    assert sim.count("GET", "/stacks") == 5
