"""Stack operations: `igor restart`, `maintenance on|off`, `clear-caches`, `pause`, `resume`.

Each asks Cloud 66 for one stack action (`POST /stacks/{id}/actions`, scope
`redeploy`: the docs' "Run Stack action") and is a `Change`: rules, confirmation,
approval, locks, freezes and break glass apply to it as to a deploy, from the
change contract alone. Cloud 66 answers the async action it started, which
`--follow` (and chat, in the thread) follows to its end like a deployment.

A stack that is deploying is left alone unless the person says otherwise
(`--during-deploy`): Cloud 66 does not say what a restart or maintenance mode does
to a deployment under way, so igor says what runs and posts nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from igor_cli.cli import (
    BreakGlass,
    DryRun,
    EnvironmentName,
    Follow,
    Json,
    Reason,
    StackName,
    UsageError,
    command,
    complete_services,
)
from igor_cli.core.request import Change, Outcome, QuestionWords, Read
from igor_cli.errors import ExitCode, ServicesNeedDocker
from igor_cli.json_output import with_follow_events

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import StackHints
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Deployment, Stack
    from igor_cli.core.follow import Followed
    from igor_cli.core.run import Run
    from igor_cli.render.said import Said, Tone

COMMANDS = {"restart": (), "maintenance": (), "clear-caches": (), "pause": (), "resume": ()}

# -- the options ------------------------------------------------------------------------

Service = Annotated[
    str | None,
    typer.Option(
        "-v", "--service", metavar="NAME", show_default=False,
        help="This service of a docker stack (its containers), not the whole stack.",
        autocompletion=complete_services,
    ),
]  # fmt: skip
NeededService = Annotated[
    str,
    typer.Option(
        "-v", "--service", metavar="NAME", show_default=False,
        help="The service of a docker stack whose containers to act on.",
        autocompletion=complete_services,
    ),
]  # fmt: skip
DuringDeploy = Annotated[
    bool,
    typer.Option(
        "--during-deploy",
        help="Do it even while the stack deploys (igor refuses by default: Cloud 66 does not "
        "say what it does to a deployment under way).",
    ),
]
Mode = Annotated[
    str | None,
    typer.Argument(
        metavar="on|off", show_default=False, autocompletion=lambda: ["on", "off"],
        help="Turn maintenance mode on or off; without it, say whether it is on.",
    ),
]  # fmt: skip
BREAK_GLASS_HELP = "During a freeze window (only people the freeze names; needs --reason)."

# -- what Cloud 66 is asked ---------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One stack action, in Cloud 66's words (`command`, `value`) and in igor's.

    `saying` is what is done, with `{target}` for the stack (or the service of it):
    `restart {target}`; `naming` names it as a whole (`Restart of {target}`); `doing`
    is how progress names it while it runs (`Restarting`).
    """

    name: str  # igor's: `restart`, `maintenance on`, ...
    command: str  # Cloud 66's `command`
    saying: str
    naming: str
    doing: str
    confirm: str  # the confirmation button's label
    value: str = ""  # maintenance_mode's `value`: "1" (on) or "0" (off)
    on_service: bool = False  # `service_name` is posted (a docker stack's service)

    def said(self, stack: Stack, service: str = "") -> str:
        """`restart shop (production)`, `pause service web of api (production)`."""
        return self.saying.format(target=_target(stack.label, service))

    def named(self, stack: Stack, service: str = "") -> str:
        """`Restart of shop (production)`."""
        return self.naming.format(target=_target(stack.label, service))


def _target(label: str, service: str) -> str:
    return f"service {service} of {label}" if service else label


