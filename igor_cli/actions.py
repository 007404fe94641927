"""What igor does: list stacks, deploy, cancel, follow a deployment.

Plain functions over a Cloud 66 client that return outcomes. They never print
and never know whether a person is in a shell or in Slack; rendering happens at
the edges (`render/terminal.py`, `render/slack.py`).
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Self

from igor_cli import __version__
from igor_cli.cloud66.activity import (
    IGOR_REFERENCE_PREFIX,
    Client,
    DeployKind,
    QueuedDeploy,
    Requester,
    StackHints,
    actions_since,
    deployment_state,
    deployment_target,
    followed_deployment,
    igor_requesters,
    kind_of,
    live_deployment,
    live_state,
    newest_first,
    running_deployment,
    runs_now,
    service_names,
    typical_duration,
    with_what_igor_sent,
)
from igor_cli.errors import (
    AmbiguousStack,
    ApiError,
    AuditLost,
    Conflict,
    ExitCode,
    IgorError,
    NoSuchDeployment,
    NotFound,
    RefNeedsClassic,
    ServicesNeedDocker,
    StackNotFound,
    Throttled,
    UnknownService,
    Unreachable,
    UnreadableAnswer,
    UsageProblem,
)
from igor_cli.json_output import FOLLOW_EVENT_FIELDS, JsonOutput

if TYPE_CHECKING:
    from igor_cli.cloud66.models import AsyncAction, Deployment, DeployResponse, Stack
    from igor_cli.cloud66.paging import Newest
    from igor_cli.config import Environment
    from igor_cli.freeze import Window
    from igor_cli.state.deployed import Deployed, Ledger

__all__ = [
    "IGOR_REFERENCE_PREFIX",
    "Client",
    "QueuedDeploy",
    "Requester",
    "StackHints",
    "deployment_state",
    "live_deployment",
    "newest_first",
]


# -- who is asking ---------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where a command came from, for the `user_reference` and the audit line."""

    via: str  # "cli" or "slack"
    user: str  # "alice@laptop" or a Slack user ID
    request_id: str = ""  # the Slack event ID: a retry of one event must not deploy twice
    channel: str = ""  # where in chat it was typed (a lock records it: the holder's thread)
    thread: str = ""

    @classmethod
    def of_shell(cls, env: Environment) -> Origin:
        """`igor:cli:<account>@<host>`: who deploys from this shell, by the operating
        system's account (`Environment.account`), not by what $USER says."""
        from igor_cli.config import shell_user

        return cls("cli", shell_user(env.account))

    @property
    def user_reference(self) -> str:
        """The tag stored at Cloud 66 with the deployment (at most 255 chars)."""
        parts = [IGOR_REFERENCE_PREFIX + self.via, self.user]
        if self.request_id:
            parts.append(self.request_id)
        return ":".join(parts)[:255]


# -- requests (what the user asked for; built by the shared command definitions)


class Request:
    """What every request of the shared commands says of itself, read by the guard, the
    chat bridge and the renderers; a request's own fields and class say more.

    The class facets: a change is what rules gate and confirmations ask about, so a new
    command cannot slip past the guard by its name; one that `halts` a change (cancel)
    is let through locks, freezes and approvals; one that `previews` is dry-run first
    in chat, so its question names what it would deploy. The instance facets are read
    from a request that has no such option as what its absence means (`FACETS`).
    """

    changes: ClassVar[bool] = False
    halts: ClassVar[bool] = False
    previews: ClassVar[bool] = False
    needs_cloud66: ClassVar[bool] = True
    # The fields of its JSON, for `--json a,b` (a test checks them against the output).
    json_fields: ClassVar[tuple[str, ...]] = ()
    # It acts on the one stack it names: chat's rules are decided on the stack it
    # resolves to (a change's always are), so `-e` is needed no more than for deploy.
    acts_on_a_stack: ClassVar[bool] = False
    # It changes what igor keeps in its state store (a lock): like a change, refused in
    # chat where the bot's replicas do not share one store (chat/slack/replicas.py).
    keeps_state: ClassVar[bool] = False

    # Declared for the type checker only: a class attribute here would become the
    # default of a subclass's own field of that name (dataclasses read it), so the
    # absent ones are answered by __getattr__ instead.
    if TYPE_CHECKING:
        stack: str | None
        environment: str | None
        dry_run: bool
        follow: bool
        as_json: JsonOutput | None
        break_glass: bool  # during a freeze (only those the rules name; on record)
        reason: str  # why, for the record
        expect: str  # set by a confirmation: deploy this (a hash or tags) or nothing
    else:

        def __getattr__(self, name: str) -> Any:
            try:
                return FACETS[name]
            except KeyError:
                raise AttributeError(name) from None

    def replaced(self, **changes: Any) -> Self:
        """This request with some fields changed (every request is a frozen dataclass)."""
        import dataclasses

        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


# What a request without the option means (no stack named, no dry run, ...).
FACETS: dict[str, Any] = {
    "stack": None,
    "environment": None,
    "dry_run": False,
    "follow": False,
    "as_json": None,
    "break_glass": False,
    "reason": "",
    "expect": "",
}


