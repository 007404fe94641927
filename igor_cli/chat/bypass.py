"""Deployments that bypass igor while a stack is locked or frozen.

A lock or a freeze holds back changes made through igor; someone can still
deploy from the Cloud 66 dashboard, the toolbelt or a hook. The bot looks at the
stacks that are locked or frozen now (and only then: with none, it asks Cloud 66
nothing) and reports a running deployment that igor did not start, naming who
started it and how (Cloud 66's `triggered_by` and `triggered_via`), in the lock's
thread and the `[slack] notify` channel, with a Cancel button for exactly that
deployment (`cancel_words`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from igor_cli.cloud66.activity import action_running, running_deployment
from igor_cli.identity import Person

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Deployment, Stack
    from igor_cli.freeze import Freeze, Window
    from igor_cli.state.locks import Lock

BYPASS_PREFIX = "bypass:"  # a deployment already reported, by one replica
BYPASS_SECONDS = 86400.0
CANCEL_OFFER_SECONDS = 3600.0  # how long the report's Cancel button works (signed expiry)


@dataclass(frozen=True)
class Bypass:
    """A deployment running outside igor on a stack that is locked or frozen."""

    stack: Stack
    deployment: Deployment
    lock: Lock | None = None
    window: Window | None = None

    @property
    def key(self) -> str:
        """Where the report of it is claimed (once across replicas)."""
        return f"{BYPASS_PREFIX}{self.stack.uid}:{self.deployment.id}"

    @property
    def offer_id(self) -> str:
        """What names this deployment's Cancel button wherever it is shown: one click
        cancels it, whichever place (or replica) the click comes through."""
        return f"bypass:{self.stack.uid}:{self.deployment.id}"

    def cancel_words(self) -> list[str]:
        """The command that cancels exactly this deployment (`cancel --id N`)."""
        words = ["cancel", "-s", self.stack.name]
        if self.stack.environment:
            words += ["-e", self.stack.environment]
        return [*words, "--id", self.deployment.id]

    def sentence(self, person: Callable[[Person], str] = lambda p: p.id) -> str:
        """What happened, in plain words; `person` names the lock's holder."""
        d = self.deployment
        via = f" via {d.triggered_via}" if d.triggered_via else ""
        held = []
        if self.lock is not None:
            why = f" ({self.lock.reason})" if self.lock.reason else ""
            held.append(f"locked by {person(self.lock.holder)}{why}")
        if self.window is not None:
            held.append(f"frozen: {self.window.describe()}")
        return (
            f"Deployment {d.id} of {self.stack.label} was started outside igor by "
            f"{d.triggered_by or 'someone'}{via} while the stack is {' and '.join(held)}."
        )


def find_bypasses(
    client: Cloud66Client,
    locks: list[Lock],
    freezes: list[Freeze],
    now: datetime,
    posted: Callable[[str], bool],
) -> list[Bypass]:
    """Running deployments igor did not start, on the stacks locked or frozen now;
    `posted` says whether igor posted a change with a given `user_reference`."""
    from igor_cli.freeze import any_freeze_now, freeze_in_the_way

    watched: dict[str, tuple[Lock | None, Window | None]] = {
        lock.stack_uid: (lock, None) for lock in locks
    }
    stacks: dict[str, Stack] = {}
    if any_freeze_now(freezes, now):
        for stack in client.stacks():
            window = freeze_in_the_way(freezes, stack.name, stack.environment, now)
            if window is not None:
                stacks[stack.uid] = stack
                watched[stack.uid] = (watched.get(stack.uid, (None, None))[0], window)
    found = []
    for uid, (lock, window) in watched.items():
        # The newest deployments only; read afresh, with the actions that tell igor's,
        # so that both say the same moment.
        live = running_deployment(client.newest_deployments(uid, fresh=True).items)
        if live is None or started_by_igor(client, uid, live, posted):
            continue
        stack = stacks.get(uid) or client.stack(uid)
        found.append(Bypass(stack, live, lock, window))
    return found


def started_by_igor(
    client: Cloud66Client, uid: str, deployment: Deployment, posted: Callable[[str], bool]
) -> bool:
    """Whether igor started this deployment: one of igor's actions runs it (activity.py:
    asked through the API no later than it started), and igor posted that action's
    reference (`posted`: known in the state store; a reference that only starts with
    `igor:` proves nothing, anyone with API access can write one). Cloud 66's
    `triggered_via` is read in both of its documented forms; a deployment it says came
    from elsewhere is not igor's.
    """
    if deployment.via_api is False:
        return False
    action = action_running(deployment, client.newest_actions(uid, fresh=True).items)
    return action is not None and posted(action.user_reference)
