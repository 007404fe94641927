"""Several `igor serve` replicas and the store they keep their state in.

Slack tells each Socket Mode connection how many connections the app has open
(`num_connections` in the `hello` message, docs.slack.dev "Using Socket Mode"). More
than this replica's own means other replicas run. They share locks, used approvals
and dedupe keys only through a shared store (Redis, `IGOR_STATE_URL`); on a local one
(the default SQLite file) each would keep its own, and one Approve re-delivered to
another replica would deploy twice. Then changes from chat are refused, saying why,
until every replica shares one store. The count is kept in the store for `igor
doctor` to show.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from igor_cli.config import Environment

log = logging.getLogger("igor.serve")

SEEN_KEY = "serve:connections"  # the count last heard by a bot on this store
SEEN_SECONDS = 86400.0


class Replicas:
    """What the last `hello` said of the app's other connections, and what it means."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.connections = 1  # the app's, as the last `hello` said
        self.others = 0  # of them, not this replica's
        self._lock = threading.Lock()

    def heard(self, connections: int, own_before: int = 0) -> None:
        """A `hello` said `connections`; this replica had `own_before` of its own still open
        (the one a reconnect replaces is closed only once the new one is up). Called on
        the connection's thread: it only counts (`keep` logs and records it)."""
        with self._lock:
            self.connections = connections
            self.others = max(0, connections - 1 - own_before)

    def keep(self) -> None:
        """Log what the last `hello` means, and keep its count in the store for doctor."""
        from igor_cli.errors import IgorError
        from igor_cli.state import shared_store

        with self._lock:
            connections, others = self.connections, self.others
        record = json.dumps({"connections": connections, "others": others,
                             "at": self.env.clock().isoformat()})  # fmt: skip
        try:
            store = self.env.state()
            if not store.claim(SEEN_KEY, record, SEEN_SECONDS):
                store.swap(SEEN_KEY, store.get(SEEN_KEY) or "", record, SEEN_SECONDS)
            shared = shared_store(store)
        except IgorError as error:  # an outage is said once, where the store is watched
            log.debug("state store: %s (the connection count is not kept)", error.message)
            return
        if others and not shared:
            log.warning("Slack says %d connections of this app are open: other replicas run "
                        "on stores of their own; changes from chat are refused until they "
                        "share one (IGOR_STATE_URL)", connections)  # fmt: skip
        elif others:
            log.info("Slack says %d connections of this app are open; the replicas share %s",
                     connections, store.url)  # fmt: skip

    def problem(self) -> str:
        """Why changes may not be made from chat now ("" when they may)."""
        from igor_cli.state import shared_url, shown_url

        with self._lock:
            others = self.others
        if not others:
            return ""
        url = self.env.state_url()
        if shared_url(url):
            return ""
        return (
            f"Slack says {others + 1} connections of this app are open: other `igor serve` "
            f"replicas run, and this one keeps its locks and approvals in a store of its own "
            f"({shown_url(url)}), where the others cannot see them. Changes from chat are "
            "refused until every replica shares one store: set IGOR_STATE_URL to the same "
            "Redis URL on each. Nothing was done."
        )


def last_seen(raw: str | None) -> dict[str, Any] | None:
    """The count a bot kept in the store (`SEEN_KEY`), read back; None if there is none."""
    if not raw:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
