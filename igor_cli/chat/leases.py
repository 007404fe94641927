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

An outcome is told once: the replica that tells it first deletes the place's job
(compare-and-delete), and tells it only if that worked. A replica that cannot
renew a lease before it may lapse stops polling that deployment, and keeps its
jobs in mind: once the store answers again, a job that is still there is taken
over as any other, and one the store lost with everything else (a Redis that
came back empty) is written back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from igor_cli.errors import IgorError

if TYPE_CHECKING:
    from igor_cli.cloud66.models import Stack
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
    message: str = ""  # the "deploy started" message (its ts): whoever tells the outcome edits it

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
        from igor_cli.cloud66.models import Stack

        return Stack.from_api(
            {"uid": self.stack_uid, "name": self.stack_name, "environment": self.environment}
        )


class FollowLeases:
    """This replica's jobs and leases in the state store.

    A job recorded in the store is followed here only while this replica holds its
    deployment's lease, and its outcome is told only once claimed. When the store
    cannot be reached (or there is none), a follow is this replica's alone: it is
    told as if this replica were the only one, since no other knows of it.
    `generation` says which store this is (its marker, `state/continuity.py`): a job
    missing from a store that was reset since it was recorded was lost, not told.
    """

    def __init__(
        self,
        store: Callable[[], Store | None],
        replica: str,
        generation: Callable[[], str] = lambda: "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.replica = replica
        self._generation = generation
        self._clock = clock
        self._held: dict[str, float] = {}  # deployment -> when its lease was last made sure
        self._jobs: dict[str, dict[str, FollowJob]] = {}  # deployment -> its jobs waiting here
        self._local: dict[str, int] = {}  # deployment -> places here the store knows nothing of
        self._suspended: dict[str, FollowJob] = {}  # jobs let go when a lease could not be kept
        self._recorded_in = ""  # the store's generation when a job was last recorded
        self._lock = threading.Lock()

    def _do(self, what: str, operation: Callable[[Store], Any], otherwise: Any) -> Any:
        """`operation` on the store; `otherwise` when there is none. Raises StateUnavailable."""
        store = self._store()
        return otherwise if store is None else operation(store)

    def _try(self, what: str, operation: Callable[[Store], Any], otherwise: Any) -> Any:
        """`_do`, with `otherwise` when the store cannot be reached (said at debug level: the
        store's outage is said once, by the store, `state/health.py`)."""
        try:
            return self._do(what, operation, otherwise)
        except IgorError as error:
            log.debug("state store: %s (%s)", error.message, what)
            return otherwise

    # -- one place waiting -----------------------------------------------------------

    def wait_for(self, job: FollowJob) -> bool:
        """Record that this place waits for the deployment's outcome; True when the store
        holds the job (shared), False when only this replica knows of it (no store, or
        none that answers)."""
        try:
            store = self._store()
            if store is None:
                return False
            generation = self._generation()
            recorded = store.claim(job.key, job.dumps(), JOB_SECONDS)
            if not recorded:  # already there (asked twice in one place): the same wait
                recorded = FollowJob.loads(store.get(job.key) or "") is not None
        except IgorError as error:
            log.debug("state store: %s (recording a follow)", error.message)
            return False
        with self._lock:
            self._recorded_in = generation or self._recorded_in
        return recorded

    def watching(self, job: FollowJob, *, shared: bool) -> None:
        """This replica tells the job's place the outcome (see `claim` and `let_go`)."""
        with self._lock:
            if shared:
                self._jobs.setdefault(job.deployment, {})[job.key] = job
            else:
                self._local[job.deployment] = self._local.get(job.deployment, 0) + 1

    def noted(self, job: FollowJob, message: str) -> FollowJob:
        """The job, now naming its "deploy started" message (for whoever edits it later)."""
        with self._lock:
            current = self._jobs.get(job.deployment, {}).get(job.key, job)
        if current.message == message:
            return current
        newer = dataclasses.replace(current, message=message)

        def swap(store: Store) -> bool:
            return store.swap(job.key, current.dumps(), newer.dumps(), JOB_SECONDS)

        if self._try("noting a message", swap, False):
            with self._lock:
                if job.key in self._jobs.get(job.deployment, {}):
                    self._jobs[job.deployment][job.key] = newer
            return newer
        return current

    def claim(self, job: FollowJob) -> bool:
        """Whether this replica may tell the job's place the outcome now: it took the job
        from the store (compare-and-delete), or the store lost it with everything else.
        False when another replica told it, or the store cannot say (kept in mind: told
        once the store answers, by whoever follows it then)."""
        with self._lock:
            current = self._jobs.get(job.deployment, {}).get(job.key, job)
        try:
            if self._do("finishing a follow", _taken(job.key, current.dumps()), True):
                return True
            if self._lost_by_the_store():
                log.info("the state store lost the follow of %s: telling it here", job.key)
                return True
            return False
        except IgorError as error:
            log.info("state store: %s (the outcome of %s waits for it)", error.message,
                     job.deployment)  # fmt: skip
            with self._lock:
                self._suspended[job.key] = current
            return False

    def let_go(self, job: FollowJob | None, deployment: str) -> None:
        """One place here is done with the deployment (`job`: None for one the store knows
        nothing of). When it was the last, this replica no longer polls it and anyone may
        take it over; not before, or another replica would take over the places still
        waiting here and tell them a second time."""
        with self._lock:
            if job is None:
                left = self._local.get(deployment, 1) - 1
                if left > 0:
                    self._local[deployment] = left
                else:
                    self._local.pop(deployment, None)
            else:
                jobs = self._jobs.get(deployment, {})
                jobs.pop(job.key, None)
                if not jobs:
                    self._jobs.pop(deployment, None)
            if deployment in self._jobs or deployment in self._local:
                return
            held = self._held.pop(deployment, None) is not None
        if held:
            key = LEASE_PREFIX + deployment
            self._try("releasing a lease", lambda s: s.release(key, self.replica), None)

    # -- leases ----------------------------------------------------------------------

    def hold(self, deployment: str) -> bool:
        """Take the lease on a deployment (True: this replica polls it). With no store this
        replica is alone; with one that cannot be reached, it polls nothing the store
        knows of (a replica that can reach it will)."""
        with self._lock:
            if deployment in self._held:
                return True
        key = LEASE_PREFIX + deployment
        taken = bool(
            self._try("taking a lease", lambda s: s.claim(key, self.replica, LEASE_SECONDS), False)
        )
        if not taken and self._store_is_none():
            taken = True
        if taken:
            with self._lock:
                self._held[deployment] = self._clock()
        return taken

    def renew(self) -> list[str]:
        """Renew every lease this replica holds; returns the deployments it must stop
        polling: the lease is another replica's now, or it could not be renewed before
        it may have lapsed. Their jobs are kept in mind (see `resume`)."""
        with self._lock:
            held = dict(self._held)
        lost = []
        for deployment, since in held.items():
            try:
                if self._do("renewing a lease", self._renewal(deployment), True):
                    with self._lock:
                        if deployment in self._held:
                            self._held[deployment] = self._clock()
                    continue
                if self._lost_by_the_store() and self._rewrite(deployment):
                    continue  # a store that came back empty: this replica still follows it
                log.warning("lost the lease on %s to another replica", deployment)
                lost.append(deployment)
                self._forget(deployment, keep=False)
            except IgorError as error:
                if self._clock() - since < LEASE_SECONDS - RENEW_SECONDS:
                    continue  # still ours for sure: try again at the next renewal
                log.warning("could not renew the lease on %s (%s): stopped polling it; it "
                            "is taken over once the store answers", deployment,
                            error.message)  # fmt: skip
                lost.append(deployment)
                self._forget(deployment, keep=True)
        return lost

    def _renewal(self, deployment: str) -> Callable[[Store], bool]:
        return lambda store: store.renew(LEASE_PREFIX + deployment, self.replica, LEASE_SECONDS)

    def _rewrite(self, deployment: str) -> bool:
        """Write a deployment's jobs and lease back into a store that lost them."""
        with self._lock:
            jobs = list(self._jobs.get(deployment, {}).values())
        key = LEASE_PREFIX + deployment

        def rewrite(store: Store) -> bool:
            for job in jobs:
                store.claim(job.key, job.dumps(), JOB_SECONDS)
            return store.claim(key, self.replica, LEASE_SECONDS)

        if not self._try("writing back a follow", rewrite, False):
            return False
        with self._lock:
            self._held[deployment] = self._clock()
        self._note_generation()
        return True

    def _forget(self, deployment: str, *, keep: bool) -> None:
        with self._lock:
            self._held.pop(deployment, None)
            jobs = self._jobs.pop(deployment, {})
            if keep:
                self._suspended.update(jobs)

    def resume(self) -> None:
        """Jobs let go while the store could not be reached, once it answers: still there,
        they are taken over like any other; lost with a store that was reset, they are
        written back (then taken over); gone otherwise, they were told elsewhere."""
        with self._lock:
            suspended = list(self._suspended.values())
        if not suspended:
            return
        try:
            lost = self._lost_by_the_store()
            for job in suspended:
                if lost:
                    self._do("writing back a follow", _record(job), None)
                with self._lock:
                    self._suspended.pop(job.key, None)
        except IgorError as error:
            log.debug("state store: %s (resuming follows)", error.message)
            return
        if lost:
            self._note_generation()

    def _lost_by_the_store(self) -> bool:
        """Whether the store was reset since a job was last recorded here."""
        with self._lock:
            recorded = self._recorded_in
        return bool(recorded) and self._generation() != recorded

    def _note_generation(self) -> None:
        generation = self._try("reading the store's marker", lambda _s: self._generation(), "")
        if generation:
            with self._lock:
                self._recorded_in = generation

    def _store_is_none(self) -> bool:
        try:
            return self._store() is None
        except IgorError:
            return False

    # -- what nobody follows -----------------------------------------------------------

    def orphans(self) -> dict[str, list[FollowJob]]:
        """Jobs whose deployment no replica holds, by deployment.

        The leases are read before the jobs: a replica that finishes normally deletes
        its jobs before its lease, so a lease gone by the time it is read means its jobs
        are gone by the time they are read (the other order took a finished deployment
        for an orphan).
        """
        leases = self._try("looking for leases", lambda s: s.items(LEASE_PREFIX), None)
        if leases is None:
            return {}
        jobs = self._try("looking for follows", lambda s: s.items(JOB_PREFIX), {})
        with self._lock:
            held = set(self._held)
        found: dict[str, list[FollowJob]] = {}
        for text in jobs.values():
            job = FollowJob.loads(text)
            if job is None or job.deployment in held or LEASE_PREFIX + job.deployment in leases:
                continue
            found.setdefault(job.deployment, []).append(job)
        return found


def _taken(key: str, text: str) -> Callable[[Store], bool]:
    """Compare-and-delete of a job: as this replica knows it, or as the store has it now
    (its "deploy started" message noted meanwhile: the same place's job all the same)."""

    def take(store: Store) -> bool:
        if store.release(key, text):
            return True
        stored = store.get(key)
        return (
            stored is not None
            and FollowJob.loads(stored) is not None
            and (store.release(key, stored))
        )

    return take


def _record(job: FollowJob) -> Callable[[Store], bool]:
    return lambda store: store.claim(job.key, job.dumps(), JOB_SECONDS)
