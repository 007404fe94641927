"""The rules of a running bot, read again whenever the config file changes: all or nothing.

A person removed from `[[slack.allow]]` must not go on deploying until a restart.
Each command asks for the rules in force; when the config file's bytes changed,
the new file is read and checked whole (the `[slack]` rules, the freezes, the
channels' defaults) before anything of it is used. One that does not read or does
not check leaves the last good config in force, whole: that is logged once, and
the next person to ask igor something is told. Each reload is logged with the
rules it brought.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from igor_cli.chat.guard import Rules
    from igor_cli.config import Environment

log = logging.getLogger("igor.serve")


class LiveRules:
    """The rules in force now (`current`), and what to tell the next requester."""

    def __init__(
        self,
        env: Environment,
        rules: Rules,
        load: Callable[[Mapping[str, Any], str], Rules],
    ) -> None:
        """`rules`: those read at start; `load` reads them from a config (RulesError)."""
        self.env = env
        self._rules = rules
        self._load = load
        self._lock = threading.Lock()
        self._logged = ""  # the problem last logged (each is logged once)
        self._untold = ""  # the problem the next requester is told of
        env.config_check = self._check

    def current(self) -> Rules:
        """The rules in force: a changed config file is read (and checked) first."""
        self.env.config()  # a change is checked there (`_check`), or refused whole
        problem = self.env.config_problem
        with self._lock:
            if problem != self._logged:
                self._logged = self._untold = problem
                if problem:
                    log.warning("the config file changed but cannot be used, so the rules "
                                "read before stay in force: %s", problem)  # fmt: skip
            return self._rules

    def take_notice(self) -> str:
        """What the next requester is told, once: the config in force is not the file's."""
        with self._lock:
            untold, self._untold = self._untold, ""
        if not untold:
            return ""
        return (
            f"Note: the config file changed but igor cannot use it ({untold}); "
            "the rules read before stay in force until it is fixed."
        )

    def _check(self, config: dict[str, Any], path: Path) -> None:
        """A new config, all of it, before any of it is used: the rules, the freezes and
        the channels' defaults (an IgorError refuses it)."""
        from igor_cli.freeze import freezes_from_config
        from igor_cli.targets import channel_defaults

        rules = self._load(config, str(path))
        freezes_from_config(config, str(path))
        channel_defaults(config, "", str(path))
        with self._lock:
            self._rules = rules
            self._logged = self._untold = ""
        log.info("config file %s read again: rules now: %s", path, "; ".join(rules.summary()))