RESTART = Operation(
    "restart", "restart", "restart {target}", "Restart of {target}", "Restarting", "Restart"
)
SERVICE_RESTART = Operation(
    "restart", "service_restart", "restart {target}", "Restart of {target}", "Restarting",
    "Restart", on_service=True,
)  # fmt: skip
MAINTENANCE_ON = Operation(
    "maintenance on", "maintenance_mode", "turn maintenance mode on for {target}",
    "Maintenance mode on for {target}", "Turning maintenance mode on", "Turn it on", value="1",
)  # fmt: skip
MAINTENANCE_OFF = Operation(
    "maintenance off", "maintenance_mode", "turn maintenance mode off for {target}",
    "Maintenance mode off for {target}", "Turning maintenance mode off", "Turn it off",
    value="0",
)  # fmt: skip
CLEAR_CACHES = Operation(
    "clear-caches", "clear_caches", "clear the caches of {target}",
    "Clearing the caches of {target}", "Clearing caches", "Clear them",
)  # fmt: skip
PAUSE = Operation(
    "pause", "service_pause", "pause {target}", "Pause of {target}", "Pausing", "Pause",
    on_service=True,
)  # fmt: skip
RESUME = Operation(
    "resume", "service_resume", "resume {target}", "Resuming {target}", "Resuming", "Resume",
    on_service=True,
)  # fmt: skip

OPERATIONS = (RESTART, SERVICE_RESTART, MAINTENANCE_ON, MAINTENANCE_OFF, CLEAR_CACHES, PAUSE,
              RESUME)  # fmt: skip


def posted_as(command: str, value: str) -> Operation | None:
    """The operation a stack action's POST asked for (Cloud 66's `command` and `value`), as a
    replica taking over a POST it did not make knows it."""
    return next((o for o in OPERATIONS if (o.command, o.value) == (command, value)), None)


# -- the commands -------------------------------------------------------------------------


