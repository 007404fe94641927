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
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from igor_cli.cli import (
    QUEUE,
    BreakGlass,
    DryRun,
    EnvironmentName,
    Follow,
    Json,
    NoWait,
    Reason,
    StackName,
    Wait,
    command,
    complete_environments,
)
from igor_cli.core.request import Change, QuestionWords, StackLock
from igor_cli.errors import (
    AlreadyLive,
    ChangedSinceConfirmed,
    DifferentRepositories,
    NoSuchDeployment,
    NotFound,
    NothingToGoBackTo,
    NothingToPromote,
    NotShownByCloud66,
    UsageProblem,
)
from igor_cli.features.deploy import (
    DEPLOY_FIELDS,
    DeployOutcome,
    DeployRequest,
    deploy_hints,
    deploy_json,
    deploy_resolved,
    deploy_tone,
    redeploy_sentence,
)
from igor_cli.json_output import with_follow_events

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import StackHints
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Deployment, Stack
    from igor_cli.core.run import Run
    from igor_cli.identity import Origin
    from igor_cli.render.said import Said
    from igor_cli.state.deployed import Ledger

COMMANDS = {"rollback": (), "promote": ()}

# -- the commands ----------------------------------------------------------------------

PastDeploymentId = Annotated[
    str | None,
    typer.Option(
        "--to", metavar="ID", show_default=False,
        help="Go back to this past deployment instead (its id, from igor history).",
    ),
]  # fmt: skip
SourceEnvironment = Annotated[
    str,
    typer.Option(
        "--from", metavar="ENV", show_default=False,
        help="The environment whose running commit (or image tags) to carry.",
        autocompletion=complete_environments,
    ),
]  # fmt: skip
TargetEnvironment = Annotated[
    str,
    typer.Option(
        "--to", metavar="ENV", show_default=False,
        help="The environment to deploy it to.", autocompletion=complete_environments,
    ),
]  # fmt: skip


