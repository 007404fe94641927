"""igor against the Cloud 66 docs' own payloads (issue 20, "The documentation's own payloads").

tests/fixtures/cloud66_docs holds the JSON answers of both editions of the API
docs, byte for byte; tests/fakes/cloud66_docs.py serves them. Each finding of
the audit has its test here: what igor said against these payloads, and what
it must say. A variant of a sample (a deployment running, an answer unreadable)
is built from the sample itself and says what it changes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import Igor
from tests.fakes.clock import FakeClock
from tests.fakes.cloud66_docs import FIXTURES, STACK_UID, DocsApi, sample, sample_json

EDITIONS = ("2024", "2020")
STACK = ("-s", "Awesome App", "-e", "production")


@pytest.fixture(params=EDITIONS)
def docs(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[DocsApi]:
    """The docs' payloads of one edition, with igor pointed at them."""
    with DocsApi(request.param) as api:
        monkeypatch.setenv("IGOR_API_URL", api.url)
        monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "docs-token")
        yield api


def _edition(edition: str, monkeypatch: pytest.MonkeyPatch) -> DocsApi:
    api = DocsApi(edition).__enter__()
    monkeypatch.setenv("IGOR_API_URL", api.url)
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "docs-token")
    return api


@pytest.fixture
def docs2024(monkeypatch: pytest.MonkeyPatch) -> Iterator[DocsApi]:
    api = _edition("2024", monkeypatch)
    yield api
    api.__exit__()


@pytest.fixture
def docs2020(monkeypatch: pytest.MonkeyPatch) -> Iterator[DocsApi]:
    api = _edition("2020", monkeypatch)
    yield api
    api.__exit__()


def _json(data: Any) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, json.dumps(data).encode()


def _running(edition: str) -> dict[str, Any]:
    """The deployment list's sample with its one deployment running, not over (a variant:
    is_deploying true, no finish, no outcome word)."""
    listing = sample_json(edition, "deployments")
    running = {**listing["response"][0], "is_deploying": True, "finished_at": None}
    running["outcome"] = {"code": 0, "meaning": "in progress"}
    return {**listing, "response": [running]}


# -- the fixtures are the docs' own bytes -------------------------------------------------

MIRRORS = Path("/work/.mirror")  # where this project's machines keep mirrors of the sources


def _mirror(repo: str) -> Path | None:
    base = MIRRORS / repo.replace("/", "+") / "repo"
    for candidate in (base / ".git", base):
        if (candidate / "HEAD").exists():
            return candidate
    return None


