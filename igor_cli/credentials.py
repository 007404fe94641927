"""Tokens: where each comes from (environment > keyring > config file).

One module owns the lookup; the shell and the bot both call it for every
command, so a token replaced with `igor register` takes effect at once. A token
is never printed, logged or put in an exception message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from igor_cli.config import Environment
from igor_cli.errors import KeyringUnavailable, NotRegistered, UsageProblem

KEYRING_SERVICE = "igor"


class TokenKind(Enum):
    """The tokens igor knows: (environment variable, keyring entry, what it is, prefix)."""

    CLOUD66 = ("IGOR_CLOUD66_TOKEN", "cloud66", "Cloud 66 personal access token", "")
    SLACK_BOT = ("SLACK_BOT_TOKEN", "slack-bot", "Slack bot token (xoxb-)", "xoxb-")
    SLACK_APP = ("SLACK_APP_TOKEN", "slack-app", "Slack app-level token (xapp-)", "xapp-")
    # Signs the confirmation buttons; every replica of the bot needs the same one.
    SIGNING_KEY = ("IGOR_SIGNING_KEY", "signing-key", "confirmation signing key", "")

    @property
    def prefix(self) -> str:
        """How a token of this kind starts ("" when it has no fixed shape)."""
        return self.value[3]

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


_SLACK_KINDS = {"xoxb-": "a Slack bot token", "xapp-": "a Slack app-level token",
                "xoxp-": "a Slack user token"}  # fmt: skip


def check_shape(kind: TokenKind, token: str) -> str:
    """The token without surrounding whitespace, or UsageProblem saying what was expected."""
    token = token.strip()
    if not token:
        raise UsageProblem(f"The {kind.description} is empty.", "Paste the token and press Enter.")
    if any(c.isspace() for c in token) or not token.isprintable():
        raise UsageProblem(
            f"That {kind.description} contains spaces or control characters.",
            "Paste the token alone, on one line.",
        )
    looks_like = next((name for p, name in _SLACK_KINDS.items() if token.startswith(p)), None)
    if kind.prefix and not token.startswith(kind.prefix):
        seen = f"That looks like {looks_like}" if looks_like else "That does not look like one"
        raise UsageProblem(
            f"igor needs the {kind.description} here. {seen}.",
            f"It starts with {kind.prefix}",
        )
    if not kind.prefix and looks_like:
        raise UsageProblem(
            f"That looks like {looks_like}, not a {kind.description}.",
            "Create one in Cloud 66 under Account settings, Access tokens.",
        )
    return token


def keyring_backend() -> str:
    """The name of the keyring backend in use, e.g. `SecretService Keyring`."""
    import keyring

    backend = keyring.get_keyring()
    return f"{type(backend).__module__.removeprefix('keyring.backends.')}.{type(backend).__name__}"


def _no_keyring(reason: str) -> KeyringUnavailable:
    variables = ", ".join(kind.variable for kind in TokenKind)
    return KeyringUnavailable(
        f"No usable OS keyring on this machine ({reason}).",
        f"Set the tokens in the environment instead ({variables}), or choose a keyring "
        "backend with PYTHON_KEYRING_BACKEND (e.g. keyrings.alt.file.PlaintextKeyring "
        "if you accept a plaintext file). igor does not fall back to a file by itself.",
    )


def keyring_usable() -> bool:
    """False for keyring's fail and null backends, or one that cannot even be read."""
    import keyring
    from keyring.errors import KeyringError

    module = type(keyring.get_keyring()).__module__
    if module in ("keyring.backends.fail", "keyring.backends.null"):
        return False
    try:
        keyring.get_password(KEYRING_SERVICE, TokenKind.CLOUD66.entry)
    except (KeyringError, RuntimeError):
        return False  # e.g. no Secret Service on a headless Linux
    return True


def require_keyring() -> None:
    """KeyringUnavailable, saying what to do instead, when no keyring can store tokens."""
    if not keyring_usable():
        raise _no_keyring(f"the {keyring_backend()} backend stores nothing")


def keyring_store(kind: TokenKind, token: str) -> None:
    """Store a token and read it back: some backends silently drop writes."""
    import keyring
    from keyring.errors import KeyringError

    require_keyring()
    try:
        keyring.set_password(KEYRING_SERVICE, kind.entry, token)
        kept = keyring.get_password(KEYRING_SERVICE, kind.entry)
    except (KeyringError, RuntimeError) as error:
        raise _no_keyring(type(error).__name__) from None
    if kept != token:
        raise _no_keyring(f"{keyring_backend()} accepted the token but did not keep it")


def keyring_delete(kind: TokenKind) -> bool:
    """Remove a token from the keyring; False when it was not stored."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        if keyring.get_password(KEYRING_SERVICE, kind.entry) is None:
            return False
        keyring.delete_password(KEYRING_SERVICE, kind.entry)
    except PasswordDeleteError:
        return False
    except (KeyringError, RuntimeError) as error:
        raise _no_keyring(type(error).__name__) from None
    return True


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
