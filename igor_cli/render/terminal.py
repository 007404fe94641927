"""Outcomes to the terminal: rich for people, plain JSON for programs.

Results go to stdout, progress and diagnostics to stderr. Colour and box art
only on a terminal; NO_COLOR is honoured (rich reads it). Where rich would
write plain text (a pipe, a file), igor writes the same text itself: rich is
not even imported (a third of a piped `igor list`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from igor_cli.errors import IgorError, Remedy
from igor_cli.json_output import JsonOutput
from igor_cli.outside_text import printable
from igor_cli.render import sentences
from igor_cli.render.said import Cell, Said, Words, plain_brief, plain_name, spoken
from igor_cli.render.table import GAP, Fit, fit, text_table
from igor_cli.render.table import Table as TextTable

if TYPE_CHECKING:
    from rich.console import Console, ConsoleRenderable
    from rich.table import Table

    from igor_cli.core.follow import Followed, Progress
    from igor_cli.core.request import Outcome
    from igor_cli.render.said import Align
    from igor_cli.render.said import Table as SaidTable


def console(file: TextIO) -> Console:
    """A rich console on `file`: colour only on a terminal and without NO_COLOR; every text
    it is given is drawn without control characters (`outside_text.printable`)."""
    return _screen()(file=file, highlight=False, soft_wrap=True)


@functools.cache
def _screen() -> type[Console]:
    """rich's Console, but the one place where text becomes what it draws (`render_str`)
    strips control characters first: a lock's reason, a stack's name or `triggered_by`
    from someone else never writes its own escape sequences to the screen, piped or not.
    rich writes its own colours and cursor moves afterwards, untouched."""
    from rich.console import Console

    from igor_cli.outside_text import printable

    class Screen(Console):
        def render_str(self, text: str, **options: Any) -> Any:
            return super().render_str(printable(text), **options)

    return Screen


def screen_width(console: Console) -> int | None:
    """How wide the screen is: a terminal's width, or COLUMNS; None when piped without it
    (a program reads whole lines and whole tables)."""
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console.width
    return None


def written_plainly(file: TextIO) -> bool:
    """Whether rich would write to `file` as to a file, not a terminal: no colour, no box
    art, no live line, lines as long as they are (COLUMNS aside). Then igor writes there
    itself. Where rich might decide otherwise (FORCE_COLOR, TTY_COMPATIBLE, Windows'
    console widths, no stream at all), the answer is no, and rich decides."""
    if sys.platform == "win32" or "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ:
        return False
    if file is None:  # stdout closed before igor started: rich writes nowhere, quietly
        return False
    isatty = getattr(file, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # closed: rich takes it for a file too
        return True


def plain_width() -> int | None:
    """`screen_width` of a stream written plainly: COLUMNS, or None (whole lines)."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else None


# rich turns `:name:` into an emoji (when it knows the name) and expands or strips
# control characters: a line with either is left to rich.
_EMOJI_CODE = re.compile(r":\S*:")


def _as_rich_writes_it(line: str) -> bool:
    """Whether rich would print this line of text (markup escaped) exactly as it is."""
    return line.isprintable() and not _EMOJI_CODE.search(line)


