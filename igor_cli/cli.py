"""The igor command line: one definition of each option, shared by every command.

`parse(words)` turns argv or chat words into a `Parsed` (the command and its
request); it performs nothing. The terminal edge (`terminal.py`) and the chat
bridge both parse here and then perform, so chat text and argv go through the
very same parser, usage errors and help included. The click group is built
once per process.

This is the one module that imports `typer._click`, typer's vendored click:
igor needs its exceptions, contexts and completion classes, which typer does
not re-export (hence `typer<0.30` in pyproject). Other modules take them from
here.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NewType, TypeVar

import typer
from typer._click import ClickException, Context, echo
from typer._click.core import Command, ParameterSource
from typer._click.exceptions import MissingParameter, UsageError
from typer._click.parser import _OptionParser
from typer._click.shell_completion import CompletionItem, ShellComplete, _resolve_incomplete
from typer._coercion import RuntimeParam
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import Abort, Exit

from igor_cli import __version__
from igor_cli.json_output import BadJsonRequest, JsonOutput

if TYPE_CHECKING:
    from igor_cli.targets import Default

__all__ = [
    "Abort",
    "ClickException",
    "Command",
    "CompletionItem",
    "CompletionRequested",
    "Context",
    "Exit",
    "HelpRequested",
    "ParameterSource",
    "Parsed",
    "ShellComplete",
    "UsageError",
    "parse",
    "resolve_incomplete",
]

resolve_incomplete = _resolve_incomplete  # for completion.py, which may not import typer._click

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


TARGET = "stack_named_first"  # `igor deploy shop`: no command has a parameter so named


def _stack_word() -> Any:
    """The argument that takes the stack's name typed first, for one more command."""
    return copy.copy(_built_stack_word())


@functools.cache
def _built_stack_word() -> Any:
    """The argument that takes the stack's name typed first: one definition for every command.

    Built by typer from an ordinary declaration, so it completes and converts as
    typer's arguments do (`_get_param` is typer's own step for one parameter).
    """
    from typer.main import _get_param
    from typer.models import ParamMeta

    info = typer.Argument(
        None,
        metavar="STACK",
        show_default=False,
        autocompletion=_complete_stacks,
        hidden=True,
    )
    return _get_param(ParamMeta(name=TARGET, default=info, annotation=str | None))


class IgorCommand(TyperCommand):
    """A command whose `-h` raises `HelpRequested` instead of printing.

    Its epilog holds its examples, one a line, shown as an Examples section.
    A command with `-s` also takes the stack as its first word (`igor deploy
    shop`); a command whose `-s` is required names one stack, and only such a
    command takes a default target (targets.py) for `-s` and `-e`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taken = {p.name for p in self.params} & {TARGET, "sandbox"}
        if taken:  # a command's own parameter would be shadowed: fail at definition
            raise TypeError(f"igor {self.name}: {', '.join(sorted(taken))} is igor's own name")
        self.params.append(_sandbox_flag())
        json_option = next((p for p in self.params if p.name == "as_json"), None)
        if json_option is not None:  # --json [FIELDS], and --jq with it
            json_option.igor_bare_value = JSON_EVERY_FIELD  # type: ignore[attr-defined]
            self.params.append(_jq_option())
        listen = next((p for p in self.params if p.name == "listen"), None)
        if listen is not None:  # serve's --http [[HOST:]PORT]: alone, the default address
            listen.igor_bare_value = ""  # type: ignore[attr-defined]
        # A typer option (typer's MissingParameter wants one, not click's base class).
        self.stack_option: Any = next((p for p in self.params if p.name == "stack"), None)
        self.names_a_stack = False
        if self.stack_option is not None:
            # Required after the first word and the defaults had their say (parse_args).
            self.names_a_stack, self.stack_option.required = self.stack_option.required, False
            self.params.append(_stack_word())

    def make_parser(self, ctx: Context) -> _OptionParser:
        """click's parser, where `--json` takes its field list only when one follows."""
        parser = _OptionalValues(ctx)
        for param in self.get_params(ctx):
            param.add_to_parser(parser, ctx)
        return parser

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        """Read the options; the stack's name may come first instead of -s."""
        rest = super().parse_args(ctx, args)
        if not ctx.resilient_parsing:
            _refuse_hidden(self, ctx)
        if ctx.params.pop("sandbox", False):  # after the command: as if before it
            ctx.find_root().params["sandbox"] = True
        jq = ctx.params.pop("jq", None)
        if jq is not None:  # --jq implies --json
            shape = ctx.params.get("as_json") or JsonOutput()
            ctx.params["as_json"] = JsonOutput(shape.fields, jq)
        if self.stack_option is None:
            return rest
        word = ctx.params.pop(TARGET, None)
        typed = ctx.get_parameter_source("stack") is ParameterSource.COMMANDLINE
        if word is not None:
            if typed and ctx.params.get("stack") != word:
                raise UsageError(
                    f"Two stacks named: {word!r} and -s {ctx.params.get('stack')!r}; name one.",
                    ctx,
                )
            ctx.params["stack"] = word
            ctx.set_parameter_source("stack", ParameterSource.COMMANDLINE)
        if self.names_a_stack and ctx.params.get("stack") is None and not ctx.resilient_parsing:
            meant = NAMED_ONLY.get(self.name or "")
            if meant is not None:
                raise UsageError(
                    f"`{self.name}` {meant}s only a stack named after it (`{self.name} shop`), "
                    f"never a default one: alone it could {meant} the default stack by "
                    f"accident. Name the stack, or type `{meant}`, which takes the default.",
                    ctx,
                )
            raise MissingParameter(
                "Name it after the command or with -s.", ctx=ctx, param=self.stack_option
            )
        return rest

    def get_help_option(self, ctx: Context) -> Any:
        """The usual help option, with a callback that raises."""
        option = super().get_help_option(ctx)
        if option is not None:
            option.callback = _raise_help
            _convert_plainly(option)
        return option

    def format_epilog(self, ctx: Context, formatter: Any) -> None:
        """The examples, as they are typed (never re-wrapped)."""
        if self.epilog:
            with formatter.section("Examples"):
                for line in self.epilog.splitlines():
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")


