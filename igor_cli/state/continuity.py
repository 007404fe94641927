"""Whether igor's state store still holds what it held: a Redis that came back empty.

A Redis restarted without persistence answers as if nothing had happened, with
every lock gone. igor writes a marker into its store once (`state:marker`, a
random id that never expires) and reads it before every change:

- the marker it knew is there: the store is the one it was;
- no marker, and this igor never knew one: the store is new, and is marked now;
- no marker (or another one that nobody confirmed) where this igor knew one: the
  store was reset. The marker becomes a record of the reset, so that every igor
  sharing the store (a replica, a shell that never used it before) refuses changes
  too, until an operator runs `igor confirm-reset`.

What a process knows lives in memory for its run, and for a shell or a restarted
bot in `<user data dir>/igor/stores.json` (by store URL, without its password): a
first-ever start and a reset look the same to a process that remembers nothing,
so the replicas, which look every few seconds, are the ones that notice first.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from igor_cli.errors import IgorError

if TYPE_CHECKING:
    from collections.abc import Callable

    from igor_cli.state.store import Store

log = logging.getLogger("igor.state")

MARKER_KEY = "state:marker"
FOREVER = 100 * 365 * 86400.0  # the store interface has no "no expiry": a century
CONFIRM_COMMAND = "igor confirm-reset"
_TRIES = 4  # a marker that changes under us this often: someone else is writing it


@dataclass(frozen=True)
class Marker:
    """What `state:marker` holds: the store's id, or the record of its reset."""

    id: str  # "" once the store was reset
    how: str  # "new", "confirmed" (after a reset) or "reset"
    at: str  # when it was written (ISO 8601)
    by: str  # who wrote it: a replica or a shell user
    lost: str = ""  # a reset: the id of the store that was lost

    @property
    def reset(self) -> bool:
        """Whether this is the record of a reset nobody has confirmed yet."""
        return self.how == "reset"

    def dumps(self) -> str:
        """The marker as the store keeps it."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> Marker | None:
        """A marker read back; None for none, or for anything igor did not write."""
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(**{key: str(data.get(key) or "") for key in ("id", "how", "at", "by",
                                                                      "lost")})  # fmt: skip
        except (ValueError, TypeError, AttributeError):
            return None


class StoreWasReset(IgorError):
    """The store lost what it held (locks, follows, approvals); changes wait for an operator."""

    def __init__(self, url: str, marker: Marker) -> None:
        by = f" by {marker.by}" if marker.by else ""
        super().__init__(
            f"igor's state store at {url} was reset (noticed at {clock_time(marker.at)}{by}): "
            "every lock it held is gone, so igor refuses changes until an operator confirms "
            "it. Nothing was posted.",
            f"Check the locks (`igor locks`, lock again what must stay locked), then run "
            f"`{CONFIRM_COMMAND}` in a shell. Run Redis with persistence so that this does "
            "not happen again (README: One bot, or several).",
        )
        self.marker = marker


def clock_time(at: str) -> str:
    """`2025-06-01 14:05 UTC` for a marker's ISO time."""
    try:
        return f"{datetime.fromisoformat(at):%Y-%m-%d %H:%M %Z}".strip()
    except ValueError:
        return at or "an unknown time"


