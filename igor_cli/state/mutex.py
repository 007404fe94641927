"""One change to a stack at a time, across threads, processes and bot replicas.

A change holds `change:<stack uid>` in the state store while it decides and
posts (a claim with a time to live, so a process that dies frees it), and
threads of one process queue on a plain lock first, so they do not poll.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from igor_cli.errors import IgorError
from igor_cli.state.store import StateUnavailable, refusing_changes

if TYPE_CHECKING:
    from igor_cli.state.store import Store

CHANGE_PREFIX = "change:"
HOLD_SECONDS = 120.0  # far longer than deciding and posting a deploy takes
_FIRST_POLL, _LONGEST_POLL = 0.02, 0.5


class ChangeInProgress(IgorError):
    """Another igor process kept changing this stack for longer than igor waits."""


@contextmanager
def one_change_at_a_time(
    store: Store | None, process_lock: threading.Lock, uid: str, label: str, wait: float
) -> Iterator[None]:
    """Hold the stack for one change: this process's lock, then the store's claim.

    Real time, not igor's injected clock: this waits for other processes.
    """
    with process_lock:
        if store is None:
            yield
            return
        key, token = CHANGE_PREFIX + uid, uuid.uuid4().hex
        deadline = time.monotonic() + wait
        poll = _FIRST_POLL
        while not _claimed(store, key, token):
            if time.monotonic() >= deadline:
                raise ChangeInProgress(
                    f"Another igor is changing {label} and has not finished after {wait:g} s; "
                    "nothing was posted.",
                    "Try again in a minute.",
                )
            time.sleep(poll)
            poll = min(_LONGEST_POLL, poll * 2)
        try:
            yield
        finally:
            with suppress(StateUnavailable):  # unreleased, the claim lapses by itself
                store.release(key, token)


def _claimed(store: Store, key: str, token: str) -> bool:
    try:
        return store.claim(key, token, HOLD_SECONDS)
    except StateUnavailable as error:
        raise refusing_changes(error) from None
