"""Outcomes to the terminal: rich for people, plain JSON for programs.

Results go to stdout, progress and diagnostics to stderr. Colour and box art
only on a terminal; NO_COLOR is honoured (rich reads it).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from igor_cli.actions import (
    DEPLOY_FACTS_LIMIT,
    CancelOutcome,
    DeployOutcome,
    DeployResult,
    History,
    Outcome,
    Progress,
    StackList,
    WatchOutcome,
)
from igor_cli.cloud66 import Stack, StackHealth, StackStatus
from igor_cli.errors import IgorError, Remedy
from igor_cli.render import sentences

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

STATUS_STYLE = {
    StackStatus.DEPLOYED: "green",
    StackStatus.DEPLOY_FAILED: "red",
    StackStatus.UNABLE_TO_ANALYZE: "red",
    StackStatus.QUEUED: "yellow",
    StackStatus.DEPLOYING: "yellow",
    StackStatus.ANALYZING: "cyan",
    StackStatus.PENDING_ANALYSIS: "cyan",
}
HEALTH_STYLE = {
    StackHealth.HEALTHY: "green",
    StackHealth.IMPAIRED: "yellow",
    StackHealth.FAILED: "red",
    StackHealth.BUILDING: "cyan",
    StackHealth.UNKNOWN: "dim",
}


def console(file: TextIO) -> Console:
    """A rich console on `file`: colour only on a terminal and without NO_COLOR."""
    from rich.console import Console

    return Console(file=file, highlight=False, soft_wrap=True)


def screen_width(console: Console) -> int | None:
    """How wide the screen is: a terminal's width, or COLUMNS; None when piped without it
    (a program reads whole lines and whole tables)."""
    import os

    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console.width
    return None


class TerminalRenderer:
    """Writes outcomes, errors and progress for a person or, with `as_json`, a program."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        now: datetime,
        *,
        as_json: bool = False,
        lines: bool = False,
    ) -> None:
        """`lines`: with `as_json`, write JSON Lines (a followed deployment's events)."""
        self.out_file = out
        self.out = console(out)
        self.err = console(err)
        self.now = now
        self.as_json = as_json
        self.lines = lines

    def outcome(self, outcome: Outcome, *, following: bool = False) -> None:
        """Show what a command came to (`following`: progress comes next, so no hint)."""
        if self.as_json and self.lines:
            event = "watch" if isinstance(outcome, WatchOutcome) else "deploy"
            self._event(event, sentences.facts(outcome))
            return
        if isinstance(outcome, StackList):  # the outcomes shown as tables
            self.stack_list(outcome)
            return
        if isinstance(outcome, History):
            self.history(outcome)
            return
        text = sentences.sentence(outcome, sentences.plain_person, self.now)
        hint = "" if following else terminal_hint(outcome)
        self._line(text, sentences.facts(outcome), TONE_STYLE[sentences.tone(outcome)], hint)

    def stack_list(self, listing: StackList) -> None:
        """The stacks table (or a JSON array)."""
        if self.as_json:
            self._json(sentences.facts(listing))
            return
        if not listing.stacks:
            self.err.print(sentences.list_summary(listing))
            return
        # Fitted to the screen by the columns' own rules: only NAME, STATUS and LAST DEPLOY
        # shrink (RUNNING, of --wide, keeps its width). Piped without COLUMNS: full width.
        from rich.markup import escape

        running = listing.running
        rows = sentences.stack_rows(listing.stacks, self.now, running, facts=listing.deploy_facts)
        fitted = sentences.fit(rows, screen_width(self.out))
        table = self._table(fitted.header, fitted.widths)
        for stack in listing.stacks:
            wide = [] if running is None else [sentences.running_text(running.get(stack.uid))]
            table.add_row(*fitted.pick([*self._row(stack, listing), *map(escape, wide)]))
        self.out.print(table, width=max(self.out.width, fitted.width))
        if not listing.deploys_read:
            self.note(
                f"LAST DEPLOY is read for up to {DEPLOY_FACTS_LIMIT} stacks; "
                "narrow the list with -s or -e to see it."
            )

    def history(self, found: History) -> None:
        """The deployments table, newest first, under a summary (or a JSON array)."""
        if self.as_json:
            self._json(sentences.facts(found))
            return
        from rich.markup import escape

        self.err.print(escape(sentences.history_summary(found)))
        if not found.deployments:
            return
        on_terminal = self.out.is_terminal
        table = self._table(sentences.HISTORY_COLUMNS)
        for past in found.deployments:
            row = sentences.history_row(past, sentences.plain_person, self.now)
            cells = [escape(cell) for cell in row]
            style = OUTCOME_STYLE.get(past.state, "")
            if past.deployment.is_live:
                style = "bold " + (style or "green")
            cells[3] = f"[{style}]{cells[3]}[/]" if style else cells[3]
            table.add_row(*cells)
        # Piped, the table keeps its full width (a program reads it); on a terminal, the terminal's.
        rows = sentences.history_rows(found, sentences.plain_person, self.now)
        wide = max(len(line) for line in sentences.aligned(rows)) + 2
        if not on_terminal:
            self.out.width = max(self.out.width, wide)
        self.out.print(table)

    def _table(self, columns: Sequence[str], widths: Sequence[int] = ()) -> Table:
        """An empty table with these columns (of these widths, cut with an ellipsis, when
        given), two spaces apart: box art and bold headers only on a terminal."""
        from rich import box
        from rich.table import Table

        on_terminal = self.out.is_terminal
        # The box's column separator is a space: with it, one space of padding makes two.
        gap = sentences.GAP - (1 if on_terminal else 0)
        table = Table(
            box=box.SIMPLE_HEAD if on_terminal else None,
            show_edge=False,
            pad_edge=False,
            padding=(0, gap, 0, 0),
            header_style="bold" if on_terminal else "",
        )
        for i, column in enumerate(columns):
            width = widths[i] if i < len(widths) else None
            table.add_column(
                column, no_wrap=True, overflow="ellipsis", min_width=width, max_width=width
            )
        return table

    def _row(self, stack: Stack, listing: StackList) -> list[str]:
        from rich.markup import escape

        status = sentences.status_label(stack)
        facts = listing.deploy_facts.get(stack.uid)
        last = sentences.last_deploy(facts, self.now)
        style = OUTCOME_STYLE.get(last.split(" ", 1)[0], "")
        return [
            escape(stack.name),
            escape(stack.environment),
            f"[{STATUS_STYLE.get(stack.status, '')}]{status}[/]",
            f"[{HEALTH_STYLE[stack.health]}]{stack.health.text}[/]",
            sentences.short_ago(listing.last_activity(stack), self.now),
            f"[{style}]{escape(last)}[/]" if style else escape(last),
        ]

    def error(self, error: IgorError) -> None:
        """An expected failure: the message, then what to do (stderr); with --json, also
        a JSON object on stdout."""
        from rich.markup import escape

        if self.as_json:
            kind = _snake(type(error).__name__)
            self.out_file.write(
                error_json(kind, error.message, int(error.exit_code), error.hint) + "\n"
            )
            self.out_file.flush()
        width = screen_width(self.err)
        message = error.message
        first, *rest = (
            sentences.wrapped(message, width, indent=len("Error: ")) if width else [message]
        )
        self.err.print(f"[bold red]Error:[/] {escape(first)}")
        for line in rest:
            self.err.print(escape(line))
        if error.hint:
            self._prose(self.err, error.hint)
        if error.remedy is not None:
            self._prose(self.err, REMEDY_WORDS[error.remedy])

    def success(self, text: str) -> None:
        """Something was done (stdout)."""
        from rich.markup import escape

        self.out.print(f"[green]✓[/] {escape(text)}")

    def note(self, text: str) -> None:
        """Something worth knowing (stderr)."""
        self._prose(self.err, text, "dim")

    def check(self, name: str, ok: bool | None, detail: str) -> None:
        """One line of `igor doctor`: ✓ works, ✗ broken, · information."""
        from rich.markup import escape

        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[dim]·[/]"}[ok]
        self.out.print(f"{mark} {escape(name)}: {escape(detail)}")

    def progress_line(self, watched: WatchOutcome, progress: Progress) -> None:
        """The final word on a followed deployment (stdout), and what to do after a failure."""
        stack = watched.stack
        if self.as_json:
            self._event("finished", _progress_json(watched, progress))
            return
        text = sentences.progress_sentence(stack, progress)
        style = {"succeeded": "green", "cancelled": "yellow"}.get(progress.state, "red")
        self._line(text, None, style)
        if progress.finished and progress.state == "failed":
            if stack.dashboard_url:
                self.note(f"See it in Cloud 66: {stack.dashboard_url}")
            steps = "; ".join(
                f"`igor {words}` to {why}" for words, why in sentences.after_failure(stack)
            )
            self.note(f"Next: {steps}.")

    @contextmanager
    def watching(
        self, watched: WatchOutcome, monotonic: Callable[[], float], already: float = 0.0
    ) -> Iterator[Callable[[Progress], None]]:
        """While following: JSON Lines of progress (--json), or on a terminal a line on
        stderr whose elapsed time ticks every second, between polls too."""
        if self.as_json:
            yield lambda progress: self._progress_event(watched, progress)
            return
        if not self.err.is_terminal:
            yield lambda progress: None
            return
        line = _TickingLine(watched, monotonic, already)
        with self.err.status(line, refresh_per_second=4):
            yield lambda progress: None

    def _progress_event(self, watched: WatchOutcome, progress: Progress) -> None:
        if not progress.finished and not progress.timed_out:
            self._event("progress", _progress_json(watched, progress))

    def interrupted(self, watched: WatchOutcome) -> None:
        """Ctrl-C while following: the deployment goes on; how to cancel it (stderr)."""
        cancel = f"igor cancel {sentences.target_words(watched.stack)}"
        if self.as_json:
            self._event("interrupted", {**_naming(watched), "exit_code": 130})
        self.note(
            f"Stopped watching {watched.stack.label}; the deployment goes on. "
            f"Cancel it with `{cancel}`."
        )

    def _event(self, event: str, data: dict[str, Any]) -> None:
        """One JSON Lines event: compact, on one line, naming its stack and deployment."""
        stack = data.get("stack")
        named: dict[str, Any] = {"event": event}
        if isinstance(stack, dict):
            named.update(
                stack=stack.get("name"),
                environment=stack.get("environment"),
                stack_uid=stack.get("uid"),
            )
        named.update({k: v for k, v in data.items() if k != "stack" or not isinstance(v, dict)})
        self.out_file.write(json.dumps(named, separators=(",", ":")) + "\n")
        self.out_file.flush()

    def _line(self, text: str, data: Any, style: str = "", hint: str = "") -> None:
        if self.as_json and data is not None:
            self._json(data)
            return

        self._prose(self.out, text, style)
        if hint:
            self._prose(self.err, hint, "dim")

    def _prose(self, console: Console, text: str, style: str = "") -> None:
        """Sentences wrapped between words to the console's width, commands kept whole."""
        from rich.markup import escape

        width = screen_width(console)
        for line in sentences.wrapped(text, width) if width else text.split("\n"):
            console.print(f"[{style}]{escape(line)}[/]" if style else escape(line))

    def _json(self, data: Any) -> None:
        # Plain text, never through rich: no colour codes, no wrapping.
        self.out_file.write(json.dumps(data, indent=2) + "\n")
        self.out_file.flush()


