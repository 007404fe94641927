"""Answering a TAB, and the completion scripts for bash, zsh and fish.

A TAB runs igor with `_IGOR_COMPLETE=complete_<shell>` (typer's protocol, so
typer's generic scripts work too). `answer_request` answers it from the same
command definitions as typer does, but without typer's value coercion, which
imports pydantic and would double the time a TAB takes (SPEC section 8). The
candidates come from `completion.py` (the local cache). Most TABs never get
here: `tab_index.py` answers them with the standard library alone from an index
of the command definitions that `refresh_index` writes. The scripts in
`completions/` are written by `python -m igor_cli.tab generate completions/`;
`igor completion SHELL` prints one, `--install` writes it for the shell to load.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import typer

    from igor_cli.cli_typer import Command, CompletionItem, Context, ShellComplete
    from igor_cli.config import Environment

COMPLETE_VAR = "_IGOR_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


# -- answering a TAB ----------------------------------------------------------------


def answer_request(out: TextIO | None = None, *, fast: bool = True) -> int:
    """Answer one TAB (`_IGOR_COMPLETE=complete_<shell>`): print the candidates, return 0.

    From the completion index with the standard library alone when it is there and
    current (`tab_index`, unless `fast` is False), else from the command definitions,
    after which the index is written for the next TAB. Anything else in
    `_IGOR_COMPLETE` (`source_bash`, other shells) goes to typer, which knows it.
    """
    action, _, shell = os.environ.get(COMPLETE_VAR, "").partition("_")
    if fast and action == "complete" and shell in SHELLS:
        from igor_cli.tab_index import answer

        said = answer(shell)
        if said is not None:
            (out or sys.stdout).write(said + "\n")
            return 0

    from igor_cli.cli import app, load_every_family

    if action == "source" and shell in SHELLS:  # the script itself: igor's, not typer's
        (out or sys.stdout).write(script(shell))
        return 0
    if action != "complete" or shell not in SHELLS:
        load_every_family()  # typer converts every command itself
        app(prog_name=app.info.name or "igor")  # typer's protocol: prints, then exits
        return 0

    from igor_cli.cli import group

    # The group converts a command's signature only when it is named.
    completer = _completers(app)[shell](group(), {}, app.info.name or "igor", COMPLETE_VAR)
    (out or sys.stdout).write(completer.complete() + "\n")
    refresh_index()
    return 0


# -- the completion index -------------------------------------------------------------


def refresh_index() -> None:
    """Write the completion index (`tab_index`) unless the one there is current."""
    from igor_cli import tab_index
    from igor_cli.config import ConfigError, Environment

    environ = {k: v for k, v in os.environ.items() if k != "IGOR_API_URL"}
    env = Environment(environ=environ)  # IGOR_API_URL is read at each TAB
    cache_dir = str(env.cache_dir())
    if tab_index.read(cache_dir) is not None:
        return
    try:
        api_url: str | None = env.api_url()
    except ConfigError:
        api_url = None  # no stack completes until it is fixed, as on the full path
    try:
        index = {**tab_index.stamp(cache_dir, str(env.config_path())), **index_of_commands()}
    except Exception:  # the index only saves time: building it must never cost the TAB
        return
    tab_index.write(cache_dir, {**index, "api_url": api_url})


def index_of_commands() -> dict[str, Any]:
    """What a TAB needs of igor's command definitions (`cli_typer.completion_index`): every
    family's commands, so every family is imported (on the full path only, once per index)."""
    from igor_cli.cli import app, group, load_every_family
    from igor_cli.cli_typer import completion_index
    from igor_cli.tab_index import COMPLETERS

    load_every_family()
    return completion_index(group(), app.info.name or "igor", COMPLETERS)


def _needed(app: typer.Typer, root: Command, prog_name: str, args: Sequence[str]) -> Command:
    """The commands this TAB needs: the one typed, or the visible ones while a name is typed."""
    from igor_cli.cli import index, load_every_family
    from igor_cli.cli_typer import converted, unconverted_context

    typed = unconverted_context(root, prog_name, list(args), None)._protected_args
    if typed:
        return root  # it converts the command typed, and only that one
    load_every_family()  # the names of every command are offered
    # in help's order, as the completion index has them: the order of registration is
    # the order the process happened to import the families in
    order = {name: at for at, name in enumerate(index())}
    visible = [i for i in app.registered_commands if not i.hidden]
    return converted(app, sorted(visible, key=lambda i: order.get(i.name, len(order))))