class Memory:
    """The marker this igor last saw for each store: in memory, and in a small file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._seen: dict[str, str] = {}
        self._lock = threading.Lock()

    def recall(self, url: str) -> str:
        """The marker id last seen at `url` ("" for none)."""
        with self._lock:
            if url in self._seen:
                return self._seen[url]
        return str(self._read().get(url) or "")

    def keep(self, url: str, marker_id: str) -> None:
        """Remember the marker id now seen at `url` (the file is best effort)."""
        with self._lock:
            if self._seen.get(url) == marker_id:
                return
            self._seen[url] = marker_id
        if self.path is None:
            return
        known = self._read()
        if known.get(url) == marker_id:
            return
        known[url] = marker_id
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            scratch = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}")
            scratch.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")
            scratch.replace(self.path)
        except OSError as error:  # a read-only home: this run still remembers it
            log.debug("could not keep the state store's marker in %s: %s", self.path, error)

    def _read(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


class Continuity:
    """The check every change makes: the store is the one this igor knew (see the module)."""

    def __init__(
        self,
        store: Store,
        memory: Memory,
        clock: Callable[[], datetime],
        who: str,
        *,
        say: bool = False,
    ) -> None:
        self.store = store
        self.memory = memory
        self.clock = clock
        self.who = who
        self.say = say  # log a reset once when it is noticed (the bot)
        self._said = ""

    def marker(self) -> Marker | None:
        """The marker as the store holds it now (None: none yet)."""
        return Marker.loads(self.store.get(MARKER_KEY))

    def check(self) -> Marker:
        """The store's marker, once it is known to be the store this igor knew (or a new
        one, marked now); `StoreWasReset` when it lost what it held."""
        url = self.store.url
        for _ in range(_TRIES):
            text = self.store.get(MARKER_KEY)
            found = Marker.loads(text)
            known = self.memory.recall(url)
            if found is not None and found.reset:
                self._tell(found)
                raise StoreWasReset(url, found)
            if found is None and text is None and not known:
                fresh = self._marker("new")
                if self.store.claim(MARKER_KEY, fresh.dumps(), FOREVER):
                    log.info("igor's state store at %s is new to igor: marked it", url)
                    self.memory.keep(url, fresh.id)
                    return fresh
                continue  # another igor marked it first: read theirs
            if found is not None and (found.id == known or not known or found.how == "confirmed"):
                self.memory.keep(url, found.id)
                return found
            # Gone, unreadable, or another store's marker that no operator confirmed.
            reset = Marker("", "reset", self.clock().isoformat(), self.who, known)
            done = (
                self.store.claim(MARKER_KEY, reset.dumps(), FOREVER)
                if text is None
                else self.store.swap(MARKER_KEY, text, reset.dumps(), FOREVER)
            )
            if done:
                self._tell(reset)
                raise StoreWasReset(url, reset)
        raise IgorError(f"igor's state store at {url} keeps changing its marker; try again.")

    def generation(self) -> str:
        """Which store this is now: its marker's id, or the record of its reset."""
        try:
            return self.check().id
        except StoreWasReset as reset:
            return f"reset:{reset.marker.at}"

    def confirm(self) -> tuple[Marker | None, Marker]:
        """An operator's word that the store may be used as it is now: (the marker it had,
        the one it has now). A store that was not reset is left as it is."""
        url = self.store.url
        for _ in range(_TRIES):
            text = self.store.get(MARKER_KEY)
            found = Marker.loads(text)
            if (
                found is not None
                and not found.reset
                and (found.id == self.memory.recall(url) or found.how == "confirmed")
            ):
                self.memory.keep(url, found.id)
                return found, found
            fresh = self._marker("confirmed")
            done = (
                self.store.claim(MARKER_KEY, fresh.dumps(), FOREVER)
                if text is None
                else self.store.swap(MARKER_KEY, text, fresh.dumps(), FOREVER)
            )
            if done:
                self.memory.keep(url, fresh.id)
                log.warning("igor's state store at %s: reset confirmed by %s", url, self.who)
                return found, fresh
        raise IgorError(f"igor's state store at {url} keeps changing its marker; try again.")

    def _marker(self, how: str) -> Marker:
        return Marker(uuid.uuid4().hex, how, self.clock().isoformat(), self.who)

    def _tell(self, reset: Marker) -> None:
        """Say a reset in the log once (when this igor is the bot)."""
        if not self.say or self._said == reset.at:
            return
        self._said = reset.at
        problem = StoreWasReset(self.store.url, reset)
        log.error("%s %s", problem.message, problem.hint)
