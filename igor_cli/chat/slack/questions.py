"""A confirmation question once it is posted: whether it was answered, and its expiry.

A question is answered once, whichever replica gets the click: the decision is
claimed in the state store (kept past the button's expiry, so a late click finds
it), and Slack's own copy of the question (its buttons gone) tells when the
store cannot. Nobody answering in time is said on the question itself.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from igor_cli.chat.slack.audit import audit
from igor_cli.chat.slack.delivery import Delivery, Place
from igor_cli.chat.workers import Scheduler
from igor_cli.errors import IgorError
from igor_cli.render.slack import has_buttons, message

if TYPE_CHECKING:
    from igor_cli.chat.guard import PendingCommand
    from igor_cli.chat.slack.web import SlackWeb
    from igor_cli.config import Environment

log = logging.getLogger("igor.serve")

USED_PREFIX = "used:"  # a confirmation button already decided, by its signed content's hash
USED_SECONDS = 86400.0  # how long a decision is kept after its button expires


class Questions:
    """What is known of posted questions: decided (store, Slack), expired (a timer)."""

    def __init__(
        self,
        env: Environment,
        web: SlackWeb,
        delivery: Delivery,
        scheduler: Scheduler,
        stopping: threading.Event,
        replica: str,
    ) -> None:
        self.env = env
        self.web = web
        self.delivery = delivery
        self.scheduler = scheduler
        self.stopping = stopping
        self.replica = replica

    def decided_here(self, key: str, pending: PendingCommand) -> bool:
        """Whether this click is the first decision on its button, across every replica
        sharing the state store (a used button is kept until it would have expired)."""
        left = max(0.0, pending.expires - self.env.clock().timestamp())
        try:  # kept long after it expires: a late click finds its decision (`settled`)
            store = self.env.state_or_none()
            return store is None or store.claim(
                USED_PREFIX + key, self.replica, left + USED_SECONDS
            )
        except IgorError as error:
            log.warning("state store: %s (the click is checked on Slack only)", error.message)
            return True

    def settled(self, pending: PendingCommand) -> bool:
        """Whether a decision on this button is on record in the state store."""
        try:
            return self.env.state().get(USED_PREFIX + pending.digest) is not None
        except IgorError:
            return False  # then Slack's copy of the question tells (`answered_already`)

    def answered_already(
        self, shown: dict[str, Any] | None, channel: str, thread: str, question_ts: str
    ) -> bool:
        """Whether the question no longer shows its buttons (another replica decided);
        `shown`: the question as the click carried it."""
        if shown is not None and shown.get("ts") == question_ts and not has_buttons(shown):
            return True
        current = self.read_back(channel, thread or question_ts, question_ts)
        return current is not None and not has_buttons(current)

    def read_back(self, channel: str, thread: str, ts: str) -> dict[str, Any] | None:
        """The message as Slack shows it now, or None when it cannot be read."""
        from slack_sdk.errors import SlackApiError

        try:
            # conversations.replies puts the thread's parent first, and `limit`
            # counts it: ask for two to see the question itself.
            found = self.web.call(
                "conversations.replies",
                channel=channel, ts=thread, oldest=ts, latest=ts, inclusive=True, limit=2,
            )  # fmt: skip
        except (SlackApiError, OSError) as error:
            log.info("could not read a question back from Slack (%s)", type(error).__name__)
            return None
        messages: list[dict[str, Any]] = found.get("messages", [])
        return next((m for m in messages if m.get("ts") == ts), None)

    def expire_later(self, place: Place, ts: str, pending: PendingCommand, command: str) -> None:
        """When the time is up and nobody answered, say so on the question itself."""
        delay = max(0.0, pending.expires - self.env.clock().timestamp())

        def expire() -> None:
            if self.stopping.is_set():
                return
            current = self.read_back(place.channel, place.thread, ts)
            if current is None or not has_buttons(current) or self.settled(pending):
                return  # answered, here or on another replica (whatever Slack still shows)
            self.delivery.replace(
                Place(place.channel, place.thread, place.user), ts,
                message(":hourglass: Nobody confirmed within the time; nothing was done."),
            )  # fmt: skip
            audit("command", user=pending.user, channel=place.channel, command=command,
                  outcome="expired", confirmation="expired")  # fmt: skip

        self.scheduler.call_later(delay, expire)
