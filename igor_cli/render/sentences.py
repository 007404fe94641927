"""The words igor says about an outcome, shared by the terminal and Slack.

Both renderers state the same facts; only the decoration differs (colour in a
terminal, mrkdwn and mentions in Slack). Callers pass `person` to name people
their own way.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from igor_cli.actions import (
    CancelOutcome,
    CancelResult,
    CancelTarget,
    DeployOutcome,
    DeployResult,
    History,
    PastDeployment,
    Progress,
    QueuedDeploy,
    Requester,
    StackDeploys,
    StackList,
    VersionOutcome,
    WatchOutcome,
    WhoamiOutcome,
    deployment_state,
    last_activity,
)
from igor_cli.cloud66.models import Deployment, Stack, StackStatus
from igor_cli.releases import PromoteOutcome, RollbackOutcome, short
from igor_cli.render.table import Step, Table

if TYPE_CHECKING:
    from igor_cli.freeze import Window
    from igor_cli.locks import LockList, LockOutcome, UnlockOutcome
    from igor_cli.state.locks import Lock

PersonNamer = Callable[[Requester], str]


def plain_person(requester: Requester) -> str:
    """How the terminal names who asked: `alice@laptop`, `Slack user U123`."""
    if requester.via == "slack":
        return f"Slack user {requester.user}"
    return requester.user or "someone"


def ago(then: datetime | None, now: datetime) -> str:
    """`just now`, `5 minutes ago`, `3 days ago`; `never` for no time."""
    if then is None:
        return "never"
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now" if seconds < 10 else f"{seconds} seconds ago"


def short_ago(then: datetime | None, now: datetime) -> str:
    """`just now`, `12m ago`, `5h ago`, `3d ago`; `never` for no time (table cells)."""
    if then is None:
        return "never"
    seconds = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now" if seconds < 10 else f"{seconds}s ago"


def duration(seconds: float) -> str:
    """`42s`, `3m 05s`."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    return f"{whole // 60}m {whole % 60:02d}s"


def _services(services: tuple[str, ...]) -> str:
    return f" (services {', '.join(services)})" if services else ""


def _target(outcome: DeployOutcome) -> str:
    """` (services a, b; ref v1.2; profile quick)`: what the deploy names beyond the stack."""
    parts = [f"services {', '.join(outcome.services)}"] if outcome.services else []
    if outcome.ref:
        parts.append(f"ref {outcome.ref}")
    if outcome.profile:
        parts.append(f"profile {outcome.profile}")
    return f" ({'; '.join(parts)})" if parts else ""


def _running_by(outcome: DeployOutcome, person: PersonNamer, now: datetime) -> str:
    if outcome.started_by is not None:
        when = ago(outcome.started_at, now)
        return f"started by {person(outcome.started_by)} {when}"
    if outcome.running is not None:
        running = outcome.running
        via = f" via {running.triggered_via}" if running.triggered_via else ""
        return f"started by {running.triggered_by}{via} {ago(running.started_at, now)}"
    return "started outside igor"


def _unfollowable(outcome: DeployOutcome) -> str:
    """Said of a posted deploy with nothing to follow (the 2020 answer names no action)."""
    if outcome.action_id:
        return ""
    return (
        " Cloud 66 named no action to follow and no deployment of it has started yet: "
        f"`igor watch {target_words(outcome.stack)}` follows it once it runs."
    )


def deploy_sentence(outcome: DeployOutcome, person: PersonNamer, now: datetime) -> str:
    """One sentence: what the deploy request came to."""
    stack = outcome.stack.label
    services = _target(outcome)
    result = outcome.result
    if result is DeployResult.STARTED:
        return f"Deploy started: {stack}{services}.{_unfollowable(outcome)}"
    if result is DeployResult.QUEUED:
        return (
            f"{stack} is busy with a deployment {_running_by(outcome, person, now)}; "
            f"this deploy{services} is queued behind the running deployment."
            f"{_unfollowable(outcome)}"
        )
    if result is DeployResult.ALREADY_DEPLOYING:
        running = _running_by(outcome, person, now)
        return f"{stack} is already deploying, {running}. Nothing was posted."
    if result is DeployResult.BUSY_NOT_QUEUED:
        return (
            f"{stack} is busy, not queued: a deployment {_running_by(outcome, person, now)} "
            "is running and -w false asked not to queue. Nothing was posted."
        )
    if result is DeployResult.WOULD_QUEUE:
        return (
            f"Dry run: {stack} is busy (a deployment {_running_by(outcome, person, now)}); "
            f"a deploy{services} would be queued behind it. Nothing was posted."
        )
    return f"Dry run: a deploy of {stack}{services} would start now. Nothing was posted."


def cancel_sentence(outcome: CancelOutcome, person: PersonNamer, now: datetime) -> str:
    """One sentence: what the cancel request came to, naming the deployment and who started it."""
    stack = outcome.stack.label
    if outcome.result is CancelResult.CHOOSE:
        return _choose_sentence(outcome, person, now)
    if outcome.result is CancelResult.NOTHING_TO_CANCEL:
        said = f"{stack} is not deploying, nothing to cancel."
        if outcome.asked is CancelTarget.RUNNING or outcome.queued:
            said = f"{stack} has no running deployment, nothing to cancel."
        for waiting in outcome.queued:
            said += f" igor's deploy {_queued_by(waiting, person, now)} waits: {_UNCANCELLABLE}"
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
    started = f"started by {_live_by(outcome, person)} {ago(deployment.started_at, now)}"
    if outcome.result is CancelResult.ALREADY_CANCELLING:
        return f"Deployment {deployment.id} of {stack} ({started}) is already cancelling."
    return f"Cancelling deployment {deployment.id} of {stack} ({started})."


def _live_by(outcome: CancelOutcome, person: PersonNamer) -> str:
    """Who started the running deployment: igor's requester only when it is igor's for sure."""
    deployment = outcome.deployment
    assert deployment is not None
    if outcome.started_by is not None:
        return f"{person(outcome.started_by)} through igor"
    via = f" via {deployment.triggered_via}" if deployment.triggered_via else ""
    return f"{deployment.triggered_by}{via}"


def _queued_by(queued: QueuedDeploy, person: PersonNamer, now: datetime) -> str:
    who = person(queued.requester) if queued.requester else "someone"
    return f"asked for by {who} {ago(queued.action.started_at, now)}"


_UNCANCELLABLE = "Cloud 66's API cannot cancel a deploy before it starts (the dashboard can)."


def _choose_sentence(outcome: CancelOutcome, person: PersonNamer, now: datetime) -> str:
    stack = outcome.stack.label
    parts = []
    if outcome.deployment is not None:
        running = outcome.deployment
        parts.append(
            f"deployment {running.id} is running (started by {_live_by(outcome, person)} "
            f"{ago(running.started_at, now)})"
        )
    for queued in outcome.queued:
        parts.append(f"igor's deploy {_queued_by(queued, person, now)} waits behind it")
    return (
        f"On {stack}, {' and '.join(parts)}. Nothing was cancelled: say whether to cancel the "
        "running one (Cloud 66's API cannot cancel a waiting deploy; the Cloud 66 dashboard can)."
    )


def cancel_choices(outcome: CancelOutcome) -> list[tuple[str, str]]:
    """The commands (without `igor `) that settle a cancel needing a choice, and what each does."""
    if outcome.result is not CancelResult.CHOOSE or outcome.deployment is None:
        return []
    target = f"cancel {target_words(outcome.stack)}"
    return [(f"{target} --running", f"cancel deployment {outcome.deployment.id}")]


def target_words(stack: Stack) -> str:
    """`-s shop -e production`: the options that name this stack in a command."""
    name = f'"{stack.name}"' if " " in stack.name else stack.name
    env = f" -e {stack.environment}" if stack.environment else ""
    return f"-s {name}{env}"


def progress_sentence(stack: Stack, progress: Progress, what: str = "") -> str:
    """How a followed deployment is doing; `what` names it when it is more than a deploy
    (`followed_as`: `Rollback of shop (production) to 9b7e0d4`)."""
    took = duration(progress.elapsed)
    if progress.timed_out:
        return (
            f"{stack.label} is still deploying after {took}; igor stopped watching. "
            f"Check later with `igor list -s {stack.name}`."
        )
    if not progress.finished:
        return f"Deploying {stack.label}… {took}"
    said = f": {progress.message}" if progress.message else ""
    if progress.success:
        done = f"{what} succeeded" if what else f"Deployed {stack.label}"
        return f"{done} in {took}{said}."
    named = what or f"Deployment of {stack.label}"
    if progress.cancelled:
        by = (
            f"by {progress.cancelled_by}"
            if progress.cancelled_by
            else "Cloud 66 does not say by whom"
        )
        return f"{named} was cancelled ({by}) after {took}."
    return f"{named} failed after {took}{said}."


@functools.singledispatch
def followed_as(outcome: object) -> str:
    """How the last word on a followed deployment names it, when it is more than a deploy
    of what the stack is set to deploy; "" for a deploy (or a deployment `watch` found)."""
    return ""


@followed_as.register
def _rollback_followed_as(outcome: RollbackOutcome) -> str:
    return f"Rollback of {outcome.stack.label} to {short(outcome.target)}"


@followed_as.register
def _promote_followed_as(outcome: PromoteOutcome) -> str:
    source = outcome.source_stack.environment or outcome.source_stack.label
    return f"Promotion of {short(outcome.source)} from {source} to {outcome.stack.label}"


def after_failure(stack: Stack) -> list[tuple[str, str]]:
    """What to type (without `igor `) after a failed deployment, and what for."""
    target = target_words(stack)
    return [(f"history {target}", "see what ran"), (f"deploy {target}", "try again")]


def watching_line(watched: WatchOutcome, elapsed: float, last: Progress | None = None) -> str:
    """The live line while following: the state (as the last look saw it: Queued, then
    Deploying once the deployment in front is over), the time so far, what is usual."""
    queued = last.queued if last is not None else watched.queued and watched.deployment is None
    said = f"{'Queued' if queued else 'Deploying'}: {watched.stack.label}… {duration(elapsed)}"
    if watched.typical:
        usual = duration(watched.typical)
        late = "; taking longer" if elapsed > watched.typical else ""
        said += f" (usually about {usual}{late})"
    return said


def watch_sentence(outcome: WatchOutcome, person: PersonNamer, now: datetime) -> str:
    """What `watch` attached to (or why there is nothing to watch)."""
    stack = outcome.stack.label
    if not outcome.followable:
        return f"{stack} is not deploying, nothing to watch."
    if outcome.deployment is None:
        who = person(outcome.started_by) if outcome.started_by else "someone"
        return (
            f"Watching igor's deploy of {stack} asked for by {who} {ago(outcome.started_at, now)}."
        )
    running = outcome.deployment
    who = (
        f"{person(outcome.started_by)} through igor" if outcome.started_by else running.triggered_by
    )
    return (
        f"Watching deployment {running.id} of {stack} "
        f"(started by {who} {ago(running.started_at, now)})."
    )


def progress_step(stack: Stack, progress: Progress) -> str:
    """How a followed deployment is doing, to the minute (a chat message edited as it goes)."""
    minutes = int(progress.elapsed // 60)
    so_far = "under a minute" if minutes < 1 else f"{minutes} min"
    return f"{'Queued' if progress.queued else 'Deploying'}: {stack.label}… {so_far} so far."


def stopped_sentence(stack: Stack) -> str:
    """What igor says when it stops watching a deployment that goes on."""
    return (
        f"igor stopped watching {stack.label}; the deployment goes on. "
        f"Check it with `igor list -s {stack.name}`."
    )


def status_label(stack: Stack) -> str:
    """`Deployed successfully`, or `... (busy)` when busy with something the status hides."""
    shown_busy = stack.status in (StackStatus.DEPLOYING, StackStatus.QUEUED)
    return stack.status.text + (" (busy)" if stack.is_busy and not shown_busy else "")


STACK_COLUMNS = ("NAME", "ENVIRONMENT", "STATUS", "HEALTH", "LAST ACTIVITY", "LAST DEPLOY")
RUNNING_COLUMN = "RUNNING"  # `list --wide`


def stack_rows(
    stacks: list[Stack],
    now: datetime,
    running: dict[str, Deployment | None] | None = None,
    *,
    facts: Mapping[str, StackDeploys] | None = None,
    person: PersonNamer | None = None,
) -> list[tuple[str, ...]]:
    """The stacks table, header first, as both chat renderers print it (`running`: --wide;
    `facts`: each stack's deployments, for LAST DEPLOY; `person`: how Slack users are
    named there)."""
    wide = running is not None
    known = facts or {}
    rows: list[tuple[str, ...]] = [(*STACK_COLUMNS, RUNNING_COLUMN) if wide else STACK_COLUMNS]
    for s in stacks:
        seen = known.get(s.uid)
        row = (
            s.name,
            s.environment,
            status_label(s),
            s.health.text,
            short_ago(last_activity(s, seen), now),
            last_deploy(seen, now, person=person),
        )
        rows.append((*row, running_text(running.get(s.uid))) if running is not None else row)
    return rows


def running_text(deployment: Deployment | None) -> str:
    """What a stack runs, for `list --wide`: `3f2a1c9 main`, image tags, or `-`."""
    return what_ran(PastDeployment(deployment)) if deployment is not None else "-"


def short_person(
    requester: Requester | None, triggered_by: str, person: PersonNamer | None = None
) -> str:
    """A name that fits a table cell: `alice` for alice@example.com or alice@laptop; a
    Slack user as `person` names them (their Slack name), else by ID."""
    if requester is not None:
        if person is not None and requester.via == "slack":
            return person(requester)
        return requester.user.split("@", 1)[0] or requester.user or "someone"
    return triggered_by.split("@", 1)[0] or triggered_by or "someone"


def last_deploy(
    facts: StackDeploys | None,
    now: datetime,
    *,
    who: bool = True,
    person: PersonNamer | None = None,
) -> str:
    """`failed · alice 3m ago`: the deployment under way, or how the last one ended
    (`failed 3m ago` without `who`, for a narrow screen)."""
    if facts is None:
        return "-"  # not read (a long list)
    if facts.live is not None:
        by = f" · {short_person(facts.live_by, facts.live.triggered_by, person)}" if who else ""
        return f"running{by} {short_ago(facts.live.started_at, now)}"
    if facts.last is None:
        return "none"
    by = f" · {short_person(facts.last_by, facts.last.triggered_by, person)}" if who else ""
    return f"{facts.last_state}{by} {short_ago(facts.last.finished_at, now)}"


def stack_table(
    stacks: list[Stack],
    now: datetime,
    running: dict[str, Deployment | None] | None = None,
    *,
    facts: Mapping[str, StackDeploys] | None = None,
) -> Table:
    """The stacks table, and how it gives way on a narrow screen: NAME, ENVIRONMENT and
    RUNNING (what `--ref`/`-v` would name) are never cut."""
    known = facts or {}
    rows = stack_rows(stacks, now, running, facts=facts)
    shorter = {
        "STATUS": [short_status(s) for s in stacks],
        "LAST DEPLOY": [last_deploy(known.get(s.uid), now, who=False) for s in stacks],
    }
    return Table(rows[0], rows[1:], shorter, STACK_GIVES_WAY, {"LAST DEPLOY": 10})


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
        return "busy"
    return _SHORT_STATUS.get(stack.status, stack.status.text.lower())


_WORD = re.compile(r"`[^`]*`\S*|\S+")


def wrapped(text: str, width: int, indent: int = 0) -> list[str]:
    """`text` as lines of at most `width`, broken between words, never inside a `command`.

    A command longer than a line gets a line of its own. `indent`: the room taken
    on the first line by what precedes the text (a prefix such as `Error: `).
    """
    lines: list[str] = []
    room = width - indent
    for paragraph in text.split("\n"):
        line = ""
        for word in _WORD.findall(paragraph):
            if line and len(line) + 1 + len(word) > room:
                lines.append(line)
                line, room = word, width
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
        room = width
    return lines


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


def _deployment_json(deployment: Deployment, requester: Requester | None) -> dict[str, Any]:
    return {
        "id": cloud66_id(deployment.id),
        "outcome": deployment_state(deployment),
        "triggered_by": deployment.triggered_by,
        "triggered_via": deployment.triggered_via or None,
        "igor": {"via": requester.via, "user": requester.user} if requester else None,
        "started_at": deployment.started_at.isoformat() if deployment.started_at else None,
        "finished_at": deployment.finished_at.isoformat() if deployment.finished_at else None,
    }


def cloud66_id(text: str) -> int | str | None:
    """A deployment's or an action's id as Cloud 66's JSON has it (an integer: the API
    docs' `"id":107`, the Go client's `Id int`); None for none. An id that is not a number
    (no API igor knows sends one) is kept as it came rather than lost."""
    if not text:
        return None
    return int(text) if text.isascii() and text.isdigit() else text


def ran_json(d: Deployment) -> dict[str, Any]:
    """What a deployment ran, and when, in igor's JSON output."""
    return {
        "deployment_id": cloud66_id(d.id),
        "git_hash": d.git_hash or None,
        "git_ref": d.git_ref or None,
        "services": list(d.services),
        "started_at": d.started_at.isoformat() if d.started_at else None,
        "finished_at": d.finished_at.isoformat() if d.finished_at else None,
    }


def outcome_json(outcome: DeployOutcome | CancelOutcome) -> dict[str, Any]:
    """A deploy or cancel outcome in igor's JSON output."""
    stack = {
        "uid": outcome.stack.uid,
        "name": outcome.stack.name,
        "environment": outcome.stack.environment,
    }
    requester = outcome.started_by
    started_by = {"via": requester.via, "user": requester.user} if requester else None
    if isinstance(outcome, CancelOutcome):
        deployment = outcome.deployment
        return {
            "result": outcome.result.value,
            "stack": stack,
            "cancelled": outcome.cancelled or None,
            "cancelled_deployment_id": cloud66_id(outcome.cancelled_id),
            "deployment_id": cloud66_id(deployment.id) if deployment else None,
            "triggered_by": deployment.triggered_by if deployment else None,
            "started_by": started_by,
            "queued": [
                {
                    "async_action_id": cloud66_id(q.action.id),
                    "igor": {"via": q.requester.via, "user": q.requester.user}
                    if q.requester
                    else None,
                }
                for q in outcome.queued
            ],
            "choices": [words for words, _ in cancel_choices(outcome)],
        }
    running = outcome.running
    return {
        "result": outcome.result.value,
        "stack": stack,
        "services": list(outcome.services),
        "ref": outcome.ref or None,
        "profile": outcome.profile or None,
        "posted": outcome.posted,
        "async_action_id": cloud66_id(outcome.async_action_id),
        "message": outcome.message or None,
        "running_deployment_id": cloud66_id(running.id) if running else None,
        "started_by": started_by,
    }


# -- history -----------------------------------------------------------------


def how_triggered(past: PastDeployment) -> str:
    """`igor (shell)`, `igor (Slack)`, or Cloud 66's own word: `Web`, `API`, `Hook`."""
    if past.requester is not None:
        return "igor (Slack)" if past.requester.via == "slack" else "igor (shell)"
    return past.deployment.triggered_via or "unknown"


def who_triggered(past: PastDeployment, person: PersonNamer) -> str:
    """The person igor deployed for, or whom Cloud 66 names."""
    if past.requester is not None:
        return person(past.requester)
    return past.deployment.triggered_by


def took(past: PastDeployment, now: datetime) -> str:
    """How long it took (`3m 05s`), how long so far when running, `-` when unknown."""
    d = past.deployment
    if d.started_at is None:
        return "-"
    if d.finished_at is None:
        so_far = duration(max(0.0, (now - d.started_at).total_seconds()))
        return f"{so_far} so far" if d.is_deploying else "-"
    return duration(max(0.0, (d.finished_at - d.started_at).total_seconds()))


def what_ran(past: PastDeployment) -> str:
    """`3f2a1c9 main`, or the service tags of a docker stack; `(profile x)` when one was used."""
    d = past.deployment
    if d.services:
        said = ", ".join(d.services)
    else:
        # A ref that is the commit itself (a rollback, a promotion) is not said twice.
        ref = "" if d.git_ref and d.git_hash.startswith(d.git_ref) else d.git_ref
        said = " ".join(part for part in (d.git_hash[:7], ref) if part) or "-"
    return said + (f" (profile {d.deployment_profile})" if d.deployment_profile else "")


def outcome_word(past: PastDeployment) -> str:
    """`succeeded`, `failed`, ...; `succeeded (live)` for the deployment that runs now."""
    return past.state + (" (live)" if past.deployment.is_live else "")


HISTORY_COLUMNS = ("ID", "STARTED", "TOOK", "OUTCOME", "BY", "VIA", "WHAT")


def history_row(past: PastDeployment, person: PersonNamer, now: datetime) -> tuple[str, ...]:
    """One deployment, as the history table shows it."""
    return (
        past.deployment.id,
        short_ago(past.deployment.started_at, now),
        took(past, now),
        outcome_word(past),
        who_triggered(past, person),
        how_triggered(past),
        what_ran(past),
    )


def history_rows(found: History, person: PersonNamer, now: datetime) -> list[tuple[str, ...]]:
    """The history table, header first, as both chat renderers print it."""
    return [HISTORY_COLUMNS, *(history_row(p, person, now) for p in found.deployments)]


def history_table(found: History, person: PersonNamer, now: datetime) -> Table:
    """The history table, and how it gives way: ID and WHAT (what `--to` and `--ref`
    take) are never cut."""
    rows = history_rows(found, person, now)
    shorter = {
        "BY": [short_person(p.requester, p.deployment.triggered_by) for p in found.deployments]
    }
    return Table(rows[0], rows[1:], shorter, HISTORY_GIVES_WAY, {"OUTCOME": 9})


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
        "igor": {"via": requester.via, "user": requester.user} if requester else None,
        "git_hash": d.git_hash or None,
        "git_ref": d.git_ref or None,
        "services": list(d.services),
        "deployment_profile": d.deployment_profile or None,
        "deploy_type": d.deploy_type or None,
        "is_live": d.is_live,
    }


# -- every outcome, by its type ------------------------------------------------------
#
# A new command registers its sentence, its facts (JSON) and its tone here,
# beside the others; both renderers dispatch on the outcome's type. A test checks
# that every command's outcomes have all three.


# The outcomes of the commands whose modules load only when they run (the locks)
# register with `later`, naming that module: their words are registered once it is
# loaded (no outcome of it can exist before), so that `igor list` loads none of them.
# Only for a type whose parents have no words: dispatched before its own are
# registered, it would have theirs (a rollback is a deploy), and `found_later` refuses.
_Words = TypeVar("_Words", bound=Callable[..., Any])
_WAITING: list[tuple[Any, str, Callable[..., Any]]] = []
_REGISTERING = threading.Lock()


def later(dispatcher: Any, module: str) -> Callable[[_Words], _Words]:
    """`dispatcher.register` for the outcome type that the function's first parameter
    names, a type of `module`: done by `found_later` once that module is loaded."""

    def wait(function: _Words) -> _Words:
        _WAITING.append((dispatcher, module, function))
        return function

    return wait


def found_later(dispatcher: Any, kind: type) -> Callable[..., Any] | None:
    """What `dispatcher` has for outcomes of type `kind`, the words waiting for modules
    loaded since registered first; None when it has nothing."""
    import inspect
    import sys
    import typing

    with _REGISTERING:
        for waiting in list(_WAITING):
            waiter, name, function = waiting
            module = sys.modules.get(name)
            if module is None or getattr(module.__spec__, "_initializing", False):
                continue  # no outcome of it exists yet
            first = next(iter(inspect.signature(function).parameters))
            kind_waiting = typing.get_type_hints(function, localns=vars(module))[first]
            if waiter.dispatch(kind_waiting) is not waiter.registry[object]:
                raise TypeError(
                    f"{kind_waiting.__name__} would be said with its parent's words until "
                    f"{name} is loaded: register {function.__name__} at once"
                )
            waiter.register(kind_waiting, function)
            _WAITING.remove(waiting)
    found = dispatcher.dispatch(kind)
    return None if found is dispatcher.registry[object] else found


@functools.singledispatch
def sentence(outcome: Any, person: PersonNamer, now: datetime) -> str:
    """What a command came to, in one sentence (a list: its summary)."""
    found = found_later(sentence, type(outcome))
    if found is None:
        raise NotImplementedError(f"no sentence for {type(outcome).__name__}")
    said: str = found(outcome, person, now)
    return said


@functools.singledispatch
def facts(outcome: Any) -> Any:
    """What a command came to, as igor's JSON output."""
    found = found_later(facts, type(outcome))
    if found is None:
        raise NotImplementedError(f"no facts for {type(outcome).__name__}")
    return found(outcome)


@functools.singledispatch
def tone(outcome: Any) -> str:
    """How it went, for colour and emoji: started, queued, stopping, info, refused,
    dry-run, locked, unlocked or plain."""
    found = found_later(tone, type(outcome))
    if found is None:
        raise NotImplementedError(f"no tone for {type(outcome).__name__}")
    said: str = found(outcome)
    return said


@sentence.register
def _list_sentence(outcome: StackList, person: PersonNamer, now: datetime) -> str:
    return list_summary(outcome)


@facts.register
def _list_facts(outcome: StackList) -> Any:
    return [
        stack_json(stack, outcome.running, outcome.deploy_facts.get(stack.uid))
        for stack in outcome.stacks
    ]


@tone.register
def _list_tone(outcome: StackList) -> str:
    return "plain"


@sentence.register
def _deploy_sentence(outcome: DeployOutcome, person: PersonNamer, now: datetime) -> str:
    return deploy_sentence(outcome, person, now)


@facts.register
def _deploy_facts(outcome: DeployOutcome) -> Any:
    return outcome_json(outcome)


@tone.register
def _deploy_tone(outcome: DeployOutcome) -> str:
    return {
        DeployResult.STARTED: "started",
        DeployResult.QUEUED: "queued",
        DeployResult.ALREADY_DEPLOYING: "info",
        DeployResult.BUSY_NOT_QUEUED: "refused",
    }.get(outcome.result, "dry-run")


@sentence.register
def _cancel_sentence(outcome: CancelOutcome, person: PersonNamer, now: datetime) -> str:
    return cancel_sentence(outcome, person, now)


@facts.register
def _cancel_facts(outcome: CancelOutcome) -> Any:
    return outcome_json(outcome)


@tone.register
def _cancel_tone(outcome: CancelOutcome) -> str:
    if outcome.result is CancelResult.CHOOSE:
        return "refused"
    return "stopping" if outcome.result is CancelResult.CANCELLING else "info"


@sentence.register
def _history_sentence(outcome: History, person: PersonNamer, now: datetime) -> str:
    return history_summary(outcome)


@facts.register
def _history_facts(outcome: History) -> Any:
    return [history_json(past) for past in outcome.deployments]


@tone.register
def _history_tone(outcome: History) -> str:
    return "plain"


# -- rollback and promote: a deploy, with the two sides named -------------------------


def redeploy_sentence(
    outcome: DeployOutcome, doing: str, person: PersonNamer, now: datetime
) -> str:
    """What a rollback or promotion came to; `doing` names it (`roll back shop ... from A to B`)."""
    stack = outcome.stack.label
    result = outcome.result
    running = _running_by(outcome, person, now)
    if result is DeployResult.STARTED:
        return f"Started to {doing}.{_unfollowable(outcome)}"
    if result is DeployResult.QUEUED:
        return (
            f"Queued to {doing}, behind the running deployment ({running}).{_unfollowable(outcome)}"
        )
    if result is DeployResult.ALREADY_DEPLOYING:
        return f"{stack} is already deploying, {running}. Nothing was posted."
    if result is DeployResult.BUSY_NOT_QUEUED:
        return (
            f"{stack} is busy, not queued: a deployment {running} is running and -w false "
            "asked not to queue. Nothing was posted."
        )
    if result is DeployResult.WOULD_QUEUE:
        return (
            f"Dry run: would {doing}, queued behind the running deployment ({running}). "
            "Nothing was posted."
        )
    return f"Dry run: would {doing}. Nothing was posted."


def rollback_doing(outcome: RollbackOutcome, now: datetime) -> str:
    """`roll back shop (production) from 3f2a1c9 to 9b7e0d4 (deployment 5120 of 2 days ago)`."""
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
    return None if d is None else ran_json(d)


@sentence.register
def _rollback_sentence(outcome: RollbackOutcome, person: PersonNamer, now: datetime) -> str:
    return redeploy_sentence(outcome, rollback_doing(outcome, now), person, now)


@facts.register
def _rollback_facts(outcome: RollbackOutcome) -> Any:
    return {**outcome_json(outcome), "from": _side(outcome.current), "to": _side(outcome.target)}


@tone.register
def _rollback_tone(outcome: RollbackOutcome) -> str:
    return _deploy_tone(outcome)


@sentence.register
def _promote_sentence(outcome: PromoteOutcome, person: PersonNamer, now: datetime) -> str:
    return redeploy_sentence(outcome, promote_doing(outcome), person, now)


@facts.register
def _promote_facts(outcome: PromoteOutcome) -> Any:
    source = outcome.source_stack
    return {
        **outcome_json(outcome),
        "source_stack": {"uid": source.uid, "name": source.name, "environment": source.environment},
        "from": _side(outcome.source),
        "replaces": _side(outcome.current),
    }


@tone.register
def _promote_tone(outcome: PromoteOutcome) -> str:
    return _deploy_tone(outcome)


@sentence.register
def _version_sentence(outcome: VersionOutcome, person: PersonNamer, now: datetime) -> str:
    return f"igor {outcome.version}"


@facts.register
def _version_facts(outcome: VersionOutcome) -> Any:
    return {"version": outcome.version}


@tone.register
def _version_tone(outcome: VersionOutcome) -> str:
    return "plain"


@sentence.register
def _whoami_sentence(outcome: WhoamiOutcome, person: PersonNamer, now: datetime) -> str:
    account = outcome.account or "an account whose name needs the users scope"
    where = "the built-in sandbox" if outcome.sandbox else outcome.api_url
    said = f"igor talks to {where} as {account}, with the token from {outcome.token_source}"
    if outcome.requests_left is not None:
        said += f"; {outcome.requests_left:,} requests left this hour"
    return said + "."


@facts.register
def _whoami_facts(outcome: WhoamiOutcome) -> Any:
    return {
        "token_source": outcome.token_source,
        "api_url": outcome.api_url,
        "sandbox": outcome.sandbox,
        "account": outcome.account,
        "requests_left": outcome.requests_left,
    }


@tone.register
def _whoami_tone(outcome: WhoamiOutcome) -> str:
    return "plain"


@sentence.register
def _watch_sentence(outcome: WatchOutcome, person: PersonNamer, now: datetime) -> str:
    return watch_sentence(outcome, person, now)


@facts.register
def _watch_facts(outcome: WatchOutcome) -> Any:
    running = outcome.deployment
    requester = outcome.started_by
    return {
        "result": "watching" if outcome.followable else "nothing_to_watch",
        "stack": {
            "uid": outcome.stack.uid,
            "name": outcome.stack.name,
            "environment": outcome.stack.environment,
        },
        "async_action_id": cloud66_id(outcome.async_action_id),
        "deployment_id": cloud66_id(running.id) if running else None,
        "queued": outcome.queued,
        "started_by": {"via": requester.via, "user": requester.user} if requester else None,
        "triggered_by": running.triggered_by if running else None,
        "started_at": outcome.started_at.isoformat() if outcome.started_at else None,
        "typical_seconds": round(outcome.typical, 1) if outcome.typical else None,
    }


@tone.register
def _watch_tone(outcome: WatchOutcome) -> str:
    return "info" if outcome.followable else "refused"


# -- locks (igor_cli/locks.py) ------------------------------------------------------


def holder(lock: Lock) -> Requester:
    """Who holds a lock, to be named as igor names requesters."""
    return Requester(lock.holder_via, lock.holder_user)


def _why(lock: Lock) -> str:
    return f": {lock.reason}" if lock.reason else " (no reason given)"


def lock_line(lock: Lock, person: PersonNamer, now: datetime) -> str:
    """`shop (production): locked by alice@laptop 5 minutes ago, until ... : release 4.2`."""
    return (
        f"{lock.label}: locked by {person(holder(lock))} {ago(lock.started, now)}, "
        f"{lock.until(now)}{_why(lock)}"
    )


@later(sentence, "igor_cli.locks")
def _lock_sentence(outcome: LockOutcome, person: PersonNamer, now: datetime) -> str:
    from igor_cli.locks import LockResult

    lock = outcome.lock
    if outcome.result is LockResult.HELD:
        return (
            f"{lock.label} is already locked by {person(holder(lock))} "
            f"{lock.until(outcome.now)}{_why(lock)}. Nothing was changed."
        )
    verb = "Locked" if outcome.result is LockResult.TAKEN else "Extended the lock on"
    held = (
        "Others' changes to it are refused until then."
        if outcome.shared
        else "Until then, others' changes to it through igor on this machine are refused; "
        "igor elsewhere does not see this lock (it is kept in a file here: a store the "
        "team shares is set with IGOR_STATE_URL)."
    )
    return (
        f"{verb} {lock.label} for {person(holder(lock))} {lock.until(outcome.now)}{_why(lock)}. "
        + held
    )


@later(facts, "igor_cli.locks")
def _lock_facts(outcome: LockOutcome) -> Any:
    return {"result": outcome.result.value, "lock": outcome.lock.facts(),
            "shared": outcome.shared}  # fmt: skip


@later(tone, "igor_cli.locks")
def _lock_tone(outcome: LockOutcome) -> str:
    from igor_cli.locks import LockResult

    return "refused" if outcome.result is LockResult.HELD else "locked"


@later(sentence, "igor_cli.locks")
def _unlock_sentence(outcome: UnlockOutcome, person: PersonNamer, now: datetime) -> str:
    from igor_cli.locks import UnlockResult

    lock, when = outcome.lock, outcome.now or now
    if outcome.result is UnlockResult.NOT_LOCKED or lock is None:
        return f"{outcome.stack} is not locked; nothing to unlock."
    if outcome.result is UnlockResult.NOT_YOURS:
        return (
            f"{lock.label} is locked by {person(holder(lock))}, not by you, "
            f"{lock.until(when)}{_why(lock)}. Nothing was unlocked."
        )
    if outcome.result is UnlockResult.FORCED:
        told = ""
        if outcome.forced is not None:  # the bot tells them; from elsewhere, a notice waits
            told = (
                " They are told in Slack."
                if outcome.forced.by_via == "slack"
                else " `igor serve` tells them in Slack (the notice waits a day for it)."
            )
        return (
            f"Unlocked {lock.label}, which {person(holder(lock))} held since "
            f"{ago(lock.started, when)}{_why(lock)}. The forced unlock is on record.{told}"
        )
    return f"Unlocked {lock.label}."


@later(facts, "igor_cli.locks")
def _unlock_facts(outcome: UnlockOutcome) -> Any:
    return {
        "result": outcome.result.value,
        "stack": outcome.stack,
        "lock": outcome.lock.facts() if outcome.lock else None,
    }


@later(tone, "igor_cli.locks")
def _unlock_tone(outcome: UnlockOutcome) -> str:
    from igor_cli.locks import UnlockResult

    done = (UnlockResult.RELEASED, UnlockResult.FORCED)
    return "unlocked" if outcome.result in done else "refused"


def freeze_line(window: Window, now: datetime) -> str:
    """`Frozen now: production: "Weekend" (Fri ... to Mon ...)`, or `Next freeze: ...`."""
    return ("Frozen now: " if window.start <= now else "Next freeze: ") + window.describe()


@later(sentence, "igor_cli.locks")
def _locks_sentence(outcome: LockList, person: PersonNamer, now: datetime) -> str:
    count = len(outcome.locks)
    lines = [outcome.reset] if outcome.reset else []  # the locks it held are gone: said first
    lines.append(
        f"{count} lock{'s' if count != 1 else ''} in force:" if count else "No stack is locked."
    )
    lines += [lock_line(lock, person, outcome.now) for lock in outcome.locks]
    lines += [freeze_line(window, outcome.now) for window in outcome.freezes]
    return "\n".join(lines)


@later(facts, "igor_cli.locks")
def _locks_facts(outcome: LockList) -> Any:
    return {
        "locks": [lock.facts() for lock in outcome.locks],
        "store_reset": outcome.reset or None,
        "freezes": [
            {"environments": sorted(w.freeze.environments),
             "stacks": sorted(w.freeze.stacks) if w.freeze.stacks is not None else None,
             "message": w.freeze.message, "starts_at": w.start.isoformat(),
             "ends_at": w.end.isoformat(), "now": w.start <= outcome.now}
            for w in outcome.freezes
        ],
    }  # fmt: skip


@later(tone, "igor_cli.locks")
def _locks_tone(outcome: LockList) -> str:
    return "refused" if outcome.reset else "plain"