def with_follow_events(*fields: str) -> tuple[str, ...]:
    """A command's fields, and those of the events it prints while following."""
    return tuple(dict.fromkeys((*fields, *FOLLOW_EVENT_FIELDS)))


DEPLOY_FIELDS = (
    "result", "stack", "services", "ref", "profile", "posted", "async_action_id", "message",
    "running_deployment_id", "started_by",
)  # fmt: skip


@dataclass(frozen=True)
class ListRequest(Request):
    """`igor list`."""

    changes: ClassVar[bool] = False
    needs_cloud66: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = (
        "uid", "name", "environment", "status", "status_text", "health", "health_text", "busy",
        "last_activity", "dashboard_url", "deployments_read", "live_deployment", "last_deploy",
        "running",
    )  # fmt: skip

    stack: str | None = None
    environment: str | None = None
    as_json: JsonOutput | None = None
    wide: bool = False  # with what each stack runs (one deployments list per stack shown)


@dataclass(frozen=True)
class DeployRequest(Request):
    """`igor deploy`."""

    changes: ClassVar[bool] = True
    needs_cloud66: ClassVar[bool] = True
    acts_on_a_stack: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = with_follow_events(*DEPLOY_FIELDS)

    stack: str
    environment: str | None = None
    services: tuple[str, ...] = ()
    ref: str = ""  # git_ref: a branch, tag or commit (classic stacks)
    profile: str = ""  # deployment_profile
    wait: bool = True
    follow: bool = False
    dry_run: bool = False
    as_json: JsonOutput | None = None
    break_glass: bool = False  # deploy during a freeze (only those it names; on record)
    reason: str = ""  # why, for the record


class CancelTarget(Enum):
    """Which deployment `cancel` was told to stop (none: the one there is)."""

    ANY = ""
    RUNNING = "running"
    QUEUED = "queued"


@dataclass(frozen=True)
class CancelRequest(Request):
    """`igor cancel`."""

    changes: ClassVar[bool] = True
    needs_cloud66: ClassVar[bool] = True
    # It stops a change rather than making one: locks, freezes and approvals let it
    # through (a change that does not say so is held back by them).
    halts: ClassVar[bool] = True
    acts_on_a_stack: ClassVar[bool] = True
    # Chat looks first (a dry run): with nothing to cancel it says so, asking no click.
    previews: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = (
        "result", "stack", "cancelled", "cancelled_deployment_id", "deployment_id",
        "triggered_by", "started_by", "queued", "choices",
    )  # fmt: skip

    stack: str
    environment: str | None = None
    services: tuple[str, ...] = ()
    as_json: JsonOutput | None = None
    target: CancelTarget = CancelTarget.ANY
    deployment_id: str = ""  # --id N: this deployment, running or queued
    dry_run: bool = False  # look only (chat, before it asks for a confirmation)


@dataclass(frozen=True)
class WatchRequest(Request):
    """`igor watch`: follow the stack's running deployment to its end."""

    changes: ClassVar[bool] = False
    needs_cloud66: ClassVar[bool] = True
    acts_on_a_stack: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = with_follow_events(
        "result", "stack", "async_action_id", "deployment_id", "queued", "started_by",
        "triggered_by", "started_at", "typical_seconds",
    )  # fmt: skip

    stack: str
    environment: str | None = None
    as_json: JsonOutput | None = None


@dataclass(frozen=True)
class HistoryRequest(Request):
    """`igor history`."""

    changes: ClassVar[bool] = False
    needs_cloud66: ClassVar[bool] = True
    acts_on_a_stack: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = (
        "id", "started_at", "finished_at", "duration_seconds", "outcome", "outcome_text",
        "triggered_by", "triggered_via", "igor", "git_hash", "git_ref", "services",
        "deployment_profile", "deploy_type", "is_live",
    )  # fmt: skip

    stack: str
    environment: str | None = None
    limit: int = 10
    as_json: JsonOutput | None = None


@dataclass(frozen=True)
class VersionRequest(Request):
    """`igor version`."""

    changes: ClassVar[bool] = False
    needs_cloud66: ClassVar[bool] = False
    json_fields: ClassVar[tuple[str, ...]] = ("version",)

    as_json: JsonOutput | None = None


@dataclass(frozen=True)
class WhoamiRequest(Request):
    """`igor whoami`."""

    changes: ClassVar[bool] = False
    needs_cloud66: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = (
        "token_source",
        "api_url",
        "sandbox",
        "account",
        "requests_left",
    )

    as_json: JsonOutput | None = None


# -- outcomes --------------------------------------------------------------


@dataclass(frozen=True)
class StackDeploys:
    """What a stack's deployments say for `igor list`: the live one and the last one over."""

    live: Deployment | None = None
    live_by: Requester | None = None  # igor's requester of the live one, when it is igor's
    last: Deployment | None = None  # the newest finished deployment
    last_by: Requester | None = None

    @property
    def last_state(self) -> str:
        """succeeded, failed or cancelled ("" with no finished deployment)."""
        return deployment_state(self.last) if self.last is not None else ""