JSON_EVERY_FIELD = ""  # what `--json` stands for when no field list follows it


class _OptionalValues(_OptionParser):
    """click's option parser, taking `--json`'s value only when one follows: `--json`
    alone (at the end, or before another option) is every field, as in gh. The vendored
    click has no optional values of its own."""

    def _get_value_from_state(self, option_name: str, option: Any, state: Any) -> Any:
        bare = getattr(option.obj, "igor_bare_value", None)
        if bare is not None and (not state.rargs or state.rargs[0][:1] in self._opt_prefixes):
            return bare
        return super()._get_value_from_state(option_name, option, state)


def _json_fields(value: str | JsonOutput | None) -> JsonOutput | None:
    """What --json was given: every field, or a comma-separated list of them."""
    if value is None or isinstance(value, JsonOutput):
        return value
    return JsonOutput.parse(value)


def _refuse_hidden(command: Command, ctx: Context) -> None:
    """A UsageError for a typed value with a character nobody sees, or one that reorders
    text: what goes to Cloud 66 (and into a question someone approves) is what it reads."""
    from igor_cli.outside_text import hidden_characters

    for param in command.params:
        value = ctx.params.get(param.name or "")
        for item in value if isinstance(value, list | tuple) else [value]:
            hidden = hidden_characters(item) if isinstance(item, str) else []
            if hidden:
                named = max(param.opts, key=len) if param.param_type_name == "option" else ""
                typed = ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE
                raise UsageError(
                    f"{named or 'The stack name'} holds {', '.join(hidden)}: a character that "
                    "cannot be seen or that turns text around, so it is not what it reads"
                    f"{'' if typed else ' (where it was set, not typed)'}; nothing was done.",
                    ctx,
                )


class IgorGroup(TyperGroup):
    """The `igor` group: `-h` raises, and unknown commands list the known ones."""

    def get_help_option(self, ctx: Context) -> Any:
        """The usual help option, with a callback that raises."""
        option = super().get_help_option(ctx)
        if option is not None:
            option.callback = _raise_help
            _convert_plainly(option)
        return option

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        """`igor -h deploy` is `igor deploy -h`: -h before a command asks for its help."""
        words = list(args)  # click's parser consumes the list it is given
        try:
            return super().parse_args(ctx, args)
        except HelpRequested:
            if not set(words) & set(ctx.help_option_names):
                raise  # --version
            _, rest, _ = self.make_parser(ctx).parse_args(args=words)
            name = rest[0].lower() if rest else ""
            command = self.get_command(ctx, name) if name else None
            if command is None:
                raise
            with command.make_context(name, [], parent=ctx, resilient_parsing=True) as sub:
                raise HelpRequested(command.get_help(sub)) from None

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Any, list[str]]:
        """Find the command; name an unknown one, suggest the closest, list the valid ones."""
        name = args[0] if args else ""
        command = self.get_command(ctx, name.lower())
        if command is None:
            shown = [name for _, names in self.grouped() for name in names]
            raise unknown_command(name, ctx, shown, list(self.commands))
        return name.lower(), command, args[1:]

    def grouped(self) -> list[tuple[str, list[str]]]:
        """The listed commands under their group's heading, the groups in GROUPS order."""
        groups: dict[str, list[str]] = {}
        for name, command in self.commands.items():
            if not command.hidden:
                panel = getattr(command, "rich_help_panel", None) or SETUP
                groups.setdefault(panel, []).append(name)
        order = {panel: number for number, panel in enumerate(GROUPS)}
        return sorted(groups.items(), key=lambda item: order.get(item[0], len(order)))

    def format_commands(self, ctx: Context, formatter: Any) -> None:
        """The commands under their group's heading, each with its whole first paragraph."""
        grouped = self.grouped()
        width = max((len(name) for _, names in grouped for name in names), default=0)
        for panel, names in grouped:
            rows = []
            for name in names:
                first = inspect.cleandoc(self.commands[name].help or "").split("\n\n")[0]
                rows.append((name.ljust(width), " ".join(first.split())))
            with formatter.section(panel):
                formatter.write_dl(rows)


