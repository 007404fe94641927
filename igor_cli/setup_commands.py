"""The shell-only requests: set-up (register, deregister, doctor, slack-manifest,
completion, the sandbox's reset, confirming a reset state store) and the bot.

Their command definitions are in `cli.py`; the terminal edge runs them
(`terminal.py`). Chat never runs these: they are not chat commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from igor_cli.json_output import JsonOutput


@dataclass(frozen=True)
class ServeRequest:
    """`igor serve`: the Slack bot until SIGTERM or Ctrl-C."""

    http: str | None = None  # `--http [HOST:]PORT` ("": the default address); None: Socket Mode


@dataclass(frozen=True)
class ChatRequest:
    """`igor chat`: the local chat console."""


@dataclass(frozen=True)
class ManifestRequest:
    """`igor slack-manifest`."""

    name: str = "igor"
    http: str | None = None  # HTTP mode's request URL; None: Socket Mode


@dataclass(frozen=True)
class RegisterRequest:
    """`igor register`."""

    slack: bool = False
    stdin: bool = False
    force: bool = False
    http: bool = False  # the Slack secrets of HTTP mode: the bot token and the signing secret


@dataclass(frozen=True)
class DeregisterRequest:
    """`igor deregister`."""

    cloud66: bool = False
    slack: bool = False
    yes: bool = False


@dataclass(frozen=True)
class DoctorRequest:
    """`igor doctor`."""

    json_fields: ClassVar[tuple[str, ...]] = ("ok", "exit_code", "checks")

    as_json: JsonOutput | None = None


@dataclass(frozen=True)
class CompletionRequest:
    """`igor completion [SHELL] [--install]` (and `--show-completion`, `--install-completion`)."""

    shell: str | None = None  # None: $SHELL's
    install: bool = False


@dataclass(frozen=True)
class ResetRequest:
    """`igor --sandbox reset`."""


@dataclass(frozen=True)
class ConfirmResetRequest:
    """`igor confirm-reset`."""
