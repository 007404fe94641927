"""Reads asked together (cloud66/at_once.py): answers in order, the first error in order, and
nothing still reading once it returns or raises."""

from __future__ import annotations

import threading

import pytest

from igor_cli.cloud66.at_once import at_once
from igor_cli.errors import NotFound, Unreachable


def test_answers_come_in_the_order_asked_and_a_read_not_needed_answers_none() -> None:
    started = threading.Barrier(3, timeout=5)  # all three run at once, or this times out

    def read(value: str) -> str:
        started.wait()
        return value

    assert at_once(lambda: read("a"), None, lambda: read("b"), lambda: read("c")) == [
        "a", None, "b", "c",
    ]  # fmt: skip


def test_the_first_error_in_order_is_raised_once_every_read_has_ended() -> None:
    ended = threading.Event()

    def slow_failure() -> str:
        ended.wait(0.2)
        ended.set()
        raise NotFound("second")

    def first() -> str:
        raise Unreachable("first")

    with pytest.raises(Unreachable, match="first"):
        at_once(first, slow_failure)
    assert ended.is_set()  # not left reading on a client its command is about to close
    with pytest.raises(NotFound, match="second"):
        at_once(lambda: "fine", slow_failure)


def test_the_reads_threads_never_hold_the_process_open() -> None:
    # A read stuck on an unresponsive Cloud 66 must not keep `igor serve` from ending
    # after SIGTERM (SPEC section 6): its threads are daemons, never joined at exit.
    assert at_once(lambda: 1, lambda: 2, lambda: 3) == [1, 2, 3]
    readers = [t for t in threading.enumerate() if t.name.startswith("igor-read")]
    assert readers
    assert all(thread.daemon for thread in readers)


def test_many_reads_at_once_from_many_threads_are_all_answered() -> None:
    answers: list[list[int]] = []

    def command(number: int) -> None:
        answers.append(at_once(*(lambda n=n: n * number for n in range(5))))

    threads = [threading.Thread(target=command, args=(k,)) for k in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(answers) == sorted([[n * k for n in range(5)] for k in range(40)])


def test_reads_at_hand_are_answered_on_the_callers_thread_in_order() -> None:
    # Answers the caller already holds (reads made ahead): no thread is woken for them.
    threads: list[str] = []

    def read(value: str) -> str:
        threads.append(threading.current_thread().name)
        return value

    here = threading.current_thread().name
    assert at_once(lambda: read("a"), None, lambda: read("b"), here=True) == ["a", None, "b"]
    assert threads == [here, here]

    def failing() -> str:
        raise NotFound("first")

    with pytest.raises(NotFound, match="first"):
        at_once(lambda: read("c"), failing, lambda: read("d"), here=True)
    assert threads[2:] == [here]  # nothing read after the first error, as one after another
