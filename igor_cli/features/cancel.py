"""`igor cancel`: stop the stack's running deployment (or the one `--id` names).

A cancel is a `Halt`: chat asks before it, but locks, freezes and approvals let it
through. With a deployment running and igor's deploy waiting behind it, nothing is
cancelled until the person says which: Cloud 66's API cannot cancel a deploy that
waits to start (README, "What Cloud 66 does not let igor do").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from igor_cli.cli import EnvironmentName, Json, StackName, UsageError, command
from igor_cli.core.request import Halt, Outcome, QuestionWords
from igor_cli.errors import Conflict, ExitCode, IgorError, NoSuchDeployment, NotFound

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import QueuedDeploy, StackHints
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Deployment, Stack
    from igor_cli.core.run import Run
    from igor_cli.identity import Origin, Person
    from igor_cli.render.said import Choice, Said, Tone, Words

COMMANDS = {"cancel": ("stop", "exit", "halt")}  # the original Igor's aliases

# -- the command ---------------------------------------------------------------------

# cancel accepts -v only to refuse it with the reason (Cloud 66 has no partial cancel);
# hidden, so neither its help nor TAB offers it.
RefusedServices = Annotated[list[str] | None, typer.Option("-v", "--service", hidden=True)]
CancelRunning = Annotated[
    bool,
    typer.Option("--running", help="Cancel the running deployment, whoever started it."),
]
# Hidden: Cloud 66's API cannot cancel a deploy that waits to start (README, "What
# Cloud 66 does not let igor do"); kept so that scripts using it hear why, not a usage error.
CancelQueued = Annotated[
    bool,
    typer.Option("--queued", hidden=True, help="Refused: Cloud 66 cannot cancel a waiting deploy."),
]
DeploymentId = Annotated[
    str | None,
    typer.Option(
        "--id", metavar="N", show_default=False,
        help="Cancel deployment N (one that is over is not sent).",
    ),
]  # fmt: skip


@command(
    "cancel",
    # `exit` and `halt` never take a default target: a bare `exit` (typed to leave
    # something) must not cancel the default stack.
    named_only=("exit", "halt"),
    chat=True,
    examples=(
        "igor cancel shop -e production",
        "igor cancel -s blog --running",
        "igor cancel -s blog --json",
    ),
)
def cancel_command(
    ctx: typer.Context,
    stack: StackName,
    environment: EnvironmentName = None,
    service: RefusedServices = None,
    running: CancelRunning = False,
    queued: CancelQueued = False,
    deployment_id: DeploymentId = None,
    as_json: Json = None,
) -> CancelRequest:
    """Cancel the stack's running deployment.

    When a deployment runs and one igor asked for waits behind it, nothing is
    cancelled until you say --running (or --id N): Cloud 66's API cannot cancel
    a deploy that waits to start; its dashboard can.
    """
    if service:  # -v is shared with deploy, but a cancel cannot take it: say why
        raise UsageError(
            "cancel takes no -v/--service: Cloud 66 cancels a whole deployment, not one "
            "service's part of it. Nothing was cancelled.",
            ctx,
        )
    given = {"--running": running, "--queued": queued, "--id": deployment_id}
    chosen = [name for name, value in given.items() if value]
    if len(chosen) > 1:
        raise UsageError(f"Choose one of {' and '.join(chosen)}.", ctx)
    target = (
        CancelTarget.RUNNING if running else CancelTarget.QUEUED if queued else CancelTarget.ANY
    )
    return CancelRequest(
        stack=stack,
        environment=environment,
        as_json=as_json,
        target=target,
        deployment_id=(deployment_id or "").strip(),
    )


# -- the request ---------------------------------------------------------------------


class CancelTarget(Enum):
    """Which deployment `cancel` was told to stop (none: the one there is)."""

    ANY = ""
    RUNNING = "running"
    QUEUED = "queued"


@dataclass(frozen=True, kw_only=True)
class CancelRequest(Halt):
    """`igor cancel`: it stops a change rather than making one, so locks, freezes and
    approvals let it through; chat looks first (a dry run): with nothing to cancel it
    says so, asking no click."""

    previews: ClassVar[bool] = True
    looks_ahead: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = (
        "result", "stack", "cancelled", "cancelled_deployment_id", "deployment_id",
        "triggered_by", "started_by", "queued", "choices",
    )  # fmt: skip

    services: tuple[str, ...] = ()
    target: CancelTarget = CancelTarget.ANY
    deployment_id: str = ""  # --id N: this deployment, running or queued

    def question(self, stack: Stack, literal: Callable[[str], str]) -> QuestionWords:
        """`cancel the deployment of *shop* in *production*?`"""
        name, where = literal(stack.name), literal(stack.environment)
        which = {
            CancelTarget.RUNNING: "the running deployment",
            CancelTarget.QUEUED: "igor's queued deploy",
        }.get(self.target, "the deployment")
        if self.deployment_id:
            which = f"deployment {literal(self.deployment_id)}"
        question = f"cancel {which} of *{name}* in *{where}*?"
        return QuestionWords(question, "Cancel the deployment", "Keep it")

    def look(self, client: Cloud66Client, uid: str, origin: Origin) -> Cloud66Client | None:
        """What runs and waits (`live_now`'s reads), read ahead with the record."""
        from igor_cli.core.at_once import looked_ahead

        return looked_ahead(client, uid, "")

    def act(self, run: Run) -> CancelOutcome:
        """Cancel what runs (or `--id`'s), or say which to choose."""
        return cancel(run.connect(), self, run.hints, run.target)


# -- the outcome and its words --------------------------------------------------------


class CancelResult(Enum):
    """What a cancel request came to."""

    CANCELLING = "cancelling"
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    ALREADY_CANCELLING = "already_cancelling"
    ALREADY_OVER = "already_over"  # --id N of a deployment that has finished: nothing sent
    CHOOSE = "choose"  # a running deployment and igor's deploy waiting: igor does not guess


@dataclass(frozen=True)
class CancelOutcome(Outcome):
    """The result of `cancel`.

    `deployment` is the running deployment (the one cancelled, or one to choose), or
    the one `--id` named; `queued` the deploys igor asked for that wait to start
    (Cloud 66's API cannot cancel those: they are named so people know of them).
    """

    result: CancelResult
    stack: Stack
    deployment: Deployment | None = None
    started_by: Person | None = None  # igor's requester of `deployment`, when it is igor's
    queued: tuple[QueuedDeploy, ...] = ()
    cancelled: str = ""  # "running" or "named" (--id): which one this cancel stops
    asked: CancelTarget = CancelTarget.ANY
    cancelled_id: str = ""  # the deployment id deleted

    @property
    def exit_code(self) -> ExitCode:
        """Nothing cancelled (nothing there, over already, or a choice to make) is a failure."""
        failed = (CancelResult.NOTHING_TO_CANCEL, CancelResult.CHOOSE, CancelResult.ALREADY_OVER)
        return ExitCode.FAILED if self.result in failed else ExitCode.OK

    def said(self, now: datetime) -> Said:
        """What the cancel came to, naming the deployment and who started it; the choice
        it leaves (igor does not guess which to cancel)."""
        from igor_cli.render.said import Said

        tone: Tone = "stopping" if self.result is CancelResult.CANCELLING else "info"
        if self.result is CancelResult.CHOOSE:
            tone = "refused"
        return Said(cancel_sentence(self, now), None, cancel_choices(self), tone)

    def facts(self) -> Any:
        """The cancel, as igor's JSON has it."""
        return cancel_json(self)


def cancel_choices(outcome: CancelOutcome) -> tuple[Choice, ...]:
    """A running deployment and igor's deploy waiting: the command that cancels the running
    one."""
    from igor_cli.render.said import Choice
    from igor_cli.render.sentences import target_words

    if outcome.result is not CancelResult.CHOOSE or outcome.deployment is None:
        return ()
    return (Choice(f"cancel {target_words(outcome.stack)} --running",
                   f"cancel deployment {outcome.deployment.id}"),)  # fmt: skip


def cancel_sentence(outcome: CancelOutcome, now: datetime) -> Words:
    """One sentence: what the cancel request came to, naming the deployment and who started it."""
    from igor_cli.cloud66.activity import deployment_state
    from igor_cli.render.said import joined
    from igor_cli.render.sentences import ago

    stack = outcome.stack.label
    if outcome.result is CancelResult.CHOOSE:
        return _choose_sentence(outcome, now)
    if outcome.result is CancelResult.NOTHING_TO_CANCEL:
        said: Words = f"{stack} is not deploying, nothing to cancel."
        if outcome.asked is CancelTarget.RUNNING or outcome.queued:
            said = f"{stack} has no running deployment, nothing to cancel."
        for waiting in outcome.queued:
            said = joined(
                said, " igor's deploy ", _queued_by(waiting, now), f" waits: {_UNCANCELLABLE}"
            )
        return said
    deployment = outcome.deployment
    if outcome.result is CancelResult.ALREADY_OVER and deployment is not None:
        over = f"is over ({deployment_state(deployment)} {ago(deployment.finished_at, now)})"
        return f"Deployment {deployment.id} of {stack} {over}: nothing to cancel. Nothing was sent."
    if outcome.cancelled == "named" and (deployment is None or not deployment.is_deploying):
        number = outcome.cancelled_id
        if outcome.result is CancelResult.ALREADY_CANCELLING:
            return f"Deployment {number} of {stack} is already cancelling."
        return f"Cancelling deployment {number} of {stack}."
    assert deployment is not None
    started = joined("started by ", _live_by(outcome), f" {ago(deployment.started_at, now)}")
    if outcome.result is CancelResult.ALREADY_CANCELLING:
        return joined(
            f"Deployment {deployment.id} of {stack} (", started, ") is already cancelling."
        )
    return joined(f"Cancelling deployment {deployment.id} of {stack} (", started, ").")


def _live_by(outcome: CancelOutcome) -> Words:
    """Who started the running deployment: igor's requester only when it is igor's for sure."""
    from igor_cli.render.said import joined

    deployment = outcome.deployment
    assert deployment is not None
    if outcome.started_by is not None:
        return joined(outcome.started_by, " through igor")
    via = f" via {deployment.triggered_via}" if deployment.triggered_via else ""
    return f"{deployment.triggered_by}{via}"


def _queued_by(queued: QueuedDeploy, now: datetime) -> Words:
    from igor_cli.render.said import joined, who
    from igor_cli.render.sentences import ago

    return joined("asked for by ", who(queued.requester, "someone"),
                  f" {ago(queued.action.started_at, now)}")  # fmt: skip


_UNCANCELLABLE = "Cloud 66's API cannot cancel a deploy before it starts (the dashboard can)."


def _choose_sentence(outcome: CancelOutcome, now: datetime) -> Words:
    from igor_cli.render.said import joined
    from igor_cli.render.sentences import ago

    stack = outcome.stack.label
    parts: list[Words] = []
    if outcome.deployment is not None:
        running = outcome.deployment
        parts.append(
            joined(f"deployment {running.id} is running (started by ", _live_by(outcome),
                   f" {ago(running.started_at, now)})")
        )  # fmt: skip
    for queued in outcome.queued:
        parts.append(joined("igor's deploy ", _queued_by(queued, now), " waits behind it"))
    said: Words = f"On {stack}, "
    for i, part in enumerate(parts):
        said = joined(said, " and " if i else "", part)
    return joined(
        said,
        ". Nothing was cancelled: say whether to cancel the running one (Cloud 66's API "
        "cannot cancel a waiting deploy; the Cloud 66 dashboard can).",
    )  # fmt: skip


def cancel_json(outcome: CancelOutcome) -> dict[str, Any]:
    """A cancel outcome in igor's JSON output."""
    from igor_cli.render.sentences import cloud66_id

    requester = outcome.started_by
    deployment = outcome.deployment
    return {
        "result": outcome.result.value,
        "stack": outcome.stack.named(),
        "cancelled": outcome.cancelled or None,
        "cancelled_deployment_id": cloud66_id(outcome.cancelled_id),
        "deployment_id": cloud66_id(deployment.id) if deployment else None,
        "triggered_by": deployment.triggered_by if deployment else None,
        "started_by": requester.facts() if requester else None,
        "queued": [
            {
                "async_action_id": cloud66_id(q.action.id),
                "igor": q.requester.facts() if q.requester else None,
            }
            for q in outcome.queued
        ],
        "choices": [choice.command for choice in cancel_choices(outcome)],
    }


# -- the action ---------------------------------------------------------------------


class CannotCancelWaiting(IgorError):
    """`--queued`: Cloud 66's API cancels a live deployment only."""


def cancel(
    client: Cloud66Client,
    request: CancelRequest,
    hints: StackHints | None = None,
    stack: Stack | None = None,
) -> CancelOutcome:
    """Cancel what runs on the stack, or the deployment `--id` names, or say which to choose.

    With a running deployment and a deploy igor asked for waiting behind it,
    nothing is cancelled unless the request says `--running` (or `--id`): the
    waiting one cannot be cancelled through the API, so it is only named. `stack` is the
    stack already resolved for this request, when it was.
    """
    from igor_cli.core.at_once import live_now
    from igor_cli.core.resolve import check_services, find_stack, split_services, stack_words

    stack = stack or find_stack(client, request.stack, request.environment, hints)
    check_services(client, stack, split_services(request.services))
    if request.target is CancelTarget.QUEUED:
        raise CannotCancelWaiting(
            "Cloud 66's API cannot cancel a deploy that waits to start: it cancels a live "
            "deployment (DELETE /stacks/{id}/deployments/{id}), and a waiting deploy has no "
            "deployment to name until it starts. Nothing was cancelled.",
            f"Cancel it in the Cloud 66 dashboard{_at(stack)}, or once it runs with "
            f"`igor cancel {stack_words(stack)} --running`.",
        )
    wanted = request.deployment_id.strip()
    if wanted:
        return _cancel_named(client, stack, request, wanted)
    state = live_now(client, stack)
    live, queued = state.live, state.queued

    def outcome(result: CancelResult, cancelled: str = "") -> CancelOutcome:
        return CancelOutcome(
            result, stack, live, state.live_requester, queued, cancelled, request.target
        )

    if live is None:
        return outcome(CancelResult.NOTHING_TO_CANCEL)
    if queued and request.target is CancelTarget.ANY:
        return outcome(CancelResult.CHOOSE)
    cancelling = outcome(CancelResult.CANCELLING, "running")
    return _delete(client, stack, live.id, cancelling, dry_run=request.dry_run)


def _cancel_named(
    client: Cloud66Client, stack: Stack, request: CancelRequest, wanted: str
) -> CancelOutcome:
    """`--id N`: Cloud 66 is asked about deployment N first; one that is over is not sent."""
    from igor_cli.core.at_once import live_now
    from igor_cli.core.resolve import stack_words

    try:
        named = client.deployment(stack.uid, wanted)
    except NotFound:
        raise NoSuchDeployment(
            f"{stack.label} has no deployment {wanted}. Nothing was cancelled.",
            f"See its deployments with `igor history {stack_words(stack)}`.",
        ) from None
    asked = CancelOutcome(
        CancelResult.CANCELLING, stack, named, asked=request.target, cancelled="named"
    )
    if not named.is_deploying and named.finished_at is not None:
        return dataclasses.replace(asked, result=CancelResult.ALREADY_OVER)
    if named.is_deploying:
        state = live_now(client, stack)
        if state.live is not None and state.live.id == named.id:
            asked = dataclasses.replace(asked, started_by=state.live_requester)
    return _delete(client, stack, wanted, asked, dry_run=request.dry_run)


def _at(stack: Stack) -> str:
    return f" ({stack.dashboard_url})" if stack.dashboard_url else ""


def _delete(
    client: Cloud66Client, stack: Stack, deployment_id: str, said: CancelOutcome, *, dry_run: bool
) -> CancelOutcome:
    """DELETE one deployment; Cloud 66 saying it is already being cancelled is no failure.
    A dry run says what it would cancel and asks nothing of Cloud 66."""
    named = dataclasses.replace(said, cancelled_id=deployment_id)
    if dry_run:
        return named
    try:
        message = client.cancel(stack.uid, deployment_id)
    except Conflict:
        return dataclasses.replace(named, result=CancelResult.ALREADY_CANCELLING)
    if "already" in message.casefold():
        return dataclasses.replace(named, result=CancelResult.ALREADY_CANCELLING)
    return named
