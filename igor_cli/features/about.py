"""About igor itself: `igor version`, `igor whoami` (who igor talks to Cloud 66 as), `igor help`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from igor_cli import __version__
from igor_cli.cli import SETUP, HelpRequested, IgorGroup, Json, command
from igor_cli.core.request import Outcome, Read

if TYPE_CHECKING:
    from igor_cli.core.run import Run
    from igor_cli.render.said import Said

COMMANDS = {"version": (), "whoami": (), "help": ()}

# -- the commands ----------------------------------------------------------------------


@command("version", chat=True, group=SETUP, examples=("igor version", "igor --version"))
def version_command(as_json: Json = None) -> VersionRequest:
    """Show igor's version."""
    return VersionRequest(as_json=as_json)


@command("whoami", chat=True, group=SETUP, examples=("igor whoami", "igor whoami --json"))
def whoami_command(as_json: Json = None) -> WhoamiRequest:
    """Who igor talks to Cloud 66 as: the token's source, the account, the API URL."""
    return WhoamiRequest(as_json=as_json)


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


# -- version ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VersionRequest(Read):
    """`igor version`."""

    needs_cloud66: ClassVar[bool] = False
    json_fields: ClassVar[tuple[str, ...]] = ("version",)

    def act(self, run: Run) -> VersionOutcome:
        """igor's version."""
        return VersionOutcome()


@dataclass(frozen=True)
class VersionOutcome(Outcome):
    """igor's version."""

    version: str = __version__

    def said(self, now: datetime) -> Said:
        """`igor 1.2.3`."""
        from igor_cli.render.said import Said

        return Said(f"igor {self.version}")

    def facts(self) -> Any:
        """The version, as igor's JSON has it."""
        return {"version": self.version}


# -- whoami ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WhoamiRequest(Read):
    """`igor whoami`."""

    needs_cloud66: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = (
        "token_source",
        "api_url",
        "sandbox",
        "account",
        "requests_left",
    )

    def act(self, run: Run) -> WhoamiOutcome:
        """Who igor talks to Cloud 66 as, and where."""
        return whoami(run)


@dataclass(frozen=True)
class WhoamiOutcome(Outcome):
    """Who igor talks to Cloud 66 as, and where."""

    token_source: str  # "environment", "keyring", "config file", "sandbox"
    api_url: str
    sandbox: bool
    account: str | None = None  # None: the token lacks the `users` scope
    requests_left: int | None = None

    def said(self, now: datetime) -> Said:
        """`igor talks to URL as ACCOUNT, with the token from SOURCE; N requests left.`"""
        from igor_cli.render.said import Said

        account = self.account or "an account whose name needs the users scope"
        where = "the built-in sandbox" if self.sandbox else self.api_url
        said = f"igor talks to {where} as {account}, with the token from {self.token_source}"
        if self.requests_left is not None:
            said += f"; {self.requests_left:,} requests left this hour"
        return Said(said + ".")

    def facts(self) -> Any:
        """Who and where, as igor's JSON has it."""
        return {
            "token_source": self.token_source,
            "api_url": self.api_url,
            "sandbox": self.sandbox,
            "account": self.account,
            "requests_left": self.requests_left,
        }


def whoami(run: Run) -> WhoamiOutcome:
    """The token's source, the account when the token may see it, the API URL, the sandbox."""
    from igor_cli.credentials import TokenKind, find_token
    from igor_cli.errors import Forbidden

    env = run.env
    client = run.connect()
    try:
        accounts = client.accounts()
    except Forbidden:
        account = None  # the optional `users` scope
    else:
        account = ", ".join(a.name or a.owner for a in accounts) or None
    found = None if env.in_sandbox else find_token(TokenKind.CLOUD66, env)
    return WhoamiOutcome(
        token_source="sandbox" if env.in_sandbox else (found.source if found else "none"),
        api_url="the built-in sandbox" if env.in_sandbox else env.api_url(),
        sandbox=env.in_sandbox,
        account=account,
        requests_left=getattr(client, "rate_remaining", None),
    )
