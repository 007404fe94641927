"""Following deployments for chat: one poll loop per deployment, however many watch.

Cloud 66 allows 3,000 requests an hour per token, and the bot shares one token
with the whole workspace: several people asking about one deployment join the
loop that already runs, and the loops space their polls out so that together
they stay within the policy's hourly budget. Progress edits go through one
updater thread that sends a message only when its text changes, at most
`UPDATES_PER_MINUTE` edits a minute in all (Slack's `chat.update` allows about
50), so a poll never waits on Slack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from igor_cli.actions import Client, FollowPolicy, Progress, follow
from igor_cli.cloud66 import Stack
from igor_cli.errors import IgorError
from igor_cli.render.slack import SlackMessage, render_error, render_progress, render_stopped

log = logging.getLogger("igor.follow")

UPDATES_PER_MINUTE = 40


@dataclass
class Watcher:
    """Someone waiting for a deployment's outcome, and where to tell them."""

    user: str
    post: Callable[[SlackMessage], None]  # a new message in their thread
    update: Callable[[SlackMessage], None] | None = None  # edit the "deploy started" message
    place: str = ""  # channel and thread: watchers in one place share one final message


@dataclass
class _Watch:
    stack: Stack
    action_id: str
    watchers: list[Watcher] = field(default_factory=list)


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
                key, (send, message) = self._pending.popitem(last=False)
                self._sent[key] = message.text
            _quietly(send, message)
            self.sent += 1
            time.sleep(self._gap)


class Followers:
    """Runs one poll loop per (stack, async action) and fans the news out."""

    def __init__(self, connect: Callable[[], Client], policy: FollowPolicy) -> None:
        self.connect = connect
        self.policy = policy
        self.updates = Updater()
        self._lock = threading.Lock()
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def watch(self, stack: Stack, action_id: str, watcher: Watcher) -> bool:
        """Add a watcher; returns True if this started a new poll loop."""
        key = (stack.uid, action_id)
        with self._lock:
            if self._stopping.is_set():
                return False
            existing = self._watches.get(key)
            if existing is not None:
                existing.watchers.append(watcher)
                return False
            watch = self._watches[key] = _Watch(stack, action_id, [watcher])
            thread = threading.Thread(
                target=self._run, args=(key, watch), name=f"follow-{stack.name}", daemon=True
            )
            self._threads.append(thread)
        thread.start()
        return True

    @property
    def active(self) -> int:
        """How many deployments are being followed now."""
        with self._lock:
            return len(self._watches)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every poll loop to end; True if none is left running."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in threads)

    def stop(self) -> int:
        """Stop following: tell every watcher that igor no longer watches; returns how many."""
        self._stopping.set()
        self.updates.stop()
        with self._lock:
            watches = list(self._watches.values())
            self._watches.clear()
        for watch in watches:
            self._tell_each_place(watch, render_stopped(watch.stack))
        return len(watches)

    def _run(self, key: tuple[str, str], watch: _Watch) -> None:
        last: Progress | None = None
        try:
            client = self.connect()
            try:
                for progress in follow(
                    client, watch.stack.uid, watch.action_id, self.policy, lambda: self.active
                ):
                    if self._stopping.is_set():
                        return  # stop() has told the watchers already
                    last = progress
                    if not progress.finished and not progress.timed_out:
                        self._tell_progress(watch, progress)
            finally:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
        except IgorError as error:
            self._finish(key, render_error(error), render_error(error))
            return
        except Exception:  # a bug here must not kill the bot; say so in the log
            log.exception("following %s failed", watch.stack.label)
            return
        assert last is not None
        with self._lock:
            users = [w.user for w in watch.watchers]
        # The thread gets the outcome (mentioning who asked); the "started"
        # message is edited to say it too, so it never reads "deploying" forever.
        self._finish(
            key, render_progress(watch.stack, last, users), render_progress(watch.stack, last, [])
        )

    def _tell_progress(self, watch: _Watch, progress: Progress) -> None:
        message = render_progress(watch.stack, progress, [])
        with self._lock:
            watchers = list(watch.watchers)
        for watcher in watchers:
            if watcher.update is not None:
                self.updates.offer(watcher.update, message)

    def _finish(self, key: tuple[str, str], final: SlackMessage, edit: SlackMessage) -> None:
        with self._lock:
            watch = self._watches.pop(key, None)
        if watch is None or self._stopping.is_set():
            return
        for watcher in watch.watchers:
            if watcher.update is not None:
                self.updates.offer(watcher.update, edit)
        self._tell_each_place(watch, final)

    @staticmethod
    def _tell_each_place(watch: _Watch, message: SlackMessage) -> None:
        told: set[str] = set()
        for watcher in watch.watchers:
            if watcher.place and watcher.place in told:
                continue
            told.add(watcher.place)
            _quietly(watcher.post, message)


def _quietly(send: Callable[[SlackMessage], None], message: SlackMessage) -> None:
    # Slack being unavailable for one message must not stop the loop.
    try:
        send(message)
    except Exception:
        log.warning("could not post a follow-up to Slack", exc_info=True)
