"""The igor command line: one definition of each option, the commands' index, `parse`.

Each command is defined in its family's module under `igor_cli/features/`, with
`command()` and the options below; the module's `COMMANDS` line names its
commands and their aliases. That line is read from the source (`index`), so a
command's family is imported only when the command is parsed: `igor list` loads
neither the lock nor the release modules. Help, chat and "unknown command" load
every family.

`parse(words)` turns argv or chat words into a `Parsed` (the command and its
request); it performs nothing. The terminal edge (`terminal.py`) and the chat
bridge both parse here and then perform, so chat text and argv go through the
very same parser, usage errors and help included. typer's and click's private
machinery is `cli_typer.py`'s; here only typer's public API is used.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, TypeVar

import typer

from igor_cli import version_text
from igor_cli.cli_typer import (
    BUILDING,
    ClickException,
    CompletionRequested,
    Context,
    HelpRequested,
    IgorGroup,
    ParameterSource,
    Switch,
    UsageError,
    Vocabulary,
    build_group,
    command_class,
    completion_option,
    unknown_command,
)
from igor_cli.json_output import BadJsonRequest, JsonOutput

if TYPE_CHECKING:
    from igor_cli.targets import Default

__all__ = [
    "ClickException",
    "CompletionRequested",
    "HelpRequested",
    "IgorGroup",
    "ParameterSource",
    "Parsed",
    "Switch",
    "UsageError",
    "command",
    "parse",
    "unknown_command",
]

# -- the options (one definition each) ----------------------------------------

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


def parse_json_fields(value: str | JsonOutput | None) -> JsonOutput | None:
    """What --json was given: every field, or a comma-separated list of them."""
    if value is None or isinstance(value, JsonOutput):
        return value
    return JsonOutput.parse(value)


def complete_stacks(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """TAB for a stack's name: the cached stacks (completion.py)."""
    from igor_cli.completion import stack_names

    return stack_names(ctx, incomplete)


def complete_environments(ctx: typer.Context, incomplete: str) -> list[str]:
    """TAB for an environment: those of the cached stacks."""
    from igor_cli.completion import environments

    return environments(ctx, incomplete)


def complete_services(ctx: typer.Context, incomplete: str) -> list[str]:
    """TAB for a service: the cached services of the stack typed."""
    from igor_cli.completion import services

    return services(ctx, incomplete)


StackName = Annotated[
    str,
    typer.Option(
        "-s", "--stack", metavar="NAME", show_default=False,
        help="The stack's exact name (any case); also taken without -s. Default: "
        "IGOR_STACK, .igor.toml or the config file (README: Default targets).",
        autocompletion=complete_stacks,
    ),
]  # fmt: skip
EnvironmentName = Annotated[
    str | None,
    typer.Option(
        "-e", "--environment", metavar="ENV",
        help="The stack's environment, e.g. production (any case).",
        autocompletion=complete_environments,
    ),
]  # fmt: skip
Services = Annotated[
    list[str] | None,
    typer.Option(
        "-v", "--service", metavar="NAME[:TAG]",
        help="Only this service (repeat, or separate with commas).",
        autocompletion=complete_services,
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
QUEUE = Switch(True)  # -w's default: queue behind a busy stack
NoWait = Annotated[bool, typer.Option("--no-wait", help="Same as -w false.")]
Follow = Annotated[bool, typer.Option("--follow", help="Show progress until it finishes.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Check everything, change nothing, say what would happen.")
]
Json = Annotated[
    JsonOutput | None,
    typer.Option(
        "--json", metavar="[FIELDS]", parser=parse_json_fields, show_default=False,
        help="Print JSON for programs: every field, or only FIELDS (comma-separated, as "
        "in gh).",
    ),
]  # fmt: skip
JQ = typer.Option(
    "--jq", metavar="EXPR", show_default=False,
    help="Filter the JSON with a jq expression (implies --json), as in gh.",
)  # fmt: skip

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
        help="Go ahead during a freeze window (only people the freeze names; needs --reason; "
        "recorded).",
    ),
]


# Before the command, or after it (every command takes it too, unlisted: cli_typer).
SANDBOX = typer.Option(
    "--sandbox",
    help="Use the built-in Cloud 66 simulator instead of your account, before or after "
    "the command (also IGOR_SANDBOX=1).",
)
# The stack's name typed first, without -s (`igor deploy shop`), for every command with -s.
STACK_WORD = typer.Argument(
    None, metavar="STACK", show_default=False, autocompletion=complete_stacks, hidden=True
)