@dataclass(frozen=True)
class StackList:
    """The stacks that matched `igor list`."""

    stacks: list[Stack]
    stack_filter: str | None = None
    environment: str | None = None
    # `--wide`: what each stack runs (its live deployment; None when it has none), by uid.
    running: dict[str, Deployment | None] | None = None
    # Per stack uid, when the deployments were read (not past DEPLOY_FACTS_LIMIT stacks).
    deploy_facts: dict[str, StackDeploys] = field(default_factory=dict)
    unread: str = ""  # why the deployments could not be read, when they could not

    exit_code = ExitCode.OK

    @property
    def deploys_read(self) -> bool:
        """Whether the deployments of the listed stacks were read (LAST DEPLOY)."""
        return len(self.deploy_facts) == len(self.stacks)

    def last_activity(self, stack: Stack) -> datetime | None:
        """The stack's last activity, moved on by a deployment that started or ended since."""
        return last_activity(stack, self.deploy_facts.get(stack.uid))


def last_activity(stack: Stack, facts: StackDeploys | None) -> datetime | None:
    """The stack's `last_activity`, or later: when its running deployment started or its
    last one ended (Cloud 66 may not count a start as activity)."""
    moments = [stack.last_activity]
    if facts is not None:
        moments.append(facts.live.started_at if facts.live else None)
        moments.append(facts.last.finished_at if facts.last else None)
    known = [m for m in moments if m is not None]
    return max(known) if known else None


class DeployResult(Enum):
    """What a deploy request came to."""

    STARTED = "started"
    QUEUED = "queued"
    ALREADY_DEPLOYING = "already_deploying"
    BUSY_NOT_QUEUED = "busy_not_queued"
    WOULD_START = "would_start"
    WOULD_QUEUE = "would_queue"


@dataclass(frozen=True)
class DeployOutcome:
    """The result of `deploy`: what happened and the facts to report."""

    result: DeployResult
    stack: Stack
    services: tuple[str, ...] = ()
    ref: str = ""  # the git_ref posted (or that would be)
    profile: str = ""  # the deployment_profile posted (or that would be)
    action_id: str = ""
    message: str = ""
    running: Deployment | None = None  # the deployment that made the stack busy
    started_by: Requester | None = None  # igor's requester of the running deployment
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
        return "" if followed_deployment(self.action_id) else self.action_id

    @property
    def followable(self) -> bool:
        """Whether there is an igor deployment (this one, or one igor already runs) to watch."""
        watched = (DeployResult.STARTED, DeployResult.QUEUED, DeployResult.ALREADY_DEPLOYING)
        return self.result in watched and bool(self.action_id)


class CancelResult(Enum):
    """What a cancel request came to."""

    CANCELLING = "cancelling"
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    ALREADY_CANCELLING = "already_cancelling"
    ALREADY_OVER = "already_over"  # --id N of a deployment that has finished: nothing sent
    CHOOSE = "choose"  # a running deployment and igor's deploy waiting: igor does not guess


@dataclass(frozen=True)
class CancelOutcome:
    """The result of `cancel`.

    `deployment` is the running deployment (the one cancelled, or one to choose), or
    the one `--id` named; `queued` the deploys igor asked for that wait to start
    (Cloud 66's API cannot cancel those: they are named so people know of them).
    """

    result: CancelResult
    stack: Stack
    deployment: Deployment | None = None
    started_by: Requester | None = None  # igor's requester of `deployment`, when it is igor's
    queued: tuple[QueuedDeploy, ...] = ()
    cancelled: str = ""  # "running" or "named" (--id): which one this cancel stops
    asked: CancelTarget = CancelTarget.ANY
    cancelled_id: str = ""  # the deployment id deleted

    @property
    def exit_code(self) -> ExitCode:
        """Nothing cancelled (nothing there, over already, or a choice to make) is a failure."""
        failed = (CancelResult.NOTHING_TO_CANCEL, CancelResult.CHOOSE, CancelResult.ALREADY_OVER)
        return ExitCode.FAILED if self.result in failed else ExitCode.OK


@dataclass(frozen=True)
class PastDeployment:
    """One line of `igor history`: a deployment, and who asked igor for it when igor knows."""

    deployment: Deployment
    requester: Requester | None = None  # igor's requester, read from its user_reference

    @property
    def state(self) -> str:
        """succeeded, failed, cancelled or running (Cloud 66's own word when it is none)."""
        return deployment_state(self.deployment)


@dataclass(frozen=True)
class History:
    """The newest deployments of a stack, newest first."""

    stack: Stack
    deployments: list[PastDeployment]
    total: int  # how many Cloud 66 holds, across every page
    exit_code = ExitCode.OK


@dataclass(frozen=True)
class VersionOutcome:
    """igor's version."""

    version: str = __version__
    exit_code = ExitCode.OK


@dataclass(frozen=True)
class WhoamiOutcome:
    """Who igor talks to Cloud 66 as, and where."""

    token_source: str  # "environment", "keyring", "config file", "sandbox"
    api_url: str
    sandbox: bool
    account: str | None = None  # None: the token lacks the `users` scope
    requests_left: int | None = None
    exit_code = ExitCode.OK


