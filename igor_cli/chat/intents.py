"""Deploys asked of Cloud 66 by a replica that may not live to tell their thread.

Slack never delivers an acked message again, so a bot replica that dies while a
deploy POST is out would leave a deployment nobody hears of. Before each deploy
POST made for a chat command, the replica records an intent in the state store,
`intent:<id>`: the stack, the `user_reference`, where to answer and who asked;
after it, Cloud 66's answer (the async action). Whoever tells the thread takes the
intent out of the store first (compare-and-delete, after the follow is recorded,
`chat/leases.py`) and tells it only if that worked: a replica whose intent was taken
over meanwhile (its heartbeat lapsed while it was stopping, starved or cut off from
the store) says nothing, and neither does one that cannot reach the store then (the
intent stays, and is told once the store answers). Deleting before posting, not
after, is the choice of "once" over "at least once": a replica killed between the
two leaves the "deploy started" reply unsaid, but its outcome is still told through
the follow recorded before.

Each replica keeps a heartbeat, `replica:<id>`, renewed with the follow leases.
A replica that starts, or that finds an intent whose replica has no heartbeat,
takes it over (compare-and-delete on the record: one replica does) and asks
Cloud 66 by the `user_reference` whether the deployment exists: then the thread
is told it started and its outcome is followed; if Cloud 66 has none once a POST
could no longer be answered (`POST_SECONDS`), the thread is told it was not
started. A POST is never sent again.

A stack action's POST (restart, maintenance mode, ...) is recorded the same way, but
Cloud 66 takes no `user_reference` for it: when its answer was recorded, the thread is
told the action started and its outcome is followed; when it was not, nothing can tell
which action is igor's, and the thread is told so (where to look), not told a guess.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from igor_cli.errors import IgorError
from igor_cli.state.store import StateUnavailable, refusing_changes

if TYPE_CHECKING:
    from datetime import datetime

    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import AsyncAction, DeployResponse
    from igor_cli.state.store import Store

log = logging.getLogger("igor.intents")

INTENT_PREFIX = "intent:"
REPLICA_PREFIX = "replica:"
HEARTBEAT_SECONDS = 30.0  # a replica that has not renewed its heartbeat for this long is gone
INTENT_SECONDS = 86400.0  # an intent nobody could finish within a day is not told late
# Longer than a deploy POST can take (the client's connect and read timeouts, 5 s and
# 30 s): after this, a deployment Cloud 66 does not know of was not started.
POST_SECONDS = 40.0


@dataclass(frozen=True)
class Place:
    """Where a chat command answers: the channel, its thread, who asked."""

    channel: str
    thread: str
    user: str


@dataclass(frozen=True)
class Intent:
    """One deploy (or stack action) POST for a chat command, and what Cloud 66 answered
    (once it did)."""

    id: str
    stack_uid: str
    user_reference: str
    channel: str
    thread: str
    user: str
    replica: str  # who posts it, or who took it over
    at: float  # when it was recorded (seconds since the epoch: replicas compare it)
    action_id: str = ""  # Cloud 66's answer, once there is one
    queued: bool = False
    answered: bool = False
    # A stack action's POST (none for a deploy): Cloud 66's `command`, its `value` and
    # `service_name`, as posted.
    operation: str = ""
    value: str = ""
    service: str = ""

    @property
    def key(self) -> str:
        """Where it is kept."""
        return INTENT_PREFIX + self.id

    def dumps(self) -> str:
        """The intent as the store keeps it."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Intent | None:
        """An intent read back; None for anything igor did not write."""
        try:
            data = json.loads(text)
            names = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in names})
        except (ValueError, TypeError, AttributeError):
            return None


@dataclass(frozen=True)
class Settled:
    """An orphan intent taken over: the deployment it started ("" when none)."""

    intent: Intent
    action_id: str
    queued: bool = False
    started_at: datetime | None = None


@dataclass
class Command:
    """One chat command on a worker: where it answers, and the intents it recorded."""

    place: Place
    recorded: list[Intent] = field(default_factory=list)
    posting: int = 0  # its POSTs still out
    generation: str = ""  # the store's marker when its first intent was recorded


