"""A person at a terminal, for the questions igor asks (register, deregister)."""

from __future__ import annotations

import io


class TerminalInput(io.StringIO):
    """Standard input that is a terminal: the lines a person will type, in order."""

    def isatty(self) -> bool:
        return True
