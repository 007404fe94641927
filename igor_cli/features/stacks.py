"""`igor list`: your stacks, their status and health, and what their deployments say.

The listing is one request (every page); up to DEPLOY_FACTS_LIMIT stacks (or
WIDE_MAX_STACKS with --wide) their newest deployments are read too, at once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from igor_cli.cli import EnvironmentName, Json, command, complete_stacks
from igor_cli.cloud66.models import Deployment, Stack, StackHealth, StackStatus
from igor_cli.core.request import Outcome, Read
from igor_cli.errors import ApiError, Throttled, Unreachable
from igor_cli.render.said import Cell, Column, Table, brief_who, joined
from igor_cli.render.sentences import deployment_mark, short_ago

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.core.run import Run
    from igor_cli.identity import Person
    from igor_cli.render.said import Mark, Said, Step, Words

COMMANDS = {"list": ("get", "show", "find", "stacks")}

# -- the command ---------------------------------------------------------------------

StackFilter = Annotated[
    str | None,
    typer.Option(
        "-s", "--stack", metavar="TEXT",
        help="Only stacks whose name contains TEXT (any case); -s may be left out.",
        autocompletion=complete_stacks,
    ),
]  # fmt: skip
Wide = Annotated[
    bool,
    typer.Option(
        "--wide", help="Also show what each stack runs (one more request per stack; at most 50)."
    ),
]


@command(
    "list",
    chat=True,
    examples=("igor list", "igor list -e production", "igor list shop --json", "igor list --wide"),
)
def list_command(
    stack: StackFilter = None,
    environment: EnvironmentName = None,
    wide: Wide = False,
    as_json: Json = None,
) -> ListRequest:
    """List your stacks: status, health and last activity."""
    return ListRequest(stack, environment, wide=wide, as_json=as_json)


# -- the request ---------------------------------------------------------------------


@dataclass(frozen=True)
class ListRequest(Read):
    """`igor list`."""

    needs_cloud66: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = (
        "uid", "name", "environment", "status", "status_text", "health", "health_text", "busy",
        "maintenance_mode", "last_activity", "dashboard_url", "deployments_read",
        "live_deployment", "last_deploy", "running",
    )  # fmt: skip

    stack: str | None = None
    environment: str | None = None
    wide: bool = False  # with what each stack runs (one deployments list per stack shown)

    def act(self, run: Run) -> StackList:
        """The stacks that match, and what their deployments say."""
        if self.wide:
            return list_wide(run.connect(), self)
        return list_stacks(run.connect(), self.stack, self.environment)


# -- the outcome and its words --------------------------------------------------------


@dataclass(frozen=True)
class StackDeploys:
    """What a stack's deployments say for `igor list`: the live one and the last one over."""

    live: Deployment | None = None
    live_by: Person | None = None  # igor's requester of the live one, when it is igor's
    last: Deployment | None = None  # the newest finished deployment
    last_by: Person | None = None

    @property
    def last_state(self) -> str:
        """succeeded, failed or cancelled ("" with no finished deployment)."""
        from igor_cli.cloud66.activity import deployment_state

        return deployment_state(self.last) if self.last is not None else ""


@dataclass(frozen=True)
class StackList(Outcome):
    """The stacks that matched `igor list`."""

    stacks: list[Stack]
    stack_filter: str | None = None
    environment: str | None = None
    # `--wide`: what each stack runs (its live deployment; None when it has none), by uid.
    running: dict[str, Deployment | None] | None = None
    # Per stack uid, when the deployments were read (not past DEPLOY_FACTS_LIMIT stacks).
    deploy_facts: dict[str, StackDeploys] = field(default_factory=dict)
    unread: str = ""  # why the deployments could not be read, when they could not

    @property
    def deploys_read(self) -> bool:
        """Whether the deployments of the listed stacks were read (LAST DEPLOY)."""
        return len(self.deploy_facts) == len(self.stacks)

    def last_activity(self, stack: Stack) -> datetime | None:
        """The stack's last activity, moved on by a deployment that started or ended since."""
        return last_activity(stack, self.deploy_facts.get(stack.uid))

    def said(self, now: datetime) -> Said:
        """The stacks table (its caption: `3 stacks`), or why there are none; what LAST
        DEPLOY does not say, as a hint."""
        from igor_cli.render.said import Hint, Said

        table = stack_table(self, now)
        if not self.stacks:
            return Said(list_summary(self), table)
        hints: tuple[Hint, ...] = ()
        if self.unread:
            hints = (Hint(f"LAST DEPLOY could not be read: {self.unread}"),)
        elif not self.deploys_read:
            hints = (
                Hint(
                    f"LAST DEPLOY is read for up to {DEPLOY_FACTS_LIMIT} stacks; "
                    "narrow the list with -s or -e to see it."
                ),
            )
        return Said("", table, hints)

    def facts(self) -> Any:
        """Each stack, as igor's JSON has it."""
        return list(self.each_fact())

    def streamed_facts(self) -> Iterator[dict[str, Any]]:
        """See `Outcome.streamed_facts`."""
        return self.each_fact()

    def each_fact(self) -> Iterator[dict[str, Any]]:
        """Each stack as igor's JSON has it, made one at a time (a big account's, streamed)."""
        for stack in self.stacks:
            yield stack_json(stack, self.running, self.deploy_facts.get(stack.uid))