# -- the app ------------------------------------------------------------------

# The groups of `igor -h`, in this order.
STACKS, BOT, SETUP = "Stacks", "The Slack bot", "Set-up and help"
GROUPS = (STACKS, BOT, SETUP)
NAMED_ONLY: dict[str, str] = {}  # an alias that acts only on a named stack -> its command


class Group(IgorGroup):
    """igor's group, its commands under these headings."""

    panels = GROUPS


app = typer.Typer(
    name="igor",
    cls=Group,
    help="igor: deploy, cancel and list your Cloud 66 stacks, from a shell or from Slack.",
    epilog="Try it without an account: igor --sandbox list",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,  # igor's own options below install igor's own scripts
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
IgorCommand = command_class(Vocabulary(SANDBOX, JQ, STACK_WORD, NAMED_ONLY))


# typer reads the annotations of an option's callback: `Context` is imported, not only typed.
def _version(ctx: Context, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        # Like -h: a text to show with exit code 0, shown by whoever parsed.
        raise HelpRequested(version_text())


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
            callback=completion_option,
            help="Install TAB completion for your shell ($SHELL); see `igor completion`.",
        ),
    ] = False,
    show_completion: Annotated[
        bool,
        typer.Option(
            "--show-completion",
            is_eager=True,
            callback=completion_option,
            help="Print the TAB completion script for your shell ($SHELL).",
        ),
    ] = False,
) -> None:
    """Deploy, cancel and list your Cloud 66 stacks, from a shell or from Slack."""
    # `parse` reads --sandbox from the parsed options; nothing runs here.


# -- the commands' index: each family's COMMANDS line ------------------------------

FEATURES = "igor_cli.features"


class Declared(NamedTuple):
    """A command as its family's COMMANDS line declares it: its module, its aliases."""

    # A NamedTuple: defined at every start in a sixth of a frozen dataclass's time.
    family: str
    name: str
    aliases: tuple[str, ...] = ()


@functools.cache
def index() -> dict[str, Declared]:
    """Every command name and alias -> its declaration, in the order help lists them.

    Read from each family's source (`COMMANDS = {name: (aliases, ...)}`, a literal),
    not imported: a command's family is imported only when it is parsed. The
    families come in `features.ORDER`, any other after them by name.
    """
    from igor_cli import features

    folder = os.path.dirname(features.__file__)
    names = sorted(n[:-3] for n in os.listdir(folder) if n.endswith(".py") and n[0] != "_")
    rank = {family: number for number, family in enumerate(features.ORDER)}
    found: dict[str, Declared] = {}
    for family in sorted(names, key=lambda n: (rank.get(n, len(rank)), n)):
        for name, aliases in _declared(os.path.join(folder, family + ".py"), family).items():
            for word in (name, *aliases):
                if word in found:
                    raise TypeError(f"`{word}` is declared by {found[word].family} and {family}")
                found[word] = Declared(family, name, tuple(aliases))
    return found


def _declared(path: str, family: str) -> dict[str, tuple[str, ...]]:
    """The family's COMMANDS literal (a dict of names to tuples of aliases), read from its
    source; the module is imported only if the line cannot be read there."""
    with open(path, encoding="utf-8") as source:
        text = source.read()
    start = text.find("{", text.find("\nCOMMANDS") + 1) if "\nCOMMANDS" in text else -1
    end = text.find("}", start)
    try:
        value = ast.literal_eval(text[start : end + 1]) if start != -1 and end != -1 else None
    except (SyntaxError, ValueError):
        value = None
    if not isinstance(value, dict):
        value = importlib.import_module(f"{FEATURES}.{family}").COMMANDS
    return {str(name): tuple(aliases) for name, aliases in value.items()}


def load_every_family() -> None:
    """Import every family (help, chat and "unknown command" list every command)."""
    if _EVERY_FAMILY:  # chat asks at every message: once they are in, they stay
        return
    for family in dict.fromkeys(declared.family for declared in index().values()):
        importlib.import_module(f"{FEATURES}.{family}")
    _EVERY_FAMILY.append(True)


_EVERY_FAMILY: list[bool] = []  # not empty once every family was imported


def load_ahead() -> None:
    """Import and convert now what commands import and convert on first use: every family,
    each command's options (typer's conversion included). For `igor serve`, which takes
    commands in bursts and must ack them at once: the shell converts only what it runs."""
    from igor_cli.cli_typer import load_conversions

    load_conversions(group().commands.values())  # every command converted, aliases too


# -- registering a command -------------------------------------------------------


