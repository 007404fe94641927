"""igor's machinery on top of typer and click: the one module that touches their private names.

igor needs click's exceptions, contexts and completion classes, which typer does
not re-export, and some of typer's own steps (converting one parameter, one
command, one value): they are private, hence `typer<0.30` in pyproject. Every
other module takes them from here, so a typer upgrade is checked in one place.

Here are the command and group classes (`-h` that raises instead of printing,
the stack's name typed first, `--json` with an optional value, unknown commands
that suggest the closest), the lazy table of a group's commands (a family's
module is imported, and its command converted, when it is named), value conversion
without pydantic, and defaults processed once. The options themselves are `cli.py`'s.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import inspect
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NewType

import typer
import typer.main
from typer._click import ClickException, Context, echo
from typer._click.core import Command, ParameterSource
from typer._click.exceptions import MissingParameter, NoSuchOption, UsageError
from typer._click.parser import _OptionParser
from typer._click.shell_completion import CompletionItem, ShellComplete, _resolve_incomplete
from typer._coercion import RuntimeParam
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import Abort, Exit

from igor_cli.json_output import JsonOutput

if TYPE_CHECKING:
    from typer._completion_classes import BashComplete, FishComplete, ZshComplete

__all__ = [
    "Abort",
    "BashComplete",
    "ClickException",
    "Command",
    "CompletionItem",
    "CompletionRequested",
    "Context",
    "Exit",
    "FishComplete",
    "HelpRequested",
    "IgorCommand",
    "IgorGroup",
    "ParameterSource",
    "ShellComplete",
    "Switch",
    "TyperGroup",
    "UsageError",
    "Vocabulary",
    "ZshComplete",
    "build_group",
    "command_class",
    "completion_index",
    "converted",
    "resolve_incomplete",
    "unconverted_context",
    "unknown_command",
]

resolve_incomplete = _resolve_incomplete  # for tab.py's completion

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


class CompletionRequested(UsageError):
    """`--install-completion` or `--show-completion`: done by the terminal edge, in a shell.

    A usage error anywhere else (chat), so that nothing is ever installed there.
    """

    def __init__(self, ctx: Context, *, install: bool) -> None:
        super().__init__("Completion scripts are for a shell: see `igor completion -h`.", ctx)
        self.install = install


def raise_help(ctx: Context, _param: Any, value: bool) -> None:
    """The callback of `-h`: raise the help text instead of printing it."""
    if value and not ctx.resilient_parsing:
        raise HelpRequested(ctx.get_help())


def completion_option(ctx: Context, param: Any, value: bool) -> None:
    """The callback of `--install-completion` and `--show-completion`."""
    if value and not ctx.resilient_parsing:
        raise CompletionRequested(ctx, install=param.name == "install_completion")


Switch = NewType("Switch", bool)  # a true/false value typed as a word (`-w false`)
TARGET = "stack_named_first"  # `igor deploy shop`: no command has a parameter so named
JSON_EVERY_FIELD = ""  # what `--json` stands for when no field list follows it


@dataclass(frozen=True)
class Vocabulary:
    """What every command of igor's takes besides its own options, as `cli.py` defines them
    (typer declarations, written for `Annotated`), and its named-only aliases."""

    sandbox: Any  # `--sandbox`, after the command too (unlisted)
    jq: Any  # `--jq`, for a command that takes `--json`
    stack_word: Any  # the stack's name typed first, for a command that takes `-s`
    named_only: Mapping[str, str] = field(default_factory=dict)  # alias -> its command


def command_class(vocabulary: Vocabulary) -> type[IgorCommand]:
    """igor's command class, adding `vocabulary`'s parameters to each command."""
    return type("Command", (IgorCommand,), {"vocabulary": vocabulary})


class IgorCommand(TyperCommand):
    """A command whose `-h` raises `HelpRequested` instead of printing.

    Its epilog holds its examples, one a line, shown as an Examples section.
    A command with `-s` also takes the stack as its first word (`igor deploy
    shop`); a command whose `-s` is required names one stack, and only such a
    command takes a default target (targets.py) for `-s` and `-e`.
    """

    vocabulary: Vocabulary  # set by `command_class`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        taken = {p.name for p in self.params} & {TARGET, "sandbox"}
        if taken:  # a command's own parameter would be shadowed: fail at definition
            raise TypeError(f"igor {self.name}: {', '.join(sorted(taken))} is igor's own name")
        said = self.vocabulary
        self.params.append(_param("sandbox", said.sandbox, bool, default=False, hidden=True))
        json_option = next((p for p in self.params if p.name == "as_json"), None)
        if json_option is not None:  # --json [FIELDS], and --jq with it
            json_option.igor_bare_value = JSON_EVERY_FIELD  # type: ignore[attr-defined]
            self.params.append(_param("jq", said.jq, str | None, default=None))
        listen = next((p for p in self.params if p.name == "listen"), None)
        if listen is not None:  # serve's --http [[HOST:]PORT]: alone, the default address
            listen.igor_bare_value = ""  # type: ignore[attr-defined]
        # A typer option (typer's MissingParameter wants one, not click's base class).
        self.stack_option: Any = next((p for p in self.params if p.name == "stack"), None)
        self.names_a_stack = False
        if self.stack_option is not None:
            # Required after the first word and the defaults had their say (parse_args).
            self.names_a_stack, self.stack_option.required = self.stack_option.required, False
            self.params.append(_argument(TARGET, said.stack_word, str | None))

    def make_parser(self, ctx: Context) -> _OptionParser:
        """click's parser, where `--json` takes its field list only when one follows; built
        once (`_parser_once`)."""

        def build() -> _OptionParser:
            parser = _OptionalValues(ctx)
            for param in self.get_params(ctx):
                param.add_to_parser(parser, ctx)
            return parser

        return _parser_once(self, ctx, build)

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
            meant = self.vocabulary.named_only.get(self.name or "")
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
        return _raising(super().get_help_option(ctx))

    def format_epilog(self, ctx: Context, formatter: Any) -> None:
        """The examples, as they are typed (never re-wrapped)."""
        if self.epilog:
            with formatter.section("Examples"):
                for line in self.epilog.splitlines():
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")


def _raising(option: Any) -> Any:
    """The help option click made (once a command: click keeps it), its callback raising;
    set the first time it is asked for, not at every parse."""
    if option is not None and option.callback is not raise_help:
        _convert_plainly(option)
        option.callback = raise_help
    return option


def _parser_once(
    command: Command, ctx: Context, build: Callable[[], _OptionParser]
) -> _OptionParser:
    """A copy of `command`'s option parser, built by `build` the first time (for contexts
    with these settings): click builds one at every parse, an object for each option,
    and the bot parses every message. A parser holds nothing of a parse but its context
    (what is read goes into a state of its own), so a shallow copy serves each parse,
    on any thread."""
    key = (
        ctx.allow_interspersed_args, ctx.ignore_unknown_options, ctx.token_normalize_func,
        tuple(ctx.help_option_names),
    )  # fmt: skip
    built: dict[Any, _OptionParser] = command.__dict__.setdefault("_igor_parsers", {})
    template = built.get(key)
    if template is None:  # two threads may both build it: either serves
        template = built.setdefault(key, build())
    parser = copy.copy(template)
    parser.ctx = ctx
    return parser


def _param(name: str, declared: Any, annotation: Any, default: Any, hidden: bool = False) -> Any:
    """A declaration written for `Annotated` (its first name sits in `default`), as one more
    command's own option (`_get_param` is typer's own step for one parameter)."""
    return copy.copy(_built(name, declared, annotation, default, hidden))


@functools.cache
def _built(name: str, declared: Any, annotation: Any, default: Any, hidden: bool) -> Any:
    from typer.models import ParamMeta

    info = copy.copy(declared)
    info.param_decls, info.default = (info.default, *(info.param_decls or ())), default
    info.hidden = info.hidden or hidden
    return typer.main._get_param(ParamMeta(name=name, default=info, annotation=annotation))


def _argument(name: str, declared: Any, annotation: Any) -> Any:
    """A typer argument declaration as one more command's own (its default is its own)."""
    return copy.copy(_built_argument(name, declared, annotation))


