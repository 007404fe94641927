"""Answering a TAB with the standard library alone, from the completion index.

A TAB re-runs igor, so it pays igor's start-up every time (SPEC section 8: one TAB
<= 0.5x gh's). `tab.py` answers it from the command definitions, which means
importing typer; this module answers it from an index of those definitions that
`tab.py` writes beside the stack cache (`write`) and the cache itself, importing
nothing but the standard library (`answer`).

The index is trusted only while it describes this igor and this user's settings: it
holds igor's version and a fingerprint of its source files (any command or option
changed, added or removed changes it), and the settings that decide where the cache
and the config file are, and what the config file said of the API. When anything
differs, or the line holds something this parser does not read (`--`, short options
run together, an option it does not know), `answer` returns None and the full path
answers (and writes a fresh index).

The candidates themselves (stack names, environments, services from the cache) are
computed here for both paths: `completion.py` calls the same functions.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs a TAB 2 ms; mypy reads this name as typing's
if TYPE_CHECKING:
    from typing import Any

FORMAT = 1
INDEX_NAME = "tab-index.json"
# The settings that decide where the cache and config files are (platformdirs reads
# HOME and XDG_*): the index is valid only under the values it was written with.
SETTINGS = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "IGOR_CACHE_DIR", "IGOR_CONFIG")
SANDBOX_KEY = "(sandbox)"  # completion.SANDBOX_KEY: the sandbox's cache, never an API's
_TRUE = {"1", "true", "yes", "on"}  # config.Environment.flag
_SLUG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")
# The completers of igor's options, by the name of the function typer was given.
COMPLETERS = {
    "complete_stacks": "stacks",
    "complete_environments": "environments",
    "complete_services": "services",
}


# -- the candidates (both paths) -------------------------------------------------------


def well_formed(data: Any) -> list[dict[str, Any]]:
    """The cache's well-formed stack entries (an older igor's file, or one edited by hand,
    completes what it can rather than fail a TAB)."""
    stacks = data.get("stacks") if isinstance(data, dict) else None
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


def starting_with(values: Any, incomplete: str) -> list[str]:
    """The distinct values starting with `incomplete`, sorted without regard to case."""
    # As typed: typer and the shells match candidates case-sensitively.
    chosen = {v for v in values if isinstance(v, str) and v and v.startswith(incomplete)}
    return sorted(chosen, key=str.casefold)


def typed(value: Any) -> str:
    """An option's value as typed on the line so far ("" when absent), folded."""
    return value.strip().casefold() if isinstance(value, str) else ""


def stack_names(
    entries: list[dict[str, Any]], environment: str, incomplete: str
) -> list[tuple[str, str]]:
    """Stack names starting with `incomplete`, with their environments as help."""
    by_name: dict[str, list[str]] = {}
    for stack in entries:
        name, env = str(stack["name"]), str(stack["environment"])
        if environment and env.casefold() != environment:
            continue
        by_name.setdefault(name, []).append(env)
    return [
        (name, ", ".join(sorted(by_name[name], key=str.casefold)))
        for name in starting_with(by_name, incomplete)
    ]


def environments(entries: list[dict[str, Any]], stack: str, incomplete: str) -> list[str]:
    """Environments, narrowed to those of the stack already typed."""
    return starting_with(
        (s["environment"] for s in entries if not stack or str(s["name"]).casefold() == stack),
        incomplete,
    )


def services(
    entries: list[dict[str, Any]], stack: str, environment: str, incomplete: str
) -> list[str]:
    """Services of the stack already typed (those igor has seen)."""
    names: list[Any] = []
    for entry in entries:
        if str(entry["name"]).casefold() != stack:
            continue
        if environment and str(entry["environment"]).casefold() != environment:
            continue
        names.extend(entry["services"])
    return starting_with(names, incomplete)


def cache_name(key: str) -> str:
    """The stack cache's file name for one API (`completion.cache_file`): a readable slug;
    two keys that share one are told apart by the key stored inside."""
    # What re.sub(r"[^A-Za-z0-9.]+", "-", ...) makes, without importing re (see `loads`).
    parts: list[str] = []
    for char in key.split("://", 1)[-1]:
        if char in _SLUG_CHARS:
            parts.append(char)
        elif not parts or parts[-1] != "-":  # a run of other characters: one "-"
            parts.append("-")
    slug = "".join(parts).strip("-")[:100]
    return f"stacks-{slug or 'default'}.json"


# -- formatting, as typer's protocol wants it ------------------------------------------


def one_line(text: str) -> str:
    """Help on one line (the shells show one line per candidate)."""
    return " ".join(text.split())


