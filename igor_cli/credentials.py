"""Tokens: where each comes from (environment > keyring > config file).

One module owns the lookup; the shell and the bot both call it for every
command, so a token replaced with `igor register` takes effect at once. A token
is never printed, logged or put in an exception message.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from igor_cli.config import Environment, parse_config
from igor_cli.errors import IgorError, KeyringUnavailable, NotRegistered, Remedy, UsageProblem

if TYPE_CHECKING:
    import logging

KEYRING_SERVICE = "igor"


class TokenKind(Enum):
    """The tokens igor knows: (environment variable, keyring entry, what it is, prefix)."""

    CLOUD66 = ("IGOR_CLOUD66_TOKEN", "cloud66", "Cloud 66 personal access token", "")
    SLACK_BOT = ("SLACK_BOT_TOKEN", "slack-bot", "Slack bot token (xoxb-)", "xoxb-")
    SLACK_APP = ("SLACK_APP_TOKEN", "slack-app", "Slack app-level token (xapp-)", "xapp-")
    # Slack signs each request of HTTP mode with it (`igor serve --http`); never sent.
    SLACK_SIGNING = ("SLACK_SIGNING_SECRET", "slack-signing", "Slack signing secret", "")
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
    if any(c.isspace() for c in token) or not token.isprintable() or not token.isascii():
        raise UsageProblem(
            f"That {kind.description} contains spaces, control characters or non-ASCII ones.",
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
            "Copy it from your Slack app's Basic Information page, under App Credentials."
            if kind is TokenKind.SLACK_SIGNING
            else "Create one in Cloud 66 under Account, Authorized Applications, Personal Access "
            "Token.",
        )
    return token


# What keyring raises when PYTHON_KEYRING_BACKEND (or keyringrc.cfg) names a
# backend that cannot be loaded: the module is missing, the class is not in it, ...
_BACKEND_LOAD_ERRORS = (ImportError, AttributeError, ValueError, TypeError)


def _load_backend() -> tuple[Any, str]:
    """keyring's backend and "", or None and why none can be loaded."""
    import keyring

    try:
        return keyring.get_keyring(), ""
    except _BACKEND_LOAD_ERRORS:
        named = os.environ.get("PYTHON_KEYRING_BACKEND")
        if named is not None:
            return None, f"PYTHON_KEYRING_BACKEND names a backend that cannot be loaded: {named!r}"
        return None, "the backend named in keyring's keyringrc.cfg cannot be loaded"


class KeyringMisconfigured(UsageProblem):
    """A keyring setting (PYTHON_KEYRING_BACKEND, keyringrc.cfg) names no loadable backend.

    A configuration error (exit 2): the fix is the setting, not a token.
    """


def keyring_setting_error(
    problem: str, missing: list[TokenKind] | None = None, needed_by: str = ""
) -> KeyringMisconfigured:
    """The error for a keyring setting that names no loadable backend: the setting to fix,
    and the variables that would do instead (of the `missing` tokens, when given)."""
    setting = (
        "PYTHON_KEYRING_BACKEND"
        if problem.startswith("PYTHON_KEYRING_BACKEND")
        else "keyringrc.cfg (`python -m keyring diagnose` shows where it is)"
    )
    said = f"No usable OS keyring on this machine ({problem})."
    where = "set the tokens in the environment instead"
    if missing:
        names = " and the ".join(kind.description for kind in missing)
        verb = "is" if len(missing) == 1 else "are"
        said = (
            f"{needed_by or 'igor'} needs the {names}, which {verb} not set, and the keyring "
            f"cannot be read: {problem}."
        )
        if not needed_by:
            said = f"No {names} is set, and the keyring cannot be read: {problem}."
        where = "set " + " and ".join(kind.variable for kind in missing)
    return KeyringMisconfigured(
        said, f"Fix or remove {setting} (e.g. keyring.backends.SecretService.Keyring), or {where}."
    )


def _backend() -> Any:
    """keyring's backend; KeyringMisconfigured when a setting names one that cannot load."""
    backend, problem = _load_backend()
    if backend is None:
        raise keyring_setting_error(problem)
    return backend


def _backend_name(backend: Any) -> str:
    return f"{type(backend).__module__.removeprefix('keyring.backends.')}.{type(backend).__name__}"


def keyring_backend() -> str:
    """The keyring backend in use, e.g. `SecretService.Keyring`, or why there is none."""
    backend, problem = _load_backend()
    return _backend_name(backend) if backend is not None else f"none ({problem})"


