"""Edits to Slack messages from one thread, at a pace Slack allows.

`chat.update` is rate limited (about 50 calls a minute): edits go out from one
thread, at most `UPDATES_PER_MINUTE` a minute in all, the latest text of each
message wins, and a message is edited only when its text changes, so a poll
never waits on Slack. A backlog (a burst of followed deploys) goes out up to
`GROUP` edits at a time, then a pause as long as theirs: the same pace (at most
44 in any minute), a fifth of the thread's wake-ups.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from igor_cli.render.slack import SlackMessage

log = logging.getLogger("igor.follow")

UPDATES_PER_MINUTE = 40
GROUP = 5  # edits sent one after another before the pause they earn


class Updater:
    """Sends message edits from one thread: latest text wins, never faster than the limit."""

    def __init__(self, per_minute: int = UPDATES_PER_MINUTE) -> None:
        self._gap = 60.0 / per_minute
        self._pending: OrderedDict[int, tuple[Callable[[SlackMessage], None], SlackMessage]] = (
            OrderedDict()
        )
        self._sent: dict[int, str] = {}
        self._changed = threading.Condition()
        self._stopped = False
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="igor-updates", daemon=True)
        self._thread.start()

    def offer(self, send: Callable[[SlackMessage], None], message: SlackMessage) -> None:
        """Edit a message to `message` soon, unless it already says that."""
        key = id(send)
        with self._changed:
            if self._sent.get(key) == message.text:
                self._pending.pop(key, None)
                return
            self._pending[key] = (send, message)
            self._changed.notify()

    def stop(self) -> None:
        """Send nothing more."""
        with self._changed:
            self._stopped = True
            self._pending.clear()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopped and not self._pending:
                    self._changed.wait()
                if self._stopped:
                    return
                group: list[tuple[Callable[[SlackMessage], None], SlackMessage]] = []
                while self._pending and len(group) < GROUP:
                    key, (send, message) = self._pending.popitem(last=False)
                    self._sent[key] = message.text
                    group.append((send, message))
            for send, message in group:
                if self._stopped:
                    return
                _quietly(send, message)
                self.sent += 1
            time.sleep(self._gap * len(group))


def _quietly(send: Callable[[SlackMessage], None], message: SlackMessage) -> None:
    # Slack being unavailable for one edit must not stop the others.
    try:
        send(message)
    except Exception:
        log.warning("could not edit a message in Slack", exc_info=True)
