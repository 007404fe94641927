"""What igor does: list stacks, deploy, cancel, follow a deployment.

Plain functions over a Cloud 66 client that return outcomes. They never print
and never know whether a person is in a shell or in Slack; rendering happens at
the edges (`render/terminal.py`, `render/slack.py`).
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

from igor_cli import __version__
from igor_cli.errors import (
    AmbiguousStack,
    ApiError,
    AuditLost,
    Conflict,
    ExitCode,
    IgorError,
    NotFound,
    RefNeedsClassic,
    ServicesNeedDocker,
    StackNotFound,
    Throttled,
    UnknownService,
    Unreachable,
    UsageProblem,
)
from igor_cli.json_output import FOLLOW_EVENT_FIELDS, JsonOutput

if TYPE_CHECKING:
    from igor_cli.cloud66 import (
        Account,
        AsyncAction,
        Deployment,
        DeployResponse,
        Service,
        Stack,
    )
    from igor_cli.config import Environment
    from igor_cli.freeze import Window

IGOR_REFERENCE_PREFIX = "igor:"


class Client(Protocol):
    """The part of `Cloud66Client` the actions use (tests may pass the real one)."""

    def stacks(self) -> list[Stack]: ...
    def stack(self, uid: str) -> Stack: ...
    def accounts(self) -> list[Account]: ...
    def services(self, uid: str) -> list[Service]: ...
    def deployments(self, uid: str) -> list[Deployment]: ...
    def deployment(self, uid: str, deployment_id: str) -> Deployment: ...
    def deployments_of(self, uids: Sequence[str]) -> dict[str, list[Deployment]]: ...
    def actions(self, uid: str, *, user_reference: str | None = None) -> list[AsyncAction]: ...
    def action(self, uid: str, action_id: str) -> AsyncAction: ...
    def deploy(
        self,
        uid: str,
        *,
        services: Sequence[str] = (),
        user_reference: str = "",
        git_ref: str = "",
        deployment_profile: str = "",
    ) -> DeployResponse: ...
    def cancel(self, uid: str, deployment_id: str) -> str: ...


class StackHints(Protocol):
    """Where a stack's uid may already be known (the completion cache), to skip the listing."""

    def uids(self, name: str, environment: str | None) -> list[str]:
        """The uids of stacks last seen with this name (any case) in this environment."""
        ...


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


@dataclass(frozen=True)
class Requester:
    """Who started a deployment, read back from its `user_reference`."""

    via: str
    user: str

    @classmethod
    def from_reference(cls, reference: str) -> Requester | None:
        """Parse `igor:<via>:<user>[:<request id>]`; None if igor did not write it."""
        if not reference.startswith(IGOR_REFERENCE_PREFIX):
            return None
        _, via, *rest = reference.split(":", 3)
        return cls(via=via, user=rest[0] if rest else "")


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
    def followable(self) -> bool:
        """Whether there is an igor deployment (this one, or one igor already runs) to watch."""
        watched = (DeployResult.STARTED, DeployResult.QUEUED, DeployResult.ALREADY_DEPLOYING)
        return self.result in watched and bool(self.action_id)


class CancelResult(Enum):
    """What a cancel request came to."""

    CANCELLING = "cancelling"
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    ALREADY_CANCELLING = "already_cancelling"
    CHOOSE = "choose"  # a running deployment and a queued one: igor does not guess


@dataclass(frozen=True)
class QueuedDeploy:
    """A deploy igor asked for that waits behind the running deployment."""

    action: AsyncAction
    requester: Requester | None

    @property
    def deployment_id(self) -> str:
        """Its deployment's id, when Cloud 66 says it (`metadata.deployment_id`)."""
        return self.action.deployment_id