class TerminalRenderer:
    """Writes outcomes, errors and progress for a person or, with `as_json`, a program."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        now: datetime,
        *,
        as_json: JsonOutput | None = None,
        lines: bool = False,
    ) -> None:
        """`as_json`: JSON for a program (of these fields, through jq); `lines`: with it,
        JSON Lines (a followed deployment's events)."""
        self.out_file = out
        self.err_file = err
        self.now = now
        self.as_json = as_json
        self.lines = lines

    @functools.cached_property
    def out(self) -> Console:
        """rich on stdout (made when first needed: a pipe is written without it)."""
        return console(self.out_file)

    @functools.cached_property
    def err(self) -> Console:
        """rich on stderr (made when first needed)."""
        return console(self.err_file)

    def outcome(self, outcome: Outcome, *, following: bool = False) -> None:
        """Show what a command came to: its facts to a program (--json), else what it says
        (`following`: progress comes next, so no hint)."""
        if self.as_json:
            if self.lines:
                self._event(outcome.event, outcome.facts())
            else:
                self._json(outcome.streamed_facts())
            return
        # What was not done (exit 1: already deploying, nothing to cancel, not yours)
        # is said on stderr, as every error is and as gh says it: stdout carries results.
        self.said(outcome.said(self.now), refused=int(outcome.exit_code) != 0, following=following)

    def said(self, said: Said, *, refused: bool = False, following: bool = False) -> None:
        """Draw what an outcome says: its lead (on stderr when `refused`, or over a table:
        stdout carries the table), its table fitted to the screen, and its hints (dim, on
        stderr; none when `following`)."""
        lead = spoken(said.lead, plain_name)
        if said.table is not None:
            if lead:
                self._prose(self.err_file, lead)
            if said.table.rows:
                self._said_table(said.table)
        else:
            self._prose(self.err_file if refused else self.out_file, lead, TONE_STYLE[said.tone])
        if following:
            return
        choices = said.choices
        if choices:
            self.note("; ".join(f"`igor {c.command}` to {c.what}" for c in choices))
        for hint in said.shell_hints():
            self.note(hint)

    def _said_table(self, table: SaidTable) -> None:
        """A table fitted to the screen by its own rules (render/table.py): what is typed
        next is never cut. Piped without COLUMNS: whole. Its cells coloured by their marks."""
        self._draw(text_table(table, plain_name, plain_brief), table.rows)

    def _draw(self, table: TextTable, said: Sequence[Sequence[Words | Cell]]) -> None:
        """A table fitted to the screen, each cell styled by its mark in the table `said`
        (read as each is drawn: a 10,000-row list makes no list of styles), drawn without
        rich where it writes plainly, else through rich."""
        plain = written_plainly(self.out_file)
        fitted = fit(table, plain_width() if plain else screen_width(self.out))
        # Drawn by rich or by igor itself (`drawn_plainly`): no control characters either way.
        keep = fitted.keep
        cells = [
            [
                (
                    printable(text),
                    "" if type(cell := row_said[k]) is not Cell else _cell_style(cell),
                )
                for text, k in zip(row, keep, strict=True)
            ]
            for row, row_said in zip(fitted.rows, said, strict=True)
        ]
        drawn = drawn_plainly(fitted.header, fitted.widths, cells, fitted.aligns) if plain else None
        if drawn is not None:
            self.out_file.write(drawn)
            self.out_file.flush()
        else:
            self._rich_table(fitted, cells)

    def _rich_table(self, fitted: Fit, cells: Sequence[Sequence[tuple[str, str]]]) -> None:
        """A table through rich: drawn in one pass when it can be, else laid out."""
        from rich.text import Text

        table = self._table(fitted.header, fitted.widths, fitted.aligns)
        width = max(self.out.width, fitted.width)
        drawn = drawn_at_once(table, cells, self.out, width)
        if drawn is None:  # rich lays it out: plain text objects, not markup to parse
            for row in cells:
                table.add_row(*(Text(text, style) for text, style in row))
        self.out.print(drawn or table, width=width)

    def _table(
        self, columns: Sequence[str], widths: Sequence[int] = (), aligns: Sequence[Align] = ()
    ) -> Table:
        """An empty table with these columns (of these widths, cut with an ellipsis, when
        given; left-aligned unless `aligns` says), two spaces apart: box art and bold headers
        only on a terminal."""
        from rich import box
        from rich.table import Table

        on_terminal = self.out.is_terminal
        # The box's column separator is a space: with it, one space of padding makes two.
        gap = GAP - (1 if on_terminal else 0)
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
                column,
                justify=aligns[i] if i < len(aligns) else "left",
                no_wrap=True,
                overflow="ellipsis",
                min_width=width,
                max_width=width,
            )
        return table

    def error(self, error: IgorError) -> None:
        """An expected failure: the message, then what to do (stderr); with --json, also
        a JSON object on stdout."""
        from rich.markup import escape

        if self.as_json and not self.as_json.jq:  # what a filter yields is the filter's
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
            self._prose(self.err_file, error.hint)
        if error.remedy is not None:
            self._prose(self.err_file, REMEDY_WORDS[error.remedy])

    def success(self, text: str) -> None:
        """Something was done (stdout)."""
        from rich.markup import escape

        self.out.print(f"[green]✓[/] {escape(text)}")

    def note(self, text: str) -> None:
        """Something worth knowing (stderr)."""
        self._prose(self.err_file, text, "dim")

    def check(self, name: str, ok: bool | None, detail: str) -> None:
        """One line of `igor doctor`: ✓ works, ✗ broken, · information."""
        from rich.markup import escape

        mark = {True: "[green]✓[/]", False: "[red]✗[/]", None: "[dim]·[/]"}[ok]
        self.out.print(f"{mark} {escape(name)}: {escape(detail)}")

    def progress_line(self, watched: Followed, progress: Progress) -> None:
        """The final word on a followed deployment (stdout), and what to do after a failure;
        it names what was followed when that is more than a deploy (`Followed.what`)."""
        stack = watched.stack
        if self.as_json:
            self._event("finished", _progress_json(watched, progress))
            return
        text = sentences.progress_sentence(stack, progress, watched.what, watched.doing)
        style = {"succeeded": "green", "cancelled": "yellow"}.get(progress.state, "red")
        self._line(text, None, style)
        if progress.finished and progress.state == "failed":
            if stack.dashboard_url:
                self.note(f"See it in Cloud 66: {stack.dashboard_url}")
            steps = "; ".join(
                f"`igor {words}` to {why}"
                for words, why in sentences.after_failure(stack, watched.doing)
            )
            if steps:
                self.note(f"Next: {steps}.")

    @contextmanager
    def watching(
        self, watched: Followed, monotonic: Callable[[], float], already: float = 0.0
    ) -> Iterator[Callable[[Progress], None]]:
        """While following: JSON Lines of progress (--json), or on a terminal a line on
        stderr whose elapsed time ticks every second, between polls too."""
        if self.as_json:
            yield lambda progress: self._progress_event(watched, progress)
            return
        if written_plainly(self.err_file) or not self.err.is_terminal:
            yield lambda progress: None
            return
        line = _TickingLine(watched, monotonic, already)
        with self.err.status(line, refresh_per_second=4):
            yield line.seen

    def _progress_event(self, watched: Followed, progress: Progress) -> None:
        if not progress.last:
            self._event("progress", _progress_json(watched, progress))

    def interrupted(self, watched: Followed) -> None:
        """Ctrl-C while following: the deployment goes on; how to cancel it (stderr)."""
        cancel = f"igor cancel {sentences.target_words(watched.stack)}"
        if self.as_json:
            self._event("interrupted", {**_naming(watched), "exit_code": 130})
        if watched.doing:  # a stack action: Cloud 66 has no way to cancel one
            self.note(f"Stopped watching: {watched.what} goes on in Cloud 66.")
            return
        self.note(
            f"Stopped watching {watched.stack.label}; the deployment goes on. "
            f"Cancel it with `{cancel}`."
        )

    def interrupted_change(self, text: str, check: str) -> None:
        """Ctrl-C during a change: what may have happened and how to check (stderr); with
        --json, also an `interrupted` object on stdout."""
        if self.as_json and not self.as_json.jq:
            self.out_file.write(error_json("interrupted", text, 130, check) + "\n")
            self.out_file.flush()
        self._prose(self.err_file, text)
        if check:
            self._prose(self.err_file, check)

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
        shape = self.as_json or JsonOutput()
        self.out_file.write("".join(line + "\n" for line in shape.lines(named, event=True)))
        self.out_file.flush()

    def _line(
        self, text: str, data: Any, style: str = "", hint: str = "", *, refused: bool = False
    ) -> None:
        if self.as_json and data is not None:
            self._json(data)
            return

        self._prose(self.err_file if refused else self.out_file, text, style)
        if hint:
            self._prose(self.err_file, hint, "dim")

    def _prose(self, file: TextIO, text: str, style: str = "") -> None:
        """Sentences wrapped between words to the screen's width, commands kept whole."""
        if written_plainly(file):
            width = plain_width()
            lines = sentences.wrapped(text, width) if width else text.split("\n")
            if all(_as_rich_writes_it(line) for line in lines):
                file.write("".join(line + "\n" for line in lines))
                file.flush()
                return
        from rich.markup import escape

        console = self.out if file is self.out_file else self.err
        width = screen_width(console)
        for line in sentences.wrapped(text, width) if width else text.split("\n"):
            console.print(f"[{style}]{escape(line)}[/]" if style else escape(line))

    def _json(self, data: Any) -> None:
        # Plain text, never through rich: no colour codes, no wrapping. Indented for
        # a person at a terminal; compact for a program.
        indent = 2 if not written_plainly(self.out_file) and self.out.is_terminal else None
        shape = self.as_json or JsonOutput()
        if isinstance(data, Iterator):  # the rows of a list, written as each is made
            shape.write_each(data, self.out_file, indent=indent)
        else:
            self.out_file.write("".join(line + "\n" for line in shape.lines(data, indent=indent)))
        self.out_file.flush()


