"""What a stack's deployments and actions say: what runs, what waits, what igor started.

Cloud 66 documents a deployment (id, who and how, when, outcome, git hash,
`is_deploying`, `is_live`) and an async action (id, user, `started_at`,
`finished_at`, `finished_success`, `metadata.user_reference`), and nothing that
links the two. igor links them on those fields alone:

- igor's own actions carry its `user_reference` (`igor:<via>:<user>[:<event>]`);
- an action that is over ended when its deployment did (`finished_at`, within
  LINK_SECONDS of each other, and closer than any other), having been asked no
  later than it started;
- the unfinished action that runs the live deployment was asked no later than
  the deployment started; of several, the first asked (a stack deploys one at a
  time, in turn), unless two were asked at the same moment.

A deployment Cloud 66 says was not started through the API (`triggered_via`, in
either of its documented forms) is never igor's. Where that leaves a doubt igor
says it cannot tell, rather than guess. Which deployment a waiting deploy will
become is not known before it starts, so a waiting deploy cannot be cancelled
through the API (README: what Cloud 66 does not let igor do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from igor_cli.identity import IGOR_REFERENCE_PREFIX, Person

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import (
        AsyncAction,
        Deployment,
        Stack,
    )
    from igor_cli.cloud66.paging import Newest
    from igor_cli.state.deployed import Deployed

# How far apart Cloud 66 may date an action and its deployment (unconfirmed: the
# docs show no pair of them).
LINK_SECONDS = 30.0
TYPICAL_OF = 5  # the newest successful deployments an estimate is made from
# A deployment followed by its own id rather than by an async action (`follow`):
# when Cloud 66 names no action for it.
DEPLOYMENT_TARGET = "deployment:"


class StackHints(Protocol):
    """Where a stack's uid may already be known (the completion cache), to skip the listing."""

    def uids(self, name: str, environment: str | None) -> list[str]:
        """The uids of stacks last seen with this name (any case) in this environment."""
        ...


def deployment_target(deployment_id: str) -> str:
    """What `follow` is given to follow a deployment itself rather than an action."""
    return f"{DEPLOYMENT_TARGET}{deployment_id}"


def followed_deployment(target: str) -> str:
    """The deployment id a follow target names ("" for an async action's id)."""
    return target.removeprefix(DEPLOYMENT_TARGET) if target.startswith(DEPLOYMENT_TARGET) else ""


# -- what a deployment came to ------------------------------------------------------

_STATES = {
    "success": "succeeded",
    "succeeded": "succeeded",
    "successful": "succeeded",
    "failed": "failed",
    "failure": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "in progress": "running",
    "running": "running",
    "deploying": "running",
}


def deployment_state(deployment: Deployment) -> str:
    """succeeded, failed, cancelled or running, from the outcome's meaning or its code
    (the docs put the short word in either), in any case."""
    if deployment.is_deploying:
        return "running"
    for word in (deployment.outcome, deployment.outcome_code):
        found = _STATES.get(word.strip().casefold())
        if found:
            return found
    return deployment.outcome.strip().casefold() or "unknown"


def newest_first(deployment: Deployment) -> tuple[float, int, str]:
    """A sort key: the newest deployment first (by start, then by id)."""
    started = deployment.started_at.timestamp() if deployment.started_at else float("inf")
    number = int(deployment.id) if deployment.id.isdigit() else 0
    return (-started, -number, deployment.id)


def running_deployment(deployments: Sequence[Deployment]) -> Deployment | None:
    """The deployment running now (`is_deploying`); a stack runs one at a time."""
    return next((d for d in deployments if d.is_deploying), None)


def live_deployment(deployments: Sequence[Deployment]) -> Deployment | None:
    """The deployment whose code runs now: the one Cloud 66 marks `is_live`, else the
    newest that succeeded (None when none did).

    Unconfirmed: that `is_live` marks the deployment running now (the sandbox marks
    the newest success); without it, the newest success is the best igor can tell.
    """
    marked = sorted((d for d in deployments if d.is_live), key=newest_first)
    if marked:
        return marked[0]
    succeeded = [d for d in deployments if deployment_state(d) == "succeeded"]
    return min(succeeded, key=newest_first, default=None)


@dataclass(frozen=True)
class DeployKind:
    """What makes two deployments' durations comparable: asked through the API (igor,
    a hook, cx) or not (the dashboard, which may build first), the services deployed
    (one service of a docker stack deploys faster than all of them), the profile (the
    last two known only for deployments igor made: its own record says them)."""

    api: bool
    services: frozenset[str] = frozenset()
    profile: str = ""


