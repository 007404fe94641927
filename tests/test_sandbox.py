"""Tests for the Cloud 66 simulator (igor_cli.sandbox) over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from igor_cli.sandbox import SANDBOX_TOKEN, RecordedRequest, Simulator

START = 1_795_773_600.0  # 2026-11-27T10:00:00Z
REPO = Path(__file__).resolve().parent.parent


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Api:
    """A tiny client: the token, the base URL and a timeout on every call."""

    def __init__(self, sim: Simulator, token: str | None = SANDBOX_TOKEN) -> None:
        self.base = sim.url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=5)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.base + path, timeout=5, **kwargs)

    def delete(self, path: str) -> requests.Response:
        return self.session.delete(self.base + path, timeout=5)

    def uid(self, name: str, environment: str) -> str:
        for stack in self.all("/stacks"):
            if stack["name"] == name and stack["environment"] == environment:
                return str(stack["uid"])
        raise AssertionError(f"no stack {name} {environment}")

    def all(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.get(path, page=page).json()
            items.extend(body["response"])
            if body["pagination"]["next"] is None:
                return items
            page += 1

    def deployments(self, uid: str) -> list[dict[str, Any]]:
        return self.all(f"/stacks/{uid}/deployments")

    def deploy(self, uid: str, **params: Any) -> requests.Response:
        return self.post(f"/stacks/{uid}/deployments", json=params)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[Simulator]:
    with Simulator(clock=clock) as simulator:
        yield simulator


@pytest.fixture
def api(sim: Simulator) -> Api:
    return Api(sim)


def test_importing_the_package_does_not_load_the_http_server() -> None:
    code = (
        "import sys, igor_cli.sandbox as s; "
        "print('http.server' in sys.modules, s.SANDBOX_TOKEN); "
        "from igor_cli.sandbox import Simulator; print(Simulator.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.split()
    assert out == ["False", "sandbox-token", "Simulator"]


def test_requests_without_the_right_token_get_401(sim: Simulator, api: Api) -> None:
    expected = {
        "error": "unauthenticated",
        "error_description": "The access token is invalid",
        "details": None,
    }
    for client in (Api(sim, token=None), Api(sim, token="wrong")):
        answer = client.get("/stacks")
        assert answer.status_code == 401
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.json() == expected
    assert api.get("/stacks").status_code == 200
    with Simulator(token="other") as strict:
        assert Api(strict).get("/stacks").status_code == 401
        assert Api(strict, token="other").get("/stacks").status_code == 200


def test_sample_stacks_are_realistic_and_stable(sim: Simulator, api: Api) -> None:
    stacks = api.all("/stacks")
    pairs = {(s["name"], s["environment"]) for s in stacks}
    assert pairs == {
        ("shop", "production"),
        ("shop", "staging"),
        ("blog", "production"),
        ("api", "production"),
        ("legacy", "production"),
        ("Payments Portal", "production"),
        ("search", "staging"),
    }
    by_pair = {(s["name"], s["environment"]): s for s in stacks}
    assert by_pair["shop", "production"]["uid"] != by_pair["shop", "staging"]["uid"]
    assert (
        by_pair["legacy", "production"]["status"],
        by_pair["legacy", "production"]["health"],
    ) == (2, 4)
    assert (by_pair["search", "staging"]["status"], by_pair["search", "staging"]["health"]) == (
        1,
        2,
    )
    assert by_pair["api", "production"]["framework"] == "docker"
    lengths = {}
    for stack in stacks:
        assert stack["last_activity_iso"].endswith("Z")
        assert stack["last_activity_iso"] < "2026-11-27T10:00:01Z"
        assert "is_busy" not in stack  # no source shows it: busy is status 5 or 6
        assert stack["status"] in (1, 2)
        history = api.deployments(stack["uid"])
        lengths[stack["name"], stack["environment"]] = len(history)
        assert not any(d["is_deploying"] for d in history)
        assert history[0]["finished_at"] == stack["last_activity_iso"]
    assert lengths["shop", "production"] == 46
    assert lengths["shop", "staging"] == 36
    assert min(lengths.values()) >= 4
    with Simulator(clock=FakeClock(START + 86400)) as again:
        assert {s["uid"] for s in Api(again).all("/stacks")} == {s["uid"] for s in stacks}
    assert (
        api.get(f"/stacks/{by_pair['blog', 'production']['uid']}").json()["response"]["name"]
        == "blog"
    )
    accounts = api.get("/accounts").json()
    assert accounts["response"][0]["owner"] == "sandbox@igor.example"
    assert accounts["response"][0]["friendly_name"] == "igor sandbox"
    assert "name" not in accounts["response"][0]
    assert accounts["response"][0]["stack_count"] == 7


def test_paging_previous_style(sim: Simulator, api: Api) -> None:
    sim.add_stacks(70)  # 77 stacks: pages of 30, 30, 17
    pages = [api.get("/stacks", page=n).json() for n in (1, 2, 3)]
    assert [len(p["response"]) for p in pages] == [30, 30, 17]
    assert [p["count"] for p in pages] == [77, 77, 77]
    assert pages[0]["pagination"] == {
        "previous": None,
        "next": 2,
        "current": 1,
        "per_page": 30,
        "count": 77,
    }
    assert pages[1]["pagination"]["previous"] == 1
    assert pages[1]["pagination"]["next"] == 3
    assert pages[2]["pagination"]["next"] is None
    uids = [s["uid"] for p in pages for s in p["response"]]
    assert len(set(uids)) == len(uids) == 77
    names = [s["name"] for p in pages for s in p["response"]]
    assert "app-0001" in names
    assert "app-0070" in names
    assert api.get("/stacks").json()["response"] == pages[0]["response"]
    assert api.get("/stacks", page=9).json()["response"] == []
    assert api.get("/stacks", page=0).status_code == 400


def test_paging_prev_style_and_custom_page_size(clock: FakeClock) -> None:
    with Simulator(clock=clock, per_page=10, pagination_style="prev") as sim:
        sim.add_stacks(20, prefix="svc")  # 27 stacks: 10, 10, 7
        api = Api(sim)
        pages = [api.get("/stacks", page=n).json() for n in (1, 2, 3)]
        assert [len(p["response"]) for p in pages] == [10, 10, 7]
        assert pages[1]["pagination"] == {
            "prev": 1,
            "next": 3,
            "current": 2,
            "count": 27,
        }
        assert pages[2]["pagination"]["next"] is None
        sim.pagination_style = "previous"
        assert api.get("/stacks", page=3).json()["pagination"]["previous"] == 2
        sim.add_stacks(2, prefix="svc")  # numbering continues instead of colliding
        names = {s["name"] for s in api.all("/stacks")}
        assert {"svc-0021", "svc-0022"} <= names
        assert len(names) == 28


def test_deploy_lifecycle(sim: Simulator, api: Api, clock: FakeClock) -> None:
    uid = api.uid("shop", "production")
    answer = api.deploy(uid, user_reference="igor:cli:tester", git_ref="main")
    assert answer.status_code == 200
    started = answer.json()["response"]
    assert started["ok"] is True
    assert started["queued"] is False
    assert started["message"] == "Stack queued for redeployment"  # the documented words

    stack = sim.stack("shop", "production")
    assert (stack["status"], stack["is_busy"]) == (6, True)
    live = api.deployments(uid)[0]
    assert live["is_deploying"] is True
    assert live["finished_at"] is None
    assert live["outcome"]["meaning"] == "in progress"
    assert live["triggered_by"] == "sandbox@igor.example"
    assert live["triggered_via"]["meaning"] == "api"
    assert live["started_at"] == "2026-11-27T10:00:00Z"
    action = api.get(f"/stacks/{uid}/actions/{started['async_action_id']}").json()["response"]
    assert action["finished_at"] is None
    assert action["metadata"] == {"user_reference": "igor:cli:tester"}  # what the docs show

    clock.now += 59
    assert api.deployments(uid)[0]["is_deploying"] is True
    clock.now += 1
    done = api.deployments(uid)[0]
    assert done["id"] == live["id"]
    assert done["is_deploying"] is False
    assert done["outcome"] == {"code": 1, "meaning": "success"}  # as the sample shows it
    assert done["finished_at"] == "2026-11-27T10:01:00Z"
    stack = sim.stack("shop", "production")
    assert (stack["status"], stack["health"], stack["is_busy"]) == (1, 3, False)
    assert stack["last_activity_iso"] == "2026-11-27T10:01:00Z"
    action = api.get(f"/stacks/{uid}/actions/{started['async_action_id']}").json()["response"]
    assert action["finished_success"] is True
    assert action["finished_at"] == "2026-11-27T10:01:00Z"
    newest_action = api.get(f"/stacks/{uid}/actions").json()["response"][0]
    assert newest_action["id"] == started["async_action_id"]
    assert api.get(f"/stacks/{uid}/actions/1").status_code == 404


def test_deploy_while_busy_is_queued_and_runs_next(
    sim: Simulator, api: Api, clock: FakeClock
) -> None:
    uid = api.uid("blog", "production")
    first = api.deploy(uid).json()["response"]
    clock.now += 10
    second = api.deploy(uid, user_reference="second").json()["response"]
    assert first["queued"] is False
    assert second == {
        "ok": True,
        "message": "Stack queued for redeployment",
        "queued": True,
        "async_action_id": second["async_action_id"],
    }
    assert sum(d["is_deploying"] for d in api.deployments(uid)) == 1

    clock.now += 50  # the first ends at +60 and the queued one starts then
    running = api.deployments(uid)
    assert running[0]["is_deploying"] is True
    assert running[0]["started_at"] == "2026-11-27T10:01:00Z"
    assert running[1]["outcome"]["meaning"] == "success"
    assert sim.stack("blog", "production")["status"] == 6

    clock.now += 60
    assert not any(d["is_deploying"] for d in api.deployments(uid))
    action = api.get(f"/stacks/{uid}/actions/{second['async_action_id']}").json()["response"]
    assert action["finished_success"] is True
    assert sim.stack("blog", "production")["is_busy"] is False


def test_foreign_deployment_has_no_user_reference(
    sim: Simulator, api: Api, clock: FakeClock
) -> None:
    deployment_id = sim.start_foreign_deployment("shop", "staging")
    uid = api.uid("shop", "staging")
    live = api.deployments(uid)[0]
    assert live["id"] == deployment_id
    assert live["is_deploying"] is True
    assert live["triggered_by"] == "alice@example.com"
    assert live["triggered_via"] == {"code": 0, "meaning": "web"}  # as the sample shows it
    action = api.get(f"/stacks/{uid}/actions").json()["response"][0]
    assert action["started_via"] == "web"
    assert action["metadata"] == {"user_reference": None}
    assert sim.stack("shop", "staging")["is_busy"] is True
    assert api.deploy(uid).json()["response"]["queued"] is True


def test_cancel_then_conflict_then_not_running(sim: Simulator, api: Api, clock: FakeClock) -> None:
    uid = api.uid("shop", "production")
    action_id = api.deploy(uid).json()["response"]["async_action_id"]
    deployment_id = api.deployments(uid)[0]["id"]
    clock.now += 20

    cancelled = api.delete(f"/stacks/{uid}/deployments/{deployment_id}")
    assert cancelled.status_code == 200
    assert cancelled.json() == {"response": {"ok": True, "message": "Cancelling deployment"}}
    again = api.delete(f"/stacks/{uid}/deployments/{deployment_id}")
    assert again.status_code == 409
    assert again.json()["error"] == "conflict"
    assert again.json()["error_description"] == "Deployment is already being cancelled"
    assert api.deployments(uid)[0]["is_deploying"] is True

    clock.now += 5
    ended = api.deployments(uid)[0]
    assert ended["is_deploying"] is False
    assert ended["outcome"]["meaning"] == "cancelled"
    assert ended["finished_at"] == "2026-11-27T10:00:25Z"
    action = api.get(f"/stacks/{uid}/actions/{action_id}").json()["response"]
    assert action["finished_success"] is False
    assert action["finished_message"] == "Deployment cancelled by sandbox@igor.example"
    assert sim.stack("shop", "production")["status"] == 1
    gone = api.delete(f"/stacks/{uid}/deployments/{deployment_id}")
    assert gone.status_code == 404
    assert gone.json()["error_description"] == "Deployment is not running"
    assert api.delete(f"/stacks/{uid}/deployments/999999").status_code == 404


def test_cancelling_the_live_deployment_starts_the_queued_one(
    sim: Simulator, api: Api, clock: FakeClock
) -> None:
    uid = api.uid("blog", "production")
    api.deploy(uid)
    api.deploy(uid)
    first = api.deployments(uid)[0]["id"]
    api.delete(f"/stacks/{uid}/deployments/{first}")
    clock.now += 5
    live = api.deployments(uid)[0]
    assert live["id"] != first
    assert live["is_deploying"] is True
    assert live["started_at"] == "2026-11-27T10:00:05Z"


def test_failing_stacks_end_in_failure(sim: Simulator, api: Api, clock: FakeClock) -> None:
    legacy = api.uid("legacy", "production")
    shop = api.uid("shop", "production")
    api.deploy(legacy)
    sim.set_failing("shop", "production")
    api.deploy(shop)
    clock.now += 60
    assert api.deployments(legacy)[0]["outcome"]["meaning"] == "failed"
    assert api.deployments(shop)[0]["outcome"]["meaning"] == "failed"
    stack = sim.stack("shop", "production")
    assert (stack["status"], stack["health"]) == (2, 4)

    sim.set_failing("shop", "production", failing=False)
    api.deploy(shop)
    clock.now += 60
    assert api.deployments(shop)[0]["outcome"]["meaning"] == "success"
    assert sim.stack("shop", "production")["status"] == 1
    with pytest.raises(KeyError):
        sim.set_failing("nope", "production")


def test_services_and_deploy_validation(sim: Simulator, api: Api, clock: FakeClock) -> None:
    docker = api.uid("api", "production")
    services = api.get(f"/stacks/{docker}/services").json()
    assert [s["name"] for s in services["response"]] == ["web", "worker"]
    assert services["count"] == 2
    assert api.get(f"/stacks/{api.uid('shop', 'staging')}/services").json()["count"] == 0

    unknown = api.deploy(docker, services="web:1.2,nope")
    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": "bad_request",
        "error_description": "service 'nope' not found",
        "details": None,
    }
    too_long = api.deploy(docker, user_reference="x" * 256)
    assert too_long.status_code == 400
    assert too_long.json()["error"] == "bad_request"
    assert not any(d["is_deploying"] for d in api.deployments(docker))  # nothing was started
    assert sim.count("POST", "/deployments") == 2

    assert api.deploy(docker, services="web:1.2,worker", user_reference="x" * 255).ok
    clock.now += 60
    # What runs now, where the sources show it: the containers' image (the docs), the
    # Go client's image_tag; a deployment never says which tags it ran.
    web, worker = api.get(f"/stacks/{docker}/services").json()["response"]
    assert web["containers"][0]["image"].endswith(":1.2")
    assert (web["image_tag"], worker["image_tag"]) == ("1.2", "1.4.2")
    assert "services" not in api.deployments(docker)[0]


def test_form_and_query_parameters_are_accepted(sim: Simulator, api: Api) -> None:
    docker = api.uid("api", "production")
    by_form = api.post(f"/stacks/{docker}/deployments", data={"services": "worker"})
    assert by_form.status_code == 200
    assert sim.requests[-1].body == {"services": "worker"}
    blog = api.uid("blog", "production")
    by_query = api.post(f"/stacks/{blog}/deployments", params={"user_reference": "q-ref"})
    assert by_query.status_code == 200
    assert sim.requests[-1].query == {"user_reference": "q-ref"}
    action = api.get(f"/stacks/{blog}/actions").json()["response"][0]
    assert action["metadata"]["user_reference"] == "q-ref"
    broken = api.post(
        f"/stacks/{blog}/deployments",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400


def test_unknown_routes_and_stacks_are_404(api: Api) -> None:
    for path in ("/stacks/nope", "/stacks/nope/deployments", "/nothing", "/stacks/x/y/z/w"):
        answer = api.get(path)
        assert answer.status_code == 404, path
        assert set(answer.json()) == {"error", "error_description", "details"}


def test_fail_next_answers_with_status_body_and_headers(sim: Simulator, api: Api) -> None:
    sim.fail_next(503, 2, path_contains="/stacks", headers={"Retry-After": "0"})
    assert api.get("/accounts").status_code == 200  # does not match the path
    for _ in range(2):
        answer = api.get("/stacks")
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "0"
        assert answer.json()["error"] == "throttled"
        assert answer.json()["details"] is None
    assert api.get("/stacks").status_code == 200
    assert sim.count("GET", "/stacks") == 3

    sim.fail_next(429, body={"error": "slow_down", "error_description": "x", "details": None})
    assert api.get("/accounts").json()["error"] == "slow_down"
    uid = api.uid("blog", "production")
    sim.fail_next(500, path_contains="/deployments")
    assert api.deploy(uid).status_code == 500
    assert api.deployments(uid)[0]["is_deploying"] is False  # a failed POST did nothing


def test_drop_next_closes_without_answer_but_still_deploys(sim: Simulator, api: Api) -> None:
    uid = api.uid("shop", "production")
    sim.drop_next(path_contains="/deployments")
    with pytest.raises(requests.ConnectionError):
        api.deploy(uid, user_reference="lost-answer")
    assert sim.count("POST", "/deployments") == 1
    assert sim.stack("shop", "production")["status"] == 6
    live = api.deployments(uid)[0]  # the next request is served normally
    assert live["is_deploying"] is True
    action = api.get(f"/stacks/{uid}/actions").json()["response"][0]
    assert action["metadata"]["user_reference"] == "lost-answer"


def test_state_is_shared_through_the_state_file(tmp_path: Path, clock: FakeClock) -> None:
    state = tmp_path / "sandbox" / "state.json"
    with Simulator(clock=clock, state_path=state) as first:
        one = Api(first)
        uid = one.uid("shop", "production")
        one.deploy(uid, user_reference="from-first")
        assert state.exists()
        with Simulator(clock=clock, state_path=state) as second:
            two = Api(second)
            live = two.deployments(uid)[0]
            assert live["is_deploying"] is True
            assert second.stack("shop", "production")["status"] == 6
            assert two.delete(f"/stacks/{uid}/deployments/{live['id']}").status_code == 200
            second.add_stacks(3)
        # The first process sees the second's cancel and stacks.
        assert one.delete(f"/stacks/{uid}/deployments/{live['id']}").status_code == 409
        assert one.get("/stacks").json()["count"] == 10
    saved = json.loads(state.read_text())
    assert saved["format"] == "igor-sandbox/3"
    assert not [p for p in state.parent.iterdir() if p.name.endswith(".tmp")]

    clock.now += 3600
    with Simulator(clock=clock, state_path=state) as later:
        assert later.stack("shop", "production")["is_busy"] is False
        assert Api(later).deployments(uid)[0]["outcome"]["meaning"] == "cancelled"


def test_damaged_state_file_is_set_aside_and_replaced_by_a_fresh_sandbox(
    tmp_path: Path, clock: FakeClock
) -> None:
    state = tmp_path / "state.json"
    state.write_text("{oops")
    with Simulator(clock=clock, state_path=state) as sim:
        assert sim.recovered == tmp_path / f"state.json.damaged-{int(START)}"
        assert Api(sim).get("/stacks").json()["count"] == 7
    assert sim.recovered.read_text() == "{oops"
    assert json.loads(state.read_text())["format"] == "igor-sandbox/3"


def test_in_memory_sandbox_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    with Simulator(clock=clock) as sim:
        api = Api(sim)
        api.deploy(api.uid("shop", "production"))
        sim.add_stacks(2)
    assert list(workdir.iterdir()) == []


def test_count_and_reset_requests(sim: Simulator, api: Api) -> None:
    uid = api.uid("blog", "production")
    api.deploy(uid)
    api.get(f"/stacks/{uid}/deployments")
    assert sim.count("POST", "/deployments") == 1
    assert sim.count("GET", "/deployments") == 1
    assert sim.count("GET") == 2  # the /stacks listing in uid() and the deployments
    assert sim.count("DELETE") == 0
    assert sim.requests[0] == RecordedRequest("GET", "/api/3/stacks", {"page": "1"}, {})
    sim.reset_requests()
    assert sim.requests == []
    assert sim.count("POST") == 0


def test_latency_delays_every_answer(sim: Simulator, api: Api) -> None:
    sim.latency = 0.05
    began = time.monotonic()
    api.get("/accounts")
    assert time.monotonic() - began >= 0.05
    sim.latency = 0


def test_stop_closes_the_server(clock: FakeClock) -> None:
    sim = Simulator(clock=clock).start()
    api = Api(sim)
    assert api.get("/accounts").ok  # leaves a keep-alive connection open
    sim.stop()
    with pytest.raises(requests.ConnectionError):
        api.get("/accounts")
    with pytest.raises(RuntimeError):
        _ = sim.url


def test_module_entry_point_serves_until_interrupted(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    (tmp_path / "s").write_text("not json")
    process = subprocess.Popen(
        [sys.executable, "-m", "igor_cli.sandbox", "--port", "0", "--state", str(tmp_path / "s")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        exports = process.stdout.readline()
        assert "http://127.0.0.1:" in first
        assert "IGOR_CLOUD66_TOKEN=sandbox-token" in exports
        note = process.stdout.readline()
        assert note.startswith(
            "The state file could not be read (damaged, or an older igor's): moved it to "
        )
        assert str(tmp_path / "s.damaged-") in note
        url = exports.split("IGOR_API_URL=")[1].split()[0]
        headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
        assert requests.get(f"{url}/accounts", headers=headers, timeout=5).ok
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
