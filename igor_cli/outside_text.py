"""Text from outside igor: what it may not carry to a command or a screen.

Typed values (a `--ref`, a `--reason`, a stack's name) go to Cloud 66 as they are
and into questions someone approves: one that holds a character nobody can see (a
zero-width space) or one that turns text around (a bidirectional control) reads as
something it is not, so it is refused when the command is parsed (`cli_typer.py`, for the
shell and chat alike). Text igor shows (a teammate's lock reason, a stack's name or
`triggered_by` from Cloud 66, a project file's values) reaches a terminal without
control characters (`printable`): no escape sequence of someone else's may retitle
a window, clear the screen or hide a link.
"""

from __future__ import annotations

import re

# Blank letters: Hangul fillers and the like, drawn as nothing.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
# Controls (C0, DEL, C1) but a line break and a tab, and the bidirectional controls
# that reorder what follows (embeddings, overrides, isolates, marks).
_UNPRINTABLE = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"


def hidden_characters(text: str) -> list[str]:
    """The characters of `text` one cannot see or that reorder it, named:
    `["U+200B ZERO WIDTH SPACE"]`. Spaces other than the plain one count too."""
    import unicodedata

    found: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        hidden = (
            category in ("Cc", "Cf", "Zl", "Zp")
            or (category == "Zs" and char != " ")
            or char in _BLANK_LETTERS
        )
        if hidden:
            name = f"U+{ord(char):04X} {unicodedata.name(char, 'a control character')}"
            if name not in found:
                found.append(name)
    return found


def printable(text: str) -> str:
    """`text` without the control characters a terminal would act on (escape sequences,
    carriage returns, bells, bidirectional controls); line breaks and tabs stay."""
    if text.isascii() and text.isprintable():  # most cells: no pattern compiled, none run
        return text
    return re.sub(_UNPRINTABLE, "", text)
