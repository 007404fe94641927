"""`igor register`, `igor deregister`, `igor doctor`: the tokens' life cycle.

A token is checked against its API before it is stored, read back after it is
stored, and never shown: at most its last four characters.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from igor_cli import __version__
from igor_cli.config import Environment
from igor_cli.credentials import (
    TokenKind,
    check_shape,
    find_token,
    keyring_backend,
    keyring_delete,
    keyring_problem,
    keyring_state,
    keyring_store,
    require_keyring,
    signing_key,
)
from igor_cli.errors import ExitCode, IgorError

if TYPE_CHECKING:
    from igor_cli.state import Store


@dataclass(frozen=True)
class Registered:
    """A token that was checked and stored."""

    kind: TokenKind
    belongs_to: str  # the account or workspace, in words
    shadowed_by_environment: bool  # an environment variable still wins over it


def verify(kind: TokenKind, token: str, env: Environment) -> str:
    """Ask the token's API whether it works; say whose it is. Raises the API's error."""
    if kind is TokenKind.CLOUD66:
        return _verify_cloud66(token, env).belongs_to
    from igor_cli.chat.slack.tokens import check_app_token, check_bot_token

    if kind is TokenKind.SLACK_BOT:
        _, identity = check_bot_token(token, env)
        return f"bot @{identity.name} in the {identity.team} workspace"
    if kind is TokenKind.SLACK_APP:
        check_app_token(token, env)
        return "Socket Mode connections allowed"
    if kind is TokenKind.SLACK_SIGNING:
        return (
            "Slack has no way to check it; with a wrong one, igor serve --http refuses "
            "every request and says so in its log"
        )
    return "no service to check it with"


@dataclass(frozen=True)
class Cloud66Token:
    """What Cloud 66 said about a token: whose it is, and what it may do."""

    belongs_to: str
    stacks: int
    requests_left: int | None
    # Scope -> True (a request that needs it was answered), False (refused: 403),
    # None (unknown: only the request itself would tell, and igor does not make it).
    scopes: dict[str, bool | None]


def _verify_cloud66(token: str, env: Environment) -> Cloud66Token:
    """`GET /stacks` (scope `public`) decides; the account's name is a bonus.

    `GET /accounts` needs the `users` scope, which igor does not require: a
    token without it is fine, and the answer says what the name would need.
    Whether the token has `redeploy` only a deploy or a cancel would show:
    igor never posts one to find out.
    """
    from igor_cli.connect import open_client
    from igor_cli.errors import Forbidden

    with open_client(env, token) as client:
        count = len(client.stacks())
        remaining = client.rate_remaining
        try:
            accounts = client.accounts()
        except Forbidden:
            owner, users = "account name not shown (it needs the users scope)", False
        else:
            owner = ", ".join(a.name or a.owner for a in accounts) or "your account"
            users = True
    scopes = {"public": True, "users": users, "redeploy": None}
    plural = "s" if count != 1 else ""
    return Cloud66Token(f"{owner}, {count} stack{plural}", count, remaining, scopes)


# Where each token is made, and what it needs: said before igor asks for one.
WHERE_TO_MAKE = {
    TokenKind.CLOUD66: (
        "Make one at https://app.cloud66.com/oauth/authorized_applications (Account -> "
        "Authorized Applications -> Personal Access Token) with the scopes public and "
        "redeploy; add users to see the account's name."
    ),
    TokenKind.SLACK_BOT: (
        "It is on your Slack app's OAuth & Permissions page at https://api.slack.com/apps "
        "(create the app from `igor slack-manifest` and install it first)."
    ),
    TokenKind.SLACK_APP: (
        "Make one on your Slack app's Basic Information page at https://api.slack.com/apps, "
        "under App-Level Tokens, with the scope connections:write."
    ),
    TokenKind.SLACK_SIGNING: (
        "It is on your Slack app's Basic Information page at https://api.slack.com/apps, "
        "under App Credentials (Signing Secret)."
    ),
}


def stored_and_working(env: Environment, kind: TokenKind) -> str | None:
    """Whose the token stored in the keyring is, when one is stored and works; else None.

    A stored token its API refuses (or that cannot be one) is not worth keeping:
    None. One that cannot be checked now (the network) counts as working.
    """
    from igor_cli.credentials import keyring_get, shape_problem

    stored = (keyring_get(kind.entry) or "").strip()
    if not stored or shape_problem(kind, stored):
        return None
    try:
        return verify(kind, stored, env)
    except IgorError as error:
        if error.exit_code == ExitCode.NOT_AUTHORISED:
            return None  # refused: replacing it is what register is for
        return f"not checked now: {error.message}"


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
    if TokenKind.SLACK_BOT in kinds and _no_usable_key(env):
        # Confirmation buttons are signed with it; replicas on other machines
        # need the same key in IGOR_SIGNING_KEY.
        keyring_store(TokenKind.SIGNING_KEY, secrets.token_urlsafe(32))
        done.append(Registered(TokenKind.SIGNING_KEY, "created", shadowed_by_environment=False))
    return done


def _no_usable_key(env: Environment) -> bool:
    """Whether `register --slack` should make a signing key: there is none, or the keyring
    holds one too short to trust (one set elsewhere is fixed where it is set)."""
    from igor_cli.credentials import WeakSigningKey

    try:
        return signing_key(env) is None
    except WeakSigningKey:
        found = find_token(TokenKind.SIGNING_KEY, env)
        return found is not None and found.source == "keyring"


def deregister(kinds: list[TokenKind]) -> list[tuple[TokenKind, bool]]:
    """Remove tokens from the keyring; (kind, whether one was stored) for each."""
    return [(kind, keyring_delete(kind)) for kind in kinds]


@dataclass(frozen=True)
class Check:
    """One line of `igor doctor`; `facts` are what `--json` adds to its words."""

    name: str
    ok: bool | None  # None: not needed for `igor list`, just information
    detail: str
    facts: dict[str, Any] = field(default_factory=dict)


# Checks of settings: one that fails is a configuration error (exit 2), whatever else
# failed: a broken setting is what to fix first (a token the keyring cannot give, or a
# URL that cannot answer, follows from it), and every other command exits 2 for it too.
_SETTINGS = ("config file", "keyring", "Cloud 66 API", "Slack API", "bot rules",
             "confirm environments", "freezes", "state store", "audit file",
             TokenKind.SIGNING_KEY.description)  # fmt: skip


def doctor(env: Environment) -> tuple[list[Check], ExitCode]:
    """Where each token comes from and whether its API accepts it."""
    checks = [
        Check(
            "igor",
            None,
            f"{__version__} on Python {sys.version.split()[0]}",
            {"version": __version__, "python": sys.version.split()[0]},
        ),
        _config_check(env),
        _keyring_check(),
        api := _api_url_check(env),
    ]
    code = ExitCode.OK
    if env.in_sandbox:
        checks.append(Check("Cloud 66", True, "sandbox: the built-in simulator"))
    elif api.ok is not False:  # a bad URL is said once, not again as the token's failure
        check, code = _token_check(env, TokenKind.CLOUD66, required=True)
        checks.append(check)
    checks.append(slack := _slack_url_check(env))
    if slack.ok is not False:
        for kind in (TokenKind.SLACK_BOT, TokenKind.SLACK_APP):
            checks.append(_token_check(env, kind, required=False)[0])
    checks.append(_slack_signing_check(env))
    checks.append(_signing_key_check(env))
    checks.extend(_rules_checks(env))
    checks.extend(_state_checks(env))
    audit_file = _audit_check(env)
    if audit_file is not None:
        checks.append(audit_file)
    if any(c.ok is False and c.name in _SETTINGS for c in checks):
        code = ExitCode.USAGE
    return checks, code


def _keyring_check() -> Check:
    problem = keyring_problem()
    if problem:  # a setting that breaks every command that reads the keyring
        return Check("keyring", False, f"{problem}: fix or unset it "
                     "(tokens set in the environment still work)",
                     {"backend": None, "usable": False})  # fmt: skip
    state = keyring_state()
    detail = keyring_backend() + {
        "usable": "",
        "locked": " (locked: unlock it to read or store tokens, e.g. "
        "`gnome-keyring-daemon --replace --unlock`; tokens in the environment still work)",
    }.get(state, " (stores nothing: tokens must come from the environment)")
    facts = {"backend": keyring_backend(), "usable": state == "usable", "locked": state == "locked"}
    return Check("keyring", None, detail, facts)


def _api_url_check(env: Environment) -> Check:
    """The Cloud 66 API igor talks to, and where that was set."""
    if env.in_sandbox:
        return Check("Cloud 66 API", None, "the built-in sandbox (127.0.0.1)", {"sandbox": True})
    try:
        url, setting = env.checked_api_url(), env.api_url_setting()
    except IgorError as error:
        return Check("Cloud 66 API", False, error.message)
    return Check("Cloud 66 API", None, f"{url} ({setting})", {"url": url, "setting": setting})


def _slack_url_check(env: Environment) -> Check:
    setting = "IGOR_SLACK_API_URL" if env.environ.get("IGOR_SLACK_API_URL") else "the default"
    try:
        url = env.slack_api_url()
    except IgorError as error:
        return Check("Slack API", False, error.message)
    return Check("Slack API", None, f"{url} ({setting})", {"url": url, "setting": setting})


def _cloud66_scopes(scopes: dict[str, bool | None]) -> str:
    words = {True: "yes", False: "no", None: "unknown"}
    said = ", ".join(f"{name} {words[has]}" for name, has in scopes.items())
    return f"scopes: {said} (redeploy shows only when a deploy is posted)"


def _slack_scopes(scopes: tuple[str, ...] | None) -> tuple[str, bool]:
    """The bot token's scopes against the manifest's, in words; and whether none is missing."""
    from igor_cli.chat.slack.manifest import bot_scopes

    if scopes is None:
        return "scopes unknown (Slack did not list them)", True
    missing = [scope for scope in bot_scopes() if scope not in scopes]
    if missing:
        return (
            f"missing scopes {', '.join(missing)}: reinstall the app with the manifest of "
            "`igor slack-manifest`",
            False,
        )
    return f"scopes: {', '.join(scopes)}", True


def _slack_signing_check(env: Environment) -> Check:
    """HTTP mode's signing secret: where it comes from (Slack has no method to check it)."""
    kind = TokenKind.SLACK_SIGNING
    try:
        found = find_token(kind, env)
    except IgorError as error:  # malformed where it was set
        return Check(kind.description, False, error.message, {"source": None})
    if found is None:
        return Check(kind.description, None, "missing (only igor serve --http needs it; set "
                     f"{kind.variable} or run `igor register --slack --http`)",
                     {"source": None})  # fmt: skip
    where = f"from {found.source}" + (
        f" ({kind.variable})" if found.source == "environment" else ""
    )
    return Check(kind.description, True, f"{where}, {found.masked}: set (Slack has no method "
                 "to check it; a wrong one shows as refused requests in igor serve --http's "
                 "log)", {"source": found.source})  # fmt: skip


