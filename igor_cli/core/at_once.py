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
    from igor_cli.cloud66.models import AsyncAction, Deployment, Stack
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


# What a client that looked ahead passes on to Cloud 66 and still serves its reads after:
# reads of other things. Anything else (a POST, a DELETE, a method added later) ends the
# look: after a change, everything is read afresh.
_READS_BESIDE = frozenset({"services", "stacks", "deployment", "action", "origin"})


def looked_ahead(client: Cloud66Client, uid: str, reference: str) -> Cloud66Client | None:
    """`client`, with the stack `uid`'s record and what a deploy or a cancel reads before
    it decides (its newest deployments and actions, and its actions tagged `reference`
    when one is given) read at once, for a change that looks ahead (core/resolve.py,
    `looking_ahead`); each served until the client changes anything. None when Cloud 66
    has no such stack."""
    from igor_cli.errors import NotFound

    try:
        stack, deployments, actions, mine = at_once(
            lambda: client.stack(uid),
            lambda: client.newest_deployments(uid, fresh=True),
            lambda: client.newest_actions(uid, fresh=True),
            (lambda: client.actions_for(uid, reference)) if reference else None,
        )
    except NotFound:
        return None
    read = _Looked(client, uid, stack, deployments, actions, (reference, mine))
    return cast("Cloud66Client", read)


class _Looked:
    """A client whose reads of one stack were made at once, ahead (`looked_ahead`)."""

    def __init__(
        self,
        client: Cloud66Client,
        uid: str,
        stack: Stack,
        deployments: Newest[Deployment],
        actions: Newest[AsyncAction],
        mine: tuple[str, list[AsyncAction] | None],
    ) -> None:
        self._client, self._uid, self._stack = client, uid, stack
        self._deployments, self._actions, self._mine = deployments, actions, mine
        self._changed = False

    def _serves(self, uid: str, *options: object) -> bool:
        return uid == self._uid and not self._changed and all(o is None for o in options)

    def stack(self, uid: str) -> Stack:
        """The record read ahead; any other, of Cloud 66."""
        return self._stack if self._serves(uid) else self._client.stack(uid)

    def newest_deployments(
        self,
        uid: str,
        enough: Callable[[Sequence[Deployment]], bool] | None = None,
        *,
        fresh: bool = False,
        max_pages: int | None = None,
    ) -> Newest[Deployment]:
        """The read made ahead (fresh, under the stack's lock); any other, of Cloud 66."""
        if self._serves(uid, enough, max_pages):
            return self._deployments
        pages = {} if max_pages is None else {"max_pages": max_pages}
        return self._client.newest_deployments(uid, enough, fresh=fresh, **pages)

    def newest_actions(
        self,
        uid: str,
        enough: Callable[[Sequence[AsyncAction]], bool] | None = None,
        *,
        fresh: bool = False,
        max_pages: int | None = None,
    ) -> Newest[AsyncAction]:
        """The read made ahead (fresh, under the stack's lock); any other, of Cloud 66."""
        if self._serves(uid, enough, max_pages):
            return self._actions
        pages = {} if max_pages is None else {"max_pages": max_pages}
        return self._client.newest_actions(uid, enough, fresh=fresh, **pages)

    def actions_for(self, uid: str, user_reference: str) -> list[AsyncAction]:
        """The read made ahead for this reference; any other, of Cloud 66."""
        reference, mine = self._mine
        if self._serves(uid) and mine is not None and user_reference == reference:
            return mine
        return self._client.actions_for(uid, user_reference)

    def __getattr__(self, name: str) -> Any:
        if name not in _READS_BESIDE:
            self._changed = True
        return getattr(self._client, name)