@dataclass(frozen=True)
class WatchOutcome:
    """A deployment to follow to its end: what `watch` attaches to, and `deploy --follow` too.

    No `action_id`: nothing runs or waits on the stack, so there is nothing to watch.
    """

    stack: Stack
    # The async action followed, or `deployment:<id>` (activity.deployment_target) when
    # Cloud 66 names no action for it: the deployment itself is followed then.
    action_id: str = ""
    deployment: Deployment | None = None  # the running deployment (None: not started yet)
    started_by: Requester | None = None  # igor's requester, when it is igor's for sure
    queued: bool = False  # igor's deploy, waiting behind the running one
    started_at: datetime | None = None  # when it started (or was asked for, when queued)
    typical: float | None = None  # seconds the stack's recent successful deployments took
    behind: str = ""  # queued: the id of the deployment it waits behind, when known

    @property
    def followable(self) -> bool:
        """Whether there is a deployment to follow."""
        return bool(self.action_id)

    @property
    def async_action_id(self) -> str:
        """The async action followed ("" when the deployment itself is, or nothing)."""
        return "" if followed_deployment(self.action_id) else self.action_id

    @property
    def exit_code(self) -> ExitCode:
        """Nothing to watch is a failure."""
        return ExitCode.OK if self.followable else ExitCode.FAILED


Outcome = (
    StackList
    | DeployOutcome
    | CancelOutcome
    | History
    | VersionOutcome
    | WhoamiOutcome
    | WatchOutcome
)


# -- stacks ----------------------------------------------------------------


# LAST DEPLOY costs a request or two per stack: read for a screenful of stacks at
# most (a token has 3,000 requests an hour), and never for the thousand-stack listing.
DEPLOY_FACTS_LIMIT = 20
DEPLOY_FACTS_WORKERS = 8


def list_stacks(
    client: Client,
    stack: str | None = None,
    environment: str | None = None,
    *,
    wide: bool = False,
) -> StackList:
    """Stacks whose name contains `stack` (any case), in `environment` (exact, any case).

    Up to DEPLOY_FACTS_LIMIT stacks (or WIDE_MAX_STACKS with `wide`), their newest
    deployments are read too, at once: what deploys now, how the last one ended,
    and (`wide`) what each runs. Past WIDE_MAX_STACKS, `wide` is refused before
    any is read, since each costs at least one request of the token's hourly budget.
    """
    from igor_cli.errors import TooManyStacks

    needle = (stack or "").casefold()
    env = (environment or "").casefold()
    chosen = [
        s
        for s in client.stacks()
        if needle in s.name.casefold() and (not env or s.environment.casefold() == env)
    ]
    chosen.sort(key=lambda s: (s.name.casefold(), s.environment.casefold()))
    if wide and len(chosen) > WIDE_MAX_STACKS:
        raise TooManyStacks(len(chosen), WIDE_MAX_STACKS)
    every: dict[str, Sequence[Deployment]] = {}
    unread = ""
    if chosen and (wide or len(chosen) <= DEPLOY_FACTS_LIMIT):
        try:
            enough = _runs_a_success if wide else None
            read = client.newest_deployments_of([s.uid for s in chosen], enough)
            every = {uid: newest.items for uid, newest in read.items()}
        except (Throttled, Unreachable, ApiError) as error:
            if wide:  # what --wide was asked for
                raise
            # The listing itself was read: LAST DEPLOY is extra, and says why it is missing.
            unread = error.message
    deploys: dict[str, StackDeploys] = {}
    if every:
        from concurrent.futures import ThreadPoolExecutor

        workers = min(DEPLOY_FACTS_WORKERS, len(chosen))
        with ThreadPoolExecutor(workers, thread_name_prefix="igor-deploys") as pool:
            found = pool.map(lambda s: stack_deploys(client, s, every[s.uid]), chosen)
            deploys = {s.uid: facts for s, facts in zip(chosen, found, strict=True)}
    running = _running(client, chosen, every) if wide else None
    return StackList(
        chosen, stack, environment, running=running, deploy_facts=deploys, unread=unread
    )


def _running(
    client: Client, stacks: Sequence[Stack], every: Mapping[str, Sequence[Deployment]]
) -> dict[str, Deployment | None]:
    """What each stack runs: its live deployment, and on a docker stack the image tags its
    services run (a deployment shows none)."""
    return {
        s.uid: runs_now(client, s, live_deployment(every[s.uid])) for s in stacks if s.uid in every
    }


def _runs_a_success(deployments: Sequence[Deployment]) -> bool:
    """Enough read to tell what a stack runs: Cloud 66's live one, or a success."""
    return any(d.is_live or deployment_state(d) == "succeeded" for d in deployments)


def stack_deploys(client: Client, stack: Stack, every: Sequence[Deployment]) -> StackDeploys:
    """The stack's running deployment and its newest finished one, and who asked for each.

    igor's actions (its requesters) are read only when one of the two may have come
    through the API, the way igor deploys.
    """
    live = running_deployment(every)
    finished = [d for d in every if not d.is_deploying and d.finished_at is not None]
    last = min(finished, key=newest_first, default=None)
    shown = [d for d in (live, last) if d is not None]
    if all(d.via_api is False for d in shown):
        return StackDeploys(live, None, last, None)
    try:
        requesters = igor_requesters(shown, client.newest_actions(stack.uid).items)
    except (Throttled, Unreachable, ApiError):
        requesters = {}  # Cloud 66's own words then: `triggered_by`
    return StackDeploys(
        live,
        requesters.get(live.id) if live else None,
        last,
        requesters.get(last.id) if last else None,
    )


