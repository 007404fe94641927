"""Tables fitted to a screen without cutting what a person types next.

A column that holds what is typed into the next command (a stack's name, its
environment, a deployment's id, a commit or image tags) is never cut. When a
table is wider than the screen, the other columns give way in the order the
table says: long headers become short ones, a column's cells take their shorter
form (`deployed` for `Deployed successfully`), a column is dropped whole, or, last,
cut with an ellipsis down to a floor. If what is left is still wider, the table is
left wider than the screen (the terminal wraps its lines) rather than cut more.
Piped without COLUMNS (no width) a table is never fitted: a program reads it whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from igor_cli.render.said import Align, Cell, Namer, Step, Words, spoken

if TYPE_CHECKING:
    from igor_cli.render import said

GAP = 2  # spaces between columns


@dataclass(frozen=True)
class Table:
    """A table's header and rows (full text), and how it gives way on a narrow screen."""

    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    # A column's cells in their shorter form, a row each (a "shorten" step uses them).
    shorter: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # What gives way, in order, until the table fits: ("headers", ""), ("shorten", C),
    # ("drop", C), ("cut", C). A column named in no step keeps its full width.
    give_way: tuple[Step, ...] = ()
    floors: Mapping[str, int] = field(default_factory=dict)  # how narrow a "cut" may go
    short_headers: Mapping[str, str] = field(default_factory=dict)  # a "headers" step's
    aligns: Mapping[str, Align] = field(default_factory=dict)  # left, unless said


def text_table(table: said.Table, name: Namer, brief: Namer | None = None) -> Table:
    """A said table as text to lay out: its people named by `name` (`brief` in a cell that
    names them briefly), each cell in its full and (where its column has one) shorter form."""
    header = tuple(column.header for column in table.columns)
    shortened = [header.index(c) for step, c in table.give_way if step == "shorten" and c in header]

    def text(cell: Words | Cell) -> str:
        words = cell.words if isinstance(cell, Cell) else cell
        return words if isinstance(words, str) else spoken(words, name, brief)

    # Most cells are plain text, or a Cell of plain text: taken as they are, without a call
    # (a 10,000-row list is drawn in a blink).
    rows = [
        tuple([c if type(c) is str else c.words if type(c) is Cell and type(c.words) is str
               else text(c) for c in row])
        for row in table.rows
    ]  # fmt: skip
    shorter = {
        header[i]: [
            full[i] if type(cell) is not Cell or cell.shorter is None
            else cell.shorter if type(cell.shorter) is str else text(cell.shorter)
            for cell, full in zip((row[i] for row in table.rows), rows, strict=True)
        ]
        for i in shortened
    }  # fmt: skip
    return Table(
        header,
        rows,
        shorter,
        table.give_way,
        {c.header: c.floor for c in table.columns if c.floor != 1},
        {c.header: c.short for c in table.columns if c.short},
        {c.header: c.align for c in table.columns if c.align != "left"},
    )


class Fit(NamedTuple):
    """A table fitted to a screen: the columns kept (by their full names and as shown),
    each one's width, and each row's texts as shown (shorter, or cut, where they gave way)."""

    # A NamedTuple: defined at every start in a sixth of a frozen dataclass's time.
    columns: tuple[str, ...]
    header: tuple[str, ...]
    widths: list[int]
    rows: list[tuple[str, ...]]
    keep: tuple[int, ...] = ()  # the indices of the kept columns in a full row
    aligns: tuple[Align, ...] = ()  # each kept column's (left when not said)

    @property
    def width(self) -> int:
        """The width of the whole table."""
        return sum(self.widths) + GAP * (len(self.widths) - 1)

    def lines(self) -> list[str]:
        """The table as lines of columns GAP apart (trailing blanks removed)."""
        aligns = self.aligns or ("left",) * len(self.widths)
        return [
            (" " * GAP)
            .join(
                text.rjust(width) if align == "right" else text.ljust(width)
                for text, width, align in zip(row, self.widths, aligns, strict=True)
            )
            .rstrip()
            for row in [self.header, *self.rows]
        ]


def fit(table: Table, width: int | None = None) -> Fit:
    """The table, giving way step by step until it is at most `width` wide."""
    names = list(table.header)
    shown = {name: name for name in names}
    texts = {name: [row[i] for row in table.rows] for i, name in enumerate(names)}
    kept = list(names)
    limits: dict[str, int] = {}

    def widths() -> list[int]:
        return [
            limits.get(name, max([len(shown[name]), *(len(t) for t in texts[name])]))
            for name in kept
        ]

    def total() -> int:
        return sum(widths()) + GAP * (len(kept) - 1)

    room = width if width is not None else total()
    for step, column in table.give_way if width is not None else ():
        if total() <= room:
            break
        if step == "headers":
            shown.update({n: table.short_headers.get(n, n) for n in names})
        elif column not in kept:
            continue
        elif step == "shorten" and column in table.shorter:
            texts[column] = list(table.shorter[column])
        elif step == "drop" and len(kept) > 1:
            kept.remove(column)
        elif step == "cut":
            now = widths()[kept.index(column)]
            floor = max(table.floors.get(column, 1), len(shown[column]))
            limits[column] = max(floor, now - (total() - room))
    final = widths()
    rows = [
        tuple(_cut(texts[name][r], final[k]) for k, name in enumerate(kept))
        for r in range(len(table.rows))
    ]
    keep = tuple(names.index(name) for name in kept)
    aligns = tuple(table.aligns.get(name, "left") for name in kept)
    return Fit(tuple(kept), tuple(shown[name] for name in kept), final, rows, keep, aligns)


def aligned(table: Table, width: int | None = None) -> list[str]:
    """The table as lines of columns two spaces apart, fitted to `width` when given."""
    return fit(table, width).lines()


def _cut(text: str, width: int) -> str:
    """`text`, ending in an ellipsis if it is longer than `width`."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
