"""How long a chat command may wait for its turn, and what its thread is told meanwhile.

Changes to one stack run one after another (`workers.Workers` keeps a line per
stack), and a slow Cloud 66 makes the line slow. A command still waiting for its
turn after `NOTICE_SECONDS` is told so, with how many are ahead of it (a line
that moves in a moment says nothing); the line is bounded both ways:
at most `LINE_LIMIT` commands wait for one stack (more are answered "busy" at
once), and a command whose turn comes after `LINE_SECONDS` is not run (its
requester was told it was waiting; a deploy minutes late is a surprise).
"""

from __future__ import annotations

NOTICE_SECONDS = 2.0  # a command waiting this long for its turn is told so
LINE_LIMIT = 10  # commands waiting for one stack, beyond the one running
LINE_SECONDS = 120.0  # the longest a command waits for its turn before it is dropped


def waiting(ahead: int, stack: str | None) -> str:
    """`Waiting behind 3 commands for shop; ...`."""
    commands = f"{ahead} command{'s' if ahead != 1 else ''}"
    for_stack = f" for {stack}" if stack else ""
    return (
        f"Waiting behind {commands}{for_stack}; I'll answer here when it's this one's turn "
        f"(at most {LINE_SECONDS / 60:g} minutes, or nothing is done)."
    )


def busy(stack: str | None, line_full: bool) -> str:
    """Why a command was not even queued."""
    if line_full and stack:
        return (
            f"{LINE_LIMIT} commands for {stack} are already waiting; nothing was done. "
            "Try again in a minute."
        )
    return "I'm busy with many commands right now; nothing was done. Try again in a minute."


def too_late(stack: str | None) -> str:
    """Why a command that waited its turn too long was not run."""
    for_stack = f" for {stack}" if stack else ""
    return (
        f"This command waited more than {LINE_SECONDS / 60:g} minutes behind others"
        f"{for_stack}, so I did not run it; nothing was done. Ask again if it is still wanted."
    )
