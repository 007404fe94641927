"""`igor deploy`: deploy a stack (or some of its services, or a ref), or say why not.

One POST tagged with igor's `user_reference`, never retried, under the stack's
lock (SPEC section 4: busy, queued, already deploying). Rollback and promote
deploy through `deploy_resolved` too (releases.py), and say themselves with the
words here (`redeploy_sentence`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
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
    Services,
    StackName,
    Wait,
    command,
)
from igor_cli.core.request import Change, Outcome, QuestionWords, StackLock
from igor_cli.errors import ApiError, ExitCode, RefNeedsClassic, Throttled, Unreachable
from igor_cli.json_output import with_follow_events

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import StackHints
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import AsyncAction, Deployment, DeployResponse, Stack
    from igor_cli.cloud66.paging import Newest
    from igor_cli.core.follow import Followed
    from igor_cli.core.run import Run
    from igor_cli.identity import Origin, Person
    from igor_cli.render.said import Hint, Said, Tone, Words
    from igor_cli.state.deployed import Ledger

COMMANDS = {"deploy": ("redeploy",)}

# -- the command ---------------------------------------------------------------------

GitRef = Annotated[
    str | None,
    typer.Option(
        "--ref", metavar="REF", show_default=False,
        help="Deploy this branch, tag or commit (classic stacks; docker stacks take -v "
        "name:tag).",
    ),
]  # fmt: skip
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile", metavar="NAME", show_default=False,
        help="Deploy with this Cloud 66 deployment profile.",
    ),
]  # fmt: skip


@command(
    "deploy",
    chat=True,
    examples=(
        "igor deploy shop -e production --follow",
        "igor deploy -s shop -e staging -v web:1.4.2,worker",
        "igor deploy blog --ref release-2.1 --dry-run",
    ),
)
def deploy_command(
    stack: StackName,
    environment: EnvironmentName = None,
    service: Services = None,
    ref: GitRef = None,
    profile: Profile = None,
    wait: Wait = QUEUE,
    no_wait: NoWait = False,
    follow: Follow = False,
    dry_run: DryRun = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> DeployRequest:
    """Deploy a stack (or only some of its services, or a given ref).

    If the stack is busy with a deployment igor did not start, the deploy is
    queued behind it unless -w false.
    """
    return DeployRequest(
        services=tuple(service or ()),
        stack=stack,
        environment=environment,
        ref=(ref or "").strip(),
        profile=(profile or "").strip(),
        wait=bool(wait) and not no_wait,
        follow=follow,
        dry_run=dry_run,
        as_json=as_json,
        break_glass=break_glass,
        reason=reason.strip(),
    )


# -- the request ---------------------------------------------------------------------

DEPLOY_FIELDS = (
    "result", "stack", "services", "ref", "profile", "posted", "async_action_id", "message",
    "running_deployment_id", "started_by",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class DeployRequest(Change):
    """`igor deploy`."""

    json_fields: ClassVar[tuple[str, ...]] = with_follow_events(*DEPLOY_FIELDS)
    looks_ahead: ClassVar[bool] = True

    services: tuple[str, ...] = ()
    ref: str = ""  # git_ref: a branch, tag or commit (classic stacks)
    profile: str = ""  # deployment_profile
    wait: bool = True

    def question(self, stack: Stack, literal: Callable[[str], str]) -> QuestionWords:
        """`deploy *shop* (services web) at ref `v2` to *production*?`"""
        services = f" (services {literal(', '.join(self.services))})" if self.services else ""
        ref = f" at ref `{literal(self.ref)}`" if self.ref else ""
        profile = f" with profile `{literal(self.profile)}`" if self.profile else ""
        where = literal(stack.environment)
        question = f"deploy *{literal(stack.name)}*{services}{ref}{profile} to *{where}*?"
        return QuestionWords(question, "Deploy", "Cancel")

    def look(self, client: Cloud66Client, uid: str, origin: Origin) -> Cloud66Client | None:
        """What `deploy_resolved` reads before it decides, read ahead with the record."""
        from igor_cli.core.at_once import looked_ahead

        return looked_ahead(client, uid, _retry_reference(origin))

    def act(self, run: Run) -> DeployOutcome:
        """Deploy, or say why not (the busy rules, the dry run, one POST)."""
        return deploy(
            run.connect(),
            self,
            run.origin,
            run.hints,
            self.stack_lock(run.env),
            run.target,
            run.ledger(),
        )


# -- the outcome and its words --------------------------------------------------------


class DeployResult(Enum):
    """What a deploy request came to."""

    STARTED = "started"
    QUEUED = "queued"
    ALREADY_DEPLOYING = "already_deploying"
    BUSY_NOT_QUEUED = "busy_not_queued"
    WOULD_START = "would_start"
    WOULD_QUEUE = "would_queue"


@dataclass(frozen=True)
class DeployOutcome(Outcome):
    """The result of `deploy`: what happened and the facts to report."""

    result: DeployResult
    stack: Stack
    services: tuple[str, ...] = ()
    ref: str = ""  # the git_ref posted (or that would be)
    profile: str = ""  # the deployment_profile posted (or that would be)
    action_id: str = ""
    message: str = ""
    running: Deployment | None = None  # the deployment that made the stack busy
    started_by: Person | None = None  # igor's requester of the running deployment
    started_at: datetime | None = None
    typical: float | None = None  # seconds the stack's recent successful deployments took

    @property
    def exit_code(self) -> ExitCode:
        """Nothing deployed when the stack was already busy: that is a failure."""
        if self.result in (DeployResult.ALREADY_DEPLOYING, DeployResult.BUSY_NOT_QUEUED):
            return ExitCode.FAILED
        return ExitCode.OK

    @property
    def posted(self) -> bool:
        """Whether a deployment was asked of Cloud 66."""
        return self.result in (DeployResult.STARTED, DeployResult.QUEUED)

    @property
    def async_action_id(self) -> str:
        """The async action followed ("" when the deployment itself is, or nothing)."""
        from igor_cli.cloud66.activity import followed_deployment

        return "" if followed_deployment(self.action_id) else self.action_id

    @property
    def followable(self) -> bool:
        """Whether there is an igor deployment (this one, or one igor already runs) to watch."""
        watched = (DeployResult.STARTED, DeployResult.QUEUED, DeployResult.ALREADY_DEPLOYING)
        return self.result in watched and bool(self.action_id)

    def followed_as(self) -> str:
        """How the last word on its deployment names it: "" for a deploy (a rollback or a
        promotion names itself)."""
        return ""

    def to_follow(self) -> Followed | None:
        """The deployment igor asked for (or already runs), when there is one to follow."""
        return following(self) if self.followable else None

    def said(self, now: datetime) -> Said:
        """What the deploy request came to, and what to do next."""
        from igor_cli.render.said import Said

        return Said(deploy_sentence(self, now), None, deploy_hints(self), deploy_tone(self))

    def facts(self) -> Any:
        """The deploy, as igor's JSON has it."""
        return deploy_json(self)