WIDE_MAX_STACKS = 50  # `list --wide` reads one deployments list per stack: at most this many


def list_wide(client: Client, request: ListRequest) -> StackList:
    """`list --wide`: the stacks and what each runs, from one deployments list per stack."""
    return list_stacks(client, request.stack, request.environment, wide=True)


def resolve_stack(stacks: Sequence[Stack], name: str, environment: str | None) -> Stack:
    """The one stack with this exact name (any case), narrowed by environment."""
    wanted = name.strip().casefold()
    if not wanted:
        raise UsageProblem("The stack name is empty.", "Name a stack with -s.")
    named = [s for s in stacks if s.name.casefold() == wanted]
    if environment:
        in_env = [s for s in named if s.environment.casefold() == environment.casefold()]
        if not in_env and named:
            have = ", ".join(sorted({s.environment for s in named}))
            raise StackNotFound(
                name,
                environment,
                [],
                f"Stack {name!r} has no {environment!r} environment; it is in: {have}.",
            )
        named = in_env
    if len(named) == 1:
        return named[0]
    if named:
        raise AmbiguousStack(named[0].name, sorted(s.environment for s in named))
    where = f" in {environment!r}" if environment else ""
    raise StackNotFound(
        name, environment, _close_names(stacks, name), f"No stack named {name!r}{where}."
    )


def _close_names(stacks: Sequence[Stack], name: str) -> list[str]:
    names = sorted({s.name for s in stacks})
    by_fold = {n.casefold(): n for n in names}
    wanted = name.casefold()
    close = difflib.get_close_matches(wanted, list(by_fold), n=3, cutoff=0.6)
    contains = [n for f, n in by_fold.items() if wanted in f and f not in close]
    return ([by_fold[c] for c in close] + contains)[:3]


def split_services(values: Sequence[str]) -> tuple[str, ...]:
    """`-v web -v worker:1.2,api` -> ("web", "worker:1.2", "api"), without blanks or repeats."""
    seen: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            if part.strip():
                seen[part.strip()] = None
    return tuple(seen)


def find_stack(
    client: Client, name: str, environment: str | None, hints: StackHints | None = None
) -> Stack:
    """The one stack with this exact name (any case), narrowed by environment.

    A uid the cache already knows is confirmed with one `GET /stacks/{uid}`; the
    whole listing (every page) is read only when the cache has no single answer
    or its answer turns out wrong.
    """
    if hints is not None and name.strip():
        uids = hints.uids(name.strip(), environment)
        if len(uids) == 1:
            try:
                stack = client.stack(uids[0])
            except NotFound:
                stack = None  # deleted or renamed since: the listing will say
            if stack is not None and _is(stack, name, environment):
                return stack
    return resolve_stack(client.stacks(), name, environment)


def _is(stack: Stack, name: str, environment: str | None) -> bool:
    same_name = stack.name.casefold() == name.strip().casefold()
    return same_name and (not environment or stack.environment.casefold() == environment.casefold())


def _check_services(client: Client, stack: Stack, services: Sequence[str]) -> None:
    if not services:
        return
    if not stack.is_docker:
        # Checked before any other request: Cloud 66 deploys services of docker stacks only.
        raise ServicesNeedDocker(stack.label)
    available = [s.name for s in client.services(stack.uid)]
    by_fold = {a.casefold() for a in available}
    unknown = [s for s in services if s.split(":", 1)[0].casefold() not in by_fold]
    if unknown:
        raise UnknownService(stack.label, unknown, available)


# -- deploy ----------------------------------------------------------------


def deploy(
    client: Client,
    request: DeployRequest,
    origin: Origin,
    hints: StackHints | None = None,
    stack_lock: Callable[[str], AbstractContextManager[Any]] | None = None,
    stack: Stack | None = None,
    ledger: Ledger | None = None,
) -> DeployOutcome:
    """Deploy a stack, or say why not (SPEC section 4: busy, queued, already deploying).

    `stack` is the stack already resolved for this request, when it was; `ledger`
    keeps igor's record of what it sent (state/deployed.py).
    """
    stack = stack or find_stack(client, request.stack, request.environment, hints)
    services = split_services(request.services)
    if request.ref and stack.is_docker:
        # Checked before any request that could post: Cloud 66 takes git_ref on classic stacks.
        raise RefNeedsClassic(stack.label)
    _check_services(client, stack, services)
    # Two people asking at once (in this process, or in any igor sharing the state
    # store): the second must see the first's deployment, not race it to the POST.
    with stack_lock(stack.uid) if stack_lock else nullcontext():
        return deploy_resolved(client, request, origin, stack, services, ledger=ledger)


