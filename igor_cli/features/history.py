"""`igor history`: a stack's deployments, newest first: outcome, who, how, and what ran.

Only as many pages as the limit needs are read, whatever order Cloud 66 lists them
in; who asked igor for each, and what igor sent, come from igor's actions and its
own records (cloud66/activity.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from igor_cli.cli import EnvironmentName, Json, StackName, command
from igor_cli.core.request import OnAStack, Outcome, Read
from igor_cli.errors import IgorError
from igor_cli.render.said import Column

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import StackHints
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Deployment, Stack
    from igor_cli.core.run import Run
    from igor_cli.identity import Person
    from igor_cli.render.said import Cell, Said, Step, Table, Words
    from igor_cli.state.deployed import Deployed, Ledger

COMMANDS = {"history": ("deployments",)}

# -- the command ---------------------------------------------------------------------

Count = Annotated[
    int,
    typer.Option(
        "-n", "--limit", metavar="N", min=1, show_default=False,
        help="Show the N newest deployments (default 10).",
    ),
]  # fmt: skip


@command(
    "history",
    chat=True,
    examples=("igor history shop -e production", "igor history -s blog -n 30 --json"),
)
def history_command(
    stack: StackName,
    environment: EnvironmentName = None,
    limit: Count = 10,
    as_json: Json = None,
) -> HistoryRequest:
    """Show the stack's deployments, newest first: outcome, who, how, and what ran."""
    return HistoryRequest(stack=stack, environment=environment, limit=limit, as_json=as_json)


# -- the request ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HistoryRequest(Read, OnAStack):
    """`igor history`."""

    needs_cloud66: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = (
        "id", "started_at", "finished_at", "duration_seconds", "outcome", "outcome_text",
        "triggered_by", "triggered_via", "igor", "git_hash", "git_ref", "services",
        "deployment_profile", "deploy_type", "is_live",
    )  # fmt: skip

    limit: int = 10

    def act(self, run: Run) -> History:
        """The stack's newest deployments, and who asked igor for each."""
        return history(run.connect(), self, run.hints, run.ledger())


# -- the outcome and its words --------------------------------------------------------


@dataclass(frozen=True)
class PastDeployment:
    """One line of `igor history`: a deployment, and who asked igor for it when igor knows."""

    deployment: Deployment
    requester: Person | None = None  # igor's requester, read from its user_reference

    @property
    def state(self) -> str:
        """succeeded, failed, cancelled or running (Cloud 66's own word when it is none)."""
        from igor_cli.cloud66.activity import deployment_state

        return deployment_state(self.deployment)


@dataclass(frozen=True)
class History(Outcome):
    """The newest deployments of a stack, newest first."""

    stack: Stack
    deployments: list[PastDeployment]
    total: int  # how many Cloud 66 holds, across every page

    def said(self, now: datetime) -> Said:
        """`shop (production): the 10 newest of 45 deployments; 5120 is live.`, over the
        deployments table."""
        from igor_cli.render.said import Said

        return Said(history_summary(self), history_table(self, now))

    def facts(self) -> Any:
        """Each deployment, as `igor history --json` has it."""
        return [history_json(past) for past in self.deployments]


def how_triggered(past: PastDeployment) -> str:
    """`igor (shell)`, `igor (Slack)`, or Cloud 66's own word: `Web`, `API`, `Hook`."""
    if past.requester is not None:
        return f"igor ({past.requester.where})"
    return past.deployment.triggered_via or "unknown"


def took(past: PastDeployment, now: datetime) -> str:
    """How long it took (`3m 05s`), how long so far when running, `-` when unknown."""
    from igor_cli.render.sentences import duration

    d = past.deployment
    if d.started_at is None:
        return "-"
    if d.finished_at is None:
        so_far = duration(max(0.0, (now - d.started_at).total_seconds()))
        return f"{so_far} so far" if d.is_deploying else "-"
    return duration(max(0.0, (d.finished_at - d.started_at).total_seconds()))


def outcome_word(past: PastDeployment) -> str:
    """`succeeded`, `failed`, ...; `succeeded (live)` for the deployment that runs now."""
    return past.state + (" (live)" if past.deployment.is_live else "")