def deploy_hints(outcome: DeployOutcome) -> tuple[Hint, ...]:
    """What to do after a deploy (a rollback, a promotion): in a shell, how to follow or
    cancel what was posted; in chat, that the outcome comes in the thread; and how to queue
    what was not posted."""
    from igor_cli.render.said import Hint
    from igor_cli.render.sentences import target_words

    if outcome.posted:
        target = target_words(outcome.stack)
        return (
            Hint(
                f"Follow it: `igor watch {target}`; cancel: `igor cancel {target}`.",
                "I'll post the outcome in this thread.",
            ),
        )
    if outcome.result is DeployResult.BUSY_NOT_QUEUED:
        return (
            Hint(
                "Run it again with -w true to queue behind the running deployment.",
                "Ask again with `-w true` to queue behind the running deployment.",
            ),
        )
    return ()


def _target(outcome: DeployOutcome) -> str:
    """` (services a, b; ref v1.2; profile quick)`: what the deploy names beyond the stack."""
    parts = [f"services {', '.join(outcome.services)}"] if outcome.services else []
    if outcome.ref:
        parts.append(f"ref {outcome.ref}")
    if outcome.profile:
        parts.append(f"profile {outcome.profile}")
    return f" ({'; '.join(parts)})" if parts else ""


def _running_by(outcome: DeployOutcome, now: datetime) -> Words:
    from igor_cli.render.said import joined
    from igor_cli.render.sentences import ago

    if outcome.started_by is not None:
        when = ago(outcome.started_at, now)
        return joined("started by ", outcome.started_by, f" {when}")
    if outcome.running is not None:
        running = outcome.running
        via = f" via {running.triggered_via}" if running.triggered_via else ""
        return f"started by {running.triggered_by}{via} {ago(running.started_at, now)}"
    return "started outside igor"