def zsh_escape(text: str) -> str:
    """Text for `"..."` inside the single-quoted `_arguments '...'` the script evals.

    typer's escaping, but for the apostrophe: typer writes `''`, which zsh reads
    as the end and restart of the quote, so "stack's" became "stacks". `'\\''`
    closes the quote, adds an escaped apostrophe and reopens it.
    """
    for character, escaped in (
        ('"', '""'),
        ("'", "'\\''"),
        ("$", "\\$"),
        ("`", "\\`"),
        (":", r"\\:"),
    ):
        text = text.replace(character, escaped)
    return text


def _typer_zsh_escape(text: str) -> str:
    # typer's own (ZshComplete.format_completion), which igor keeps for a value without help.
    for character, escaped in (('"', '""'), ("'", "''"), ("$", "\\$"), ("`", "\\`")):
        text = text.replace(character, escaped)
    return text.replace(":", r"\\:")


def formatted(shell: str, items: list[tuple[str, str | None]]) -> str:
    """The answer to print for `shell` (typer's BashComplete, ZshComplete, FishComplete,
    with igor's help on one line)."""
    if shell == "bash":
        return "\n".join(value for value, _ in items)
    if shell == "zsh":
        if not items:
            return "_files"
        lines = [
            f'"{zsh_escape(value)}":"{zsh_escape(one_line(help_))}"'
            if help_
            else f'"{_typer_zsh_escape(value)}"'
            for value, help_ in items
        ]
        joined = "\n".join(lines)
        return f"_arguments '*: :(({joined}))'"
    return "\n".join(f"{value}\t{one_line(help_)}" if help_ else value for value, help_ in items)


# -- where things are ------------------------------------------------------------------


def cache_dir_guess() -> str | None:
    """Where platformdirs puts igor's cache, for the usual systems; None elsewhere.

    Only a guess: the index says where platformdirs put it when it was written, and
    a guess that differs sends the TAB the full way.
    """
    explicit = os.environ.get("IGOR_CACHE_DIR")
    if explicit:
        return os.path.expanduser(explicit)
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/igor")
    if sys.platform.startswith("linux"):
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
        return os.path.join(base, "igor")
    return None


def fingerprint() -> str:
    """igor's version and every source file's size and time: what defines its commands."""
    from igor_cli import __version__

    package = os.path.dirname(os.path.abspath(__file__))
    parts = [__version__]
    stack = [package]
    while stack:
        directory = stack.pop()
        try:
            listing = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in listing:
            if entry.name.endswith(".py"):
                info = entry.stat()
                parts.append(f"{entry.path}:{info.st_size}:{info.st_mtime_ns}")
            elif entry.is_dir() and entry.name != "__pycache__":
                stack.append(entry.path)
    return "|".join(parts)


