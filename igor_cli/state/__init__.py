"""igor's state store: what Cloud 66 cannot hold (locks, leases, used approvals).

`open_store(url)` picks the backend from the URL: `redis://` (or `rediss://`,
`unix://`) for Redis, `sqlite:///absolute/path` for a SQLite file. The drivers are
imported only when a store is opened, so `igor --version` and TAB stay cheap.
"""

from __future__ import annotations

from pathlib import Path

from igor_cli.state.store import StateUnavailable, Store

__all__ = ["StateUnavailable", "Store", "open_store"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


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
    from igor_cli.state.redis import safe_url

    raise UsageProblem(
        f"igor cannot keep its state at {safe_url(url)!r}.",
        "Use redis://host:port/db for Redis, or sqlite:///path/state.db for a file.",
    )