def _unfollowable(outcome: DeployOutcome) -> str:
    """Said of a posted deploy with nothing to follow (the 2020 answer names no action)."""
    from igor_cli.render.sentences import target_words

    if outcome.action_id:
        return ""
    return (
        " Cloud 66 named no action to follow and no deployment of it has started yet: "
        f"`igor watch {target_words(outcome.stack)}` follows it once it runs."
    )


def deploy_sentence(outcome: DeployOutcome, now: datetime) -> Words:
    """One sentence: what the deploy request came to."""
    from igor_cli.render.said import joined

    stack = outcome.stack.label
    services = _target(outcome)
    result = outcome.result
    if result is DeployResult.STARTED:
        return f"Deploy started: {stack}{services}.{_unfollowable(outcome)}"
    running = _running_by(outcome, now)
    if result is DeployResult.QUEUED:
        return joined(
            f"{stack} is busy with a deployment ", running, "; ",
            f"this deploy{services} is queued behind the running deployment.",
            _unfollowable(outcome),
        )  # fmt: skip
    refused = _refused(outcome, running)
    if refused is not None:
        return refused
    if result is DeployResult.WOULD_QUEUE:
        return joined(
            f"Dry run: {stack} is busy (a deployment ", running, "); ",
            f"a deploy{services} would be queued behind it. Nothing was posted.",
        )  # fmt: skip
    return f"Dry run: a deploy of {stack}{services} would start now. Nothing was posted."


def _refused(outcome: DeployOutcome, running: Words) -> Words | None:
    """Why a deploy, a rollback or a promotion posted nothing because the stack is busy
    (the same facts, the same words, whichever it was); None when it was not refused."""
    from igor_cli.render.said import joined

    stack = outcome.stack.label
    if outcome.result is DeployResult.ALREADY_DEPLOYING:
        return joined(f"{stack} is already deploying, ", running, ". Nothing was posted.")
    if outcome.result is DeployResult.BUSY_NOT_QUEUED:
        return joined(
            f"{stack} is busy, not queued: a deployment ", running,
            " is running and -w false asked not to queue. Nothing was posted.",
        )  # fmt: skip
    return None


def redeploy_sentence(outcome: DeployOutcome, doing: str, now: datetime) -> Words:
    """What a rollback or promotion came to; `doing` names it (`roll back shop ... from A to B`)."""
    from igor_cli.render.said import joined

    result = outcome.result
    running = _running_by(outcome, now)
    if result is DeployResult.STARTED:
        return f"Started to {doing}.{_unfollowable(outcome)}"
    if result is DeployResult.QUEUED:
        return joined(
            f"Queued to {doing}, behind the running deployment (", running, ").",
            _unfollowable(outcome),
        )  # fmt: skip
    refused = _refused(outcome, running)
    if refused is not None:
        return refused
    if result is DeployResult.WOULD_QUEUE:
        return joined(
            f"Dry run: would {doing}, queued behind the running deployment (", running,
            "). Nothing was posted.",
        )  # fmt: skip
    return f"Dry run: would {doing}. Nothing was posted."