def status_label(stack: Stack) -> str:
    """`Deployed successfully`, or `... (busy)` when busy with something the status hides."""
    shown_busy = stack.status in (StackStatus.DEPLOYING, StackStatus.QUEUED)
    said = stack.status.text + (" (busy)" if stack.is_busy and not shown_busy else "")
    return said + (" (maintenance mode)" if stack.maintenance_mode else "")


STACK_COLUMNS: tuple[Column, ...] = (
    Column("NAME"), Column("ENVIRONMENT", "ENV"), Column("STATUS"), Column("HEALTH"),
    Column("LAST ACTIVITY", "ACTIVITY"), Column("LAST DEPLOY", "DEPLOY", floor=10),
)  # fmt: skip
RUNNING_COLUMN = Column("RUNNING")  # `list --wide`

# How a stack's status and health read at a glance.
STATUS_MARKS: dict[StackStatus, Mark] = {
    StackStatus.DEPLOYED: "good", StackStatus.DEPLOY_FAILED: "bad",
    StackStatus.UNABLE_TO_ANALYZE: "bad", StackStatus.QUEUED: "caution",
    StackStatus.DEPLOYING: "caution", StackStatus.ANALYZING: "busy",
    StackStatus.PENDING_ANALYSIS: "busy",
}  # fmt: skip
HEALTH_MARKS: dict[StackHealth, Mark] = {
    StackHealth.HEALTHY: "good", StackHealth.IMPAIRED: "caution", StackHealth.FAILED: "bad",
    StackHealth.BUILDING: "busy", StackHealth.UNKNOWN: "faint",
}  # fmt: skip


def stack_table(listing: StackList, now: datetime) -> Table:
    """The stacks table (`RUNNING` with --wide; LAST DEPLOY when the deployments were
    read), and how it gives way on a narrow screen: NAME, ENVIRONMENT and RUNNING (what
    `--ref`/`-v` would name) are never cut."""
    running, known = listing.running, listing.deploy_facts
    rows: list[tuple[Words | Cell, ...]] = []
    for s in listing.stacks:
        seen = known.get(s.uid)
        row = (
            s.name,
            s.environment,
            Cell(status_label(s), short_status(s), STATUS_MARKS.get(s.status, "")),
            Cell(s.health.text, mark=HEALTH_MARKS[s.health]),
            short_ago(last_activity(s, seen), now),
            # Not read (a long list): `-`, as it is, a cell of a 10,000-row list made in a blink.
            Cell(
                last_deploy(seen, now),
                last_deploy(seen, now, who=False),
                deployment_mark(_last_state(seen)),
            )
            if seen is not None
            else "-",
        )
        rows.append((*row, running_text(running.get(s.uid))) if running is not None else row)
    columns = (*STACK_COLUMNS, RUNNING_COLUMN) if running is not None else STACK_COLUMNS
    names = tuple(s.label for s in listing.stacks)
    narrow = "Narrow the list with `-s` or `-e`."
    return Table(columns, rows, STACK_GIVES_WAY, list_summary(listing), names, narrow)


def _last_state(facts: StackDeploys) -> str:
    """How LAST DEPLOY begins: running, succeeded, failed, ... ("" when it says nothing)."""
    if facts.live is not None:
        return "running"
    return facts.last_state.split(" ", 1)[0] if facts.last is not None else ""


def running_text(deployment: Deployment | None) -> str:
    """What a stack runs, for `list --wide`: `3f2a1c9 main`, image tags, or `-`."""
    from igor_cli.render.sentences import what_ran

    return what_ran(deployment) if deployment is not None else "-"


