"""The bot's worker pool: jobs of one key (a stack) wait in their line, not on a thread."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from igor_cli.chat.workers import GATHER_SECONDS, Scheduler, Workers

WAIT = 5.0  # seconds: a generous bound, never reached when the code is right


@pytest.fixture
def workers() -> Iterator[Workers]:
    pool = Workers("test-workers", 3, 10)
    yield pool
    pool.stop()


def _blocker(
    started: threading.Event, release: threading.Event, ran: list[str], name: str
) -> Callable[[], None]:
    def job() -> None:
        ran.append(name)
        started.set()
        assert release.wait(WAIT)

    return job


def test_jobs_of_one_key_run_one_after_another_in_order(workers: Workers) -> None:
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    assert workers.submit(_blocker(started, release, ran, "first"), "shop")
    assert started.wait(WAIT)
    for n in range(3):
        assert workers.submit(functools.partial(ran.append, f"then {n}"), "shop")
    other = threading.Event()
    assert workers.submit(other.set, "blog")  # another stack is not held up
    assert workers.submit(lambda: ran.append("list"))  # nor a job without a key
    assert other.wait(WAIT)
    assert workers.wait_idle(0.2) is False  # shop's line still waits for the first job
    assert ran.count("list") == 1 and not any(r.startswith("then") for r in ran)
    release.set()
    assert workers.wait_idle(WAIT)
    assert [r for r in ran if r != "list"] == ["first", "then 0", "then 1", "then 2"]


def test_a_key_never_holds_more_than_one_thread(workers: Workers) -> None:
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def job(key: str) -> None:
        with lock:
            running[key] = running.get(key, 0) + 1
            peak[key] = max(peak.get(key, 0), running[key])
        threading.Event().wait(0.005)
        with lock:
            running[key] -= 1

    submitted = 0
    for n in range(10):
        for key in ("shop", "blog"):
            submitted += workers.submit(functools.partial(job, key), key)
        if n % 3 == 2:
            assert workers.wait_idle(WAIT)
    assert workers.wait_idle(WAIT)
    assert submitted == 20
    assert peak == {"shop": 1, "blog": 1}


def test_waiting_in_a_line_counts_against_the_queue_limit() -> None:
    pool = Workers("test-small", 1, 2)
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    try:
        assert pool.submit(_blocker(started, release, ran, "running"), "shop")
        assert started.wait(WAIT)
        assert pool.submit(lambda: ran.append("second"), "shop")
        assert pool.submit(lambda: ran.append("third"), "blog")
        assert not pool.submit(lambda: ran.append("refused"), "shop")  # two wait already
        assert pool.pending == 3
        release.set()
        assert pool.wait_idle(WAIT)
        assert sorted(ran) == ["running", "second", "third"]
    finally:
        release.set()
        pool.stop()


def test_stop_drops_the_lines() -> None:
    pool = Workers("test-stop", 1, 10)
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []
    try:
        assert pool.submit(_blocker(started, release, ran, "running"), "shop")
        assert started.wait(WAIT)
        assert pool.submit(lambda: ran.append("dropped"), "shop")
        pool.stop()
        release.set()
        assert pool.wait_idle(WAIT)
        assert pool.pending == 0
        assert ran == ["running"]
    finally:
        release.set()


def test_the_timer_runs_jobs_in_time_order_and_wakes_only_for_a_sooner_one() -> None:
    # 200 notices due later wake nothing (a burst queues one per command waiting in its
    # stack's line); a job due sooner than all of them still runs on time.
    if not Path("/proc/self/task").is_dir():
        pytest.skip("counts the timer's wake-ups in /proc (Linux)")
    ran: list[str] = []
    done = threading.Event()
    scheduler = Scheduler("test-timer")
    try:
        scheduler.call_later(30.0, lambda: ran.append("first-later"))
        wakes = _settled_waits(scheduler)  # the timer waits for it now
        for number in range(200):
            scheduler.call_later(30.0 + number, lambda: ran.append("later"))
        time.sleep(0.1)
        assert _waits_of(scheduler) == wakes  # not woken: nothing due sooner
        scheduler.call_later(0.2, lambda: (ran.append("sooner"), done.set()))
        scheduler.call_later(0.1, lambda: ran.append("soonest"))
        assert done.wait(WAIT)
        assert ran == ["soonest", "sooner"]
        assert scheduler.pending == 201
    finally:
        scheduler.stop()
    assert scheduler.pending == 0


def test_timed_jobs_due_together_share_a_wake() -> None:
    # A burst's "waiting" notices fall due a few ms apart: they run on one wake, in order,
    # none before its time and none more than GATHER_SECONDS late.
    if not Path("/proc/self/task").is_dir():
        pytest.skip("counts the timer's wake-ups in /proc (Linux)")
    ran: list[tuple[int, float, float]] = []
    done = threading.Event()
    scheduler = Scheduler("test-timer")
    try:
        wakes = _settled_waits(scheduler)
        start = time.monotonic()
        for number in range(20):
            due = start + 0.3 + number * 0.002

            def job(number: int = number, due: float = due) -> None:
                ran.append((number, due, time.monotonic()))
                if number == 19:
                    done.set()

            scheduler.call_later(due - time.monotonic(), job)
        assert done.wait(WAIT)
        assert _settled_waits(scheduler) - wakes <= 4  # one each, before: 20 or more
    finally:
        scheduler.stop()
    assert [number for number, _, _ in ran] == list(range(20))
    assert all(due <= at <= due + GATHER_SECONDS + 0.2 for _, due, at in ran)


def _settled_waits(scheduler: Scheduler) -> int:
    """The timer's count of sleeps once it has stopped changing (it is waiting)."""
    before, deadline = -1, time.monotonic() + WAIT
    while time.monotonic() < deadline:
        now = _waits_of(scheduler)
        if now == before:
            return now
        before = now
        time.sleep(0.1)
    raise AssertionError("the timer never settled")


def _waits_of(scheduler: Scheduler) -> int:
    """How often the timer thread has gone to sleep so far (its voluntary switches)."""
    thread = next(t for t in threading.enumerate() if t.name == "test-timer")
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(status.split("voluntary_ctxt_switches:")[1].split()[0])
