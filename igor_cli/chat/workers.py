"""Threads for the bot: bounded worker pools and one timer thread.

The pools are daemon threads with a bounded queue: a burst larger than the
queue is refused at once (the caller answers "busy") instead of piling up, and
a worker stuck on an unresponsive Cloud 66 never holds the process open after
shutdown. Timers (confirmation expiry, retries after Slack's `Retry-After`)
share one thread and one heap, however many are pending.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger("igor.workers")

Job = Callable[[], None]


class Workers:
    """`size` daemon threads taking jobs from a queue of at most `capacity`.

    A job may name a key (a stack): jobs with one key run one after another, and
    those waiting for their turn wait in their key's line, not on a thread, so
    many jobs for one stack never hold more than one worker.
    """

    def __init__(self, name: str, size: int, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self._jobs: queue.SimpleQueue[tuple[str | None, Job] | None] = queue.SimpleQueue()
        self._busy = 0  # queued, in a key's line, or running
        self._running = 0
        self._lines: dict[str, collections.deque[Job]] = {}  # key -> jobs after the one out
        self._idle = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{n}", daemon=True)
            for n in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job, key: str | None = None) -> bool:
        """Queue a job; False (and nothing queued) when the queue is full."""
        return self.queue(job, key) is not None

    def queue(self, job: Job, key: str | None = None, line_limit: int | None = None) -> int | None:
        """Queue a job; how many jobs with its key are ahead of it (0: none), or None (and
        nothing queued) when the queue is full, or `line_limit` jobs already wait in its
        key's line (see `waiting`)."""
        with self._idle:
            if self._busy - self._running >= self.capacity:
                return None
            line = self._lines.get(key) if key is not None else None
            if line is not None:  # a job with this key is out: wait behind it
                if line_limit is not None and len(line) >= line_limit:
                    return None
                self._busy += 1
                line.append(job)
                return len(line)  # those before it in line, and the one out
            self._busy += 1
            if key is not None:
                self._lines[key] = collections.deque()
        self._jobs.put((key, job))
        return 0

    def ahead_of(self, job: Job, key: str) -> int:
        """How many jobs with its key are ahead of `job` while it waits in line (0: it is
        out of the line: running, done, or dropped)."""
        with self._idle:
            line = self._lines.get(key)
            if line is None or job not in line:
                return 0
            return line.index(job) + 1  # those before it in line, and the one out

    def waiting(self, key: str) -> int:
        """How many jobs with this key wait in its line (not counting the one out)."""
        with self._idle:
            line = self._lines.get(key)
            return len(line) if line is not None else 0

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._idle:
            return self._busy

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is queued or running; False if the time ran out."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self) -> None:
        """Drop what is queued and let the threads end (running jobs are not waited for)."""
        with self._idle:
            dropped = sum(len(line) for line in self._lines.values())
            for line in self._lines.values():
                line.clear()
            self._busy -= dropped
            self._idle.notify_all()
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._done(item[0], next_in_line=False)
        for _ in self._threads:
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            key, job = item
            with self._idle:
                self._running += 1
            try:
                job()
            except Exception:  # the bot must outlive any one command
                log.exception("%s: a job failed unexpectedly", self.name)
            finally:
                with self._idle:
                    self._running -= 1
                self._done(key)

    def _done(self, key: str | None, *, next_in_line: bool = True) -> None:
        after: Job | None = None
        with self._idle:
            self._busy -= 1
            line = self._lines.get(key) if key is not None else None
            if line and next_in_line:
                after = line.popleft()  # its turn: to the back of the queue, like any job
            elif key is not None:
                self._lines.pop(key, None)
            self._idle.notify_all()
        if after is not None:
            self._jobs.put((key, after))


GATHER_SECONDS = 0.05  # how late a timed job may run, so that jobs due together share a wake


class Scheduler:
    """Runs callables later, on one thread, in time order (real seconds), each at most
    `GATHER_SECONDS` late."""

    def __init__(self, name: str = "igor-timer") -> None:
        self._heap: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_later(self, delay: float, job: Job) -> None:
        """Run `job` after `delay` seconds (unless stopped first)."""
        entry = (time.monotonic() + max(0.0, delay), next(self._order), job)
        with self._changed:
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:  # sooner than what the thread waits for: it wakes
                self._changed.notify()

    @property
    def pending(self) -> int:
        """How many jobs wait for their time."""
        with self._changed:
            return len(self._heap)

    @property
    def threads(self) -> int:
        """Always one, however many jobs wait (for tests and the benchmark)."""
        return 1

    def stop(self) -> None:
        """Forget every pending job and end the thread."""
        with self._changed:
            self._stopped = True
            self._heap.clear()
            self._changed.notify()
        self._thread.join(2)

    def _run(self) -> None:
        while True:
            with self._changed:
                # Woken when the soonest job is GATHER_SECONDS late: what fell due meanwhile
                # runs on the same wake (a burst's notices fall due a few ms apart).
                while not self._stopped:
                    soonest = self._heap[0][0] if self._heap else None
                    wait = None if soonest is None else soonest + GATHER_SECONDS - time.monotonic()
                    if wait is not None and wait <= 0:
                        break
                    self._changed.wait(wait)
                if self._stopped:
                    return
                now, due = time.monotonic(), []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
            for job in due:
                if self._stopped:
                    return
                try:
                    job()
                except Exception:
                    log.exception("a timed job failed unexpectedly")