@functools.cache
def _built_argument(name: str, declared: Any, annotation: Any) -> Any:
    from typer.models import ParamMeta

    return typer.main._get_param(ParamMeta(name=name, default=declared, annotation=annotation))


class _OptionalValues(_OptionParser):
    """click's option parser, taking `--json`'s value only when one follows: `--json`
    alone (at the end, or before another option) is every field, as in gh. The vendored
    click has no optional values of its own. On a TAB, the words before an option still
    waiting for its value are read into their arguments too."""

    def _process_args_for_options(self, state: Any) -> None:
        try:
            super()._process_args_for_options(state)
        except UsageError:
            if self.ctx is not None and self.ctx.resilient_parsing:
                # A TAB after an option waiting for its value (`igor pause api -v <TAB>`):
                # click stops reading there and leaves the words before it unread; give
                # them their arguments, so the stack typed first narrows what is offered.
                self._process_args_for_args(state)
            raise

    def _match_long_opt(self, opt: str, explicit_value: str | None, state: Any) -> None:
        # click tries every option as a long one first, and for `-s` (one dash) looks for
        # close long names to suggest before it drops that error and reads a short one:
        # the suggestion is made only when it can be shown.
        if opt not in self._long_opt and opt[:2] not in self._opt_prefixes:
            raise NoSuchOption(opt, ctx=self.ctx)
        super()._match_long_opt(opt, explicit_value, state)

    def _get_value_from_state(self, option_name: str, option: Any, state: Any) -> Any:
        bare = getattr(option.obj, "igor_bare_value", None)
        if bare is not None and (not state.rargs or state.rargs[0][:1] in self._opt_prefixes):
            return bare
        return super()._get_value_from_state(option_name, option, state)


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
    """The `igor` group: `-h` raises, and unknown commands list the known ones.

    Its commands are listed under their group's heading (`panels`, in this order;
    a command without one goes under the last).
    """

    panels: tuple[str, ...] = ()

    def get_help_option(self, ctx: Context) -> Any:
        """The usual help option, with a callback that raises."""
        return _raising(super().get_help_option(ctx))

    def make_parser(self, ctx: Context) -> _OptionParser:
        """click's parser for the group's own options, built once (`_parser_once`)."""
        return _parser_once(self, ctx, lambda: super(IgorGroup, self).make_parser(ctx))

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
        """The listed commands under their group's heading, the groups in `panels` order."""
        groups: dict[str, list[str]] = {}
        for name, command in self.commands.items():
            if not command.hidden:
                panel = getattr(command, "rich_help_panel", None) or self.panels[-1]
                groups.setdefault(panel, []).append(name)
        order = {panel: number for number, panel in enumerate(self.panels)}
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