def file_signature(path: str) -> list[int] | None:
    """What tells a file's versions apart without reading it; None when there is none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_mtime_ns, info.st_size, info.st_ino]


def settings() -> dict[str, str | None]:
    """The settings the index depends on, as they are now."""
    return {name: os.environ.get(name) for name in SETTINGS}


_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Strict:
    """What json.loads decodes with (`JSONDecoder`'s defaults), for the C scanner."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def loads(text: str) -> Any:
    """json.loads(text), without importing json: json imports re (and re enum), 8 ms of a
    21 ms TAB. CPython's C scanner is the one json.loads runs; elsewhere, json itself."""
    try:
        from _json import make_scanner
    except ImportError:  # not CPython
        import json

        return json.loads(text)
    text = text.strip(" \t\n\r")  # JSON's whitespace, around the value
    try:
        value, end = make_scanner(_Strict)(text, 0)  # type: ignore[arg-type]  # (typeshed)
    except StopIteration:  # no value where one starts
        raise ValueError("not JSON") from None
    if end != len(text):
        raise ValueError("more than one JSON value")
    return value


# -- the index -------------------------------------------------------------------------


def read(cache_dir: str) -> dict[str, Any] | None:
    """The index in `cache_dir`, if it describes this igor and these settings."""
    try:
        with open(os.path.join(cache_dir, "completion", INDEX_NAME), encoding="utf-8") as file:
            index = loads(file.read())
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        return None
    if index.get("cache_dir") != cache_dir or index.get("settings") != settings():
        return None
    config = index.get("config")
    if not isinstance(config, dict) or file_signature(str(config.get("path"))) != config.get(
        "signature"
    ):
        return None
    if index.get("fingerprint") != fingerprint():
        return None
    return index


def write(cache_dir: str, index: dict[str, Any]) -> None:
    """Save the index (whole or not at all; a cache that cannot be written costs speed)."""
    import json  # the full path writes it: typer has imported json already
    import tempfile

    directory = os.path.join(cache_dir, "completion")
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tab-index-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(json.dumps(index, separators=(",", ":")))
            os.replace(temporary, os.path.join(directory, INDEX_NAME))
        except BaseException:
            import contextlib

            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError:
        pass


def stamp(cache_dir: str, config_path: str) -> dict[str, Any]:
    """What makes an index valid here and now (`write` adds the commands and the API)."""
    return {
        "format": FORMAT,
        "fingerprint": fingerprint(),
        "cache_dir": cache_dir,
        "settings": settings(),
        "config": {"path": config_path, "signature": file_signature(config_path)},
    }


# -- answering -------------------------------------------------------------------------


class Decline(Exception):
    """The line holds something the index cannot answer for: the full path answers."""


def split_words(line: str) -> list[str]:
    """The line split as click splits it (`split_arg_string`: shlex's POSIX rules, no
    comments; an unclosed quote or a last backslash keeps the word begun), written out:
    shlex imports re, which a TAB cannot afford (see `loads`)."""
    words: list[str] = []
    word, quoted, state, escaped_in = "", False, " ", " "
    for char in line:
        if state == "\\":  # the character after a backslash
            if escaped_in == '"' and char not in '\\"':
                word += "\\"  # within double quotes, only \\ and \" are escapes
            word += char
            state = escaped_in
        elif state in "'\"":  # within quotes
            quoted = True
            if char == state:
                state = "a"
            elif char == "\\" and state == '"':
                escaped_in, state = state, "\\"
            else:
                word += char
        elif char in " \t\r\n":
            if word or quoted:
                words.append(word)
            word, quoted, state = "", False, " "
        elif char == "\\":
            escaped_in, state = "a", "\\"
        elif char in "'\"":
            state = char
        else:
            word += char
            state = "a"
    if word or quoted or state in "'\"\\":  # unclosed, the word begun is kept (shlex's token)
        words.append(word)
    return words


def request_words(shell: str) -> tuple[list[str], str]:
    """The complete words after igor's name, and the word being typed (typer's protocol)."""
    environ = os.environ
    if shell == "bash":
        words = split_words(environ["COMP_WORDS"])
        at = int(environ["COMP_CWORD"])
        return words[1:at], words[at] if -len(words) <= at < len(words) else ""
    line = environ.get("_TYPER_COMPLETE_ARGS", "")
    words = split_words(line)[1:]
    if words and not line.endswith(" "):
        return words[:-1], words[-1]
    return words, ""


class _Parsed:
    """One level of the line read as click's parser reads it (values unconverted)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.params: list[dict[str, Any]] = spec["params"]
        self.values: dict[str, Any] = {}
        self.rest: list[str] = []

    def read(self, words: list[str], *, group: bool) -> None:
        """Read `words`: options into `values`, the rest (positional) into `rest`."""
        by_name = {name: p for p in self.params if p["kind"] == "option" for name in p["opts"]}
        positional: list[str] = []
        at = 0
        pending = False
        while at < len(words):
            word = words[at]
            at += 1
            if word == "--" or (
                word[:1] == "-" and len(word) > 1 and word[1:2] != "-" and len(word) > 2
            ):
                raise Decline  # the end of options, or short options run together
            if word[:1] != "-" or len(word) == 1:
                if group:
                    self.rest = [word, *words[at:]]
                    return
                positional.append(word)
                continue
            name, equals, attached = word.partition("=")
            param = by_name.get(name if equals else word)
            if param is None or param["unusual"]:
                raise Decline
            if param["flag"]:
                if equals:
                    raise Decline
                self._set(param, True)
                continue
            if equals:
                value: Any = attached
            elif param["bare"] and (at >= len(words) or words[at][:1] == "-"):
                value = ""  # `--json` alone: every field
            elif at < len(words):
                value = words[at]
                at += 1
            else:
                pending = True  # no value yet: click stops reading (resilient parsing);
                break  # igor gives the positional words their arguments all the same
            self._set(param, value)
        if pending and group:
            return
        arguments = [p for p in self.params if p["kind"] == "argument"]
        for param, word in zip(arguments, positional, strict=False):
            self._set(param, word)
        self.rest = positional[len(arguments) :]

    def _set(self, param: dict[str, Any], value: Any) -> None:
        name = str(param["name"])
        if param["multiple"]:
            self.values.setdefault(name, [])
            self.values[name].append(value)
        else:
            self.values[name] = value


def answer(shell: str) -> str | None:
    """The answer to this TAB from the index and the cache, or None: take the full path."""
    if shell == "fish" and os.environ.get("_TYPER_COMPLETE_FISH_ACTION") != "get-args":
        return None
    cache_dir = cache_dir_guess()
    if cache_dir is None:
        return None
    index = read(cache_dir)
    if index is None:
        return None
    try:
        return formatted(shell, _candidates(index, cache_dir, *request_words(shell)))
    except (Decline, KeyError, TypeError, ValueError, IndexError):
        return None


def _candidates(
    index: dict[str, Any], cache_dir: str, args: list[str], incomplete: str
) -> list[tuple[str, str | None]]:
    """click's `_resolve_incomplete` and `shell_complete`, over the index."""
    root = _Parsed(index["root"])
    root.read(args, group=True)
    here, group = root, True
    commands: dict[str, dict[str, Any]] = index["commands"]
    if root.rest:
        spec = commands.get(root.rest[0].lower())
        if spec is None:
            return []  # an unknown command completes nothing
        if spec["unusual"]:
            raise Decline
        here, group = _Parsed(spec), False
        here.read(root.rest[1:], group=False)
    args = list(args)
    if incomplete == "=":
        incomplete = ""
    elif "=" in incomplete and incomplete[:1] == "-":
        name, _, incomplete = incomplete.partition("=")
        args.append(name)
    if "--" not in args and incomplete[:1] == "-":
        return _listed(index, here, group, incomplete)
    last = args[-1] if args else ""
    for param in here.params:
        option = param["kind"] == "option" and not param["flag"]
        if option and last[:1] == "-" and last in param["opts"]:
            return _values(index, cache_dir, root, here, param, incomplete)
    for param in here.params:
        if param["kind"] == "argument" and here.values.get(str(param["name"])) is None:
            return _values(index, cache_dir, root, here, param, incomplete)
    return _listed(index, here, group, incomplete)


def _listed(
    index: dict[str, Any], here: _Parsed, group: bool, incomplete: str
) -> list[tuple[str, str | None]]:
    """What a command offers for a word that is no value: its commands and options."""
    items: list[tuple[str, str | None]] = []
    if group:
        for name, spec in index["commands"].items():
            if name.startswith(incomplete) and not spec["hidden"]:
                items.append((name, spec["help"]))
    if incomplete and not incomplete[0].isalnum():
        for param in here.params:
            if param["kind"] != "option" or param["hidden"]:
                continue
            if not param["multiple"] and here.values.get(str(param["name"])) is not None:
                continue  # given already
            names = [*param["opts"], *param["secondary"]]
            items.extend((name, param["help"]) for name in names if name.startswith(incomplete))
    return items


def _values(
    index: dict[str, Any],
    cache_dir: str,
    root: _Parsed,
    here: _Parsed,
    param: dict[str, Any],
    incomplete: str,
) -> list[tuple[str, str | None]]:
    """The candidates for a value of `param` (what its completer gives, as typer filters it)."""
    completer = param["complete"]
    if completer is None:
        return []
    if isinstance(completer, list):
        return [(str(v), h or None) for v, h in completer if str(v).startswith(incomplete)]
    if completer not in ("stacks", "environments", "services"):
        raise Decline
    entries = _cached(index, cache_dir, bool(root.values.get("sandbox")))
    values = dict(here.values)
    if values.get("stack") is None:  # the stack typed first, as the command reads it
        values["stack"] = values.get(str(index.get("stack_word")))
    if completer == "stacks":
        found: list[tuple[str, str | None]] = list(
            stack_names(entries, typed(values.get("environment")), incomplete)
        )
        return [(v, h) for v, h in found if v.startswith(incomplete)]
    if completer == "environments":
        names = environments(entries, typed(values.get("stack")), incomplete)
    else:
        names = services(
            entries, typed(values.get("stack")), typed(values.get("environment")), incomplete
        )
    return [(name, None) for name in names if name.startswith(incomplete)]


def _cached(index: dict[str, Any], cache_dir: str, sandbox: bool) -> list[dict[str, Any]]:
    """The stacks in the cache of the API in force (`completion.cache_key`)."""
    if sandbox or os.environ.get("IGOR_SANDBOX", "").strip().lower() in _TRUE:
        key = SANDBOX_KEY
    else:
        url = os.environ.get("IGOR_API_URL") or index["api_url"]
        if url is None:
            return []  # a broken config file: the command itself will say what is wrong
        key = str(url).rstrip("/")
    try:
        with open(os.path.join(cache_dir, "completion", cache_name(key)), encoding="utf-8") as file:
            data = loads(file.read())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("api") != key:
        return []
    return well_formed(data)