class _TickingLine:
    """The live line: rich renders it a few times a second, so the time moves between polls."""

    def __init__(
        self, watched: WatchOutcome, monotonic: Callable[[], float], already: float
    ) -> None:
        self.watched = watched
        self.monotonic = monotonic
        self.start = monotonic() - already

    def text(self) -> str:
        """The line as it reads now."""
        return sentences.watching_line(self.watched, self.monotonic() - self.start)

    def __rich__(self) -> str:
        from rich.markup import escape

        return escape(self.text())


def _naming(watched: WatchOutcome) -> dict[str, Any]:
    """What every followed-deployment event says of its stack and deployment."""
    stack = watched.stack
    return {
        "stack": {"uid": stack.uid, "name": stack.name, "environment": stack.environment},
        "async_action_id": watched.action_id,
        "deployment_id": watched.deployment.id if watched.deployment else None,
    }


def _progress_json(watched: WatchOutcome, progress: Progress) -> dict[str, Any]:
    said: dict[str, Any] = {
        **_naming(watched),
        "state": progress.state,
        "finished": progress.finished,
        "success": progress.success,
        "message": progress.message or None,
        "elapsed_seconds": round(progress.elapsed, 1),
    }
    if progress.finished or progress.timed_out:
        said["timed_out"] = progress.timed_out
        said["cancelled_by"] = progress.cancelled_by or None
        said["dashboard_url"] = watched.stack.dashboard_url or None
        said["exit_code"] = int(progress.exit_code)
    return said


