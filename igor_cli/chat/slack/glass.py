"""The glass of a freeze broken from Slack, told where the team sees it.

A change made during a freeze with `--break-glass` is answered in its thread like
any other, and said again where the team will see it: the channel it was asked in
(not a direct message), the thread of the stack's lock when it was taken in a
channel, and the `[slack] notify` channel. A glass broken in a direct message, or
by a slash command from a channel igor is not in, is still heard in the last two;
with neither, the log says nobody else could be told. The record of it is kept by
`core.perform.perform` when the change is made.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from igor_cli.chat.slack.delivery import Delivery, Place
from igor_cli.render.slack import mention, message, mrkdwn

if TYPE_CHECKING:
    from igor_cli.chat.bridge import Reply
    from igor_cli.config import Environment

log = logging.getLogger("igor.serve")

CHANNELS = ("C", "G")  # public and private channels: where a team reads (not D, not U)


def announce_broken_glass(
    delivery: Delivery, env: Environment, notify: str, reply: Reply, place: Place
) -> None:
    """Tell the team of a change posted with --break-glass while a freeze held its stack
    (nothing when no freeze did: then no glass was broken)."""
    from igor_cli.core.request import Change
    from igor_cli.freeze import freeze_in_the_way, freezes_from_config

    request, outcome = reply.request, reply.outcome
    if not isinstance(request, Change) or not request.break_glass or outcome is None:
        return
    stack = getattr(outcome, "stack", None)
    if stack is None or not outcome.posted:
        return
    freezes = freezes_from_config(env.config(), str(env.config_path()))
    window = freeze_in_the_way(freezes, stack.name, stack.environment, env.clock())
    if window is None:
        return
    text = (
        f":rotating_light: {mrkdwn(mention(place.user))} broke the glass: "
        f"{mrkdwn(f'{reply.command} of {stack.label}')} with --break-glass during "
        f"{mrkdwn(window.describe())}, because: {mrkdwn(request.reason)}"
    )
    if place.thread and place.channel.startswith(CHANNELS):
        text += f" (thread {place.thread})"
    for there in team_places(env, notify, place, stack.uid):
        delivery.post(
            there, message(text), context={"command": reply.command, "outcome": "break-glass"}
        )


def team_places(env: Environment, notify: str, place: Place, stack_uid: str) -> list[Place]:
    """Where the team hears of a change to a stack asked for at `place`: that channel, the
    thread of the stack's lock taken in a channel, the notify channel (each once). No
    place names a user: a post that fails is not turned into a direct message."""
    from igor_cli.errors import IgorError
    from igor_cli.state.locks import current_locks

    places: list[Place] = []
    if place.channel.startswith(CHANNELS):
        places.append(Place(place.channel))
    try:
        store = env.state_or_none()
        held = current_locks(store).get(stack_uid) if store is not None else None
    except IgorError:  # the store failed since the change: the other places still hear
        held = None
    lock = held[0] if held is not None else None
    if lock is not None and lock.holder_via == "slack" and lock.channel.startswith(CHANNELS):
        places.append(Place(lock.channel, lock.thread))
    if notify:
        places.append(Place(notify))
    unique = list({(p.channel, p.thread): p for p in places}.values())
    if not unique:
        log.warning("the glass of a freeze was broken in a direct message and nobody else "
                    "could be told: [slack] notify names no channel")  # fmt: skip
    return unique