def unknown_command(
    name: str, ctx: Context, commands: list[str], names: list[str] | None = None
) -> UsageError:
    """The usage error for a command igor does not have (here: in chat or in a shell):
    the closest of `names` (the commands and their aliases, `commands` when not given)
    is suggested."""
    import difflib

    close = difflib.get_close_matches(name.lower(), commands if names is None else names, n=1)
    suggestion = f" Did you mean {close[0]}?" if close else ""
    return UsageError(
        f"Unknown command {name!r}.{suggestion} Commands: {', '.join(commands)}.", ctx
    )


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
        help="The stack's exact name (any case); also taken without -s. Default: "
        "IGOR_STACK, .igor.toml or the config file (README: Default targets).",
        autocompletion=_complete_stacks,
    ),
]  # fmt: skip
StackFilter = Annotated[
    str | None,
    typer.Option(
        "-s", "--stack", metavar="TEXT",
        help="Only stacks whose name contains TEXT (any case); -s may be left out.",
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
# cancel accepts -v only to refuse it with the reason (Cloud 66 has no partial cancel);
# hidden, so neither its help nor TAB offers it.
RefusedServices = Annotated[list[str] | None, typer.Option("-v", "--service", hidden=True)]
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
Json = Annotated[
    JsonOutput | None,
    typer.Option(
        "--json", metavar="[FIELDS]", parser=_json_fields, show_default=False,
        help="Print JSON for programs: every field, or only FIELDS (comma-separated, as "
        "in gh).",
    ),
]  # fmt: skip
JQ = typer.Option(
    "--jq", metavar="EXPR", show_default=False,
    help="Filter the JSON with a jq expression (implies --json), as in gh.",
)  # fmt: skip
GitRef = Annotated[
    str | None,
    typer.Option(
        "--ref", metavar="REF", show_default=False,
        help="Deploy this branch, tag or commit (classic stacks; docker stacks take -v "
        "name:tag).",
    ),
]  # fmt: skip
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile", metavar="NAME", show_default=False,
        help="Deploy with this Cloud 66 deployment profile.",
    ),
]  # fmt: skip
CancelRunning = Annotated[
    bool,
    typer.Option("--running", help="Cancel the running deployment, whoever started it."),
]
# Hidden: Cloud 66's API cannot cancel a deploy that waits to start (README, "What
# Cloud 66 does not let igor do"); kept so that scripts using it hear why, not a usage error.
CancelQueued = Annotated[
    bool,
    typer.Option("--queued", hidden=True, help="Refused: Cloud 66 cannot cancel a waiting deploy."),
]
DeploymentId = Annotated[
    str | None,
    typer.Option(
        "--id", metavar="N", show_default=False,
        help="Cancel deployment N (one that is over is not sent).",
    ),
]  # fmt: skip


Reason = Annotated[
    str,
    typer.Option(
        "--reason", metavar="TEXT", show_default=False,
        help="Why: shown to whoever the lock holds back, told to the holder of a lock you "
        "force, or kept with a broken glass.",
    ),
]  # fmt: skip


BreakGlass = Annotated[
    bool,
    typer.Option(
        "--break-glass",
        help="Deploy during a freeze window (only people the freeze names; needs --reason; "
        "recorded).",
    ),
]
Count = Annotated[
    int,
    typer.Option(
        "-n", "--limit", metavar="N", min=1, show_default=False,
        help="Show the N newest deployments (default 10).",
    ),
]  # fmt: skip
PastDeploymentId = Annotated[
    str | None,
    typer.Option(
        "--to", metavar="ID", show_default=False,
        help="Go back to this past deployment instead (its id, from igor history).",
    ),
]  # fmt: skip
SourceEnvironment = Annotated[
    str,
    typer.Option(
        "--from", metavar="ENV", show_default=False,
        help="The environment whose running commit (or image tags) to carry.",
        autocompletion=_complete_environments,
    ),
]  # fmt: skip
TargetEnvironment = Annotated[
    str,
    typer.Option(
        "--to", metavar="ENV", show_default=False,
        help="The environment to deploy it to.", autocompletion=_complete_environments,
    ),
]  # fmt: skip
Wide = Annotated[
    bool,
    typer.Option(
        "--wide", help="Also show what each stack runs (one more request per stack; at most 50)."
    ),
]


# -- the app ------------------------------------------------------------------