def error_json(kind: str, message: str, exit_code: int, hint: str = "") -> str:
    """An error as one compact JSON object (stdout, with --json)."""
    said: dict[str, Any] = {"error": kind, "message": message, "exit_code": exit_code}
    if hint:
        said["hint"] = hint
    return json.dumps(said, separators=(",", ":"))


def _snake(name: str) -> str:
    """StackNotFound -> stack_not_found."""
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# What a person at a shell types to fix an error (chat words it for chat).
REMEDY_WORDS = {
    Remedy.REGISTER_CLOUD66: "Store a token with `igor register`, or set IGOR_CLOUD66_TOKEN.",
    Remedy.REGISTER_SLACK: "Store the Slack tokens with `igor register --slack`, or set "
    "SLACK_BOT_TOKEN and SLACK_APP_TOKEN.",
}

OUTCOME_STYLE = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}
TONE_STYLE = {
    "started": "green",
    "queued": "green",
    "stopping": "green",
    "info": "yellow",
    "refused": "yellow",
    "dry-run": "cyan",
    "plain": "",
}


@functools.singledispatch
def terminal_hint(outcome: Any) -> str:
    """What to type next, when there is something (on stderr, dim)."""
    return ""


@terminal_hint.register
def _cancel_hint(outcome: CancelOutcome) -> str:
    choices = sentences.cancel_choices(outcome)
    return "; ".join(f"`igor {words}` to {what}" for words, what in choices)


@terminal_hint.register
def _deploy_hint(outcome: DeployOutcome) -> str:
    target = sentences.target_words(outcome.stack)
    if outcome.posted:
        return f"Follow it: `igor watch {target}`; cancel: `igor cancel {target}`."
    if outcome.result is DeployResult.BUSY_NOT_QUEUED:
        return "Run it again with -w true to queue behind the running deployment."
    return ""
