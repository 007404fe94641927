"""The bot's handlers: Slack events, slash commands and button clicks -> the bridge -> replies.

Every envelope is acked by the transport before it reaches here. What needs no
Cloud 66 call (usage, help, version, a refusal) is answered on the intake
threads; the rest goes to a bounded pool of Cloud 66 workers, and a burst
bigger than that pool's queue is answered "busy" instead of being dropped.
Replies go through `Delivery` (fallbacks, 429s), deployments are followed by
one poll loop each, and confirmation questions expire on one timer thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from igor_cli.actions import FollowPolicy, Origin
from igor_cli.chat import lines
from igor_cli.chat.bridge import BUTTON_VALUE_LIMIT, Bridge, Reply, Step, Work
from igor_cli.chat.follow import Followers
from igor_cli.chat.guard import BadConfirmation, ConfirmationExpired, PendingCommand, Rules, Signer
from igor_cli.chat.live_rules import LiveRules
from igor_cli.chat.slack.delivery import Delivery, Place, ResponseUrl
from igor_cli.chat.slack.events import RecentKeys, command_text
from igor_cli.chat.slack.glass import announce_broken_glass
from igor_cli.chat.slack.members import Membership, click_team, event_team, slash_team
from igor_cli.chat.slack.replicas import Replicas
from igor_cli.chat.slack.takeover import Takeover
from igor_cli.chat.slack.tokens import Identity
from igor_cli.chat.slack.updates import Updater
from igor_cli.chat.slack.users import SlackNames
from igor_cli.chat.text import loggable
from igor_cli.chat.workers import Scheduler, Workers
from igor_cli.config import Environment
from igor_cli.errors import IgorError
from igor_cli.render.slack import (
    CANCEL_OFFER_ACTION,
    CONFIRM_ACTION,
    DECLINE_ACTION,
    has_buttons,
    mention,
    message,
    mrkdwn,
    render_bypass,
    render_forced_unlock,
    render_reply,
    without_buttons,
)

if TYPE_CHECKING:
    from slack_sdk.web import WebClient

    from igor_cli.actions import Client
    from igor_cli.chat.bypass import Bypass
    from igor_cli.state.locks import ForcedUnlock, Lock

log = logging.getLogger("igor.serve")
audit = logging.getLogger("igor.audit")

WORKERS = 8  # Cloud 66 workers
QUEUE_LIMIT = 400  # commands waiting for a worker; beyond that: "busy, try again"
INTAKE_THREADS = 2
SHUTDOWN_SECONDS = 8.0  # SIGTERM to exit stays under 10 s
# The bot polls three times less often than a shell's --follow: every 15 s by
# default, no faster than the official client; it shares one token with everyone.
FOLLOW_SLOWER = 3.0
FOLLOW_HOURLY_BUDGET = 1800.0  # of the token's 3,000 requests an hour, for all follow loops
DEDUPE_PREFIX = "seen:"  # a post's (channel, ts), claimed in the state store by one replica
DEDUPE_SECONDS = 3600.0  # Slack retries a delivery for minutes, not hours
USED_PREFIX = "used:"  # a confirmation button already decided, by its signed content's hash
USED_SECONDS = 86400.0  # how long a decision is kept after its button expires
BYPASS_CHECK_SECONDS = 60.0  # how often locked and frozen stacks are looked at
FIRST_LOOK_SECONDS = 5.0  # after start: the connection is up, the first commands are in


def holder_place(lock: Lock) -> Place | None:
    """Where a lock's holder is told about their lock: the thread they locked it in, or
    their direct message with the app when the lock does not say (a Slack user only)."""
    if lock.holder_via != "slack":
        return None
    if lock.channel:
        return Place(lock.channel, lock.thread, lock.holder_user)
    return Place(lock.holder_user, "", lock.holder_user)  # a user ID as the channel: the DM


def bot_follow_policy(env: Environment) -> FollowPolicy:
    """How the bot's loops look at deployments: one budget an hour for all of them."""
    return FollowPolicy(
        interval=env.follow_interval * FOLLOW_SLOWER,
        timeout=2 * 3600,
        hourly_budget=FOLLOW_HOURLY_BUDGET,
        clock=env.monotonic,
        sleep=env.sleep,
    )


