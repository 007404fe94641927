"""What an action is given to run with (`Request.act`): igor's environment, Cloud 66, who
asks, and what is known already.

A module of its own so that a command's family names it in annotations only: a TAB
imports the family of the command typed, and pays for nothing it does not use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import StackHints
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Stack
    from igor_cli.config import Environment
    from igor_cli.freeze import Window
    from igor_cli.identity import Origin
    from igor_cli.state.deployed import Ledger


@dataclass(frozen=True)
class Run:
    """What an action may use: igor's environment (its store, its config), Cloud 66
    (opened on first use), who asks, and what is known already."""

    env: Environment
    connect: Callable[[], Cloud66Client]
    origin: Origin
    hints: StackHints | None = None
    target: Stack | None = None  # the stack a change acts on, when already resolved
    glass: Window | None = None  # the freeze whose glass this change breaks (guard_change)

    def ledger(self) -> Ledger:
        """Where igor keeps what it deployed: the run's state store (a configured store
        that cannot be reached refuses the change, as the guard does)."""
        from igor_cli.state.deployed import Ledger

        return Ledger(self.env.state_or_none(), self.env.clock)