def last_deploy(facts: StackDeploys | None, now: datetime, *, who: bool = True) -> Words:
    """`failed · alice 3m ago`: the deployment under way, or how the last one ended
    (`failed 3m ago` without `who`, for a narrow screen); who, as briefly as says who."""
    if facts is None:
        return "-"  # not read (a long list)
    if facts.live is not None:
        state, deployment, requester = "running", facts.live, facts.live_by
        moment = deployment.started_at
    elif facts.last is not None:
        state, deployment, requester = facts.last_state, facts.last, facts.last_by
        moment = deployment.finished_at
    else:
        return "none"
    if not who:
        return f"{state} {short_ago(moment, now)}"
    by = brief_who(requester, deployment.triggered_by)
    return joined(f"{state} · ", by, f" {short_ago(moment, now)}")


# LAST DEPLOY outlasts the rest: it says how the stack is and who last touched it
# (STATUS mostly repeats it); cut, it keeps its first word (succeeded, failed, ...).
STACK_GIVES_WAY: tuple[Step, ...] = (
    ("headers", ""), ("shorten", "STATUS"), ("drop", "LAST ACTIVITY"),
    ("shorten", "LAST DEPLOY"), ("drop", "HEALTH"), ("drop", "STATUS"),
    ("cut", "LAST DEPLOY"), ("drop", "LAST DEPLOY"),
)  # fmt: skip


_SHORT_STATUS = {
    StackStatus.PENDING_ANALYSIS: "pending",
    StackStatus.DEPLOYED: "deployed",
    StackStatus.DEPLOY_FAILED: "failed",
    StackStatus.ANALYZING: "analyzing",
    StackStatus.ANALYZED: "analyzed",
    StackStatus.QUEUED: "queued",
    StackStatus.DEPLOYING: "deploying",
    StackStatus.UNABLE_TO_ANALYZE: "unanalyzable",
}


def short_status(stack: Stack) -> str:
    """`deployed`, `failed`, `deploying`, ...; `busy` when busy with what the status hides."""
    if stack.is_busy and stack.status not in (StackStatus.DEPLOYING, StackStatus.QUEUED):
        said = "busy"
    else:
        said = _SHORT_STATUS.get(stack.status, stack.status.text.lower())
    return f"{said}, maintenance" if stack.maintenance_mode else said


def list_summary(stacks: StackList) -> str:
    """`3 stacks` or why there are none."""
    if stacks.stacks:
        count = len(stacks.stacks)
        return f"{count} stack{'s' if count != 1 else ''}"
    filters = []
    if stacks.stack_filter:
        filters.append(f"named like {stacks.stack_filter!r}")
    if stacks.environment:
        filters.append(f"in {stacks.environment!r}")
    return "No stacks" + (" " + " ".join(filters) if filters else "") + "."


def stack_json(
    stack: Stack,
    running: dict[str, Deployment | None] | None = None,
    facts: StackDeploys | None = None,
) -> dict[str, Any]:
    """A stack in igor's JSON output: with `running` from `list --wide`, and its
    deployments when they were read."""
    from igor_cli.render.sentences import ran_json

    moved = last_activity(stack, facts)
    shown = {
        "uid": stack.uid,
        "name": stack.name,
        "environment": stack.environment,
        "status": int(stack.status),
        "status_text": stack.status.text,
        "health": int(stack.health),
        "health_text": stack.health.text,
        "busy": stack.busy or (facts is not None and facts.live is not None),
        "maintenance_mode": stack.maintenance_mode,
        "last_activity": moved.isoformat() if moved else None,
        "dashboard_url": stack.dashboard_url or None,
        "deployments_read": facts is not None,
        "live_deployment": None,
        "last_deploy": None,
    }
    if facts is not None and facts.live is not None:
        shown["live_deployment"] = _deployment_json(facts.live, facts.live_by)
    if facts is not None and facts.last is not None:
        shown["last_deploy"] = _deployment_json(facts.last, facts.last_by)
    if running is not None:
        live = running.get(stack.uid)
        shown["running"] = None if live is None else ran_json(live)
    return shown


