"""Tokens: where each comes from (environment > keyring > config file).

One module owns the lookup; the shell and the bot both call it for every
command, so a token replaced with `igor register` takes effect at once. A token
is never printed, logged or put in an exception message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from igor_cli.config import Environment
from igor_cli.errors import NotRegistered

KEYRING_SERVICE = "igor"


class TokenKind(Enum):
    """The tokens igor knows: (environment variable, keyring entry, what it is)."""

    CLOUD66 = ("IGOR_CLOUD66_TOKEN", "cloud66", "Cloud 66 personal access token")
    SLACK_BOT = ("SLACK_BOT_TOKEN", "slack-bot", "Slack bot token (xoxb-)")
    SLACK_APP = ("SLACK_APP_TOKEN", "slack-app", "Slack app-level token (xapp-)")

    @property
    def variable(self) -> str:
        """The environment variable."""
        return self.value[0]

    @property
    def entry(self) -> str:
        """The keyring entry (and the config file's `[tokens]` key)."""
        return self.value[1]

    @property
    def description(self) -> str:
        """What it is, in words."""
        return self.value[2]


@dataclass(frozen=True)
class FoundToken:
    """A token and where it came from (never printed: see `masked`)."""

    kind: TokenKind
    value: str
    source: str  # "environment", "keyring", "config file"

    @property
    def masked(self) -> str:
        """At most the last four characters, for `igor doctor`."""
        return "…" + self.value[-4:] if len(self.value) >= 12 else "…"

    def __repr__(self) -> str:
        return f"FoundToken({self.kind.name}, source={self.source!r})"


def keyring_get(entry: str) -> str | None:
    """Read igor's entry from the OS keyring; None when absent or no keyring works."""
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(KEYRING_SERVICE, entry)
    except (KeyringError, RuntimeError):
        return None


def find_token(kind: TokenKind, env: Environment) -> FoundToken | None:
    """The token of this kind by precedence, or None."""
    value = env.environ.get(kind.variable, "").strip()
    if value:
        return FoundToken(kind, value, "environment")
    value = (keyring_get(kind.entry) or "").strip()
    if value:
        return FoundToken(kind, value, "keyring")
    tokens = env.config().get("tokens", {})
    value = str(tokens.get(kind.entry, "")).strip() if isinstance(tokens, dict) else ""
    if value:
        return FoundToken(kind, value, "config file")
    return None


def require_token(kind: TokenKind, env: Environment) -> str:
    """The token of this kind, or NotRegistered saying how to provide one."""
    found = find_token(kind, env)
    if found is None:
        raise NotRegistered(
            f"No {kind.description} is set.",
            f"Run `igor register`, or set {kind.variable}. "
            "To try igor without an account, add --sandbox.",
        )
    return found.value