@command(
    "restart",
    chat=True,
    examples=(
        "igor restart shop -e production",
        "igor restart -s api -v web --follow",
        "igor restart blog --dry-run",
    ),
)
def restart_command(
    ctx: typer.Context,
    stack: StackName,
    environment: EnvironmentName = None,
    service: Service = None,
    follow: Follow = False,
    dry_run: DryRun = False,
    during_deploy: DuringDeploy = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> OperationRequest:
    """Restart a stack's components, or with -v one service's containers (docker stacks)."""
    named = _one_service(service, ctx)
    return OperationRequest(
        operation=SERVICE_RESTART if named else RESTART, service=named, stack=stack,
        environment=environment, follow=follow, dry_run=dry_run, during_deploy=during_deploy,
        break_glass=break_glass, reason=reason.strip(), as_json=as_json,
    )  # fmt: skip


@command(
    "maintenance",
    chat=True,
    examples=(
        "igor maintenance on shop -e production",
        "igor maintenance off -s shop -e production --follow",
        "igor maintenance -s shop -e production",
    ),
)
def maintenance_command(
    ctx: typer.Context,
    stack: StackName,
    mode: Mode = None,
    environment: EnvironmentName = None,
    follow: Follow = False,
    dry_run: DryRun = False,
    during_deploy: DuringDeploy = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> OperationRequest | MaintenanceRequest:
    """Turn a stack's maintenance mode on or off (alone: say whether it is on)."""
    if mode is None:
        return MaintenanceRequest(stack=stack, environment=environment, as_json=as_json)
    wanted = mode.strip().casefold()
    if wanted not in ("on", "off"):
        raise UsageError(
            f"Say `maintenance on` or `maintenance off`, then the stack, not {mode!r} "
            "(`igor maintenance -s NAME` says whether it is on).",
            ctx,
        )
    return OperationRequest(
        operation=MAINTENANCE_ON if wanted == "on" else MAINTENANCE_OFF, stack=stack,
        environment=environment, follow=follow, dry_run=dry_run, during_deploy=during_deploy,
        break_glass=break_glass, reason=reason.strip(), as_json=as_json,
    )  # fmt: skip


@command(
    "clear-caches",
    chat=True,
    examples=("igor clear-caches shop -e production", "igor clear-caches blog --follow"),
)
def clear_caches_command(
    stack: StackName,
    environment: EnvironmentName = None,
    follow: Follow = False,
    dry_run: DryRun = False,
    during_deploy: DuringDeploy = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> OperationRequest:
    """Clear a stack's caches."""
    return OperationRequest(
        operation=CLEAR_CACHES, stack=stack, environment=environment, follow=follow,
        dry_run=dry_run, during_deploy=during_deploy, break_glass=break_glass,
        reason=reason.strip(), as_json=as_json,
    )  # fmt: skip


@command(
    "pause",
    chat=True,
    examples=("igor pause api -v worker", "igor pause -s api -v web -e production"),
)
def pause_command(
    ctx: typer.Context,
    stack: StackName,
    service: NeededService,
    environment: EnvironmentName = None,
    follow: Follow = False,
    dry_run: DryRun = False,
    during_deploy: DuringDeploy = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> OperationRequest:
    """Pause a docker service's containers (`igor resume` starts them again)."""
    return OperationRequest(
        operation=PAUSE, service=_one_service(service, ctx), stack=stack,
        environment=environment, follow=follow, dry_run=dry_run, during_deploy=during_deploy,
        break_glass=break_glass, reason=reason.strip(), as_json=as_json,
    )  # fmt: skip


@command(
    "resume",
    chat=True,
    examples=("igor resume api -v worker", "igor resume -s api -v web --follow"),
)
def resume_command(
    ctx: typer.Context,
    stack: StackName,
    service: NeededService,
    environment: EnvironmentName = None,
    follow: Follow = False,
    dry_run: DryRun = False,
    during_deploy: DuringDeploy = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> OperationRequest:
    """Resume a docker service's paused containers."""
    return OperationRequest(
        operation=RESUME, service=_one_service(service, ctx), stack=stack,
        environment=environment, follow=follow, dry_run=dry_run, during_deploy=during_deploy,
        break_glass=break_glass, reason=reason.strip(), as_json=as_json,
    )  # fmt: skip


def _one_service(service: str | None, ctx: typer.Context) -> str:
    """-v names one service, without a tag: a stack action takes one `service_name`."""
    named = (service or "").strip()
    if "," in named or ":" in named:
        raise UsageError(
            f"-v takes one service's name here, not {named!r}: Cloud 66 runs a stack action "
            "on one service. Nothing was posted.",
            ctx,
        )
    return named


# -- the requests -----------------------------------------------------------------------

OPERATION_FIELDS = (
    "result", "operation", "command", "stack", "service", "value", "posted", "async_action_id",
    "running_deployment_id", "maintenance_mode",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class OperationRequest(Change):
    """A stack operation: one `POST /stacks/{id}/actions`. Chat looks first (a dry run), so a
    stack that deploys, or a service it lacks, is said before any question."""

    previews: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = with_follow_events(*OPERATION_FIELDS)

    operation: Operation
    service: str = ""
    during_deploy: bool = False

    def question(self, stack: Stack, literal: Callable[[str], str]) -> QuestionWords:
        """`restart *shop* in *production*?`, `pause service *web* of *api* in *production*?`"""
        where = literal(stack.environment)
        target = f"*{literal(stack.name)}* in *{where}*"
        if self.service:
            target = f"service *{literal(self.service)}* of {target}"
        asked = self.operation.saying.format(target=target)
        return QuestionWords(f"{asked}?", self.operation.confirm, "Cancel")

    def act(self, run: Run) -> OperationOutcome:
        """Ask Cloud 66 for the stack action, or say why not (deploying, already so)."""
        return operate(run.connect(), self, run.target, run.hints)


@dataclass(frozen=True, kw_only=True)
class MaintenanceRequest(Read):
    """`igor maintenance -s shop`: whether the stack is in maintenance mode."""

    needs_cloud66: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = ("stack", "maintenance_mode")

    stack: str
    environment: str | None = None

    def act(self, run: Run) -> MaintenanceState:
        """Read the stack: the `maintenance_mode` Cloud 66 shows."""
        from igor_cli.core.resolve import find_stack

        return MaintenanceState(find_stack(run.connect(), self.stack, self.environment, run.hints))


# -- the outcomes and their words -----------------------------------------------------------


class OperationResult(Enum):
    """What an operation came to."""

    STARTED = "started"  # Cloud 66 started the action
    WOULD_START = "would_start"  # a dry run
    DEPLOYING = "deploying"  # the stack deploys: nothing posted without --during-deploy
    ALREADY = "already"  # maintenance mode is already as asked: nothing posted


@dataclass(frozen=True)
class OperationOutcome(Outcome):
    """The result of a stack operation: what was (or would be) posted, and the action."""

    event: ClassVar[str] = "operation"

    result: OperationResult
    operation: Operation
    stack: Stack
    service: str = ""
    action_id: str = ""  # the async action Cloud 66 started
    started_at: datetime | None = None
    running: Deployment | None = None  # the deployment under way (DEPLOYING)

    @property
    def exit_code(self) -> ExitCode:
        """Nothing done because the stack deploys: a failure (as deploy's busy, not queued)."""
        return ExitCode.FAILED if self.result is OperationResult.DEPLOYING else ExitCode.OK

    @property
    def posted(self) -> bool:
        """Whether the stack action was asked of Cloud 66."""
        return self.result is OperationResult.STARTED

    def to_follow(self) -> Followed | None:
        """The action Cloud 66 started, when it named one."""
        from igor_cli.core.follow import Followed

        if not self.posted or not self.action_id:
            return None
        return Followed(
            self.stack, self.action_id, started_at=self.started_at,
            what=self.operation.named(self.stack, self.service),
            doing=f"{self.operation.doing} {self.service}".strip(),
        )  # fmt: skip

    def record(self) -> dict[str, str]:
        """The audit line names the operation, in Cloud 66's words too."""
        return {"operation": self.operation.name, "cloud66_command": self.operation.command}

    def said(self, now: datetime) -> Said:
        """What the operation came to; in chat, that the outcome comes in the thread; how to
        do it anyway while the stack deploys."""
        from igor_cli.render.said import Hint, Said
        from igor_cli.render.sentences import target_words

        tones: dict[OperationResult, Tone] = {
            OperationResult.STARTED: "started",
            OperationResult.WOULD_START: "dry-run",
            OperationResult.DEPLOYING: "refused",
        }
        hints: tuple[Hint, ...] = ()
        if self.result is OperationResult.DEPLOYING:
            hints = (
                Hint(
                    "Run it again with --during-deploy to do it anyway, or wait for the "
                    f"deployment: `igor watch {target_words(self.stack)}`.",
                    "Ask again with `--during-deploy` to do it anyway.",
                ),
            )
        elif self.posted and self.action_id:
            hints = (Hint("", "I'll post the outcome in this thread."),)
        return Said(operation_sentence(self, now), None, hints, tones.get(self.result, "info"))

    def facts(self) -> Any:
        """The operation, as igor's JSON has it."""
        return operation_json(self)


def posted_parameters(outcome: OperationOutcome) -> dict[str, str]:
    """The body of the POST: `command`, and `service_name` or `value` when it takes one."""
    operation = outcome.operation
    body = {"command": operation.command}
    if outcome.service:
        body["service_name"] = outcome.service
    if operation.value:
        body["value"] = operation.value
    return body


def operation_sentence(outcome: OperationOutcome, now: datetime) -> str:
    """One sentence: what the operation came to."""
    from igor_cli.render.sentences import ago

    said = outcome.operation.said(outcome.stack, outcome.service)
    result = outcome.result
    if result is OperationResult.STARTED:
        if not outcome.action_id:
            return f"Asked Cloud 66 to {said}; its answer named no action to follow."
        return f"Asked Cloud 66 to {said}: action {outcome.action_id} started."
    if result is OperationResult.WOULD_START:
        body = " ".join(f"{k}={v}" for k, v in posted_parameters(outcome).items())
        return (
            f"Dry run: igor would ask Cloud 66 to {said} (POST /stacks/{outcome.stack.uid}"
            f"/actions with {body}). Nothing was posted."
        )
    if result is OperationResult.ALREADY:
        state = "in" if outcome.operation.value == "1" else "out of"
        return f"{outcome.stack.label} is already {state} maintenance mode. Nothing was posted."
    running = outcome.running
    since = ""
    if running is not None:
        since = (
            f" (deployment {running.id}, started by {running.triggered_by} "
            f"{ago(running.started_at, now)})"
        )
    return (
        f"{outcome.stack.label} is deploying{since}: igor did not {said} during it. "
        "Nothing was posted."
    )


def operation_json(outcome: OperationOutcome) -> dict[str, Any]:
    """An operation in igor's JSON output."""
    from igor_cli.render.sentences import cloud66_id

    running = outcome.running
    return {
        "result": outcome.result.value,
        "operation": outcome.operation.name,
        "command": outcome.operation.command,
        "stack": outcome.stack.named(),
        "service": outcome.service or None,
        "value": int(outcome.operation.value) if outcome.operation.value else None,
        "posted": outcome.posted,
        "async_action_id": cloud66_id(outcome.action_id),
        "running_deployment_id": cloud66_id(running.id) if running else None,
        "maintenance_mode": outcome.stack.maintenance_mode,
    }


@dataclass(frozen=True)
class MaintenanceState(Outcome):
    """Whether a stack is in maintenance mode, as Cloud 66 shows it."""

    stack: Stack

    def said(self, now: datetime) -> Said:
        """`shop (production) is in maintenance mode.`"""
        from igor_cli.render.said import Said

        state = "in" if self.stack.maintenance_mode else "not in"
        return Said(f"{self.stack.label} is {state} maintenance mode.", tone="info")

    def facts(self) -> Any:
        """The stack and its maintenance mode."""
        stack = self.stack
        return {
            "stack": stack.named(),
            "maintenance_mode": stack.maintenance_mode,
        }


# -- the action -------------------------------------------------------------------------


def operate(
    client: Cloud66Client,
    request: OperationRequest,
    stack: Stack | None = None,
    hints: StackHints | None = None,
) -> OperationOutcome:
    """Ask Cloud 66 for one stack action, or say why not.

    A service is checked first (a docker stack's, one it has: no POST otherwise, as
    `deploy -v`); a stack that deploys is left alone unless `--during-deploy`; a
    maintenance mode already as asked is not asked again. One POST, never retried.
    """
    from igor_cli.cloud66.activity import running_deployment
    from igor_cli.core.resolve import check_services, find_stack

    operation = request.operation
    stack = stack or find_stack(client, request.stack, request.environment, hints)
    if request.service and not stack.is_docker:  # before any other request, as deploy -v
        hint = "Restart the whole stack without -v." if operation is SERVICE_RESTART else ""
        raise ServicesNeedDocker(stack.label, hint)
    check_services(client, stack, (request.service,) if request.service else ())

    def outcome(result: OperationResult, **facts: Any) -> OperationOutcome:
        return OperationOutcome(result, operation, stack, request.service, **facts)

    if operation.value and stack.maintenance_mode == (operation.value == "1"):
        return outcome(OperationResult.ALREADY)
    if not request.during_deploy:
        running = running_deployment(client.newest_deployments(stack.uid, fresh=True).items)
        if running is not None or stack.busy:
            return outcome(OperationResult.DEPLOYING, running=running)
    if request.dry_run:
        return outcome(OperationResult.WOULD_START)
    action = client.stack_action(
        stack.uid, operation.command, service_name=request.service, value=operation.value
    )
    return outcome(OperationResult.STARTED, action_id=action.id, started_at=action.started_at)
