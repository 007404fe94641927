"""A deploy's intent is told once: whoever tells a thread what a deploy POST did takes its
intent out of the store first (compare-and-delete), and says nothing when that fails
(chat/intents.py). In one process, on the SQLite store: no timing involved."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from igor_cli.chat.intents import Intents, Place
from igor_cli.cloud66.models import DeployResponse
from igor_cli.state.sqlite import SqliteStore
from igor_cli.state.store import StateUnavailable

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.state.store import Store

HERE = Place("C1", "1.000", "U1")
ANSWER = DeployResponse(ok=True, message="Deploy started", queued=False, async_action_id="42")


class Switch:
    """The store, or a store that cannot be reached (as a stalled Redis fails)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False
        self.generation = "one"

    def __call__(self) -> Store:
        if self.down:
            raise StateUnavailable("igor's state store failed: Timeout reading.")
        return self.store


def _replicas(tmp_path: Path) -> tuple[Switch, Intents, Intents]:
    switch = Switch(SqliteStore(tmp_path / "state.db"))

    def generation() -> str:
        return switch.generation

    return (switch, Intents(switch, "a", generation=generation),
            Intents(switch, "b", generation=generation))  # fmt: skip


def _nobody(*_args: Any) -> Any:
    raise AssertionError("an answered intent is settled without asking Cloud 66")


NO_CLOUD66 = cast("Cloud66Client", type("NoCloud66", (), {"actions_for": _nobody})())


def test_a_deploy_taken_over_meanwhile_is_not_told_by_its_own_replica(tmp_path: Path) -> None:
    switch, a, b = _replicas(tmp_path)
    with a.command(HERE) as command:
        intent = a.begin(command, "uid-blog", "igor:slack:U1:x")
        a.answered(command, intent, ANSWER.async_action_id)
        # "a" looks dead (its heartbeat lapsed: stopping, starved, cut off): "b" takes it over.
        [orphan] = b.orphans()
        assert b.settle(orphan, NO_CLOUD66) is not None
        assert a.tell(command) is False  # "b" tells the thread: "a" says nothing
    assert switch.store.items("intent:") == {}
    assert b.orphans() == [] and a.orphans() == []  # nothing left to tell a second time


def test_a_deploy_told_by_its_replica_is_not_taken_over(tmp_path: Path) -> None:
    switch, a, b = _replicas(tmp_path)
    with a.command(HERE) as command:
        intent = a.begin(command, "uid-blog", "igor:slack:U1:x")
        a.answered(command, intent, ANSWER.async_action_id)
        [orphan] = b.orphans()  # read before "a" tells, taken over after: too late
        assert a.tell(command) is True
        assert b.settle(orphan, NO_CLOUD66) is None
    assert switch.store.items("intent:") == {}


def test_a_store_that_cannot_say_keeps_the_deploy_to_be_told_once_it_answers(
    tmp_path: Path,
) -> None:
    switch, a, _b = _replicas(tmp_path)
    with a.command(HERE) as command:
        intent = a.begin(command, "uid-blog", "igor:slack:U1:x")
        a.answered(command, intent, ANSWER.async_action_id)
        switch.down = True
        assert a.tell(command) is False  # fail closed: nothing said now
        a.finished(command.recorded)  # what the reply's end does: nothing left to finish
    switch.down = False
    [left] = a.orphans()  # this replica settles it itself once the store answers
    assert left.id == intent.id and left.answered
    assert a.settle(left, NO_CLOUD66) is not None
    assert switch.store.items("intent:") == {}


def test_an_answer_recorded_though_its_reply_was_lost_is_still_this_replicas(
    tmp_path: Path,
) -> None:
    switch, a, _b = _replicas(tmp_path)
    with a.command(HERE) as command:
        intent = a.begin(command, "uid-blog", "igor:slack:U1:x")
        stored_before = switch.store.get(intent.key)
        a.answered(command, intent, ANSWER.async_action_id)
        # The store made the swap but its reply was lost: "a" still holds the old text.
        command.recorded[0] = intent
        assert stored_before != switch.store.get(intent.key)
        assert a.tell(command) is True
    assert switch.store.items("intent:") == {}


