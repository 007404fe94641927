"""One follower per deployment across bot replicas, and follows that outlive a replica.

Each place waiting for a deployment's outcome (a Slack thread) is a job in the
state store, `follow:<stack uid>:<action id>:<place>`, kept until its outcome is
posted there. The replica that polls a deployment holds its lease,
`lease:follow:<stack uid>:<action id>`, for 30 seconds at a time and renews it
while it polls. Every replica looks for jobs whose deployment nobody holds (the
holder died, was stopped, or finished before this place's job was seen) and
takes them over: so a deployment is polled by one replica, and its outcome
reaches every thread even when the replica that started it is gone, or after
a restart.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from igor_cli.errors import IgorError

if TYPE_CHECKING:
    from igor_cli.cloud66 import Stack
    from igor_cli.state.store import Store

log = logging.getLogger("igor.follow")

JOB_PREFIX = "follow:"
LEASE_PREFIX = "lease:follow:"
LEASE_SECONDS = 30.0  # a dead replica's deployments are taken over within this
RENEW_SECONDS = 10.0  # how often a holder renews, and everyone looks for orphans
JOB_SECONDS = 3 * 3600.0  # longer than the bot follows a deployment (2 hours)


@dataclass(frozen=True)
class FollowJob:
    """One place waiting for one deployment's outcome."""

    stack_uid: str
    stack_name: str
    environment: str
    action_id: str
    channel: str
    thread: str
    user: str
    what: str = ""  # how it was asked for, when more than a deploy (a rollback, a promotion)

    @property
    def deployment(self) -> str:
        """`<stack uid>:<action id>`: what a lease is held on."""
        return f"{self.stack_uid}:{self.action_id}"

    @property
    def key(self) -> str:
        """Where this job is kept."""
        place = hashlib.sha256(f"{self.channel}:{self.thread}:{self.user}".encode()).hexdigest()
        return f"{JOB_PREFIX}{self.deployment}:{place[:16]}"

    def dumps(self) -> str:
        """The job as the store keeps it."""
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> FollowJob | None:
        """A job read back; None for anything igor did not write."""
        try:
            return cls(**{k: str(v) for k, v in json.loads(text).items()})
        except (ValueError, TypeError):
            return None

    @classmethod
    def of(
        cls, stack: Stack, action_id: str, channel: str, thread: str, user: str, what: str = ""
    ) -> FollowJob:
        """The job for a place that waits for this deployment."""
        return cls(stack.uid, stack.name, stack.environment, action_id, channel, thread, user, what)

    def stack(self) -> Stack:
        """The stack, as far as following needs it."""
        from igor_cli.cloud66 import Stack

        return Stack.from_api(
            {"uid": self.stack_uid, "name": self.stack_name, "environment": self.environment}
        )


class FollowLeases:
    """This replica's jobs and leases in the state store; every call survives a store
    that cannot be reached (the bot then follows as if alone)."""

    def __init__(self, store: Callable[[], Store | None], replica: str) -> None:
        self._store = store
        self.replica = replica
        self._held: set[str] = set()
        self._watching: dict[str, int] = {}  # places here still waiting, by deployment
        self._lock = threading.Lock()

    def _do(self, what: str, operation: Callable[[Store], Any], otherwise: Any) -> Any:
        try:
            store = self._store()
            return otherwise if store is None else operation(store)
        except IgorError as error:
            log.warning("state store: %s (%s)", error.message, what)
            return otherwise

    def wait_for(self, job: FollowJob) -> None:
        """Record that this place waits for the deployment's outcome."""
        self._do("recording a follow", lambda s: s.claim(job.key, job.dumps(), JOB_SECONDS), None)

    def hold(self, deployment: str) -> bool:
        """Take the lease on a deployment (True: this replica polls it)."""
        with self._lock:
            if deployment in self._held:
                return True
        taken = bool(
            self._do(
                "taking a lease",
                lambda s: s.claim(LEASE_PREFIX + deployment, self.replica, LEASE_SECONDS),
                True,  # no store: this replica is alone
            )
        )
        if taken:
            with self._lock:
                self._held.add(deployment)
        return taken

    def told(self, job: FollowJob) -> None:
        """The outcome reached this place: the job is done."""
        self._do("finishing a follow", lambda s: s.release(job.key, job.dumps()), None)

    def watching(self, deployment: str) -> None:
        """One more place here waits for the deployment's outcome (see `let_go`)."""
        with self._lock:
            self._watching[deployment] = self._watching.get(deployment, 0) + 1

    def let_go(self, deployment: str) -> None:
        """One place here is done with the deployment. When it was the last, this replica
        no longer polls it and anyone may take it over; not before, or another replica
        would take over the places still waiting here and tell them a second time."""
        with self._lock:
            left = self._watching.get(deployment, 1) - 1
            if left > 0:
                self._watching[deployment] = left
                return
            self._watching.pop(deployment, None)
            held = deployment in self._held
            self._held.discard(deployment)
        if held:
            key = LEASE_PREFIX + deployment
            self._do("releasing a lease", lambda s: s.release(key, self.replica), None)

    def renew(self) -> None:
        """Renew every lease this replica holds (one a deployment it polls)."""
        with self._lock:
            held = list(self._held)
        for deployment in held:
            if not self._do("renewing a lease", self._renewal(deployment), True):
                log.warning("lost the lease on %s to another replica", deployment)

    def _renewal(self, deployment: str) -> Callable[[Store], bool]:
        return lambda store: store.renew(LEASE_PREFIX + deployment, self.replica, LEASE_SECONDS)

    def orphans(self) -> dict[str, list[FollowJob]]:
        """Jobs whose deployment no replica holds, by deployment."""
        jobs = self._do("looking for follows", lambda s: s.items(JOB_PREFIX), {})
        leases = self._do("looking for leases", lambda s: s.items(LEASE_PREFIX), {})
        with self._lock:
            held = set(self._held)
        found: dict[str, list[FollowJob]] = {}
        for text in jobs.values():
            job = FollowJob.loads(text)
            if job is None or job.deployment in held or LEASE_PREFIX + job.deployment in leases:
                continue
            found.setdefault(job.deployment, []).append(job)
        return found
