"""The Slack adapter: tokens, event filtering, delivery, the bot's handlers, its transports
(Socket Mode, HTTP).

Nothing else under `chat/` knows Slack: the bridge, the guard and the follower
are shared with the local console. Importing this package stays cheap;
`slack_sdk` is loaded by the functions that use it.
"""

from __future__ import annotations

from igor_cli.chat.slack.lifecycle import configure_logging, serve
from igor_cli.chat.slack.tokens import check_app_token, check_bot_token

__all__ = ["check_app_token", "check_bot_token", "configure_logging", "serve"]