HISTORY_COLUMNS = (
    Column("ID"), Column("STARTED"), Column("TOOK"), Column("OUTCOME", floor=9), Column("BY"),
    Column("VIA"), Column("WHAT"),
)  # fmt: skip


def history_row(past: PastDeployment, now: datetime) -> tuple[Words | Cell, ...]:
    """One deployment, as the history table shows it: who by the name igor knows them by
    (briefly on a narrow screen), else as Cloud 66 names them."""
    from igor_cli.render.said import Cell, brief_who, who
    from igor_cli.render.sentences import deployment_mark, short_ago, what_ran

    d = past.deployment
    mark = deployment_mark(past.state)
    return (
        d.id,
        short_ago(d.started_at, now),
        took(past, now),
        # The deployment that runs now stands out (green when its state has no colour).
        Cell(outcome_word(past), mark=mark or "good", strong=True) if d.is_live
        else Cell(outcome_word(past), mark=mark),
        Cell(who(past.requester, d.triggered_by), brief_who(past.requester, d.triggered_by)),
        how_triggered(past),
        what_ran(d),
    )  # fmt: skip


def history_table(found: History, now: datetime) -> Table:
    """The history table, and how it gives way: ID and WHAT (what `--to` and `--ref`
    take) are never cut."""
    from igor_cli.render.said import Table

    rows = [history_row(past, now) for past in found.deployments]
    return Table(HISTORY_COLUMNS, rows, HISTORY_GIVES_WAY)


HISTORY_GIVES_WAY: tuple[Step, ...] = (
    ("shorten", "BY"), ("drop", "VIA"), ("drop", "TOOK"), ("drop", "BY"), ("drop", "STARTED"),
    ("cut", "OUTCOME"),
)  # fmt: skip


def history_summary(found: History) -> str:
    """`shop (production): the 10 newest of 45 deployments; 5120 is live.`"""
    stack = found.stack.label
    if not found.deployments:
        return f"{stack} has no deployments yet."
    shown = len(found.deployments)
    count = f"{found.total} deployment{'s' if found.total != 1 else ''}"
    said = (
        f"{stack}: {count}" if shown == found.total else f"{stack}: the {shown} newest of {count}"
    )
    live = next((p.deployment.id for p in found.deployments if p.deployment.is_live), None)
    return said + (f"; deployment {live} is live." if live else ".")


def history_json(past: PastDeployment) -> dict[str, Any]:
    """A deployment in `igor history --json`."""
    from igor_cli.render.sentences import cloud66_id

    d = past.deployment
    seconds = None
    if d.started_at is not None and d.finished_at is not None:
        seconds = round((d.finished_at - d.started_at).total_seconds(), 1)
    requester = past.requester
    return {
        "id": cloud66_id(d.id),
        "started_at": d.started_at.isoformat() if d.started_at else None,
        "finished_at": d.finished_at.isoformat() if d.finished_at else None,
        "duration_seconds": seconds,
        "outcome": past.state,
        "outcome_text": d.outcome,
        "triggered_by": d.triggered_by,
        "triggered_via": d.triggered_via,
        "igor": requester.facts() if requester else None,
        "git_hash": d.git_hash or None,
        "git_ref": d.git_ref or None,
        "services": list(d.services),
        "deployment_profile": d.deployment_profile or None,
        "deploy_type": d.deploy_type or None,
        "is_live": d.is_live,
    }


# -- the action ---------------------------------------------------------------------


HISTORY_MAX_PAGES = 10  # `history -n` shows at most this many pages' worth (300)


def history(
    client: Cloud66Client,
    request: HistoryRequest,
    hints: StackHints | None = None,
    ledger: Ledger | None = None,
) -> History:
    """The stack's newest deployments, newest first, whatever order Cloud 66 lists them in:
    only as many pages as the limit needs are read."""
    from igor_cli.cloud66.activity import actions_since, igor_requesters, with_what_igor_sent
    from igor_cli.cloud66.paging import PER_PAGE
    from igor_cli.core.resolve import find_stack

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
