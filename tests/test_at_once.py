"""Reads asked together (core/at_once.py): answers in order, the first error in order, and
nothing still reading once it returns or raises."""

from __future__ import annotations

import threading

import pytest

from igor_cli.core.at_once import at_once
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
