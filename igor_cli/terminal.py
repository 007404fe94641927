"""The terminal edge: parse argv, perform the request, render it, choose the exit code.

`main(args, env)` is igor in a shell. It parses with the same command
definitions as chat (`cli.parse`), then performs: the Cloud 66 commands through
the shared actions (`--follow` shows live progress until the deployment
finishes); the shell-only commands (set-up and the bot, `setup_commands.py`)
run themselves. Typed errors become a message and their exit code
in one place; nothing is "unexpected" but a bug.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from igor_cli.config import Environment

if TYPE_CHECKING:
    from igor_cli.actions import FollowPolicy, Request, WatchOutcome
    from igor_cli.cloud66 import Cloud66Client
    from igor_cli.render.terminal import TerminalRenderer
    from igor_cli.setup_commands import (
        ChatRequest,
        ConfirmResetRequest,
        DeregisterRequest,
        DoctorRequest,
        ManifestRequest,
        RegisterRequest,
        ResetRequest,
        ServeRequest,
    )
    from igor_cli.targets import Default


SANDBOX_NOTE = "Sandbox: igor's built-in Cloud 66 simulator, not your account."

# -- the edge -----------------------------------------------------------------


def main(args: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the command line (argv when `args` is None); returns the exit code."""
    from igor_cli.cli import (
        Abort,
        ClickException,
        CompletionRequested,
        Exit,
        HelpRequested,
        parse,
    )

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
            from igor_cli.setup_commands import CompletionRequest

            code = perform(env, CompletionRequest(None, asked.install))
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


def _defaults(env: Environment) -> Callable[[], Mapping[str, Default]]:
    """A shell's default target, read when a command needs one (targets.py)."""

    def read() -> Mapping[str, Default]:
        from igor_cli.targets import shell_defaults

        return shell_defaults(env)

    return read


def perform(env: Environment, request: Any) -> int:
    """Perform a request for a person at a terminal; return the exit code.

    A shell-only request (set-up, the bot) runs itself; the others go through
    the shared actions. Typed errors become their message and exit code here.
    """
    from igor_cli.actions import Request
    from igor_cli.errors import IgorError

    # The shared actions' requests are all Requests; only for the shell-only ones
    # (setup_commands.py) is that module loaded.
    if isinstance(request, Request):
        return run(env, request)
    run_it = _shell_only().get(type(request))
    if run_it is None:
        return run(env, request)
    try:
        return run_it(request, env)
    except IgorError as error:
        renderer(env).error(error)
        return int(error.exit_code)


def renderer(env: Environment) -> TerminalRenderer:
    """Words for a person at this terminal."""
    from igor_cli.render.terminal import TerminalRenderer

    return TerminalRenderer(env.out, env.err, env.clock())


def run(env: Environment, request: Request) -> int:
    """Perform a request, render its outcome, follow a deployment if asked (or watched)."""
    from igor_cli.actions import DeployOutcome, Origin, WatchOutcome, WatchRequest, following
    from igor_cli.actions import perform as perform_request
    from igor_cli.completion import StackCache
    from igor_cli.connect import open_client
    from igor_cli.errors import ExitCode, IgorError
    from igor_cli.render.sentences import followed_as
    from igor_cli.render.terminal import TerminalRenderer

    # deploy, rollback and promote take --follow; watch always follows.
    follows = isinstance(request, WatchRequest) or request.follow
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
        outcome = perform_request(connect, request, Origin.of_shell(env), StackCache(env), env)
        renderer.outcome(outcome, following=follows)
        code = int(outcome.exit_code)
        watched = None
        if isinstance(outcome, WatchOutcome) and outcome.followable:
            watched = outcome
        elif follows and isinstance(outcome, DeployOutcome) and outcome.posted:
            watched = following(outcome) if outcome.action_id else None
            if watched is None:  # the deploy sentence said why; --follow did not happen
                code = int(ExitCode.FAILED)
        if watched is not None:
            code = _follow(env, connect(), watched, renderer, followed_as(outcome))
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
    from igor_cli.errors import ExitCode

    if not request.changes or request.dry_run:
        return int(ExitCode.INTERRUPTED)
    sent = next((c.change_sent for c in clients if c.change_sent is not None), None)
    if sent is None:
        said.interrupted_change(
            "Interrupted before anything was asked of Cloud 66: nothing was changed.", ""
        )
        return int(ExitCode.INTERRUPTED)
    what, uid = sent
    seen = StackCache(env).named(uid)
    name, environment = seen if seen is not None else (request.stack or "", request.environment)
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
    from igor_cli.actions import FollowPolicy

    return FollowPolicy(
        interval=env.follow_interval,
        hourly_budget=SHELL_FOLLOW_HOURLY_BUDGET,
        quick_seconds=SHELL_QUICK_SECONDS,
        clock=env.monotonic,
        sleep=env.sleep,
    )