# -- the group, its commands converted when named ------------------------------

# The bot parses on many threads at once: building the group (which empties
# `app.registered_commands` for a moment), importing a family and converting a
# command happen under it.
BUILDING = threading.RLock()


def build_group(app: typer.Typer, index: Mapping[str, str], package: str) -> IgorGroup:
    """`app`'s click group with its own options only: its commands, every name in `index`
    (a name or alias -> the module of `package` that defines it), are converted from
    their function the first time each is asked for (help and "unknown command" ask for
    all of them). typer would convert every command's signature up front: 10 ms for
    twenty-odd commands, an eighth of `igor --version`; and import every family."""
    with BUILDING:
        infos = app.registered_commands
        app.registered_commands = []
        try:
            built = typer.main.get_command(app)
        finally:
            app.registered_commands = infos
        assert isinstance(built, IgorGroup)
        _ready_to_parse(built)
        built.commands = _Commands(app, index, package)
        return built


class _Commands(dict[str, Command]):
    """A group's commands by name, each converted from its function on first use (its
    family's module imported first, which registers it)."""

    def __init__(self, app: typer.Typer, index: Mapping[str, str], package: str) -> None:
        super().__init__()
        self._app = app
        self._order = list(index)  # every name in the order help lists them
        self._waiting = dict(index)  # a name not built yet -> its family
        self._package = package

    def __missing__(self, name: str) -> Command:
        with BUILDING:  # another thread may be converting this very command
            if super().__contains__(name):
                return super().__getitem__(name)
            family = self._waiting[name]  # KeyError for a name igor does not have
            importlib.import_module(f"{self._package}.{family}")  # registers its commands
            info = next((i for i in self._app.registered_commands if _name_of(i) == name), None)
            if info is None:
                raise TypeError(
                    f"{self._package}.{family} declares `{name}` but defines no such command"
                )
            built = typer.main.get_command_from_info(
                info,
                pretty_exceptions_short=self._app.pretty_exceptions_short,
                rich_markup_mode=self._app.rich_markup_mode,
            )
            _ready_to_parse(built)
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
        """Every name, in the order help lists them."""
        return self._everything().keys()

    def values(self) -> Any:
        """Every command (all converted), in the order help lists them."""
        return self._everything().values()

    def items(self) -> Any:
        """Every name and command (all converted), in the order help lists them."""
        return self._everything().items()