app = typer.Typer(
    name="igor",
    cls=IgorGroup,
    help="igor: deploy, cancel and list your Cloud 66 stacks, from a shell or from Slack.",
    epilog="Try it without an account: igor --sandbox list",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,  # igor's own options below install igor's own scripts
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


# Before the command, or after it (every command takes it too, unlisted: IgorCommand).
SANDBOX = typer.Option(
    "--sandbox",
    help="Use the built-in Cloud 66 simulator instead of your account, before or after "
    "the command (also IGOR_SANDBOX=1).",
)


def _jq_option() -> Any:
    """--jq for one more command (one that takes --json)."""
    return copy.copy(_built_jq_option())


@functools.cache
def _built_jq_option() -> Any:
    """--jq: the definition above, as a command's own option."""
    from typer.main import _get_param
    from typer.models import ParamMeta

    info = copy.copy(JQ)  # written for Annotated: its first name sits in `default`
    info.param_decls, info.default = (info.default, *(info.param_decls or ())), None
    return _get_param(ParamMeta(name="jq", default=info, annotation=str | None))


def _sandbox_flag() -> Any:
    """--sandbox for one more command."""
    return copy.copy(_built_sandbox_flag())


@functools.cache
def _built_sandbox_flag() -> Any:
    """--sandbox as a command's own option: the definition above, unlisted in its help."""
    from typer.main import _get_param
    from typer.models import ParamMeta

    info = copy.copy(SANDBOX)  # written for Annotated: its first name sits in `default`
    info.param_decls, info.default = (info.default, *(info.param_decls or ())), False
    info.hidden = True
    return _get_param(ParamMeta(name="sandbox", default=info, annotation=bool))


class CompletionRequested(UsageError):
    """`--install-completion` or `--show-completion`: done by the terminal edge, in a shell.

    A usage error anywhere else (chat), so that nothing is ever installed there.
    """

    def __init__(self, ctx: Context, *, install: bool) -> None:
        super().__init__("Completion scripts are for a shell: see `igor completion -h`.", ctx)
        self.install = install


def _completion_option(ctx: Context, param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        raise CompletionRequested(ctx, install=param.name == "install_completion")


def _version(ctx: Context, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        # Like -h: a text to show with exit code 0, shown by whoever parsed.
        raise HelpRequested(f"igor {__version__}")


@app.callback()
def main(
    ctx: typer.Context,
    sandbox: Annotated[bool, SANDBOX] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Show igor's version and exit."
        ),
    ] = False,
    install_completion: Annotated[
        bool,
        typer.Option(
            "--install-completion",
            is_eager=True,
            callback=_completion_option,
            help="Install TAB completion for your shell ($SHELL); see `igor completion`.",
        ),
    ] = False,
    show_completion: Annotated[
        bool,
        typer.Option(
            "--show-completion",
            is_eager=True,
            callback=_completion_option,
            help="Print the TAB completion script for your shell ($SHELL).",
        ),
    ] = False,
) -> None:
    """Deploy, cancel and list your Cloud 66 stacks, from a shell or from Slack."""
    # `parse` reads --sandbox from the parsed options; nothing runs here.


# The groups of `igor -h`, in this order.
STACKS, BOT, SETUP = "Stacks", "The Slack bot", "Set-up and help"
GROUPS = (STACKS, BOT, SETUP)


@dataclass(frozen=True)
class CommandInfo:
    """What a command says about itself: its names, and whether chat may run it."""

    name: str
    aliases: tuple[str, ...] = ()
    chat: bool = False  # the shell has more: serve, register, ...
    # Aliases that act only on a stack named on the command line, never on a default
    # (`exit`: alone, it would cancel whatever the default target is).
    named_only: tuple[str, ...] = ()


COMMANDS: dict[str, CommandInfo] = {}
NAMED_ONLY: dict[str, str] = {}  # such an alias -> its command's name
CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


def command(
    name: str,
    *,
    aliases: tuple[str, ...] = (),
    chat: bool = False,
    named_only: tuple[str, ...] = (),
    group: str | None = None,
    examples: tuple[str, ...] = (),
    **kwargs: Any,
) -> Callable[[CommandFunction], CommandFunction]:
    """Register a command and its aliases (hidden from the list, named in its help).

    `named_only` are aliases that act only on a stack named on the command line,
    never on a default target; `group` is its heading in `igor -h` (chat commands
    work on stacks unless they say otherwise; the others set igor up); `examples`
    are lines typed in a shell, shown in its help. The function turns options into
    a request and returns it; it performs nothing.
    """
    if not set(named_only) <= set(aliases):
        raise ValueError(f"igor {name}: named_only must be among its aliases")

    def register(function: CommandFunction) -> CommandFunction:
        COMMANDS[name] = CommandInfo(name, aliases, chat, named_only)
        NAMED_ONLY.update(dict.fromkeys(named_only, name))
        help_text = inspect.cleandoc(function.__doc__ or "")
        if aliases:
            help_text += "\n\nAliases: " + ", ".join(aliases) + "."
        if named_only:
            help_text += (
                f" {_and_words(named_only)} act only on a stack named after them, never on "
                "a default."
            )
        kwargs.setdefault("rich_help_panel", group or (STACKS if chat else SETUP))
        kwargs.setdefault("epilog", "\n".join(examples) or None)
        app.command(name, cls=IgorCommand, help=help_text, **kwargs)(function)
        for alias in aliases:
            app.command(alias, cls=IgorCommand, help=help_text, hidden=True, **kwargs)(function)
        return function

    return register


def _and_words(words: tuple[str, ...]) -> str:
    """`exit and halt`; `a, b and c`."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


@command(
    "list",
    aliases=("get", "show", "find", "stacks"),
    chat=True,
    examples=("igor list", "igor list -e production", "igor list shop --json"),
)
def list_command(
    stack: StackFilter = None,
    environment: EnvironmentName = None,
    wide: Wide = False,
    as_json: Json = None,
) -> Any:  # a Request; typer reads annotations at run time
    """List your stacks: status, health and last activity."""
    from igor_cli.actions import ListRequest

    return ListRequest(stack, environment, as_json, wide=wide)


@command(
    "deploy",
    aliases=("redeploy",),
    chat=True,
    examples=(
        "igor deploy shop -e production --follow",
        "igor deploy -s shop -e staging -v web:1.4.2,worker",
        "igor deploy blog --ref release-2.1 --dry-run",
    ),
)
def deploy_command(
    stack: StackName,
    environment: EnvironmentName = None,
    service: Services = None,
    ref: GitRef = None,
    profile: Profile = None,
    wait: Wait = Switch(True),
    no_wait: NoWait = False,
    follow: Follow = False,
    dry_run: DryRun = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> Any:
    """Deploy a stack (or only some of its services, or a given ref).

    If the stack is busy with a deployment igor did not start, the deploy is
    queued behind it unless -w false.
    """
    from igor_cli.actions import DeployRequest

    return DeployRequest(
        stack,
        environment,
        tuple(service or ()),
        ref=(ref or "").strip(),
        profile=(profile or "").strip(),
        wait=bool(wait) and not no_wait,
        follow=follow,
        dry_run=dry_run,
        as_json=as_json,
        break_glass=break_glass,
        reason=reason.strip(),
    )


@command(
    "cancel",
    # The original Igor's aliases. `exit` and `halt` never take a default target: a
    # bare `exit` (typed to leave something) must not cancel the default stack.
    aliases=("stop", "exit", "halt"),
    named_only=("exit", "halt"),
    chat=True,
    examples=(
        "igor cancel shop -e production",
        "igor cancel -s blog --running",
        "igor cancel -s blog --json",
    ),
)
def cancel_command(
    ctx: typer.Context,
    stack: StackName,
    environment: EnvironmentName = None,
    service: RefusedServices = None,
    running: CancelRunning = False,
    queued: CancelQueued = False,
    deployment_id: DeploymentId = None,
    as_json: Json = None,
) -> Any:
    """Cancel the stack's running deployment.

    When a deployment runs and one igor asked for waits behind it, nothing is
    cancelled until you say --running (or --id N): Cloud 66's API cannot cancel
    a deploy that waits to start; its dashboard can.
    """
    from igor_cli.actions import CancelRequest, CancelTarget

    if service:  # -v is shared with deploy, but a cancel cannot take it: say why
        raise UsageError(
            "cancel takes no -v/--service: Cloud 66 cancels a whole deployment, not one "
            "service's part of it. Nothing was cancelled.",
            ctx,
        )
    given = {"--running": running, "--queued": queued, "--id": deployment_id}
    chosen = [name for name, value in given.items() if value]
    if len(chosen) > 1:
        raise UsageError(f"Choose one of {' and '.join(chosen)}.", ctx)
    target = (
        CancelTarget.RUNNING if running else CancelTarget.QUEUED if queued else CancelTarget.ANY
    )
    return CancelRequest(
        stack,
        environment,
        (),
        as_json,
        target=target,
        deployment_id=(deployment_id or "").strip(),
    )


@command(
    "watch",
    chat=True,
    examples=("igor watch shop -e production", "igor watch -s blog --json"),
)
def watch_command(
    stack: StackName,
    environment: EnvironmentName = None,
    as_json: Json = None,
) -> Any:
    """Follow the stack's running deployment to its end, as deploy --follow does.

    Ctrl-C stops watching; the deployment goes on.
    """
    from igor_cli.actions import WatchRequest

    return WatchRequest(stack, environment, as_json)


@command(
    "history",
    aliases=("deployments",),
    chat=True,
    examples=("igor history shop -e production", "igor history -s blog -n 30 --json"),
)
def history_command(
    stack: StackName,
    environment: EnvironmentName = None,
    limit: Count = 10,
    as_json: Json = None,
) -> Any:
    """Show the stack's deployments, newest first: outcome, who, how, and what ran."""
    from igor_cli.actions import HistoryRequest

    return HistoryRequest(stack, environment, limit, as_json)


@command(
    "rollback",
    chat=True,
    examples=(
        "igor rollback shop -e production --dry-run",
        "igor rollback -s shop -e production --to 4001 --follow",
    ),
)
def rollback_command(
    stack: StackName,
    environment: EnvironmentName = None,
    to: PastDeploymentId = None,
    wait: Wait = Switch(True),
    no_wait: NoWait = False,
    follow: Follow = False,
    dry_run: DryRun = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> Any:
    """Go back to the last good deployment before the live one.

    Deploys again what it ran: its commit on a classic stack, its image tags on
    a docker stack. Refused when there is nothing to go back to; a busy stack
    follows deploy's -w rule.
    """
    from igor_cli.releases import RollbackRequest

    return RollbackRequest(
        stack,
        environment,
        to=(to or "").strip(),
        wait=bool(wait) and not no_wait,
        follow=follow,
        dry_run=dry_run,
        as_json=as_json,
        break_glass=break_glass,
        reason=reason.strip(),
    )


@command(
    "promote",
    chat=True,
    examples=(
        "igor promote shop --from staging --to production --dry-run",
        "igor promote -s shop --from staging --to production --follow",
    ),
)
def promote_command(
    stack: StackName,
    source: SourceEnvironment,
    target: TargetEnvironment,
    wait: Wait = Switch(True),
    no_wait: NoWait = False,
    follow: Follow = False,
    dry_run: DryRun = False,
    break_glass: BreakGlass = False,
    reason: Reason = "",
    as_json: Json = None,
) -> Any:
    """Deploy to one environment's stack what another's runs (staging to production).

    Both stacks must deploy from one repository. A busy stack follows deploy's
    -w rule.
    """
    from igor_cli.releases import PromoteRequest

    return PromoteRequest(
        stack,
        source.strip(),
        target.strip(),
        wait=bool(wait) and not no_wait,
        follow=follow,
        dry_run=dry_run,
        as_json=as_json,
        break_glass=break_glass,
        reason=reason.strip(),
    )


def _parse_duration(value: str | float) -> float:
    from igor_cli.locks import parse_duration

    return parse_duration(value)


LockFor = Annotated[
    float,
    typer.Option(
        "--for", metavar="DURATION", parser=_parse_duration, show_default=False,
        help="How long the lock lasts, e.g. 30m, 2h, 1d (default 4h); then it vanishes.",
    ),
]  # fmt: skip
Force = Annotated[
    bool,
    typer.Option(
        "--force", help="Unlock someone else's lock (recorded; a holder in Slack is told there)."
    ),
]


@command(
    "lock",
    chat=True,
    examples=("igor lock shop -e production --reason 'release 4.2' --for 2h", "igor locks"),
)
def lock_command(
    stack: StackName,
    environment: EnvironmentName = None,
    reason: Reason = "",
    for_: LockFor = 4 * 3600.0,
    as_json: Json = None,
) -> Any:
    """Lock a stack: until you unlock it or the lock expires, only you can deploy it.

    Everyone else's changes to it (deploy, and every command that changes a
    stack) are refused, naming you, the reason and the expiry; anyone may still
    cancel. Locking it again extends it.
    """
    from igor_cli.locks import LockRequest

    return LockRequest(stack, environment, reason, for_, as_json)


@command(
    "unlock",
    chat=True,
    examples=(
        "igor unlock shop -e production",
        "igor unlock shop -e production --force --reason 'hotfix waiting'",
    ),
)
def unlock_command(
    stack: StackName,
    environment: EnvironmentName = None,
    force: Force = False,
    reason: Reason = "",
    as_json: Json = None,
) -> Any:
    """Release your lock on a stack (--force: someone else's)."""
    from igor_cli.locks import UnlockRequest

    return UnlockRequest(stack, environment, force, as_json, reason)


@command("locks", chat=True, examples=("igor locks", "igor locks --json"))
def locks_command(as_json: Json = None) -> Any:
    """Show the locks in force: who holds which stack, why, and until when."""
    from igor_cli.locks import LocksRequest

    return LocksRequest(as_json)


@command("version", chat=True, group=SETUP, examples=("igor version", "igor --version"))
def version_command(as_json: Json = None) -> Any:
    """Show igor's version."""
    from igor_cli.actions import VersionRequest

    return VersionRequest(as_json)


@command("whoami", chat=True, group=SETUP, examples=("igor whoami", "igor whoami --json"))
def whoami_command(as_json: Json = None) -> Any:
    """Who igor talks to Cloud 66 as: the token's source, the account, the API URL."""
    from igor_cli.actions import WhoamiRequest

    return WhoamiRequest(as_json)


@command("help", chat=True, group=SETUP, examples=("igor help", "igor help deploy"))
def help_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[COMMAND]", show_default=False)] = None,
) -> Any:
    """Show help for igor or for one command."""
    parent = ctx.parent or ctx
    group = parent.command
    if not name:
        raise HelpRequested(group.get_help(parent))
    if not isinstance(group, IgorGroup):  # pragma: no cover - the app's group is always one
        raise TypeError("help needs igor's command group")
    _, found, _ = group.resolve_command(parent, [name])
    with found.make_context(name.lower(), [], parent=parent, resilient_parsing=True) as sub:
        raise HelpRequested(found.get_help(sub))


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
) -> Any:  # fmt: skip
    """Run the Slack bot over Socket Mode, or HTTP with --http.

    It runs until SIGTERM or Ctrl-C. Socket Mode, the default, needs
    SLACK_BOT_TOKEN (xoxb-) and SLACK_APP_TOKEN (xapp-); HTTP mode (--http:
    Slack's requests at /slack/events, and GET /healthz) SLACK_BOT_TOKEN and
    SLACK_SIGNING_SECRET; or the secrets stored with `igor register --slack`
    (--slack --http). Both need a Cloud 66 token (or --sandbox).
    """
    from igor_cli.setup_commands import ServeRequest

    return ServeRequest(listen)