def _signing_key_check(env: Environment) -> Check:
    name = TokenKind.SIGNING_KEY.description
    try:
        found = signing_key(env)
    except IgorError as error:  # malformed, or too short to trust
        return Check(name, False, " ".join(filter(None, (error.message, error.hint))))
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
        if kind is TokenKind.SLACK_APP:
            why = "only igor serve needs it, over Socket Mode; not with --http"
        hint = f"set {kind.variable} or run `igor register{' --slack' if not required else ''}`"
        if keyring_problem():  # register cannot store it until the keyring setting is fixed
            hint = f"set {kind.variable}, or fix the keyring and run igor register"
        code = ExitCode.NOT_AUTHORISED if required else ExitCode.OK
        return Check(name, False if required else None, f"missing ({why}; {hint})"), code
    where = f"from {found.source}" + (
        f" ({kind.variable})" if found.source == "environment" else ""
    )
    facts: dict[str, Any] = {"source": found.source}
    extra, ok = "", True
    try:
        if kind is TokenKind.CLOUD66:
            token = _verify_cloud66(found.value, env)
            belongs_to = token.belongs_to
            extra = "; " + _cloud66_scopes(token.scopes)
            if token.requests_left is not None:
                extra += f"; {token.requests_left:,} requests left this hour"
            facts.update(account=belongs_to, stacks=token.stacks, scopes=token.scopes,
                         requests_left=token.requests_left)  # fmt: skip
        elif kind is TokenKind.SLACK_BOT:
            from igor_cli.chat.slack.tokens import check_bot_token

            _, identity = check_bot_token(found.value, env)
            belongs_to = f"bot @{identity.name} in the {identity.team} workspace"
            said, ok = _slack_scopes(identity.scopes)
            extra = "; " + said
            listed = list(identity.scopes) if identity.scopes is not None else None
            facts.update(bot=identity.name, workspace=identity.team, scopes=listed)
        else:
            belongs_to = verify(kind, found.value, env)
    except IgorError as error:
        facts["accepted"] = False
        detail = f"{where}, {found.masked}: {error.message}"
        return Check(name, False, detail, facts), error.exit_code
    facts["accepted"] = True
    accepted = f"{where}, {found.masked}: accepted ({belongs_to}){extra}"
    return Check(name, ok, accepted, facts), ExitCode.OK


