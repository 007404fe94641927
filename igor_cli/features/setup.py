"""The shell-only commands: set-up (register, deregister, doctor, slack-manifest,
completion, the sandbox's reset, confirming a reset state store) and the bot.

Each request is a `ShellCommand`: the terminal edge runs it (`run`), in a shell;
chat never does (they are not chat commands, nor `Request`s).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, ClassVar

import typer

from igor_cli.cli import BOT, Json, UsageError, command
from igor_cli.core.request import ShellCommand

if TYPE_CHECKING:
    from igor_cli.config import Environment
    from igor_cli.json_output import JsonOutput
    from igor_cli.render.terminal import TerminalRenderer

COMMANDS = {
    "serve": (), "chat": (), "slack-manifest": (), "register": (), "deregister": (),
    "doctor": (), "completion": (), "confirm-reset": (), "reset": (),
}  # fmt: skip

# -- the commands ----------------------------------------------------------------------


@command(
    "serve",
    group=BOT,
    examples=("igor serve", "igor serve --http 0.0.0.0:3000", "igor --sandbox serve"),
)
def serve_command(
    listen: Annotated[
        str | None,
        typer.Option(
            "--http", metavar="[[HOST:]PORT]", show_default=False,
            help="Take Slack's requests over HTTP at /slack/events instead of Socket Mode "
            "(alone: 127.0.0.1:3000).",
        ),
    ] = None,
) -> ServeRequest:  # fmt: skip
    """Run the Slack bot over Socket Mode, or HTTP with --http.

    It runs until SIGTERM or Ctrl-C. Socket Mode, the default, needs
    SLACK_BOT_TOKEN (xoxb-) and SLACK_APP_TOKEN (xapp-); HTTP mode (--http:
    Slack's requests at /slack/events, and GET /healthz) SLACK_BOT_TOKEN and
    SLACK_SIGNING_SECRET; or the secrets stored with `igor register --slack`
    (--slack --http). Both need a Cloud 66 token (or --sandbox).
    """
    return ServeRequest(listen)


@command("chat", group=BOT, examples=("igor chat", "igor --sandbox chat"))
def chat_command() -> ChatRequest:
    """Talk to the bot locally: type what you would type in Slack.

    Replies are the bot's own, rendered as text; deployments are followed as in
    Slack. Rehearse offline with `igor --sandbox chat`.
    """
    return ChatRequest()


@command(
    "slack-manifest",
    group=BOT,
    examples=(
        "igor slack-manifest > manifest.json",
        "igor slack-manifest --name deploybot",
        "igor slack-manifest --http https://igor.example.com",
    ),
)
def slack_manifest_command(
    name: Annotated[str, typer.Option("--name", help="The bot's name in Slack.")] = "igor",
    request_url: Annotated[
        str | None,
        typer.Option(
            "--http", metavar="URL", show_default=False,
            help="For HTTP mode: where Slack reaches igor serve --http (its /slack/events).",
        ),
    ] = None,
) -> ManifestRequest:  # fmt: skip
    """Print the Slack app manifest igor needs (JSON; Slack accepts it as is).

    Create the app from it at api.slack.com/apps (From a manifest), then make
    the app-level token (connections:write) and install it to get the bot token.
    With --http, the app sends its requests to URL instead of Socket Mode: no
    app-level token, and the signing secret is on the app's Basic Information page.
    """
    return ManifestRequest(name, request_url)


Stdin = Annotated[
    bool,
    typer.Option(
        "--stdin", help="Read the token(s) from standard input, one a line (for scripts)."
    ),
]


# Extra arguments reach the function (ctx.args) instead of click's error, which would echo them.
@command(
    "register",
    context_settings={"allow_extra_args": True},
    examples=(
        "igor register",
        "igor register --slack",
        "igor register --slack --http",
        'printf "%s\\n" "$TOKEN" | igor register --stdin',
    ),
)
def register_command(
    ctx: typer.Context,
    slack: Annotated[
        bool, typer.Option("--slack", help="Register the Slack bot and app tokens instead.")
    ] = False,
    http: Annotated[
        bool,
        typer.Option(
            "--http", help="With --slack: the bot token and the signing secret (HTTP mode)."
        ),
    ] = False,
    stdin: Stdin = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a stored token that works without asking.")
    ] = False,
) -> RegisterRequest:
    """Check a token with its API and store it in the OS keyring.

    Asks for the Cloud 66 personal access token (hidden), or with --slack for
    the Slack bot token (xoxb-) and app-level token (xapp-), with --slack --http
    for the bot token and the app's signing secret, and says where to find each.
    Piped in (standard input not a terminal), a token is read as with --stdin.
    Tokens are never taken as arguments: they would show in `ps` and your shell
    history.
    """
    if ctx.args:  # most likely a token: refused without repeating it
        raise UsageError(
            "igor register takes no arguments: a token there shows in `ps` and your shell "
            "history (if you typed one, replace it). Paste it at the hidden prompt of "
            "`igor register`, or pipe it in with --stdin.",
            ctx,
        )
    return RegisterRequest(slack=slack or http, stdin=stdin, force=force, http=http)


@command("deregister", examples=("igor deregister", "igor deregister --slack --yes"))
def deregister_command(
    cloud66: Annotated[bool, typer.Option("--cloud66", help="Only the Cloud 66 token.")] = False,
    slack: Annotated[bool, typer.Option("--slack", help="Only the Slack tokens.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> DeregisterRequest:
    """Remove igor's tokens from the OS keyring (all of them, or those named).

    Asks first, naming the ones stored; without a terminal, it needs --yes.
    """
    return DeregisterRequest(cloud66=cloud66, slack=slack, yes=yes)


@command("doctor", examples=("igor doctor", "igor doctor --json", "igor --sandbox doctor"))
def doctor_command(as_json: Json = None) -> DoctorRequest:
    """Check igor's set-up: where each token comes from and whether it is accepted.

    Also the keyring, the API URLs in use, and the scopes each token has where
    its API tells. Exit code 0 when `igor list` would work, 2 when a setting is
    wrong, else igor's code for what fails (4: token missing or rejected).
    """
    return DoctorRequest(as_json=as_json)


class Shell(StrEnum):
    """The shells igor completes in."""

    bash = "bash"
    zsh = "zsh"
    fish = "fish"


@command(
    "completion",
    examples=(
        "igor completion bash > ~/.local/share/bash-completion/completions/igor",
        "igor completion zsh > ~/.zfunc/_igor   # ~/.zfunc in $fpath before compinit",
        "igor completion fish > ~/.config/fish/completions/igor.fish",
        "igor completion --install              # the same, for $SHELL",
    ),
)
def completion_command(
    shell: Annotated[
        Shell | None,
        typer.Argument(
            metavar="SHELL",
            show_default=False,
            help="bash, zsh or fish (default: the one $SHELL names).",
        ),
    ] = None,
    install: Annotated[
        bool,
        typer.Option("--install", help="Write it where the shell loads it by itself."),
    ] = False,
) -> CompletionRequest:
    """Print the TAB completion script for bash, zsh or fish (or install it), like
    `gh completion -s SHELL`.
    """
    return CompletionRequest(shell.value if shell else None, install)


@command("confirm-reset", examples=("igor locks", "igor confirm-reset"))
def confirm_reset_command() -> ConfirmResetRequest:
    """Let changes go on after igor's state store was reset (a Redis that came back empty).

    Such a store has lost every lock, so igor refuses changes until an operator
    has checked: look at `igor locks`, lock again what must stay locked, then run
    this. A shell command only: chat cannot lift it.
    """
    return ConfirmResetRequest()


@command("reset", examples=("igor --sandbox reset", "igor reset --sandbox"))
def reset_command() -> ResetRequest:
    """Reset the sandbox: its sample stacks as first seeded, nothing deploying.

    Only with --sandbox (or IGOR_SANDBOX=1): it never touches your Cloud 66 account.
    """
    return ResetRequest()


# -- their requests --------------------------------------------------------------------


@dataclass(frozen=True)
class ServeRequest(ShellCommand):
    """`igor serve`: the Slack bot until SIGTERM or Ctrl-C."""

    http: str | None = None  # `--http [HOST:]PORT` ("": the default address); None: Socket Mode

    def run(self, env: Environment) -> int:
        """Do it for the person at this terminal; the exit code."""
        return _serve(self, env)


@dataclass(frozen=True)
class ChatRequest(ShellCommand):
    """`igor chat`: the local chat console."""

    def run(self, env: Environment) -> int:
        """Do it for the person at this terminal; the exit code."""
        return _chat(self, env)


@dataclass(frozen=True)
class ManifestRequest(ShellCommand):
    """`igor slack-manifest`."""

    name: str = "igor"
    http: str | None = None  # HTTP mode's request URL; None: Socket Mode

    def run(self, env: Environment) -> int:
        """Do it for the person at this terminal; the exit code."""
        return _manifest(self, env)


@dataclass(frozen=True)
class RegisterRequest(ShellCommand):
    """`igor register`."""

    slack: bool = False
    stdin: bool = False
    force: bool = False
    http: bool = False  # the Slack secrets of HTTP mode: the bot token and the signing secret

    def run(self, env: Environment) -> int:
        """Do it for the person at this terminal; the exit code."""
        return _register(self, env)


@dataclass(frozen=True)
class DeregisterRequest(ShellCommand):
    """`igor deregister`."""

    cloud66: bool = False
    slack: bool = False
    yes: bool = False

    def run(self, env: Environment) -> int:
        """Do it for the person at this terminal; the exit code."""
        return _deregister(self, env)


@dataclass(frozen=True)
class DoctorRequest(ShellCommand):
    """`igor doctor`."""

    json_fields: ClassVar[tuple[str, ...]] = ("ok", "exit_code", "checks")

    as_json: JsonOutput | None = None

    def run(self, env: Environment) -> int:
        """Do it for the person at this terminal; the exit code."""
        return _doctor(self, env)


@dataclass(frozen=True)
class CompletionRequest(ShellCommand):
    """`igor completion [SHELL] [--install]` (and `--show-completion`, `--install-completion`)."""

    shell: str | None = None  # None: $SHELL's
    install: bool = False

    def run(self, env: Environment) -> int:
        """Print the shell's script, or install it."""
        from igor_cli.tab import completion

        return completion(self.shell, self.install, env)


@dataclass(frozen=True)
class ResetRequest(ShellCommand):
    """`igor --sandbox reset`."""

    def run(self, env: Environment) -> int:
        """Do it for the person at this terminal; the exit code."""
        return _reset(self, env)


@dataclass(frozen=True)
class ConfirmResetRequest(ShellCommand):
    """`igor confirm-reset`."""

    def run(self, env: Environment) -> int:
        """Do it for the person at this terminal; the exit code."""
        return _confirm_reset(self, env)


# -- running them ---------------------------------------------------------------------


def renderer(env: Environment) -> TerminalRenderer:
    """Words for a person at this terminal (the terminal edge's, loaded when one runs: a TAB
    that lists the commands loads this module, not the edge)."""
    from igor_cli.terminal import renderer as of_terminal

    return of_terminal(env)


def _serve(request: ServeRequest, env: Environment) -> int:
    from igor_cli.chat.slack import configure_logging, serve

    configure_logging()
    return serve(env, report=renderer(env).error, http=request.http)


def _chat(request: ChatRequest, env: Environment) -> int:
    from igor_cli.chat.console import run_console
    from igor_cli.identity import Origin

    if env.in_sandbox:
        from igor_cli.terminal import SANDBOX_NOTE

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
