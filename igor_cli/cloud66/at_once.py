"""Reads of Cloud 66 asked together instead of one after another, on igor's own threads.

A change decides on fresh reads of its stack (its newest deployments and actions, igor's
own actions by their reference), and a stack's changes run one after another
(chat/workers.py): with Cloud 66 100 ms away, each read that waits for the one before it
adds a round trip to every command in the line. Reads that do not depend on one another
are made at once: the same requests, each made on the command's turn, before it decides.
A listing's stacks' histories are read the same way. Only reads come here; a POST or a
DELETE is sent after them, once. (core/at_once.py: the reads a decision makes together.)
"""

from __future__ import annotations

import contextvars
import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any

from igor_cli.cloud66 import READS_AT_ONCE


class _Readers:
    """Daemon threads (up to READS_AT_ONCE, started as reads need them) taking reads from one
    queue. Not concurrent.futures' pool: its threads are joined when the interpreter
    exits, and a read stuck on an unresponsive Cloud 66 would hold `igor serve` open
    after SIGTERM (SPEC section 6: it ends within 10 s)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, read: Callable[[], Any]) -> Future[Any]:
        """Run `read` on one of the threads; its future."""
        future: Future[Any] = Future()
        with self._lock:
            self._jobs.put((future, read))
            if self._idle > 0:
                self._idle -= 1  # that one takes it
                return future
            if self._threads >= READS_AT_ONCE:
                return future  # taken by the first thread that is done
            self._threads += 1
            number = self._threads
        threading.Thread(target=self._work, name=f"igor-read-{number}", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            future, read = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(read())
                except BaseException as error:  # handed to the caller, who raises it
                    future.set_exception(error)
            with self._lock:
                if not self._jobs.empty():
                    continue
                self._idle += 1
            # Counted idle before waiting: a read queued meanwhile is this thread's.


_readers = _Readers()


def at_once(
    first: Callable[[], Any], *others: Callable[[], Any] | None, here: bool = False
) -> list[Any]:
    """`first` and each of `others` called together (`first` here, the others on other
    threads; None for a read not needed, answered None): their answers in order, or the
    error of the first of them that failed (in that order, as if one after the other),
    raised once all have ended (nothing reads on after the command, which closes its
    client).

    `here`: the caller knows every answer is at hand already (reads made ahead: core/at_once.py),
    so each is called on this thread in turn: handing a read to another thread and waking
    this one for its answer costs more than the read."""
    if here:
        return [first()] + [None if read is None else read() for read in others]
    context = contextvars.copy_context()  # the request's (what it may send: cloud66.READS_ONLY)
    later = [
        None if read is None else _readers.submit(functools.partial(context.copy().run, read))
        for read in others
    ]
    started = [future for future in later if future is not None]
    try:
        answers = [first()]
    except BaseException:
        wait(started)  # their own errors, if any, are not the first
        raise
    wait(started)
    return answers + [None if future is None else future.result() for future in later]