class SlackBot:
    """Slack's payloads (either transport) -> the bridge -> replies in thread, with follow-ups."""

    def __init__(
        self,
        env: Environment,
        web: WebClient,
        identity: Identity,
        rules: Rules | LiveRules | None = None,
        signer: Signer | None = None,
        *,
        workers: int = WORKERS,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        """`rules`: fixed, or read again when the config file changes (`LiveRules`)."""
        self.env = env
        self.web = web
        self.identity = identity
        self.live = rules if isinstance(rules, LiveRules) else None
        self.replicas = Replicas(env)
        fixed = rules if isinstance(rules, Rules) else None
        self.bridge = Bridge(
            env, self._connect, rules=self.live.current if self.live is not None else fixed,
            signer=signer, address=f"@{identity.name}", changes_refused=self.replicas.problem,
        )  # fmt: skip
        self.members = Membership(
            identity.team_id, identity.team, lambda: self.bridge.rules.allow_teams,
            env.state_or_none,
        )  # fmt: skip
        self.stopping = threading.Event()
        self._delivery_stopped = threading.Event()
        self.delivery = Delivery(web, self._delivery_stopped)
        self.scheduler = Scheduler()
        self.followers = Followers(self.bridge.connect, bot_follow_policy(env))
        self.names = SlackNames(web, env.monotonic)  # people by their Slack names
        self.updates = Updater()
        self.seen = RecentKeys()
        # Who claims posts and holds leases: unique even for two bots in one process.
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        env.replica = env.replica or self.replica
        self.decided = RecentKeys()
        self._looked: dict[str, str] = {}  # what the bypass watcher could not do, and why
        self.intake = Workers("igor-intake", INTAKE_THREADS, 1_000_000)
        self.workers = Workers("igor-cmd", workers, queue_limit)
        self.takeover = Takeover(
            env, self.replica, connect=self.bridge.connect, followers=self.followers,
            delivery=self.delivery, updates=self.updates, workers=self.workers,
            scheduler=self.scheduler, deliver=self._deliver, stopping=self.stopping,
        )  # fmt: skip
        self.scheduler.call_later(0.0, self.takeover.tend)  # resume what a restart left
        # The first look soon after start: notices of locks forced while no bot ran wait.
        first_look = min(FIRST_LOOK_SECONDS, BYPASS_CHECK_SECONDS)
        self.scheduler.call_later(first_look, self._look_for_bypasses)

    # -- from the transport ----------------------------------------------------

    def dispatch(self, kind: str, payload: dict[str, Any]) -> bool:
        """Take one acked envelope's payload (never blocks the transport); False when the bot
        is stopping and took nothing (an HTTP transport then answers 503: Slack retries)."""
        if self.stopping.is_set():
            return False
        if kind == "events_api":
            event = payload.get("event") or {}
            shared = bool(payload.get("is_ext_shared_channel"))  # Slack Connect (members.py)
            return self.intake.submit(lambda: self.handle_event(event, shared))
        if kind == "slash_commands":
            return self.intake.submit(lambda: self.handle_slash_command(payload))
        if kind == "interactive" and payload.get("type") == "block_actions":
            return self.intake.submit(lambda: self.handle_click(payload))
        return True  # nothing igor answers: taken, and dropped

    def _connect(self) -> Client:
        """A Cloud 66 client whose deploy POSTs for chat commands are recorded first."""
        from igor_cli.connect import open_client

        return self.takeover.intents.recording(open_client(self.env))

    def close(self, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Stop taking commands, let running ones finish (bounded), tell who is waiting.

        A deploy POST still out is waited for longer than other commands, within the
        budget; one out even then is handed over through its intent (chat/intents.py).
        """
        started = time.monotonic()
        self.stopping.set()
        self.intake.stop()
        self.workers.wait_idle(timeout / 2)
        self.takeover.finish_posts(started + timeout * 0.75)
        self.workers.stop()
        self.updates.stop()
        stopped = self.followers.stop()
        if stopped:
            log.info("stopped following %d deployment(s); their threads were told", stopped)
        self.delivery.wait_idle(min(timeout / 4, max(0.5, started + timeout - time.monotonic())))
        self._delivery_stopped.set()
        self.delivery.stop()
        self.takeover.hand_over()
        self.scheduler.stop()

    # -- events, slash commands ----------------------------------------------

    def handle_event(self, event: dict[str, Any], shared_channel: bool = False) -> None:
        """Answer one `app_mention` or `message` event in its thread (`shared_channel`: the
        event came from a channel shared with other organisations)."""
        text = command_text(event, self.identity)
        if text is None:
            return
        channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
        # A mention arrives as app_mention and as message, and Slack retries:
        # one post is one (channel, ts).
        if not self.seen.first_time(f"{channel}:{ts}") or not self._claimed(f"{channel}:{ts}"):
            return
        user = str(event["user"])
        thread = str(event.get("thread_ts") or ts)
        team = event_team(event, shared_channel, self.members.home)
        if self._outsider(team, Place(channel, thread, user), {"text": loggable(text)}):
            return
        origin = Origin("slack", user, f"{channel}-{ts}")
        self._run(
            self.bridge.begin(text, origin, channel, thread),
            Place(channel, thread, user),
            {"text": loggable(text)},
        )

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

    def handle_slash_command(self, payload: dict[str, Any]) -> None:
        """Answer `/igor ...` through its response URL (the bot may not be in the channel)."""
        user = str(payload.get("user_id", ""))
        channel = str(payload.get("channel_id", ""))
        trigger = str(payload.get("trigger_id") or payload.get("envelope_id") or "")
        url = ResponseUrl(str(payload.get("response_url", "")), self.env.monotonic)
        place = Place(channel, "", user, url, answer_by_url=True)
        origin = Origin("slack", user, trigger)
        text = str(payload.get("text", ""))
        if self._outsider(slash_team(payload), place, {"text": loggable(text), "via": "slash"}):
            return
        self._run(
            self.bridge.begin(text, origin, channel),
            place,
            {"text": loggable(text), "via": "slash"},
        )

    def _outsider(self, team: str | None, place: Place, fields: dict[str, Any]) -> bool:
        """Whether this person is not one whose commands and clicks count (members.py): then
        nothing is done, it is logged, and they are told why the first time."""
        if self.members.counts(team):
            return False
        audit.info(json.dumps({"event": "command", "user": place.user, "channel": place.channel,
                               **fields, "outcome": "refused", "reason": "not a member",
                               "team": team or "unknown"}))  # fmt: skip
        if self.members.first_telling(place.user):
            self.delivery.ephemeral(place, message(mrkdwn(self.members.why()), emoji=":no_entry:"))
        return True

    def hello(self, connections: int, own_before: int) -> None:
        """Slack's `hello` on a new connection: how many the app has (replicas.py)."""
        self.replicas.heard(connections, own_before)
        self.intake.submit(self.replicas.keep)

    def _run(self, step: Step, place: Place, fields: dict[str, Any] | None = None) -> None:
        """A reply now, or the rest of the work on a Cloud 66 worker (or "busy")."""
        if isinstance(step, Reply):
            self._deliver(step, place, fields)
            return
        work, queued = step, time.monotonic()

        def job() -> None:
            if time.monotonic() - queued > lines.LINE_SECONDS:  # too late: its asker moved on
                self._busy(place, fields, lines.too_late(work.name))
                return
            with self.takeover.command(place):
                self._deliver(work(), place, fields)

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
        audit.info(json.dumps({"event": "command", "user": place.user, "channel": place.channel,
                               **(fields or {}), "outcome": "busy"}))  # fmt: skip
        said = message(mrkdwn(why), emoji=":hourglass:")
        self.delivery.post(place, said, context={"command": "?", "outcome": "busy"})

    def _deliver(self, reply: Reply, place: Place, fields: dict[str, Any] | None) -> None:
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
                self._expire_later(place, ts, reply.pending, reply.command)

        self.delivery.post(place, said, context=context, on_posted=on_posted)
        if follow is not None and following is not None:
            self.takeover.follow(following, follow, place, context)
        self._announce_broken_glass(reply, place)
        self._tell_forced_holder(reply, place)

    def _announce_broken_glass(self, reply: Reply, place: Place) -> None:
        """A change posted during a freeze with --break-glass, told where the team sees it."""
        announce_broken_glass(self.delivery, self.env, self.bridge.rules.notify, reply, place)

    # -- holders of locks forced open (state/locks.py: ForcedUnlock) -------------------

    def _tell_forced_holder(self, reply: Reply, place: Place) -> None:
        """A lock forced open here in Slack (no notice was left for it): its holder is told
        in the thread they locked it in, unless this reply (which mentions them) is there."""
        notice = getattr(reply.outcome, "forced", None)
        held = holder_place(notice.lock) if notice is not None else None
        if notice is None or held is None:
            return
        here = (held.channel, held.thread) == (place.channel, place.thread)
        if here or held.channel == held.user:
            return  # this very thread, or their direct message: the reply's mention told them
        self._tell_holder(notice, held, name_holder=False)

    def _tell_notices(self) -> None:
        """Holders of locks forced open elsewhere (a shell): each told once, across replicas."""
        from igor_cli.state.locks import take_notices

        store = self.env.state_or_none()
        if store is None:
            return
        for notice in take_notices(store):
            held = holder_place(notice.lock)
            if held is not None:
                self._tell_holder(notice, held)

    def _tell_holder(self, notice: ForcedUnlock, place: Place, *, name_holder: bool = True) -> None:
        said = render_forced_unlock(notice, name_holder=name_holder)
        self.delivery.post(place, said, context={"command": "unlock", "outcome": "holder told"})
        audit.info(json.dumps({"event": "forced-unlock told", "user": notice.lock.holder_user,
                               "channel": place.channel, "stack": notice.lock.label,
                               "by": notice.by_user}))  # fmt: skip

    # -- deployments that bypass igor (chat/bypass.py) ------------------------------

    def _look_for_bypasses(self) -> None:
        """Now and then: tell holders whose locks were forced open elsewhere, and while
        stacks are locked or frozen, report deployments started outside igor."""
        if self.stopping.is_set():
            return
        from igor_cli.state.store import StateUnavailable

        def look() -> None:
            for what, step in (
                ("tell holders of forced locks", self._tell_notices),
                ("look for deployments outside igor", self._report_bypasses),
            ):
                try:
                    step()
                except StateUnavailable:
                    pass  # the store's outage is said once, by the store (state/health.py)
                except IgorError as error:  # Cloud 66 down, say: one line when it starts
                    if self._looked.get(what) != error.message:
                        log.warning("could not %s: %s", what, error.message)
                    self._looked[what] = error.message
                    continue
                except Exception:  # a bug here must not stop the bot: log it, with its trace
                    log.warning("could not %s", what, exc_info=True)
                self._looked.pop(what, None)

        # On a Cloud 66 worker, not the timer thread that expires questions; when
        # every worker is busy, this look is skipped.
        self.workers.submit(look)
        self.scheduler.call_later(BYPASS_CHECK_SECONDS, self._look_for_bypasses)

    def _report_bypasses(self) -> None:
        from igor_cli.chat.bypass import BYPASS_SECONDS, find_bypasses
        from igor_cli.freeze import any_freeze_now, freezes_from_config
        from igor_cli.state.locks import current_locks
        from igor_cli.state.posts import posted_by_igor

        store = self.env.state_or_none()
        if store is None:
            return
        locks = [lock for lock, _ in current_locks(store).values()]
        freezes = freezes_from_config(self.env.config(), str(self.env.config_path()))
        now = self.env.clock()
        if not locks and not any_freeze_now(freezes, now):
            return  # nothing held back: nothing to ask Cloud 66
        client = self.bridge.connect()
        try:
            found = find_bypasses(client, locks, freezes, now, partial(posted_by_igor, store))
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
        for bypass in found:
            if not store.claim(bypass.key, self.replica, BYPASS_SECONDS):
                continue  # reported already (here or by another replica)
            places = self._bypass_places(bypass)
            for place in places:
                said = render_bypass(bypass, self._cancel_offer(bypass, place))
                self.delivery.post(place, said, context={"command": "bypass", "outcome": "told"})
            if not places:
                log.warning("deployment %s of %s was started outside igor while it is held, "
                            "and nobody could be told: its lock was taken in a shell and "
                            "[slack] notify names no channel", bypass.deployment.id,
                            bypass.stack.label)  # fmt: skip
            audit.info(json.dumps({"event": "bypass", "stack": bypass.stack.label,
                                   "deployment": bypass.deployment.id,
                                   "triggered_by": bypass.deployment.triggered_by,
                                   "told": [p.channel for p in places]}))  # fmt: skip

    def _bypass_places(self, bypass: Bypass) -> list[Place]:
        """The lock holder's place, then the notify channel (once, if they are one)."""
        places = []
        held = holder_place(bypass.lock) if bypass.lock is not None else None
        if held is not None:
            places.append(held)
        notify = self.bridge.rules.notify
        if notify and not any((p.channel, p.thread) == (notify, "") for p in places):
            places.append(Place(notify, "", ""))
        return places

    def _cancel_offer(self, bypass: Bypass, place: Place) -> str:
        """The Cancel button's value for this place: the command that cancels exactly this
        deployment, signed, expiring ("" without a signing key: no button then)."""
        from igor_cli.chat.bypass import CANCEL_OFFER_SECONDS

        if self.bridge.signer is None:
            return ""
        offer = PendingCommand(
            bypass.cancel_words(), "", place.channel, place.thread, bypass.offer_id,
            expires=self.env.clock().timestamp() + CANCEL_OFFER_SECONDS,
            stack_uid=bypass.stack.uid, offered=True,
        )  # fmt: skip
        value = self.bridge.signer.sign(offer)
        return value if len(value) <= BUTTON_VALUE_LIMIT else ""  # the command, as text, then

    # -- confirmations -------------------------------------------------------

    def handle_click(self, payload: dict[str, Any]) -> None:
        """A confirmation button: only the requester's click counts, only once, only in time;
        and no click of anyone but a member (members.py)."""
        action = (payload.get("actions") or [{}])[0]
        user, channel, question_ts, url = self._clicked(payload)
        fields = {"command": "click", "action": str(action.get("action_id", ""))}
        if self._outsider(click_team(payload), Place(channel, "", user, url), fields):
            return
        if action.get("action_id") == CANCEL_OFFER_ACTION:
            self._cancel_clicked(payload, action)
            return
        if action.get("action_id") not in (CONFIRM_ACTION, DECLINE_ACTION):
            return
        value = str(action.get("value", ""))
        line: dict[str, Any] = {"event": "command", "user": user, "channel": channel,
                                "command": "confirmation"}  # fmt: skip
        try:
            pending = self._verify(value, offered=False)
        except ConfirmationExpired as late:
            place = Place(channel, late.pending.thread or question_ts, user, url)
            self._too_late(payload, late.pending, place, question_ts, line)
            return
        except BadConfirmation:
            place = Place(channel, "", user, url)
            self.delivery.ephemeral(place, "That button is not one igor made; nothing was done.")
            audit.info(json.dumps({**line, "outcome": "refused", "reason": "bad signature"}))
            return
        place = Place(channel, pending.thread or question_ts, user, url)
        line["command"] = pending.words[0] if pending.words else "confirmation"
        declining = action.get("action_id") == DECLINE_ACTION
        refused = self._not_theirs(pending, user, declining)
        if refused:
            self.delivery.ephemeral(place, refused)
            reason = "may not approve" if pending.approval else "not the requester"
            audit.info(json.dumps({**line, "outcome": "refused", "reason": reason}))
            return
        if not declining and self._cannot_confirm(pending, place, question_ts, line):
            return
        # A decision makes the value useless: the first one wins, whether the
        # second comes from a Slack retry, another client, or another replica
        # (which sees the question already replaced).
        key = pending.digest  # the signed content, however the value was spelled
        if (
            not self.decided.first_time(key)
            or not self._decided_here(key, pending)
            or self._answered_already(payload, channel, pending.thread, question_ts)
        ):
            self.delivery.ephemeral(
                place, "That question was already answered; nothing more was done."
            )
            audit.info(json.dumps({**line, "outcome": "refused", "reason": "already answered"}))
            return
        when = self.env.clock().strftime("%H:%M UTC")
        who = mrkdwn(mention(user))
        said = ("Rejected", "Approved") if pending.approval else ("Declined", "Confirmed")
        if declining:
            declined = f":heavy_multiplication_x: {said[0]} by {who} at {when}; nothing was done."
            self.delivery.replace(place, question_ts, message(declined))
            audit.info(json.dumps({**line, "outcome": "declined", "confirmation": "declined",
                                   "confirmed_by": user}))  # fmt: skip
            return
        self.delivery.replace(
            place, question_ts, message(f":white_check_mark: {said[1]} by {who} at {when}.")
        )
        # The command runs again from its words, as its requester: every check (rules,
        # the stack, busy, locked, frozen) is made anew before anything is posted.
        step = self.bridge.begin_confirmed(pending)
        typed = loggable(" ".join(pending.words))
        decided: dict[str, Any] = {"text": typed, "confirmation": "confirmed"}
        if pending.approval:
            decided.update(confirmation="approved", approved_by=user)
        self._run(step, place, decided)

    def _too_late(
        self,
        payload: dict[str, Any],
        pending: PendingCommand,
        place: Place,
        question_ts: str,
        line: dict[str, Any],
    ) -> None:
        """A click on a question whose time is up. A question decided, or already said to
        have expired, keeps its words (whatever was decided): the clicker alone is told.
        One still showing its buttons (its timer has not run yet) says it expired."""
        expired = ":hourglass: This request expired; nothing was done. Ask again if need be."
        if self._settled(pending):
            told = "That question was already answered; nothing more was done."
        elif self._answered_already(payload, place.channel, pending.thread, question_ts):
            told = expired
        else:
            self.delivery.replace(place, question_ts, message(expired))
            audit.info(json.dumps({**line, "outcome": "expired"}))
            return
        self.delivery.ephemeral(place, told)
        audit.info(json.dumps({**line, "outcome": "refused", "reason": "settled or expired"}))

    def _settled(self, pending: PendingCommand) -> bool:
        """Whether a decision on this button is on record in the state store."""
        from igor_cli.errors import IgorError

        try:
            return self.env.state().get(USED_PREFIX + pending.digest) is not None
        except IgorError:
            return False  # then Slack's copy of the question tells (`_answered_already`)

    def _clicked(self, payload: dict[str, Any]) -> tuple[str, str, str, ResponseUrl]:
        """Who clicked, in which channel, on which message, and the click's response_url."""
        user = str((payload.get("user") or {}).get("id", ""))
        container = payload.get("container") or {}
        channel = str(container.get("channel_id") or (payload.get("channel") or {}).get("id", ""))
        shown_ts = str(container.get("message_ts") or (payload.get("message") or {}).get("ts"))
        url = ResponseUrl(str(payload.get("response_url") or ""), self.env.monotonic)
        return user, channel, shown_ts, url

    def _not_theirs(self, pending: PendingCommand, user: str, declining: bool) -> str:
        """Why this person's click does not count ("" when it does)."""
        requester = mrkdwn(mention(pending.user))
        if not pending.approval:
            return "" if user == pending.user else f"Only {requester} can confirm this."
        if declining and user == pending.user:
            return ""  # the requester may withdraw their own request
        if self.bridge.rules.may_approve(user, pending.user):
            return ""
        if user == pending.user:
            return "Someone else must approve your own request; you may reject it."
        approvers = " or ".join(mrkdwn(mention(a)) for a in sorted(self.bridge.rules.approvers))
        return f"Only {approvers} can approve this."

    def _cannot_confirm(
        self, pending: PendingCommand, place: Place, question_ts: str, line: dict[str, Any]
    ) -> bool:
        """While a confirmed change cannot be done (the state store), the question says so
        instead of "Confirmed", and nothing runs."""
        why = self.bridge.not_now(pending.words)
        if why:
            self.delivery.replace(place, question_ts, message(mrkdwn(why), emoji=":warning:"))
            audit.info(json.dumps({**line, "outcome": "refused", "reason": "state store"}))
        return bool(why)

    def _decided_here(self, key: str, pending: PendingCommand) -> bool:
        """Whether this click is the first decision on its button, across every replica
        sharing the state store (a used button is kept until it would have expired)."""
        left = max(0.0, pending.expires - self.env.clock().timestamp())
        try:  # kept long after it expires: a late click finds its decision (`_settled`)
            store = self.env.state_or_none()
            return store is None or store.claim(
                USED_PREFIX + key, self.replica, left + USED_SECONDS
            )
        except IgorError as error:
            log.warning("state store: %s (the click is checked on Slack only)", error.message)
            return True

    def _verify(self, value: str, *, offered: bool) -> PendingCommand:
        """The signed command in a button, if igor made it for this kind of button (a
        question's value never runs as an offer, nor an offer's as a question)."""
        if self.bridge.signer is None:
            raise BadConfirmation("This bot asks no confirmations.")
        pending = self.bridge.signer.verify(value, self.env.clock().timestamp())
        if pending.offered != offered:
            raise BadConfirmation("That button's value belongs to another button.")
        return pending

    def _cancel_clicked(self, payload: dict[str, Any], action: dict[str, Any]) -> None:
        """The Cancel button on a report of a deployment that bypassed igor: whoever the
        rules let cancel there cancels exactly that deployment, once across replicas."""
        user, channel, shown_ts, url = self._clicked(payload)
        line: dict[str, Any] = {"event": "command", "user": user, "channel": channel,
                                "command": "cancel", "via": "bypass button"}  # fmt: skip
        try:
            offer = self._verify(str(action.get("value", "")), offered=True)
        except BadConfirmation as problem:
            expired = isinstance(problem, ConfirmationExpired)
            self.delivery.ephemeral(
                Place(channel, "", user, url),
                "That Cancel button has expired; nothing was done. `cancel` still works."
                if expired
                else "That button is not one igor made; nothing was done.",
            )
            reason = "expired" if expired else "bad signature"
            audit.info(json.dumps({**line, "outcome": "refused", "reason": reason}))
            return
        place = Place(channel, offer.thread or shown_ts, user, url)
        # The click runs the offered command as the clicker, from where they clicked:
        # the rules decide now whether they may cancel on that stack and environment.
        clicked = dataclasses.replace(offer, user=user, channel=channel, thread=place.thread)
        step = self.bridge.begin_confirmed(clicked)
        fields = {"text": loggable(" ".join(offer.words)), "via": "bypass button"}
        if isinstance(step, Reply):  # refused by the rules (or unusable): nothing is claimed
            self._deliver(step, place, fields)
            return
        key = "cancel:" + offer.request_id  # one click per deployment, whichever place
        if not self.decided.first_time(key) or not self._decided_here(key, offer):
            self.delivery.ephemeral(
                place, "Someone already pressed Cancel on that deployment; nothing more was done."
            )
            audit.info(json.dumps({**line, "outcome": "refused", "reason": "already used"}))
            return
        when = self.env.clock().strftime("%H:%M UTC")
        note = f":octagonal_sign: {mrkdwn(mention(user))} pressed Cancel at {when}."
        shown = payload.get("message")
        said = without_buttons(shown, note) if isinstance(shown, dict) else message(note)
        self.delivery.replace(place, shown_ts, said)
        self._run(step, place, fields)

    def _answered_already(
        self, payload: dict[str, Any], channel: str, thread: str, question_ts: str
    ) -> bool:
        """Whether the question no longer shows its buttons (another replica decided)."""
        shown = payload.get("message")
        if isinstance(shown, dict) and shown.get("ts") == question_ts and not has_buttons(shown):
            return True
        current = self._read_back(channel, thread or question_ts, question_ts)
        return current is not None and not has_buttons(current)

    def _read_back(self, channel: str, thread: str, ts: str) -> dict[str, Any] | None:
        """The message as Slack shows it now, or None when it cannot be read."""
        from slack_sdk.errors import SlackApiError

        try:
            # conversations.replies puts the thread's parent first, and `limit`
            # counts it: ask for two to see the question itself.
            found = self.web.conversations_replies(
                channel=channel, ts=thread, oldest=ts, latest=ts, inclusive=True, limit=2
            )
        except (SlackApiError, OSError) as error:
            log.info("could not read a question back from Slack (%s)", type(error).__name__)
            return None
        messages: list[dict[str, Any]] = found.get("messages", [])
        return next((m for m in messages if m.get("ts") == ts), None)

    def _expire_later(self, place: Place, ts: str, pending: PendingCommand, command: str) -> None:
        """When the time is up and nobody answered, say so on the question itself."""
        delay = max(0.0, pending.expires - self.env.clock().timestamp())

        def expire() -> None:
            if self.stopping.is_set():
                return
            current = self._read_back(place.channel, place.thread, ts)
            if current is None or not has_buttons(current) or self._settled(pending):
                return  # answered, here or on another replica (whatever Slack still shows)
            self.delivery.replace(
                Place(place.channel, place.thread, place.user), ts,
                message(":hourglass: Nobody confirmed within the time; nothing was done."),
            )  # fmt: skip
            audit.info(json.dumps({"event": "command", "user": pending.user,
                                   "channel": place.channel, "command": command,
                                   "outcome": "expired", "confirmation": "expired"}))  # fmt: skip

        self.scheduler.call_later(delay, expire)

    def _log(self, reply: Reply, place: Place) -> None:
        line: dict[str, Any] = {"event": "command", "user": place.user, "channel": place.channel}
        if reply.command:  # a usage error may name no command: the typed text says what it was
            line["command"] = reply.command
        line.update(reply.fields)
        line["outcome"] = reply.status
        audit.info(json.dumps(line, sort_keys=False))
