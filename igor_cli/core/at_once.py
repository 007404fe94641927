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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import Client, LiveState
    from igor_cli.cloud66.models import AsyncAction, Stack
    from igor_cli.cloud66.paging import Newest

THREADS = 32  # reads in flight beside the commands' own (the bot runs 32 commands at once)

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


def live_now(client: Client, stack: Stack) -> LiveState:
    """What runs and waits on the stack (`live_state`), read afresh: its newest deployments
    and its newest actions asked at once."""
    from igor_cli.cloud66.activity import live_state

    deployments, actions = at_once(
        lambda: client.newest_deployments(stack.uid, fresh=True),
        lambda: client.newest_actions(stack.uid, fresh=True),
    )
    return live_state(read_already(client, stack.uid, actions), stack, deployments, fresh=True)


def read_already(client: Client, uid: str, actions: Newest[AsyncAction]) -> Client:
    """`client`, whose fresh read of the stack `uid`'s newest actions is `actions`, just
    made for this decision with its other reads (`live_state` asks for it afresh)."""
    return cast("Client", _ActionsRead(client, uid, actions))


class _ActionsRead:
    """A client whose read of one stack's newest actions was made already (`read_already`)."""

    def __init__(self, client: Client, uid: str, read: Newest[AsyncAction]) -> None:
        self._client, self._uid, self._read = client, uid, read

    def newest_actions(
        self,
        uid: str,
        enough: Callable[[Sequence[AsyncAction]], bool] | None = None,
        *,
        fresh: bool = False,
        max_pages: int | None = None,
    ) -> Newest[AsyncAction]:
        """The read made for this decision; any other read, of Cloud 66."""
        if uid == self._uid and enough is None and max_pages is None:
            return self._read
        pages = {} if max_pages is None else {"max_pages": max_pages}
        return self._client.newest_actions(uid, enough, fresh=fresh, **pages)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _threads() -> ThreadPoolExecutor:
    """One pool for the process, made on first use."""
    if not _pool:
        with _making:
            if not _pool:
                _pool.append(ThreadPoolExecutor(THREADS, thread_name_prefix="igor-read"))
    return _pool[0]
