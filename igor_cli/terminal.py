"""The terminal edge: parse argv, perform the request, render it, choose the exit code.

`main(args, env)` is igor in a shell. It parses with the same command
definitions as chat (`cli.parse`), then performs: the Cloud 66 commands through
the shared `perform` (`--follow` shows live progress until the deployment
finishes); the shell-only commands (set-up and the bot, `features/setup.py`)
run themselves. Typed errors become a message and their exit code
in one place; nothing is "unexpected" but a bug.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from igor_cli.config import Environment

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.core.follow import Followed, FollowPolicy
    from igor_cli.core.request import Request
    from igor_cli.render.terminal import TerminalRenderer
    from igor_cli.targets import Default


SANDBOX_NOTE = "Sandbox: igor's built-in Cloud 66 simulator, not your account."

# -- the edge -----------------------------------------------------------------


def main(args: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the command line (argv when `args` is None); returns the exit code."""
    from typer import Abort, Exit

    from igor_cli.cli import ClickException, CompletionRequested, HelpRequested, parse

    env = env or Environment()  # the entry point: nothing below builds its own
    try:
        try:
            parsed = parse(sys.argv[1:] if args is None else list(args), _defaults(env))
        except HelpRequested as shown:
            shown.show()
            code = 0
        except Exit as done:  # typer's own eager options
            code = int(done.exit_code)
        except CompletionRequested as asked:  # --install-completion, --show-completion
            words = ["completion", *(["--install"] if asked.install else [])]
            code = perform(env, parse(words).request)
        except ClickException as problem:
            problem.show()
            words = sys.argv[1:] if args is None else args
            json_asked = any(w == "--json" or w.startswith("--json=") for w in words)
            if json_asked and "--jq" not in words and not any(w.startswith("--jq=") for w in words):
                _json_error("usage", problem.format_message(), problem.exit_code, env)
            return problem.exit_code
        else:
            if parsed.sandbox:
                env.sandbox = True
            if parsed.defaults:
                from igor_cli.targets import sentence

                renderer(env).note(sentence(parsed.defaults))
            code = perform(env, parsed.request)
        if sys.stdout is not None:
            sys.stdout.flush()  # a failed write is reported here, not at exit
    except Abort as abort:  # a prompt was abandoned
        if isinstance(abort.__context__, KeyboardInterrupt):
            return 130  # Ctrl-C at a prompt
        _say("Aborted.")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the edge: every failure ends in a sentence
        return _failed(exc, env)
    finally:
        env.close()
    return code


def collect_again() -> None:
    """For a command that runs long: when the console script turned the garbage collector
    off (`__main__`: a command that answers at once makes little garbage, and the
    collector's passes over what start-up made find nothing), what was made so far is set
    aside for good (it lives until exit) and the collector runs again."""
    import gc

    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _defaults(env: Environment) -> Callable[[], Mapping[str, Default]]:
    """A shell's default target, read when a command needs one (targets.py)."""

    def read() -> Mapping[str, Default]:
        from igor_cli.targets import shell_defaults

        return shell_defaults(env)

    return read


def perform(env: Environment, request: Any) -> int:
    """Perform a request for a person at a terminal; return the exit code.

    A shell-only request (set-up, the bot) runs itself; the others go through
    the shared `perform`. Typed errors become their message and exit code here.
    """
    from igor_cli.core.request import ShellCommand
    from igor_cli.errors import IgorError

    if not isinstance(request, ShellCommand):
        if request.follows:
            collect_again()  # following runs for minutes
        return run(env, request)
    collect_again()  # set-up, or the bot: it runs for days
    try:
        return request.run(env)
    except IgorError as error:
        renderer(env).error(error)
        return int(error.exit_code)


def renderer(env: Environment) -> TerminalRenderer:
    """Words for a person at this terminal."""
    from igor_cli.render.terminal import TerminalRenderer

    return TerminalRenderer(env.out, env.err, env.clock())


def run(env: Environment, request: Request) -> int:
    """Perform a request, render its outcome, follow a deployment if asked (or watched)."""
    from igor_cli.completion import StackCache
    from igor_cli.connect import open_client
    from igor_cli.core.perform import perform as perform_request
    from igor_cli.core.request import Change
    from igor_cli.errors import ExitCode, IgorError
    from igor_cli.identity import Origin
    from igor_cli.render.terminal import TerminalRenderer

    # deploy, rollback and promote take --follow; watch always follows.
    follows = request.follows
    # Following with --json writes JSON Lines: one compact event a line.
    renderer = TerminalRenderer(
        env.out, env.err, env.clock(), as_json=request.as_json, lines=follows
    )
    if env.in_sandbox and request.needs_cloud66:
        renderer.note(SANDBOX_NOTE)  # stderr: what --json prints stays JSON
    clients: list[Cloud66Client] = []

    def connect() -> Cloud66Client:
        if not clients:
            clients.append(open_client(env))
        return clients[0]

    try:
        outcome = perform_request(env, connect, request, Origin.of_shell(env), StackCache(env))
        renderer.outcome(outcome, following=follows)
        code = int(outcome.exit_code)
        watched = outcome.to_follow() if follows else None
        if isinstance(request, Change) and not outcome.posted:
            watched = None  # a change follows only what it posted (one already running: said)
        if follows and outcome.posted and watched is None:
            code = int(ExitCode.FAILED)  # its sentence said why; --follow did not happen
        if watched is not None:
            code = _follow(env, connect(), watched, renderer)
    except IgorError as error:
        renderer.error(error)
        code = int(error.exit_code)
    except KeyboardInterrupt:
        code = _interrupted(env, request, clients, renderer)
    finally:
        for client in clients:
            client.close()
    return code