class Intents:
    """This replica's intents and heartbeat, and the takeover of other replicas' intents."""

    def __init__(
        self,
        store: Callable[[], Store | None],
        replica: str,
        wall: Callable[[], float] = time.time,
        generation: Callable[[], str] = lambda: "",
    ) -> None:
        """`generation`: which store this is (its marker, `state/continuity.py`): an intent
        missing from a store that was reset since it was recorded was lost, not told."""
        self._store = store
        self.replica = replica
        self._wall = wall
        self._generation = generation
        self._handed_over = False  # stopping, and the heartbeat dropped: never renewed again
        self._beating = threading.Lock()
        self._here = threading.local()  # the command running on this worker thread
        self._posting = 0  # POSTs out now, on every worker
        self._mine: set[str] = set()  # intents of commands running here (not to take over)
        self._changed = threading.Condition()

    # -- a command's POSTs -------------------------------------------------------------

    @contextmanager
    def command(self, place: Place) -> Iterator[Command]:
        """Run one chat command on this thread: its deploy POSTs record intents for `place`."""
        command = Command(place)
        self._here.command = command
        try:
            yield command
        finally:
            self._here.command = None

    def recording(self, client: Cloud66Client) -> Cloud66Client:
        """`client`, whose deploy POSTs for a chat command are recorded as intents."""
        return cast("Cloud66Client", _Recording(client, self))

    def current(self) -> Command | None:
        """The command running on this thread, if any."""
        return cast("Command | None", getattr(self._here, "command", None))

    def begin(
        self, command: Command, stack_uid: str, user_reference: str, *,
        operation: str = "", value: str = "", service: str = "",
    ) -> Intent:  # fmt: skip
        """Record the intent before its POST; a store that cannot take it stops the POST.
        A stack action's: its `operation`, `value` and `service` (see `Intent`)."""
        place = command.place
        intent = Intent(
            uuid.uuid4().hex, stack_uid, user_reference, place.channel, place.thread, place.user,
            self.replica, self._wall(), operation=operation, value=value, service=service,
        )  # fmt: skip
        with self._changed:
            self._mine.add(intent.id)  # before it is in the store: never an orphan here
        try:
            store = self._store()
            if store is not None:
                generation = command.generation or self._generation()  # before: no half-record
                store.claim(intent.key, intent.dumps(), INTENT_SECONDS)
                command.generation = generation
        except IgorError as error:
            self.abandoned([intent])
            if isinstance(error, StateUnavailable):
                raise refusing_changes(error) from None
            raise
        command.recorded.append(intent)
        with self._changed:
            self._posting += 1
            command.posting += 1
        return intent

    def answered(
        self, command: Command, intent: Intent, action_id: str | None, queued: bool = False
    ) -> None:
        """The POST came back with the async action it started (`action_id`), or None when
        it raised: record what it said."""
        with self._changed:
            self._posting -= 1
            command.posting -= 1
            self._changed.notify_all()
        if action_id is None:
            return  # what happened is said in the reply; the intent goes once it is out
        done = dataclasses.replace(intent, action_id=action_id, queued=queued, answered=True)
        index = command.recorded.index(intent)
        if self._quietly("recording Cloud 66's answer",
                         lambda s: s.swap(intent.key, intent.dumps(), done.dumps(),
                                          INTENT_SECONDS)):  # fmt: skip
            command.recorded[index] = done

    def tell(self, command: Command) -> bool:
        """Whether the command may tell its thread what its deploy POSTs did, now: its intents
        are taken out of the store first (compare-and-delete), so that no other replica
        tells them too. False when another replica took one over (it tells the thread), or
        the store cannot say (they stay, and are told once it answers: by whoever looks
        for orphans, this replica included). Either way they are no longer the command's."""
        recorded, command.recorded = list(command.recorded), []
        try:
            store = self._store()
            taken = [] if store is None else [self._take(store, command, i) for i in recorded]
            told = all(taken)  # every one tried: none is left half-told in the store
        except IgorError as error:  # the outage itself is said once (state/health.py)
            log.info("state store: %s (a deploy's reply waits for it)", error.message)
            told = False
        self.abandoned(recorded)
        return told

    def _take(self, store: Store, command: Command, intent: Intent) -> bool:
        """This command's intent out of the store, as this replica knows it or as the store
        has it (its answer recorded though the store's reply was lost), while it is still
        this replica's; or gone with a store that was reset since it was recorded."""
        if store.release(intent.key, intent.dumps()):
            return True
        text = store.get(intent.key)
        stored = Intent.loads(text) if text is not None else None
        if text is not None and stored is not None and stored.replica == self.replica:
            return store.release(intent.key, text)
        if text is None and command.generation and self._generation() != command.generation:
            log.info("the state store lost the intent of a deploy of %s: telling it here",
                     intent.stack_uid)  # fmt: skip
            return True
        log.info("another igor took over the deploy of %s: it tells the thread",
                 intent.stack_uid)  # fmt: skip
        return False

    def finished(self, intents: list[Intent]) -> None:
        """The replies are out and the follows recorded: the intents are done."""
        for intent in intents:
            self._quietly("finishing an intent", _release(intent))
        self.abandoned(intents)

    def abandoned(self, intents: list[Intent]) -> None:
        """No command here tells these any more: whoever looks for orphans settles them
        (this replica included)."""
        with self._changed:
            self._mine.difference_update(intent.id for intent in intents)

    def posting_here(self, intent: Intent) -> bool:
        """Whether a command running here still tells this intent's thread itself."""
        with self._changed:
            return intent.id in self._mine

    def wait_posted(self, until: float) -> bool:
        """Wait (until `until`, monotonic) for the POSTs out now; True when none is left."""
        with self._changed:
            while self._posting:
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    # -- replicas ----------------------------------------------------------------------

    def beat(self) -> bool:
        """Renew this replica's heartbeat (claimed again if it lapsed); False once it was
        handed over (stopping: never renewed again)."""
        key = REPLICA_PREFIX + self.replica

        def beat(store: Store) -> bool:
            return store.renew(key, self.replica, HEARTBEAT_SECONDS) or store.claim(
                key, self.replica, HEARTBEAT_SECONDS
            )

        with self._beating:
            if self._handed_over:
                return False
            self._quietly("renewing this replica's heartbeat", beat)
        return True

    def hand_over(self) -> None:
        """Stopping: drop the heartbeat, so that what is left here is taken over at once."""
        key = REPLICA_PREFIX + self.replica
        with self._beating:  # a renewal running now would claim it again
            self._handed_over = True
            self._quietly("handing over", lambda s: s.release(key, self.replica))

    def orphans(self) -> list[Intent]:
        """Intents nobody tells: their replica is gone, or it is this one and no command
        here tells them (taken over, or left by a command that failed). Heartbeats are
        read first: a replica that finishes normally deletes its intents before its
        heartbeat lapses."""
        try:
            store = self._store()
            if store is None:
                return []
            alive = store.items(REPLICA_PREFIX)
            intents = store.items(INTENT_PREFIX)
        except IgorError as error:
            log.debug("state store: %s (looking for intents)", error.message)
            return []
        found = []
        for text in intents.values():
            intent = Intent.loads(text)
            if intent is None or self.posting_here(intent):
                continue
            if intent.replica != self.replica and REPLICA_PREFIX + intent.replica in alive:
                continue  # its replica lives, and tells it
            found.append(intent)
        return sorted(found, key=lambda intent: intent.at)

    def settle(self, intent: Intent, client: Cloud66Client) -> Settled | None:
        """What became of an orphan intent, once that can be told, taken over by this
        replica: taken out of the store (compare-and-delete: one replica does, and tells
        it). None: not yet (its POST may still be answered), or another replica took it,
        or the store cannot say."""
        action_id, queued, started_at = intent.action_id, intent.queued, None
        if not intent.answered and intent.operation:
            # No reference to ask Cloud 66 by: once its POST can no longer be answered, it
            # is told as not known (`Settled.action_id` empty).
            if self._wall() - intent.at < POST_SECONDS:
                return None
        elif not intent.answered:
            asked = client.actions_for(intent.stack_uid, intent.user_reference)
            found = next((a for a in asked if a.user_reference == intent.user_reference), None)
            if found is None and self._wall() - intent.at < POST_SECONDS:
                return None
            if found is not None:
                action_id, started_at = found.id, found.started_at
        if not self._quietly("taking over an intent", _release(intent)):
            return None
        return Settled(intent, action_id, queued, started_at)

    def _quietly(self, what: str, operation: Callable[[Store], Any]) -> bool:
        try:
            store = self._store()
            return store is None or bool(operation(store))
        except IgorError as error:  # the outage itself is said once (state/health.py)
            log.debug("state store: %s (%s)", error.message, what)
            return False