def deploy_tone(outcome: DeployOutcome) -> Tone:
    """How a deploy (a rollback, a promotion) went: started, queued, info, refused, dry-run."""
    tones: dict[DeployResult, Tone] = {
        DeployResult.STARTED: "started",
        DeployResult.QUEUED: "queued",
        DeployResult.ALREADY_DEPLOYING: "info",
        DeployResult.BUSY_NOT_QUEUED: "refused",
    }
    return tones.get(outcome.result, "dry-run")


def deploy_json(outcome: DeployOutcome) -> dict[str, Any]:
    """A deploy outcome (a rollback's, a promotion's) in igor's JSON output."""
    from igor_cli.render.sentences import cloud66_id

    requester = outcome.started_by
    running = outcome.running
    return {
        "result": outcome.result.value,
        "stack": outcome.stack.named(),
        "services": list(outcome.services),
        "ref": outcome.ref or None,
        "profile": outcome.profile or None,
        "posted": outcome.posted,
        "async_action_id": cloud66_id(outcome.async_action_id),
        "message": outcome.message or None,
        "running_deployment_id": cloud66_id(running.id) if running else None,
        "started_by": requester.facts() if requester else None,
    }


# -- the action ---------------------------------------------------------------------


def deploy(
    client: Cloud66Client,
    request: DeployRequest,
    origin: Origin,
    hints: StackHints | None = None,
    stack_lock: StackLock | None = None,
    stack: Stack | None = None,
    ledger: Ledger | None = None,
) -> DeployOutcome:
    """Deploy a stack, or say why not (SPEC section 4: busy, queued, already deploying).

    `stack` is the stack already resolved for this request, when it was; `ledger`
    keeps igor's record of what it sent (state/deployed.py).
    """
    from igor_cli.core.resolve import check_services, find_stack, split_services

    stack = stack or find_stack(client, request.stack, request.environment, hints)
    services = split_services(request.services)
    if request.ref and stack.is_docker:
        # Checked before any request that could post: Cloud 66 takes git_ref on classic stacks.
        raise RefNeedsClassic(stack.label)
    check_services(client, stack, services)
    # Two people asking at once (in this process, or in any igor sharing the state
    # store): the second must see the first's deployment, not race it to the POST.
    # (Held already when its reads were made ahead, with the stack's record: held on.)
    with stack_lock(stack.uid) if stack_lock else nullcontext():
        return deploy_resolved(client, request, origin, stack, services, ledger=ledger)