def _no_keyring(reason: str) -> KeyringUnavailable:
    variables = ", ".join(kind.variable for kind in TokenKind)
    return KeyringUnavailable(
        f"No usable OS keyring on this machine ({reason}).",
        f"Set the tokens in the environment instead ({variables}), or choose a keyring "
        "backend with PYTHON_KEYRING_BACKEND (e.g. keyrings.alt.file.PlaintextKeyring "
        "if you accept a plaintext file). igor does not fall back to a file by itself.",
    )


class KeyringLocked(KeyringUnavailable):
    """The OS keyring is there but locked (a Secret Service collection nobody unlocked)."""


def _locked_keyring(backend: Any) -> KeyringLocked:
    variables = ", ".join(kind.variable for kind in TokenKind)
    return KeyringLocked(
        f"The OS keyring ({_backend_name(backend)}) is locked: igor can neither read nor "
        "store tokens there until it is unlocked.",
        "Unlock it: log in to the desktop session (that unlocks the login keyring), open "
        'Passwords and Keys (Seahorse) and unlock "Login", or in a terminal run '
        "`gnome-keyring-daemon --replace --unlock`, type the keyring's password and press "
        f"Ctrl-D. Or set the tokens in the environment instead ({variables}).",
    )


def keyring_state() -> str:
    """`usable`; `locked` (a Secret Service keyring nobody unlocked); or `none`: keyring's
    fail and null backends, a backend that cannot be loaded or read (no Secret Service)."""
    from keyring.errors import KeyringError
    from keyring.errors import KeyringLocked as Locked

    try:
        backend = _backend()
    except KeyringMisconfigured:
        return "none"
    if type(backend).__module__ in ("keyring.backends.fail", "keyring.backends.null"):
        return "none"
    try:
        backend.get_password(KEYRING_SERVICE, TokenKind.CLOUD66.entry)
    except Locked:  # its unlock prompt was dismissed, or could not be shown (no display)
        return "locked"
    except (KeyringError, RuntimeError):
        return "none"  # e.g. no Secret Service on a headless Linux
    return "usable"


def require_keyring() -> None:
    """KeyringUnavailable (KeyringLocked for a locked one), saying what to do instead,
    when no keyring can store tokens."""
    backend = _backend()  # KeyringMisconfigured when it cannot even be loaded
    state = keyring_state()
    if state == "locked":
        raise _locked_keyring(backend)
    if state != "usable":
        raise _no_keyring(f"the {_backend_name(backend)} backend stores nothing")


def keyring_store(kind: TokenKind, token: str) -> None:
    """Store a token and read it back: some backends silently drop writes."""
    from keyring.errors import KeyringError

    require_keyring()
    backend = _backend()
    try:
        backend.set_password(KEYRING_SERVICE, kind.entry, token)
        kept = backend.get_password(KEYRING_SERVICE, kind.entry)
    except (KeyringError, RuntimeError) as error:
        raise _no_keyring(type(error).__name__) from None
    if kept != token:
        raise _no_keyring(f"{keyring_backend()} accepted the token but did not keep it")


def keyring_delete(kind: TokenKind) -> bool:
    """Remove a token from the keyring; False when it was not stored."""
    from keyring.errors import KeyringError, PasswordDeleteError

    backend = _backend()
    try:
        if backend.get_password(KEYRING_SERVICE, kind.entry) is None:
            return False
        backend.delete_password(KEYRING_SERVICE, kind.entry)
    except PasswordDeleteError:
        return False
    except (KeyringError, RuntimeError) as error:
        raise _no_keyring(type(error).__name__) from None
    return True


def keyring_get(entry: str) -> str | None:
    """Read igor's entry from the OS keyring; None when absent or no keyring works."""
    from keyring.errors import KeyringError

    try:
        value = _backend().get_password(KEYRING_SERVICE, entry)
    except (KeyringMisconfigured, KeyringError, RuntimeError):
        return None
    return value if isinstance(value, str) else None


def keyring_problem() -> str:
    """Why no keyring backend can be loaded, in words; "" when one can."""
    return _load_backend()[1]


class MalformedToken(NotRegistered):
    """A token igor found that cannot be one (a line break, a wrong prefix): exit 4.

    A kind of NotRegistered: no usable token. Stored again with `igor register`
    when it came from the keyring (the remedy says so); fixed where it was set
    otherwise.
    """

    remedy = None


