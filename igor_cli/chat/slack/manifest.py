"""The Slack app manifest igor needs: Socket Mode (or HTTP mode's request URLs), interactivity,
`/igor`, and no more scopes.

The scopes come from the Web API methods and events the bot really uses,
listed once here; a test runs the bot and checks every method it called is
listed, so the manifest cannot drift from the code.

No `chat:write.public`: it would let the bot post in every public channel
without being invited, and igor only answers where it was asked. Where it is
not a member, Slack refuses its posts (`not_in_channel`) and delivery.py falls
back to the slash command's `response_url`, then a direct message.
"""

from __future__ import annotations

from typing import Any

from igor_cli import __version__
from igor_cli.errors import UsageProblem

# Web API method -> the bot scopes it needs (None: no bot scope, e.g. the app token's own).
WEB_API_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "apps.connections.open": (),  # the app-level token's connections:write
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    # Reading a confirmation back at its expiry, wherever it was asked.
    "conversations.replies": ("channels:history", "groups:history", "im:history"),
    "users.info": ("users:read",),  # people named in tables and errors (chat/slack/users.py)
}
# Event subscriptions -> the scope each needs.
EVENT_SCOPES: dict[str, str] = {
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "message.channels": "channels:history",  # "igor deploy ..." without a mention
    "message.groups": "groups:history",  # the same in private channels
}
SLASH_COMMAND_SCOPE = "commands"


def bot_scopes() -> list[str]:
    """Every bot scope igor needs, sorted."""
    scopes = {scope for needed in WEB_API_SCOPES.values() for scope in needed}
    scopes.update(EVENT_SCOPES.values())
    scopes.add(SLASH_COMMAND_SCOPE)
    return sorted(scopes)


# Slack's limits (slackapi/manifest-schema, schemas/manifest.schema.1.0.0.json).
APP_NAME_MAX = 35
DISPLAY_NAME_MAX = 80
LONG_DESCRIPTION_LENGTH = (175, 4000)
SLASH_COMMAND_MAX = 32  # the leading "/" included


def bot_display_name(name: str) -> str:
    """The bot user's name derived from the app's: `Deploy Bot` -> `deploy-bot`.

    Refuses (UsageProblem) an app name Slack would not take or that leaves no
    letter or digit for the bot's name.
    """
    import re
    import unicodedata

    name = name.strip()
    if not name or len(name) > APP_NAME_MAX or not name.isprintable():
        shown = f"{len(name)} characters" if name.isprintable() else "control characters"
        raise UsageProblem(
            f"Slack takes an app name of 1 to {APP_NAME_MAX} printable characters "
            f"(that one has {shown}).",
            "Choose another name with --name.",
        )
    # Unconfirmed: Slack's schema only bounds the length; its docs say the bot
    # user's name may hold lowercase letters, digits, '-', '_' and '.'.
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    display = re.sub(r"[^a-z0-9._-]+", "-", ascii_name.lower()).strip("-")
    if not re.search(r"[a-z0-9]", display) or len(display) > DISPLAY_NAME_MAX:
        raise UsageProblem(
            f"The app name {name!r} does not make a bot user name: Slack allows lowercase "
            "letters, digits, '-', '_' and '.' there.",
            "Choose a name with some letters or digits with --name.",
        )
    return display


def slash_command(display_name: str) -> str:
    """The slash command that follows the bot's name: `deploy-bot` -> `/deploy-bot`."""
    # Unconfirmed: Slack's schema bounds the command's length (2 to 32, with the
    # "/") and nothing else; its app settings page takes lowercase letters,
    # digits, '-' and '_', so a '.' of the bot's name becomes '-'.
    import re

    body = re.sub(r"[^a-z0-9_-]+", "-", display_name)[: SLASH_COMMAND_MAX - 1].strip("-_")
    return "/" + (body or "igor")


def request_url(url: str) -> str:
    """Where Slack sends HTTP mode's requests: `url`, ending in igor's `/slack/events` (added
    when it names only the server, or a path a proxy serves igor under). UsageProblem when
    it is not an http(s) URL."""
    from urllib.parse import urlsplit, urlunsplit

    from igor_cli.chat.slack.transports.events_http import EVENTS_PATH

    try:
        parts = urlsplit(url.strip())
        usable = parts.port is None or parts.port > 0  # (a port that is no number raises)
    except ValueError:
        usable = False
    if (
        not usable
        or parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or not url.isprintable()
    ):
        raise UsageProblem(
            f"--http takes the URL where Slack reaches igor serve --http, e.g. "
            f"https://igor.example.com; not {url!r}.",
            f"igor answers at its {EVENTS_PATH}; a URL without it gets it added.",
        )
    path = parts.path.rstrip("/")
    if not path.endswith(EVENTS_PATH):
        path += EVENTS_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def manifest(name: str = "igor", http: str | None = None) -> dict[str, Any]:
    """The app manifest, in Slack's format (paste it at api.slack.com/apps -> From a manifest).

    Socket Mode's, or with `http` HTTP mode's: Slack sends events, clicks and the
    slash command to that URL (see `request_url`). UsageProblem when `name` cannot
    be an app's name (see `bot_display_name`), or `http` is not a URL.
    """
    display_name = bot_display_name(name)
    command = slash_command(display_name)
    name = name.strip()
    same = name.casefold() == "igor"
    who = f"{name} {__version__} is" if same else f"{name} runs igor {__version__},"
    url = request_url(http) if http is not None else None
    found: dict[str, Any] = {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": "Deploy, cancel and list Cloud 66 stacks from Slack.",
            "long_description": (
                f"{who} a Cloud 66 toolbelt that doubles as a Slack bot. "
                f"Mention it, message it, or use {command}: "
                "list, deploy -s STACK, cancel -s STACK. "
                "It answers in the thread and follows the deployments it starts."
            ),
            "background_color": "#1b3a57",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": False,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": display_name, "always_online": True},
            "slash_commands": [
                {
                    "command": command,
                    "description": "Deploy, cancel and list Cloud 66 stacks",
                    "usage_hint": "list | deploy -s STACK -e ENV | cancel -s STACK | help",
                    "should_escape": False,
                }
            ],
        },
        "oauth_config": {"scopes": {"bot": bot_scopes()}},
        "settings": {
            "event_subscriptions": {"bot_events": sorted(EVENT_SCOPES)},
            "interactivity": {"is_enabled": True},
            "org_deploy_enabled": False,
            "socket_mode_enabled": True,
            "token_rotation_enabled": False,
        },
    }
    if url is not None:  # Slack's schema: settings.*.request_url, features.slash_commands[].url
        found["features"]["slash_commands"][0]["url"] = url
        found["settings"]["event_subscriptions"]["request_url"] = url
        found["settings"]["interactivity"]["request_url"] = url
        found["settings"]["socket_mode_enabled"] = False
    return found