@dataclass(frozen=True)
class CancelOutcome:
    """The result of `cancel`.

    `deployment` is the running deployment (the one cancelled, or one to choose);
    `queued` the deploys igor queued (the one cancelled, or the ones to choose).
    """

    result: CancelResult
    stack: Stack
    deployment: Deployment | None = None
    started_by: Requester | None = None  # igor's requester of `deployment`, when it is igor's
    queued: tuple[QueuedDeploy, ...] = ()
    cancelled: str = ""  # "running", "queued" or "named" (--id): which one this cancel stops
    asked: CancelTarget = CancelTarget.ANY
    cancelled_id: str = ""  # the deployment id deleted

    @property
    def exit_code(self) -> ExitCode:
        """Nothing cancelled (nothing there, or a choice to make) is a failure."""
        if self.result in (CancelResult.NOTHING_TO_CANCEL, CancelResult.CHOOSE):
            return ExitCode.FAILED
        return ExitCode.OK

    @property
    def cancelled_queued(self) -> QueuedDeploy | None:
        """The queued deploy this cancel stops, if that is what it stops."""
        return self.queued[0] if self.cancelled == "queued" and self.queued else None


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
    action_id: str = ""  # the async action followed
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


DEPLOYMENTS_FRESH_FOR = 10.0  # seconds a stack's deployment list, once read, serves a list


class RecentDeployments:
    """Stacks' deployment lists read in the last DEPLOYMENTS_FRESH_FOR seconds, by uid.

    The bot answers many `list`s at once on one token (3,000 requests an hour):
    between them they read each stack's deployments once, not once a command.
    """

    def __init__(self, clock: Callable[[], float], seconds: float = DEPLOYMENTS_FRESH_FOR) -> None:
        import threading

        self.clock = clock
        self.seconds = seconds
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, list[Deployment]]] = {}

    def read(self, client: Client, uids: Sequence[str]) -> dict[str, list[Deployment]]:
        """Each stack's deployments: the ones read moments ago, the others read now."""
        now = self.clock()
        with self._lock:
            fresh = {
                uid: seen[1]
                for uid in uids
                if (seen := self._seen.get(uid)) is not None and now - seen[0] < self.seconds
            }
        missing = [uid for uid in uids if uid not in fresh]
        read = client.deployments_of(missing) if missing else {}
        with self._lock:
            for uid, deployments in read.items():
                self._seen[uid] = (now, deployments)
        return {uid: fresh[uid] if uid in fresh else read[uid] for uid in uids}


def recent_deployments(env: Environment | None) -> RecentDeployments | None:
    """The environment's RecentDeployments (made on first use); None without one."""
    if env is None:
        return None
    with env.lock:
        if env.recent_deployments is None:
            env.recent_deployments = RecentDeployments(env.monotonic)
        found: RecentDeployments = env.recent_deployments
        return found


