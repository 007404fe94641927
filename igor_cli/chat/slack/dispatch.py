"""A message or a slash command -> the bridge -> a reply now, or a command run on a worker.

What needs no Cloud 66 call (usage, help, version, a refusal) is answered on
the intake thread that read it; the rest goes to the bounded pool of Cloud 66
workers, in line behind other commands for its stack, and a burst bigger than
the pool's queue is answered "busy" instead of being dropped. Every reply goes
out through `Delivery` (fallbacks, 429s) with its audit line; a deployment
started is recorded before its reply and followed (takeover.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from igor_cli.chat import lines
from igor_cli.chat.bridge import Bridge, Reply, Step, Work
from igor_cli.chat.live_rules import LiveRules
from igor_cli.chat.slack.audit import audit
from igor_cli.chat.slack.delivery import Delivery, Place
from igor_cli.chat.slack.envelope import SlackRequest
from igor_cli.chat.slack.events import RecentKeys
from igor_cli.chat.slack.glass import announce_broken_glass
from igor_cli.chat.slack.holders import tell_forced_holder
from igor_cli.chat.slack.members import Membership
from igor_cli.chat.slack.questions import Questions
from igor_cli.chat.slack.takeover import Takeover
from igor_cli.chat.slack.users import SlackNames
from igor_cli.chat.text import loggable
from igor_cli.chat.workers import Scheduler, Workers
from igor_cli.config import Environment
from igor_cli.errors import IgorError
from igor_cli.identity import Origin, Person
from igor_cli.render.slack import message, mrkdwn, render_reply

log = logging.getLogger("igor.serve")

DEDUPE_PREFIX = "seen:"  # a post's (channel, ts), claimed in the state store by one replica
DEDUPE_SECONDS = 3600.0  # Slack retries a delivery for minutes, not hours


class Commands:
    """Messages and slash commands in, replies (and follow-ups) out, one audit line each."""

    def __init__(
        self,
        env: Environment,
        bridge: Bridge,
        *,
        members: Membership,
        delivery: Delivery,
        names: SlackNames,
        questions: Questions,
        takeover: Takeover,
        workers: Workers,
        scheduler: Scheduler,
        live: LiveRules | None,
        stopping: threading.Event,
        replica: str,
    ) -> None:
        self.env = env
        self.bridge = bridge
        self.members = members
        self.delivery = delivery
        self.names = names
        self.questions = questions
        self.takeover = takeover
        self.workers = workers
        self.scheduler = scheduler
        self.live = live
        self.stopping = stopping
        self.replica = replica
        self.seen = RecentKeys()

    def message(self, request: SlackRequest) -> None:
        """Answer one message (a mention, a direct message, igor's name first) in its thread."""
        # A mention arrives as app_mention and as message, and Slack retries:
        # one post is one (channel, ts).
        key = f"{request.channel}:{request.ts}"
        if not self.seen.first_time(key) or not self._claimed(key):
            return
        self._begin(request, {"text": loggable(request.text)})

    def slash(self, request: SlackRequest) -> None:
        """Answer `/igor ...` through its response URL (the bot may not be in the channel)."""
        self._begin(request, {"text": loggable(request.text), "via": "slash"})

    def _begin(self, request: SlackRequest, fields: dict[str, Any]) -> None:
        if self.outsider(request, fields):
            return
        origin = Origin.of(Person.in_slack(request.user, request.team or ""), request.request_id)
        with self.env.one_config():  # what it is decided on here, from one read of the file
            step = self.bridge.begin(request.text, origin, request.channel, request.thread)
            self.run(step, request.place, fields)

    def _claimed(self, key: str) -> bool:
        """Whether this replica runs the post: the first to claim it in the state store.

        Replicas that share the store (Redis) each receive some deliveries of one
        post; only one of them runs it. A store that cannot be reached does not
        silence the bot: the post runs (a deploy stays idempotent through its
        `user_reference` at Cloud 66).
        """
        try:
            store = self.env.state_or_none()
            return store is None or store.claim(DEDUPE_PREFIX + key, self.replica, DEDUPE_SECONDS)
        except IgorError as error:  # the outage itself is said once (state/health.py)
            log.debug("state store: %s (the post runs without the cross-replica check)",
                      error.message)  # fmt: skip
            return True

    def outsider(self, request: SlackRequest, fields: dict[str, Any]) -> bool:
        """Whether this person is not one whose commands and clicks count (members.py): then
        nothing is done, it is logged, and they are told why the first time."""
        if self.members.counts(request.team):
            return False
        audit("command", user=request.user, channel=request.channel, **fields,
              outcome="refused", reason="not a member", team=request.team or "unknown")  # fmt: skip
        if self.members.first_telling(request.user):
            said = message(mrkdwn(self.members.why()), emoji=":no_entry:")
            self.delivery.ephemeral(request.place, said)
        return True

    def run(self, step: Step, place: Place, fields: dict[str, Any] | None = None) -> None:
        """A reply now, or the rest of the work on a Cloud 66 worker (or "busy")."""
        if isinstance(step, Reply):
            self.deliver(step, place, fields)
            return
        work, queued = step, time.monotonic()

        def job() -> None:
            if time.monotonic() - queued > lines.LINE_SECONDS:  # too late: its asker moved on
                self._busy(place, fields, lines.too_late(work.name))
                return
            with self.takeover.command(place), self.env.one_config():
                self.deliver(work(), place, fields)

        ahead = self.workers.queue(job, work.stack, lines.LINE_LIMIT)
        if ahead is None:
            full = work.stack is not None and self.workers.waiting(work.stack) >= lines.LINE_LIMIT
            self._busy(place, fields, lines.busy(work.name, full))
        elif ahead:  # in line behind another command for its stack: told if it lasts
            self.scheduler.call_later(lines.NOTICE_SECONDS, lambda: self._waiting(job, work, place))

    def _waiting(self, job: Callable[[], None], work: Work, place: Place) -> None:
        ahead = self.workers.ahead_of(job, work.stack or "")
        if ahead and not self.stopping.is_set():
            said = message(mrkdwn(lines.waiting(ahead, work.name)), emoji=":hourglass:")
            self.delivery.post(place, said, context={"command": "?", "outcome": "waiting"})

    def _busy(self, place: Place, fields: dict[str, Any] | None, why: str) -> None:
        audit("command", user=place.user, channel=place.channel, **(fields or {}), outcome="busy")
        said = message(mrkdwn(why), emoji=":hourglass:")
        self.delivery.post(place, said, context={"command": "?", "outcome": "busy"})

    def deliver(self, reply: Reply, place: Place, fields: dict[str, Any] | None) -> None:
        """Say `reply` in `place` (with its audit line): a question expires in time, a
        deployment started is followed, a broken glass and a forced lock are told."""
        reply.fields.update(fields or {})
        notice = self.live.take_notice() if self.live is not None else ""
        if notice:  # the config file changed and cannot be used: the next requester hears
            reply.note = "\n".join(filter(None, (reply.note, notice)))
        self._log(reply, place)
        context = {"command": reply.command or "?", "outcome": reply.status}
        said = render_reply(reply, self.env.clock(), self.names.name)
        if reply.ephemeral:
            self.delivery.ephemeral(place, said, context=context)
            return
        # A deployment to follow is recorded before its reply goes out (chat/leases.py).
        follow = reply.deployment_to_follow
        following = None if follow is None else self.takeover.record(follow, place)
        if not self.takeover.telling():
            return  # another igor tells this thread, once (chat/intents.py)

        def on_posted(ts: str) -> None:
            if following is not None:
                self.takeover.posted(following, ts)
            if reply.pending is not None and ts:
                self.questions.expire_later(place, ts, reply.pending, reply.command)

        self.delivery.post(place, said, context=context, on_posted=on_posted)
        if follow is not None and following is not None:
            self.takeover.follow(following, follow, place, context)
        # A change posted during a freeze with --break-glass, told where the team sees it.
        announce_broken_glass(self.delivery, self.env, self.bridge.rules.notify, reply, place)
        tell_forced_holder(self.delivery, reply, place)

    def _log(self, reply: Reply, place: Place) -> None:
        line: dict[str, Any] = {"user": place.user, "channel": place.channel}
        if reply.command:  # a usage error may name no command: the typed text says what it was
            line["command"] = reply.command
        line.update(reply.fields)
        line["outcome"] = reply.status
        audit("command", **line)
