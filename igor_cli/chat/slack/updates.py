"""Edits to Slack messages from one thread, at a pace Slack allows.

`chat.update` is rate limited (about 50 calls a minute): edits go out from one
thread, at most `UPDATES_PER_MINUTE` a minute in all, the latest text of each
message wins, and a message is edited only when its text changes, so a poll
never waits on Slack. A backlog (a burst of followed deploys) goes out up to
`GROUP` edits at a time, then a pause as long as theirs: the same pace (at most
44 in any minute), a fifth of the thread's wake-ups. Final edits (a deployment's
outcome) go before progress edits: behind a backlog, a message that says
"deploying" minutes after its outcome was posted below it would mislead.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable

from igor_cli.render.slack import SlackMessage

log = logging.getLogger("igor.follow")

UPDATES_PER_MINUTE = 40
GROUP = 5  # edits sent one after another before the pause they earn

_Send = Callable[[SlackMessage], None]  # edits one message


class Updater:
    """Sends message edits from one thread: latest text wins, outcomes first, never faster
    than the limit."""

    def __init__(self, per_minute: int = UPDATES_PER_MINUTE) -> None:
        self._gap = 60.0 / per_minute
        # Edits due, by message (its `send`): final ones (sent first), then progress, each
        # oldest first; what each message said last, and the messages whose final edit went
        # out (both forgotten with the message).
        self._finals: OrderedDict[_Send, SlackMessage] = OrderedDict()
        self._progress: OrderedDict[_Send, SlackMessage] = OrderedDict()
        self._sent: weakref.WeakKeyDictionary[_Send, str] = weakref.WeakKeyDictionary()
        self._over: weakref.WeakSet[_Send] = weakref.WeakSet()
        self._changed = threading.Condition()
        self._stopped = False
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="igor-updates", daemon=True)
        self._thread.start()

    def offer(self, send: _Send, message: SlackMessage, *, final: bool = False) -> None:
        """Edit a message to `message` soon, unless it already says that. `final`: the
        message's last text (a deployment's outcome); it goes before progress edits, and no
        progress edit replaces it or follows it."""
        with self._changed:
            if send in self._over:
                return
            if send in self._finals:
                if final:
                    self._finals[send] = message
                return
            if self._sent.get(send) == message.text:
                self._progress.pop(send, None)
                return
            if final:
                self._progress.pop(send, None)
                self._finals[send] = message
            else:
                self._progress[send] = message
            self._changed.notify()

    def stop(self) -> None:
        """Send nothing more."""
        with self._changed:
            self._stopped = True
            self._finals.clear()
            self._progress.clear()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopped and not (self._finals or self._progress):
                    self._changed.wait()
                if self._stopped:
                    return
                group: list[tuple[_Send, SlackMessage]] = []
                while self._finals and len(group) < GROUP:
                    send, message = self._finals.popitem(last=False)
                    self._sent.pop(send, None)
                    self._over.add(send)  # its last edit: nothing after it
                    group.append((send, message))
                while self._progress and len(group) < GROUP:
                    send, message = self._progress.popitem(last=False)
                    self._sent[send] = message.text
                    group.append((send, message))
            for send, message in group:
                if self._stopped:
                    return
                _quietly(send, message)
                self.sent += 1
            time.sleep(self._gap * len(group))


def _quietly(send: _Send, message: SlackMessage) -> None:
    # Slack being unavailable for one edit must not stop the others.
    try:
        send(message)
    except Exception:
        log.warning("could not edit a message in Slack", exc_info=True)
