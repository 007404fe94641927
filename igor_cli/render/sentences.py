"""The words every command shares: how long ago, how long, who, what ran, how a followed
deployment goes, and text wrapped for a screen.

Each command's own words are next to its outcome (`igor_cli/features/`), said as
data (`render/said.py`); the renderers (terminal, Slack, the chat console) and the
features use these.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from igor_cli.cloud66.models import Deployment, Stack
    from igor_cli.core.follow import Followed, Progress
    from igor_cli.render.said import Mark


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


def target_words(stack: Stack) -> str:
    """`-s shop -e production`: the options that name this stack in a command."""
    name = f'"{stack.name}"' if " " in stack.name else stack.name
    env = f" -e {stack.environment}" if stack.environment else ""
    return f"-s {name}{env}"


def progress_sentence(stack: Stack, progress: Progress, what: str = "", doing: str = "") -> str:
    """How a followed deployment is doing; `what` names it when it is more than a deploy
    (`Followed.what`: `Rollback of shop (production) to 9b7e0d4`); `doing`, when it is a
    stack action rather than a deployment (`Followed.doing`: `Restarting`)."""
    took = duration(progress.elapsed)
    if progress.timed_out:
        if doing:
            return (
                f"{what} still runs after {took}; igor stopped watching. "
                "Check it in the Cloud 66 dashboard."
            )
        return (
            f"{stack.label} is still deploying after {took}; igor stopped watching. "
            f"Check later with `igor list -s {stack.name}`."
        )
    if not progress.finished:
        return f"{doing}: {stack.label}… {took}" if doing else f"Deploying {stack.label}… {took}"
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


def after_failure(stack: Stack, doing: str = "") -> list[tuple[str, str]]:
    """What to type (without `igor `) after a failed deployment, and what for (after a
    failed stack action, `doing`: nothing igor can show; the dashboard says why)."""
    if doing:
        return []
    target = target_words(stack)
    return [(f"history {target}", "see what ran"), (f"deploy {target}", "try again")]


def watching_line(watched: Followed, elapsed: float, last: Progress | None = None) -> str:
    """The live line while following: the state (as the last look saw it: Queued, then
    Deploying once the deployment in front is over), the time so far, what is usual."""
    queued = last.queued if last is not None else watched.queued and watched.deployment is None
    state = watched.doing or ("Queued" if queued else "Deploying")
    said = f"{state}: {watched.stack.label}… {duration(elapsed)}"
    if watched.typical:
        usual = duration(watched.typical)
        late = "; taking longer" if elapsed > watched.typical else ""
        said += f" (usually about {usual}{late})"
    return said


def progress_step(stack: Stack, progress: Progress, doing: str = "") -> str:
    """How a followed deployment (or stack action, `doing`) is doing, to the minute (a chat
    message edited as it goes)."""
    minutes = int(progress.elapsed // 60)
    so_far = "under a minute" if minutes < 1 else f"{minutes} min"
    state = doing or ("Queued" if progress.queued else "Deploying")
    return f"{state}: {stack.label}… {so_far} so far."


def stopped_sentence(stack: Stack, what: str = "", doing: str = "") -> str:
    """What igor says when it stops watching a deployment (or a stack action) that goes on."""
    if doing:
        return f"igor stopped watching: {what} goes on in Cloud 66."
    return (
        f"igor stopped watching {stack.label}; the deployment goes on. "
        f"Check it with `igor list -s {stack.name}`."
    )


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


def what_ran(d: Deployment) -> str:
    """`3f2a1c9 main`, or the service tags of a docker stack; `(profile x)` when one was used."""
    if d.services:
        said = ", ".join(d.services)
    else:
        # A ref that is the commit itself (a rollback, a promotion) is not said twice.
        ref = "" if d.git_ref and d.git_hash.startswith(d.git_ref) else d.git_ref
        said = " ".join(part for part in (d.git_hash[:7], ref) if part) or "-"
    return said + (f" (profile {d.deployment_profile})" if d.deployment_profile else "")


# How a deployment's state (`activity.deployment_state`) reads at a glance.
_DEPLOYMENT_MARKS: dict[str, Mark] = {
    "succeeded": "good", "failed": "bad", "cancelled": "caution", "running": "busy",
}  # fmt: skip


def deployment_mark(state: str) -> Mark:
    """`good` for a deployment that succeeded, `bad` failed, `caution` cancelled, `busy`
    running; nothing for a state igor has no word for."""
    return _DEPLOYMENT_MARKS.get(state, "")