def _interrupted(
    env: Environment, request: Request, clients: list[Cloud66Client], said: TerminalRenderer
) -> int:
    """Ctrl-C before the outcome was known (exit 130). A read is left quietly; a change
    says whether it was asked of Cloud 66, and when it may have been, the command that
    shows what became of it: the deploy may run without anyone watching."""
    from igor_cli.completion import StackCache
    from igor_cli.core.request import Change
    from igor_cli.errors import ExitCode

    if not isinstance(request, Change) or request.dry_run:
        return int(ExitCode.INTERRUPTED)
    sent = next((c.change_sent for c in clients if c.change_sent is not None), None)
    if sent is None:
        said.interrupted_change(
            "Interrupted before anything was asked of Cloud 66: nothing was changed.", ""
        )
        return int(ExitCode.INTERRUPTED)
    what, uid = sent
    seen = StackCache(env).named(uid)
    name, environment = seen if seen is not None else (request.stack, request.environment)
    words = _stack_words(name, environment)
    label = f"{name} ({environment})" if environment else name
    happened = {
        "deploy": "it may have started (or been queued), and goes on if it did",
        "cancel": "it may be cancelling",
    }.get(what, "it may have happened")
    said.interrupted_change(
        f"Interrupted after igor asked Cloud 66 to {what} {label}: {happened}.",
        f"Check with `igor watch {words}` (it follows whatever runs there), or "
        f"`igor history {words}`.",
    )
    return int(ExitCode.INTERRUPTED)


def _stack_words(name: str, environment: str | None) -> str:
    """`-s shop -e production`, quoted where the shell needs it."""
    import shlex

    words = ["-s", name, *(["-e", environment] if environment else [])]
    return shlex.join(words)


# Each shell follows its own deployment and knows of no other: twenty people
# following at once must fit in the token's 3,000 requests an hour with room for
# what they type. A minute of quick looks, then 120 an hour: 130 for an hour.
SHELL_FOLLOW_HOURLY_BUDGET = 120.0
SHELL_QUICK_SECONDS = 60.0


def shell_follow_policy(env: Environment) -> FollowPolicy:
    """How `--follow` looks at a deployment from a shell."""
    from igor_cli.core.follow import FollowPolicy

    return FollowPolicy(
        interval=env.follow_interval,
        hourly_budget=SHELL_FOLLOW_HOURLY_BUDGET,
        quick_seconds=SHELL_QUICK_SECONDS,
        clock=env.monotonic,
        sleep=env.sleep,
    )


def _follow(
    env: Environment, client: Cloud66Client, watched: Followed, renderer: TerminalRenderer
) -> int:
    """Follow a deployment to its end (deploy --follow and watch alike); Ctrl-C leaves it be."""
    from igor_cli.core.follow import follow, seconds_running

    policy = shell_follow_policy(env)
    already = seconds_running(watched, env.clock())
    last = None
    try:
        with renderer.watching(watched, env.monotonic, already) as update:
            for progress in follow(
                client,
                watched.stack.uid,
                watched.action_id,
                policy,
                already=already,
                behind=watched.behind,
                deployment_id=watched.deployment.id if watched.deployment else "",
            ):
                update(progress)
                last = progress
    except KeyboardInterrupt:
        renderer.interrupted(watched)
        return 130
    assert last is not None  # follow always yields at least once
    renderer.progress_line(watched, last)
    return int(last.exit_code)


# -- failures that reach the edge ------------------------------------------------


def _failed(exc: Exception, env: Environment) -> int:
    """Say why a command failed and choose its exit code; only bugs are "unexpected"."""
    import os

    from igor_cli.errors import IgorError

    if isinstance(exc, IgorError):  # a typed error a command left to the edge
        with contextlib.suppress(OSError, ValueError):
            renderer(env).error(exc)
        return int(exc.exit_code)
    if isinstance(exc, OSError) and (code := say_os_error(exc)) is not None:
        return code
    if os.environ.get("IGOR_DEBUG"):
        _print_scrubbed_traceback(exc, env)
    else:
        _say(
            f"igor: unexpected error ({type(exc).__name__}). "
            "Run again with IGOR_DEBUG=1 to see where, and please report it."
        )
    return 1


def _json_error(kind: str, message: str, exit_code: int, env: Environment) -> None:
    """With --json, an error is also a JSON object on stdout, for the program reading it."""
    from igor_cli.render.terminal import error_json

    with contextlib.suppress(OSError, ValueError):
        env.out.write(error_json(kind, message, exit_code) + "\n")
        env.out.flush()


def _say(line: str) -> None:
    """A last word on stderr, which may be broken too."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def say_os_error(error: OSError) -> int | None:
    """What the system refused, said plainly (a full disk, a closed pipe), and the exit code;
    None if unsure. The edge of every command, and `igor --version`'s fast path."""
    import errno
    import os

    if error.errno == errno.EPIPE:
        return 1  # the reader went away (`igor list | head -1`): nothing to say to anyone
    if error.errno is None or not error.strerror:
        return None
    reason = error.strerror.lower()
    if error.filename is not None:
        _say(f"igor: cannot use {os.fsdecode(error.filename)}: {reason}.")
        return 1
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EIO):
        # No file named: what failed is the output igor was writing to.
        _say(f"igor: cannot write the output: {reason}.")
        return 1
    return None


def _print_scrubbed_traceback(exc: BaseException, env: Environment) -> None:
    """IGOR_DEBUG=1: the traceback, with every token igor knows replaced by "[token]"."""
    import traceback

    from igor_cli.credentials import scrub

    text = "".join(traceback.format_exception(exc))
    _say(scrub(text, env).rstrip("\n"))