def _store_check(store: Store, count: int) -> Check:
    """Where the state is (never its password), whom it is shared with, whether other
    accounts may read it, and what the bot last heard of its replicas."""
    from igor_cli.chat.slack.replicas import SEEN_KEY, last_seen
    from igor_cli.state import shared_store

    shared = shared_store(store)
    said = [f"{store.url} ({count} locks)"]
    said.append(
        "shared: every igor using it sees the same locks"
        if shared
        else "local to this machine: one `igor serve` only (replicas need IGOR_STATE_URL)"
    )
    facts: dict[str, Any] = {"url": store.url, "locks": count, "shared": shared}
    ok = True
    seen = last_seen(store.get(SEEN_KEY))
    if seen is not None:
        connections = seen.get("connections")
        facts["slack_connections"] = connections
        said.append(f"Slack last said {connections} connection(s) of the app are open")
        if seen.get("others") and not shared:
            ok = False
            said.append("so other replicas keep stores of their own: changes from chat are "
                        "refused until all share one (IGOR_STATE_URL)")  # fmt: skip
    problems = store.exposed()
    if problems:
        ok = False
        said += problems
    facts["private"] = not problems
    return Check("state store", ok, "; ".join(said), facts)


def _audit_check(env: Environment) -> Check | None:
    """`[audit] path`: whether other accounts may read what was typed in chat, and by whom."""
    from pathlib import Path

    from igor_cli.private_files import exposed

    try:
        section = env.config().get("audit", {})
    except IgorError:  # the config file's own check says why
        return None
    if not isinstance(section, dict) or not section.get("path"):
        return None
    path = Path(str(section["path"])).expanduser()
    if not path.exists():
        return Check("audit file", None, f"{path} (made, readable by its owner only, by serve)")
    problems = exposed(path)
    return Check("audit file", not problems, "; ".join([str(path), *problems]))


