"""Following deployments for chat: one poll loop per deployment, however many watch.

Cloud 66 allows 3,000 requests an hour per token, and the bot shares one token
with the whole workspace: several people asking about one deployment join the
loop that already runs, and the loops space their polls out so that together
they stay within the policy's hourly budget. Watchers are told `News`, which
their adapter renders (Slack edits its messages at a pace Slack allows).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from igor_cli.cloud66.models import Stack
from igor_cli.core.follow import FollowPolicy, Progress, follow
from igor_cli.errors import IgorError

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client

log = logging.getLogger("igor.follow")


@dataclass(frozen=True)
class News:
    """What became of a followed deployment, for an adapter to render."""

    stack: Stack
    progress: Progress | None = None  # a look at it, or the last one
    error: IgorError | None = None  # following ended on this error
    stopped: bool = False  # igor stopped watching (it is shutting down)
    requesters: tuple[str, ...] = ()  # who asked: the final news names them
    what: str = ""  # what the deployment is, when more than a deploy (`Followed.what`)
    doing: str = ""  # what runs, when it is a stack action (`Followed.doing`)

    @property
    def final(self) -> bool:
        """The last news of it: its outcome, an error, or igor stopped watching."""
        return self.stopped or self.progress is None or self.progress.last


@dataclass
class Watcher:
    """Someone waiting for a deployment's outcome, and where to tell them."""

    user: str
    post: Callable[[News], None]  # a new message in their thread
    update: Callable[[News], None] | None = None  # edit the "deploy started" message
    place: str = ""  # channel and thread: watchers in one place share one final message
    what: str = ""  # how they asked for it: `Rollback of shop (production) to 9b7e0d4`
    doing: str = ""  # what runs, when it is a stack action: `Restarting`
    # Asked just before the outcome is told: False when it must not be told from here
    # (told already by another replica, or the state store cannot say). None: always.
    claim: Callable[[], bool] | None = None
    # Told once this loop is done with the watcher (the outcome told, or not, or stopping).
    done: Callable[[News], None] | None = None

    def told(self, news: News) -> News:
        """The news as this watcher hears it: named the way they asked for it."""
        if not self.what and not self.doing:
            return news
        return dataclasses.replace(news, what=self.what or news.what, doing=self.doing)


@dataclass
class _Watch:
    stack: Stack
    action_id: str
    watchers: list[Watcher] = field(default_factory=list)
    already: float = 0.0  # seconds it ran before the loop started


class Followers:
    """Runs one poll loop per (stack, async action) and fans the news out."""

    def __init__(self, connect: Callable[[], Cloud66Client], policy: FollowPolicy) -> None:
        self.connect = connect
        self.policy = policy
        self._lock = threading.Lock()
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def watch(self, stack: Stack, action_id: str, watcher: Watcher, already: float = 0.0) -> bool:
        """Add a watcher; returns True if this started a new poll loop.

        `already`: seconds the deployment ran before (someone attached with `watch`).
        """
        key = (stack.uid, action_id)
        with self._lock:
            if self._stopping.is_set():
                return False
            existing = self._watches.get(key)
            if existing is not None:
                existing.watchers.append(watcher)
                return False
            watch = self._watches[key] = _Watch(stack, action_id, [watcher], already)
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
        with self._lock:
            watches = list(self._watches.values())
            self._watches.clear()
        for watch in watches:
            news = News(watch.stack, stopped=True)
            self._tell_each_place(watch, news)
            _done(watch.watchers, news)
        return len(watches)

    def drop(
        self, stack_uid: str, action_id: str, which: Callable[[Watcher], bool] = lambda _: True
    ) -> list[Watcher]:
        """Stop watching for these watchers without telling them anything (another replica
        tells them); the loop ends at its next look when none is left. Returns them."""
        with self._lock:
            watch = self._watches.get((stack_uid, action_id))
            if watch is None:
                return []
            dropped = [w for w in watch.watchers if which(w)]
            watch.watchers = [w for w in watch.watchers if not which(w)]
            if not watch.watchers:
                del self._watches[(stack_uid, action_id)]
        return dropped

    def _run(self, key: tuple[str, str], watch: _Watch) -> None:
        last: Progress | None = None
        try:
            client = self.connect()
            try:
                for progress in follow(
                    client,
                    watch.stack.uid,
                    watch.action_id,
                    self.policy,
                    lambda: self.active,
                    already=watch.already,
                ):
                    if self._stopping.is_set() or not self._still(key, watch):
                        return  # stop() has told the watchers already, or drop() let them go
                    last = progress
                    if not progress.last:
                        self._tell_progress(watch, progress)
            finally:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
        except IgorError as error:
            self._finish(key, watch, News(watch.stack, error=error))
            return
        except Exception:  # a bug here must not kill the bot; say so in the log
            log.exception("following %s failed", watch.stack.label)
            return
        assert last is not None
        self._finish(key, watch, News(watch.stack, last))

    def _still(self, key: tuple[str, str], watch: _Watch) -> bool:
        with self._lock:
            return self._watches.get(key) is watch

    def _tell_progress(self, watch: _Watch, progress: Progress) -> None:
        with self._lock:
            watchers = list(watch.watchers)
        for watcher in watchers:
            if watcher.update is not None:
                _quietly(watcher.update, watcher.told(News(watch.stack, progress)))

    def _finish(self, key: tuple[str, str], watch: _Watch, news: News) -> None:
        with self._lock:
            if self._watches.get(key) is not watch:
                return  # dropped, or stopped: someone else tells them
            del self._watches[key]
        if self._stopping.is_set():
            return
        # Each watcher is claimed first: an outcome is told once, wherever it is told.
        told = [w for w in watch.watchers if w.claim is None or _claimed(w)]
        # The "started" message is edited to say how it went, so it never reads
        # "deploying" forever; the thread gets the outcome, naming who asked.
        for watcher in told:
            if watcher.update is not None:
                _quietly(watcher.update, watcher.told(news))
        self._tell_each_place(_Watch(watch.stack, watch.action_id, told), news, name_them=True)
        users = tuple(dict.fromkeys(w.user for w in watch.watchers))
        _done(watch.watchers, dataclasses.replace(news, requesters=users))

    @staticmethod
    def _tell_each_place(watch: _Watch, news: News, *, name_them: bool = False) -> None:
        """One message a place; `name_them`: naming those who asked there, each once (a
        person who asked in two threads is named in both, never in someone else's)."""
        told: set[str] = set()
        for watcher in watch.watchers:
            if watcher.place and watcher.place in told:
                continue
            told.add(watcher.place)
            if name_them:
                here = [w.user for w in watch.watchers if w.place == watcher.place]
                if not watcher.place:  # a watcher of no known place is its own place
                    here = [watcher.user]
                news = dataclasses.replace(news, requesters=tuple(dict.fromkeys(here)))
            _quietly(watcher.post, watcher.told(news))


def _claimed(watcher: Watcher) -> bool:
    try:
        return watcher.claim is None or watcher.claim()
    except Exception:  # a claim that cannot be made is not made: told later, elsewhere
        log.warning("could not claim a deployment's outcome", exc_info=True)
        return False


def _done(watchers: list[Watcher], news: News) -> None:
    for watcher in watchers:
        if watcher.done is not None:
            _quietly(watcher.done, news)


def _quietly(tell: Callable[[News], None], news: News) -> None:
    # A chat platform being unavailable for one message must not stop the loop.
    try:
        tell(news)
    except Exception:
        log.warning("could not tell a watcher how a deployment goes", exc_info=True)
