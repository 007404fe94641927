"""TAB completion: the local cache it reads, the answer to a TAB, the shell scripts.

Any command that fetched the stacks (list, deploy, cancel) leaves their names,
environments and known services in the user cache dir, one file per API (the
sandbox and a real account never mix). Completion reads that file and nothing
else: never the network, the keyring or Slack.

A TAB runs igor with `_IGOR_COMPLETE=complete_<shell>` (typer's protocol, so the
scripts of `igor --install-completion` work too). `answer_request` answers it
from the same command definitions as typer does, but without typer's value
coercion, which imports pydantic and would double the time a TAB takes
(SPEC section 8). The scripts in `completions/` are written by
`python -m igor_cli.completion generate completions/`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import typer

    from igor_cli.cli import Command, CompletionItem, Context, ShellComplete
    from igor_cli.cloud66 import Service, Stack
    from igor_cli.config import Environment

# Not a URL, so that no IGOR_API_URL can share the sandbox's cache.
SANDBOX_KEY = "(sandbox)"
COMPLETE_VAR = "_IGOR_COMPLETE"
# How long a listing is trusted to say a name is unique without `-e` (deploy, cancel).
FRESH_SECONDS = 600.0

# -- the cache ------------------------------------------------------------------

# `igor serve` runs commands in threads: their read-modify-write of one cache
# file must not interleave.
_write_lock = threading.Lock()


def cache_key(env: Environment, *, sandbox: bool = False) -> str:
    """Which API the cache is for: the sandbox, or the API URL in force."""
    if sandbox or env.in_sandbox:
        return SANDBOX_KEY
    # The client ignores a trailing slash; so must the choice of file.
    return env.api_url().rstrip("/")


def cache_file(env: Environment, key: str) -> Path:
    """The cache file for one API: a readable name, the key itself inside."""
    # Two URLs that differ only in punctuation share a file name; `load` checks
    # the key stored inside, so their stacks still never mix.
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", key.split("://", 1)[-1]).strip("-")[:100]
    return env.cache_dir() / "completion" / f"stacks-{slug or 'default'}.json"


class StackCache:
    """Records what a Cloud 66 client saw, for completion (errors are ignored)."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.key = cache_key(env)

    def stacks(self, stacks: list[Stack]) -> None:
        """Replace the stack list, keeping the services already known."""
        with _write_lock:
            known = {entry["uid"]: entry for entry in _entries(load(self.env, self.key))}
            self._save(
                [
                    {
                        "uid": s.uid,
                        "name": s.name,
                        "environment": s.environment,
                        "services": known.get(s.uid, {}).get("services", []),
                    }
                    for s in stacks
                ]
            )

    def services(self, uid: str, services: list[Service]) -> None:
        """Remember a stack's services."""
        with _write_lock:
            entries = _entries(load(self.env, self.key))
            for entry in entries:
                if entry["uid"] == uid:
                    entry["services"] = [s.name for s in services]
                    self._save(entries)
                    return

    def uids(self, name: str, environment: str | None) -> list[str]:
        """The uids last seen for this name (any case), in this environment when given.

        Without an environment the answer is trusted only from a recent listing:
        a stack of the same name added since would make the name ambiguous.
        """
        data = load(self.env, self.key)
        if environment is None and not self._recent(data):
            return []
        wanted, env = name.casefold(), (environment or "").casefold()
        return [
            entry["uid"]
            for entry in _entries(data)
            if entry["name"].casefold() == wanted
            and (not env or entry["environment"].casefold() == env)
        ]

    def _recent(self, data: Mapping[str, Any]) -> bool:
        from datetime import datetime

        try:
            saved = datetime.fromisoformat(str(data.get("saved_at")))
        except ValueError:
            return False
        age = (self.env.clock() - saved).total_seconds()
        return 0 <= age <= FRESH_SECONDS

    def _save(self, entries: list[dict[str, Any]]) -> None:
        import tempfile

        path = cache_file(self.env, self.key)
        data = {"api": self.key, "saved_at": self.env.clock().isoformat(), "stacks": entries}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A unique temporary file, then an atomic rename: a TAB pressed
            # meanwhile reads the old list or the new one, never half of one.
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".stacks-", suffix=".tmp")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    json.dump(data, stream)
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError:
            pass  # a cache that cannot be written only costs completions