@command("chat", group=BOT, examples=("igor chat", "igor --sandbox chat"))
def chat_command() -> Any:
    """Talk to the bot locally: type what you would type in Slack.

    Replies are the bot's own, rendered as text; deployments are followed as in
    Slack. Rehearse offline with `igor --sandbox chat`.
    """
    from igor_cli.setup_commands import ChatRequest

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
) -> Any:  # fmt: skip
    """Print the Slack app manifest igor needs (JSON; Slack accepts it as is).

    Create the app from it at api.slack.com/apps (From a manifest), then make
    the app-level token (connections:write) and install it to get the bot token.
    With --http, the app sends its requests to URL instead of Socket Mode: no
    app-level token, and the signing secret is on the app's Basic Information page.
    """
    from igor_cli.setup_commands import ManifestRequest

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
) -> Any:
    """Check a token with its API and store it in the OS keyring.

    Asks for the Cloud 66 personal access token (hidden), or with --slack for
    the Slack bot token (xoxb-) and app-level token (xapp-), with --slack --http
    for the bot token and the app's signing secret, and says where to find each.
    Piped in (standard input not a terminal), a token is read as with --stdin.
    Tokens are never taken as arguments: they would show in `ps` and your shell
    history.
    """
    from igor_cli.setup_commands import RegisterRequest

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
) -> Any:
    """Remove igor's tokens from the OS keyring (all of them, or those named).

    Asks first, naming the ones stored; without a terminal, it needs --yes.
    """
    from igor_cli.setup_commands import DeregisterRequest

    return DeregisterRequest(cloud66=cloud66, slack=slack, yes=yes)


