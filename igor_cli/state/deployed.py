"""What igor itself deployed: the image tags, ref and profile it sent, kept in the store.

Cloud 66 shows a deployment's git hash but never the image tags a docker stack's
deployment ran, nor the ref or profile asked for. igor knows what it sent, so
it keeps that here (one record a POST, under `deployed:<stack uid>:<time>:<n>`),
and `rollback` finds what to go back to in these records: a deployment igor did
not make stays one whose tags nobody can tell. Every igor sharing the store
(replicas, shells pointed at the team's Redis) shares the records.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from igor_cli.state.store import Store

DEPLOYED_PREFIX = "deployed:"
DEPLOYED_SECONDS = 400 * 86400.0  # a rollback a year later still finds what was sent
RECORDS_READ = 200  # the newest records of a stack read at most (older ones serve no rollback)


@dataclass(frozen=True)
class Deployed:
    """One deploy igor posted to a stack, and what it sent."""

    stack_uid: str
    at: datetime  # when igor posted it (igor's clock)
    services: tuple[str, ...] = ()  # `web:1.4` entries, as posted
    ref: str = ""
    profile: str = ""
    user_reference: str = ""
    action_id: str = ""  # Cloud 66's async action, when its answer named one

    def to_json(self) -> str:
        """The record as stored."""
        return json.dumps(
            {
                "stack_uid": self.stack_uid,
                "at": self.at.isoformat(),
                "services": list(self.services),
                "ref": self.ref,
                "profile": self.profile,
                "user_reference": self.user_reference,
                "action_id": self.action_id,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Deployed | None:
        """A stored record; None for one igor cannot read (an older or damaged entry)."""
        try:
            data: Any = json.loads(text)
            at = datetime.fromisoformat(str(data["at"]))
            services = tuple(str(s) for s in data.get("services") or ())
            return cls(
                stack_uid=str(data["stack_uid"]),
                at=at,
                services=services,
                ref=str(data.get("ref") or ""),
                profile=str(data.get("profile") or ""),
                user_reference=str(data.get("user_reference") or ""),
                action_id=str(data.get("action_id") or ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def remember_deployed(store: Store, record: Deployed) -> None:
    """Keep one record (a fresh key: records never overwrite each other)."""
    key = f"{DEPLOYED_PREFIX}{record.stack_uid}:{record.at.isoformat()}:{uuid.uuid4().hex[:12]}"
    store.claim(key, record.to_json(), DEPLOYED_SECONDS)


def deployed_to(store: Store | None, stack_uid: str) -> list[Deployed]:
    """igor's records of what it deployed to one stack, newest first (none without a store)."""
    if store is None:
        return []
    found = []
    for value in store.items(f"{DEPLOYED_PREFIX}{stack_uid}:").values():
        record = Deployed.from_json(value)
        if record is not None and record.stack_uid == stack_uid:
            found.append(record)
    found.sort(key=lambda r: r.at, reverse=True)
    return found[:RECORDS_READ]


def try_to_remember(store: Store | None, record: Deployed) -> None:
    """Keep a record after the POST went through; a store failing now loses only the record
    (a later rollback then says it cannot tell), never the deploy already posted."""
    from igor_cli.errors import IgorError

    if store is None:
        return
    with contextlib.suppress(IgorError, OSError):
        remember_deployed(store, record)


@dataclass(frozen=True)
class Ledger:
    """igor's records in one store (None: no store could be opened), dated by one clock."""

    store: Store | None
    clock: Callable[[], datetime]

    def sent(
        self,
        stack_uid: str,
        services: Sequence[str] = (),
        ref: str = "",
        profile: str = "",
        user_reference: str = "",
        action_id: str = "",
    ) -> None:
        """Keep what a POST that went through sent."""
        record = Deployed(
            stack_uid, self.clock(), tuple(services), ref, profile, user_reference, action_id
        )
        try_to_remember(self.store, record)

    def of(self, stack_uid: str) -> list[Deployed]:
        """What igor deployed to the stack, newest first (a store failing raises)."""
        return deployed_to(self.store, stack_uid)


def tags_of(services: Sequence[str]) -> dict[str, str]:
    """`["web:1.4", "worker"]` -> {"web": "1.4", "worker": ""}."""
    return {name.strip(): tag.strip() for name, _, tag in (s.partition(":") for s in services)}
