"""The Slack bot: what each transport hands it, routed to the job that answers it.

Every envelope is acked by its transport (transports/) before it reaches
`dispatch`, which reads it into one `SlackRequest` (envelope.py) on an intake
thread and hands it to its job: a message or slash command to `Commands`
(dispatch.py), a button to `Clicks` (clicks.py). The periodic look for
deployments that bypass igor is `BypassWatch` (bypass_watch.py). This module
makes the parts they share (the bridge, the workers, delivery, the follow loops,
takeover) and stops them in order.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from igor_cli.chat.bridge import Bridge, Reply
from igor_cli.chat.follow import Followers
from igor_cli.chat.guard import Rules, Signer
from igor_cli.chat.live_rules import LiveRules
from igor_cli.chat.slack.bypass_watch import BypassWatch
from igor_cli.chat.slack.clicks import Clicks
from igor_cli.chat.slack.delivery import Delivery, Place
from igor_cli.chat.slack.dispatch import Commands
from igor_cli.chat.slack.envelope import Transport, read_click, read_message, read_slash
from igor_cli.chat.slack.members import Membership
from igor_cli.chat.slack.questions import Questions
from igor_cli.chat.slack.replicas import Replicas
from igor_cli.chat.slack.takeover import Takeover
from igor_cli.chat.slack.tokens import Identity
from igor_cli.chat.slack.updates import Updater
from igor_cli.chat.slack.users import SlackNames
from igor_cli.chat.workers import Scheduler, Workers
from igor_cli.config import Environment
from igor_cli.core.follow import FollowPolicy

if TYPE_CHECKING:
    from igor_cli.chat.slack.transports.events_http import Take
    from igor_cli.chat.slack.web import SlackWeb
    from igor_cli.cloud66.client import Cloud66Client

log = logging.getLogger("igor.serve")

WORKERS = 32  # Cloud 66 workers: a slow Cloud 66 (100 ms a request) is waited on side by side
QUEUE_LIMIT = 400  # commands waiting for a worker; beyond that: "busy, try again"
INTAKE_THREADS = 2
SHUTDOWN_SECONDS = 8.0  # SIGTERM to exit stays under 10 s
# The bot polls three times less often than a shell's --follow: every 15 s by
# default, no faster than the official client; it shares one token with everyone.
FOLLOW_SLOWER = 3.0
FOLLOW_HOURLY_BUDGET = 1800.0  # of the token's 3,000 requests an hour, for all follow loops


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
    """Slack's payloads (either transport) -> one `SlackRequest` -> the job that answers it."""

    def __init__(
        self,
        env: Environment,
        web: SlackWeb,
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
        # Who claims posts and holds leases: unique even for two bots in one process.
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        env.replica = env.replica or self.replica
        self.intake = Workers("igor-intake", INTAKE_THREADS, 1_000_000)
        self.workers = Workers("igor-cmd", workers, queue_limit)
        self.takeover = Takeover(
            env, self.replica, connect=self.bridge.connect, followers=self.followers,
            delivery=self.delivery, updates=self.updates, workers=self.workers,
            scheduler=self.scheduler, deliver=self._deliver, stopping=self.stopping,
        )  # fmt: skip
        self.questions = Questions(
            env, web, self.delivery, self.scheduler, self.stopping, self.replica
        )
        self.commands = Commands(
            env, self.bridge, members=self.members, delivery=self.delivery, names=self.names,
            questions=self.questions, takeover=self.takeover, workers=self.workers,
            scheduler=self.scheduler, live=self.live, stopping=self.stopping,
            replica=self.replica,
        )  # fmt: skip
        self.clicks = Clicks(self.commands, self.questions)
        self.bypass_watch = BypassWatch(
            env, self.bridge, delivery=self.delivery, workers=self.workers,
            scheduler=self.scheduler, stopping=self.stopping, replica=self.replica,
        )  # fmt: skip
        self.scheduler.call_later(0.0, self.takeover.tend)  # resume what a restart left
        self.bypass_watch.start()

    # -- from the transports -------------------------------------------------------

    def taker(self, transport: Transport) -> Take:
        """What `transport` hands each acked envelope to: `dispatch`, naming the transport."""
        return lambda kind, payload: self.dispatch(kind, payload, transport)

    def dispatch(self, kind: str, payload: dict[str, Any], transport: Transport) -> bool:
        """Take one acked envelope's payload (never blocks the transport): it is read into a
        `SlackRequest` and answered on an intake thread. False when the bot is stopping and
        took nothing (an HTTP transport then answers 503: Slack retries)."""
        if self.stopping.is_set():
            return False
        if kind == "events_api":
            event = payload.get("event") or {}
            shared = bool(payload.get("is_ext_shared_channel"))  # Slack Connect (members.py)
            return self.intake.submit(lambda: self._message(event, shared, transport))
        clock = self.env.monotonic  # a response URL's age
        if kind == "slash_commands":
            return self.intake.submit(
                lambda: self.commands.slash(read_slash(payload, clock, transport))
            )
        if kind == "interactive" and payload.get("type") == "block_actions":
            return self.intake.submit(
                lambda: self.clicks.click(read_click(payload, clock, transport))
            )
        return True  # nothing igor answers: taken, and dropped

    def _message(self, event: dict[str, Any], shared: bool, transport: Transport) -> None:
        request = read_message(event, shared, self.identity, transport)
        if request is not None:  # else nothing for igor (another bot's, an edit, ...)
            self.commands.message(request)

    def hello(self, connections: int, own_before: int) -> None:
        """Slack's `hello` on a new connection: how many the app has (replicas.py)."""
        self.replicas.heard(connections, own_before)
        self.intake.submit(self.replicas.keep)

    def _deliver(self, reply: Reply, place: Place, fields: dict[str, Any]) -> None:
        """A command takeover resumed, answered as any other (`Commands` is made after it)."""
        self.commands.deliver(reply, place, fields)

    def _connect(self) -> Cloud66Client:
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