def remedy_for(kind: TokenKind) -> Remedy:
    """How a token of this kind is stored again (each edge words it)."""
    return Remedy.REGISTER_CLOUD66 if kind is TokenKind.CLOUD66 else Remedy.REGISTER_SLACK


def shape_problem(kind: TokenKind, token: str) -> str:
    """What is wrong with the shape of a (stripped) token, in words; "" when nothing is.

    Never quotes the token: "contains a line break", "does not start with xoxb-".
    """
    if len(token.splitlines()) > 1:
        return "contains a line break"
    if any(c.isspace() for c in token):
        return "contains whitespace"
    if not token.isprintable():
        return "contains a control character"
    if not token.isascii():
        return "contains a character that is not ASCII"
    looks_like = next((name for p, name in _SLACK_KINDS.items() if token.startswith(p)), None)
    if kind.prefix and not token.startswith(kind.prefix):
        return f"does not start with {kind.prefix}" + (
            f" (it looks like {looks_like})" if looks_like else ""
        )
    if kind in (TokenKind.CLOUD66, TokenKind.SLACK_SIGNING) and looks_like:
        return f"looks like {looks_like}, not a {kind.description}"
    return ""


def _refuse_found(kind: TokenKind, source: str, problem: str, env: Environment) -> MalformedToken:
    """The error for a malformed token, naming its kind and where it was found."""
    if source == "environment":
        return MalformedToken(
            f"{kind.variable} {problem}.",
            f"Set {kind.variable} to the {kind.description} alone, on one line "
            "(or unset it to use the keyring).",
        )
    if source == "keyring":
        return MalformedToken(
            f"The {kind.description} stored in the keyring {problem}.",
            "It has to be stored again.",
            remedy=remedy_for(kind),
        )
    return MalformedToken(
        f"[tokens] {kind.entry} in the config file {env.config_path()} {problem}.",
        "Fix it there, or remove it.",
    )


def find_token(kind: TokenKind, env: Environment) -> FoundToken | None:
    """The token of this kind by precedence, or None; MalformedToken when it cannot be one.

    Surrounding whitespace is dropped; anything else wrong with the token's
    shape is refused here, wherever it came from, before any request carries it.
    """
    source, value = "environment", env.environ.get(kind.variable, "").strip()
    if not value:  # the keyring is asked only when the environment has no token
        source, value = "keyring", (keyring_get(kind.entry) or "").strip()
    if not value:
        source, value = "config file", _config_token(kind, env).strip()
    if not value:
        return None
    problem = shape_problem(kind, value)
    if problem:
        raise _refuse_found(kind, source, problem, env)
    return FoundToken(kind, value, source)


def _config_token(kind: TokenKind, env: Environment) -> str:
    tokens = env.config().get("tokens", {})
    value = tokens.get(kind.entry) if isinstance(tokens, dict) else None
    return value if isinstance(value, str) else ""


# HMAC-SHA256 is as strong as its key: a key shorter than its 32-byte output can be
# guessed, and then anyone can forge a confirmation button's value.
SIGNING_KEY_BYTES = 32


class WeakSigningKey(UsageProblem):
    """A confirmation signing key too short to keep buttons from being forged."""


def signing_key(env: Environment) -> FoundToken | None:
    """The confirmation signing key, or None when there is none; WeakSigningKey when it is
    shorter than `SIGNING_KEY_BYTES` (igor does not start with it)."""
    found = find_token(TokenKind.SIGNING_KEY, env)
    if found is None or len(found.value.encode()) >= SIGNING_KEY_BYTES:
        return found
    make = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
    where = {
        "environment": f"Set {TokenKind.SIGNING_KEY.variable} to a long random value (the same "
        f"on every replica), e.g. what `{make}` prints.",
        "keyring": "Run `igor register --slack` to replace it with a strong one.",
    }.get(found.source, f"Fix [tokens] signing-key in {env.config_path()}, e.g. with what "
          f"`{make}` prints.")  # fmt: skip
    raise WeakSigningKey(
        f"The {TokenKind.SIGNING_KEY.description} (from the {found.source}) is "
        f"{len(found.value.encode())} bytes long: anyone could guess it and forge a "
        f"confirmation. igor needs at least {SIGNING_KEY_BYTES} random bytes.",
        where,
    )