def _name_of(info: Any) -> str:
    return typer.main.get_command_name(info.name or info.callback.__name__)


def converted(app: typer.Typer, commands: list[Any]) -> Command:
    """`app` as click commands, with only `commands` (of its registered ones) in it: for a
    TAB, which typer would make convert every command, aliases included."""
    # A shallow copy: the app itself, as the command line uses it, is untouched.
    part = copy.copy(app)
    part.registered_commands = commands
    return typer.main.get_command(part)


def _ready_to_parse(command: Command) -> None:
    """Each parameter of `command` (and of a group's commands) converted without pydantic
    (`_convert_plainly`) and keeping its default once processed (`_default_kept`)."""
    for param in command.params:
        _convert_plainly(param)
        _default_kept(param)
    for sub in getattr(command, "commands", {}).values():
        _ready_to_parse(sub)


def _convert_plainly(param: Any) -> None:
    """Give an option of a type igor uses a conversion that needs no pydantic.

    typer converts every value, defaults included, through a pydantic adapter
    built on first use: importing pydantic costs 110 ms, a third of a command's
    fixed cost. igor's values are already of their type once click has parsed
    them; anything else goes to typer's own conversion, which says what is wrong.
    """
    from typer.core import TyperArgument, TyperOption

    if isinstance(param, TyperOption | TyperArgument) and _plain(param.type_descriptor.annotation):
        descriptor = param.type_descriptor
        param._runtime_param = _PlainValue(descriptor.parameter_info, descriptor.annotation)


def _plain(annotation: Any) -> bool:
    # JsonOutput: --json's value, parsed by cli's `json_fields` (typer drops the `| None`).
    return annotation in (str, bool, int, float, Switch, JsonOutput) or annotation == list[str]


_NOT_KEPT: Any = object()


def _default_kept(param: Any) -> None:
    """Make `param` keep its processed default (`_kept_class`) when only its declaration
    can give it one: no callback, environment variable, prompt or callable default."""
    declared = param.callback is None and param.envvar is None and not callable(param.default)
    asked = getattr(param, "prompt", None) is not None or getattr(param, "_flag_needs_value", False)
    if declared and param.expose_value and not asked and not hasattr(param, "igor_default"):
        param.__class__ = _kept_class(param.__class__)


