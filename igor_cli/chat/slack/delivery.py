"""Getting every reply to the person who asked, whatever Slack says.

A reply goes where it was asked (the thread, or a slash command's
`response_url`). When that fails it falls back, in order, to the other way in
(`response_url` or the channel), then to a direct message to the requester,
and when nothing works it is logged at ERROR with the command and its outcome,
so that an operator can tell the person. Slack's 429s are waited out as Slack
asks (`Retry-After`), on the delivery lanes, never on a Cloud 66 worker. Posts
to one place keep their order (one lane per place).

Slack facts this relies on (docs.slack.dev): a `response_url` takes 5 posts
within 30 minutes; `chat.postMessage` and `chat.postEphemeral` answer
`not_in_channel` where the bot is not a member; posting to a user ID opens the
app's direct message with that user.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from igor_cli.chat.slack.tokens import AUTH_ERRORS
from igor_cli.chat.slack.web import retry_after
from igor_cli.chat.workers import Workers
from igor_cli.render.slack import SlackMessage, channel_link, message, mrkdwn

if TYPE_CHECKING:
    from igor_cli.chat.slack.web import SlackWeb

log = logging.getLogger("igor.delivery")

RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60
LANES = 4
MAX_RATE_LIMIT_WAITS = 8
# The channel cannot be used, but the person can still be reached another way.
_PLACE_ERRORS = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "cannot_reply"}
)


@dataclass
class ResponseUrl:
    """A slash command's or a click's `response_url`, with what is left of it."""

    url: str
    clock: Callable[[], float] = time.monotonic
    uses: int = 0
    issued: float = field(init=False)

    def __post_init__(self) -> None:
        self.issued = self.clock()

    def usable(self) -> bool:
        """Slack takes 5 posts within 30 minutes of the command."""
        fresh = self.clock() - self.issued < RESPONSE_URL_SECONDS - 30
        return bool(self.url) and self.uses < RESPONSE_URL_USES and fresh


@dataclass(frozen=True)
class Place:
    """Where a reply belongs: a channel's thread, and who to find if that fails."""

    channel: str
    thread: str = ""
    user: str = ""
    response_url: ResponseUrl | None = None
    # Slash commands answer through their response_url first (the bot may not
    # be in the channel); mentions and messages answer in the thread.
    answer_by_url: bool = False

    @property
    def key(self) -> str:
        """Watchers in one place share one final message."""
        return f"{self.channel}:{self.thread}"


Posted = Callable[[str], None]  # told the ts of a message posted with chat.postMessage