def require_token(kind: TokenKind, env: Environment) -> str:
    """The token of this kind, or NotRegistered saying how to provide one."""
    found = find_token(kind, env)
    if found is None:
        problem = keyring_problem()
        if problem:  # a setting to fix, not a token to register (register would fail too)
            raise keyring_setting_error(problem, [kind])
        if keyring_state() == "locked":  # the token may well be in it: say how to unlock
            raise _locked_keyring(_backend())
        raise NotRegistered(
            f"No {kind.description} is set.",
            "To try igor without an account, add --sandbox." if kind is TokenKind.CLOUD66 else "",
            remedy=remedy_for(kind),
        )
    return found.value


# -- keeping tokens out of tracebacks and logs -----------------------------------

TOKEN_PLACEHOLDER = "[token]"  # noqa: S105 - what replaces a token, not one
# Shorter values are not real tokens, and replacing them would garble the text.
_SHORTEST_SCRUBBED = 6


def known_tokens(env: Environment) -> list[str]:
    """Every token value igor could hold now, malformed ones included, longest first; and
    the state store's password.

    Read from the environment, the keyring and the config file (unchecked: a
    broken file's tokens are still secrets). Never raises: it serves error paths.
    """
    raw: list[str] = []
    for kind in TokenKind:
        raw.append(env.environ.get(kind.variable, ""))
        try:
            raw.append(keyring_get(kind.entry) or "")
        except Exception:  # noqa: S112 - a backend failing in a new way: scrub what is known
            continue
    try:
        config, _ = parse_config(env.config_path())
    except IgorError:
        config = {}  # unreadable: then igor cannot have used its tokens either
    tokens = config.get("tokens")
    if isinstance(tokens, dict):
        raw.extend(v for v in tokens.values() if isinstance(v, str))
    raw.extend(_store_passwords(env, config))
    return _spellings(raw)


def _store_passwords(env: Environment, config: dict[str, Any]) -> list[str]:
    """The state store's password (and user name), from IGOR_STATE_URL and `[state] url`."""
    from igor_cli.state.urls import url_secrets

    urls = [env.environ.get("IGOR_STATE_URL", "")]
    section = config.get("state")
    if isinstance(section, dict) and isinstance(section.get("url"), str):
        urls.append(section["url"])
    return [secret for url in urls if url for secret in url_secrets(url)]


def _spellings(raw: list[str]) -> list[str]:
    """Each value as it may appear in text: as is, escaped (repr, JSON, URL), piece by piece."""
    import json
    from urllib.parse import quote

    found: set[str] = set()
    for value in raw:
        stripped = value.strip()
        for form in (
            value,
            stripped,
            repr(stripped)[1:-1],
            json.dumps(stripped)[1:-1],
            quote(stripped, safe=""),
            *stripped.split(),
        ):
            if len(form.strip()) >= _SHORTEST_SCRUBBED:
                found.add(form)
    return sorted(found, key=len, reverse=True)


def _replace(text: str, values: list[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, TOKEN_PLACEHOLDER)
    return text


def scrub(text: str, env: Environment) -> str:
    """`text` with every token igor knows of (environment, keyring, config) as "[token]"."""
    return _replace(text, known_tokens(env))


class TokenScrubber:
    """A logging filter that replaces every known token in messages and tracebacks.

    Install it on a logger (`logger.addFilter(TokenScrubber(env))`); the known
    tokens are read again at most every `refresh_seconds`, so a token replaced
    with `igor register` is soon scrubbed too. A filter is any object with a `filter`
    method (logging's own rule): not subclassing `logging.Filter` spares every command
    importing `logging` (a shell command logs nothing).
    """

    def __init__(self, env: Environment, refresh_seconds: float = 5.0) -> None:
        self.env = env
        self.refresh_seconds = refresh_seconds
        self._values: list[str] = []
        self._read_at: float | None = None
        self._lock = threading.Lock()
        self._reading = threading.local()  # a keyring backend that logs must not recurse

    def values(self) -> list[str]:
        """The known tokens' spellings, read again when they are older than refresh_seconds."""
        if getattr(self._reading, "active", False):
            return self._values
        now = self.env.monotonic()
        with self._lock:
            if self._read_at is None or now - self._read_at >= self.refresh_seconds:
                self._reading.active = True
                try:
                    self._values = known_tokens(self.env)
                finally:
                    self._reading.active = False
                self._read_at = now
            return self._values

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the record in place; never drops it."""
        values = self.values()
        if not values:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = f"{record.msg} {record.args}"
        scrubbed = _replace(message, values)
        if scrubbed != message or record.args:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            import logging

            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # The exception object itself may hold the token: keep only its text.
            record.exc_text = _replace(record.exc_text, values)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = _replace(record.stack_info, values)
        return True
