"""igor's state store: what Cloud 66 cannot hold (locks, leases, used approvals).

`open_store(url)` picks the backend from the URL: `redis://` (or `rediss://`,
`unix://`) for Redis, `sqlite:///absolute/path` for a SQLite file. The drivers are
imported only when a store is opened, so `igor --version` and TAB stay cheap.
"""

from __future__ import annotations

from pathlib import Path

from igor_cli.state.store import StateUnavailable, Store
from igor_cli.state.urls import shown_url

__all__ = ["StateUnavailable", "Store", "open_store", "shared_store", "shared_url", "shown_url"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def shared_url(url: str) -> bool:
    """Whether a store at `url` is one that several machines share (Redis); a SQLite file is
    this machine's own (one `igor serve`, and the shells of one machine)."""
    return url.strip().lower().startswith(REDIS_SCHEMES)


def shared_store(store: Store) -> bool:
    """`shared_url` of an open store."""
    return shared_url(store.url)


def open_store(url: str) -> Store:
    """The store at `url`; a StateUnavailable naming the problem if it cannot be opened."""
    from igor_cli.errors import UsageProblem

    if url.startswith(REDIS_SCHEMES):
        from igor_cli.state.redis import RedisStore

        return RedisStore(url)
    if url.startswith("sqlite://"):
        from igor_cli.state.sqlite import SqliteStore

        path = url.removeprefix("sqlite://")
        if not path.startswith("/"):  # a path relative to wherever igor runs would wander
            raise UsageProblem(
                f"The state URL {url!r} has no absolute file path.",
                "Write it as sqlite:///absolute/path/state.db.",
            )
        return SqliteStore(Path("/" + path.lstrip("/")))
    raise UsageProblem(
        f"igor cannot keep its state at {shown_url(url)!r}.",
        "Use redis://host:port/db for Redis, or sqlite:///path/state.db for a file.",
    )
