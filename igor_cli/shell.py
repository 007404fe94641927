"""Running one request in a shell: perform it, render it, choose the exit code.

This is the shell's edge: typed errors become a message and their exit code
here, and `--follow` shows live progress until the deployment finishes.
"""

from __future__ import annotations

import getpass
import socket
from typing import TYPE_CHECKING

from igor_cli.actions import (
    DeployOutcome,
    DeployRequest,
    FollowPolicy,
    Origin,
    Request,
    follow,
    perform,
)
from igor_cli.config import Environment
from igor_cli.errors import IgorError
from igor_cli.render.terminal import TerminalRenderer

if TYPE_CHECKING:
    from igor_cli.cloud66 import Cloud66Client


def shell_origin() -> Origin:
    """`igor:cli:<user>@<host>`: who deployed from this shell."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Origin("cli", f"{user}@{socket.gethostname()}")


def run(env: Environment, request: Request) -> int:
    """Perform a request for a person at a terminal; return the exit code."""
    from igor_cli.completion import StackCache
    from igor_cli.connect import open_client

    renderer = TerminalRenderer(env.out, env.err, env.clock(), as_json=request.as_json)
    clients: list[Cloud66Client] = []

    def connect() -> Cloud66Client:
        clients.append(open_client(env))
        return clients[-1]

    try:
        outcome = perform(connect, request, shell_origin(), StackCache(env))
        renderer.outcome(outcome, following=isinstance(request, DeployRequest) and request.follow)
        code = int(outcome.exit_code)
        if (
            isinstance(request, DeployRequest)
            and request.follow
            and isinstance(outcome, DeployOutcome)
            and outcome.posted
            and outcome.action_id
        ):
            code = _follow(env, clients[0], outcome, renderer)
    except IgorError as error:
        renderer.error(error)
        code = int(error.exit_code)
    finally:
        for client in clients:
            client.close()
    return code


def _follow(
    env: Environment, client: Cloud66Client, outcome: DeployOutcome, renderer: TerminalRenderer
) -> int:
    policy = FollowPolicy(interval=env.follow_interval, clock=env.monotonic, sleep=env.sleep)
    last = None
    with renderer.watching(outcome.stack) as update:
        for progress in follow(client, outcome.stack.uid, outcome.action_id, policy):
            update(progress)
            last = progress
    assert last is not None  # follow always yields at least once
    renderer.progress_line(outcome.stack, last)
    return int(last.exit_code)
