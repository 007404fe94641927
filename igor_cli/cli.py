"""The igor command line: one definition of each option, shared by every command.

The command functions only turn options into a request and hand it to whoever
is running them (`ctx.obj`): in a shell that is `ShellSession`, which performs
it and renders the outcome; in chat it is the Slack bridge. So chat text and
argv go through the very same parser, usage errors and help included.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NewType, NoReturn, Protocol, TypeVar

import typer
from typer._click import ClickException, Context, echo
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup

from igor_cli import __version__

if TYPE_CHECKING:
    from igor_cli.actions import Request
    from igor_cli.config import Environment
    from igor_cli.render.terminal import TerminalRenderer

CHAT_COMMANDS = ("deploy", "cancel", "list", "help", "version")
ALIASES = {
    "list": ("get", "show", "find", "stacks"),
    "deploy": ("redeploy",),
    "cancel": ("stop", "exit", "halt"),
}
# What chat may run (the shell has more: serve, register, ...).
CHAT_ALLOWED = frozenset(CHAT_COMMANDS).union(*ALIASES.values())

# -- help and usage that work the same in a shell and in chat -----------------


class HelpRequested(ClickException):
    """`-h`: the help text, shown on stdout with exit code 0 (or replied in chat)."""

    exit_code = 0

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def show(self, file: Any = None) -> None:
        """Print the help (stdout unless told otherwise)."""
        echo(self.text, file=file)


def _raise_help(ctx: Context, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        raise HelpRequested(ctx.get_help())


class IgorCommand(TyperCommand):
    """A command whose `-h` raises `HelpRequested` instead of printing."""

    def get_help_option(self, ctx: Context) -> Any:
        """The usual help option, with a callback that raises."""
        option = super().get_help_option(ctx)
        if option is not None:
            option.callback = _raise_help
        return option


class IgorGroup(TyperGroup):
    """The `igor` group: `-h` raises, and unknown commands list the known ones."""

    def get_help_option(self, ctx: Context) -> Any:
        """The usual help option, with a callback that raises."""
        option = super().get_help_option(ctx)
        if option is not None:
            option.callback = _raise_help
        return option

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """Find the command; name an unknown one and list the valid ones."""
        name = args[0] if args else ""
        command = self.get_command(ctx, name.lower())
        if command is None:
            shown = [n for n, c in self.commands.items() if not c.hidden]
            raise unknown_command(name, ctx, [*shown, "help", "version"])
        return name.lower(), command, args[1:]


def unknown_command(name: str, ctx: Context, commands: list[str]) -> UsageError:
    """The usage error for a command igor does not have (here: in chat or in a shell)."""
    return UsageError(f"Unknown command {name!r}. Commands: {', '.join(commands)}.", ctx)


# -- who runs the request -----------------------------------------------------


class Submitter(Protocol):
    """Whoever runs the command functions: the shell session or the chat bridge."""

    def submit(self, request: Request) -> None:
        """Perform (shell) or capture (chat) a request."""


def _submit(ctx: typer.Context, request: Request) -> None:
    submitter: Submitter | None = ctx.obj if hasattr(ctx.obj, "submit") else None
    if submitter is None:
        from igor_cli.config import Environment

        submitter = ShellSession(Environment())
    submitter.submit(request)


class ShellSession:
    """Runs requests in a shell: perform, render, exit with the outcome's code."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    def submit(self, request: Request) -> NoReturn:
        """Perform the request and exit."""
        from igor_cli.shell import run

        raise typer.Exit(run(self.env, request))


# -- the options (one definition each) ----------------------------------------

Switch = NewType("Switch", bool)
_SWITCH_WORDS = {
    "true": True, "yes": True, "on": True, "1": True,
    "false": False, "no": False, "off": False, "0": False,
}  # fmt: skip


def parse_switch(value: str | bool) -> Switch:
    """`-w` values: true/false/yes/no/on/off/1/0, any case."""
    if isinstance(value, bool):
        return Switch(value)
    try:
        return Switch(_SWITCH_WORDS[value.strip().lower()])
    except KeyError:
        raise typer.BadParameter(f"{value!r} is not true or false.") from None