def list_stacks(
    client: Client,
    stack: str | None = None,
    environment: str | None = None,
    *,
    wide: bool = False,
    recent: RecentDeployments | None = None,
) -> StackList:
    """Stacks whose name contains `stack` (any case), in `environment` (exact, any case).

    Up to DEPLOY_FACTS_LIMIT stacks (or WIDE_MAX_STACKS with `wide`), their
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
    every: dict[str, list[Deployment]] = {}
    unread = ""
    if chosen and (wide or len(chosen) <= DEPLOY_FACTS_LIMIT):
        try:
            uids = [s.uid for s in chosen]
            every = recent.read(client, uids) if recent else client.deployments_of(uids)
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
    running = {uid: live_deployment(d) for uid, d in every.items()} if wide else None
    return StackList(
        chosen, stack, environment, running=running, deploy_facts=deploys, unread=unread
    )


def stack_deploys(client: Client, stack: Stack, every: Sequence[Deployment]) -> StackDeploys:
    """The stack's running deployment and its newest finished one, and who asked for each.

    The async actions (igor's requesters) are read only when one of the two came
    through the API, the way igor deploys.
    """
    live = _live_deployment(every)
    finished = [d for d in every if not d.is_deploying and d.finished_at is not None]
    last = min(finished, key=newest_first, default=None)
    shown = [d for d in (live, last) if d is not None]
    if not any(d.triggered_via.casefold() in ("api", "") for d in shown):
        return StackDeploys(live, None, last, None)
    try:
        requesters = _igor_requesters(client, stack)
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


def _live_deployment(deployments: Sequence[Deployment]) -> Deployment | None:
    # Every page was read and no order is assumed: at most one deployment is live.
    return next((d for d in deployments if d.is_deploying), None)


def _igor_actions_running(actions: Sequence[AsyncAction]) -> list[AsyncAction]:
    return [
        a for a in actions if not a.finished and a.user_reference.startswith(IGOR_REFERENCE_PREFIX)
    ]


# -- deploy ----------------------------------------------------------------


def deploy(
    client: Client,
    request: DeployRequest,
    origin: Origin,
    hints: StackHints | None = None,
    stack_lock: Callable[[str], AbstractContextManager[Any]] | None = None,
    stack: Stack | None = None,
) -> DeployOutcome:
    """Deploy a stack, or say why not (SPEC section 4: busy, queued, already deploying).

    `stack` is the stack already resolved for this request, when it was.
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
        return deploy_resolved(client, request, origin, stack, services)


def deploy_resolved(
    client: Client,
    request: DeployRequest,
    origin: Origin,
    stack: Stack,
    services: tuple[str, ...],
    deployments: Sequence[Deployment] | None = None,
) -> DeployOutcome:
    """Deploy a stack already resolved and checked (under its lock): the busy rules, the
    dry run, the one POST. `deployments`: the stack's list when the caller just read it."""
    from igor_cli.cloud66 import StackStatus

    def outcome(
        result: DeployResult,
        action: AsyncAction | None = None,
        answer: DeployResponse | None = None,
        live: Deployment | None = None,
    ) -> DeployOutcome:
        return DeployOutcome(
            result,
            stack,
            services,
            ref=request.ref,
            profile=request.profile,
            action_id=action.id if action else answer.async_action_id if answer else "",
            message=answer.message if answer else "",
            running=live,
            started_by=Requester.from_reference(action.user_reference) if action else None,
            started_at=action.started_at if action else None,
        )

    if origin.request_id:
        # A retry of this very request (a Slack retry, a replayed confirmation),
        # perhaps handled by another replica: Cloud 66 filters its actions by the
        # reference igor stored. Only a deployment still running is a retry; a
        # finished one is history.
        mine = client.actions(stack.uid, user_reference=origin.user_reference)
        running = next(
            (a for a in mine if a.user_reference == origin.user_reference and not a.finished),
            None,
        )
        if running is not None:
            return outcome(DeployResult.ALREADY_DEPLOYING, running)
    every = client.deployments(stack.uid) if deployments is None else deployments
    live = _live_deployment(every)
    busy = (
        stack.is_busy
        or stack.status in (StackStatus.QUEUED, StackStatus.DEPLOYING)
        or live is not None
    )
    if busy:
        ours = _igor_actions_running(client.actions(stack.uid))
        if ours:
            return outcome(DeployResult.ALREADY_DEPLOYING, ours[0], live=live)
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
    queued = answer.queued or busy
    return outcome(
        DeployResult.QUEUED if queued else DeployResult.STARTED, answer=answer, live=live
    )


# -- cancel ----------------------------------------------------------------


@dataclass(frozen=True)
class LiveState:
    """What runs on a stack now, the async action behind it, and the deploys igor queued."""

    live: Deployment | None
    live_action: AsyncAction | None  # the action that runs `live`, when it can be told
    queued: tuple[QueuedDeploy, ...]  # igor's deploys waiting (behind `live`, if any)

    @property
    def live_requester(self) -> Requester | None:
        """igor's requester of the running deployment; None unless it is igor's for sure."""
        if self.live_action is None:
            return None
        return Requester.from_reference(self.live_action.user_reference)


def live_state(client: Client, stack: Stack) -> LiveState:
    """Read the stack's deployments and actions (every page) and tell what runs and waits."""
    live = _live_deployment(client.deployments(stack.uid))
    unfinished = [a for a in client.actions(stack.uid) if not a.finished]
    runs_live = _action_of(live, unfinished) if live is not None else None
    queued = tuple(
        QueuedDeploy(a, Requester.from_reference(a.user_reference))
        for a in sorted(unfinished, key=_asked_first)
        if a is not runs_live and a.user_reference.startswith(IGOR_REFERENCE_PREFIX)
    )
    return LiveState(live, runs_live, queued)


def _asked_first(action: AsyncAction) -> tuple[float, str]:
    asked = action.started_at.timestamp() if action.started_at else float("inf")
    return (asked, action.id)


def _action_of(live: Deployment, unfinished: Sequence[AsyncAction]) -> AsyncAction | None:
    """The unfinished action that runs the live deployment, when that can be told for sure.

    An action that names its deployment (`metadata.deployment_id`) settles it.
    Otherwise an action can only run the live deployment if the same Cloud 66
    user asked for it no later than the deployment started, and it must be the
    only such action: a deploy queued behind someone else's never takes their name.
    """
    named = [a for a in unfinished if a.deployment_id == live.id]
    if named:
        return named[0]
    # Unconfirmed: that Cloud 66 leaves `metadata.deployment_id` out on some actions;
    # the sandbox always sets it, so this rule only serves an API that does not.
    possible = [
        a
        for a in unfinished
        if not a.deployment_id
        and (not a.user or a.user == live.triggered_by)
        and (a.started_at is None or live.started_at is None or a.started_at <= live.started_at)
    ]
    return possible[0] if len(possible) == 1 else None


def cancel(
    client: Client, request: CancelRequest, hints: StackHints | None = None
) -> CancelOutcome:
    """Cancel what runs on the stack, or igor's queued deploy, or say which to choose.

    With a running deployment and a deploy igor queued behind it, nothing is
    cancelled unless the request says which (`--running`, `--queued`, `--id`).
    """
    stack = find_stack(client, request.stack, request.environment, hints)
    _check_services(client, stack, split_services(request.services))
    state = live_state(client, stack)
    live, queued = state.live, state.queued

    def outcome(
        result: CancelResult, cancelled: str = "", *, waiting: Sequence[QueuedDeploy] = queued
    ) -> CancelOutcome:
        return CancelOutcome(
            result, stack, live, state.live_requester, tuple(waiting), cancelled, request.target
        )

    def _delete(
        client: Client, stack: Stack, deployment_id: str, said: CancelOutcome
    ) -> CancelOutcome:
        if request.dry_run:  # what it would cancel; nothing is asked of Cloud 66
            return dataclasses.replace(said, cancelled_id=deployment_id)
        return delete(client, stack, deployment_id, said)

    wanted = request.deployment_id.strip()
    if wanted:
        if live is not None and live.id == wanted:
            return _delete(client, stack, wanted, outcome(CancelResult.CANCELLING, "running"))
        named = [q for q in queued if q.deployment_id == wanted]
        if named:
            return _delete(
                client, stack, wanted, outcome(CancelResult.CANCELLING, "queued", waiting=named)
            )
        # Not one igor can see running or queued: Cloud 66 says what it is.
        return _delete(client, stack, wanted, outcome(CancelResult.CANCELLING, "named"))
    target = request.target
    if target is CancelTarget.RUNNING or (target is CancelTarget.ANY and not queued):
        if live is None:
            return outcome(CancelResult.NOTHING_TO_CANCEL)
        return _delete(client, stack, live.id, outcome(CancelResult.CANCELLING, "running"))
    if not queued:
        return outcome(CancelResult.NOTHING_TO_CANCEL)
    if len(queued) > 1 or (target is CancelTarget.ANY and live is not None):
        return outcome(CancelResult.CHOOSE)
    only = queued[0]
    if not only.deployment_id:
        raise IgorError(
            f"Cloud 66 does not say which deployment igor's queued deploy of {stack.label} is, "
            "so igor cannot cancel it.",
            f"Cancel it in the Cloud 66 dashboard: {stack.dashboard_url}"
            if stack.dashboard_url
            else "Cancel it in the Cloud 66 dashboard.",
        )
    return _delete(client, stack, only.deployment_id, outcome(CancelResult.CANCELLING, "queued"))


def delete(client: Client, stack: Stack, deployment_id: str, said: CancelOutcome) -> CancelOutcome:
    """DELETE one deployment; Cloud 66 saying it is already being cancelled is no failure."""
    import dataclasses

    named = dataclasses.replace(said, cancelled_id=deployment_id)
    try:
        message = client.cancel(stack.uid, deployment_id)
    except Conflict:
        return dataclasses.replace(named, result=CancelResult.ALREADY_CANCELLING)
    if "already" in message.casefold():
        return dataclasses.replace(named, result=CancelResult.ALREADY_CANCELLING)
    return named


# -- history ---------------------------------------------------------------

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
    """succeeded, failed, cancelled or running, from the outcome's meaning (any case)."""
    if deployment.is_deploying:
        return "running"
    meaning = deployment.outcome.strip().casefold()
    return _STATES.get(meaning, meaning or "unknown")


def history(client: Client, request: HistoryRequest, hints: StackHints | None = None) -> History:
    """The stack's newest deployments, newest first, whatever order Cloud 66 lists them in."""
    stack = find_stack(client, request.stack, request.environment, hints)
    every = client.deployments(stack.uid)  # every page: the order is undocumented
    newest = sorted(every, key=newest_first)[: max(1, request.limit)]
    requesters = _igor_requesters(client, stack)
    chosen = [PastDeployment(d, requesters.get(d.id)) for d in newest]
    return History(stack, chosen, len(every))


def newest_first(deployment: Deployment) -> tuple[float, int, str]:
    """A sort key: the newest deployment first (by start, then by id)."""
    started = deployment.started_at.timestamp() if deployment.started_at else float("inf")
    number = int(deployment.id) if deployment.id.isdigit() else 0
    return (-started, -number, deployment.id)


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


def _igor_requesters(client: Client, stack: Stack) -> dict[str, Requester]:
    """Which deployments igor started, and for whom, where Cloud 66's actions say so.

    Unconfirmed: that an async action's metadata names its `deployment_id` (the
    sandbox's does); without it every deployment shows Cloud 66's own words.
    """
    found: dict[str, Requester] = {}
    for action in client.actions(stack.uid):
        requester = Requester.from_reference(action.user_reference)
        if requester is not None and action.deployment_id:
            found[action.deployment_id] = requester
    return found


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


def follow(
    client: Client,
    stack_uid: str,
    action_id: str,
    policy: FollowPolicy | None = None,
    loops: Callable[[], int] = lambda: 1,
    already: float = 0.0,
    behind: str = "",
) -> Iterator[Progress]:
    """Yield progress until the deploy's async action finishes or the timeout passes.

    Throttling, outages and a passing 404 (after the client's own retries) only
    slow the polling down; a rejected token, or `give_up_after` failures in a
    row, end it. `already`: seconds the deployment ran before igor started watching.
    `behind`: the deployment a queued deploy waits behind; looked at (one GET) with
    each look until it is over, so progress says when the wait ends.
    """
    policy = policy or FollowPolicy()
    started = policy.clock() - max(0.0, already)
    delay = policy.interval_for(loops())
    failures = 0
    waiting = bool(behind)
    named = ""  # its deployment's id, once an answer names it
    while True:
        try:
            action = client.action(stack_uid, action_id)
        except (Throttled, Unreachable, ApiError, NotFound):
            failures += 1
            if failures >= policy.give_up_after:
                raise
            action = None
            delay = min(policy.max_backoff, delay * 2)
        elapsed = policy.clock() - started
        if action is not None:
            failures = 0
            remaining = getattr(client, "rate_remaining", None)
            delay = policy.interval_for(loops(), remaining, elapsed)
        if action is not None and action.finished:
            cancelled = not action.finished_success and "cancel" in action.finished_message.lower()
            yield Progress(
                _took(action, elapsed),
                True,
                bool(action.finished_success),
                action.finished_message,
                cancelled=cancelled,
                deployment_id=action.deployment_id,
            )
            return
        named = action.deployment_id if action is not None and action.deployment_id else named
        if elapsed - already >= policy.timeout:
            yield Progress(elapsed, False, None, "still running", timed_out=True)
            return
        if waiting and action is not None:
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


def _took(action: AsyncAction, watched: float) -> float:
    """How long a finished deployment took: Cloud 66's own start and end when it gives them
    (a replica that took over a follow, or a restarted bot, watched only the end of it),
    else how long igor watched it."""
    if action.started_at is None or action.finished_at is None:
        return watched
    return max(0.0, (action.finished_at - action.started_at).total_seconds())


# -- watch -----------------------------------------------------------------

TYPICAL_OF = 5  # the newest successful deployments an estimate is made from


def watch(client: Client, request: WatchRequest, hints: StackHints | None = None) -> WatchOutcome:
    """The stack's running deployment (or igor's queued deploy) to follow, with an estimate."""
    stack = find_stack(client, request.stack, request.environment, hints)
    state = live_state(client, stack)
    like = kind_of(state.live) if state.live is not None else DeployKind(True)
    typical = typical_duration(client.deployments(stack.uid), like)
    if state.live_action is not None and state.live is not None:
        return WatchOutcome(
            stack,
            state.live_action.id,
            state.live,
            state.live_requester,
            started_at=state.live.started_at,
            typical=typical,
        )
    if state.live is None and len(state.queued) == 1:
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
    if state.live is not None:
        raise IgorError(
            f"{stack.label} runs deployment {state.live.id}, but Cloud 66 does not say which "
            "action to follow for it.",
            f"Follow it in the Cloud 66 dashboard: {stack.dashboard_url}"
            if stack.dashboard_url
            else "Follow it in the Cloud 66 dashboard.",
        )
    return WatchOutcome(stack)


def following(client: Client, outcome: DeployOutcome) -> WatchOutcome:
    """What `deploy --follow` watches: the deployment igor asked for (or already runs)."""
    already = outcome.result is DeployResult.ALREADY_DEPLOYING
    queued = outcome.result is DeployResult.QUEUED
    if already and outcome.running is not None:
        like = kind_of(outcome.running)
    else:  # what this deploy asks for, through the API
        like = DeployKind(True, _names(outcome.services), outcome.profile)
    typical = typical_duration(client.deployments(outcome.stack.uid), like)
    return WatchOutcome(
        outcome.stack,
        outcome.action_id,
        outcome.running if already else None,
        outcome.started_by,
        queued=queued,
        started_at=outcome.started_at,
        typical=typical,
        behind=outcome.running.id if queued and outcome.running is not None else "",
    )


def seconds_running(outcome: DeployOutcome | WatchOutcome, now: datetime) -> float:
    """How long the followed deployment has run already (0 when igor just asked for it)."""
    if outcome.started_at is None:
        return 0.0
    return max(0.0, (now - outcome.started_at).total_seconds())


@dataclass(frozen=True)
class DeployKind:
    """What makes two deployments' durations comparable: asked through the API (igor,
    a hook, cx) or not (the dashboard, which may build first), the services deployed
    (one service of a docker stack deploys faster than all of them), the profile."""

    api: bool
    services: frozenset[str] = frozenset()
    profile: str = ""


def kind_of(deployment: Deployment) -> DeployKind:
    """The kind of a deployment Cloud 66 lists."""
    api = deployment.triggered_via.casefold() == "api"
    return DeployKind(api, _names(deployment.services), deployment.deployment_profile)


def _names(services: Sequence[str]) -> frozenset[str]:
    return frozenset(s.split(":", 1)[0].strip().casefold() for s in services if s.strip())


def typical_duration(
    deployments: Sequence[Deployment], like: DeployKind | None = None
) -> float | None:
    """How long the stack's newest successful deployments of this kind took (the median);
    None when none did: no estimate rather than one made from other kinds."""
    import statistics

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
    return statistics.median(seconds) if seconds else None


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
    recent = recent_deployments(run.env)
    return list_stacks(run.connect(), request.stack, request.environment, recent=recent)


@performs(DeployRequest)
def _deploy_action(run: Run, request: DeployRequest) -> DeployOutcome:
    locks = run.env.stack_lock if run.env is not None else None
    return deploy(run.connect(), request, run.origin, run.hints, locks, run.target)


@performs(CancelRequest)
def _cancel_action(run: Run, request: CancelRequest) -> CancelOutcome:
    return cancel(run.connect(), request, run.hints)


@performs(HistoryRequest)
def _history_action(run: Run, request: HistoryRequest) -> History:
    return history(run.connect(), request, run.hints)


@performs(WatchRequest)
def _watch_action(run: Run, request: WatchRequest) -> WatchOutcome:
    return watch(run.connect(), request, run.hints)


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