def _completers(app: typer.Typer) -> dict[str, type[ShellComplete]]:
    """typer's classes for each shell (its protocol), with the costly steps replaced."""
    from igor_cli.cli_typer import BashComplete, FishComplete, ZshComplete, resolve_incomplete
    from igor_cli.tab_index import one_line, zsh_escape

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
            return f'"{zsh_escape(item.value)}":"{zsh_escape(one_line(item.help))}"'

    class Fish(Fast, FishComplete):
        def format_completion(self, item: CompletionItem) -> str:
            """`value<TAB>help`."""
            if not item.help:
                return super().format_completion(item)
            return f"{item.value}\t{one_line(item.help)}"

    return {"bash": Bash, "zsh": Zsh, "fish": Fish}


def _parsed(cli: Command, prog_name: str, args: list[str]) -> Context | None:
    """The context of the (sub)command being typed (click's `_resolve_context`, unconverted).

    None for an unknown command.
    """
    from igor_cli.cli_typer import TyperGroup, unconverted_context

    ctx = unconverted_context(cli, prog_name, list(args), None)
    while isinstance(ctx.command, TyperGroup) and ctx._protected_args:
        # Command names are not case-sensitive (IgorGroup.resolve_command).
        name = ctx._protected_args[0].lower()
        sub = ctx.command.get_command(ctx, name)
        if sub is None:
            return None
        ctx = unconverted_context(sub, name, ctx.args, ctx)
    return ctx


# -- the shell scripts ------------------------------------------------------------

_HEADER = (
    "%(shell)s completion for %(prog)s. Written by "
    "`python -m igor_cli.tab generate`: do not edit.\n"
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


def script(shell: str) -> str:
    """The completion script for one shell (`igor completion SHELL`)."""
    return scripts()[_SCRIPTS[shell][0] % (_prog())]


def _prog() -> str:
    from igor_cli.cli import app

    return app.info.name or "igor"


# -- igor completion ------------------------------------------------------------------


def completion(shell: str | None, installing: bool, env: Environment) -> int:
    """Print the shell's script (`shell`, else $SHELL's), or install it where the shell finds
    it by itself."""
    from igor_cli.errors import UsageProblem

    shell = shell or Path(os.environ.get("SHELL", "")).name
    if shell not in SHELLS:
        said = f"$SHELL is {shell!r}" if shell else "$SHELL is not set"
        raise UsageProblem(
            f"igor completes in bash, zsh and fish; {said}.",
            "Name the shell: `igor completion bash`, `igor completion zsh` or "
            "`igor completion fish`.",
        )
    if not installing:
        env.out.write(script(shell))
        return 0
    path, step = install(shell)
    env.out.write(f"Installed the {shell} completion script in {path}.\n")
    if step:
        env.out.write(step + "\n")
    return 0


def install(shell: str) -> tuple[Path, str]:
    """Write the shell's script where it loads completions from, for this user.

    No start-up file is edited; returns the path and what is left to do, if anything.
    """
    prog = _prog()
    home = Path.home()
    data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    step = ""
    if shell == "bash":
        # bash-completion (2.x) loads a command's file from here on its first TAB.
        path = data / "bash-completion" / "completions" / prog
        step = (
            "New shells load it through the bash-completion package; without it, add "
            f"`source {path}` to ~/.bashrc."
        )
    elif shell == "zsh":
        path = home / ".zfunc" / f"_{prog}"
        zshrc = Path(os.environ.get("ZDOTDIR") or home) / ".zshrc"
        try:
            loaded = ".zfunc" in zshrc.read_text(encoding="utf-8", errors="replace")
        except OSError:
            loaded = False
        if not loaded:
            step = (
                f"Add `fpath=(~/.zfunc $fpath)` to {zshrc} before `compinit` runs, "
                "then `rm -f ~/.zcompdump; exec zsh`."
            )
    else:
        path = config / "fish" / "completions" / f"{prog}.fish"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script(shell), encoding="utf-8", newline="\n")
    return path, step


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
    """`python -m igor_cli.tab generate DIR`."""
    if len(argv) != 2 or argv[0] != "generate":
        print("usage: python -m igor_cli.tab generate DIRECTORY", file=sys.stderr)
        return 2
    for path in generate(Path(argv[1])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