class CommandInfo(NamedTuple):
    """What a command says about itself: its names, and whether chat may run it."""

    # A NamedTuple: defined at every start in a sixth of a frozen dataclass's time.
    name: str
    aliases: tuple[str, ...] = ()
    chat: bool = False  # the shell has more: serve, register, ...
    # Aliases that act only on a stack named on the command line, never on a default
    # (`exit`: alone, it would cancel whatever the default target is).
    named_only: tuple[str, ...] = ()
    family: str = ""
    # Lines typed in a shell, shown in its help; the tests and the request-cost benchmark
    # run them against the simulator's sample stacks (shop, blog, api), so they stay true.
    examples: tuple[str, ...] = ()


REGISTERED: dict[str, CommandInfo] = {}  # by canonical name, as families are imported
CommandFunction = TypeVar("CommandFunction", bound=Callable[..., Any])


def command(
    name: str,
    *,
    chat: bool = False,
    named_only: tuple[str, ...] = (),
    group: str | None = None,
    examples: tuple[str, ...] = (),
    **kwargs: Any,
) -> Callable[[CommandFunction], CommandFunction]:
    """Register a command of the calling family, under the aliases its COMMANDS line gives
    (hidden from the list, named in its help).

    `named_only` are aliases that act only on a stack named on the command line,
    never on a default target; `group` is its heading in `igor -h` (chat commands
    work on stacks unless they say otherwise; the others set igor up); `examples`
    are lines typed in a shell, shown in its help, at least one of them running the
    command: the tests run them against the simulator (its sample stacks: shop, blog,
    api), check the JSON each prints and count the requests each costs, so a command
    without them is refused here. The function turns options into a request and
    returns it; it performs nothing.
    """

    def register(function: CommandFunction) -> CommandFunction:
        family = function.__module__.removeprefix(FEATURES + ".")
        declared = index().get(name)
        if declared is None or declared.family != family or declared.name != name:
            raise TypeError(f"igor {name}: not in the COMMANDS line of {function.__module__}")
        if not examples:
            raise TypeError(
                f"igor {name} shows no examples: give its command lines (`examples=`), which "
                "its help shows and the tests run against the simulator's sample stacks"
            )
        aliases = declared.aliases
        if not set(named_only) <= set(aliases):
            raise ValueError(f"igor {name}: named_only must be among its aliases")
        with BUILDING:
            REGISTERED[name] = CommandInfo(name, aliases, chat, named_only, family, examples)
            _chat_words.cache_clear()
            NAMED_ONLY.update(dict.fromkeys(named_only, name))
            help_text = inspect.cleandoc(function.__doc__ or "")
            if aliases:
                help_text += "\n\nAliases: " + ", ".join(aliases) + "."
            if named_only:
                help_text += (
                    f" {_and_words(named_only)} act only on a stack named after them, never "
                    "on a default."
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


def commands() -> dict[str, CommandInfo]:
    """Every command, by canonical name, in the order help lists them (all families
    imported)."""
    load_every_family()
    order = {declared.name: number for number, declared in enumerate(index().values())}
    return dict(sorted(REGISTERED.items(), key=lambda item: order[item[0]]))


# What chat lists, in the order of help (help and version last).
_LAST = ("help", "version")


def chat_commands() -> tuple[str, ...]:
    """The commands chat may run, as chat's help lists them."""
    shown = [name for name, info in commands().items() if info.chat and name not in _LAST]
    return (*shown, *_LAST)


def chat_allowed() -> frozenset[str]:
    """What chat may run, under any of its names."""
    load_every_family()
    return _chat_words()


@functools.cache
def _chat_words() -> frozenset[str]:
    # Asked at every chat message; forgotten when a command is registered.
    return frozenset(
        word for info in commands().values() if info.chat for word in (info.name, *info.aliases)
    )


# -- parsing ------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What a line of words asks for: the command (canonical name) and its request."""

    command: str
    request: Any  # a core.request.Request, or a ShellCommand of the terminal edge
    sandbox: bool = False  # --sandbox before or after the command
    defaults: Mapping[str, Default] = field(default_factory=dict)  # the ones it used


def _no_defaults() -> Mapping[str, Default]:
    return {}


def group() -> IgorGroup:
    """igor's click group, built once; a command's family is imported, and its signature
    converted, when it is named."""
    with BUILDING:
        return _group()


@functools.cache
def _group() -> IgorGroup:
    return build_group(app, {word: d.family for word, d in index().items()}, FEATURES)


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
            canonical = index()[name].name
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
