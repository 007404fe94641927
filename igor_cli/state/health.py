"""A store that fails fast while it is down, and says so once per outage.

A stalled Redis answers nothing: every operation waits its whole timeout. Once
one operation has failed, the store is known to be down, and until a probe (a
read, once a second, on a thread of its own) gets an answer again, every
operation fails at once with the same reason: changes are refused without
waiting, and what needs no store (help, a usage error, a dedupe claim that may
fail open) never waits for it. The outage is said in one line when it starts
and one when it ends, however many commands met it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from igor_cli.state.store import StateUnavailable

if TYPE_CHECKING:
    from igor_cli.state.store import Store

log = logging.getLogger("igor.state")

PROBE_SECONDS = 1.0  # how often a store that is down is asked again
PROBE_KEY = "state:probe"  # read, never written: any answer will do
Result = TypeVar("Result")


class Watched:
    """A `Store` that fails fast while the store it wraps is down (see the module)."""

    def __init__(self, store: Store, *, say: bool = False) -> None:
        self.store = store
        self.url = store.url
        self.say = say  # log the outage's start and end (the bot; a shell says the error)
        self.outages = 0
        self._down: StateUnavailable | None = None
        self._since = 0.0
        self._changed = threading.Condition()
        self._closed = False

    @property
    def down(self) -> StateUnavailable | None:
        """Why the store is down now, or None while it answers."""
        with self._changed:
            return self._down

    def _call(self, operation: Callable[[], Result]) -> Result:
        with self._changed:
            down = self._down
        if down is not None:
            raise StateUnavailable(down.message, down.hint)
        try:
            return operation()
        except StateUnavailable as error:
            self._went_down(error)
            raise

    def _went_down(self, error: StateUnavailable) -> None:
        with self._changed:
            if self._down is not None or self._closed:
                return
            self._down, self._since = error, time.monotonic()
            self.outages += 1
        if self.say:
            log.warning("%s Changes are refused until it answers; igor asks it again every "
                        "%g s.", error.message, PROBE_SECONDS)  # fmt: skip
        threading.Thread(target=self._probe, name="igor-state-probe", daemon=True).start()

    def _probe(self) -> None:
        while True:
            with self._changed:
                self._changed.wait(PROBE_SECONDS)
                if self._closed:
                    return
            try:
                self.store.get(PROBE_KEY)
            except StateUnavailable:
                continue
            with self._changed:
                self._down = None
                took = time.monotonic() - self._since
            if self.say:
                log.warning("igor's state store at %s answers again, after %.0f s.", self.url,
                            took)  # fmt: skip
            return

    # -- the Store interface ---------------------------------------------------------

    def claim(self, key: str, value: str, ttl: float) -> bool:
        """See `Store.claim`."""
        return self._call(lambda: self.store.claim(key, value, ttl))

    def get(self, key: str) -> str | None:
        """See `Store.get`."""
        return self._call(lambda: self.store.get(key))

    def swap(self, key: str, expected: str, value: str, ttl: float) -> bool:
        """See `Store.swap`."""
        return self._call(lambda: self.store.swap(key, expected, value, ttl))

    def renew(self, key: str, expected: str, ttl: float) -> bool:
        """See `Store.renew`."""
        return self._call(lambda: self.store.renew(key, expected, ttl))

    def release(self, key: str, expected: str) -> bool:
        """See `Store.release`."""
        return self._call(lambda: self.store.release(key, expected))

    def items(self, prefix: str) -> dict[str, str]:
        """See `Store.items`."""
        return self._call(lambda: self.store.items(prefix))

    def durability(self) -> list[str]:
        """See `Store.durability`."""
        return self._call(self.store.durability)

    def exposed(self) -> list[str]:
        """See `Store.exposed` (the files, not the store: asked even while it is down)."""
        return self.store.exposed()

    def close(self) -> None:
        """Stop probing and close the store."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.store.close()
