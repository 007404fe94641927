"""Deploy lock records in the state store, and the refusal they cause.

A lock is kept under `lock:<stack uid>` for as long as it lasts, so an expired
lock vanishes by itself. The commands that take and release locks are in
`igor_cli/features/locks.py`; every change checks this record first (`core/perform.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from igor_cli.errors import IgorError
from igor_cli.identity import Person

if TYPE_CHECKING:
    from igor_cli.state.store import Store

LOCK_PREFIX = "lock:"


def in_words(seconds: float) -> str:
    """`4 hours`, `1 hour 30 minutes`, `45 seconds`, `2 days`."""
    whole = round(seconds)
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count != 1 else ''}")
    return " ".join(parts[:2]) or "0 seconds"


# -- the record ----------------------------------------------------------------


@dataclass(frozen=True)
class Lock:
    """Who holds a stack, why, since when and until when."""

    stack_uid: str
    stack_name: str
    environment: str
    holder: Person
    reason: str
    started: datetime
    expires: datetime
    channel: str = ""  # where a lock taken in chat was taken: its holder is told there
    thread: str = ""  # (the `lock` command's thread; none for a shell's or a slash command's)

    @property
    def label(self) -> str:
        """`shop (production)`, as igor names stacks."""
        return f"{self.stack_name} ({self.environment})" if self.environment else self.stack_name

    @property
    def holder_via(self) -> str:
        """How the holder reached igor, as the record writes it (`cli`, `chat`, `slack`)."""
        return self.holder.via

    @property
    def holder_user(self) -> str:
        """The holder's id, as the record writes it (`alice@laptop`, a Slack user ID)."""
        return self.holder.id

    def held_by(self, person: Person) -> bool:
        """Whether this person holds it (`Person.same_person`): the same Slack user, or the
        same account on the same machine, in a shell or in `igor chat`."""
        return self.holder.same_person(person)

    def until(self, now: datetime) -> str:
        """`until 14:05 UTC (in 3 hours 59 minutes)`."""
        left = max(0.0, (self.expires - now).total_seconds())
        return f"until {self.expires:%Y-%m-%d %H:%M %Z} (in {in_words(left)})".replace("  ", " ")

    def dumps(self) -> str:
        """The record as the store keeps it."""
        return json.dumps(self.facts(), separators=(",", ":"), ensure_ascii=False)

    def facts(self) -> dict[str, Any]:
        """The lock in igor's JSON output (and in the store)."""
        return {
            "stack": {
                "uid": self.stack_uid,
                "name": self.stack_name,
                "environment": self.environment,
            },
            "holder": self.holder.facts(),
            "reason": self.reason,
            "started_at": self.started.isoformat(),
            "expires_at": self.expires.isoformat(),
            "place": {"channel": self.channel, "thread": self.thread} if self.channel else None,
        }

    @classmethod
    def loads(cls, text: str) -> Lock | None:
        """A record read back; None for anything igor did not write."""
        try:
            data = json.loads(text)
            stack = data["stack"]
            # A way in this igor does not know (a newer igor's) still holds the lock.
            holder = Person.of_record(str(data["holder"]["via"]), str(data["holder"]["user"]))
            place = data.get("place") or {}  # records written before igor kept it have none
            return cls(
                str(stack["uid"]), str(stack["name"]), str(stack["environment"]),
                holder, str(data["reason"]),
                datetime.fromisoformat(data["started_at"]),
                datetime.fromisoformat(data["expires_at"]),
                str(place.get("channel") or ""), str(place.get("thread") or ""),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None


def lock_key(stack_uid: str) -> str:
    """Where a stack's lock is kept."""
    return LOCK_PREFIX + stack_uid


def current_locks(store: Store) -> dict[str, tuple[Lock, str]]:
    """Every live lock by stack uid, with the stored text (for compare-and-delete)."""
    return {uid: (lock, text) for uid, (lock, text) in guarding_locks(store).items() if lock}


def guarding_locks(store: Store) -> dict[str, tuple[Lock | None, str]]:
    """Every live lock by stack uid, as the guard reads them: a record igor cannot read
    (damaged, or not igor's) is there as None, and holds its stack (a guard fails closed)."""
    found: dict[str, tuple[Lock | None, str]] = {}
    for key, text in store.items(LOCK_PREFIX).items():
        lock = Lock.loads(text)
        found[lock.stack_uid if lock is not None else key[len(LOCK_PREFIX) :]] = (lock, text)
    return found


class LockUnreadable(IgorError):
    """A change to a stack whose lock record cannot be read: nothing was posted."""

    def __init__(self, label: str, stack_uid: str, done: str = "Nothing was posted.") -> None:
        super().__init__(
            f"{label} has a lock igor cannot read (its record in the state store is damaged, "
            f"or not igor's). {done}",
            unreadable_hint(stack_uid),
        )


def unreadable_hint(stack_uid: str) -> str:
    """How a lock igor cannot read ends: by itself, or forced (its key in the store named)."""
    return (
        f"It ends when its time is up; to end it now: igor unlock -s {stack_uid} --force "
        f"(on record; it deletes the key {lock_key(stack_uid)} from the state store)."
    )


def unreadable_locks(store: Store) -> list[str]:
    """The stacks (by uid) held by a lock record igor cannot read, for `igor locks` to show."""
    return sorted(uid for uid, (lock, _) in guarding_locks(store).items() if lock is None)


class StackLocked(IgorError):
    """A change to a stack someone else has locked: nothing was posted."""

    def __init__(self, lock: Lock, now: datetime) -> None:
        self.lock, self.now = lock, now
        super().__init__(
            self.said(lock.holder.name),
            "Ask them to unlock it (`igor unlock`), or wait until the lock expires.",
        )

    def said(self, who: str) -> str:
        """The message, naming the holder as `who` (Slack names them as Slack shows them)."""
        reason = f": {self.lock.reason}" if self.lock.reason else ""
        return (
            f"{self.lock.label} is locked by {who} {self.lock.until(self.now)}{reason}. "
            "Nothing was posted."
        )


# -- telling a holder their lock was forced ------------------------------------------

NOTICE_PREFIX = "notice:"
NOTICE_SECONDS = 86400.0  # a bot that is down longer than this does not tell it late


@dataclass(frozen=True)
class ForcedUnlock:
    """A lock someone else forced open, for its holder to be told in chat.

    The bot tells them itself when the lock is forced in Slack; anyone else (a
    shell cannot talk to Slack) leaves this record under `notice:<id>`, and a bot
    takes it (compare-and-delete: one replica) and tells the holder.
    """

    lock: Lock
    by: Person
    reason: str
    at: datetime

    @property
    def by_user(self) -> str:
        """Who forced it, by id, as the audit line writes it."""
        return self.by.id

    @property
    def told_now(self) -> bool:
        """Whether whoever forced it reached igor the way its holder can be told (Slack):
        then the bot that answers them tells the holder; anyone else leaves a notice."""
        return self.by.via == self.lock.holder.via

    def dumps(self) -> str:
        """The notice as the store keeps it."""
        return json.dumps(
            {"lock": self.lock.facts(), "by": self.by.facts(),
             "reason": self.reason, "at": self.at.isoformat()},
            separators=(",", ":"), ensure_ascii=False,
        )  # fmt: skip

    @classmethod
    def loads(cls, text: str) -> ForcedUnlock | None:
        """A notice read back; None for anything igor did not write."""
        try:
            data = json.loads(text)
            lock = Lock.loads(json.dumps(data["lock"]))
            if lock is None:
                return None
            by = Person.of_record(str(data["by"]["via"]), str(data["by"]["user"]))
            if by is None:
                return None
            return cls(lock, by, str(data.get("reason") or ""),
                       datetime.fromisoformat(data["at"]))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None


def leave_notice(store: Store, notice: ForcedUnlock) -> str:
    """Keep the notice for a bot to tell (a fresh key); returns its key."""
    import uuid

    key = f"{NOTICE_PREFIX}{notice.at.isoformat()}:{uuid.uuid4().hex[:12]}"
    store.claim(key, notice.dumps(), NOTICE_SECONDS)
    return key


def take_notices(store: Store) -> list[ForcedUnlock]:
    """The notices waiting, each taken by this caller alone (compare-and-delete)."""
    taken = []
    for key, text in store.items(NOTICE_PREFIX).items():
        if store.release(key, text):
            notice = ForcedUnlock.loads(text)
            if notice is not None:
                taken.append(notice)
    return taken