def deploy_resolved(
    client: Client,
    request: DeployRequest,
    origin: Origin,
    stack: Stack,
    services: tuple[str, ...],
    deployments: Newest[Deployment] | None = None,
    ledger: Ledger | None = None,
) -> DeployOutcome:
    """Deploy a stack already resolved and checked (under its lock): the busy rules, the
    dry run, the one POST. `deployments`: the stack's newest, when the caller just read them."""
    read = deployments or client.newest_deployments(stack.uid, fresh=True)

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
            started_by=Requester.from_reference(action.user_reference) if action else None,
            started_at=action.started_at if action else None,
            typical=typical_duration(read.items, kind_of(live) if joined and live else asked),
        )

    # What the estimate compares with: the deployment already running, or what this asks.
    asked = DeployKind(True, service_names(services), request.profile)

    if origin.request_id:
        # A retry of this very request (a Slack retry, a replayed confirmation),
        # perhaps handled by another replica: Cloud 66 filters its actions by the
        # reference igor stored. Only a deployment still running is a retry; a
        # finished one is history.
        mine = client.actions_for(stack.uid, origin.user_reference)
        running = next((a for a in mine if not a.finished), None)
        if running is not None:
            return outcome(DeployResult.ALREADY_DEPLOYING, running)
    live = running_deployment(read.items)
    busy = stack.busy or live is not None
    if busy:
        state = live_state(client, stack, read, fresh=True)
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


def _what_to_follow(
    client: Client, stack: Stack, origin: Origin, queued: bool, before: Deployment | None
) -> str:
    """Cloud 66 named no async action (its 2020 answer has none): igor's own action, found
    by the reference it sent, else the deployment that started for it; "" when neither
    can be told (a queued deploy starts later: `igor watch` attaches then)."""
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


# -- cancel ----------------------------------------------------------------


class CannotCancelWaiting(IgorError):
    """`--queued`: Cloud 66's API cancels a live deployment only."""


def cancel(
    client: Client, request: CancelRequest, hints: StackHints | None = None
) -> CancelOutcome:
    """Cancel what runs on the stack, or the deployment `--id` names, or say which to choose.

    With a running deployment and a deploy igor asked for waiting behind it,
    nothing is cancelled unless the request says `--running` (or `--id`): the
    waiting one cannot be cancelled through the API, so it is only named.
    """
    stack = find_stack(client, request.stack, request.environment, hints)
    _check_services(client, stack, split_services(request.services))
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
    state = live_state(client, stack, fresh=True)
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
    client: Client, stack: Stack, request: CancelRequest, wanted: str
) -> CancelOutcome:
    """`--id N`: Cloud 66 is asked about deployment N first; one that is over is not sent."""
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
        state = live_state(client, stack, fresh=True)
        if state.live is not None and state.live.id == named.id:
            asked = dataclasses.replace(asked, started_by=state.live_requester)
    return _delete(client, stack, wanted, asked, dry_run=request.dry_run)


def _at(stack: Stack) -> str:
    return f" ({stack.dashboard_url})" if stack.dashboard_url else ""


def stack_words(stack: Stack) -> str:
    """`-s shop -e production`, quoted for a shell."""
    import shlex

    env = f" -e {shlex.quote(stack.environment)}" if stack.environment else ""
    return f"-s {shlex.quote(stack.name)}{env}"


