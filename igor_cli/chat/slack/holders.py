"""Telling a lock's holder in Slack that their lock was forced open (state/locks.py:
ForcedUnlock): in the thread they locked it in, or their direct message with the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from igor_cli.chat.slack.audit import audit
from igor_cli.chat.slack.delivery import Delivery, Place
from igor_cli.render.slack import render_forced_unlock

if TYPE_CHECKING:
    from igor_cli.chat.bridge import Reply
    from igor_cli.config import Environment
    from igor_cli.state.locks import ForcedUnlock, Lock


def holder_place(lock: Lock) -> Place | None:
    """Where a lock's holder is told about their lock: the thread they locked it in, or
    their direct message with the app when the lock does not say (a Slack user only)."""
    if lock.holder_via != "slack":
        return None
    if lock.channel:
        return Place(lock.channel, lock.thread, lock.holder_user)
    return Place(lock.holder_user, "", lock.holder_user)  # a user ID as the channel: the DM


def tell_forced_holder(delivery: Delivery, reply: Reply, place: Place) -> None:
    """A lock forced open here in Slack (no notice was left for it): its holder is told
    in the thread they locked it in, unless this reply (which mentions them) is there."""
    notice = getattr(reply.outcome, "forced", None)
    held = holder_place(notice.lock) if notice is not None else None
    if notice is None or held is None:
        return
    here = (held.channel, held.thread) == (place.channel, place.thread)
    if here or held.channel == held.user:
        return  # this very thread, or their direct message: the reply's mention told them
    tell_holder(delivery, notice, held, name_holder=False)


def tell_notices(env: Environment, delivery: Delivery) -> None:
    """Holders of locks forced open elsewhere (a shell): each told once, across replicas."""
    from igor_cli.state.locks import take_notices

    store = env.state_or_none()
    if store is None:
        return
    for notice in take_notices(store):
        held = holder_place(notice.lock)
        if held is not None:
            tell_holder(delivery, notice, held)


def tell_holder(
    delivery: Delivery, notice: ForcedUnlock, place: Place, *, name_holder: bool = True
) -> None:
    """Post the notice in `place`, and say so in the audit log."""
    said = render_forced_unlock(notice, name_holder=name_holder)
    delivery.post(place, said, context={"command": "unlock", "outcome": "holder told"})
    audit("forced-unlock told", user=notice.lock.holder_user, channel=place.channel,
          stack=notice.lock.label, by=notice.by_user)  # fmt: skip
