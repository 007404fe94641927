"""Following deployments for chat: one poll loop per deployment, however many watch.

Cloud 66 allows 3,000 requests an hour, so when several people ask about the
same deployment they join the loop that already runs instead of starting their
own. Each watcher is told how it goes where it asked (its thread).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from igor_cli.actions import Client, FollowPolicy, Progress, follow
from igor_cli.cloud66 import Stack
from igor_cli.errors import IgorError
from igor_cli.render.slack import SlackMessage, render_error, render_progress

log = logging.getLogger("igor.follow")


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


class Followers:
    """Runs one poll loop per (stack, async action) and fans the news out."""

    def __init__(self, connect: Callable[[], Client], policy: FollowPolicy) -> None:
        self.connect = connect
        self.policy = policy
        self._lock = threading.Lock()
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._threads: list[threading.Thread] = []
        self.loops_started = 0

    def watch(self, stack: Stack, action_id: str, watcher: Watcher) -> bool:
        """Add a watcher; returns True if this started a new poll loop."""
        key = (stack.uid, action_id)
        with self._lock:
            existing = self._watches.get(key)
            if existing is not None:
                existing.watchers.append(watcher)
                return False
            watch = self._watches[key] = _Watch(stack, action_id, [watcher])
            self.loops_started += 1
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

    def _run(self, key: tuple[str, str], watch: _Watch) -> None:
        last: Progress | None = None
        try:
            client = self.connect()
            try:
                for progress in follow(client, watch.stack.uid, watch.action_id, self.policy):
                    last = progress
                    if not progress.finished and not progress.timed_out:
                        self._tell_progress(watch, progress)
            finally:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
        except IgorError as error:
            self._finish(key, render_error(error))
            return
        except Exception:  # a bug here must not kill the bot; say so in the log
            log.exception("following %s failed", watch.stack.label)
            return
        assert last is not None
        with self._lock:
            users = [w.user for w in watch.watchers]
        self._finish(key, render_progress(watch.stack, last, users))

    def _tell_progress(self, watch: _Watch, progress: Progress) -> None:
        message = render_progress(watch.stack, progress, [])
        with self._lock:
            watchers = list(watch.watchers)
        for watcher in watchers:
            if watcher.update is not None:
                _quietly(watcher.update, message)

    def _finish(self, key: tuple[str, str], final: SlackMessage) -> None:
        with self._lock:
            watch = self._watches.pop(key)
        told: set[str] = set()
        for watcher in watch.watchers:
            if watcher.place and watcher.place in told:
                continue
            told.add(watcher.place)
            _quietly(watcher.post, final)


def _quietly(send: Callable[[SlackMessage], None], message: SlackMessage) -> None:
    # Slack being unavailable for one update must not stop the loop.
    try:
        send(message)
    except Exception:
        log.warning("could not post a follow-up to Slack", exc_info=True)
