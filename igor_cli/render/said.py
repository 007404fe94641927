"""What an outcome says to a person, once, as one neutral value: a `Said`.

Every outcome says itself here (`Outcome.said`, next to it in its family module):
a lead sentence, perhaps a table, hints of what to do next, and a tone. The
terminal, Slack and the chat console only draw a `Said` (pipx's one result value,
one renderer per output); none of them knows which command it came from.

People stay people in it (`Person`, or `Brief` where a table cell needs the
shortest name that says who): each renderer names them its own way, a mention
in a Slack sentence, the name Slack shows them under in a Slack table, the
account's name in a shell. Programs read an outcome's `facts()` (JSON) instead:
JSON does not pay for the words, nor words for the JSON (a 10,000-row list
costs as much to say as to put in JSON).

How a table gives way on a narrow screen is said here too (`Table.give_way`);
the layout engine that applies it is `render/table.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from igor_cli.identity import Person

# How it went, for colour (terminal) and emoji (Slack, the console).
Tone = Literal[
    "started", "queued", "stopping", "info", "refused", "dry-run", "locked", "unlocked", "plain"
]
# How a table cell reads at a glance (the terminal colours it; a code block cannot).
Mark = Literal["good", "bad", "caution", "busy", "faint", ""]
Align = Literal["left", "right"]
# What gives way, in order, until a table fits: ("headers", ""), ("shorten", COLUMN),
# ("drop", COLUMN), ("cut", COLUMN). A column named in no step keeps its full width.
Step = tuple[Literal["headers", "shorten", "drop", "cut"], str]


@dataclass(frozen=True, slots=True)
class Brief:
    """A person named as briefly as says who (a table cell): `alice` for alice@laptop."""

    person: Person


# Words: plain text, or text with people in it, each named by the renderer.
Words = str | tuple["str | Person | Brief", ...]


class Cell(NamedTuple):
    """A table cell with more to it than its words (a plain cell is just `Words`)."""

    words: Words
    shorter: Words | None = None  # its shorter form, when its column gives way ("shorten")
    mark: Mark = ""
    strong: bool = False  # stands out from its column (the deployment that runs now)


class Column(NamedTuple):
    """A table's column: its header, a shorter one for a narrow screen, its alignment, and
    how narrow a "cut" may make it."""

    header: str
    short: str = ""
    align: Align = "left"
    floor: int = 1


@dataclass(frozen=True)
class Table:
    """Columns and rows of cells (`Words` or `Cell`), and how the table gives way."""

    columns: tuple[Column, ...]
    rows: Sequence[tuple[Words | Cell, ...]]
    give_way: tuple[Step, ...] = ()
    # The table in a few words (`3 stacks`), for where it is not shown whole: before it in
    # the console, in Slack's notification. A shell shows the table alone.
    caption: str = ""
    # Each row in words (`shop (production)`): Slack's notification names the first ones.
    names: tuple[str, ...] = ()
    # How to ask for fewer rows: chat shows a screenful, then how many more and this.
    narrow: str = ""


class Choice(NamedTuple):
    """A command (without `igor `) that settles what the outcome leaves to the person, and
    what it does: each renderer words it its way (`igor ...` in a shell, "Say ..." in chat)."""

    command: str
    what: str


class Hint(NamedTuple):
    """What to do next, or worth knowing, in a shell's words and in chat's ("" where there
    is nothing to say there)."""

    shell: str
    chat: str = ""


@dataclass(frozen=True)
class Said:
    """What an outcome says: its lead sentence, perhaps a table, hints, and its tone.

    With a table, the lead is said before it (a shell writes it on stderr, the table
    on stdout); a table without rows is said by its lead alone. With no lead, the
    table's caption stands in for it where the table is not shown.
    """

    lead: Words
    table: Table | None = None
    hints: tuple[Choice | Hint, ...] = ()
    tone: Tone = "plain"

    @property
    def choices(self) -> list[Choice]:
        """The commands that settle it."""
        return [hint for hint in self.hints if isinstance(hint, Choice)]

    def shell_hints(self) -> list[str]:
        """The hints in a shell's words (those it has)."""
        return [hint.shell for hint in self.hints if isinstance(hint, Hint) and hint.shell]

    def chat_hints(self) -> list[str]:
        """The hints in chat's words (those it has)."""
        return [hint.chat for hint in self.hints if isinstance(hint, Hint) and hint.chat]


Namer = Callable[["Person"], str]


def spoken(words: Words, name: Namer, brief: Namer | None = None) -> str:
    """`words` as text, each person named by `name` (or, where brief, by `brief`)."""
    if isinstance(words, str):
        return words
    return "".join(
        part
        if isinstance(part, str)
        else (brief or name)(part.person)
        if isinstance(part, Brief)
        else name(part)
        for part in words
    )


def plain_name(person: Person) -> str:
    """How plain words (a shell, the console) name someone: `alice@laptop`, `Slack user U123`."""
    return person.name


def plain_brief(person: Person) -> str:
    """How plain words name someone in a table cell: `alice`, `U123`."""
    return person.short_name


def who(person: Person | None, fallback: str) -> Words:
    """A person igor knows, or the words Cloud 66 names them by (`fallback`)."""
    return (person,) if person is not None else fallback


def brief_who(person: Person | None, fallback: str) -> Words:
    """A person igor knows, briefly (`Brief`); else Cloud 66's `triggered_by` as briefly:
    `alice` for alice@example.com."""
    if person is not None:
        return (Brief(person),)
    return fallback.split("@", 1)[0] or fallback or "someone"


def joined(*parts: Words | Person | Brief) -> Words:
    """Words one after another, as one: plain text when no one is named in them."""
    texts = [part for part in parts if type(part) is str]
    if len(texts) == len(parts):
        return "".join(texts)  # no one named in them (a 10,000-row list: mostly)
    flat: list[str | Person | Brief] = []
    for part in parts:
        for piece in part if isinstance(part, tuple) else (part,):
            if isinstance(piece, str) and flat and isinstance(flat[-1], str):
                flat[-1] += piece
            elif piece != "":
                flat.append(piece)
    if all(isinstance(piece, str) for piece in flat):
        return "".join(str(piece) for piece in flat)
    return tuple(flat)
