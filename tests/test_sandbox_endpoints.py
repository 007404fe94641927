"""A simulator endpoint is one module: its route, its scope, what answers it and the
sources of its fields, registered where it is written (sandbox/routes.py's `endpoint`)
and found by itself (every module of sandbox/endpoints/)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from igor_cli.sandbox import SANDBOX_TOKEN, Simulator, routes, sources
from igor_cli.sandbox.routes import Call, Reply, endpoint

ENDPOINTS = Path(routes.__file__).parent / "endpoints"


def test_every_module_of_the_endpoints_folder_is_found_and_serves() -> None:
    modules = routes.endpoint_modules()
    files = {p.stem for p in ENDPOINTS.glob("*.py") if not p.name.startswith("_")}
    assert {m.rsplit(".", 1)[1] for m in modules} == files
    serving = {e.handler.__module__ for e in routes.ENDPOINTS}
    assert set(modules) <= serving  # each registers something
    served = {(e.method, "/" + "/".join(e.path)) for e in routes.ENDPOINTS}
    assert {
        ("GET", "/accounts"), ("GET", "/stacks"), ("GET", "/stacks/{uid}"),
        ("GET", "/stacks/{uid}/services"), ("GET", "/stacks/{uid}/deployments"),
        ("GET", "/stacks/{uid}/deployments/{id}"), ("POST", "/stacks/{uid}/deployments"),
        ("DELETE", "/stacks/{uid}/deployments/{id}"), ("POST", "/stacks/{uid}/actions"),
        ("GET", "/stacks/{uid}/actions"), ("GET", "/stacks/{uid}/actions/{id}"),
    } <= served  # fmt: skip
    assert all(e.answers in sources.FIELDS for e in routes.ENDPOINTS)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[routes.Endpoint]]:
    """The registry as it is, to which a test adds an endpoint for itself alone."""
    routes.endpoint_modules()
    own = list(routes.ENDPOINTS)
    monkeypatch.setattr(routes, "ENDPOINTS", own)
    before = dict(sources.FIELDS)
    yield own
    sources.FIELDS.clear()
    sources.FIELDS.update(before)


def test_an_endpoint_that_answers_fields_no_source_names_is_refused(
    registry: list[routes.Endpoint],
) -> None:
    def variables(call: Call) -> Reply:
        return call.items([])

    with pytest.raises(TypeError, match="answers 'variable', whose fields no source names"):
        endpoint("GET", "/stacks/{uid}/environments", scope="admin", answers="variable")(variables)
    with pytest.raises(TypeError, match="name where each field is shown"):
        endpoint(
            "GET", "/stacks/{uid}/environments", scope="admin", answers="variable",
            sources_of={"key": "", "value": "developers.cloud66.com _enviroment_variables.md"},
        )(variables)  # fmt: skip
    with pytest.raises(TypeError, match=re.escape("GET /stacks/{uid} is answered twice")):
        endpoint("GET", "/stacks/{uid}", scope="public", answers="stack")(variables)
    assert len(registry) == len(routes.ENDPOINTS)
    assert "variable" not in sources.FIELDS


def test_a_new_endpoint_is_served_from_its_module_alone_with_its_sources(
    registry: list[routes.Endpoint], sim: Simulator
) -> None:
    # As a module of sandbox/endpoints/ would hold it: the route, the scope, the handler,
    # the payload and where each of its fields is shown.
    doc = "developers.cloud66.com _enviroment_variables.md, Environment Variable list sample"

    @endpoint(
        "GET", "/stacks/{uid}/environments", scope="admin", answers="variable",
        sources_of={"id": doc, "key": doc, "value": doc},
    )  # fmt: skip
    def variables(call: Call) -> Reply:
        kept: list[dict[str, Any]] = call.stack.kept.setdefault("variables", [])
        return call.items([*kept, {"id": 1, "key": "RAILS_ENV", "value": "x", "private": 1}])

    uid = sim.stack("shop", "production")["uid"]
    path = f"{sim.url}/stacks/{uid}/environments.json"
    answer = requests.get(path, headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}, timeout=5)
    assert answer.status_code == 200
    # Only what its source shows: the handler's `private` is not served.
    assert answer.json()["response"] == [{"id": 1, "key": "RAILS_ENV", "value": "x"}]
    assert answer.json()["pagination"]["current"] == 1
    sim.add_token("reader", ["public"])
    refused = requests.get(path, headers={"Authorization": "Bearer reader"}, timeout=5)
    assert refused.status_code == 403  # the docs' scope, admin
    unknown = requests.get(
        f"{sim.url}/stacks/nope/environments",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
        timeout=5,
    )
    assert unknown.status_code == 404
    assert unknown.json()["error_description"] == "Stack not found"


def test_a_route_no_endpoint_answers_is_not_found(sim: Simulator) -> None:
    headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
    uid = sim.stack("shop", "production")["uid"]
    for method, path in (("GET", f"/stacks/{uid}/nothing"), ("PUT", f"/stacks/{uid}"),
                         ("POST", "/stacks")):  # fmt: skip
        answer = requests.request(method, sim.url + path, headers=headers, timeout=5)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["error_description"] == "Route not found"


def test_what_an_endpoint_keeps_about_a_stack_is_saved_with_the_state(
    registry: list[routes.Endpoint], tmp_path: Path, clock: Any
) -> None:
    # A handler that only writes `stack.kept` (it starts no action) still has it saved.
    doc = "developers.cloud66.com _enviroment_variables.md, Add Environment Variable sample"

    @endpoint("POST", "/stacks/{uid}/notes", scope="admin", answers="note",
              sources_of={"key": doc})  # fmt: skip
    def note(call: Call) -> Reply:
        key = call.text("key") or ""
        call.stack.kept.setdefault("notes", []).append(key)
        return call.one({"key": key})

    state = tmp_path / "state.json"
    headers = {"Authorization": f"Bearer {SANDBOX_TOKEN}"}
    with Simulator(clock=clock, state_path=state) as sim:
        uid = sim.stack("blog", "production")["uid"]
        posted = requests.post(f"{sim.url}/stacks/{uid}/notes", json={"key": "A"}, headers=headers,
                               timeout=5)  # fmt: skip
        assert posted.json() == {"response": {"key": "A"}}
    with Simulator(clock=clock, state_path=state) as later:
        assert later.recovered is None
        with later._transaction() as (saved, _):
            assert saved.get_stack(uid).kept == {"notes": ["A"]}