def _follow(
    env: Environment,
    client: Cloud66Client,
    watched: WatchOutcome,
    renderer: TerminalRenderer,
    what: str = "",
) -> int:
    """Follow a deployment to its end (deploy --follow and watch alike); Ctrl-C leaves it be.
    `what` names it at the end when it is more than a deploy (a rollback, a promotion)."""
    from igor_cli.actions import follow, seconds_running

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
    renderer.progress_line(watched, last, what)
    return int(last.exit_code)


# -- the shell-only commands (their requests are in setup_commands.py) ------------


@functools.cache
def _shell_only() -> dict[type, Callable[[Any, Environment], int]]:
    """Which shell-only request runs how (loaded when a command is performed)."""
    from igor_cli import setup_commands as requests
    from igor_cli.tab import completion

    return {
        requests.ServeRequest: _serve,
        requests.ChatRequest: _chat,
        requests.ManifestRequest: _manifest,
        requests.RegisterRequest: _register,
        requests.DeregisterRequest: _deregister,
        requests.DoctorRequest: _doctor,
        requests.ResetRequest: _reset,
        requests.ConfirmResetRequest: _confirm_reset,
        requests.CompletionRequest: completion,
    }


def _serve(request: ServeRequest, env: Environment) -> int:
    from igor_cli.chat.slack import configure_logging, serve

    configure_logging()
    return serve(env, report=renderer(env).error, http=request.http)


def _chat(request: ChatRequest, env: Environment) -> int:
    from igor_cli.actions import Origin
    from igor_cli.chat.console import run_console

    if env.in_sandbox:
        renderer(env).note(SANDBOX_NOTE)

    return run_console(env, Origin.of_shell(env).user, sys.stdin, env.out)


def _manifest(request: ManifestRequest, env: Environment) -> int:
    import json

    from igor_cli.chat.slack.manifest import manifest

    env.out.write(json.dumps(manifest(request.name, request.http), indent=2) + "\n")
    return 0


def _register(request: RegisterRequest, env: Environment) -> int:
    from igor_cli.credentials import TokenKind, require_keyring
    from igor_cli.errors import UsageProblem
    from igor_cli.registration import WHERE_TO_MAKE, register, stored_and_working

    kinds = [TokenKind.SLACK_BOT, TokenKind.SLACK_APP] if request.slack else [TokenKind.CLOUD66]
    if request.http:
        kinds = [TokenKind.SLACK_BOT, TokenKind.SLACK_SIGNING]
    said = renderer(env)
    require_keyring()  # before asking anything
    whose = None if request.force else stored_and_working(env, kinds[0])
    if whose is not None:
        stored = f"A working {kinds[0].description} is already stored ({whose})"
        if not env.can_ask:
            raise UsageProblem(f"{stored}; nothing was changed.", "Add --force to replace it.")
        if not _ask_yes(env, f"{stored}. Replace it?"):
            said.note("Nothing was changed.")
            return 1

    def read(kind: TokenKind) -> str:
        if request.stdin:
            return env.input.readline()
        if not env.can_ask:  # piped in: read it as --stdin does (no echo to turn off)
            said.note(f"Reading the {kind.description} from standard input.")
            return env.input.readline()
        said.note(WHERE_TO_MAKE[kind])
        return _ask_secret(env, f"{kind.description} (hidden): ")

    for done in register(env, kinds, read):
        if done.kind is TokenKind.SIGNING_KEY:
            said.success("Created the confirmation signing key in the keyring.")
            said.note("Bot replicas on other machines need it too: set IGOR_SIGNING_KEY.")
            continue
        said.success(f"Registered the {done.kind.description}: {done.belongs_to}.")
        if done.shadowed_by_environment:
            said.note(f"{done.kind.variable} is set and still wins over the keyring.")
    return 0


def _ask_secret(env: Environment, prompt: str) -> str:
    """A hidden answer from the person at the terminal ("" for Ctrl-D: an empty token)."""
    if env.stdin is not None:  # a terminal the caller gave (tests, an embedding program)
        env.err.write(prompt)
        env.err.flush()
        return env.input.readline()
    import getpass

    try:
        return getpass.getpass(prompt, stream=env.err)
    except EOFError:
        env.err.write("\n")
        return ""


