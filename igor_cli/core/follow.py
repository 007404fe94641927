"""Following an async action to its end: where it is, how often to look, what each look says.

`follow` yields a `Progress` for each look at the async action igor asked for (a
deployment's, or a stack action's such as a restart; or the deployment itself,
when Cloud 66 names no action for it) until it is over,
within the token's hourly budget (`FollowPolicy`). The shell, the chat console and
the bot follow the same way; a `Followed` is what they follow.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from igor_cli.cloud66.activity import deployment_state, followed_deployment
from igor_cli.errors import (
    ApiError,
    ExitCode,
    IgorError,
    NotFound,
    Throttled,
    Unreachable,
    UnreadableAnswer,
)

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Deployment, Stack
    from igor_cli.identity import Person


@dataclass(frozen=True)
class Followed:
    """An async action to follow to its end: the deployment `watch` attaches to, or that
    `deploy --follow` (a rollback, a promotion) started; or a stack action (`restart
    --follow`), which `doing` names.

    No `action_id`: nothing runs or waits on the stack, so there is nothing to follow.
    """

    stack: Stack
    # The async action followed, or `deployment:<id>` (activity.deployment_target) when
    # Cloud 66 names no action for it: the deployment itself is followed then.
    action_id: str = ""
    deployment: Deployment | None = None  # the running deployment (None: not started yet)
    started_by: Person | None = None  # igor's requester, when it is igor's for sure
    queued: bool = False  # igor's deploy, waiting behind the running one
    started_at: datetime | None = None  # when it started (or was asked for, when queued)
    typical: float | None = None  # seconds the stack's recent successful deployments took
    behind: str = ""  # queued: the id of the deployment it waits behind, when known
    # How the last word names it when it is more than a deploy of what the stack is set
    # to deploy (`Rollback of shop (production) to 9b7e0d4`); "" for a deploy.
    what: str = ""
    # What runs, when it is no deployment but a stack action (`Restarting`, `Pausing web`):
    # how progress names it (`what` names its end). "" for a deployment.
    doing: str = ""

    @property
    def followable(self) -> bool:
        """Whether there is a deployment to follow."""
        return bool(self.action_id)

    @property
    def async_action_id(self) -> str:
        """The async action followed ("" when the deployment itself is, or nothing)."""
        return "" if followed_deployment(self.action_id) else self.action_id


def seconds_running(followed: Followed, now: datetime) -> float:
    """How long the followed deployment has run already (0 when igor just asked for it)."""
    if followed.started_at is None:
        return 0.0
    return max(0.0, (now - followed.started_at).total_seconds())


@dataclass(frozen=True)
class Progress:
    """One look at a deployment being followed."""

    elapsed: float
    finished: bool
    success: bool | None = None
    message: str = ""
    timed_out: bool = False
    cancelled: bool = False
    queued: bool = False  # still waiting behind the deployment in front of it
    deployment_id: str = ""  # its deployment, when Cloud 66's action names it

    @property
    def last(self) -> bool:
        """The last look: it finished, or igor stopped waiting for it (timed out)."""
        return self.finished or self.timed_out

    @property
    def exit_code(self) -> ExitCode:
        """0 succeeded; 3 cancelled (someone asked; not igor failing); 1 failed or still runs."""
        if self.finished and self.success:
            return ExitCode.OK
        if self.finished and self.cancelled:
            return ExitCode.CANCELLED
        return ExitCode.FAILED

    @property
    def state(self) -> str:
        """succeeded, failed, cancelled, queued, or running (also when igor stopped
        watching)."""
        if not self.finished:
            return "queued" if self.queued else "running"
        if self.success:
            return "succeeded"
        return "cancelled" if self.cancelled else "failed"

    @property
    def cancelled_by(self) -> str:
        """Who cancelled it, when Cloud 66's message says (`Deployment cancelled by X`)."""
        if not self.cancelled:
            return ""
        _, found, who = self.message.partition(" by ")
        return who.strip().rstrip(".") if found else ""


LOW_REMAINING = 600  # requests left this hour below which following slows down
RESERVED_REQUESTS = 100  # kept for the commands people type


@dataclass
class FollowPolicy:
    """How often to look, for how long, and how to back off when Cloud 66 pushes back.

    The clock and sleep are injectable so that tests follow in simulated time.
    `give_up_after` consecutive failed looks end the follow (one 404 or outage
    does not).
    """

    interval: float = 5.0
    timeout: float = 3600.0
    max_backoff: float = 300.0
    give_up_after: int = 10
    # Polls an hour that every loop following with this policy may spend together:
    # a Cloud 66 token has 3,000 requests an hour for everything igor does.
    hourly_budget: float = 360.0
    # For this long after it starts, a loop looks every `interval` whatever the
    # budget: a deployment that fails at once is told at once.
    quick_seconds: float = 0.0
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def interval_for(
        self, loops: int, remaining: int | None = None, elapsed: float | None = None
    ) -> float:
        """Seconds between looks when `loops` deployments are followed at once.

        When Cloud 66 says how many requests the token has left this hour
        (`X-RateLimit-Remaining`), the looks thin out as that number falls,
        keeping a reserve for the commands people type.
        """
        quick = elapsed is not None and elapsed < self.quick_seconds
        budgeted = max(1, loops) * 3600.0 / self.hourly_budget
        interval = self.interval if quick else max(self.interval, budgeted)
        if remaining is not None and remaining < LOW_REMAINING:
            spare = max(1, remaining - RESERVED_REQUESTS)
            interval = max(interval, min(self.max_backoff, max(1, loops) * 3600.0 / spare))
        return interval


