"""Going back and carrying forward: `igor rollback` and `igor promote`.

Both deploy again what a past deployment ran (its git hash on a classic stack,
its image tags on a docker stack) through the deploy path itself: the same busy
rules and `-w`, the same dry run, one POST tagged with igor's user_reference and
never retried, under the stack's lock. What they would deploy is found by
looking, so in chat the bridge looks first (a dry run), names it in the
confirmation, and the click deploys only that (`expect`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from igor_cli.actions import (
    DEPLOY_FIELDS,
    Client,
    DeployOutcome,
    DeployRequest,
    Origin,
    Request,
    Run,
    StackHints,
    deploy_resolved,
    deployment_state,
    find_stack,
    live_deployment,
    newest_first,
    performs,
    with_follow_events,
)
from igor_cli.errors import (
    AlreadyLive,
    ChangedSinceConfirmed,
    DifferentRepositories,
    NoSuchDeployment,
    NothingToGoBackTo,
    NothingToPromote,
    NotShownByCloud66,
    UsageProblem,
)

if TYPE_CHECKING:
    from igor_cli.cloud66 import Deployment, Stack
    from igor_cli.json_output import JsonOutput

StackLock = Callable[[str], AbstractContextManager[Any]]

# -- requests ------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackRequest(Request):
    """`igor rollback`."""

    changes: ClassVar[bool] = True
    needs_cloud66: ClassVar[bool] = True
    # What it deploys is known only by looking: chat looks first and names it.
    previews: ClassVar[bool] = True
    acts_on_a_stack: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = with_follow_events(*DEPLOY_FIELDS, "from", "to")

    stack: str
    environment: str | None = None
    to: str = ""  # a deployment id; "" = the last good one before the live one
    wait: bool = True
    follow: bool = False
    dry_run: bool = False
    as_json: JsonOutput | None = None
    expect: str = ""  # set by a confirmation: deploy this (a hash or tags) or nothing
    break_glass: bool = False  # during a freeze (only those it names; on record)
    reason: str = ""  # why, for the record


@dataclass(frozen=True)
class PromoteRequest(Request):
    """`igor promote`: the stack that changes is the one in `environment` (--to)."""

    changes: ClassVar[bool] = True
    needs_cloud66: ClassVar[bool] = True
    previews: ClassVar[bool] = True
    acts_on_a_stack: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = with_follow_events(
        *DEPLOY_FIELDS, "source_stack", "from", "replaces"
    )

    stack: str
    source: str  # --from ENV
    environment: str  # --to ENV
    wait: bool = True
    follow: bool = False
    dry_run: bool = False
    as_json: JsonOutput | None = None
    expect: str = ""
    break_glass: bool = False
    reason: str = ""


# -- what to post again ----------------------------------------------------------


@dataclass(frozen=True)
class Redeploy:
    """What deploying a past deployment again posts: a git_ref, or image tags."""

    ref: str = ""
    services: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """One string for what is deployed (a confirmation carries it)."""
        return self.ref or ",".join(self.services)


def redeploy_of(stack: Stack, deployment: Deployment) -> Redeploy:
    """What to post to deploy again on `stack` what `deployment` ran; refused when
    Cloud 66 does not show it (no hash; on a docker stack, no image tags)."""
    if stack.is_docker:
        tags = deployment.services
        if not tags or not all(_tag_of(entry) for entry in tags):
            raise NotShownByCloud66(
                f"Cloud 66 does not show which image tags deployment {deployment.id} of "
                f"{stack.label} ran. Nothing was posted.",
                f"Deploy the tags you want by name: `igor deploy {_where(stack)} -v SERVICE:TAG` "
                "(one -v for each service).",
            )
        return Redeploy(services=tuple(tags))
    if not deployment.git_hash:
        raise NotShownByCloud66(
            f"Cloud 66 does not show which commit deployment {deployment.id} of {stack.label} "
            "ran. Nothing was posted.",
            f"Deploy a commit by name: `igor deploy {_where(stack)} --ref COMMIT`.",
        )
    return Redeploy(ref=deployment.git_hash)


def ran_the_same(a: Deployment, b: Deployment) -> bool:
    """Whether two deployments ran the same commit (or the same image tags)."""
    if a.services or b.services:
        return sorted(a.services) == sorted(b.services)
    return bool(a.git_hash) and a.git_hash == b.git_hash


def _tag_of(entry: str) -> str:
    return entry.partition(":")[2].strip()


def _where(stack: Stack) -> str:
    """`-s shop -e production`, quoted for a shell."""
    env = f" -e {shlex.quote(stack.environment)}" if stack.environment else ""
    return f"-s {shlex.quote(stack.name)}{env}"


def short(deployment: Deployment) -> str:
    """What a deployment ran, briefly: `3f2a1c9`, or `web:1.4.0, worker:1.4.0`."""
    if deployment.services:
        return ", ".join(deployment.services)
    return deployment.git_hash[:7] or deployment.git_ref or "an unknown commit"


def _short_key(key: str) -> str:
    return ", ".join(key.split(",")) if "," in key or ":" in key else key[:7]


# -- outcomes --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RollbackOutcome(DeployOutcome):
    """A deploy of what a past deployment ran, and the two sides: from and to."""

    current: Deployment  # the live deployment, rolled back from
    target: Deployment  # the past deployment whose code (or images) is deployed again

    @property
    def deploys(self) -> str:
        """What it deploys, as a confirmation carries it (`expect`)."""
        return Redeploy(self.ref, self.services).key


@dataclass(frozen=True, kw_only=True)
class PromoteOutcome(DeployOutcome):
    """A deploy to one environment's stack of what another environment's stack runs."""

    source_stack: Stack
    source: Deployment  # the source stack's live deployment
    current: Deployment | None  # the target stack's live deployment, if any

    @property
    def deploys(self) -> str:
        """What it deploys, as a confirmation carries it (`expect`)."""
        return Redeploy(self.ref, self.services).key


def _as_deploy(outcome: DeployOutcome) -> dict[str, Any]:
    return {f.name: getattr(outcome, f.name) for f in fields(DeployOutcome)}


# -- rollback ----------------------------------------------------------------------


def rollback_target(
    stack: Stack, deployments: Sequence[Deployment], to: str = ""
) -> tuple[Deployment, Deployment]:
    """(the live deployment, the one to go back to): by default the newest that
    succeeded before the live one and ran something else; `to` names another."""
    history = f"See its deployments with `igor history {_where(stack)}`."
    current = live_deployment(deployments)
    if current is None:
        raise NothingToGoBackTo(
            f"{stack.label} has no successful deployment, so nothing to roll back. "
            "Nothing was posted.",
            history,
        )
    if to:
        target = next((d for d in deployments if d.id == to.strip()), None)
        if target is None:
            raise NoSuchDeployment(
                f"{stack.label} has no deployment {to}. Nothing was posted.", history
            )
        if target.id == current.id:
            raise AlreadyLive(
                f"Deployment {target.id} is the live one on {stack.label}: there is nothing "
                "to roll back to. Nothing was posted.",
                history,
            )
        state = deployment_state(target)
        if state != "succeeded":
            raise NothingToGoBackTo(
                f"Deployment {target.id} of {stack.label} {state}; igor rolls back only to a "
                "deployment that succeeded. Nothing was posted.",
                history,
            )
        if ran_the_same(target, current):
            raise AlreadyLive(
                f"Deployment {target.id} ran {short(target)}, which is what {stack.label} runs "
                f"now (deployment {current.id}). Nothing was posted.",
                history,
            )
        return current, target
    after = newest_first(current)
    older = sorted((d for d in deployments if newest_first(d) > after), key=newest_first)
    target = next(
        (d for d in older if deployment_state(d) == "succeeded" and not ran_the_same(d, current)),
        None,
    )
    if target is None:
        raise NothingToGoBackTo(
            f"{stack.label} has no successful deployment before the live one "
            f"({current.id}, {short(current)}) that ran anything else. Nothing was posted.",
            history,
        )
    return current, target


def rollback(
    client: Client,
    request: RollbackRequest,
    origin: Origin,
    hints: StackHints | None = None,
    stack_lock: StackLock | None = None,
) -> RollbackOutcome:
    """Deploy again what the last good deployment before the live one ran (or `--to`'s)."""
    stack = find_stack(client, request.stack, request.environment, hints)
    with stack_lock(stack.uid) if stack_lock else nullcontext():
        every = client.deployments(stack.uid)  # every page: the order is undocumented
        current, target = rollback_target(stack, every, request.to)
        again = redeploy_of(stack, target)
        _check_expected(request.expect, again, f"roll {stack.label} back to")
        done = deploy_resolved(
            client, _deploy_request(stack, again, request), origin, stack, again.services, every
        )
    return RollbackOutcome(**_as_deploy(done), current=current, target=target)


# -- promote -------------------------------------------------------------------------


def repository(url: str) -> str:
    """A git URL reduced to host/path, so the ssh and https forms of one repository match."""
    text = url.strip().casefold().rstrip("/").removesuffix(".git")
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = re.sub(r"^[^@/]+@", "", text)
    return text.replace(":", "/", 1)


def check_same_repository(source: Stack, target: Stack) -> None:
    """Refuse unless both stacks deploy from one repository (their `git` fields)."""
    if source.is_docker != target.is_docker:
        kind = "a docker stack" if source.is_docker else "a classic stack"
        raise DifferentRepositories(
            f"{source.label} is {kind} and {target.label} is not: igor promotes only between "
            "stacks of one kind. Nothing was posted."
        )
    unknown = [s.label for s in (source, target) if not s.git]
    if unknown:
        raise DifferentRepositories(
            f"Cloud 66 does not say which repository {' and '.join(unknown)} deploys from, so "
            "igor cannot check that both stacks run the same code. Nothing was posted.",
            f"Deploy a commit by name instead: `igor deploy {_where(target)} --ref COMMIT`.",
        )
    if repository(source.git) != repository(target.git):
        raise DifferentRepositories(
            f"{source.label} deploys from {source.git} but {target.label} from {target.git}: "
            "igor promotes only within one repository. Nothing was posted."
        )


def promote(
    client: Client,
    request: PromoteRequest,
    origin: Origin,
    hints: StackHints | None = None,
    stack_lock: StackLock | None = None,
) -> PromoteOutcome:
    """Deploy to the `--to` environment's stack what the `--from` one runs."""
    if request.source.strip().casefold() == request.environment.strip().casefold():
        raise UsageProblem(
            f"--from and --to both name {request.environment!r}.",
            "Promote from one environment to another, e.g. --from staging --to production.",
        )
    target_stack = find_stack(client, request.stack, request.environment, hints)
    source_stack = find_stack(client, request.stack, request.source, hints)
    check_same_repository(source_stack, target_stack)
    source = live_deployment(client.deployments(source_stack.uid))
    if source is None:
        raise NothingToPromote(
            f"{source_stack.label} has no successful deployment to promote. Nothing was posted.",
            f"See its deployments with `igor history {_where(source_stack)}`.",
        )
    again = redeploy_of(target_stack, source)
    with stack_lock(target_stack.uid) if stack_lock else nullcontext():
        every = client.deployments(target_stack.uid)
        current = live_deployment(every)
        if current is not None and ran_the_same(current, source):
            raise AlreadyLive(
                f"{target_stack.label} already runs {short(source)} (deployment {current.id}), "
                f"as {source_stack.label} does. Nothing was posted."
            )
        _check_expected(request.expect, again, f"deploy to {target_stack.label}")
        done = deploy_resolved(
            client,
            _deploy_request(target_stack, again, request),
            origin,
            target_stack,
            again.services,
            every,
        )
    return PromoteOutcome(
        **_as_deploy(done), source_stack=source_stack, source=source, current=current
    )


# -- shared --------------------------------------------------------------------------


def _deploy_request(
    stack: Stack, again: Redeploy, request: RollbackRequest | PromoteRequest
) -> DeployRequest:
    return DeployRequest(
        stack.name,
        stack.environment,
        again.services,
        ref=again.ref,
        wait=request.wait,
        follow=request.follow,
        dry_run=request.dry_run,
        as_json=request.as_json,
    )


def _check_expected(expected: str, again: Redeploy, doing: str) -> None:
    """A confirmed change deploys what its question named, or nothing."""
    if expected and again.key != expected:
        raise ChangedSinceConfirmed(
            f"igor would now {doing} {_short_key(again.key)}, not the {_short_key(expected)} "
            "you confirmed: something was deployed since. Nothing was posted.",
            "Ask again to see what it would deploy now.",
        )


@performs(RollbackRequest)
def _rollback_action(run: Run, request: RollbackRequest) -> RollbackOutcome:
    locks = run.env.stack_lock if run.env is not None else None
    return rollback(run.connect(), request, run.origin, run.hints, locks)


@performs(PromoteRequest)
def _promote_action(run: Run, request: PromoteRequest) -> PromoteOutcome:
    locks = run.env.stack_lock if run.env is not None else None
    return promote(run.connect(), request, run.origin, run.hints, locks)