@command(
    "rollback",
    chat=True,
    examples=(
        "igor rollback shop -e production --dry-run",
        "igor rollback -s shop -e production --to 4001 --follow",
    ),
)
def rollback_command(
    stack: StackName,
    environment: EnvironmentName = None,
    to: PastDeploymentId = None,
    wait: Wait = QUEUE,
    no_wait: NoWait = False,
    follow: Follow = False,
    dry_run: DryRun = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> RollbackRequest:
    """Go back to the last good deployment before the live one.

    Deploys again what it ran: its commit on a classic stack, its image tags on
    a docker stack. Refused when there is nothing to go back to; a busy stack
    follows deploy's -w rule.
    """
    return RollbackRequest(
        stack=stack,
        environment=environment,
        to=(to or "").strip(),
        wait=bool(wait) and not no_wait,
        follow=follow,
        dry_run=dry_run,
        as_json=as_json,
        break_glass=break_glass,
        reason=reason.strip(),
    )


@command(
    "promote",
    chat=True,
    examples=(
        "igor promote shop --from staging --to production --dry-run",
        "igor promote -s shop --from staging --to production --follow",
    ),
)
def promote_command(
    stack: StackName,
    source: SourceEnvironment,
    target: TargetEnvironment,
    wait: Wait = QUEUE,
    no_wait: NoWait = False,
    follow: Follow = False,
    dry_run: DryRun = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> PromoteRequest:
    """Deploy to one environment's stack what another's runs (staging to production).

    Both stacks must deploy from one repository. A busy stack follows deploy's
    -w rule.
    """
    return PromoteRequest(
        stack=stack,
        source=source.strip(),
        environment=target.strip(),
        wait=bool(wait) and not no_wait,
        follow=follow,
        dry_run=dry_run,
        as_json=as_json,
        break_glass=break_glass,
        reason=reason.strip(),
    )


# -- requests ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RollbackRequest(Change):
    """`igor rollback`."""

    # What it deploys is known only by looking: chat looks first and names it.
    previews: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = with_follow_events(*DEPLOY_FIELDS, "from", "to")

    to: str = ""  # a deployment id; "" = the last good one before the live one
    wait: bool = True

    def question(self, stack: Stack, literal: Callable[[str], str]) -> QuestionWords:
        """`roll back *shop* in *production* to `9b7e0d4`?`"""
        # The bridge looked first: `expect` is the hash (or the image tags) the click deploys.
        to = f" to `{literal(_brief(self.expect))}`" if self.expect else ""
        question = f"roll back *{literal(stack.name)}* in *{literal(stack.environment)}*{to}?"
        return QuestionWords(question, "Roll back", "Cancel")

    def act(self, run: Run) -> RollbackOutcome:
        """Deploy again what the last good deployment ran (or `--to`'s)."""
        return rollback(
            run.connect(), self, run.origin, run.hints, self.stack_lock(run.env), run.ledger()
        )


@dataclass(frozen=True, kw_only=True)
class PromoteRequest(Change):
    """`igor promote`: the stack that changes is the one in `environment` (--to)."""

    previews: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = with_follow_events(
        *DEPLOY_FIELDS, "source_stack", "from", "replaces"
    )

    source: str  # --from ENV
    environment: str  # --to ENV
    wait: bool = True

    def question(self, stack: Stack, literal: Callable[[str], str]) -> QuestionWords:
        """`deploy `9b7e0d4` from *staging* to *shop* in *production*?`"""
        what = f"`{literal(_brief(self.expect))}`" if self.expect else "what it runs"
        question = (
            f"deploy {what} from *{literal(self.source)}* to *{literal(stack.name)}* "
            f"in *{literal(stack.environment)}*?"
        )
        return QuestionWords(question, "Promote", "Cancel")

    def act(self, run: Run) -> PromoteOutcome:
        """Deploy to `--to`'s stack what `--from`'s runs."""
        return promote(
            run.connect(), self, run.origin, run.hints, self.stack_lock(run.env), run.ledger()
        )


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


def redeploy_of(stack: Stack, deployment: Deployment, unknown: str = "") -> Redeploy:
    """What to post to deploy again on `stack` what `deployment` ran; refused when
    Cloud 66 does not show it (no hash; on a docker stack, no image tags: igor knows
    those only of what it deployed itself). `unknown` says why, when the caller knows."""
    from igor_cli.core.resolve import stack_words

    if stack.is_docker:
        tags = deployment.services
        if not tags or not all(_tag_of(entry) for entry in tags):
            raise NotShownByCloud66(
                unknown
                or f"Cloud 66 does not show which image tags deployment {deployment.id} of "
                f"{stack.label} ran, and igor has no record of deploying it. Nothing was "
                "posted.",
                f"Deploy the tags you want by name: `igor deploy {stack_words(stack)} "
                "-v SERVICE:TAG` (one -v for each service).",
            )
        return Redeploy(services=tuple(tags))
    if not deployment.git_hash:
        raise NotShownByCloud66(
            f"Cloud 66 does not show which commit deployment {deployment.id} of {stack.label} "
            "ran. Nothing was posted.",
            f"Deploy a commit by name: `igor deploy {stack_words(stack)} --ref COMMIT`.",
        )
    return Redeploy(ref=deployment.git_hash)


def ran_the_same(a: Deployment, b: Deployment) -> bool:
    """Whether two deployments ran the same commit (or the same image tags for every service
    both name: a deploy of `-v web:1.5` ran what runs now if web runs 1.5)."""
    from igor_cli.state.deployed import tags_of

    if a.services or b.services:
        ta, tb = tags_of(a.services), tags_of(b.services)
        shared = ta.keys() & tb.keys()
        return bool(shared) and all(ta[name] == tb[name] for name in shared)
    return bool(a.git_hash) and a.git_hash == b.git_hash


def _tag_of(entry: str) -> str:
    return entry.partition(":")[2].strip()


def short(deployment: Deployment) -> str:
    """What a deployment ran, briefly: `3f2a1c9`, or `web:1.4.0, worker:1.4.0`."""
    if deployment.services:
        return ", ".join(deployment.services)
    return deployment.git_hash[:7] or deployment.git_ref or "an unknown commit"


def _brief(key: str) -> str:
    """A commit's short hash; image tags as they are (a question names it so)."""
    return ", ".join(key.split(",")) if ":" in key else key[:7]


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

    def followed_as(self) -> str:
        """`Rollback of shop (production) to 9b7e0d4`."""
        return f"Rollback of {self.stack.label} to {short(self.target)}"

    def said(self, now: datetime) -> Said:
        """What the rollback came to, naming both sides; a deploy's hints and tone."""
        from igor_cli.render.said import Said

        said = redeploy_sentence(self, rollback_doing(self, now), now)
        return Said(said, None, deploy_hints(self), deploy_tone(self))

    def facts(self) -> Any:
        """The deploy's facts, and what it went from and to."""
        return {**deploy_json(self), "from": _side(self.current), "to": _side(self.target)}


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

    def followed_as(self) -> str:
        """`Promotion of 9b7e0d4 from staging to shop (production)`."""
        source = self.source_stack.environment or self.source_stack.label
        return f"Promotion of {short(self.source)} from {source} to {self.stack.label}"

    def said(self, now: datetime) -> Said:
        """What the promotion came to, naming both sides; a deploy's hints and tone."""
        from igor_cli.render.said import Said

        said = redeploy_sentence(self, promote_doing(self), now)
        return Said(said, None, deploy_hints(self), deploy_tone(self))

    def facts(self) -> Any:
        """The deploy's facts, the source stack, and what it carries and replaces."""
        source = self.source_stack
        return {
            **deploy_json(self),
            "source_stack": source.named(),
            "from": _side(self.source),
            "replaces": _side(self.current),
        }  # fmt: skip


def rollback_doing(outcome: RollbackOutcome, now: datetime) -> str:
    """`roll back shop (production) from 3f2a1c9 to 9b7e0d4 (deployment 5120 of 2 days ago)`."""
    from igor_cli.render.sentences import ago

    target = outcome.target
    return (
        f"roll back {outcome.stack.label} from {short(outcome.current)} to {short(target)} "
        f"(deployment {target.id} of {ago(target.started_at, now)})"
    )


def promote_doing(outcome: PromoteOutcome) -> str:
    """`deploy 9b7e0d4 (running in staging since ...) to shop (production), which runs 3f2a1c9`."""
    source = outcome.source
    since = source.finished_at or source.started_at
    when = f" since {since.strftime('%Y-%m-%d %H:%M UTC')}" if since else ""
    runs = f"runs {short(outcome.current)}" if outcome.current else "has no successful deployment"
    return (
        f"deploy {short(source)} (running in {outcome.source_stack.environment}{when}) "
        f"to {outcome.stack.label}, which {runs}"
    )


def _side(d: Deployment | None) -> dict[str, Any] | None:
    from igor_cli.render.sentences import ran_json

    return None if d is None else ran_json(d)


def _as_deploy(outcome: DeployOutcome) -> dict[str, Any]:
    return {f.name: getattr(outcome, f.name) for f in fields(DeployOutcome)}


# -- rollback ----------------------------------------------------------------------


ROLLBACK_PAGES = 4  # the newest 120 deployments are searched; further back, name one with --to


def rollback_target(
    stack: Stack, deployments: Sequence[Deployment], to: str = ""
) -> tuple[Deployment, Deployment]:
    """(the live deployment, the one to go back to): by default the newest that
    succeeded before the live one and ran something else; `to` names another."""
    from igor_cli.cloud66.activity import deployment_state, live_deployment, newest_first
    from igor_cli.core.resolve import stack_words

    history = f"See its deployments with `igor history {stack_words(stack)}`."
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
            f"({current.id}, {short(current)}) that ran anything else among its newest "
            f"{len(deployments)}. Nothing was posted.",
            f"{history} Name an older one with --to ID.",
        )
    return current, target


def _enough_to_roll_back(to: str, docker: bool) -> Callable[[Sequence[Deployment]], bool]:
    """When the newest deployments read hold what a rollback needs: the live one and
    `--to`'s, or an older success that ran something else (on a docker stack, any older
    success: what it ran is told afterwards, from igor's records). `--to`'s is looked
    up by itself once the live one is read: reading on for it would cost a page per
    30 deployments back."""
    from igor_cli.cloud66.activity import deployment_state, live_deployment, newest_first

    def enough(found: Sequence[Deployment]) -> bool:
        if to:
            return any(d.id == to for d in found) or live_deployment(found) is not None
        current = live_deployment(found)
        if current is None:
            return False
        after = newest_first(current)
        return any(
            newest_first(d) > after
            and deployment_state(d) == "succeeded"
            and (docker or not ran_the_same(d, current))
            for d in found
        )

    return enough


def rollback(
    client: Cloud66Client,
    request: RollbackRequest,
    origin: Origin,
    hints: StackHints | None = None,
    stack_lock: StackLock | None = None,
    ledger: Ledger | None = None,
) -> RollbackOutcome:
    """Deploy again what the last good deployment before the live one ran (or `--to`'s).

    The newest deployments are read (ROLLBACK_PAGES at most; `--to` is looked up by
    itself when it is older). On a docker stack what each ran comes from igor's
    records of what it deployed and what runs now from the stack's services.
    """
    from igor_cli.core.resolve import find_stack

    stack = find_stack(client, request.stack, request.environment, hints)
    to = request.to.strip()
    with stack_lock(stack.uid) if stack_lock else nullcontext():
        read = client.newest_deployments(
            stack.uid,
            _enough_to_roll_back(to, stack.is_docker),
            fresh=True,
            max_pages=ROLLBACK_PAGES,
        )
        every = list(read.items)
        if to and not any(d.id == to for d in every):
            every.append(_named(client, stack, to))
        if stack.is_docker:
            every = _with_tags(client, stack, every, ledger)
        current, target = rollback_target(stack, every, to)
        again = redeploy_of(stack, target)
        _check_expected(request.expect, again, f"roll {stack.label} back to")
        done = deploy_resolved(
            client,
            _deploy_request(stack, again, request),
            origin,
            stack,
            again.services,
            read,
            ledger,
        )
    return RollbackOutcome(**_as_deploy(done), current=current, target=target)


def _named(client: Cloud66Client, stack: Stack, deployment_id: str) -> Deployment:
    """The deployment `--to` names, asked of Cloud 66 by itself (one GET)."""
    from igor_cli.core.resolve import stack_words

    try:
        return client.deployment(stack.uid, deployment_id)
    except NotFound:
        raise NoSuchDeployment(
            f"{stack.label} has no deployment {deployment_id}. Nothing was posted.",
            f"See its deployments with `igor history {stack_words(stack)}`.",
        ) from None


def _with_tags(
    client: Cloud66Client, stack: Stack, deployments: Sequence[Deployment], ledger: Ledger | None
) -> list[Deployment]:
    """A docker stack's deployments carrying the tags igor sent for those it made, and the
    live one the tags its services run now. A store that cannot be read refuses."""
    from igor_cli.cloud66.activity import (
        actions_since,
        live_deployment,
        runs_now,
        with_what_igor_sent,
    )

    records = ledger.of(stack.uid) if ledger is not None else []
    actions = actions_since(client, stack, deployments)
    filled = with_what_igor_sent(deployments, actions, records)
    live = live_deployment(filled)
    now = runs_now(client, stack, live)
    return [now if d is live and now is not None else d for d in filled]


# -- promote -------------------------------------------------------------------------


def repository(url: str) -> str:
    """A git URL reduced to host/path, so the ssh and https forms of one repository match."""
    text = url.strip().casefold().rstrip("/").removesuffix(".git")
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    text = re.sub(r"^[^@/]+@", "", text)
    return text.replace(":", "/", 1)


def check_same_repository(source: Stack, target: Stack) -> None:
    """Refuse unless both stacks deploy from one repository (their `git` fields)."""
    from igor_cli.core.resolve import stack_words

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
            f"Deploy a commit by name instead: `igor deploy {stack_words(target)} --ref COMMIT`.",
        )
    if repository(source.git) != repository(target.git):
        raise DifferentRepositories(
            f"{source.label} deploys from {source.git} but {target.label} from {target.git}: "
            "igor promotes only within one repository. Nothing was posted."
        )