def deploy_resolved(
    client: Cloud66Client,
    request: DeployRequest,
    origin: Origin,
    stack: Stack,
    services: tuple[str, ...],
    deployments: Newest[Deployment] | None = None,
    ledger: Ledger | None = None,
) -> DeployOutcome:
    """Deploy a stack already resolved and checked (under its lock): the busy rules, the
    dry run, the one POST. `deployments`: the stack's newest, when the caller just read them."""
    from igor_cli.cloud66.activity import (
        DeployKind,
        kind_of,
        live_state,
        running_deployment,
        service_names,
        typical_duration,
    )
    from igor_cli.cloud66.at_once import at_once
    from igor_cli.core.at_once import at_hand, read_already
    from igor_cli.identity import Person

    reference = _retry_reference(origin)

    def newest() -> Newest[Deployment]:
        return deployments or client.newest_deployments(stack.uid, fresh=True)

    def mine() -> list[AsyncAction]:
        # A retry of this very request (a Slack retry, a replayed confirmation),
        # perhaps handled by another replica: Cloud 66 filters its actions by the
        # reference igor stored.
        return client.actions_for(stack.uid, reference)

    def actions() -> Newest[AsyncAction]:
        # What runs is read afresh whenever the stack is busy (`live_state`, below): when
        # the stack's own read says so already, with the others.
        return client.newest_actions(stack.uid, fresh=True)

    # No read waits for another (issue 27: two round trips less for a deploy in line);
    # read ahead with the stack's record (a deploy's look, shell or chat), each is at hand.
    read, retried, acted = at_once(
        newest, mine if reference else None, actions if stack.busy else None,
        here=at_hand(client, stack.uid, reference=reference, actions=stack.busy),
    )  # fmt: skip

    def outcome(
        result: DeployResult,
        action: AsyncAction | None = None,
        answer: DeployResponse | None = None,
        live: Deployment | None = None,
        follow: str = "",
    ) -> DeployOutcome:
        joined = result is DeployResult.ALREADY_DEPLOYING  # the running one is followed
        return DeployOutcome(
            result,
            stack,
            services,
            ref=request.ref,
            profile=request.profile,
            action_id=action.id if action else follow,
            message=answer.message if answer else "",
            running=live,
            started_by=Person.from_reference(action.user_reference) if action else None,
            started_at=action.started_at if action else None,
            typical=typical_duration(read.items, kind_of(live) if joined and live else asked),
        )

    # What the estimate compares with: the deployment already running, or what this asks.
    asked = DeployKind(True, service_names(services), request.profile)

    # Only a deployment still running is a retry; a finished one is history.
    running = next((a for a in retried or () if not a.finished), None)
    if running is not None:
        return outcome(DeployResult.ALREADY_DEPLOYING, running)
    live = running_deployment(read.items)
    busy = stack.busy or live is not None
    if busy:
        reading = client if acted is None else read_already(client, stack.uid, acted)
        state = live_state(reading, stack, read, fresh=True)
        ours = state.live_action or (state.queued[0].action if state.queued else None)
        if ours is not None:
            return outcome(DeployResult.ALREADY_DEPLOYING, ours, live=live)
        if not request.wait:
            return outcome(DeployResult.BUSY_NOT_QUEUED, live=live)
    if request.dry_run:
        return outcome(DeployResult.WOULD_QUEUE if busy else DeployResult.WOULD_START, live=live)
    answer = client.deploy(
        stack.uid,
        services=services,
        user_reference=origin.user_reference,
        git_ref=request.ref,
        deployment_profile=request.profile,
    )
    if ledger is not None:
        ledger.sent(
            stack.uid,
            services,
            request.ref,
            request.profile,
            origin.user_reference,
            answer.async_action_id,
        )
    follow = answer.async_action_id or _what_to_follow(client, stack, origin, busy, live)
    # Queued only behind what igor saw running: the documented answer to any redeploy
    # says `"queued": true` ("Stack queued for redeployment"), an idle stack's too.
    result = DeployResult.QUEUED if busy else DeployResult.STARTED
    return outcome(result, answer=answer, live=live, follow=follow)


def _retry_reference(origin: Origin) -> str:
    """The reference a retry of this very request was posted with ("": a request Slack
    cannot retry, a shell's)."""
    return origin.user_reference if origin.request_id else ""


def _what_to_follow(
    client: Cloud66Client, stack: Stack, origin: Origin, queued: bool, before: Deployment | None
) -> str:
    """Cloud 66 named no async action (its 2020 answer has none): igor's own action, found
    by the reference it sent, else the deployment that started for it; "" when neither
    can be told (a queued deploy starts later: `igor watch` attaches then)."""
    from igor_cli.cloud66.activity import deployment_target, running_deployment

    try:
        mine = client.actions_for(stack.uid, origin.user_reference)
        running = next((a for a in mine if not a.finished), None)
        if running is not None:
            return running.id
        if queued:
            return ""
        live = running_deployment(client.newest_deployments(stack.uid, fresh=True).items)
    except (Throttled, Unreachable, ApiError):
        return ""  # the deploy went through; only following it is in doubt
    if live is not None and (before is None or live.id != before.id):
        return deployment_target(live.id)
    return ""


def following(outcome: DeployOutcome) -> Followed:
    """What `deploy --follow` follows: the deployment igor asked for (or already runs)."""
    from igor_cli.core.follow import Followed

    already = outcome.result is DeployResult.ALREADY_DEPLOYING
    queued = outcome.result is DeployResult.QUEUED
    return Followed(
        outcome.stack,
        outcome.action_id,
        outcome.running if already else None,
        outcome.started_by,
        queued=queued,
        started_at=outcome.started_at,
        typical=outcome.typical,
        behind=outcome.running.id if queued and outcome.running is not None else "",
        what=outcome.followed_as(),
    )