def kind_of(deployment: Deployment) -> DeployKind:
    """The kind of a deployment Cloud 66 lists."""
    return DeployKind(
        bool(deployment.via_api), service_names(deployment.services),
        deployment.deployment_profile,
    )  # fmt: skip


def service_names(services: Sequence[str]) -> frozenset[str]:
    """`web:1.2`, `Worker` -> {"web", "worker"}: the services, without their tags."""
    return frozenset(s.split(":", 1)[0].strip().casefold() for s in services if s.strip())


def typical_duration(
    deployments: Sequence[Deployment], like: DeployKind | None = None
) -> float | None:
    """How long the stack's newest successful deployments of this kind took (the median);
    None when none did: no estimate rather than one made from other kinds."""
    done = [
        d
        for d in deployments
        if deployment_state(d) == "succeeded"
        and d.started_at
        and d.finished_at
        and (like is None or kind_of(d) == like)
    ]
    newest = sorted(done, key=newest_first)[:TYPICAL_OF]
    seconds = [
        (d.finished_at - d.started_at).total_seconds()
        for d in newest
        if d.finished_at is not None and d.started_at is not None
    ]
    import statistics  # a TAB loads this module: what only a look uses waits

    return statistics.median(seconds) if seconds else None


# -- igor's actions and the deployments they ran ------------------------------------


def igors(actions: Sequence[AsyncAction]) -> list[AsyncAction]:
    """The actions igor asked for (its `user_reference`), first asked first."""
    mine = [a for a in actions if a.user_reference.startswith(IGOR_REFERENCE_PREFIX)]
    return sorted(mine, key=_asked)


def _asked(action: AsyncAction) -> tuple[float, str]:
    asked = action.started_at.timestamp() if action.started_at else float("inf")
    return (asked, action.id)


def _asked_by(asked: datetime | None, started: datetime | None) -> bool:
    """Asked no later than it started (where both times are known), give or take LINK_SECONDS."""
    return asked is None or started is None or (asked - started).total_seconds() <= LINK_SECONDS


def _together(a: datetime | None, b: datetime | None) -> bool:
    """Both known and within LINK_SECONDS of each other."""
    return a is not None and b is not None and abs((a - b).total_seconds()) <= LINK_SECONDS


def action_running(live: Deployment, actions: Sequence[AsyncAction]) -> AsyncAction | None:
    """igor's unfinished action that runs the live deployment, when that can be told.

    It was asked no later than the deployment started; of several, the first asked
    runs (unless two were asked at the same moment). A deployment Cloud 66 says was
    not started through the API is nobody's in igor.
    """
    if live.via_api is False:
        return None
    possible = [
        a for a in igors(actions) if not a.finished and _asked_by(a.started_at, live.started_at)
    ]
    if len(possible) > 1 and _asked(possible[0])[0] == _asked(possible[1])[0]:
        return None
    return possible[0] if possible else None


def links(
    deployments: Sequence[Deployment], actions: Sequence[AsyncAction]
) -> dict[str, AsyncAction]:
    """igor's action behind each deployment it can be told for, by deployment id: the one
    that ended closest to it (within LINK_SECONDS), when no other ended as close."""
    found: dict[str, AsyncAction] = {}
    mine = [a for a in igors(actions) if a.finished]
    for deployment in deployments:
        if deployment.via_api is False or deployment.finished_at is None:
            continue
        apart = sorted(
            (abs((a.finished_at - deployment.finished_at).total_seconds()), a.id, a)
            for a in mine
            if a.finished_at is not None
            and _together(a.finished_at, deployment.finished_at)
            and _asked_by(a.started_at, deployment.started_at)
        )
        if apart and (len(apart) == 1 or apart[0][0] < apart[1][0]):
            found[deployment.id] = apart[0][2]
    # An action that fits two deployments fits neither for sure.
    claimed = [a.id for a in found.values()]
    found = {d: a for d, a in found.items() if claimed.count(a.id) == 1}
    live = running_deployment(deployments)
    if live is not None:
        running = action_running(live, actions)
        if running is not None:
            found[live.id] = running
    return found


def igor_requesters(
    deployments: Sequence[Deployment], actions: Sequence[AsyncAction]
) -> dict[str, Person]:
    """Which deployments igor started, and for whom, where the link can be told."""
    found = {}
    for deployment_id, action in links(deployments, actions).items():
        requester = Person.from_reference(action.user_reference)
        if requester is not None:
            found[deployment_id] = requester
    return found


