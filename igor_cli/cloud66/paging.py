"""Cloud 66's paged lists: every page of a short list, or a stack's history from its newest end.

Every list answer is `{"response": [...], "count": N, "pagination": {...}}`, 30
entries a page. The stacks (and services, accounts) are read whole: page 1, then
the rest at once. A stack's deployments and actions grow with its history, so
they are read from the newest end, only as far as the question needs: Cloud 66
documents no order for them, so igor learns each stack's order once (page 1
against the last page) and keeps it (`ListOrders`: in the process, and in a file
beside the completion cache). With the order known, a command costs the same
requests whether the stack has 45 deployments or 3,000 (issue 20).

`SharedReads` lets the commands of one run (the bot's, above all) share one read
of a stack's history for a few seconds; a change reads afresh, and forgets what
it changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from igor_cli.errors import ApiError

PER_PAGE = 30  # the API's page size when an answer does not say
MAX_PAGES = 5_000  # more than this is a broken answer, not 150,000 stacks
# How many pages of a stack's history one read may take beyond what tells the order
# (the newest 90 entries): what a command needs is near the newest end, and a
# command must not cost more because a stack is old.
READ_PAGES = 3
NEWEST = "newest"
OLDEST = "oldest"
SHARED_SECONDS = 10.0  # how long one read of a stack's history serves other commands

T = TypeVar("T")
Body = Mapping[str, Any]
GetPage = Callable[[int], Body]  # one page's answer, by page number


def items(body: Body, path: str) -> list[Mapping[str, Any]]:
    """The entries of one page (`response`), refused when they are not a list of objects."""
    found = body.get("response")
    if found is None:
        return []
    if not isinstance(found, list) or not all(isinstance(i, Mapping) for i in found):
        raise ApiError(f"Cloud 66 answered {path} with something that is not a list.")
    return list(found)


def _pagination(body: Body) -> Mapping[str, Any]:
    pagination = body.get("pagination")
    return pagination if isinstance(pagination, Mapping) else {}


def integer(value: Any) -> int | None:
    """An int from an int or a string of digits; None otherwise (never a bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def total(body: Body) -> int | None:
    """How many entries the whole list holds, when the answer says (top level or pagination)."""
    count = integer(body.get("count"))
    return count if count is not None else integer(_pagination(body).get("count"))


def page_count(body: Body, on_first_page: int, path: str) -> int | None:
    """How many pages the first answer implies; None when it gives no count at all.

    `pagination.pages` when present (never more than the count implies), else the
    count (top level, or in `pagination`) over `per_page`. Without `per_page`, a
    full first page shows the page size; else the API's default of 30.
    """
    pagination = _pagination(body)
    pages = integer(pagination.get("pages"))
    if pages is not None and pages < 1:
        pages = None
    count = total(body)
    if count is not None:
        per_page = integer(pagination.get("per_page")) or 0
        if per_page < 1:
            per_page = on_first_page if 0 < on_first_page < count else PER_PAGE
        implied = max(1, -(-count // per_page))
        pages = implied if pages is None else min(pages, implied)
        if pages > MAX_PAGES:
            raise too_many_pages(path, f"{count:,} entries, {implied:,} pages")
    if pages is not None and pages > MAX_PAGES:
        raise too_many_pages(path, f"{pages:,} pages")
    return pages


def next_page(body: Body) -> int | None:
    """The page `pagination.next` names, if any."""
    return integer(_pagination(body).get("next"))


def too_many_pages(path: str, said: str) -> ApiError:
    """igor stops instead of making thousands of requests for one answer."""
    return ApiError(
        f"Cloud 66 answered {path} with {said}; igor reads at most {MAX_PAGES:,} pages, "
        "so it stopped instead of making that many requests.",
        "If IGOR_API_URL is set, check that it points at the Cloud 66 API.",
    )


# -- a whole list -------------------------------------------------------------


def every_entry(
    get: GetPage,
    path: str,
    *,
    workers: Callable[[int], int],
    stop: Callable[[], None],
    parse: Callable[[Mapping[str, Any]], T],
) -> list[T]:
    """Every entry of a paged list, in the API's order, each parsed as its page arrives (a
    big account's raw answers are not all held at once): page 1, then the rest at once
    (`workers(pages)` at most in flight), or by `next` when no answer counts them. `stop`
    tells the pages still running to give up when one fails."""
    first = get(1)
    found = [parse(entry) for entry in items(first, path)]
    pages = page_count(first, len(found), path)
    if pages is None:
        found.extend(_walk(get, path, first, parse))
    elif pages > 1:
        found.extend(_pages(get, path, pages, max(1, workers(pages)), stop, parse))
    return found


def _walk(get: GetPage, path: str, body: Body, parse: Callable[[Mapping[str, Any]], T]) -> list[T]:
    """No count to plan with: follow `next` one page at a time, forward only."""
    found: list[T] = []
    current = 1
    while (following := next_page(body)) is not None and following > current:
        if following > MAX_PAGES:
            raise too_many_pages(path, f"a page number of {following:,}")
        body = get(following)
        found.extend(parse(entry) for entry in items(body, path))
        current = following
    return found


def _pages(
    get: GetPage,
    path: str,
    pages: int,
    workers: int,
    stop: Callable[[], None],
    parse: Callable[[Mapping[str, Any]], T],
) -> list[T]:
    """Pages 2..`pages`, fetched concurrently, returned in page order."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    def page(number: int) -> list[T]:
        return [parse(entry) for entry in items(get(number), path)]

    if pages == 2:
        return page(2)
    pool = ThreadPoolExecutor(max_workers=min(workers, pages - 1), thread_name_prefix="igor-page")
    try:
        futures = [pool.submit(page, number) for number in range(2, pages + 1)]
        wait(futures, return_when=FIRST_EXCEPTION)
        found: list[T] = []
        for future in futures:
            found.extend(future.result())
        return found
    except BaseException:
        stop()  # the pages still running give up at their next retry
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- a stack's history, from the newest end -----------------------------------------


@dataclass(frozen=True)
class Newest(Generic[T]):
    """The newest entries of a stack's list, newest first, and how much of it that is."""

    items: tuple[T, ...]
    total: int | None = None  # how many the list holds, when Cloud 66 says
    complete: bool = True  # every entry was read

    @property
    def count(self) -> int:
        """How many the list holds: Cloud 66's count, else what was read."""
        return self.total if self.total is not None else len(self.items)


class OrderMemory(Protocol):
    """Where the list order learned for a stack is kept (`key`: the stack and the list)."""

    def order(self, key: str) -> str | None:
        """NEWEST or OLDEST when known."""
        ...

    def learned(self, key: str, order: str | None) -> None:
        """Keep (or, with None, forget) the order of one list."""
        ...


def newest(
    get: GetPage,
    path: str,
    parse: Callable[[Mapping[str, Any]], T],
    newness: Callable[[T], tuple[float, int]],
    enough: Callable[[Sequence[T]], bool],
    *,
    memory: OrderMemory | None = None,
    key: str = "",
    max_pages: int = READ_PAGES,
) -> Newest[T]:
    """The newest entries of a paged list whose order Cloud 66 does not document.

    Page 1 comes first (it carries the count). With one page, that is all. Else
    the order is the one remembered, or learned by reading the last page too;
    then pages are read from the newest end until `enough` of what was read
    (newest first) says so, `max_pages` at most. Without any count, `next` is
    followed from page 1 (oldest-first lists cannot be read from their end then).
    """
    first = get(1)
    entries = [parse(i) for i in items(first, path)]
    pages = page_count(first, len(entries), path)
    count = total(first)

    def done(found: list[T], complete: bool) -> Newest[T]:
        # An entry added meanwhile shifts the pages: one may be read twice.
        unique = list(dict.fromkeys(found))
        return Newest(tuple(sorted(unique, key=newness, reverse=True)), count, complete)

    if pages is None:
        return _walk_newest(get, path, parse, newness, enough, first, entries, memory, key, done)
    if pages <= 1:
        return done(entries, True)
    read: dict[int, list[T]] = {1: entries}
    order = memory.order(key) if memory is not None else None
    if order is not None and not _fits(order, entries, newness):
        order = None  # the list no longer reads the way it did: learn it again
    if order is None:
        read[pages] = [parse(i) for i in items(get(pages), path)]
        order = _order_of(read[1], read[pages], newness)
        if memory is not None:
            memory.learned(key, order)
    if order is None:
        # Page 1 and the last page cannot tell (no start times to compare): every page.
        rest = [parse(i) for n in range(2, pages) for i in items(get(n), path)]
        return done([*read[1], *rest, *read[pages]], True)
    numbers = range(1, pages + 1) if order == NEWEST else range(pages, 0, -1)
    found: list[T] = []
    taken = 0
    for number in numbers:
        if taken >= max_pages:
            break
        if number not in read:
            read[number] = [parse(i) for i in items(get(number), path)]
        found.extend(sorted(read[number], key=newness, reverse=True))
        taken += 1
        if enough(found):
            break
    return done(found, taken == pages)


def _walk_newest(
    get: GetPage,
    path: str,
    parse: Callable[[Mapping[str, Any]], T],
    newness: Callable[[T], tuple[float, int]],
    enough: Callable[[Sequence[T]], bool],
    body: Body,
    found: list[T],
    memory: OrderMemory | None,
    key: str,
    done: Callable[[list[T], bool], Newest[T]],
) -> Newest[T]:
    """No count: follow `next`; a list known to be newest first stops when it has enough."""
    newest_first = memory is not None and memory.order(key) == NEWEST
    current = 1
    while (following := next_page(body)) is not None and following > current:
        if newest_first and enough(sorted(found, key=newness, reverse=True)):
            return done(found, False)
        if following > MAX_PAGES:
            raise too_many_pages(path, f"a page number of {following:,}")
        body = get(following)
        found.extend(parse(i) for i in items(body, path))
        current = following
    return done(found, True)


def _order_of(
    first: Sequence[T], last: Sequence[T], newness: Callable[[T], tuple[float, int]]
) -> str | None:
    """NEWEST when page 1 holds newer entries than the last page, OLDEST when older."""
    if not first or not last:
        return None
    a, b = max(map(newness, first)), max(map(newness, last))
    if a == b:
        return None
    return NEWEST if a > b else OLDEST


def _fits(order: str, page: Sequence[T], newness: Callable[[T], tuple[float, int]]) -> bool:
    """Whether page 1 reads the way `order` says (newest first: descending), where it can tell."""
    keys = [newness(entry) for entry in page]
    if len(keys) < 2 or keys[0] == keys[-1]:
        return True
    return (keys[0] > keys[-1]) == (order == NEWEST)


# -- what is remembered between reads ----------------------------------------------


class ListOrders:
    """The orders learned, in this process and (when `path` is given) in a small JSON file,
    so a shell command does not learn again what the last one learned."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._known: dict[str, str] | None = None

    def order(self, key: str) -> str | None:
        """NEWEST or OLDEST when known."""
        with self._lock:
            return self._load().get(key)

    def learned(self, key: str, order: str | None) -> None:
        """Keep the order of one list (None forgets it)."""
        with self._lock:
            known = self._load()
            if known.get(key) == order:
                return
            if order is None:
                known.pop(key, None)
            else:
                known[key] = order
            self._save(known)

    def _load(self) -> dict[str, str]:
        if self._known is None:
            self._known = {}
            if self.path is not None:
                with contextlib.suppress(OSError, ValueError):
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                    if isinstance(data, dict):
                        self._known = {k: v for k, v in data.items() if v in (NEWEST, OLDEST)}
        return self._known

    def _save(self, known: dict[str, str]) -> None:
        if self.path is None:
            return
        import tempfile

        # A cache: one that cannot be written costs a request next time, nothing more.
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".orders-")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    stream.write(json.dumps(known, separators=(",", ":")))
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise


class SharedReads:
    """Reads of stacks' histories made in the last `seconds`, by what was read, and the
    list orders learned: the commands of one run share them (the bot answers many
    commands at once on one token of 3,000 requests an hour)."""

    def __init__(
        self,
        clock: Callable[[], float],
        orders: OrderMemory | None = None,
        seconds: float = SHARED_SECONDS,
    ) -> None:
        self.clock = clock
        self.orders = orders if orders is not None else ListOrders()
        self.seconds = seconds
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, Newest[Any]]] = {}
        self._forgotten: dict[str, int] = {}  # by stack uid: how many times (`forget`)

    def mark(self, stack_uid: str) -> int:
        """Where a read of the stack starts: it is kept only if no change to the stack was
        posted before it ended (`keep`)."""
        with self._lock:
            return self._forgotten.get(stack_uid, 0)

    def recent(self, key: str) -> Newest[Any] | None:
        """What was read under `key` in the last `seconds`, if anything."""
        with self._lock:
            seen = self._seen.get(key)
        if seen is None or self.clock() - seen[0] >= self.seconds:
            return None
        return seen[1]

    def keep(self, key: str, stack_uid: str, read: Newest[Any], mark: int) -> None:
        """Remember a read of the stack for the next commands, unless a change to it was
        posted since the read started at `mark` (it may not show the change)."""
        with self._lock:
            if self._forgotten.get(stack_uid, 0) == mark:
                self._seen[key] = (self.clock(), read)

    def forget(self, stack_uid: str) -> None:
        """A change to the stack was posted: its history reads anew, and a read under way
        is not kept."""
        with self._lock:
            self._forgotten[stack_uid] = self._forgotten.get(stack_uid, 0) + 1
            for key in [k for k in self._seen if k.endswith(f":{stack_uid}")]:
                del self._seen[key]