class _TickingLine:
    """The live line: rich renders it a few times a second, so the time moves between polls."""

    def __init__(self, watched: Followed, monotonic: Callable[[], float], already: float) -> None:
        self.watched = watched
        self.monotonic = monotonic
        self.start = monotonic() - already
        self.last: Progress | None = None

    def seen(self, progress: Progress) -> None:
        """A look at the deployment: the line says what it saw (Queued, then Deploying)."""
        self.last = progress

    def text(self) -> str:
        """The line as it reads now."""
        return sentences.watching_line(self.watched, self.monotonic() - self.start, self.last)

    def __rich__(self) -> str:
        from rich.markup import escape

        return escape(self.text())


def _naming(watched: Followed) -> dict[str, Any]:
    """What every followed-deployment event says of its stack and deployment."""
    stack = watched.stack
    running = watched.deployment
    return {
        "stack": stack.named(),
        "async_action_id": sentences.cloud66_id(watched.async_action_id),
        "deployment_id": sentences.cloud66_id(running.id) if running else None,
    }


def _progress_json(watched: Followed, progress: Progress) -> dict[str, Any]:
    said: dict[str, Any] = {
        **_naming(watched),
        "state": progress.state,
        "finished": progress.finished,
        "success": progress.success,
        "message": progress.message or None,
        "elapsed_seconds": round(progress.elapsed, 1),
    }
    if progress.deployment_id:  # the deployment igor asked for, once Cloud 66 names it
        said["deployment_id"] = sentences.cloud66_id(progress.deployment_id)
    if progress.last:
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