def with_what_igor_sent(
    deployments: Sequence[Deployment],
    actions: Sequence[AsyncAction],
    records: Sequence[Deployed],
) -> list[Deployment]:
    """The deployments, those igor made carrying what it sent (its record of the tags,
    ref and profile): Cloud 66 shows none of them on a deployment."""
    if not records:
        return list(deployments)
    by_action = {r.action_id: r for r in records if r.action_id}
    by_reference: dict[str, list[Deployed]] = {}
    for each in records:
        by_reference.setdefault(each.user_reference, []).append(each)
    behind = links(deployments, actions)
    filled = []
    for deployment in deployments:
        action = behind.get(deployment.id)
        record: Deployed | None = None
        if action is not None:
            same = by_reference.get(action.user_reference, [])
            # A reference used once (a Slack event's) names one record, action id or not.
            record = by_action.get(action.id) or (same[0] if len(same) == 1 else None)
        filled.append(
            deployment
            if record is None
            else replace(
                deployment,
                services=record.services,
                git_ref=record.ref,
                deployment_profile=record.profile,
            )
        )
    return filled


def actions_since(
    client: Cloud66Client, stack: Stack, deployments: Sequence[Deployment]
) -> list[AsyncAction]:
    """The stack's newest actions, back to the oldest of these deployments (none is read
    when no deployment came through the API); none either when they cannot be read."""
    from igor_cli.errors import ApiError, Throttled, Unreachable

    if not deployments or all(d.via_api is False for d in deployments):
        return []
    starts = [d.started_at for d in deployments if d.started_at is not None]
    oldest = min(starts).timestamp() - LINK_SECONDS if starts else None

    def far_enough(actions: Sequence[AsyncAction]) -> bool:
        return oldest is None or any(
            a.started_at is not None and a.started_at.timestamp() < oldest for a in actions
        )

    try:
        return list(client.newest_actions(stack.uid, far_enough).items)
    except (Throttled, Unreachable, ApiError):
        return []  # Cloud 66's own words then: `triggered_by`


def runs_now(
    client: Cloud66Client, stack: Stack, deployment: Deployment | None
) -> Deployment | None:
    """On a docker stack, the live deployment carrying the tags its services run now
    (`GET /stacks/{uid}/services`: the Go client's `image_tag`, or the containers'
    images); the deployment as it was where a service's tag is not shown."""
    if deployment is None or not stack.is_docker:
        return deployment
    services = client.services(stack.uid)
    if services and all(s.tag for s in services):
        return replace(deployment, services=tuple(f"{s.name}:{s.tag}" for s in services))
    return deployment


# -- what runs and what waits ------------------------------------------------------


@dataclass(frozen=True)
class QueuedDeploy:
    """A deploy igor asked for that has not started: it waits behind the running one."""

    action: AsyncAction
    requester: Person | None


@dataclass(frozen=True)
class LiveState:
    """What runs on a stack now, igor's action behind it, and the deploys igor queued."""

    live: Deployment | None
    live_action: AsyncAction | None  # igor's action that runs `live`, when it can be told
    queued: tuple[QueuedDeploy, ...]  # igor's deploys waiting (behind `live`, if any)
    deployments: Sequence[Deployment] = ()  # the newest deployments it was told from

    @property
    def live_requester(self) -> Person | None:
        """igor's requester of the running deployment; None unless it is igor's for sure."""
        if self.live_action is None:
            return None
        return Person.from_reference(self.live_action.user_reference)


def live_state(
    client: Cloud66Client,
    stack: Stack,
    deployments: Newest[Deployment] | None = None,
    fresh: bool = False,
) -> LiveState:
    """What runs and waits on the stack: its newest deployments (`deployments` when the
    caller read them) and a page of its newest actions, read afresh when `fresh` (a read
    shared moments ago could show an action over while its deployment still runs)."""
    read = deployments or client.newest_deployments(stack.uid, fresh=fresh)
    live = running_deployment(read.items)
    newest = client.newest_actions(stack.uid, fresh=fresh).items
    unfinished = [a for a in igors(newest) if not a.finished]
    runs = action_running(live, unfinished) if live is not None else None
    queued = tuple(
        QueuedDeploy(a, Person.from_reference(a.user_reference))
        for a in unfinished
        if a is not runs
    )
    return LiveState(live, runs, queued, read.items)
