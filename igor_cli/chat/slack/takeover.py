"""What a bot replica leaves in the state store, and what it takes over from the others.

Two records make a replica's work outlive it (both kept by `chat/leases.py` and
`chat/intents.py`): the follow jobs of threads waiting for a deployment's
outcome, and the intents of deploy POSTs. Every `RENEW_SECONDS` each replica
renews its heartbeat and its leases (stopping the follows whose lease it could
not keep), checks that the store is the one it knew (a reset is said in the log
once), and takes over the follows nobody holds and the intents whose replica is
gone: a thread hears what became of its deploy, once, whichever replica tells it
(whoever tells takes the intent out of the store first: `Intents.tell`, `settle`). A
replica that is stopping keeps its heartbeat until it hands over: what it still tells
itself is not taken over meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from igor_cli.chat.bridge import Reply
from igor_cli.chat.follow import Followers, News, Watcher
from igor_cli.chat.intents import Intent, Intents, Settled
from igor_cli.chat.intents import Place as Answering
from igor_cli.chat.leases import RENEW_SECONDS, FollowJob, FollowLeases
from igor_cli.chat.slack.delivery import Delivery, Place
from igor_cli.chat.slack.updates import Updater
from igor_cli.chat.workers import Scheduler, Workers
from igor_cli.core.follow import Followed, seconds_running
from igor_cli.errors import IgorError
from igor_cli.features.deploy import DeployOutcome, DeployResult
from igor_cli.render.slack import SlackMessage, render_news

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Stack
    from igor_cli.config import Environment

log = logging.getLogger("igor.serve")

Deliver = Callable[[Reply, Place, dict[str, Any]], None]
# Why a deploy's thread hears of it late: its igor is gone (stopped, or out of touch with
# the store so long that its heartbeat lapsed), or it is this igor, whose store did not
# answer when the reply was due (the reply waits rather than risk telling it twice).
TAKEN_OVER = (
    "igor was stopped while Cloud 66 answered this {what} (or lost the state store); "
    "another igor asked Cloud 66 what became of it."
)
TOLD_LATE = (
    "The state store did not answer when Cloud 66 answered this {what}, so its reply "
    "waited; igor asked Cloud 66 again what became of it."
)


@dataclass
class Message:
    """A message that says how a deployment goes: its ts once it is posted, and the follow
    job that names it for whoever tells the outcome."""

    channel: str
    ts: str = ""
    job: FollowJob | None = None
    shared: bool = False  # the job is in the store (not this replica's alone)


class Takeover:
    """A replica's follows and intents in the store, and what it takes over (see the module)."""

    def __init__(
        self,
        env: Environment,
        replica: str,
        *,
        connect: Callable[[], Cloud66Client],
        followers: Followers,
        delivery: Delivery,
        updates: Updater,
        workers: Workers,
        scheduler: Scheduler,
        deliver: Deliver,
        stopping: threading.Event,
    ) -> None:
        self.env = env
        self.connect = connect
        self.followers = followers
        self.delivery = delivery
        self.updates = updates
        self.workers = workers
        self.scheduler = scheduler
        self.deliver = deliver
        self.stopping = stopping
        self.leases = FollowLeases(env.state_or_none, replica, self._generation)
        self.intents = Intents(env.state_or_none, replica, generation=self._generation)
        self._settling: set[str] = set()  # intents being settled on a worker here
        self._lock = threading.Lock()

    def _generation(self) -> str:
        store = self.env.state_or_none()
        return "" if store is None else self.env.continuity(store).generation()

    # -- a chat command on a worker ------------------------------------------------------

    @contextmanager
    def command(self, place: Place) -> Iterator[None]:
        """Run a command whose deploy POSTs are recorded as intents; they are finished once
        its reply is out. A command that fails unexpectedly leaves them to be settled."""
        with self.intents.command(Answering(place.channel, place.thread, place.user)) as done:
            try:
                yield
            except BaseException:
                self.intents.abandoned(done.recorded)
                raise
        if done.recorded:
            self.delivery.then(place, lambda: self.intents.finished(done.recorded))

    def telling(self) -> bool:
        """Whether the reply of the command on this thread may be posted now: True for one
        that recorded no intent; otherwise its intents were taken out of the store first
        (`Intents.tell`). False: another replica tells the thread, or the store cannot say
        now (it is told once the store answers): nothing is posted, nothing followed."""
        command = self.intents.current()
        return command is None or not command.recorded or self.intents.tell(command)

    def finish_posts(self, until: float) -> None:
        """Stopping: wait (until `until`, monotonic) for the deploy POSTs out now, and for
        the replies they make; what is still out then is handed over through its intent."""
        import time

        if not self.intents.wait_posted(until):
            log.info("a deploy POST is still out; another igor tells its thread once it knows")
        self.workers.wait_idle(max(0.0, until - time.monotonic()))

    def hand_over(self) -> None:
        """Stopping: let the other replicas take over what is left here, at once."""
        self.intents.hand_over()

    # -- following the deployment a reply started -----------------------------------------

    def record(self, follow: Followed, place: Place) -> Message:
        """Record that a reply's place waits for the deployment it is about, before the reply
        goes out; returns the message that will say how it goes (see `posted`, `follow`)."""
        job = FollowJob.of(
            follow.stack, follow.action_id, place.channel, place.thread, place.user,
            follow.what, follow.doing,
        )  # fmt: skip
        said = Message(place.channel, job=job)
        said.shared = self.leases.wait_for(job)
        return said

    def follow(
        self, said: Message, follow: Followed, place: Place,
        context: dict[str, Any],
    ) -> None:  # fmt: skip
        """Follow it from here, once the reply is on its way (so the outcome comes after
        it), unless another replica holds it (the place hears through its job then)."""
        job = said.job
        assert job is not None
        if said.shared and not self.leases.hold(job.deployment):
            return
        editable = None if place.answer_by_url else said
        watcher = self._watcher(job, place, said.shared, editable, context)
        self.followers.watch(follow.stack, follow.action_id, watcher,
                             seconds_running(follow, self.env.clock()))  # fmt: skip

    def posted(self, said: Message, ts: str) -> None:
        """The reply is posted: whoever tells the outcome edits it (this replica or another)."""
        said.ts = ts
        if said.job is not None and ts:
            said.job = self.leases.noted(said.job, ts)

    def _watcher(
        self,
        job: FollowJob,
        place: Place,
        shared: bool,
        said: Message | None,
        context: dict[str, Any],
    ) -> Watcher:
        outcome_context = {**context, "outcome": "follow-up"}

        def post(news: News) -> None:
            self.delivery.post(place, render_news(news), context=outcome_context)

        def edit(message: SlackMessage) -> None:
            if said is not None and said.ts:
                self.delivery.update(said.channel, said.ts, message)

        def update(news: News) -> None:
            self.updates.offer(edit, render_news(news), final=news.final)

        self.leases.watching(job, shared=shared)
        return Watcher(
            job.user, post, update if said is not None else None, place.key, job.what,
            doing=job.doing, claim=(lambda: self.leases.claim(job)) if shared else None,
            done=lambda _news: self.leases.let_go(job if shared else None, job.deployment),
        )  # fmt: skip

    # -- every few seconds --------------------------------------------------------------

    def tend(self) -> None:
        """Heartbeat and leases renewed; the store checked; what nobody follows or tells,
        taken over. Then again in `RENEW_SECONDS`."""
        if self.stopping.is_set():
            # Alive until handed over: a deploy this replica still tells is not taken over.
            if self.intents.beat():
                self.scheduler.call_later(RENEW_SECONDS, self.tend)
            return
        try:
            self.intents.beat()
            self._check_store()
            for deployment in self.leases.renew():
                stack_uid, _, action_id = deployment.partition(":")
                self.followers.drop(stack_uid, action_id, lambda w: w.claim is not None)
            self.leases.resume()
            for deployment, jobs in self.leases.orphans().items():
                if self.stopping.is_set() or not self.leases.hold(deployment):
                    continue
                log.info("following %s for %d thread(s) no replica follows", deployment,
                         len(jobs))  # fmt: skip
                for job in jobs:
                    self._follow_for(job)
            for intent in self.intents.orphans():
                self._settle_later(intent)
        finally:
            if not self.stopping.is_set():
                self.scheduler.call_later(RENEW_SECONDS, self.tend)

    def _check_store(self) -> None:
        """A store that was reset is noticed (and said in the log) even when nobody asks
        for a change: the sooner it is marked, the sooner every igor refuses changes."""
        with suppress(IgorError):  # unreachable: said by the store, once (state/health.py)
            self._generation()

    def _follow_for(self, job: FollowJob) -> None:
        place = Place(job.channel, job.thread, job.user)
        # The replica that took it over edits the "deploy started" message too.
        said = Message(job.channel, job.message) if job.message else None
        watcher = self._watcher(job, place, True, said, {"command": "deploy"})
        self.followers.watch(job.stack(), job.action_id, watcher)

    # -- intents whose replica is gone ---------------------------------------------------

    def _settle_later(self, intent: Intent) -> None:
        with self._lock:
            if intent.id in self._settling or self.intents.posting_here(intent):
                return
            self._settling.add(intent.id)

        def settle() -> None:
            try:
                self._settle(intent)
            finally:
                with self._lock:
                    self._settling.discard(intent.id)

        if not self.workers.submit(settle):
            with self._lock:
                self._settling.discard(intent.id)

    def _settle(self, intent: Intent) -> None:
        client = self.connect()
        try:
            settled = self.intents.settle(intent, client)
            if settled is None:
                return
            stack = client.stack(intent.stack_uid)
        except IgorError as error:
            log.info("could not tell yet what became of a deploy of %s (%s)", intent.stack_uid,
                     error.message)  # fmt: skip
            return
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
        place = Place(intent.channel, intent.thread, intent.user)
        fields = {"via": "takeover", "stack": stack.name, "environment": stack.environment}
        mine = intent.replica == self.intents.replica
        if intent.operation:
            reply = _operation_told(settled, stack, mine, fields)
        elif settled.action_id:
            result = DeployResult.QUEUED if settled.queued else DeployResult.STARTED
            outcome = DeployOutcome(result, stack, action_id=settled.action_id,
                                    started_at=settled.started_at)  # fmt: skip
            reply = Reply("ok", "deploy", outcome=outcome, note=_late(mine, "deploy"),
                          fields={**fields, "result": result.value})  # fmt: skip
        else:
            text = (
                f"Your deploy of {stack.label} was not started: {_why_late(mine)}, and "
                "Cloud 66 has no deployment for it. Nothing was deployed; ask again if need be."
            )
            reply = Reply("failed", "deploy", notice=text, fields={**fields, "result": "none"})
        log.info("told the thread of an intent left by %s: %s", intent.replica,
                 reply.fields.get("result", ""))  # fmt: skip
        self.deliver(reply, place, fields)