def test_every_fixture_is_its_docs_sample_byte_for_byte() -> None:
    sources = json.loads((FIXTURES / "SOURCES.json").read_text())
    names = {f["file"] for f in sources["fixtures"]}
    assert {f"{e}/{n}.json" for e in EDITIONS for n in
            ("stacks", "stack", "deployments", "deployment", "redeploy", "cancel", "actions",
             "action", "services", "accounts")} == names  # fmt: skip
    checked = 0
    for entry in sources["fixtures"]:
        edition = sources["editions"][entry["edition"]]
        text = (FIXTURES / entry["file"]).read_text(encoding="utf-8")
        json.loads(text)  # each is a JSON document as it stands
        mirror = _mirror(edition["repo"])
        if mirror is None:
            continue
        doc = subprocess.run(
            ["git", f"--git-dir={mirror}", "show",
             f"{edition['commit']}:{edition['directory']}/{entry['doc']}"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
        section = doc.split(f"\n## {entry['section']}\n", 1)[1].split("\n## ", 1)[0]
        assert text in section, entry
        checked += 1
    if not checked:
        pytest.skip("no mirror of the docs here: the bytes were checked where there is one")


# -- igor reads the samples --------------------------------------------------------------


def test_list_history_and_whoami_read_the_samples(docs: DocsApi, igor: Igor) -> None:
    listed = igor("list")
    assert listed.exit_code == 0, listed.output
    row = listed.stdout.splitlines()[1]
    assert row.split()[:5] == ["Awesome", "App", "production", "Deployed", "successfully"]
    assert "succeeded · test" in row  # LAST DEPLOY: test@cloud66.com, shortened
    shown = json.loads(igor("history", *STACK, "--json").stdout)
    assert [(d["id"], d["outcome"], d["triggered_via"], d["is_live"]) for d in shown] == [
        (107, "succeeded", "web", True)  # Cloud 66's type: a number
    ]
    assert shown[0]["git_hash"] == "5675fcd8f9e6dc534ecf1410c0661c066097e310"
    whoami = igor("whoami", "--json")
    # The accounts sample has no friendly_name (the Go client's): the owner names it.
    assert json.loads(whoami.stdout)["account"] == "test@cloud66.com"
    assert docs.count("POST") == docs.count("DELETE") == 0


def test_nothing_to_cancel_watch_roll_back_or_promote_on_the_sample(
    docs: DocsApi, igor: Igor
) -> None:
    cancel = igor("cancel", *STACK)
    assert cancel.exit_code == 1 and "is not deploying, nothing to cancel" in cancel.stderr
    watch = igor("watch", *STACK)
    assert watch.exit_code == 1 and "nothing to watch" in watch.stderr
    rollback = igor("rollback", *STACK)
    assert rollback.exit_code == 1 and "no successful deployment before the live one" in (
        rollback.stderr
    )
    promote = igor("promote", "-s", "Awesome App", "--from", "staging", "--to", "production")
    assert promote.exit_code == 1 and "no 'staging' environment" in promote.stderr
    assert docs.count("POST") == docs.count("DELETE") == 0


# -- 1. "queued": true on an idle stack --------------------------------------------------


def test_the_documented_redeploy_answer_on_an_idle_stack_is_a_start(
    docs: DocsApi, igor: Igor
) -> None:
    if docs.edition == "2024":
        assert sample_json("2024", "redeploy")["response"]["queued"] is True
    ran = igor("deploy", *STACK)
    assert ran.exit_code == 0, ran.output
    assert "Deploy started: Awesome App (production)." in ran.stdout
    assert "queued" not in ran.stdout  # no deployment runs: nothing to queue behind
    assert "started outside igor" not in ran.stdout
    assert docs.count("POST", "deployments") == 1
    said = json.loads(igor("deploy", *STACK, "--json").stdout)
    assert said["result"] == "started"


# -- 2. the single action without its `response` wrapper, and never a silent poll ----------


def test_the_2024_single_action_without_a_wrapper_is_followed_to_its_end(
    docs2024: DocsApi, igor: Igor
) -> None:
    assert "response" not in sample_json("2024", "action")
    ran = igor("deploy", *STACK, "--follow")
    assert ran.exit_code == 0, ran.output
    # The sample's own times: 11:43:57 to 11:47:42.
    assert "Deployed Awesome App (production) in 3m 45s: Completed successfully." in ran.stdout
    assert docs2024.count("GET", "action") == 1
    assert docs2024.asked[-1].path == f"/api/3/stacks/{STACK_UID}/actions/40"


def test_unreadable_answers_end_a_follow_saying_so(
    docs2024: DocsApi, igor: Igor, clock: FakeClock
) -> None:
    docs2024.answer("GET", "action", _json({"response": "nothing igor can read"}))
    ran = igor("deploy", *STACK, "--follow")
    assert ran.exit_code == 1
    assert "igor stopped following: Cloud 66's last 3 answers about 40 could not be read" in (
        ran.stderr
    )
    assert "check it with `igor history` or in the Cloud 66 dashboard" in ran.stderr
    assert docs2024.count("GET", "action") == 3  # three looks, then said: never 37 minutes
    assert sum(clock.slept) < 300


# -- 3. the 2020 redeploy answer has no async_action_id ------------------------------------


def test_without_an_action_id_a_follow_says_why_it_cannot(docs2020: DocsApi, igor: Igor) -> None:
    assert "async_action_id" not in sample_json("2020", "redeploy")["response"]
    ran = igor("deploy", *STACK, "--follow")
    assert ran.exit_code == 1  # asked to follow, and could not: not a silent success
    assert "Deploy started: Awesome App (production)." in ran.stdout
    assert "Cloud 66 named no action to follow and no deployment of it has started yet" in (
        ran.stdout
    )
    assert '`igor watch -s "Awesome App" -e production`' in ran.stdout
    # It looked for its own action by its user_reference, then for a deployment.
    looked = [a for a in docs2020.asked if a.path.endswith("/actions")]
    assert looked and looked[0].query["user_reference"].startswith("igor:cli:")
    assert docs2020.count("POST") == 1


def test_without_an_action_id_the_deployment_that_started_is_followed(
    docs2020: DocsApi, igor: Igor
) -> None:
    # Before the POST the sample (over); after it, the same deployment running (a variant).
    docs2020.answer(
        "GET",
        "deployments",
        (200, {}, sample("2020", "deployments")),
        _json(_running("2020")),
    )
    ran = igor("deploy", *STACK, "--follow")
    assert ran.exit_code == 0, ran.output
    # GET /stacks/{uid}/deployments/107 answers the sample: over, a success.
    assert "Deployed Awesome App (production) in 12m 07s: success." in ran.stdout
    assert docs2020.count("GET", "deployment") == 1


# -- 4. cancel --id of a deployment that is over -----------------------------------------------


def test_cancel_by_id_of_the_samples_finished_deployment_sends_nothing(
    docs: DocsApi, igor: Igor
) -> None:
    ran = igor("cancel", *STACK, "--id", "107")
    assert ran.exit_code == 1
    assert "Deployment 107 of Awesome App (production) is over (succeeded" in ran.stderr
    assert "Cancelling" not in ran.output
    assert docs.count("DELETE") == 0


def test_cancel_by_id_of_a_running_deployment_is_sent(docs: DocsApi, igor: Igor) -> None:
    running = _running(docs.edition)
    docs.answer("GET", "deployment", _json({"response": running["response"][0]}))
    docs.answer("GET", "deployments", _json(running))
    ran = igor("cancel", *STACK, "--id", "107")
    assert ran.exit_code == 0, ran.output
    assert "Cancelling deployment 107 of Awesome App (production)" in ran.stdout
    assert docs.count("DELETE", "deployment") == 1


# -- 5. `code` against `meaning` ------------------------------------------------------------------


@pytest.fixture
def worded(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """The simulator with the short words in `code` ("web" / "Web Interface")."""
    with Simulator(clock=clock, words="code") as simulator:
        monkeypatch.setenv("IGOR_API_URL", simulator.url)
        monkeypatch.setenv("IGOR_CLOUD66_TOKEN", SANDBOX_TOKEN)
        yield simulator


def test_words_in_code_read_as_well_as_words_in_meaning(worded: Simulator, igor: Igor) -> None:
    shown = json.loads(igor("history", "-s", "shop", "-e", "production", "--json").stdout)
    assert {"succeeded", "failed", "cancelled"} <= {d["outcome"] for d in shown}
    assert igor("deploy", "-s", "blog").exit_code == 0
    cancel = igor("cancel", "-s", "blog")
    assert "through igor" in cancel.stdout  # igor's own, though `meaning` says "API request"


def test_bypass_detection_reads_both_forms(worded: Simulator, clock: FakeClock) -> None:
    from datetime import timedelta

    from igor_cli.chat.bypass import find_bypasses
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.state.locks import Lock

    def lock(name: str) -> Lock:
        start = clock.datetime()
        uid = worded.stack(name, "production")["uid"]
        return Lock(uid, name, "production", "cli", "me@laptop", "", start,
                    start + timedelta(hours=1))  # fmt: skip

    with Cloud66Client(SANDBOX_TOKEN, worded.url) as client:
        client.deploy(worded.stack("blog", "production")["uid"], user_reference="igor:cli:me")
        outside = worded.start_foreign_deployment("api", "production")
        posted = {"igor:cli:me"}.__contains__  # what igor itself posted (the state store's)
        found = find_bypasses(client, [lock("blog"), lock("api")], [], clock.datetime(), posted)
    assert [(b.stack.name, b.deployment.id) for b in found] == [("api", str(outside))]
    assert found[0].deployment.triggered_via == "Web Interface"


# -- 6. docker-ness from `framework` -----------------------------------------------------------


def test_the_documented_rails_stack_takes_a_git_ref_whatever_its_backend(
    docs: DocsApi, igor: Igor
) -> None:
    stack = sample_json(docs.edition, "stack")
    listing = sample_json(docs.edition, "stacks")
    # A variant: `backend` (a field only the Go client shows) saying kubernetes.
    listing["response"][0]["backend"] = "kubernetes"
    docs.answer("GET", "stacks", _json(listing))
    docs.answer("GET", "stack", _json({"response": {**stack["response"], "backend": "kubernetes"}}))
    ran = igor("deploy", *STACK, "--ref", "v1.2")
    assert ran.exit_code == 0, ran.output
    posted = json.loads(next(a.body for a in docs.asked if a.method == "POST"))
    assert posted["git_ref"] == "v1.2"


# -- 7. the throttle, from the status and the headers ------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"503: throttled", {"Content-Type": "text/plain"}),  # the docs' words, as text
        (b'{"error":"throttled","error_description":"Rate limit"}', {}),
        (b"Service Unavailable", {"Content-Type": "text/plain", "X-RateLimit-Remaining": "0"}),
    ],
    ids=["text", "json", "header"],
)
def test_a_throttle_is_read_from_the_status_body_and_headers(
    docs2024: DocsApi, igor: Igor, body: bytes, headers: dict[str, str]
) -> None:
    docs2024.answer("GET", "stacks", (503, headers, body))
    listed = igor("list")
    assert listed.exit_code == 5
    assert "Cloud 66 is throttling this token" in listed.stderr
    assert docs2024.count("GET", "stacks") == 1  # final until the next hour: never retried


def test_a_throttled_deploy_is_refused_not_unknown(docs2024: DocsApi, igor: Igor) -> None:
    docs2024.answer("POST", "deployments", (503, {"Content-Type": "text/plain"}, b"throttled"))
    ran = igor("deploy", *STACK)
    assert ran.exit_code == 5
    assert "Cloud 66 is throttling this token" in ran.stderr
    assert "may or may not have happened" not in ran.output
    assert docs2024.count("POST") == 1


def test_a_plain_503_is_still_retried_for_a_read(docs2024: DocsApi, igor: Igor) -> None:
    docs2024.answer(
        "GET", "stacks", (503, {"Content-Type": "text/plain"}, b"Service Unavailable"),
        (200, {}, sample("2024", "stacks")),
    )  # fmt: skip
    assert igor("list").exit_code == 0
    assert docs2024.count("GET", "stacks") == 2


# -- 8. the Go client's `.json` paths ---------------------------------------------------------


def test_the_simulator_answers_the_go_clients_json_paths(sim: Simulator) -> None:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {SANDBOX_TOKEN}"
    uid = sim.stack("blog", "production")["uid"]
    for path in (
        "/stacks.json",
        f"/stacks/{uid}.json",
        f"/stacks/{uid}/deployments.json",
        f"/stacks/{uid}/actions.json",
        f"/stacks/{uid}/services.json",
        "/accounts.json",
    ):
        assert session.get(sim.url + path, timeout=5).status_code == 200, path  # fmt: skip
    # RedeployStack posts JSON to deployments.json, empty fields and all.
    go = {"git_ref": "", "deploy_strategy": "", "deployment_profile": "", "services": None}
    posted = session.post(f"{sim.url}/stacks/{uid}/deployments.json", json=go, timeout=5)
    assert posted.status_code == 200
    action = posted.json()["response"]["async_action_id"]
    one = session.get(f"{sim.url}/stacks/{uid}/actions/{action}.json", timeout=5)
    assert one.json()["response"]["id"] == action


# -- the simulator's fields are the documented ones ------------------------------------------


def test_the_simulators_fields_are_the_documented_examples_and_the_go_clients(
    sim: Simulator,
) -> None:
    import requests

    from igor_cli.sandbox.sources import FIELDS, GO, UNDOCUMENTED

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {SANDBOX_TOKEN}"

    def get(path: str) -> Any:
        return session.get(sim.url + path, timeout=5).json()

    uid = sim.stack("api", "production")["uid"]
    posted = session.post(f"{sim.url}/stacks/{uid}/deployments", timeout=5).json()
    deployment = get(f"/stacks/{uid}/deployments")["response"][0]
    cancelled = session.delete(
        f"{sim.url}/stacks/{uid}/deployments/{deployment['id']}", timeout=5
    ).json()
    listing = get("/stacks")
    served = {
        "stack": listing["response"][0],
        "deployment": get(f"/stacks/{uid}/deployments/{deployment['id']}")["response"],
        "action": get(f"/stacks/{uid}/actions")["response"][0],
        "service": get(f"/stacks/{uid}/services")["response"][0],
        "account": get("/accounts")["response"][0],
        "redeploy": posted["response"],
        "cancel": cancelled["response"],
        "list": listing,
        "pagination": {**listing["pagination"], "pages": 1},
    }
    served["action.metadata"] = served["action"]["metadata"]
    served["container"] = served["service"]["containers"][0]

    def documented(kind: str) -> set[str]:
        """Every key the docs' samples of both editions show for this kind of object."""
        found: set[str] = set()
        for edition in EDITIONS:
            found |= _keys(kind, edition)
        return found

    for kind, payload in served.items():
        keys, shown = set(payload), documented(kind)
        # Everything a sample shows, the simulator shows too ...
        assert shown <= keys, (kind, shown - keys)
        # ... and beyond it only what the Go client names, as the table of sources says.
        for extra in keys - shown:
            assert GO in FIELDS[kind][extra], (kind, extra, FIELDS[kind].get(extra))
    assert not any(name.split(".")[-1] in served["deployment"] for name in UNDOCUMENTED
                   if name.startswith("deployment."))  # fmt: skip


def _keys(kind: str, edition: str) -> set[str]:
    """The keys the `edition`'s samples show for a kind of object."""

    def one(name: str) -> Any:
        body = sample_json(edition, name)
        return body.get("response", body)

    first = {
        "stack": lambda: one("stacks")[0],
        "deployment": lambda: one("deployments")[0],
        "action": lambda: one("actions")[0],
        "action.metadata": lambda: one("actions")[0].get("metadata", {}),
        "service": lambda: one("services")[0],
        "container": lambda: one("services")[0]["containers"][0],
        "account": lambda: one("accounts")[0],
        "redeploy": lambda: one("redeploy"),
        "cancel": lambda: one("cancel"),
        "list": lambda: sample_json(edition, "stacks"),
        "pagination": lambda: sample_json(edition, "stacks")["pagination"],
    }[kind]()
    return set(first)