UNREADABLE_LOOKS = 3  # answers in a row igor cannot read before it says so and stops


def follow(
    client: Cloud66Client,
    stack_uid: str,
    action_id: str,
    policy: FollowPolicy | None = None,
    loops: Callable[[], int] = lambda: 1,
    already: float = 0.0,
    behind: str = "",
    deployment_id: str = "",
) -> Iterator[Progress]:
    """Yield progress until the deploy's async action (or, for a `deployment:<id>` target,
    the deployment itself) finishes or the timeout passes.

    Throttling, outages and a passing 404 (after the client's own retries) only
    slow the polling down; a rejected token, `give_up_after` failures in a row, or
    UNREADABLE_LOOKS answers igor cannot read, end it (never a silent loop).
    `already`: seconds the deployment ran before igor started watching.
    `behind`: the deployment a queued deploy waits behind; looked at (one GET) with
    each look until it is over, so progress says when the wait ends. `deployment_id`:
    the followed deployment's id when igor knows it (Cloud 66 does not say which
    deployment an action runs), given with every look.
    """
    policy = policy or FollowPolicy()
    started = policy.clock() - max(0.0, already)
    delay = policy.interval_for(loops())
    failures = unreadable = 0
    target = followed_deployment(action_id)
    named = target or deployment_id
    waiting = bool(behind)
    while True:
        try:
            progress = (
                _deployment_look(client, stack_uid, target)
                if target
                else _action_look(client, stack_uid, action_id)
            )
        except UnreadableAnswer as error:
            unreadable += 1
            if unreadable >= UNREADABLE_LOOKS:
                raise _unreadable(error, target or action_id) from None
            progress = None
            delay = min(policy.max_backoff, delay * 2)
        except (Throttled, Unreachable, ApiError, NotFound):
            failures += 1
            if failures >= policy.give_up_after:
                raise
            progress = None
            delay = min(policy.max_backoff, delay * 2)
        elapsed = policy.clock() - started
        if progress is not None:
            failures = unreadable = 0
            remaining = getattr(client, "rate_remaining", None)
            delay = policy.interval_for(loops(), remaining, elapsed)
        if progress is not None and progress.finished:
            took = progress.elapsed if progress.elapsed >= 0 else elapsed
            yield dataclasses.replace(progress, elapsed=took, deployment_id=named)
            return
        if elapsed - already >= policy.timeout:
            yield Progress(elapsed, False, None, "still running", timed_out=True)
            return
        if waiting and progress is not None:
            waiting = _in_front(client, stack_uid, behind)
        yield Progress(elapsed, False, queued=waiting, deployment_id=named)
        policy.sleep(delay)


def _in_front(client: Cloud66Client, stack_uid: str, deployment_id: str) -> bool:
    """Whether the deployment a queued deploy waits behind still runs (when it cannot be
    read this time, the wait is taken to go on; when it is gone, to be over)."""
    try:
        return client.deployment(stack_uid, deployment_id).is_deploying
    except NotFound:
        return False
    except (Throttled, Unreachable, ApiError):
        return True


def _action_look(client: Cloud66Client, stack_uid: str, action_id: str) -> Progress:
    """One look at an async action (elapsed -1: igor's own watch time, unless Cloud 66 dates it)."""
    action = client.action(stack_uid, action_id)
    if not action.finished:
        return Progress(-1.0, False)
    cancelled = not action.finished_success and "cancel" in action.finished_message.lower()
    return Progress(
        _took(action.started_at, action.finished_at),
        True,
        bool(action.finished_success),
        action.finished_message,
        cancelled=cancelled,
    )


def _deployment_look(client: Cloud66Client, stack_uid: str, deployment_id: str) -> Progress:
    """One look at a deployment itself (`GET /stacks/{uid}/deployments/{id}`)."""
    deployment = client.deployment(stack_uid, deployment_id)
    if deployment.is_deploying or deployment.finished_at is None:
        return Progress(-1.0, False)
    state = deployment_state(deployment)
    return Progress(
        _took(deployment.started_at, deployment.finished_at),
        True,
        state == "succeeded",
        deployment.outcome,
        cancelled=state == "cancelled",
    )


def _unreadable(error: UnreadableAnswer, what: str) -> IgorError:
    return IgorError(
        f"igor stopped following: Cloud 66's last {UNREADABLE_LOOKS} answers about "
        f"{what} could not be read ({error.message.rstrip('.')}).",
        "The deployment goes on: check it with `igor history` or in the Cloud 66 dashboard.",
    )


def _took(started: datetime | None, finished: datetime | None) -> float:
    """How long a finished deployment took by Cloud 66's own start and end (a replica that
    took over a follow, or a restarted bot, watched only the end of it); -1 when it does
    not date both (how long igor watched, then)."""
    if started is None or finished is None:
        return -1.0
    return max(0.0, (finished - started).total_seconds())
