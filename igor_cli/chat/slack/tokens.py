"""Slack's tokens at start-up: who the bot is, whether the app may open sockets, and the
signing secret HTTP mode needs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from igor_cli.config import Environment
from igor_cli.credentials import TokenKind, find_token, keyring_problem, keyring_setting_error
from igor_cli.errors import NotRegistered, Remedy, Unreachable

if TYPE_CHECKING:
    from igor_cli.chat.slack.web import SlackWeb

log = logging.getLogger("igor.serve")

START_ATTEMPTS = 4
START_WAIT_SECONDS = 30.0  # a longer Retry-After at start-up is said, not waited out
# What Slack answers for a token that is wrong, revoked or of a deleted app.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


class SlackTokenRejected(NotRegistered):
    """Slack refused one of igor's tokens."""

    remedy = Remedy.REGISTER_SLACK


class SlackTokensMissing(NotRegistered):
    """`igor serve` without its Slack tokens; the hint names the exact fix."""

    remedy = None


@dataclass(frozen=True)
class Identity:
    """Who the bot is in the workspace (from `auth.test`)."""

    user_id: str
    name: str
    team: str
    # The bot token's scopes, from auth.test's `x-oauth-scopes` header (None: not sent).
    scopes: tuple[str, ...] | None = None
    team_id: str = ""  # the workspace it is installed in: whose members count (members.py)


def web_client(token: str, env: Environment) -> SlackWeb:
    """A Web API client; igor handles Slack's 429s itself (off the workers)."""
    from igor_cli.chat.slack.web import SlackWeb

    return SlackWeb(token, env.slack_api_url())


def rejected(kind: TokenKind, reason: str) -> SlackTokenRejected:
    """The error for a token Slack refuses."""
    return SlackTokenRejected(
        f"Slack rejected the {kind.description} ({reason}).",
        f"Check {kind.variable} if it is set.",
    )


def _slack_call(kind: TokenKind, env: Environment, call: Callable[[], Any]) -> Any:
    """One Slack Web API call with a token; network failures, Slack's own (5xx) and its
    rate limit (429, waited out as it asks, up to START_WAIT_SECONDS) retried; a token
    Slack refuses, final."""
    from slack_sdk.errors import SlackApiError

    from igor_cli.chat.slack.web import retry_after

    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return call()
        except SlackApiError as error:
            status = int(error.response.status_code)
            if status != 429 and status < 500:
                raise rejected(kind, str(error.response.get("error", "rejected"))) from None
            busy = status == 429
            delay = retry_after(error.response.headers) if busy else _backoff(attempt)
            why = "is rate-limiting igor" if busy else f"answered HTTP {status}"
            if attempt == START_ATTEMPTS or delay > START_WAIT_SECONDS:
                raise Unreachable(
                    f"Slack {why}: the {kind.description} was not checked.",
                    f"Try again in {delay:.0f} s." if busy else "Try again in a minute.",
                ) from None
            log.warning("Slack %s; trying again in %.0f s", why, delay)
            env.sleep(delay)
        except OSError as error:  # URLError, timeouts, refused connections
            from igor_cli.cloud66.refusals import network_reason

            reason, url = network_reason(error), env.slack_api_url()
            if attempt == START_ATTEMPTS:
                raise Unreachable(
                    f"Slack could not be reached at {url} ({reason}).",
                    "Check the network, or IGOR_SLACK_API_URL if you set it.",
                ) from None
            log.warning("Slack unreachable at %s (%s); retrying", url, reason)
            env.sleep(_backoff(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def _backoff(attempt: int) -> float:
    """Seconds before trying again after a failed `attempt` (1, 2, ...): 1, 2, 4, 8 at most."""
    return min(8.0, 0.5 * 2.0**attempt)


def check_bot_token(token: str, env: Environment) -> tuple[SlackWeb, Identity]:
    """`auth.test` with the bot token: who the bot is, in which workspace."""
    web = web_client(token, env)
    me = _slack_call(TokenKind.SLACK_BOT, env, lambda: web.call("auth.test"))
    headers = {str(k).lower(): str(v) for k, v in (getattr(me, "headers", None) or {}).items()}
    listed = headers.get("x-oauth-scopes")
    scopes = (
        None if listed is None else tuple(sorted(filter(None, listed.replace(" ", "").split(","))))
    )
    name = str(me.get("user") or "igor")
    team_id = str(me.get("team_id") or "")
    return web, Identity(str(me["user_id"]), name, str(me.get("team")), scopes, team_id)


def check_app_token(token: str, env: Environment) -> None:
    """`apps.connections.open` with the app token (the connection is not kept)."""
    web = web_client(token, env)
    _slack_call(TokenKind.SLACK_APP, env, lambda: web.call("apps.connections.open"))
    web.close()


SOCKET_MODE_KINDS = (TokenKind.SLACK_BOT, TokenKind.SLACK_APP)
# HTTP mode: Slack calls igor, signing each request; no app token, no connection to open.
HTTP_KINDS = (TokenKind.SLACK_BOT, TokenKind.SLACK_SIGNING)


def require_slack_tokens(
    env: Environment, kinds: tuple[TokenKind, ...] = SOCKET_MODE_KINDS
) -> dict[TokenKind, str]:
    """Each of these Slack secrets, or one NotRegistered naming every missing one and its fix.

    The fix is Slack's: `igor register --slack` (`--http` for HTTP mode's) or the
    variables; the sandbox stands in for Cloud 66 only, so it is never the advice here.
    """
    found = {kind: find_token(kind, env) for kind in kinds}
    missing = [kind for kind, token in found.items() if token is None]
    if not missing:
        return {kind: token.value for kind, token in found.items() if token is not None}
    http = TokenKind.SLACK_SIGNING in kinds
    command = "igor serve --http" if http else "igor serve"
    problem = keyring_problem()
    if problem:  # a setting to fix first: register could not store them either
        raise keyring_setting_error(problem, missing, command)
    names = " and the ".join(kind.description for kind in missing)
    variables = " and ".join(kind.variable for kind in missing)
    hint = (
        f"Store {'them' if len(missing) > 1 else 'it'} with "
        f"`igor register --slack{' --http' if http else ''}`, or set {variables}."
    )
    if not env.in_sandbox and find_token(TokenKind.CLOUD66, env) is None:
        hint += (
            " It also needs a Cloud 66 token to answer commands (`igor register`), "
            "or --sandbox to rehearse on the simulator."
        )
    raise SlackTokensMissing(
        f"{command} needs the {names}; {'neither is' if len(missing) > 1 else 'it is not'} set.",
        hint,
    )


def check_slack_tokens(
    env: Environment, kinds: tuple[TokenKind, ...] = SOCKET_MODE_KINDS
) -> tuple[SlackWeb, Identity]:
    """Check the Slack tokens a transport needs (`kinds`); return a client with the bot token,
    and the bot's identity. The app token opens a connection to be checked; the signing
    secret cannot be checked with Slack (a wrong one fails every request's signature)."""
    tokens = require_slack_tokens(env, kinds)
    web, identity = check_bot_token(tokens[TokenKind.SLACK_BOT], env)
    if TokenKind.SLACK_APP in tokens:
        check_app_token(tokens[TokenKind.SLACK_APP], env)
    return web, identity