def _complete_stacks(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    from igor_cli.completion import stack_names

    return stack_names(ctx, incomplete)


def _complete_environments(ctx: typer.Context, incomplete: str) -> list[str]:
    from igor_cli.completion import environments

    return environments(ctx, incomplete)


def _complete_services(ctx: typer.Context, incomplete: str) -> list[str]:
    from igor_cli.completion import services

    return services(ctx, incomplete)


StackName = Annotated[
    str,
    typer.Option(
        "-s", "--stack", metavar="NAME", show_default=False,
        help="The stack's exact name (any case).", autocompletion=_complete_stacks,
    ),
]  # fmt: skip
StackFilter = Annotated[
    str | None,
    typer.Option(
        "-s", "--stack", metavar="TEXT",
        help="Only stacks whose name contains TEXT (any case).",
        autocompletion=_complete_stacks,
    ),
]  # fmt: skip
EnvironmentName = Annotated[
    str | None,
    typer.Option(
        "-e", "--environment", metavar="ENV",
        help="The stack's environment, e.g. production (any case).",
        autocompletion=_complete_environments,
    ),
]  # fmt: skip
Services = Annotated[
    list[str] | None,
    typer.Option(
        "-v", "--service", metavar="NAME[:TAG]",
        help="Only this service (repeat, or separate with commas).",
        autocompletion=_complete_services,
    ),
]  # fmt: skip
Wait = Annotated[
    Switch,
    typer.Option(
        "-w", "--wait", metavar="true|false", parser=parse_switch, show_default=False,
        help="When the stack is busy with another deployment, queue behind it "
        "(true, the default) or give up (false).",
        autocompletion=lambda: ["true", "false"],
    ),
]  # fmt: skip
NoWait = Annotated[bool, typer.Option("--no-wait", help="Same as -w false.")]
Follow = Annotated[
    bool, typer.Option("--follow", help="Show progress until the deployment finishes.")
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Check everything, deploy nothing, say what would happen.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]


# -- the app ------------------------------------------------------------------

app = typer.Typer(
    name="igor",
    cls=IgorGroup,
    help="igor: deploy, cancel and list your Cloud 66 stacks, from a shell or from Slack.",
    epilog="Try it without an account: igor --sandbox list",
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        echo(f"igor {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    ctx: typer.Context,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Use the built-in Cloud 66 simulator instead of your account "
            "(also IGOR_SANDBOX=1).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Show igor's version and exit."
        ),
    ] = False,
) -> None:
    """Deploy, cancel and list your Cloud 66 stacks, from a shell or from Slack."""
    from igor_cli.config import Environment

    env = ctx.obj if isinstance(ctx.obj, Environment) else Environment()
    if sandbox:
        env.sandbox = True
    ctx.obj = ShellSession(env)


CommandFunction = TypeVar("CommandFunction", bound=Callable[..., None])


def command(name: str, **kwargs: Any) -> Callable[[CommandFunction], CommandFunction]:
    """Register a command and its aliases (hidden from the list, named in its help)."""
    aliases = ALIASES.get(name, ())

    def register(function: CommandFunction) -> CommandFunction:
        help_text = inspect.cleandoc(function.__doc__ or "")
        if aliases:
            help_text += "\n\nAliases: " + ", ".join(aliases) + "."
        app.command(name, cls=IgorCommand, help=help_text, **kwargs)(function)
        for alias in aliases:
            app.command(alias, cls=IgorCommand, help=help_text, hidden=True, **kwargs)(function)
        return function

    return register


@command("list")
def list_command(
    ctx: typer.Context,
    stack: StackFilter = None,
    environment: EnvironmentName = None,
    as_json: Json = False,
) -> None:
    """List your stacks: status, health and last activity."""
    from igor_cli.actions import ListRequest

    _submit(ctx, ListRequest(stack, environment, as_json))


@command("deploy")
def deploy_command(
    ctx: typer.Context,
    stack: StackName,
    environment: EnvironmentName = None,
    service: Services = None,
    wait: Wait = Switch(True),
    no_wait: NoWait = False,
    follow: Follow = False,
    dry_run: DryRun = False,
    as_json: Json = False,
) -> None:
    """Deploy a stack (or only some of its services).

    If the stack is busy with a deployment igor did not start, the deploy is
    queued behind it unless -w false.
    """
    from igor_cli.actions import DeployRequest

    _submit(
        ctx,
        DeployRequest(
            stack,
            environment,
            tuple(service or ()),
            wait=bool(wait) and not no_wait,
            follow=follow,
            dry_run=dry_run,
            as_json=as_json,
        ),
    )