def _operation_told(settled: Settled, stack: Stack, mine: bool, fields: dict[str, Any]) -> Reply:
    """What a thread is told of a stack action's POST whose reply its igor could not give:
    started (then followed, as the reply would have), or not known: Cloud 66 takes no
    reference for a stack action, so no later look can tell which action was igor's."""
    from igor_cli.features.operations import OperationOutcome, OperationResult, posted_as

    intent = settled.intent
    operation = posted_as(intent.operation, intent.value)
    asked = (
        operation.said(stack, intent.service)
        if operation
        else f"run {intent.operation} on {stack.label}"  # a newer igor's operation
    )
    if settled.action_id and operation is not None:
        outcome = OperationOutcome(OperationResult.STARTED, operation, stack, intent.service,
                                   action_id=settled.action_id)  # fmt: skip
        return Reply("ok", operation.name, outcome=outcome, note=_late(mine, operation.name),
                     fields={**fields, "result": "started"})  # fmt: skip
    where = f" ({stack.dashboard_url})" if stack.dashboard_url else ""
    text = (
        f"Whether igor's request to {asked} started is not known: {_why_late(mine)}, and "
        "Cloud 66 "
        "takes no reference for a stack action that would let igor find it. See the "
        f"stack's recent activity in Cloud 66{where} before asking again."
    )
    return Reply("failed", operation.name if operation else "operation", notice=text,
                 fields={**fields, "result": "unknown"})  # fmt: skip


def _late(mine: bool, what: str) -> str:
    """The note on a POST's reply told late: by its own igor (`mine`), or taken over."""
    return (TOLD_LATE if mine else TAKEN_OVER).format(what=what)


def _why_late(mine: bool) -> str:
    """Why a POST's thread hears of it late, within a sentence."""
    if mine:
        return "the state store did not answer when Cloud 66 did, so this reply waited"
    return "igor was stopped (or lost the state store) while it asked Cloud 66"
