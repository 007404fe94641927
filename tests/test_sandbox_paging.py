"""The simulator serves a page of stacks at the cost of a page, not of the account
(issue 27: it copied every stack for every page, and the list benchmarks timed that)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from igor_cli.sandbox.routes import route
from igor_cli.sandbox.state import SandboxState

NOW = 2_000_000_000.0


@dataclass
class Settings:
    order: str = "newest"
    words: str = "meaning"
    undocumented: frozenset[str] = field(default_factory=frozenset)
    per_page: int = 30
    pagination_style: str = "previous"
    include_count: bool = True
    include_pages: bool = False


class Walked(list[Any]):
    """A list that counts how often it is walked whole (slicing it is not walking it)."""

    walks = 0

    def __iter__(self) -> Any:
        Walked.walks += 1
        return super().__iter__()


def account(stacks: int) -> SandboxState:
    state = SandboxState.seed(NOW, [])
    state.add_stacks(stacks, "app", NOW)
    return state


def test_a_page_of_stacks_walks_neither_every_stack_nor_every_deployment() -> None:
    state = account(300)
    state.advance(NOW, 60.0)  # as a request does, once before
    state.stacks, state.deployments = Walked(state.stacks), Walked(state.deployments)
    Walked.walks = 0
    state.advance(NOW + 1, 60.0)
    reply = route(Settings(), state, NOW + 1, "GET", ["stacks"], page=2, params={})
    assert Walked.walks == 0
    assert reply.payload["count"] == 300
    assert [s["name"] for s in reply.payload["response"]] == [f"app-{n:04d}" for n in range(31, 61)]


def test_a_deployment_still_finishes_on_time_and_the_next_queued_one_starts() -> None:
    state = account(40)
    uid = state.stacks[35].uid
    first, _, queued = state.deploy(uid, now=NOW)
    second, _, waits = state.deploy(uid, now=NOW + 1)
    assert (queued, waits) == (False, True)
    state.advance(NOW + 30, 60.0)
    assert first.finished_at is None and second.started_at is None
    state.advance(NOW + 61, 60.0)
    assert first.finished_at == NOW + 60 and second.started_at == NOW + 60
    state.advance(NOW + 121, 60.0)
    assert second.finished_at == NOW + 120
    # Idle again: later requests walk no deployment at all.
    state.deployments = Walked(state.deployments)
    Walked.walks = 0
    state.advance(NOW + 500, 60.0)
    assert Walked.walks == 0


def test_a_state_read_back_from_its_file_still_finishes_what_ran() -> None:
    state = account(5)
    uid = state.stacks[2].uid
    running, _, _ = state.deploy(uid, now=NOW)
    again = SandboxState.from_json(state.to_json())
    again.advance(NOW + 61, 60.0)
    finished = next(d for d in again.deployments if d.id == running.id)
    assert finished.finished_at == NOW + 60
