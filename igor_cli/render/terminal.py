"""Outcomes to the terminal: rich for people, plain JSON for programs.

Results go to stdout, progress and diagnostics to stderr. Colour and box art
only on a terminal; NO_COLOR is honoured (rich reads it).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from igor_cli.actions import (
    DeployOutcome,
    DeployResult,
    History,
    Outcome,
    Progress,
    StackList,
)
from igor_cli.cloud66 import Stack, StackHealth, StackStatus
from igor_cli.errors import IgorError, Remedy
from igor_cli.locks import UnlockOutcome, UnlockResult
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

    def __init__(self, out: TextIO, err: TextIO, now: datetime, *, as_json: bool = False) -> None:
        self.out_file = out
        self.out = console(out)
        self.err = console(err)
        self.now = now
        self.as_json = as_json

    def outcome(self, outcome: Outcome, *, following: bool = False) -> None:
        """Show what a command came to (`following`: progress comes next, so no hint)."""
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
        # Fitted to the screen by the columns' own rules: only NAME and STATUS shrink
        # (RUNNING, of --wide, keeps its width). Piped without COLUMNS: full width.
        from rich.markup import escape

        running = listing.running
        rows = sentences.stack_rows(listing.stacks, self.now, running)
        fitted = sentences.fit(rows, screen_width(self.out))
        table = self._table(fitted.header, fitted.widths)
        for stack in listing.stacks:
            wide = [] if running is None else [sentences.running_text(running.get(stack.uid))]
            table.add_row(*self._row(stack), *map(escape, wide))
        self.out.print(table, width=max(self.out.width, fitted.width))

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

    def _row(self, stack: Stack) -> list[str]:
        from rich.markup import escape

        status = sentences.status_label(stack)
        return [
            escape(stack.name),
            escape(stack.environment),
            f"[{STATUS_STYLE.get(stack.status, '')}]{status}[/]",
            f"[{HEALTH_STYLE[stack.health]}]{stack.health.text}[/]",
            sentences.short_ago(stack.last_activity, self.now),
        ]

    def error(self, error: IgorError) -> None:
        """An expected failure: the message, then what to do (stderr)."""
        from rich.markup import escape

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

    def progress_line(self, stack: Stack, progress: Progress) -> None:
        """The final word on a followed deployment (stdout)."""
        text = sentences.progress_sentence(stack, progress)
        style = "green" if progress.finished and progress.success else "red"
        data = {
            "finished": progress.finished,
            "success": progress.success,
            "message": progress.message,
            "elapsed_seconds": round(progress.elapsed, 1),
        }
        self._line(text, data, style)

    @contextmanager
    def watching(self, stack: Stack) -> Iterator[Any]:
        """A spinner on stderr while following (only on a terminal); yields an updater."""
        if self.as_json or not self.err.is_terminal:
            yield lambda progress: None
            return
        with self.err.status(f"Deploying {stack.label}…") as status:
            yield lambda progress: status.update(sentences.progress_sentence(stack, progress))

    def _line(self, text: str, data: Any, style: str = "", hint: str = "") -> None:
        if self.as_json:
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
    "locked": "green",
    "unlocked": "green",
    "plain": "",
}


@functools.singledispatch
def terminal_hint(outcome: Any) -> str:
    """What to type next, when there is something (on stderr, dim)."""
    return ""


@terminal_hint.register
def _deploy_hint(outcome: DeployOutcome) -> str:
    name = outcome.stack.name
    env = f" -e {outcome.stack.environment}" if outcome.stack.environment else ""
    quoted = f'"{name}"' if " " in name else name
    if outcome.posted:
        return f"Watch it with `igor list -s {quoted}`; cancel with `igor cancel -s {quoted}{env}`."
    if outcome.result is DeployResult.BUSY_NOT_QUEUED:
        return "Run it again with -w true to queue behind the running deployment."
    return ""


@terminal_hint.register
def _unlock_hint(outcome: UnlockOutcome) -> str:
    if outcome.result is UnlockResult.NOT_YOURS:
        return "Add --force to unlock it anyway; the forced unlock is recorded."
    return ""