_BREAKS = frozenset("\n\r\t")  # characters rich lays out itself


def drawn_at_once(
    table: Table,
    rows: Sequence[Sequence[tuple[str, str]]],
    console: Console,
    width: int | None = None,
) -> ConsoleRenderable | None:
    """`table` with these rows (text and style a cell) as rich would draw it `width`
    wide (the console's by default), drawn in one pass; None when rich must lay it out.

    rich lays out and renders every cell on its own: half a millisecond a row,
    five seconds for 10,000 stacks. A table of one-line, left-aligned cells that
    fits the width needs none of that: each column is as wide as it is told, or
    as its widest cell, a longer cell cut with an ellipsis, and each line is its
    cells padded, with the box characters and the colour codes rich itself
    writes on this console (a test checks that the output is rich's, byte for
    byte). Anything else (a table rich must shrink, edges, row styles, a cell of
    several lines) is left to rich.
    """
    from rich.segment import Segment

    if not _plain_table(table, console):
        return None
    laid = _laid_out(
        [str(column.header) for column in table.columns],
        [column.max_width for column in table.columns],
        [column.overflow == "ellipsis" for column in table.columns],
        rows,
    )
    if laid is None:
        return None
    texts, sizes, widths = laid
    columns = len(widths)
    _, right, _, left = table.padding
    last = columns - 1
    before = [0 if i == 0 and not table.pad_edge else left for i in range(columns)]
    after = [0 if i == last and not table.pad_edge else right for i in range(columns)]
    outer = [w + b + a for w, b, a in zip(widths, before, after, strict=True)]
    safe = console.safe_box if table.safe_box is None else table.safe_box
    box = table.box.substitute(console.options, safe=safe) if table.box else None
    if sum(outer) + (last if box else 0) > (width or console.options.max_width):
        return None  # rich shrinks the columns to fit

    codes = functools.cache(lambda style: _codes(console, style))
    header_style = console.get_style(table.header_style or "")
    on, off = codes(header_style)
    lines: list[str] = []
    for i, (text, size) in enumerate(zip(texts[0], sizes[0], strict=True)):
        for piece in (" " * before[i], text + " " * (widths[i] - size), " " * after[i]):
            lines.append(f"{on}{piece}{off}" if piece else "")
        if i < last:
            lines.append(box.head_vertical if box else "")
    lines.append("\n")
    if box is not None:
        lines.append(box.get_row(outer, "head", edge=False) + "\n")
    # The rows, a column at a time: each cell padded to its column's width (and
    # wrapped in its style's codes), the columns joined by what separates them.
    cells: list[list[str]] = []
    for i in range(columns):
        styled = []
        for row, text_row, size_row in zip(rows, texts[1:], sizes[1:], strict=True):
            on, off = codes(console.get_style(row[i][1])) if row[i][1] else ("", "")
            styled.append(f"{on}{text_row[i]}{' ' * (widths[i] - size_row[i])}{off}")
        cells.append(styled)

    def gaps(divider: str) -> list[str]:
        return [*(" " * after[i] + divider + " " * before[i + 1] for i in range(last)), ""]

    middle = gaps(box.mid_vertical if box else "")
    final = gaps(box.foot_vertical if box else "")  # rich's last row has its own divider
    ending = " " * after[last] + "\n"
    start = " " * before[0]
    for number, row_cells in enumerate(zip(*cells, strict=True)):
        between = final if number == len(rows) - 1 else middle
        lines.append(start + "".join(c + g for c, g in zip(row_cells, between, strict=True)))
        lines.append(ending)

    class Drawn:
        def __rich_console__(self, *_: Any) -> list[Segment]:
            return [Segment("".join(lines))]

    return Drawn()