@command("doctor", examples=("igor doctor", "igor doctor --json", "igor --sandbox doctor"))
def doctor_command(as_json: Json = None) -> Any:
    """Check igor's set-up: where each token comes from and whether it is accepted.

    Also the keyring, the API URLs in use, and the scopes each token has where
    its API tells. Exit code 0 when `igor list` would work, 2 when a setting is
    wrong, else igor's code for what fails (4: token missing or rejected).
    """
    from igor_cli.setup_commands import DoctorRequest

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
) -> Any:
    """Print the TAB completion script for bash, zsh or fish (or install it), like
    `gh completion -s SHELL`.
    """
    from igor_cli.setup_commands import CompletionRequest

    return CompletionRequest(shell.value if shell else None, install)


@command("confirm-reset", examples=("igor locks", "igor confirm-reset"))
def confirm_reset_command() -> Any:
    """Let changes go on after igor's state store was reset (a Redis that came back empty).

    Such a store has lost every lock, so igor refuses changes until an operator
    has checked: look at `igor locks`, lock again what must stay locked, then run
    this. A shell command only: chat cannot lift it.
    """
    from igor_cli.setup_commands import ConfirmResetRequest

    return ConfirmResetRequest()


@command("reset", examples=("igor --sandbox reset", "igor reset --sandbox"))
def reset_command() -> Any:
    """Reset the sandbox: its sample stacks as first seeded, nothing deploying.

    Only with --sandbox (or IGOR_SANDBOX=1): it never touches your Cloud 66 account.
    """
    from igor_cli.setup_commands import ResetRequest

    return ResetRequest()


