"""`igor watch`: follow the stack's running deployment to its end, as `deploy --follow` does.

It attaches to what runs (or to igor's deploy about to start) from one read of the
stack's newest deployments and one of its newest actions; the shell, the chat
console and the bot then follow it (core/follow.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from igor_cli.cli import EnvironmentName, Json, StackName, command
from igor_cli.core.follow import Followed
from igor_cli.core.request import OnAStack, Outcome, Read
from igor_cli.errors import ExitCode
from igor_cli.json_output import with_follow_events

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import StackHints
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.core.run import Run
    from igor_cli.render.said import Said, Words

COMMANDS = {"watch": ()}

# -- the command ---------------------------------------------------------------------


@command(
    "watch",
    chat=True,
    examples=("igor watch shop -e production", "igor watch -s blog --json"),
)
def watch_command(
    stack: StackName,
    environment: EnvironmentName = None,
    as_json: Json = None,
) -> WatchRequest:
    """Follow the stack's running deployment to its end, as deploy --follow does.

    Ctrl-C stops watching; the deployment goes on.
    """
    return WatchRequest(stack=stack, environment=environment, as_json=as_json)


# -- the request ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WatchRequest(Read, OnAStack):
    """`igor watch`: follow the stack's running deployment to its end."""

    needs_cloud66: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = with_follow_events(
        "result", "stack", "async_action_id", "deployment_id", "queued", "started_by",
        "triggered_by", "started_at", "typical_seconds",
    )  # fmt: skip

    @property
    def follows(self) -> bool:
        """A shell follows what it attaches to, always."""
        return True

    def act(self, run: Run) -> WatchOutcome:
        """What runs on the stack, or igor's deploy about to start, to follow."""
        return watch(run.connect(), self, run.hints)


# -- the outcome and its words --------------------------------------------------------


@dataclass(frozen=True)
class WatchOutcome(Followed, Outcome):
    """What `watch` attaches to: the running deployment, or igor's deploy about to start;
    no `action_id` when nothing runs or waits on the stack."""

    event: ClassVar[str] = "watch"  # its JSON Lines event (`watch --json`)

    @property
    def exit_code(self) -> ExitCode:
        """Nothing to watch is a failure."""
        return ExitCode.OK if self.followable else ExitCode.FAILED

    def to_follow(self) -> Followed | None:
        """What it attached to, when there is something."""
        return self if self.followable else None

    def said(self, now: datetime) -> Said:
        """What `watch` attached to (or why there is nothing to watch); in chat, that the
        outcome comes in the thread."""
        from igor_cli.render.said import Hint, Said

        if not self.followable:
            return Said(watch_sentence(self, now), tone="refused")
        hints = (Hint("", "I'll post the outcome in this thread."),)
        return Said(watch_sentence(self, now), None, hints, "info")

    def facts(self) -> Any:
        """What it attached to, as igor's JSON has it."""
        from igor_cli.render.sentences import cloud66_id

        running = self.deployment
        requester = self.started_by
        return {
            "result": "watching" if self.followable else "nothing_to_watch",
            "stack": self.stack.named(),
            "async_action_id": cloud66_id(self.async_action_id),
            "deployment_id": cloud66_id(running.id) if running else None,
            "queued": self.queued,
            "started_by": requester.facts() if requester else None,
            "triggered_by": running.triggered_by if running else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "typical_seconds": round(self.typical, 1) if self.typical else None,
        }


def watch_sentence(outcome: WatchOutcome, now: datetime) -> Words:
    """What `watch` attached to (or why there is nothing to watch)."""
    from igor_cli.render.said import joined, who
    from igor_cli.render.sentences import ago

    stack = outcome.stack.label
    if not outcome.followable:
        return f"{stack} is not deploying, nothing to watch."
    if outcome.deployment is None:
        return joined(
            f"Watching igor's deploy of {stack} asked for by ", who(outcome.started_by, "someone"),
            f" {ago(outcome.started_at, now)}.",
        )  # fmt: skip
    running = outcome.deployment
    by = joined(outcome.started_by, " through igor") if outcome.started_by else running.triggered_by
    return joined(
        f"Watching deployment {running.id} of {stack} (started by ", by,
        f" {ago(running.started_at, now)}).",
    )  # fmt: skip


# -- the action ---------------------------------------------------------------------


def watch(
    client: Cloud66Client, request: WatchRequest, hints: StackHints | None = None
) -> WatchOutcome:
    """The stack's running deployment (or igor's deploy about to start) to follow, with an
    estimate, from one read of its newest deployments and one of its newest actions."""
    from igor_cli.cloud66.activity import (
        DeployKind,
        deployment_target,
        kind_of,
        live_state,
        typical_duration,
    )
    from igor_cli.core.resolve import find_stack

    stack = find_stack(client, request.stack, request.environment, hints)
    state = live_state(client, stack)
    like = kind_of(state.live) if state.live is not None else DeployKind(True)
    typical = typical_duration(state.deployments, like)
    if state.live is not None:
        # Cloud 66 names no action for a deployment: without igor's own action
        # behind it, the deployment itself is followed.
        target = state.live_action.id if state.live_action else deployment_target(state.live.id)
        return WatchOutcome(
            stack,
            target,
            state.live,
            state.live_requester,
            started_at=state.live.started_at,
            typical=typical,
        )
    if len(state.queued) == 1:
        waiting = state.queued[0]  # about to start: nothing runs in front of it
        return WatchOutcome(
            stack,
            waiting.action.id,
            None,
            waiting.requester,
            queued=True,
            started_at=waiting.action.started_at,
            typical=typical,
        )
    return WatchOutcome(stack)