def _ask_yes(env: Environment, question: str) -> bool:
    """Yes only for y or yes; Enter, anything else or Ctrl-D is no."""
    env.err.write(f"{question} [y/N]: ")
    env.err.flush()
    return env.input.readline().strip().lower() in ("y", "yes")


def _deregister(request: DeregisterRequest, env: Environment) -> int:
    from igor_cli.credentials import TokenKind, keyring_get, require_keyring
    from igor_cli.errors import UsageProblem
    from igor_cli.registration import deregister

    kinds = [
        kind
        for kind in TokenKind
        if (request.cloud66 and kind is TokenKind.CLOUD66)
        or (request.slack and kind is not TokenKind.CLOUD66)
    ] or list(TokenKind)
    said = renderer(env)
    require_keyring()
    stored = [kind for kind in kinds if keyring_get(kind.entry) is not None]
    if not stored:
        said.note("No " + " or ".join(kind.description for kind in kinds) + " is stored.")
        return 0
    names = _and(["the " + kind.description for kind in stored])
    if not request.yes:
        if not env.can_ask:
            raise UsageProblem(
                f"igor deregister asks before it removes {names}, and standard input is not "
                "a terminal: nothing was removed.",
                "Add --yes to remove without asking.",
            )
        if not _ask_yes(env, f"Remove {names} from the keyring?"):
            said.note("Nothing removed.")
            return 1
    for kind, removed in deregister(kinds):
        if removed:
            said.success(f"Removed the {kind.description}.")
        else:
            said.note(f"No {kind.description} was stored.")
    return 0


def _reset(request: ResetRequest, env: Environment) -> int:
    from igor_cli.connect import sandbox_state_path, sandbox_url
    from igor_cli.errors import UsageProblem

    if not env.in_sandbox:
        raise UsageProblem(
            "`igor reset` resets the sandbox only; it never touches your Cloud 66 account.",
            "Run `igor --sandbox reset`.",
        )
    sandbox_url(env)  # the simulator, on its state file
    env.simulator.reset()  # under its file lock: a running `igor --sandbox serve` adopts it
    renderer(env).success(
        f"The sandbox is reset: its sample stacks as first seeded ({sandbox_state_path(env)})."
    )
    return 0


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _confirm_reset(request: ConfirmResetRequest, env: Environment) -> int:
    """An operator's word that a store that was reset may be used as it is now."""
    from igor_cli.state.continuity import clock_time

    store = env.state()
    before, now = env.continuity(store).confirm()
    said = renderer(env)
    if before is now:
        said.note(f"igor's state store at {store.url} was not reset: nothing to confirm.")
        return 1
    if before is None:
        said.success(f"Marked igor's state store at {store.url}; changes may go on.")
        return 0
    noticed = f" (noticed at {clock_time(before.at)} by {before.by})" if before.reset else ""
    said.success(f"Confirmed the reset of igor's state store at {store.url}{noticed}: "
                 "changes may go on.")  # fmt: skip
    said.note("Locks taken before the reset are gone; `igor locks` shows those taken since.")
    return 0


def _doctor(request: DoctorRequest, env: Environment) -> int:
    from igor_cli.registration import doctor

    checks, code = doctor(env)
    if request.as_json:
        found = [{"name": c.name, "ok": c.ok, "detail": c.detail, **c.facts} for c in checks]
        data = {"ok": code == 0, "exit_code": int(code), "checks": found}
        env.out.write("".join(line + "\n" for line in request.as_json.lines(data, indent=2)))
        return int(code)
    said = renderer(env)
    for check in checks:
        said.check(check.name, check.ok, check.detail)
    return int(code)


# -- failures that reach the edge ------------------------------------------------


def _failed(exc: Exception, env: Environment) -> int:
    """Say why a command failed and choose its exit code; only bugs are "unexpected"."""
    import os

    from igor_cli.errors import IgorError

    if isinstance(exc, IgorError):  # a typed error a command left to the edge
        with contextlib.suppress(OSError, ValueError):
            renderer(env).error(exc)
        return int(exc.exit_code)
    if isinstance(exc, OSError) and (code := _os_error(exc)) is not None:
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


def _os_error(error: OSError) -> int | None:
    """What the system refused, said plainly: a full disk, a closed pipe; None if unsure."""
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