def _release(intent: Intent) -> Callable[[Store], bool]:
    return lambda store: store.release(intent.key, intent.dumps())


class _Recording:
    """A Cloud 66 client whose deploy and stack action POSTs, made for a chat command, are
    recorded first."""

    def __init__(self, client: Cloud66Client, intents: Intents) -> None:
        self._client = client
        self._intents = intents

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def deploy(self, uid: str, **options: Any) -> DeployResponse:
        """The POST, between its intent and Cloud 66's answer (never sent twice)."""
        command = self._intents.current()
        if command is None:
            return self._client.deploy(uid, **options)
        intent = self._intents.begin(command, uid, str(options.get("user_reference", "")))
        answer = None
        try:
            answer = self._client.deploy(uid, **options)
        finally:
            action_id = None if answer is None else answer.async_action_id
            self._intents.answered(command, intent, action_id, bool(answer and answer.queued))
        return answer

    def stack_action(
        self, uid: str, command: str, *, service_name: str = "", value: str = ""
    ) -> AsyncAction:
        """A stack action's POST, between its intent and Cloud 66's answer (never sent
        twice)."""
        running = self._intents.current()
        if running is None:
            return self._client.stack_action(uid, command, service_name=service_name, value=value)
        intent = self._intents.begin(
            running, uid, "", operation=command, value=value, service=service_name
        )
        answer = None
        try:
            answer = self._client.stack_action(uid, command, service_name=service_name, value=value)
        finally:
            self._intents.answered(running, intent, None if answer is None else answer.id)
        return answer
