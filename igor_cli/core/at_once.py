"""The reads one decision needs, asked at once (cloud66/at_once.py runs them): what runs
and waits on a stack, and a client that answers a read made already with the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from igor_cli.cloud66.at_once import at_once

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import LiveState
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import AsyncAction, Stack
    from igor_cli.cloud66.paging import Newest


def live_now(client: Cloud66Client, stack: Stack) -> LiveState:
    """What runs and waits on the stack (`live_state`), read afresh: its newest deployments
    and its newest actions asked at once."""
    from igor_cli.cloud66.activity import live_state

    deployments, actions = at_once(
        lambda: client.newest_deployments(stack.uid, fresh=True),
        lambda: client.newest_actions(stack.uid, fresh=True),
    )
    return live_state(read_already(client, stack.uid, actions), stack, deployments, fresh=True)


def read_already(client: Cloud66Client, uid: str, actions: Newest[AsyncAction]) -> Cloud66Client:
    """`client`, whose fresh read of the stack `uid`'s newest actions is `actions`, just
    made for this decision with its other reads (`live_state` asks for it afresh)."""
    return cast("Cloud66Client", _ActionsRead(client, uid, actions))


class _ActionsRead:
    """A client whose read of one stack's newest actions was made already (`read_already`)."""

    def __init__(self, client: Cloud66Client, uid: str, read: Newest[AsyncAction]) -> None:
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
