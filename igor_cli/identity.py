"""Who asks igor for something, and who asked igor for a deployment at Cloud 66.

An `Origin` is where a command came from (a shell, `igor chat`, Slack); a
`Requester` is read back from the `user_reference` igor stores with what it posts
(`igor:<via>:<user>[:<request id>]`), so a deployment igor made can be named by
the person who asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from igor_cli.config import Environment

IGOR_REFERENCE_PREFIX = "igor:"


@dataclass(frozen=True)
class Requester:
    """Who started a deployment, read back from its `user_reference`."""

    via: str
    user: str

    @classmethod
    def from_reference(cls, reference: str) -> Requester | None:
        """Parse `igor:<via>:<user>[:<request id>]`; None if igor did not write it."""
        if not reference.startswith(IGOR_REFERENCE_PREFIX):
            return None
        _, via, *rest = reference.split(":", 3)
        return cls(via=via, user=rest[0] if rest else "")


# How words name a requester: each renderer its own way (a mention in Slack).
PersonNamer = Callable[[Requester], str]


@dataclass(frozen=True)
class Origin:
    """Where a command came from, for the `user_reference` and the audit line."""

    via: str  # "cli" or "slack"
    user: str  # "alice@laptop" or a Slack user ID
    request_id: str = ""  # the Slack event ID: a retry of one event must not deploy twice
    channel: str = ""  # where in chat it was typed (a lock records it: the holder's thread)
    thread: str = ""

    @classmethod
    def of_shell(cls, env: Environment) -> Origin:
        """`igor:cli:<account>@<host>`: who deploys from this shell, by the operating
        system's account (`Environment.account`), not by what $USER says."""
        from igor_cli.config import shell_user

        return cls("cli", shell_user(env.account))

    @property
    def user_reference(self) -> str:
        """The tag stored at Cloud 66 with the deployment (at most 255 chars)."""
        parts = [IGOR_REFERENCE_PREFIX + self.via, self.user]
        if self.request_id:
            parts.append(self.request_id)
        return ":".join(parts)[:255]