def _delete(
    client: Client, stack: Stack, deployment_id: str, said: CancelOutcome, *, dry_run: bool
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


# -- history ---------------------------------------------------------------

HISTORY_MAX_PAGES = 10  # `history -n` shows at most this many pages' worth (300)


def history(
    client: Client,
    request: HistoryRequest,
    hints: StackHints | None = None,
    ledger: Ledger | None = None,
) -> History:
    """The stack's newest deployments, newest first, whatever order Cloud 66 lists them in:
    only as many pages as the limit needs are read."""
    from igor_cli.cloud66.paging import PER_PAGE

    stack = find_stack(client, request.stack, request.environment, hints)
    limit = max(1, request.limit)
    pages = min(HISTORY_MAX_PAGES, -(-limit // PER_PAGE) + 1)
    read = client.newest_deployments(stack.uid, lambda found: len(found) >= limit, max_pages=pages)
    newest = list(read.items[:limit])
    actions = actions_since(client, stack, newest)
    requesters = igor_requesters(newest, actions)
    shown = with_what_igor_sent(newest, actions, _records(ledger, stack))
    chosen = [PastDeployment(d, requesters.get(d.id)) for d in shown]
    return History(stack, chosen, read.count)


def _records(ledger: Ledger | None, stack: Stack) -> list[Deployed]:
    try:
        return ledger.of(stack.uid) if ledger is not None else []
    except IgorError:
        return []  # the history is Cloud 66's; what igor sent is extra


# -- follow ----------------------------------------------------------------


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
    client: Client,
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


def _in_front(client: Client, stack_uid: str, deployment_id: str) -> bool:
    """Whether the deployment a queued deploy waits behind still runs (when it cannot be
    read this time, the wait is taken to go on; when it is gone, to be over)."""
    try:
        return client.deployment(stack_uid, deployment_id).is_deploying
    except NotFound:
        return False
    except (Throttled, Unreachable, ApiError):
        return True


def _action_look(client: Client, stack_uid: str, action_id: str) -> Progress:
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


def _deployment_look(client: Client, stack_uid: str, deployment_id: str) -> Progress:
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


# -- watch -----------------------------------------------------------------


def watch(client: Client, request: WatchRequest, hints: StackHints | None = None) -> WatchOutcome:
    """The stack's running deployment (or igor's deploy about to start) to follow, with an
    estimate, from one read of its newest deployments and one of its newest actions."""
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


def following(outcome: DeployOutcome) -> WatchOutcome:
    """What `deploy --follow` watches: the deployment igor asked for (or already runs)."""
    already = outcome.result is DeployResult.ALREADY_DEPLOYING
    queued = outcome.result is DeployResult.QUEUED
    return WatchOutcome(
        outcome.stack,
        outcome.action_id,
        outcome.running if already else None,
        outcome.started_by,
        queued=queued,
        started_at=outcome.started_at,
        typical=outcome.typical,
        behind=outcome.running.id if queued and outcome.running is not None else "",
    )


def seconds_running(outcome: DeployOutcome | WatchOutcome, now: datetime) -> float:
    """How long the followed deployment has run already (0 when igor just asked for it)."""
    if outcome.started_at is None:
        return 0.0
    return max(0.0, (now - outcome.started_at).total_seconds())


# -- the registry: which action answers which request -----------------------


@dataclass(frozen=True)
class Run:
    """What an action may use: Cloud 66 (opened on first use), who asks, what is known."""

    connect: Callable[[], Client]
    origin: Origin
    hints: StackHints | None = None
    env: Environment | None = None
    target: Stack | None = None  # the stack a change acts on, when already resolved
    glass: Window | None = None  # the freeze whose glass this change breaks (guard_change)


Action = Callable[[Run, Any], Any]
ACTIONS: dict[type, Action] = {}


def performs(request_type: type) -> Callable[[Action], Action]:
    """Register the action that answers one kind of request (one per request type)."""

    def register(action: Action) -> Action:
        if request_type in ACTIONS:
            raise ValueError(f"{request_type.__name__} already has an action")
        ACTIONS[request_type] = action
        return action

    return register


@performs(ListRequest)
def _list_action(run: Run, request: ListRequest) -> StackList:
    if request.wide:
        return list_wide(run.connect(), request)
    return list_stacks(run.connect(), request.stack, request.environment)


@performs(DeployRequest)
def _deploy_action(run: Run, request: DeployRequest) -> DeployOutcome:
    locks = run.env.stack_lock if run.env is not None else None
    return deploy(run.connect(), request, run.origin, run.hints, locks, run.target, ledger(run))


@performs(CancelRequest)
def _cancel_action(run: Run, request: CancelRequest) -> CancelOutcome:
    return cancel(run.connect(), request, run.hints)


@performs(HistoryRequest)
def _history_action(run: Run, request: HistoryRequest) -> History:
    return history(run.connect(), request, run.hints, ledger(run))


@performs(WatchRequest)
def _watch_action(run: Run, request: WatchRequest) -> WatchOutcome:
    return watch(run.connect(), request, run.hints)


def ledger(run: Run) -> Ledger | None:
    """Where igor keeps what it deployed: the run's state store (a configured store that
    cannot be reached refuses the change, as the guard does)."""
    from igor_cli.state.deployed import Ledger

    if run.env is None:
        return None
    return Ledger(run.env.state_or_none(), run.env.clock)


@performs(VersionRequest)
def _version_action(run: Run, request: VersionRequest) -> VersionOutcome:
    return VersionOutcome()


@performs(WhoamiRequest)
def _whoami_action(run: Run, request: WhoamiRequest) -> WhoamiOutcome:
    return whoami(run)


def whoami(run: Run) -> WhoamiOutcome:
    """The token's source, the account when the token may see it, the API URL, the sandbox."""
    from igor_cli.credentials import TokenKind, find_token
    from igor_cli.errors import Forbidden

    env = run.env
    if env is None:
        raise UsageProblem("whoami needs to know igor's environment.")
    client = run.connect()
    try:
        accounts = client.accounts()
    except Forbidden:
        account = None  # the optional `users` scope
    else:
        account = ", ".join(a.name or a.owner for a in accounts) or None
    found = None if env.in_sandbox else find_token(TokenKind.CLOUD66, env)
    return WhoamiOutcome(
        token_source="sandbox" if env.in_sandbox else (found.source if found else "none"),
        api_url="the built-in sandbox" if env.in_sandbox else env.api_url(),
        sandbox=env.in_sandbox,
        account=account,
        requests_left=getattr(client, "rate_remaining", None),
    )


def perform(
    connect: Callable[[], Client],
    request: Request,
    origin: Origin,
    hints: StackHints | None = None,
    env: Environment | None = None,
) -> Outcome:
    """Run one request; the shell and the chat bridge both come through here.

    `connect` is called only by actions that need Cloud 66; `hints` (the
    completion cache) saves listing every stack to find one.
    """
    action = ACTIONS.get(type(request))
    if action is None:
        raise TypeError(f"no action answers {type(request).__name__}")
    run = Run(connect, origin, hints, env)
    if held_back(request):
        run = guard_change(run, request)  # every change passes here, whatever its command
        if env is not None and not request.dry_run:
            remember_reference(env, origin)  # before the POST: this deployment is igor's
    outcome: Outcome = action(run, request)
    if run.glass is not None and getattr(outcome, "posted", outcome.exit_code == 0):
        _record_broken_glass(run, request)  # when the change is made, not when it is asked
    return outcome


def remember_reference(env: Environment, origin: Origin) -> None:
    """Keep the `user_reference` igor is about to post with in the state store: a
    deployment counts as igor's (not as one that bypassed a lock) only when it is known
    there (chat/bypass.py), whatever reference someone else gives theirs."""
    from igor_cli.state.posts import remember_post

    store = env.state_or_none()
    if store is not None:
        remember_post(store, origin.user_reference)


def _record_broken_glass(run: Run, request: Request) -> None:
    """A change made during a freeze with --break-glass, on record in the state store."""
    import logging

    from igor_cli.state.audit import keep_on_record

    env, stack, window = run.env, run.target, run.glass
    if env is None or stack is None or window is None:
        return
    origin = run.origin
    try:
        store = env.state_or_none()
        if store is not None:
            keep_on_record(
                store,
                {"event": "break-glass", "by": {"via": origin.via, "user": origin.user},
                 "stack": {"uid": stack.uid, "name": stack.name,
                           "environment": stack.environment},
                 "reason": request.reason.strip(), "freeze": window.describe()},
                env.clock(),
            )  # fmt: skip
    except IgorError as error:  # the change is made: say it, but do not hide that it was
        logging.getLogger("igor").warning(
            "The glass of a freeze was broken on %s, but that could not be recorded: %s",
            stack.label, error.message,
        )  # fmt: skip


def held_back(request: Request) -> bool:
    """Whether locks, freezes and approvals hold this request back: a change that does not
    only halt one (`halts`, like cancel: stopping a deployment never waits)."""
    return request.changes and not request.halts


def guard_change(run: Run, request: Request) -> Run:
    """Refuse a change to a stack someone else has locked (`StackLocked`) or that a freeze
    window holds (`StackFrozen`, unless the glass is broken); otherwise the run, with
    the stack it changes resolved when that had to be looked up.

    With no lock and no freeze now, nothing more is asked of Cloud 66. A change
    that does not say which stack it changes is refused then (fail closed).
    """
    from igor_cli.freeze import any_freeze_now, freezes_from_config

    if run.env is None:
        return run  # no environment, no store, no config: nothing can hold a stack
    audit_problem = run.env.audit_problem() if run.env.audit_problem is not None else ""
    if audit_problem:  # `[audit] required`: no change without its line on record
        raise AuditLost(audit_problem)
    locks = _locks(run.env)
    freezes = freezes_from_config(run.env.config(), str(run.env.config_path()))
    now = run.env.clock()
    if not locks and not any_freeze_now(freezes, now):
        return run
    name, environment = request.stack, request.environment
    if not isinstance(name, str):
        raise IgorError(
            f"igor cannot tell which stack this {type(request).__name__} changes, and some "
            "stacks are locked or frozen; nothing was done."
        )
    stack = run.target or find_stack(run.connect(), name, environment, run.hints)
    refuse_if_locked(run.env, stack, run.origin, locks)
    glass = _refuse_if_frozen(run.env, stack, run.origin, request, freezes)
    return dataclasses.replace(run, target=stack, glass=glass)


def _refuse_if_frozen(
    env: Environment, stack: Stack, origin: Origin, request: Request, freezes: list[Any]
) -> Window | None:
    """`StackFrozen` during a freeze, unless someone it names breaks the glass: then the
    freeze's window (the change is recorded when it is made, by `perform`)."""
    from igor_cli.freeze import StackFrozen, freeze_in_the_way
    from igor_cli.state.store import StateUnavailable

    now = env.clock()
    window = freeze_in_the_way(freezes, stack.name, stack.environment, now)
    if window is None:
        return None
    allowed = window.freeze.may_break(origin.user)
    if not request.break_glass:
        hint = (
            "You may override it with --break-glass --reason TEXT (it is recorded)."
            if allowed
            else "Wait until it ends, or ask someone it lets break the glass."
        )
        raise StackFrozen(stack.label, window, hint)
    if not allowed:
        raise StackFrozen(
            stack.label, window, "You are not among those this freeze lets break the glass."
        )
    if not request.reason.strip():
        raise UsageProblem("--break-glass needs --reason TEXT: say why, for the record.")
    if request.dry_run:  # a dry run posts nothing: nothing to keep on record
        return window
    try:  # broken glass is kept on record when the change is made, or the glass stays whole
        env.state()
    except StateUnavailable as error:
        raise StateUnavailable(
            f"{error.message} Breaking the glass is kept on record there, so the freeze "
            "holds; nothing was posted.",
            error.hint,
        ) from None
    return window


def refuse_if_locked(
    env: Environment, stack: Stack, origin: Origin, locks: dict[str, Any] | None = None
) -> None:
    """`StackLocked` when someone other than `origin` holds this stack's lock."""
    from igor_cli.state.locks import StackLocked

    held = (_locks(env) if locks is None else locks).get(stack.uid)
    if held is not None and not held[0].held_by(origin):
        raise StackLocked(held[0], env.clock())


def _locks(env: Environment) -> dict[str, Any]:
    from igor_cli.state.locks import current_locks
    from igor_cli.state.store import StateUnavailable, refusing_changes

    try:
        # A store that cannot be read, or that lost what it held, stops the change.
        store = env.state_for_change()
        return dict(current_locks(store)) if store is not None else {}
    except StateUnavailable as error:
        raise refusing_changes(error) from None
