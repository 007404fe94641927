"""The shell-only commands: set-up (register, deregister, doctor, slack-manifest) and the bot.

Each request runs itself in a terminal (`run_in_terminal`); their command
definitions are in `cli.py`, and the terminal edge maps their typed errors to
a message and an exit code. Chat never runs these (they are not chat commands).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from igor_cli.config import Environment

if TYPE_CHECKING:
    from igor_cli.credentials import TokenKind


@dataclass(frozen=True)
class ServeRequest:
    """`igor serve`: the Slack bot until SIGTERM or Ctrl-C."""

    def run_in_terminal(self, env: Environment) -> int:
        """Run the bot; its exit code."""
        from igor_cli.chat.slack import configure_logging, serve

        configure_logging()
        return serve(env)


@dataclass(frozen=True)
class ChatRequest:
    """`igor chat`: the local chat console."""

    def run_in_terminal(self, env: Environment) -> int:
        """Read lines until end of input; answer each as the bot would."""
        from igor_cli.chat.shell import run_console
        from igor_cli.terminal import shell_origin

        return run_console(env, shell_origin().user, sys.stdin, env.out)


@dataclass(frozen=True)
class ManifestRequest:
    """`igor slack-manifest`."""

    name: str = "igor"

    def run_in_terminal(self, env: Environment) -> int:
        """Print the manifest as JSON."""
        import json

        from igor_cli.chat.manifest import manifest

        env.out.write(json.dumps(manifest(self.name), indent=2) + "\n")
        return 0


@dataclass(frozen=True)
class RegisterRequest:
    """`igor register`."""

    slack: bool = False
    stdin: bool = False

    def run_in_terminal(self, env: Environment) -> int:
        """Ask for, check, store and read back the tokens; say whose they are."""
        from igor_cli.credentials import TokenKind
        from igor_cli.registration import register
        from igor_cli.terminal import renderer

        kinds = [TokenKind.SLACK_BOT, TokenKind.SLACK_APP] if self.slack else [TokenKind.CLOUD66]
        said = renderer(env)
        for done in register(env, kinds, self._read):
            if done.kind is TokenKind.SIGNING_KEY:
                said.success("Created the confirmation signing key in the keyring.")
                said.note("Bot replicas on other machines need it too: set IGOR_SIGNING_KEY.")
                continue
            said.success(f"Registered the {done.kind.description}: {done.belongs_to}.")
            if done.shadowed_by_environment:
                said.note(f"{done.kind.variable} is set and still wins over the keyring.")
        return 0

    def _read(self, kind: TokenKind) -> str:
        if self.stdin:
            return sys.stdin.readline()
        import typer

        return str(typer.prompt(kind.description, hide_input=True, err=True))


@dataclass(frozen=True)
class DeregisterRequest:
    """`igor deregister`."""

    cloud66: bool = False
    slack: bool = False
    yes: bool = False

    def run_in_terminal(self, env: Environment) -> int:
        """Remove the tokens named (all when none is), after a confirmation."""
        import typer

        from igor_cli.credentials import TokenKind
        from igor_cli.registration import deregister
        from igor_cli.terminal import renderer

        kinds = [
            kind
            for kind in TokenKind
            if (self.cloud66 and kind is TokenKind.CLOUD66)
            or (self.slack and kind is not TokenKind.CLOUD66)
        ] or list(TokenKind)
        said = renderer(env)
        names = ", ".join(kind.description for kind in kinds)
        if not self.yes and not typer.confirm(f"Remove {names} from the keyring?", err=True):
            said.note("Nothing removed.")
            return 1
        for kind, removed in deregister(kinds):
            if removed:
                said.success(f"Removed the {kind.description}.")
            else:
                said.note(f"No {kind.description} was stored.")
        return 0


@dataclass(frozen=True)
class DoctorRequest:
    """`igor doctor`."""

    def run_in_terminal(self, env: Environment) -> int:
        """One line a check; the exit code says whether `igor list` can work."""
        from igor_cli.registration import doctor
        from igor_cli.terminal import renderer

        said = renderer(env)
        checks, code = doctor(env)
        for check in checks:
            said.check(check.name, check.ok, check.detail)
        return int(code)
