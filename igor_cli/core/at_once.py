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
        here=at_hand(client, stack.uid, actions=True),
    )
    return live_state(read_already(client, stack.uid, actions), stack, deployments, fresh=True)


def at_hand(client: Cloud66Client, uid: str, *, reference: str = "", actions: bool) -> bool:
    """Whether `client` answers the reads a decision on the stack `uid` makes (its newest
    deployments; its actions tagged `reference`, when one is given; its newest actions,
    when `actions`) from reads made already for it (`looked_ahead`), without asking
    Cloud 66: `at_once` then calls them in turn on the caller's thread."""
    return isinstance(client, _ReadAlready) and client.holds(
        uid, reference=reference, actions=actions
    )


def read_already(client: Cloud66Client, uid: str, actions: Newest[AsyncAction]) -> Cloud66Client:
    """`client`, whose fresh read of the stack `uid`'s newest actions is `actions`, just
    made for this decision with its other reads (`live_state` asks for it afresh)."""
    return cast("Cloud66Client", _ReadAlready(client, uid, actions=actions))


def looked_ahead(client: Cloud66Client, uid: str, reference: str) -> Cloud66Client | None:
    """`client`, with the stack `uid`'s record and what a deploy or a cancel reads before
    it decides (its newest deployments and actions, and its actions tagged `reference`
    when one is given) read at once, for a change that looks ahead (core/resolve.py,
    `looking_ahead`). None when Cloud 66 has no such stack."""
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
    read = _ReadAlready(
        client, uid, stack=stack, deployments=deployments, actions=actions, mine=(reference, mine)
    )
    return cast("Cloud66Client", read)


# What a client with reads made already passes on to Cloud 66 and still serves them after:
# reads of other things. Anything else (a POST, a DELETE, a method added later) ends them:
# after a change, everything is read afresh.
_READS_BESIDE = frozenset({"services", "stacks", "deployment", "action", "origin"})


class _ReadAlready:
    """A client whose reads of one stack were made already, for this decision, with its
    other reads (`read_already`, `looked_ahead`): each served (a fresh read, whatever is
    asked) until the client changes anything; what was not read, of Cloud 66."""

    def __init__(
        self,
        client: Cloud66Client,
        uid: str,
        *,
        stack: Stack | None = None,
        deployments: Newest[Deployment] | None = None,
        actions: Newest[AsyncAction] | None = None,
        mine: tuple[str, list[AsyncAction] | None] = ("", None),
    ) -> None:
        self._client, self._uid, self._stack = client, uid, stack
        self._deployments, self._actions, self._mine = deployments, actions, mine
        self._changed = False

    def _serves(self, uid: str, *options: object) -> bool:
        """Whether a read of `uid` asked with these options (None: the defaults) is the one
        made already: the client has changed nothing since."""
        return uid == self._uid and not self._changed and all(o is None for o in options)

    def holds(self, uid: str, *, reference: str, actions: bool) -> bool:
        """Whether the stack `uid`'s newest deployments, its actions tagged `reference` (when
        given) and its newest actions (when `actions`) are all served from reads made already."""
        served_mine = not reference or (self._mine[0] == reference and self._mine[1] is not None)
        return (
            self._serves(uid)
            and self._deployments is not None
            and served_mine
            and (not actions or self._actions is not None)
        )

    def stack(self, uid: str) -> Stack:
        """The record read already; any other, of Cloud 66."""
        if self._stack is not None and self._serves(uid):
            return self._stack
        return self._client.stack(uid)

    def newest_deployments(
        self,
        uid: str,
        enough: Callable[[Sequence[Deployment]], bool] | None = None,
        *,
        fresh: bool = False,
        max_pages: int | None = None,
    ) -> Newest[Deployment]:
        """The read made already; any other, of Cloud 66."""
        if self._deployments is not None and self._serves(uid, enough, max_pages):
            return self._deployments
        return self._client.newest_deployments(uid, enough, fresh=fresh, **_pages(max_pages))

    def newest_actions(
        self,
        uid: str,
        enough: Callable[[Sequence[AsyncAction]], bool] | None = None,
        *,
        fresh: bool = False,
        max_pages: int | None = None,
    ) -> Newest[AsyncAction]:
        """The read made already; any other, of Cloud 66."""
        if self._actions is not None and self._serves(uid, enough, max_pages):
            return self._actions
        return self._client.newest_actions(uid, enough, fresh=fresh, **_pages(max_pages))

    def actions_for(self, uid: str, user_reference: str) -> list[AsyncAction]:
        """The read made already for this reference; any other, of Cloud 66."""
        reference, mine = self._mine
        if mine is not None and self._serves(uid) and user_reference == reference:
            return mine
        return self._client.actions_for(uid, user_reference)

    def __getattr__(self, name: str) -> Any:
        if name not in _READS_BESIDE:
            self._changed = True
        return getattr(self._client, name)


def _pages(max_pages: int | None) -> dict[str, int]:
    """`max_pages` passed on only when given (the client's own default otherwise)."""
    return {} if max_pages is None else {"max_pages": max_pages}