# -- parsing ------------------------------------------------------------------

# What chat lists, in the order they were defined (help and version last).
_LAST = ("help", "version")
CHAT_COMMANDS = (
    *(name for name, info in COMMANDS.items() if info.chat and name not in _LAST),
    *_LAST,
)
ALIASES = {name: info.aliases for name, info in COMMANDS.items() if info.aliases}
# What chat may run, under any of its names.
CHAT_ALLOWED = frozenset(
    name for info in COMMANDS.values() if info.chat for name in (info.name, *info.aliases)
)


@dataclass(frozen=True)
class Parsed:
    """What a line of words asks for: the command (canonical name) and its request."""

    command: str
    request: Any  # a Request, or a shell-only request of the terminal edge
    sandbox: bool = False  # --sandbox before or after the command
    defaults: Mapping[str, Default] = field(default_factory=dict)  # the ones it used


def _no_defaults() -> Mapping[str, Default]:
    return {}


# The bot parses on many threads at once: building the group (which empties
# `app.registered_commands` for a moment) and converting a command happen under it.
_BUILDING = threading.RLock()


def group() -> IgorGroup:
    """igor's click group, built once; a command's signature is converted when it is named."""
    with _BUILDING:
        return _group()


@functools.cache
def _group() -> IgorGroup:
    """Build the group: typer converts every command's signature up front: 10 ms for
    twenty-odd commands, an eighth of `igor --version`. The group is built with its own
    options only, and `_Commands` converts each command the first time it is asked
    for (help and "unknown command" ask for all of them).
    """
    infos = app.registered_commands
    app.registered_commands = []
    try:
        built = typer.main.get_command(app)
    finally:
        app.registered_commands = infos
    assert isinstance(built, IgorGroup)
    _convert_without_pydantic(built)
    built.commands = _Commands(infos)
    return built