@command("cancel")
def cancel_command(
    ctx: typer.Context,
    stack: StackName,
    environment: EnvironmentName = None,
    service: Services = None,
    as_json: Json = False,
) -> None:
    """Cancel the stack's running deployment."""
    from igor_cli.actions import CancelRequest

    _submit(ctx, CancelRequest(stack, environment, tuple(service or ()), as_json))


@command("version", hidden=True)
def version_command(ctx: typer.Context, as_json: Json = False) -> None:
    """Show igor's version."""
    from igor_cli.actions import VersionRequest

    _submit(ctx, VersionRequest(as_json))


@command("help", hidden=True)
def help_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[COMMAND]", show_default=False)] = None,
) -> None:
    """Show help for igor or for one command."""
    parent = ctx.parent or ctx
    group = parent.command
    if not name:
        raise HelpRequested(group.get_help(parent))
    assert isinstance(group, IgorGroup)
    _, found, _ = group.resolve_command(parent, [name])
    with found.make_context(name.lower(), [], parent=parent, resilient_parsing=True) as sub:
        raise HelpRequested(found.get_help(sub))


@command("serve")
def serve_command(ctx: typer.Context) -> None:
    """Run the Slack bot (Socket Mode) until SIGTERM or Ctrl-C.

    Needs SLACK_BOT_TOKEN (xoxb-) and SLACK_APP_TOKEN (xapp-), or the tokens
    stored with `igor register --slack`, and a Cloud 66 token (or --sandbox).
    """
    from igor_cli.chat.slack import configure_logging, serve

    configure_logging()
    raise typer.Exit(serve(_environment(ctx)))


@command("chat")
def chat_command(ctx: typer.Context) -> None:
    """Talk to the bot locally: type what you would type in Slack.

    Replies are the bot's own, rendered as text; deployments are followed as in
    Slack. Rehearse offline with `igor --sandbox chat`.
    """
    import sys

    from igor_cli.chat.shell import run_console
    from igor_cli.shell import shell_origin

    raise typer.Exit(run_console(_environment(ctx), shell_origin().user, sys.stdin, sys.stdout))


@command("slack-manifest")
def slack_manifest_command(
    name: Annotated[str, typer.Option("--name", help="The bot's name in Slack.")] = "igor",
) -> None:
    """Print the Slack app manifest igor needs (JSON; Slack accepts it as is).

    Create the app from it at api.slack.com/apps (From a manifest), then make
    the app-level token (connections:write) and install it to get the bot token.
    """
    import json

    from igor_cli.chat.manifest import manifest

    echo(json.dumps(manifest(name), indent=2))


Stdin = Annotated[
    bool,
    typer.Option(
        "--stdin", help="Read the token(s) from standard input, one a line (for scripts)."
    ),
]


# Extra arguments reach the function (ctx.args) instead of click's error, which would echo them.
@command("register", context_settings={"allow_extra_args": True})
def register_command(
    ctx: typer.Context,
    slack: Annotated[
        bool, typer.Option("--slack", help="Register the Slack bot and app tokens instead.")
    ] = False,
    stdin: Stdin = False,
) -> None:
    """Check a token with its API and store it in the OS keyring.

    Asks for the Cloud 66 personal access token (hidden), or with --slack for
    the Slack bot token (xoxb-) and app-level token (xapp-). Tokens are never
    taken as arguments: they would show in `ps` and your shell history.
    """
    import sys

    from igor_cli.credentials import TokenKind
    from igor_cli.registration import register

    if ctx.args:  # most likely a token: refused without repeating it
        raise UsageError(
            "igor register takes no arguments: a token there shows in `ps` and your shell "
            "history (if you typed one, replace it). Paste it at the hidden prompt of "
            "`igor register`, or pipe it in with --stdin.",
            ctx,
        )
    kinds = [TokenKind.SLACK_BOT, TokenKind.SLACK_APP] if slack else [TokenKind.CLOUD66]

    def read(kind: TokenKind) -> str:
        if stdin:
            return sys.stdin.readline()
        return str(typer.prompt(kind.description, hide_input=True, err=True))

    def run(env: Environment, renderer: TerminalRenderer) -> int:
        for done in register(env, kinds, read):
            if done.kind is TokenKind.SIGNING_KEY:
                renderer.success("Created the confirmation signing key in the keyring.")
                renderer.note("Bot replicas on other machines need it too: set IGOR_SIGNING_KEY.")
                continue
            renderer.success(f"Registered the {done.kind.description}: {done.belongs_to}.")
            if done.shadowed_by_environment:
                renderer.note(f"{done.kind.variable} is set and still wins over the keyring.")
        return 0

    raise typer.Exit(_run_edge(ctx, run))


