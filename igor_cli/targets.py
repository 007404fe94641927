"""Default targets: the stack and environment a command means when none is typed.

In a shell, each of the two comes from the first of these that sets it:

1. what was typed (`igor deploy shop -e production`);
2. `IGOR_STACK` and `IGOR_ENVIRONMENT`: this terminal session, or this one
   command (`IGOR_STACK=blog igor deploy`);
3. `.igor.toml`, the nearest one in the current directory or above it (as
   flyctl finds `fly.toml`): the project you are standing in;
4. `[defaults]` in the config file: you, everywhere.

The variables beat the project file as `FLY_APP` beats `fly.toml` and
`HEROKU_APP` beats the git remote: a variable is set on purpose, for this
session or this one command, while the project file is found by where you
stand. Each of the two is taken on its own (a variable's stack with the
project file's environment), and igor names where each came from. In chat, only
the channel's default applies (`[[slack.channel]]` in the config file):
nothing of the shell that runs the bot does. Whenever a default is used,
igor says so and where it came from (`sentence`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from igor_cli.config import ConfigError, Environment, parse_config

PROJECT_FILE = ".igor.toml"
FIELDS = ("stack", "environment")  # the names of the options they stand in for
_VARIABLES = {"stack": "IGOR_STACK", "environment": "IGOR_ENVIRONMENT"}


@dataclass(frozen=True)
class Default:
    """A value a command was not given, and where it came from (in words)."""

    value: str
    source: str


Defaults = Mapping[str, Default]  # "stack" / "environment" -> the default


def shell_defaults(env: Environment, cwd: Path | None = None) -> dict[str, Default]:
    """The defaults of a shell: the variables, then .igor.toml, then the config file."""
    found: dict[str, Default] = {}

    def offer(values: Mapping[str, Any], source: Callable[[str], str]) -> None:
        for name in FIELDS:
            value = str(values.get(name) or "").strip()
            if value and name not in found:  # a nearer source already said
                found[name] = Default(value, source(name))

    offer({name: env.environ.get(variable) for name, variable in _VARIABLES.items()},
          _VARIABLES.__getitem__)  # fmt: skip
    start = cwd or _cwd()
    project = find_project_file(start) if start is not None else None
    if project is not None:
        offer(read_project_file(project), lambda _: str(project))
    offer(_config_defaults(env), lambda _: f"[defaults] in {env.config_path()}")
    return found


def _cwd() -> Path | None:
    try:
        return Path.cwd()
    except OSError:  # the directory was removed under the shell: no project to find
        return None


def find_project_file(start: Path, say: Callable[[str], None] | None = None) -> Path | None:
    """The nearest `.igor.toml` in `start` or a directory above it, if it can be trusted.

    One that another account could have written is not used, and the search stops
    there (as git does with a repository outside `safe.directory`): `say` (standard
    error by default) is told which file and why.
    """
    for directory in (start, *start.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            problem = untrusted_project_file(candidate)
            if not problem:
                return candidate
            (say or _to_stderr)(f"igor: not using {candidate}: {problem}.")
            return None
    return None


def untrusted_project_file(path: Path) -> str:
    """Why a project file may have been written by someone else ("" when it cannot):
    it belongs to another account, or anyone may write it or its directory (`/tmp`)."""
    import os
    import stat

    if os.name != "posix":
        return ""
    try:
        mine, there = path.stat(), path.parent.stat()
    except OSError:
        return ""  # reading it says what is wrong
    if mine.st_uid not in (os.geteuid(), 0):
        return f"it belongs to another account (user ID {mine.st_uid}), not to you"
    if there.st_mode & stat.S_IWOTH:
        return f"anyone may write in {path.parent}"
    if mine.st_mode & stat.S_IWOTH:
        return "anyone may write it"
    return ""


def _to_stderr(text: str) -> None:
    import sys

    from igor_cli.outside_text import printable

    sys.stderr.write(printable(text) + "\n")


def read_project_file(path: Path) -> dict[str, str]:
    """`stack = "shop"` and `environment = "staging"`; anything else is an error."""
    try:
        values, _ = parse_config(path)
    except ConfigError as error:  # its words are the config file's
        message = error.message.replace("The config file", "The project file")
        raise ConfigError(message, "Fix it, or remove it.") from None
    _check(values, str(path), 'Write it as: stack = "shop" and environment = "staging".')
    return values


def _config_defaults(env: Environment) -> Mapping[str, Any]:
    section = env.config().get("defaults", {})  # the config file's schema checks its types
    return section if isinstance(section, Mapping) else {}


def channel_defaults(config: Mapping[str, Any], channel: str, path: str = "") -> dict[str, Default]:
    """The defaults of one chat channel, from `[[slack.channel]]` in the config file."""
    where = path or "the config file"
    slack = config.get("slack", {})
    entries = slack.get("channel", []) if isinstance(slack, Mapping) else []
    found: dict[str, Default] = {}
    for number, entry in enumerate(entries, start=1):
        place = f"{where}: [[slack.channel]] number {number}"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            raise ConfigError(f'{place} needs an id (the channel\'s ID, e.g. id = "C123").')
        values = {key: value for key, value in entry.items() if key != "id"}
        _check(values, place, "Keys: id, stack, environment.")
        if channel and entry["id"] == channel:
            for name in FIELDS:
                value = str(values.get(name) or "").strip()
                if value:
                    found[name] = Default(value, "this channel's default")
    return found


def _check(values: Mapping[str, Any], where: str, hint: str) -> None:
    for key, value in values.items():
        if key not in FIELDS:
            raise ConfigError(
                f"{where}: unknown key '{key}'; valid keys: stack, environment.", hint
            )
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{key}' must be a string.", hint)


def sentence(used: Defaults) -> str:
    """`Using stack shop and environment staging (from /src/shop/.igor.toml).`"""
    by_source: dict[str, list[str]] = {}
    for name in FIELDS:
        if name in used:
            by_source.setdefault(used[name].source, []).append(f"{name} {used[name].value}")
    parts = [f"{' and '.join(values)} (from {source})" for source, values in by_source.items()]
    return "Using " + " and ".join(parts) + "." if parts else ""