def promote(
    client: Cloud66Client,
    request: PromoteRequest,
    origin: Origin,
    hints: StackHints | None = None,
    stack_lock: StackLock | None = None,
    ledger: Ledger | None = None,
) -> PromoteOutcome:
    """Deploy to the `--to` environment's stack what the `--from` one runs: its live git
    hash, or on docker stacks the image tags its services run now."""
    from igor_cli.cloud66.activity import live_deployment, runs_now
    from igor_cli.core.resolve import find_stack, stack_words

    if request.source.strip().casefold() == request.environment.strip().casefold():
        raise UsageProblem(
            f"--from and --to both name {request.environment!r}.",
            "Promote from one environment to another, e.g. --from staging --to production.",
        )
    target_stack = find_stack(client, request.stack, request.environment, hints)
    source_stack = find_stack(client, request.stack, request.source, hints)
    check_same_repository(source_stack, target_stack)
    source = runs_now(
        client, source_stack, live_deployment(client.newest_deployments(source_stack.uid).items)
    )
    if source is None:
        raise NothingToPromote(
            f"{source_stack.label} has no successful deployment to promote. Nothing was posted.",
            f"See its deployments with `igor history {stack_words(source_stack)}`.",
        )
    again = redeploy_of(target_stack, source, _tags_not_shown(source_stack))
    with stack_lock(target_stack.uid) if stack_lock else nullcontext():
        read = client.newest_deployments(target_stack.uid, fresh=True)
        current = runs_now(client, target_stack, live_deployment(read.items))
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
            read,
            ledger,
        )
    return PromoteOutcome(
        **_as_deploy(done), source_stack=source_stack, source=source, current=current
    )


def _tags_not_shown(stack: Stack) -> str:
    return (
        f"Cloud 66 does not show which image tag each service of {stack.label} runs (its "
        "services' images carry no tag). Nothing was posted."
    )


# -- shared --------------------------------------------------------------------------


def _deploy_request(
    stack: Stack, again: Redeploy, request: RollbackRequest | PromoteRequest
) -> DeployRequest:
    return DeployRequest(
        stack=stack.name,
        environment=stack.environment,
        services=again.services,
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