@command("deregister")
def deregister_command(
    ctx: typer.Context,
    cloud66: Annotated[bool, typer.Option("--cloud66", help="Only the Cloud 66 token.")] = False,
    slack: Annotated[bool, typer.Option("--slack", help="Only the Slack tokens.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove igor's tokens from the OS keyring (all of them, or those named)."""
    from igor_cli.credentials import TokenKind
    from igor_cli.registration import deregister

    kinds = [k for k in TokenKind if (cloud66 and k is TokenKind.CLOUD66) or (
        slack and k is not TokenKind.CLOUD66)] or list(TokenKind)  # fmt: skip

    def run(env: Environment, renderer: TerminalRenderer) -> int:
        names = ", ".join(k.description for k in kinds)
        if not yes and not typer.confirm(f"Remove {names} from the keyring?", err=True):
            renderer.note("Nothing removed.")
            return 1
        for kind, removed in deregister(kinds):
            if removed:
                renderer.success(f"Removed the {kind.description}.")
            else:
                renderer.note(f"No {kind.description} was stored.")
        return 0

    raise typer.Exit(_run_edge(ctx, run))


@command("doctor")
def doctor_command(ctx: typer.Context) -> None:
    """Check igor's set-up: where each token comes from and whether it is accepted."""
    from igor_cli.registration import doctor

    def run(env: Environment, renderer: TerminalRenderer) -> int:
        checks, code = doctor(env)
        for check in checks:
            renderer.check(check.name, check.ok, check.detail)
        return int(code)

    raise typer.Exit(_run_edge(ctx, run))


def _run_edge(ctx: typer.Context, run: Callable[[Environment, TerminalRenderer], int]) -> int:
    """Run a shell-only command: typed errors become a message and their exit code."""
    from igor_cli.errors import IgorError
    from igor_cli.render.terminal import TerminalRenderer

    env = _environment(ctx)
    renderer = TerminalRenderer(env.out, env.err, env.clock())
    try:
        return run(env, renderer)
    except IgorError as error:
        renderer.error(error)
        return int(error.exit_code)


def _environment(ctx: typer.Context) -> Environment:
    session = ctx.find_object(ShellSession)
    if session is not None:
        return session.env
    from igor_cli.config import Environment

    return Environment()


def run_shell(args: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the command line; returns the exit code."""
    import sys

    try:
        try:
            result = app(args=args, prog_name="igor", obj=env, standalone_mode=False)
        except HelpRequested as shown:
            shown.show()
            result = 0
        except ClickException as problem:
            problem.show()
            return problem.exit_code
        if sys.stdout is not None:
            sys.stdout.flush()  # a failed write is reported here, not at exit
    except typer.Abort as abort:
        if isinstance(abort.__context__, KeyboardInterrupt):
            return 130  # Ctrl-C at a prompt
        echo("Aborted.", err=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the edge: every failure ends in a sentence
        return _failed(exc, env)
    return result if isinstance(result, int) else 0


def _failed(exc: Exception, env: Environment | None) -> int:
    """Say why a command failed and choose its exit code; only bugs are "unexpected"."""
    import contextlib
    import os

    from igor_cli.errors import IgorError

    if isinstance(exc, IgorError):  # a typed error a command left to the edge
        from igor_cli.config import Environment
        from igor_cli.render.terminal import TerminalRenderer

        run_in = env or Environment()
        with contextlib.suppress(OSError, ValueError):
            TerminalRenderer(run_in.out, run_in.err, run_in.clock()).error(exc)
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


def _say(line: str) -> None:
    """A last word on stderr, which may be broken too."""
    import contextlib
    import sys

    with contextlib.suppress(OSError, ValueError):
        echo(line, file=sys.stderr)


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


def _print_scrubbed_traceback(exc: BaseException, env: Environment | None) -> None:
    """IGOR_DEBUG=1: the traceback, with every token igor knows replaced by "[token]"."""
    import traceback

    from igor_cli.config import Environment
    from igor_cli.credentials import scrub

    text = "".join(traceback.format_exception(exc))
    _say(scrub(text, env or Environment()).rstrip("\n"))
