"""Open a Cloud 66 client for an environment: the real API, or the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from igor_cli.config import Environment
from igor_cli.credentials import TokenKind, require_token
from igor_cli.errors import IgorError

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.paging import SharedReads
    from igor_cli.http import Session
    from igor_cli.sandbox import Simulator


def sandbox_url(env: Environment) -> str:
    """Start the environment's sandbox simulator (once) and return its API URL.

    Its state lives in the user cache dir, so `deploy` then `list` in two
    commands shows the stack deploying. `env.close()` stops it.
    """
    with env.lock:
        if env.simulator is None:
            from igor_cli.sandbox import Simulator

            state = sandbox_state_path(env)
            # On the environment's clock (the system's; a test's simulated one), so a
            # test runs a sandbox whose deployments take their minute without waiting.
            clock = env.clock
            try:
                state.parent.mkdir(parents=True, exist_ok=True)
                simulator = Simulator(state_path=state, clock=lambda: clock().timestamp())
                simulator.start()
            except OSError as error:
                raise _no_sandbox(error, state.parent) from None
            env.simulator = simulator
            _note_recovery(env, simulator)
        url: str = env.simulator.url
        return url


def sandbox_state_path(env: Environment) -> Path:
    """Where the sandbox keeps its stacks and deployments between commands."""
    return env.cache_dir() / "sandbox-state.json"


def _no_sandbox(error: OSError, directory: Path) -> IgorError:
    """The sandbox cannot start: its state directory, or (without a file name) the server."""
    reason = (error.strerror or type(error).__name__).lower()
    if error.filename is None:
        return IgorError(f"The sandbox could not start: {reason}.")
    return IgorError(
        f"The sandbox cannot keep its state in {directory}: {reason}.",
        "Set IGOR_CACHE_DIR to a directory you can write to.",
    )


def _note_recovery(env: Environment, simulator: Simulator) -> None:
    # Set by the simulator when it put a damaged state file aside (newer simulators).
    recovered: Path | None = getattr(simulator, "recovered", None)
    if recovered is not None:
        from igor_cli.render.terminal import TerminalRenderer

        TerminalRenderer(env.out, env.err, env.clock()).note(
            f"The sandbox state could not be read (damaged, or an older igor's); it was "
            f"set aside as {recovered} and the sandbox started afresh."
        )


def shared_session(env: Environment) -> Session:
    """The run's one HTTP connection pool, made on first use; `env.close()` closes it.

    Every client of the run (the bot's commands and follow loops, a shell
    command) shares its keep-alive connections; each client passes its own
    token with every request, so the session never holds one.
    """
    session: Session | None = env.session
    if session is not None:  # every command after the first: no lock to wait for
        return session
    with env.lock:
        if env.session is None:
            from igor_cli.cloud66.client import new_session

            env.session = new_session()
        session = env.session
        assert session is not None
        return session


def shared_reads(env: Environment) -> SharedReads:
    """The run's reads of stacks' histories and the list orders learned (made on first use).

    The bot's commands share a stack's read for a few seconds; every command, the
    bot's or a shell's, keeps the orders learned beside the completion cache.
    """
    found: SharedReads | None = env.recent_deployments
    if found is not None:
        return found
    with env.lock:
        if env.recent_deployments is None:
            from igor_cli.cloud66.paging import ListOrders, SharedReads
            from igor_cli.completion import orders_file

            env.recent_deployments = SharedReads(env.monotonic, ListOrders(orders_file(env)))
        shared: SharedReads = env.recent_deployments
        return shared


def open_client(env: Environment, token: str | None = None) -> Cloud66Client:
    """A client for the sandbox or Cloud 66, with `token` or the one igor finds now.

    Without `token`, the token is looked up afresh for every command (a token
    stored with `igor register` takes effect at once). The client borrows the
    run's connection pool: closing it leaves the pool open.
    """
    from igor_cli.cloud66.client import Cloud66Client, RetryPolicy
    from igor_cli.completion import StackCache

    if env.in_sandbox:
        from igor_cli.sandbox import SANDBOX_TOKEN

        token, url = token or SANDBOX_TOKEN, sandbox_url(env)
    else:
        url = env.checked_api_url()  # a bad setting is said before any token is looked for
        token = token or require_token(TokenKind.CLOUD66, env)
    return Cloud66Client(
        token,
        url,
        retry=RetryPolicy(sleep=env.sleep),
        observer=StackCache(env),
        session=shared_session(env),
        shared=shared_reads(env),
    )