def _durability_check(problems: list[str]) -> Check:
    """Whether the store keeps igor's keys through a restart and when it is full."""
    if not problems:
        return Check("state store keeps", True, "its data on disk, and never evicts igor's keys",
                     {"warnings": []})  # fmt: skip
    said = "; it ".join(problems)
    return Check("state store keeps", None, f"warning: it {said} (README: One bot, or several)",
                 {"warnings": problems})  # fmt: skip


def _state_checks(env: Environment) -> list[Check]:
    """The state store (reachable, how many locks) and the freeze windows (readable, which
    hold now or come next)."""
    from igor_cli.freeze import FreezeError, freezes_from_config
    from igor_cli.state.continuity import StoreWasReset
    from igor_cli.state.locks import current_locks
    from igor_cli.state.store import NeverKept

    checks = []
    try:
        store = env.state()
        count = len(current_locks(store))
        env.continuity(store).check()
        checks.append(_store_check(store, count))
        checks.append(_durability_check(store.durability()))
    except NeverKept as error:  # a default file that cannot be made: nothing kept, nothing lost
        checks.append(Check("state store", False if env.state_configured() else None,
                            error.message))  # fmt: skip
    except StoreWasReset as error:
        checks.append(Check("state store", False, f"{error.message} {error.hint}"))
    except IgorError as error:  # unreachable, unreadable, or a URL igor cannot use
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