class _Commands(dict[str, Command]):
    """A group's commands by name, each converted from its function on first use."""

    def __init__(self, infos: list[Any]) -> None:
        super().__init__()
        # Every name in definition order (help lists them so), and what is not built yet.
        self._order = [typer.main.get_command_name(i.name or i.callback.__name__) for i in infos]
        self._waiting = dict(zip(self._order, infos, strict=True))

    def __missing__(self, name: str) -> Command:
        with _BUILDING:  # another thread may be converting this very command
            if super().__contains__(name):
                return super().__getitem__(name)
            info = self._waiting[name]  # KeyError for a name igor does not have
            built = typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
            _convert_without_pydantic(built)
            self[name] = built
            del self._waiting[name]
            return built

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or name in self._waiting

    def get(self, name: str, default: Any = None) -> Any:
        """The command called `name` (converted now if need be), else `default`."""
        try:
            return self[name]
        except KeyError:
            return default

    def _everything(self) -> dict[str, Command]:
        return {name: self[name] for name in self._order if name in self}

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    def __len__(self) -> int:
        return len(self._everything())

    def keys(self) -> Any:
        """Every name, in definition order."""
        return self._everything().keys()

    def values(self) -> Any:
        """Every command (all converted), in definition order."""
        return self._everything().values()

    def items(self) -> Any:
        """Every name and command (all converted), in definition order."""
        return self._everything().items()


def _convert_without_pydantic(command: Command) -> None:
    """Give each option of a type igor uses a conversion that needs no pydantic.

    typer converts every value, defaults included, through a pydantic adapter
    built on first use: importing pydantic costs 110 ms, a third of a command's
    fixed cost. igor's values are already of their type once click has parsed
    them; anything else goes to typer's own conversion, which says what is wrong.
    """
    for param in command.params:
        _convert_plainly(param)
    for sub in getattr(command, "commands", {}).values():
        _convert_without_pydantic(sub)


def _convert_plainly(param: Any) -> None:
    from typer.core import TyperArgument, TyperOption

    if isinstance(param, TyperOption | TyperArgument) and _plain(param.type_descriptor.annotation):
        descriptor = param.type_descriptor
        param._runtime_param = _PlainValue(descriptor.parameter_info, descriptor.annotation)


def _plain(annotation: Any) -> bool:
    # JsonOutput: --json's value, parsed by `_json_fields` (typer drops the `| None`).
    return annotation in (str, bool, int, float, Switch, JsonOutput) or annotation == list[str]


class _PlainValue(RuntimeParam):
    """A value click has parsed, taken as it is when it is of the option's type."""

    def _coerce_value(self, value: Any, param: Any, ctx: Context) -> Any:
        kind, info = self.annotation, self.parameter_info
        if info.parser is not None and isinstance(value, str):
            # A bad value falls through: typer's own conversion below names the option.
            with contextlib.suppress(typer.BadParameter):
                value = info.parser(value)
        if kind is str and isinstance(value, str):
            return value
        if kind is JsonOutput and (value is None or isinstance(value, JsonOutput)):
            return value
        if kind in (bool, Switch) and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if (kind is int and type(value) is int) or (kind is float and type(value) is float):
            low, high = info.min, info.max
            if (low is None or value >= low) and (high is None or value <= high):
                return value
        strings = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        if kind == list[str] and strings:
            return list(value)
        from typer._coercion import build_runtime_param, resolve_type_descriptor

        typer_own = build_runtime_param(resolve_type_descriptor(kind, info))
        return typer_own._coerce_value(value, param, ctx)


def parse(words: list[str], defaults: Callable[[], Mapping[str, Default]] = _no_defaults) -> Parsed:
    """Parse argv or chat words with the command definitions; perform nothing.

    `defaults` gives the default target (targets.py), read only for a command
    that names one stack and used only where nothing was typed. Raises
    `HelpRequested` for `-h`, `help` and `--version` (a text to show, exit 0)
    and click's `UsageError` (the usage text) for anything wrong.
    """
    root_group = group()
    with root_group.make_context("igor", list(words)) as root:
        args = [*root._protected_args, *root.args]
        if not args:
            raise HelpRequested(root_group.get_help(root))
        name, found, rest = root_group.resolve_command(root, args)
        assert name is not None and found is not None
        takes_default = getattr(found, "names_a_stack", False) and name not in NAMED_ONLY
        given = defaults() if takes_default else {}
        default_map = {key: default.value for key, default in given.items()}
        with found.make_context(name, rest, parent=root, default_map=default_map) as context:
            used = {
                key: default
                for key, default in given.items()
                if context.get_parameter_source(key) is ParameterSource.DEFAULT_MAP
            }
            request = found.invoke(context)
            canonical = next((c for c, names in ALIASES.items() if name in names), name)
            _check_json(request, canonical, context)
    return Parsed(canonical, request, bool(root.params.get("sandbox")), used)


def _check_json(request: Any, command: str, ctx: Context) -> None:
    """`--json a,b` names fields the command's JSON has, and `--jq` a filter jq takes:
    a usage error before anything runs, listing the valid fields (as gh does)."""
    shape = getattr(request, "as_json", None)
    if not isinstance(shape, JsonOutput):
        return
    try:
        shape.check(getattr(request, "json_fields", ()), command)
    except BadJsonRequest as problem:
        raise UsageError(problem.message, ctx) from None