def drawn_plainly(
    header: Sequence[str],
    widths: Sequence[int],
    rows: Sequence[Sequence[tuple[str, str]]],
    aligns: Sequence[Align] = (),
) -> str | None:
    """A table as rich draws it where it writes plainly (`written_plainly`): the columns
    `widths` wide, `GAP` apart, no box, no colour; None when rich must lay it out (a
    column aligned other than left, too).

    `drawn_at_once` on such a console, without rich (a test checks it is rich's table).
    """
    if any(align != "left" for align in aligns):
        return None
    laid = _laid_out(header, widths, [True] * len(header), rows)
    if laid is None:
        return None
    texts, sizes, fitted = laid
    gap = " " * GAP
    lines = []
    for text_row, size_row in zip(texts, sizes, strict=True):
        cells = zip(text_row, size_row, fitted, strict=True)
        lines.append(gap.join(text + " " * (width - size) for text, size, width in cells))
    return "\n".join(lines) + "\n"


def _laid_out(
    header: Sequence[str],
    limits: Sequence[int | None],
    cut: Sequence[bool],
    rows: Sequence[Sequence[tuple[str, str]]],
) -> tuple[list[list[str]], list[list[int]], list[int]] | None:
    """The header and rows as rich shows them (control codes out, cut to the columns'
    `limits` with an ellipsis where they may be `cut`), their widths in cells, and each
    column's width (its limit, else its widest cell). rich itself is imported only for
    text that is not printable ASCII."""
    texts: list[list[str]] = [list(header)]
    sizes: list[list[int]] = [[_cells(text) for text in header]]
    for row in rows:
        line, measured = [], []
        for given, _ in row:
            text = given
            if not text.isprintable():  # what a rich Text would show (it strips controls)
                from rich.control import strip_control_codes

                text = strip_control_codes(text)
                if not _BREAKS.isdisjoint(text):
                    return None
            line.append(text)
            measured.append(_cells(text))
        texts.append(line)
        sizes.append(measured)
    widths = [
        limit if limit is not None else max(size[i] for size in sizes)
        for i, limit in enumerate(limits)
    ]
    for line, measured in zip(texts, sizes, strict=True):  # what rich cuts, with an ellipsis
        for i, size in enumerate(measured):
            if size > widths[i]:
                if not cut[i]:
                    return None
                from rich.cells import set_cell_size

                line[i] = set_cell_size(line[i], widths[i] - 1) + "…"
                measured[i] = widths[i]
    return texts, sizes, widths