def load(env: Environment, key: str) -> dict[str, Any]:
    """The cache for one API: {"api", "saved_at", "stacks"}, or {} when missing or unreadable."""
    try:
        data = json.loads(cache_file(env, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("api") != key:
        return {}
    return data


def _entries(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    # The file is ours, but it may be from an older igor or edited by hand:
    # keep only well-formed entries rather than fail a TAB.
    stacks = data.get("stacks")
    if not isinstance(stacks, list):
        return []
    entries = []
    for entry in stacks:
        if not isinstance(entry, dict):
            continue
        if not all(isinstance(entry.get(k), str) for k in ("uid", "name", "environment")):
            continue
        services = entry.get("services")
        entry["services"] = (
            [s for s in services if isinstance(s, str)] if isinstance(services, list) else []
        )
        entries.append(entry)
    return entries


# -- what TAB offers --------------------------------------------------------------


def _cached_stacks(ctx: typer.Context) -> list[dict[str, Any]]:
    from igor_cli.config import ConfigError, Environment

    root = ctx.find_root()
    env = root.obj if isinstance(root.obj, Environment) else Environment()
    try:
        key = cache_key(env, sandbox=bool(root.params.get("sandbox")))
    except ConfigError:
        return []  # the command itself will explain the broken config file
    return _entries(load(env, key))


def _starting_with(values: Iterable[str], incomplete: str) -> list[str]:
    # As typed: typer and the shells match candidates case-sensitively.
    return sorted({v for v in values if v and v.startswith(incomplete)}, key=str.casefold)


def _typed(ctx: typer.Context, name: str) -> str:
    """An option's value as typed on the line so far ("" when absent), folded."""
    value = ctx.params.get(name)
    return value.strip().casefold() if isinstance(value, str) else ""


def stack_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Stack names starting with what was typed, with their environments as help."""
    environment = _typed(ctx, "environment")
    by_name: dict[str, list[str]] = {}
    for stack in _cached_stacks(ctx):
        if environment and stack["environment"].casefold() != environment:
            continue
        by_name.setdefault(stack["name"], []).append(stack["environment"])
    return [
        (name, ", ".join(sorted(by_name[name], key=str.casefold)))
        for name in _starting_with(by_name, incomplete)
    ]


def environments(ctx: typer.Context, incomplete: str) -> list[str]:
    """Environments, narrowed to those of the stack already typed with -s."""
    stack = _typed(ctx, "stack")
    return _starting_with(
        (
            s["environment"]
            for s in _cached_stacks(ctx)
            if not stack or s["name"].casefold() == stack
        ),
        incomplete,
    )


def services(ctx: typer.Context, incomplete: str) -> list[str]:
    """Services of the stack already typed with -s (those igor has seen)."""
    stack = _typed(ctx, "stack")
    environment = _typed(ctx, "environment")
    names: list[str] = []
    for entry in _cached_stacks(ctx):
        if entry["name"].casefold() != stack:
            continue
        if environment and entry["environment"].casefold() != environment:
            continue
        names.extend(entry["services"])
    return _starting_with(names, incomplete)


# -- answering a TAB ----------------------------------------------------------------


def answer_request(out: TextIO | None = None) -> int:
    """Answer one TAB (`_IGOR_COMPLETE=complete_<shell>`): print the candidates, return 0.

    Anything else in `_IGOR_COMPLETE` (`source_bash`, other shells) goes to
    typer, which knows it.
    """
    from igor_cli.cli import app

    action, _, shell = os.environ.get(COMPLETE_VAR, "").partition("_")
    if action != "complete" or shell not in ("bash", "zsh", "fish"):
        app(prog_name=app.info.name or "igor")  # typer's protocol: prints, then exits
        return 0

    # The root alone: the commands this TAB needs are added once it is read.
    completer = _completers(app)[shell](
        _converted(app, []), {}, app.info.name or "igor", COMPLETE_VAR
    )
    (out or sys.stdout).write(completer.complete() + "\n")
    return 0


def _converted(app: typer.Typer, commands: list[Any]) -> Command:
    """`app` as click commands, with only `commands` of those registered.

    typer converts every command, aliases included, from its signature: most
    of the time a TAB would take.
    """
    import copy

    import typer.main

    # A shallow copy: the app itself, as the command line uses it, is untouched.
    part = copy.copy(app)
    part.registered_commands = commands
    return typer.main.get_command(part)


def _needed(app: typer.Typer, root: Command, prog_name: str, args: Sequence[str]) -> Command:
    """The commands this TAB needs: the one typed, or the visible ones while a name is typed."""
    typed = _context(root, prog_name, list(args), None)._protected_args
    name = typed[0].lower() if typed else ""
    return _converted(
        app, [i for i in app.registered_commands if (i.name == name if name else not i.hidden)]
    )


def _completers(app: typer.Typer) -> dict[str, type[ShellComplete]]:
    """typer's classes for each shell (its protocol), with the costly steps replaced."""
    from typer._completion_classes import BashComplete, FishComplete, ZshComplete

    from igor_cli.cli import resolve_incomplete

    class Fast:
        cli: Command
        prog_name: str

        def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
            """The candidates for `incomplete`, after `args`."""
            ctx = _parsed(_needed(app, self.cli, self.prog_name, args), self.prog_name, args)
            if ctx is None:
                return []
            obj, incomplete = resolve_incomplete(ctx, args, incomplete)
            return obj.shell_complete(ctx, incomplete)

    # typer passes help through rich, an import as long as the rest of the TAB,
    # which also wraps it at 80 columns (a second, bogus candidate in fish);
    # igor's help is plain text, so it is sent as it is, on one line.

    class Bash(Fast, BashComplete):
        pass

    class Zsh(Fast, ZshComplete):
        def format_completion(self, item: CompletionItem) -> str:
            """`"value":"help"`, escaped for zsh as typer does."""
            if not item.help:
                return super().format_completion(item)
            return f'"{_zsh_escape(item.value)}":"{_zsh_escape(_one_line(item.help))}"'

    class Fish(Fast, FishComplete):
        def format_completion(self, item: CompletionItem) -> str:
            """`value<TAB>help`."""
            if not item.help:
                return super().format_completion(item)
            return f"{item.value}\t{_one_line(item.help)}"

    return {"bash": Bash, "zsh": Zsh, "fish": Fish}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _zsh_escape(text: str) -> str:
    # typer's escaping, so that its zsh script and ours read the same answer.
    for character, escaped in (('"', '""'), ("'", "''"), ("$", "\\$"), ("`", "\\`"), (":", r"\\:")):
        text = text.replace(character, escaped)
    return text


def _context(command: Command, name: str, words: list[str], parent: Context | None) -> Context:
    """A context for `command` with `words` read into `ctx.params`, as typed.

    What click's `make_context` does, less the conversion of each value:
    converting is what imports pydantic, and no callback (such as
    `--version`'s) may run on a TAB.
    """
    from typer.core import TyperGroup

    from igor_cli.cli import ParameterSource

    settings = {**command.context_settings, "resilient_parsing": True}
    ctx = command.context_class(command, info_name=name, parent=parent, **settings)
    parser = command.make_parser(ctx)
    opts, rest, _order = parser.parse_args(args=words)
    for param in command.get_params(ctx):
        if param.name is None:
            continue
        ctx.params[param.name] = opts.get(param.name)
        if param.name in opts:
            ctx.set_parameter_source(param.name, ParameterSource.COMMANDLINE)
    ctx._opt_prefixes.update(parser._opt_prefixes)
    if isinstance(command, TyperGroup) and rest:
        ctx._protected_args, ctx.args = rest[:1], rest[1:]
    else:
        ctx.args = rest
    return ctx


def _parsed(cli: Command, prog_name: str, args: list[str]) -> Context | None:
    """The context of the (sub)command being typed (click's `_resolve_context`, unconverted).

    None for an unknown command.
    """
    from typer.core import TyperGroup

    ctx = _context(cli, prog_name, list(args), None)
    while isinstance(ctx.command, TyperGroup) and ctx._protected_args:
        # Command names are not case-sensitive (IgorGroup.resolve_command).
        name = ctx._protected_args[0].lower()
        sub = ctx.command.get_command(ctx, name)
        if sub is None:
            return None
        ctx = _context(sub, name, ctx.args, ctx)
    return ctx


# -- the shell scripts ------------------------------------------------------------

_HEADER = (
    "%(shell)s completion for %(prog)s. Written by "
    "`python -m igor_cli.completion generate`: do not edit.\n"
)

_BASH = """\
# %(header)s# Install: copy to /usr/share/bash-completion/completions/%(prog)s (or
# ~/.local/share/bash-completion/completions/%(prog)s), or source it from ~/.bashrc.

_%(ident)s_completion() {
    local cur=${COMP_WORDS[COMP_CWORD]} line=${COMP_LINE:0:COMP_POINT} item
    # %(prog)s gets the line itself, which it splits as the shell does: bash's own
    # words are also cut at = and :. A new word not yet typed must still count.
    if [[ -z $cur ]]; then
        line+="''"
    fi
    COMPREPLY=()
    while IFS= read -r item; do
        [[ -n $item ]] || continue
        # Inside an opened quote bash closes the quote itself; elsewhere a name
        # with spaces must be escaped to stay one word.
        if [[ $cur != [\\"\\']* ]]; then
            printf -v item %%q "$item"
        fi
        COMPREPLY+=("$item")
    done < <(env COMP_WORDS="$line" COMP_CWORD=-1 %(var)s=complete_bash %(prog)s 2>/dev/null)
}

complete -F _%(ident)s_completion %(prog)s
"""

_ZSH = """\
#compdef %(prog)s
# %(header)s# Install: put this file, named _%(prog)s, in a directory of $fpath before
# compinit runs.

_%(ident)s() {
    local response
    response=$(%(var)s=complete_zsh _TYPER_COMPLETE_ARGS="${words[1,CURRENT]}" %(prog)s 2>/dev/null)
    # "_files" means no candidates, and %(prog)s takes no file names: offer nothing.
    [[ -n $response && $response != _files ]] || return 1
    # In --stack=NAME, match NAME and leave --stack= as it is.
    if [[ $PREFIX == -*=* ]]; then
        compset -P '*='
    fi
    # An _arguments call listing the candidates and their help, quoted for eval.
    eval "$response"
}

# Autoloaded from $fpath, this file is the body of the first call to _%(ident)s:
# complete now, or the first TAB would only define the function.
if [[ $funcstack[1] == _%(ident)s ]]; then
    _%(ident)s "$@"
else
    compdef _%(ident)s %(prog)s
fi
"""

_FISH = """\
# %(header)s# Install: copy to ~/.config/fish/completions/%(prog)s.fish.

function __%(ident)s_complete
    set -lx %(var)s complete_fish
    set -lx _TYPER_COMPLETE_FISH_ACTION get-args
    set -lx _TYPER_COMPLETE_ARGS (commandline -cp)
    # In --stack=NAME fish matches the whole word: candidates must start with --stack= too.
    set -l option (string match -r -- '^--?[^=]+=' (commandline -ct))
    # One candidate a line, its help after a tab.
    for candidate in (%(prog)s 2>/dev/null)
        printf '%%s%%s\\n' "$option" "$candidate"
    end
end

# %(prog)s takes no file names: never offer them instead.
complete --command %(prog)s --no-files --arguments '(__%(ident)s_complete)'
"""

_SCRIPTS = {"bash": ("%s.bash", _BASH), "zsh": ("_%s", _ZSH), "fish": ("%s.fish", _FISH)}


def scripts(prog: str | None = None) -> dict[str, str]:
    """The completion scripts for each shell, by file name (`igor.bash`, `_igor`, `igor.fish`)."""
    if prog is None:
        from igor_cli.cli import app

        prog = app.info.name or "igor"
    values = {
        "prog": prog,
        "ident": re.sub(r"\W", "_", prog),
        # The variable typer reads (typer.completion.show_callback).
        "var": "_{}_COMPLETE".format(prog.replace("-", "_").upper()),
    }
    return {
        name % prog: template % {**values, "header": _HEADER % {**values, "shell": shell}}
        for shell, (name, template) in _SCRIPTS.items()
    }


def generate(directory: Path) -> list[Path]:
    """Write the completion scripts into `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in scripts().items():
        path = directory / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main(argv: Sequence[str]) -> int:
    """`python -m igor_cli.completion generate DIR`."""
    if len(argv) != 2 or argv[0] != "generate":
        print("usage: python -m igor_cli.completion generate DIRECTORY", file=sys.stderr)
        return 2
    for path in generate(Path(argv[1])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
