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
        a.answered(command, intent, ANSWER)
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
        a.answered(command, intent, ANSWER)
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
        a.answered(command, intent, ANSWER)
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
        a.answered(command, intent, ANSWER)
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