# Below the combining marks (U+0300), every printable character takes one cell, as rich
# counts them (a test checks it): the `·` of LAST DEPLOY needs no rich to be measured.
_ONE_CELL_BELOW = "\u0300"


def _cells(text: str) -> int:
    """How many cells of the screen `text` takes, as rich counts them."""
    if text.isascii() or (text.isprintable() and max(text) < _ONE_CELL_BELOW):
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _codes(console: Console, style: Any) -> tuple[str, str]:
    """What this console writes before and after text in `style` (nothing without colour)."""
    from rich.segment import Segment, Segments

    if not style:
        return "", ""
    with console.capture() as capture:
        console.print(Segments([Segment("\x00", style)]), end="")
    on, _, off = capture.get().partition("\x00")
    return on, off


def _plain_table(table: Table, console: Console) -> bool:
    """Whether the table is one the one-pass drawing knows: no rows yet, no edges,
    no row styles, left-aligned columns that neither wrap nor have fixed widths."""
    plain_table = not (
        table.rows
        or not table.show_header
        or table.show_edge
        or table.show_lines
        or table.show_footer
        or table.title
        or table.caption
        or table.expand
        or table.width is not None
        or table.min_width is not None
        or table.collapse_padding
        or table.row_styles
        or table.leading
        or console.get_style(table.style or "")
        or table.border_style
        or table.padding[0]
        or table.padding[2]
    )
    return plain_table and all(
        column.justify == "left"
        and column.no_wrap
        and column.width is None
        and not column.ratio
        and column.min_width == column.max_width  # as wide as its widest cell, or as told
        and not (column.style or column.header_style)
        and isinstance(column.header, str)
        and "[" not in column.header
        for column in table.columns
    )


# What a person at a shell types to fix an error (chat words it for chat).
REMEDY_WORDS = {
    Remedy.REGISTER_CLOUD66: "Store a token with `igor register`, or set IGOR_CLOUD66_TOKEN.",
    Remedy.REGISTER_SLACK: "Store the Slack tokens with `igor register --slack`, or set "
    "SLACK_BOT_TOKEN and SLACK_APP_TOKEN.",
}

# How a table cell's mark is coloured (render/said.py).
MARK_STYLE = {
    "good": "green",
    "bad": "red",
    "caution": "yellow",
    "busy": "cyan",
    "faint": "dim",
    "": "",
}
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


def _cell_style(cell: Words | Cell) -> str:
    """How a cell is coloured: by its mark, in bold when it stands out."""
    if not isinstance(cell, Cell):
        return ""
    style = MARK_STYLE[cell.mark]
    return f"bold {style}" if cell.strong else style