@functools.cache
def _kept_class(kind: Any) -> Any:
    """`kind` (typer's option or argument), its default processed once and kept for each
    parse that leaves it untyped. click processes every parameter at each parse, typed or
    not (15 us each here), and the bot parses every message: a deploy's parse processes 21
    (its own, the group's, the two `-h`), and people type two or three. Kept only when
    nothing can change it (None, a bool, a number, a string, a tuple of those); a parse that
    gives it a value another way (typed, the context's `default_map`) processes it as click
    does. A subclass (not a mixin): an object's class is swapped only for one of its layout."""

    def handle_parse_result(
        self: Any, ctx: Context, opts: Mapping[str, Any], args: list[str]
    ) -> tuple[Any, list[str]]:
        name, value = self.name, self.igor_default
        in_map = ctx.default_map is not None and ctx.default_map.get(name) is not None
        from_env = ctx.auto_envvar_prefix is not None and getattr(self, "allow_from_autoenv", False)
        if value is not _NOT_KEPT and opts.get(name) is None and not (in_map or from_env):
            ctx.set_parameter_source(name, ParameterSource.DEFAULT)
            ctx.params[name] = value
            return value, args
        value, args = kind.handle_parse_result(self, ctx, opts, args)
        # Not on a TAB (resilient parsing), where a value that fails is read as None.
        by_default = ctx.get_parameter_source(name) is ParameterSource.DEFAULT
        if by_default and not ctx.resilient_parsing and _unchanging(value):
            self.igor_default = value
        return value, args

    kept = {"handle_parse_result": handle_parse_result, "igor_default": _NOT_KEPT}
    return type(kind.__name__, (kind,), {**kept, "__module__": kind.__module__})


def _unchanging(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_unchanging(item) for item in value)
    return value is None or type(value) in (bool, int, float, str)


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
        return self.typer_own._coerce_value(value, param, ctx)

    @functools.cached_property
    def typer_own(self) -> RuntimeParam:
        """typer's own conversion of this option, built once (a pydantic adapter)."""
        from typer._coercion import build_runtime_param, resolve_type_descriptor

        return build_runtime_param(resolve_type_descriptor(self.annotation, self.parameter_info))


def load_conversions(commands: Iterable[Command]) -> None:
    """Build now typer's own conversion of each option of `commands`, which `_PlainValue`
    hands a value it must refuse (pydantic's import and adapters: 110 ms and more). `igor
    serve` pays it at start, not on the first bad value while a burst's acks are due."""
    from pydantic import ValidationError
    from typer._adapters import validation_context

    del ValidationError, validation_context  # what a refusal imports, imported
    for command in commands:
        for param in command.params:
            plain = getattr(param, "_runtime_param", None)
            if isinstance(plain, _PlainValue):
                plain.typer_own  # noqa: B018 (built and kept)


# -- TAB ------------------------------------------------------------------------------

_COMPLETION_CLASSES = ("BashComplete", "FishComplete", "ZshComplete")


def __getattr__(name: str) -> Any:
    """typer's completion classes for bash, zsh and fish (its protocol), imported only by a
    TAB that needs them."""
    if name in _COMPLETION_CLASSES:
        import typer._completion_classes

        return getattr(typer._completion_classes, name)
    raise AttributeError(name)


def unconverted_context(
    command: Command, name: str, words: list[str], parent: Context | None
) -> Context:
    """A context for `command` with `words` read into `ctx.params`, as typed.

    What click's `make_context` does, less the conversion of each value:
    converting is what imports pydantic, and no callback (such as
    `--version`'s) may run on a TAB.
    """
    settings = {**command.context_settings, "resilient_parsing": True}
    ctx = command.context_class(command, info_name=name, parent=parent, **settings)
    parser = command.make_parser(ctx)
    opts, rest, _order = parser.parse_args(args=words)
    if opts.get(TARGET) is not None and opts.get("stack") is None:
        opts["stack"] = opts[TARGET]  # the stack typed first, as parse_args reads it
    for param in command.get_params(ctx):
        if param.name is None:
            continue
        ctx.params[param.name] = opts.get(param.name)
        if opts.get(param.name) is not None:  # an argument not typed yet is there as None
            ctx.set_parameter_source(param.name, ParameterSource.COMMANDLINE)
    ctx._opt_prefixes.update(parser._opt_prefixes)
    if isinstance(command, TyperGroup) and rest:
        ctx._protected_args, ctx.args = rest[:1], rest[1:]
    else:
        ctx.args = rest
    return ctx


