"""`igor register`, `igor deregister`, `igor doctor`: the tokens' life cycle.

A token is checked against its API before it is stored, read back after it is
stored, and never shown: at most its last four characters.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass

from igor_cli import __version__
from igor_cli.config import Environment
from igor_cli.credentials import (
    TokenKind,
    check_shape,
    find_token,
    keyring_backend,
    keyring_delete,
    keyring_store,
    keyring_usable,
    require_keyring,
)
from igor_cli.errors import ExitCode, IgorError


@dataclass(frozen=True)
class Registered:
    """A token that was checked and stored."""

    kind: TokenKind
    belongs_to: str  # the account or workspace, in words
    shadowed_by_environment: bool  # an environment variable still wins over it


def verify(kind: TokenKind, token: str, env: Environment) -> str:
    """Ask the token's API whether it works; say whose it is. Raises the API's error."""
    if kind is TokenKind.CLOUD66:
        return _verify_cloud66(token, env)[0]
    from igor_cli.chat.slack.tokens import check_app_token, check_bot_token

    if kind is TokenKind.SLACK_BOT:
        _, identity = check_bot_token(token, env)
        return f"bot @{identity.name} in the {identity.team} workspace"
    if kind is TokenKind.SLACK_APP:
        check_app_token(token, env)
        return "Socket Mode connections allowed"
    return "no service to check it with"


def _verify_cloud66(token: str, env: Environment) -> tuple[str, int | None]:
    """`GET /stacks` (scope `public`) decides; the account's name is a bonus.

    `GET /accounts` needs the `users` scope, which igor does not require: a
    token without it is fine, and the answer says what the name would need.
    """
    from igor_cli.connect import open_client
    from igor_cli.errors import Forbidden

    with open_client(env, token) as client:
        count = len(client.stacks())
        remaining = client.rate_remaining
        try:
            accounts = client.accounts()
        except Forbidden:
            owner = "account name not shown (it needs the users scope)"
        else:
            owner = ", ".join(a.name or a.owner for a in accounts) or "your account"
    return f"{owner}, {count} stack{'s' if count != 1 else ''}", remaining


def register(
    env: Environment, kinds: list[TokenKind], read: Callable[[TokenKind], str]
) -> list[Registered]:
    """Read, check, store and read back each token, in order; stop at the first problem."""
    require_keyring()  # before asking anyone to paste a token
    done = []
    for kind in kinds:
        token = check_shape(kind, read(kind))
        belongs_to = verify(kind, token, env)
        keyring_store(kind, token)
        shadowed = bool(env.environ.get(kind.variable, "").strip())
        done.append(Registered(kind, belongs_to, shadowed))
    if TokenKind.SLACK_BOT in kinds and find_token(TokenKind.SIGNING_KEY, env) is None:
        # Confirmation buttons are signed with it; replicas on other machines
        # need the same key in IGOR_SIGNING_KEY.
        keyring_store(TokenKind.SIGNING_KEY, secrets.token_urlsafe(32))
        done.append(Registered(TokenKind.SIGNING_KEY, "created", shadowed_by_environment=False))
    return done


def deregister(kinds: list[TokenKind]) -> list[tuple[TokenKind, bool]]:
    """Remove tokens from the keyring; (kind, whether one was stored) for each."""
    return [(kind, keyring_delete(kind)) for kind in kinds]


@dataclass(frozen=True)
class Check:
    """One line of `igor doctor`."""

    name: str
    ok: bool | None  # None: not needed for `igor list`, just information
    detail: str


def doctor(env: Environment) -> tuple[list[Check], ExitCode]:
    """Where each token comes from and whether its API accepts it."""
    checks = [
        Check("igor", None, f"{__version__} on Python {sys.version.split()[0]}"),
        _config_check(env),
        Check(
            "keyring",
            None,
            keyring_backend()
            + ("" if keyring_usable() else " (none usable: tokens must come from the environment)"),
        ),
    ]
    code = ExitCode.OK
    if env.in_sandbox:
        checks.append(Check("Cloud 66", True, "sandbox: the built-in simulator"))
    else:
        check, code = _token_check(env, TokenKind.CLOUD66, required=True)
        checks.append(check)
    for kind in (TokenKind.SLACK_BOT, TokenKind.SLACK_APP):
        checks.append(_token_check(env, kind, required=False)[0])
    checks.append(_signing_key_check(env))
    checks.extend(_rules_checks(env))
    checks.extend(_state_checks(env))
    config_names = ("config file", "bot rules", "confirm environments", "freezes", "state store")
    if any(c.ok is False and c.name in config_names for c in checks) and not code:
        code = ExitCode.USAGE
    return checks, code


def _signing_key_check(env: Environment) -> Check:
    name = TokenKind.SIGNING_KEY.description
    try:
        found = find_token(TokenKind.SIGNING_KEY, env)
    except IgorError as error:
        return Check(name, False, error.message)
    if found is None:
        return Check(name, None, "missing (needed only for confirmations; `igor register --slack`)")
    return Check(name, True, f"from {found.source}")


def _rules_checks(env: Environment) -> list[Check]:
    from igor_cli.chat.guard import rules_from_config

    try:
        rules = rules_from_config(env.config(), str(env.config_path()))
    except IgorError as error:
        return [Check("bot rules", False, error.message)]
    checks = [Check("bot rules", None, line) for line in rules.summary()]
    if rules.confirm:
        checks.append(_confirm_check(env, rules.confirm))
    return checks


def _confirm_check(env: Environment, confirm: frozenset[str]) -> Check:
    """A `confirm` name that matches no environment of the account never asks anything."""
    from igor_cli.connect import open_client

    try:
        with open_client(env) as client:
            have = {stack.environment.casefold() for stack in client.stacks()}
    except IgorError as error:
        return Check("confirm environments", None, f"not checked ({error.message})")
    unknown = sorted(confirm - have)
    if unknown:
        return Check(
            "confirm environments",
            False,
            f"{', '.join(unknown)} match no environment of your stacks "
            f"({', '.join(sorted(have)) or 'none'}): nothing there would be confirmed",
        )
    return Check("confirm environments", True, ", ".join(sorted(confirm)))


def _config_check(env: Environment) -> Check:
    path = env.config_path()
    if not path.exists():
        return Check("config file", None, f"{path} (none; optional)")
    try:
        env.config()
    except IgorError as error:
        return Check("config file", False, error.message)
    return Check("config file", True, str(path))


def _token_check(env: Environment, kind: TokenKind, *, required: bool) -> tuple[Check, ExitCode]:
    name = kind.description
    try:
        found = find_token(kind, env)
    except IgorError as error:
        return Check(name, False, error.message), error.exit_code
    if found is None:
        why = "igor list needs it" if required else "only igor serve needs it"
        hint = f"set {kind.variable} or run `igor register{' --slack' if not required else ''}`"
        code = ExitCode.NOT_AUTHORISED if required else ExitCode.OK
        return Check(name, False if required else None, f"missing ({why}; {hint})"), code
    where = f"from {found.source}" + (
        f" ({kind.variable})" if found.source == "environment" else ""
    )
    budget = ""
    try:
        if kind is TokenKind.CLOUD66:
            belongs_to, remaining = _verify_cloud66(found.value, env)
            if remaining is not None:
                budget = f"; {remaining:,} requests left this hour"
        else:
            belongs_to = verify(kind, found.value, env)
    except IgorError as error:
        return Check(name, False, f"{where}, {found.masked}: {error.message}"), error.exit_code
    accepted = f"{where}, {found.masked}: accepted ({belongs_to}){budget}"
    return Check(name, True, accepted), ExitCode.OK


def _state_checks(env: Environment) -> list[Check]:
    """The state store (reachable, how many locks) and the freeze windows (readable, which
    hold now or come next)."""
    from igor_cli.freeze import FreezeError, freezes_from_config
    from igor_cli.state import StateUnavailable
    from igor_cli.state.locks import current_locks

    checks = []
    try:
        store = env.state()
        count = len(current_locks(store))
        checks.append(Check("state store", True, f"{store.url} ({count} locks)"))
    except StateUnavailable as error:
        checks.append(Check("state store", False if env.state_configured() else None,
                            error.message))  # fmt: skip
    except IgorError as error:  # a URL igor cannot use
        checks.append(Check("state store", False, error.message))
    try:
        freezes = freezes_from_config(env.config(), str(env.config_path()))
    except (FreezeError, IgorError) as error:
        return [*checks, Check("freezes", False, error.message)]
    now = env.clock()
    windows = sorted((w for f in freezes for w in f.windows(now)), key=lambda w: w.start)
    if not freezes:
        return [*checks, Check("freezes", None, "none configured")]
    said = [("now: " if w.start <= now else "next: ") + w.describe() for w in windows[:2]]
    detail = f"{len(freezes)} configured" + ("; " + "; ".join(said) if said else "")
    return [*checks, Check("freezes", None, detail)]
