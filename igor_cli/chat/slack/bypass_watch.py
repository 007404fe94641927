"""The bot's periodic look: holders of locks forced open elsewhere are told, and while
stacks are locked or frozen, deployments started outside igor are reported (chat/bypass.py)
with a Cancel button (clicks.py), each once across replicas."""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import TYPE_CHECKING

from igor_cli.chat.bridge import BUTTON_VALUE_LIMIT, Bridge
from igor_cli.chat.guard import PendingCommand
from igor_cli.chat.slack.audit import audit
from igor_cli.chat.slack.delivery import Delivery, Place
from igor_cli.chat.slack.holders import holder_place, tell_notices
from igor_cli.chat.workers import Scheduler, Workers
from igor_cli.config import Environment
from igor_cli.errors import IgorError
from igor_cli.render.slack import render_bypass

if TYPE_CHECKING:
    from igor_cli.chat.bypass import Bypass

log = logging.getLogger("igor.serve")

BYPASS_CHECK_SECONDS = 60.0  # how often locked and frozen stacks are looked at
FIRST_LOOK_SECONDS = 5.0  # after start: the connection is up, the first commands are in


class BypassWatch:
    """Looks every BYPASS_CHECK_SECONDS, on a Cloud 66 worker, until the bot stops."""

    def __init__(
        self,
        env: Environment,
        bridge: Bridge,
        *,
        delivery: Delivery,
        workers: Workers,
        scheduler: Scheduler,
        stopping: threading.Event,
        replica: str,
    ) -> None:
        self.env = env
        self.bridge = bridge
        self.delivery = delivery
        self.workers = workers
        self.scheduler = scheduler
        self.stopping = stopping
        self.replica = replica
        self._looked: dict[str, str] = {}  # what the last look could not do, and why

    def start(self) -> None:
        """The first look soon after start: notices of locks forced while no bot ran wait."""
        self.scheduler.call_later(min(FIRST_LOOK_SECONDS, BYPASS_CHECK_SECONDS), self.look)

    def look(self) -> None:
        """Now and then: tell holders whose locks were forced open elsewhere, and while
        stacks are locked or frozen, report deployments started outside igor."""
        if self.stopping.is_set():
            return
        from igor_cli.state.store import StateUnavailable

        def look() -> None:
            for what, step in (
                ("tell holders of forced locks", partial(tell_notices, self.env, self.delivery)),
                ("look for deployments outside igor", self._report),
            ):
                try:
                    step()
                except StateUnavailable:
                    pass  # the store's outage is said once, by the store (state/health.py)
                except IgorError as error:  # Cloud 66 down, say: one line when it starts
                    if self._looked.get(what) != error.message:
                        log.warning("could not %s: %s", what, error.message)
                    self._looked[what] = error.message
                    continue
                except Exception:  # a bug here must not stop the bot: log it, with its trace
                    log.warning("could not %s", what, exc_info=True)
                self._looked.pop(what, None)

        # On a Cloud 66 worker, not the timer thread that expires questions; when
        # every worker is busy, this look is skipped.
        self.workers.submit(look)
        self.scheduler.call_later(BYPASS_CHECK_SECONDS, self.look)

    def _report(self) -> None:
        from igor_cli.chat.bypass import BYPASS_SECONDS, find_bypasses
        from igor_cli.freeze import any_freeze_now, freezes_from_config
        from igor_cli.state.locks import current_locks
        from igor_cli.state.posts import posted_by_igor

        store = self.env.state_or_none()
        if store is None:
            return
        locks = [lock for lock, _ in current_locks(store).values()]
        freezes = freezes_from_config(self.env.config(), str(self.env.config_path()))
        now = self.env.clock()
        if not locks and not any_freeze_now(freezes, now):
            return  # nothing held back: nothing to ask Cloud 66
        client = self.bridge.connect()
        try:
            found = find_bypasses(client, locks, freezes, now, partial(posted_by_igor, store))
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()
        for bypass in found:
            if not store.claim(bypass.key, self.replica, BYPASS_SECONDS):
                continue  # reported already (here or by another replica)
            places = self._places(bypass)
            for place in places:
                said = render_bypass(bypass, self._cancel_offer(bypass, place))
                self.delivery.post(place, said, context={"command": "bypass", "outcome": "told"})
            if not places:
                log.warning("deployment %s of %s was started outside igor while it is held, "
                            "and nobody could be told: its lock was taken in a shell and "
                            "[slack] notify names no channel", bypass.deployment.id,
                            bypass.stack.label)  # fmt: skip
            audit("bypass", stack=bypass.stack.label, deployment=bypass.deployment.id,
                  triggered_by=bypass.deployment.triggered_by,
                  told=[p.channel for p in places])  # fmt: skip

    def _places(self, bypass: Bypass) -> list[Place]:
        """The lock holder's place, then the notify channel (once, if they are one)."""
        places = []
        held = holder_place(bypass.lock) if bypass.lock is not None else None
        if held is not None:
            places.append(held)
        notify = self.bridge.rules.notify
        if notify and not any((p.channel, p.thread) == (notify, "") for p in places):
            places.append(Place(notify, "", ""))
        return places

    def _cancel_offer(self, bypass: Bypass, place: Place) -> str:
        """The Cancel button's value for this place: the command that cancels exactly this
        deployment, signed, expiring ("" without a signing key: no button then)."""
        from igor_cli.chat.bypass import CANCEL_OFFER_SECONDS

        if self.bridge.signer is None:
            return ""
        offer = PendingCommand(
            bypass.cancel_words(), "", place.channel, place.thread, bypass.offer_id,
            expires=self.env.clock().timestamp() + CANCEL_OFFER_SECONDS,
            stack_uid=bypass.stack.uid, offered=True,
        )  # fmt: skip
        value = self.bridge.signer.sign(offer)
        return value if len(value) <= BUTTON_VALUE_LIMIT else ""  # the command, as text, then