# -- the completion index (tab_index.py answers a TAB from it without typer) ------------


def completion_index(root: TyperGroup, prog: str, completers: Mapping[str, str]) -> dict[str, Any]:
    """What a TAB needs of `root`'s command definitions: each command's options and
    arguments, how their values complete, its short help; the root's options.

    `completers` names igor's own completers (a function's name -> the kind of
    value it offers, as `tab_index` knows them). Every command is converted.
    """
    ctx = unconverted_context(root, prog, [], None)
    root_spec = _command_spec(root, ctx, completers, group=True)
    commands = {}
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        if command is None:
            continue
        sub = unconverted_context(command, name, [], ctx)
        commands[name] = {
            **_command_spec(command, sub, completers, group=False),
            "hidden": bool(command.hidden),
            "help": command.get_short_help_str(),
        }
    # The stack typed first (`igor deploy shop -v <TAB>`) narrows what a TAB offers.
    return {"root": root_spec, "commands": commands, "stack_word": TARGET}


def _command_spec(
    command: Command, ctx: Context, completers: Mapping[str, str], *, group: bool
) -> dict[str, Any]:
    params = [_param_spec(param, completers) for param in command.get_params(ctx)]
    # What the index's parser reads as click does: a group stops at its command's name,
    # a command takes options and arguments in any order, and nothing unknown.
    usual = (
        isinstance(command, TyperGroup) == group
        and ctx.allow_interspersed_args != group
        and (group or not ctx.allow_extra_args)
        and not ctx.ignore_unknown_options
    )
    return {"params": params, "unusual": not usual or any(p["unusual"] for p in params)}


def _param_spec(param: Any, completers: Mapping[str, str]) -> dict[str, Any]:
    from typer.core import TyperArgument, TyperOption

    option = isinstance(param, TyperOption)
    flag = option and bool(param.is_flag or param.count)
    unusual = (
        not (option or isinstance(param, TyperArgument))
        or param.nargs != 1
        or (flag and param.multiple)
        or bool(getattr(param, "_flag_needs_value", False))
    )
    return {
        "kind": "option" if option else "argument",
        "name": param.name,
        "opts": list(param.opts),
        "secondary": list(param.secondary_opts),
        "help": getattr(param, "help", None),
        "hidden": bool(getattr(param, "hidden", False)),
        "flag": flag,
        "multiple": bool(param.multiple),
        "bare": getattr(param, "igor_bare_value", None) is not None,
        "unusual": unusual,
        "complete": _completion_of(param, completers),
    }


def _completion_of(param: Any, completers: Mapping[str, str]) -> Any:
    """How a parameter's values complete: None (nothing), the kind of an igor completer
    ("stacks", ...), the values of a completer that takes nothing, or "unknown" (the
    index cannot answer: the full path does)."""
    custom = getattr(param, "_custom_shell_complete", None)
    if custom is None:
        described = getattr(param, "type_descriptor", None)
        choice = described is not None and (described.is_choice or described.is_file)
        return "unknown" if choice else None
    given = _given_completer(custom)
    if given is None:
        return "unknown"
    if given.__module__.startswith("igor_cli.") and given.__name__ in completers:
        return completers[given.__name__]
    if inspect.signature(given).parameters:
        return "unknown"
    return [[c, ""] if isinstance(c, str) else [c[0], c[1]] for c in given()]


def _given_completer(custom: Any, depth: int = 3) -> Any:
    """The function igor gave typer as `autocompletion`, inside typer's wrappers."""
    import types

    for cell in getattr(custom, "__closure__", None) or ():
        try:
            found = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if not isinstance(found, types.FunctionType):  # a cell may hold anything
            continue
        if found.__module__.split(".")[0] != "typer":
            return inspect.unwrap(found)  # typer's wrapper wears the function's name
        if depth > 0:
            inner = _given_completer(found, depth - 1)
            if inner is not None:
                return inner
    return None