def test_an_intent_lost_with_a_store_that_was_reset_is_told_by_its_replica(
    tmp_path: Path,
) -> None:
    switch, a, _b = _replicas(tmp_path)
    with a.command(HERE) as command:
        intent = a.begin(command, "uid-blog", "igor:slack:U1:x")
        assert switch.store.release(intent.key, intent.dumps())  # gone with everything
        switch.generation = "reset:2026-01-01T00:00:00+00:00"
        assert a.tell(command) is True  # nobody else knows of it


def test_an_intent_gone_from_the_same_store_was_told_elsewhere(tmp_path: Path) -> None:
    switch, a, _b = _replicas(tmp_path)
    with a.command(HERE) as command:
        intent = a.begin(command, "uid-blog", "igor:slack:U1:x")
        assert switch.store.release(intent.key, intent.dumps())  # another replica took it
        assert a.tell(command) is False


def test_a_stack_actions_post_is_recorded_and_settled_without_a_guess(tmp_path: Path) -> None:
    # A stack action takes no user_reference: an answer recorded is followed; none recorded
    # is told as not known once its POST can no longer be answered, never looked up.
    from igor_cli.chat.intents import POST_SECONDS

    store = SqliteStore(tmp_path / "state.db")
    now = [1_000_000.0]
    a = Intents(lambda: store, "a", wall=lambda: now[0])
    b = Intents(lambda: store, "b", wall=lambda: now[0])
    with a.command(HERE) as command:
        asked = a.begin(command, "uid-shop", "", operation="restart")
        answered = a.begin(command, "uid-shop", "", operation="service_pause", service="web")
        a.answered(command, answered, "77")
        a.abandoned(command.recorded)  # "a" died with both out
    orphans = {intent.operation: intent for intent in b.orphans()}
    assert set(orphans) == {"restart", "service_pause"}
    assert orphans["service_pause"].service == "web"
    settled = b.settle(orphans["service_pause"], NO_CLOUD66)
    assert settled is not None and settled.action_id == "77"
    assert b.settle(orphans["restart"], NO_CLOUD66) is None  # its POST may still be answered
    now[0] += POST_SECONDS
    settled = b.settle(orphans["restart"], NO_CLOUD66)
    assert settled is not None and settled.action_id == "" and settled.intent.id == asked.id
    assert store.items("intent:") == {}  # each told once, by whoever took it out


def test_a_stack_action_taken_over_is_told_started_and_followed_or_not_known() -> None:
    from igor_cli.chat.intents import Intent, Settled
    from igor_cli.chat.slack.takeover import _operation_told
    from igor_cli.cloud66.models import Stack

    stack = Stack.from_api({"uid": "u1", "name": "api", "environment": "production"},
                           "https://app.cloud66.com")  # fmt: skip
    intent = Intent("i1", "u1", "", "C1", "1.000", "U1", "gone", 0.0,
                    operation="service_pause", service="web")  # fmt: skip
    started = _operation_told(Settled(intent, "77"), stack, False, {})
    assert started.outcome is not None and started.status == "ok"
    follow = started.outcome.to_follow()
    assert follow is not None and follow.action_id == "77"
    assert follow.what == "Pause of service web of api (production)"
    assert started.note.startswith("igor was stopped while Cloud 66 answered this pause")
    unknown = _operation_told(Settled(intent, ""), stack, True, {})
    assert unknown.outcome is None and unknown.status == "failed"
    assert unknown.notice.startswith(
        "Whether igor's request to pause service web of api (production) started is not "
        "known: the state store did not answer when Cloud 66 did"
    )
    assert stack.dashboard_url in unknown.notice
