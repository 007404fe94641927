"""The references igor posted deployments with, so that a deployment is igor's only when
igor knows it.

Anyone who may deploy through Cloud 66's API can give a deployment a `user_reference`
that starts with `igor:`; a lock or a freeze must not take such a deployment for one of
igor's own. Before every change, igor keeps the reference it posts with (`posted:` and a
hash of it) for as long as a deployment can run and be followed; the bypass watch
(`chat/bypass.py`) counts a running deployment as igor's only when its action's
reference is known here.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from igor_cli.state.store import Store

POSTED_PREFIX = "posted:"
POSTED_SECONDS = 2 * 86400.0  # longer than a deployment runs and is followed (2 hours)


def _key(user_reference: str) -> str:
    return POSTED_PREFIX + hashlib.sha256(user_reference.encode()).hexdigest()[:32]


def remember_post(store: Store, user_reference: str) -> None:
    """Keep the reference igor is about to post a change with."""
    key = _key(user_reference)
    if not store.claim(key, "1", POSTED_SECONDS):
        store.swap(key, "1", "1", POSTED_SECONDS)  # posted with it again: kept longer


def posted_by_igor(store: Store, user_reference: str) -> bool:
    """Whether igor posted a change with this reference (in the last two days)."""
    return store.get(_key(user_reference)) is not None
