"""Slack's tokens at start-up: who the bot is, and whether the app may open sockets."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from igor_cli.config import Environment
from igor_cli.credentials import TokenKind, require_token
from igor_cli.errors import NotRegistered, Remedy, Unreachable

if TYPE_CHECKING:
    from slack_sdk.web import WebClient

log = logging.getLogger("igor.serve")

START_ATTEMPTS = 4
# What Slack answers for a token that is wrong, revoked or of a deleted app.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


class SlackTokenRejected(NotRegistered):
    """Slack refused one of igor's tokens."""

    remedy = Remedy.REGISTER_SLACK


@dataclass(frozen=True)
class Identity:
    """Who the bot is in the workspace (from `auth.test`)."""

    user_id: str
    name: str
    team: str


def web_client(token: str, env: Environment) -> WebClient:
    """A Web API client; igor handles Slack's 429s itself (off the workers)."""
    from slack_sdk.web import WebClient

    return WebClient(token=token, base_url=env.slack_api_url(), timeout=15)


def rejected(kind: TokenKind, reason: str) -> SlackTokenRejected:
    """The error for a token Slack refuses."""
    return SlackTokenRejected(
        f"Slack rejected the {kind.description} ({reason}).",
        f"Check {kind.variable} if it is set.",
    )


def _slack_call(kind: TokenKind, env: Environment, call: Callable[[], Any]) -> Any:
    """One Slack Web API call with a token; network failures retried, rejection final."""
    from slack_sdk.errors import SlackApiError

    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return call()
        except SlackApiError as error:
            raise rejected(kind, str(error.response.get("error", "rejected"))) from None
        except OSError as error:  # URLError, timeouts, refused connections
            if attempt == START_ATTEMPTS:
                raise Unreachable(
                    f"Slack could not be reached ({type(error).__name__}).",
                    "Check the network, or IGOR_SLACK_API_URL if you set it.",
                ) from None
            log.warning("Slack unreachable (%s); retrying", type(error).__name__)
            env.sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def check_bot_token(token: str, env: Environment) -> tuple[WebClient, Identity]:
    """`auth.test` with the bot token: who the bot is, in which workspace."""
    web = web_client(token, env)
    me = _slack_call(TokenKind.SLACK_BOT, env, web.auth_test)
    return web, Identity(str(me["user_id"]), str(me.get("user") or "igor"), str(me.get("team")))


def check_app_token(token: str, env: Environment) -> None:
    """`apps.connections.open` with the app token (the connection is not kept)."""
    web = web_client(token, env)
    _slack_call(TokenKind.SLACK_APP, env, lambda: web.apps_connections_open(app_token=token))


def check_slack_tokens(env: Environment) -> tuple[WebClient, Identity]:
    """Check both Slack tokens; return a client with the bot token, and the bot's identity."""
    bot_token = require_token(TokenKind.SLACK_BOT, env)
    app_token = require_token(TokenKind.SLACK_APP, env)
    web, identity = check_bot_token(bot_token, env)
    check_app_token(app_token, env)
    return web, identity