def _deployment_json(deployment: Deployment, requester: Person | None) -> dict[str, Any]:
    from igor_cli.cloud66.activity import deployment_state
    from igor_cli.render.sentences import cloud66_id

    return {
        "id": cloud66_id(deployment.id),
        "outcome": deployment_state(deployment),
        "triggered_by": deployment.triggered_by,
        "triggered_via": deployment.triggered_via or None,
        "igor": requester.facts() if requester else None,
        "started_at": deployment.started_at.isoformat() if deployment.started_at else None,
        "finished_at": deployment.finished_at.isoformat() if deployment.finished_at else None,
    }


# -- the action ---------------------------------------------------------------------


def last_activity(stack: Stack, facts: StackDeploys | None) -> datetime | None:
    """The stack's `last_activity`, or later: when its running deployment started or its
    last one ended (Cloud 66 may not count a start as activity)."""
    moments = [stack.last_activity]
    if facts is not None:
        moments.append(facts.live.started_at if facts.live else None)
        moments.append(facts.last.finished_at if facts.last else None)
    known = [m for m in moments if m is not None]
    return max(known) if known else None


# LAST DEPLOY costs a request or two per stack: read for a screenful of stacks at
# most (a token has 3,000 requests an hour), and never for the thousand-stack listing.
DEPLOY_FACTS_LIMIT = 20


def list_stacks(
    client: Cloud66Client,
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
        from igor_cli.cloud66.at_once import at_once

        # Only the stacks that read their actions go to the process's reader threads, at
        # once; the others' facts are worked out here (a thread is no help without a read,
        # nor with actions another command read moments ago).
        reading = [
            s for s in chosen
            if _reads_actions(*_live_and_last(every[s.uid])) and not client.actions_at_hand(s.uid)
        ]  # fmt: skip
        found = (
            at_once(*(functools.partial(stack_deploys, client, s, every[s.uid]) for s in reading))
            if reading
            else []
        )
        with_reads = {s.uid: facts for s, facts in zip(reading, found, strict=True)}
        deploys = {s.uid: with_reads.get(s.uid) or stack_deploys(client, s, every[s.uid])
                   for s in chosen}  # fmt: skip
    running = _running(client, chosen, every) if wide else None
    return StackList(
        chosen, stack, environment, running=running, deploy_facts=deploys, unread=unread
    )


def _running(
    client: Cloud66Client, stacks: Sequence[Stack], every: Mapping[str, Sequence[Deployment]]
) -> dict[str, Deployment | None]:
    """What each stack runs: its live deployment, and on a docker stack the image tags its
    services run (a deployment shows none)."""
    from igor_cli.cloud66.activity import live_deployment, runs_now

    return {
        s.uid: runs_now(client, s, live_deployment(every[s.uid])) for s in stacks if s.uid in every
    }


def _runs_a_success(deployments: Sequence[Deployment]) -> bool:
    """Enough read to tell what a stack runs: Cloud 66's live one, or a success."""
    from igor_cli.cloud66.activity import deployment_state

    return any(d.is_live or deployment_state(d) == "succeeded" for d in deployments)


def stack_deploys(client: Cloud66Client, stack: Stack, every: Sequence[Deployment]) -> StackDeploys:
    """The stack's running deployment and its newest finished one, and who asked for each.

    igor's actions (its requesters) are read only when one of the two may have come
    through the API, the way igor deploys.
    """
    from igor_cli.cloud66.activity import igor_requesters

    live, last = _live_and_last(every)
    if not _reads_actions(live, last):
        return StackDeploys(live, None, last, None)
    shown = [d for d in (live, last) if d is not None]
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


def _live_and_last(every: Sequence[Deployment]) -> tuple[Deployment | None, Deployment | None]:
    """The running deployment and the newest finished one, of a stack's newest."""
    from igor_cli.cloud66.activity import newest_first, running_deployment

    finished = [d for d in every if not d.is_deploying and d.finished_at is not None]
    return running_deployment(every), min(finished, key=newest_first, default=None)


def _reads_actions(live: Deployment | None, last: Deployment | None) -> bool:
    """Whether `stack_deploys` reads the stack's actions: when a deployment it shows may
    have come through the API (Cloud 66 names no requester for those; igor's actions do)."""
    return any(d is not None and d.via_api is not False for d in (live, last))


WIDE_MAX_STACKS = 50  # `list --wide` reads one deployments list per stack: at most this many


def list_wide(client: Cloud66Client, request: ListRequest) -> StackList:
    """`list --wide`: the stacks and what each runs, from one deployments list per stack."""
    return list_stacks(client, request.stack, request.environment, wide=True)