class Delivery:
    """Posts, ephemeral replies and edits, with fallbacks, on ordered lanes."""

    def __init__(self, web: SlackWeb, stopping: threading.Event, lanes: int = LANES) -> None:
        self.web = web
        self.stopping = stopping
        self._lanes = [Workers(f"igor-slack-{n}", 1, 100_000) for n in range(lanes)]
        self.lost = 0  # replies that reached nobody (each logged at ERROR)

    # -- what the bot calls (each returns at once) ----------------------------

    def post(
        self,
        place: Place,
        said: SlackMessage,
        *,
        context: dict[str, Any] | None = None,
        on_posted: Posted | None = None,
    ) -> None:
        """Post a reply where it belongs (in order with the place's other replies)."""
        self._lane(place).submit(lambda: self._post(place, said, context or {}, on_posted))

    def then(self, place: Place, step: Callable[[], None]) -> None:
        """Run `step` once what was queued for this place has gone out (or failed to)."""
        self._lane(place).submit(step)

    def ephemeral(
        self, place: Place, said: SlackMessage | str, *, context: dict[str, Any] | None = None
    ) -> None:
        """A reply only the requester sees (refusals, "only X can confirm")."""
        said = message(said) if isinstance(said, str) else said
        self._lane(place).submit(lambda: self._ephemeral(place, said, context or {}))

    def replace(self, place: Place, ts: str, said: SlackMessage) -> None:
        """Replace a message (a question that was answered or expired)."""
        self._lane(place).submit(lambda: self._replace(place, ts, said))

    def update(self, channel: str, ts: str, said: SlackMessage) -> None:
        """Edit a message now (progress); called from the follower's updater thread."""
        try:
            self._call("chat.update", channel=channel, ts=ts, text=said.text, blocks=said.blocks)
        except _Failed as failed:
            log.info("could not update a progress message (%s)", failed.error)

    def wait_idle(self, timeout: float) -> None:
        """Let queued replies go out (bounded: shutdown must stay under 10 s)."""
        deadline = time.monotonic() + timeout
        for lane in self._lanes:
            lane.wait_idle(max(0.0, deadline - time.monotonic()))

    def stop(self) -> None:
        """Send nothing more."""
        for lane in self._lanes:
            lane.stop()

    # -- on a lane ----------------------------------------------------------

    def _lane(self, place: Place) -> Workers:
        return self._lanes[zlib.crc32(place.key.encode()) % len(self._lanes)]

    def _post(
        self, place: Place, said: SlackMessage, context: dict[str, Any], on_posted: Posted | None
    ) -> None:
        if place.answer_by_url and self._by_url(place, said, "in_channel"):
            return
        tried_url = place.answer_by_url
        try:
            answer = self._call(
                "chat.postMessage",
                channel=place.channel,
                thread_ts=place.thread or None,
                text=said.text,
                blocks=said.blocks,
            )
        except _Failed as failed:
            if failed.maybe_sent:  # another copy elsewhere could tell it twice
                self._unsure("post", failed.error, place, said, context)
                return
            if not tried_url and self._by_url(place, said, "in_channel"):
                return
            if failed.error not in AUTH_ERRORS and self._direct(place, said):
                return
            self._lost("post", failed.error, place, said, context)
            return
        if on_posted is not None:
            on_posted(str(answer.get("ts", "")))

    def _ephemeral(self, place: Place, said: SlackMessage, context: dict[str, Any]) -> None:
        try:
            self._call(
                "chat.postEphemeral",
                channel=place.channel,
                user=place.user,
                thread_ts=place.thread or None,
                text=said.text,
                blocks=said.blocks,
            )
        except _Failed as failed:
            if failed.maybe_sent:
                self._unsure("ephemeral reply", failed.error, place, said, context)
                return
            if self._by_url(place, said, "ephemeral"):
                return
            if failed.error not in AUTH_ERRORS and self._direct(place, said):
                return
            self._lost("ephemeral reply", failed.error, place, said, context)

    def _replace(self, place: Place, ts: str, said: SlackMessage) -> None:
        url = place.response_url
        if url is not None and url.usable() and self._send_url(url, said, replace_original=True):
            return
        try:
            self._call(
                "chat.update", channel=place.channel, ts=ts, text=said.text, blocks=said.blocks
            )
        except _Failed as failed:
            log.warning("could not replace a question in %s (%s)", place.channel, failed.error)

    def _by_url(self, place: Place, said: SlackMessage, response_type: str) -> bool:
        url = place.response_url
        if url is None or not url.usable():
            return False
        return self._send_url(url, said, response_type=response_type)

    def _send_url(self, url: ResponseUrl, said: SlackMessage, **options: Any) -> bool:
        """Whether the reply went through the response_url: True also when it was sent and
        no answer came (it may be there: no other copy is sent, as for a post)."""
        url.uses += 1
        try:
            reply = {"text": said.text, "blocks": said.blocks, **options}
            status = self.web.respond(url.url, reply)
        except OSError as error:
            from igor_cli.cloud66.refusals import network_reason

            if _maybe_sent(error):
                log.warning("no answer from Slack after sending a reply to a response_url "
                            "(%s): it may have arrived, so it is not sent again: %s",
                            network_reason(error), said.text[:300])  # fmt: skip
                return True
            log.warning("response_url unreachable (%s)", network_reason(error))
            return False
        if status != 200:
            log.warning("response_url refused the reply (HTTP %s)", status)
            if status == 404:
                url.uses = RESPONSE_URL_USES  # used up or expired: do not try it again
            return False
        return True

    def _direct(self, place: Place, said: SlackMessage) -> bool:
        """The requester's direct message with the app, saying where the reply belonged."""
        if not place.user or place.channel == place.user or place.channel.startswith("D"):
            return False
        where = mrkdwn(channel_link(place.channel)) if place.channel else "the channel"
        note = f"(I could not answer in {where}, so here it is.)"
        direct = SlackMessage(said.text, [*said.blocks, _context_block(note)])
        try:
            self._call(
                "chat.postMessage", channel=place.user, text=direct.text, blocks=direct.blocks
            )
        except _Failed:
            return False
        return True

    def _unsure(
        self, what: str, error: str, place: Place, said: SlackMessage, context: dict[str, Any]
    ) -> None:
        """A reply sent with no answer back: it may be there, so it is not sent again (by
        response_url or direct message: the requester would read it twice); said in the log."""
        log.warning(
            "no answer from Slack after sending a %s to %s in %s (%s): it may have arrived, "
            "so it is not sent again; command %s, outcome %s: %s",
            what, place.user or "?", place.channel or "?", error,
            context.get("command", "?"), context.get("outcome", "?"), said.text[:300],
        )  # fmt: skip

    def _lost(
        self,
        what: str,
        error: str,
        place: Place,
        said: SlackMessage,
        context: dict[str, Any],
    ) -> None:
        self.lost += 1
        log.error(
            "could not deliver a %s to %s in %s (%s); command %s, outcome %s: %s",
            what,
            place.user or "?",
            place.channel or "?",
            error,
            context.get("command", "?"),
            context.get("outcome", "?"),
            said.text[:300],
        )

    def _call(self, method: str, **arguments: Any) -> Any:
        """One Web API call; 429s waited out as Slack asks, a bounded number of times."""
        from slack_sdk.errors import SlackApiError

        waits = 0
        while True:
            try:
                return self.web.call(method, **arguments)
            except SlackApiError as error:
                response = error.response
                if response.status_code == 429 and waits < MAX_RATE_LIMIT_WAITS:
                    waits += 1
                    delay = retry_after(response.headers)
                    log.info("Slack rate-limits %s; retrying in %.0f s", method, delay)
                    if self.stopping.wait(delay):
                        raise _Failed("shutting down") from None
                    continue
                raise _Failed(str(response.get("error") or response.status_code)) from None
            except OSError as error:  # SlackUnreachable: never sent again (web.py)
                from igor_cli.cloud66.refusals import network_reason

                raise _Failed(network_reason(error), maybe_sent=_maybe_sent(error)) from None


class _Failed(Exception):
    """A Web API call that did not go through, and Slack's reason; `maybe_sent`: it was
    sent and no answer came, so Slack may have taken it."""

    def __init__(self, error: str, *, maybe_sent: bool = False) -> None:
        super().__init__(error)
        self.error = error
        self.maybe_sent = maybe_sent


def _maybe_sent(error: OSError) -> bool:
    """Whether a call that got no answer had left igor (`SlackUnreachable.sent`): Slack may
    have taken it, so it must not be sent again another way."""
    return bool(getattr(error, "sent", False))


def _context_block(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
