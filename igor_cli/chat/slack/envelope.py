"""One thing a person did in Slack, read once from what a transport handed the bot.

Slack says the same things in three shapes: an Events API message (a mention, a
direct message, a channel message addressed to igor), a slash command's form,
and a button click's `block_actions` payload. Each is read here into one
`SlackRequest` (which transport brought it; the team, user, channel and thread;
the words typed or the button clicked; the response_url when there is one), and
the bot's jobs (dispatch.py, clicks.py) read that value, never Slack's payloads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from igor_cli.chat.slack.delivery import Place, ResponseUrl
from igor_cli.chat.slack.events import command_text
from igor_cli.chat.slack.members import click_team, event_team, slash_team
from igor_cli.chat.slack.tokens import Identity

Transport = Literal["socket_mode", "http"]
Kind = Literal["message", "slash", "click"]


@dataclass(frozen=True)
class SlackRequest:
    """A message, a slash command or a click, as igor reads it from either transport."""

    transport: Transport
    kind: Kind
    team: str | None  # the person's team as far as Slack says (members.py decides if it counts)
    user: str
    channel: str
    thread: str = ""  # where a message is answered; "" for a slash command and a click
    ts: str = ""  # the message's own ts; for a click, the ts of the message clicked
    text: str = ""  # the words typed (a message, a slash command)
    request_id: str = ""  # one post, or one slash command: a retry must not deploy twice
    response_url: ResponseUrl | None = None  # a slash command's or a click's
    action_id: str = ""  # the button clicked
    value: str = ""  # the clicked button's value (a signed command, for igor's own)
    shown: dict[str, Any] | None = None  # the clicked message as Slack showed it

    @property
    def place(self) -> Place:
        """Where the answer goes: the message's thread; a slash command's response URL (the
        bot may not be in the channel); for a click, the clicker in the channel."""
        if self.kind == "slash":
            return Place(self.channel, "", self.user, self.response_url, answer_by_url=True)
        return self.at(self.thread)

    def at(self, thread: str) -> Place:
        """This person in this channel, in `thread` (a click answers in its question's)."""
        return Place(self.channel, thread, self.user, self.response_url)


def read_message(
    event: dict[str, Any], shared_channel: bool, identity: Identity, transport: Transport
) -> SlackRequest | None:
    """An `app_mention` or `message` event (`shared_channel`: from a channel shared with other
    organisations), or None when it is nothing for igor (events.py)."""
    text = command_text(event, identity)
    if text is None:
        return None
    channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
    return SlackRequest(
        transport, "message", event_team(event, shared_channel, identity.team_id),
        str(event["user"]), channel, str(event.get("thread_ts") or ts), ts, text,
        request_id=f"{channel}-{ts}",
    )  # fmt: skip


def read_slash(
    payload: dict[str, Any], clock: Callable[[], float], transport: Transport
) -> SlackRequest:
    """A slash command's form (`clock`: the monotonic clock its response URL's age is kept on)."""
    return SlackRequest(
        transport, "slash", slash_team(payload), str(payload.get("user_id", "")),
        str(payload.get("channel_id", "")), text=str(payload.get("text", "")),
        request_id=str(payload.get("trigger_id") or payload.get("envelope_id") or ""),
        response_url=ResponseUrl(str(payload.get("response_url", "")), clock),
    )  # fmt: skip


def read_click(
    payload: dict[str, Any], clock: Callable[[], float], transport: Transport
) -> SlackRequest:
    """A `block_actions` payload: who clicked which button, on which message, where."""
    action = (payload.get("actions") or [{}])[0]
    container = payload.get("container") or {}
    channel = str(container.get("channel_id") or (payload.get("channel") or {}).get("id", ""))
    shown = payload.get("message")
    return SlackRequest(
        transport, "click", click_team(payload), str((payload.get("user") or {}).get("id", "")),
        channel, ts=str(container.get("message_ts") or (payload.get("message") or {}).get("ts")),
        response_url=ResponseUrl(str(payload.get("response_url") or ""), clock),
        action_id=str(action.get("action_id", "")), value=str(action.get("value", "")),
        shown=shown if isinstance(shown, dict) else None,
    )  # fmt: skip
