"""The one interface every state backend offers: atomic operations on keys that expire.

Cloud 66 stays the record of deployments; the store keeps only what it cannot
hold (locks, used approvals, message dedupe keys, follower leases). Every change
is one atomic operation on the backend (Redis `SET NX PX` or a Lua script; one
SQL statement on SQLite), never a read followed by a write: two igor processes
that race for a key cannot both win it.
"""

from __future__ import annotations

from typing import Protocol

from igor_cli.errors import IgorError


class StateUnavailable(IgorError):
    """The state store could not be opened or reached."""


class NeverKept(StateUnavailable):
    """The store does not exist and cannot be made (a read-only home, a missing volume):
    nothing can have been kept there. A store that exists but cannot be read or written
    is a plain `StateUnavailable`, and changes are refused (SPEC section 10)."""


def refusing_changes(error: StateUnavailable) -> StateUnavailable:
    """The store's failure as the reason a change is refused: locks cannot be checked."""
    return StateUnavailable(
        f"{error.message} igor cannot check the locks there, so it refuses changes until the "
        "store answers; nothing was posted.",
        error.hint,
    )


class Store(Protocol):
    """Keys to text values, each with a time to live (seconds); expired keys are gone."""

    url: str  # where the store is, without any password

    def claim(self, key: str, value: str, ttl: float) -> bool:
        """Set `key` to `value` only if it is absent (or expired); True if this call won it."""
        ...

    def get(self, key: str) -> str | None:
        """The value of `key`, or None when it is absent or expired."""
        ...

    def swap(self, key: str, expected: str, value: str, ttl: float) -> bool:
        """Set `key` to `value` for `ttl` only while it holds `expected` (compare-and-set)."""
        ...

    def renew(self, key: str, expected: str, ttl: float) -> bool:
        """Give a lease `ttl` more seconds from now, only while it holds `expected`."""
        ...

    def release(self, key: str, expected: str) -> bool:
        """Delete `key` only while it holds `expected` (compare-and-delete)."""
        ...

    def items(self, prefix: str) -> dict[str, str]:
        """Every live key that starts with `prefix`, and its value."""
        ...

    def durability(self) -> list[str]:
        """What may lose the store's keys (no persistence, eviction), in words; [] if nothing."""
        ...

    def exposed(self) -> list[str]:
        """What of the store's files other accounts may read, in words; [] if nothing."""
        ...

    def close(self) -> None:
        """Let go of connections and files."""
        ...
