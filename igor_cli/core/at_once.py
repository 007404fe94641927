"""Reads of Cloud 66 that one decision needs, asked together instead of one after another.

A change decides on fresh reads of its stack (its newest deployments and actions, igor's
own actions by their reference), and a stack's changes run one after another
(chat/workers.py): with Cloud 66 100 ms away, each read that waits for the one before it
adds a round trip to every command in the line. Reads that do not depend on one another
are made at once: the same requests, each made on the command's turn, before it decides.
Only reads come here; a POST or a DELETE is sent after them, once.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

THREADS = 16  # reads in flight beside the commands' own (the bot runs 32 commands at once)

_pool: list[ThreadPoolExecutor] = []
_making = threading.Lock()


def at_once(first: Callable[[], Any], *others: Callable[[], Any] | None) -> list[Any]:
    """`first` and each of `others` called together (`first` here, the others on other
    threads; None for a read not needed, answered None): their answers in order, or the
    error of the first of them that failed (in that order, as if one after the other),
    raised once all have ended (nothing reads on after the command, which closes its
    client)."""
    context = contextvars.copy_context()  # the request's (what it may send: cloud66.READS_ONLY)
    later = [
        None if read is None else _threads().submit(context.copy().run, read) for read in others
    ]
    started = [future for future in later if future is not None]
    try:
        answers = [first()]
    except BaseException:
        wait(started)  # their own errors, if any, are not the first
        raise
    wait(started)
    return answers + [None if future is None else future.result() for future in later]


def _threads() -> ThreadPoolExecutor:
    """One pool for the process, made on first use."""
    if not _pool:
        with _making:
            if not _pool:
                _pool.append(ThreadPoolExecutor(THREADS, thread_name_prefix="igor-read"))
    return _pool[0]
