"""Reading a stack's history from its newest end (igor_cli/cloud66/paging.py), page by page.

A fake list answers pages of numbered entries, newest or oldest first; each test
counts the pages asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from igor_cli.cloud66.paging import NEWEST, OLDEST, ListOrders, Newest, SharedReads, newest


class Listing:
    """`count` entries numbered 1 (oldest) to count, `per_page` a page, in `order`."""

    def __init__(self, count: int, order: str, per_page: int = 30, counted: bool = True) -> None:
        self.entries = list(range(1, count + 1))
        if order == NEWEST:
            self.entries.reverse()
        self.per_page = per_page
        self.counted = counted
        self.asked: list[int] = []

    def get(self, page: int) -> Mapping[str, Any]:
        self.asked.append(page)
        chunk = self.entries[(page - 1) * self.per_page : page * self.per_page]
        pages = -(-len(self.entries) // self.per_page)
        body: dict[str, Any] = {
            "response": [{"n": n} for n in chunk],
            "pagination": {"current": page, "next": page + 1 if page < pages else None},
        }
        if self.counted:
            body["count"] = len(self.entries)
            body["pagination"]["per_page"] = self.per_page
        return body


def _read(listing: Listing, want: int, memory: Any = None, max_pages: int = 3) -> Newest[int]:
    def enough(found: Sequence[int]) -> bool:
        return len(found) >= want

    return newest(
        listing.get,
        "/stacks/u/deployments",
        lambda entry: int(entry["n"]),
        lambda n: (float(n), n),
        enough,
        memory=memory,
        key="deployments:u",
        max_pages=max_pages,
    )


@pytest.mark.parametrize("order", [NEWEST, OLDEST])
def test_the_order_is_learnt_once_then_only_the_newest_end_is_read(order: str) -> None:
    memory = ListOrders()
    first = Listing(3000, order)
    read = _read(first, 10, memory)
    assert list(read.items) == list(range(3000, 2970, -1))  # whole pages, newest first
    assert (read.total, read.complete) == (3000, False)
    assert first.asked == [1, 100]  # the count, and the last page to tell the order
    assert memory.order("deployments:u") == order
    again = Listing(3000, order)
    assert list(_read(again, 10, memory).items)[:10] == list(range(3000, 2990, -1))
    # Known: newest first needs page 1 alone; oldest first, page 1 for the count and the last.
    assert again.asked == ([1] if order == NEWEST else [1, 100])


def test_a_short_last_page_reads_the_one_before_it_too() -> None:
    listing = Listing(3001, OLDEST)  # the last page holds one entry
    read = _read(listing, 10, ListOrders())
    assert list(read.items) == list(range(3001, 2970, -1))
    assert listing.asked == [1, 101, 100]


@pytest.mark.parametrize("order", [NEWEST, OLDEST])
def test_a_read_stops_at_its_cap_whatever_it_wanted(order: str) -> None:
    listing = Listing(3000, order)
    read = _read(listing, 10_000, ListOrders(), max_pages=3)
    assert len(read.items) == 90 and not read.complete
    assert len(listing.asked) <= 4
    assert read.items[0] == 3000


def test_one_page_is_all_there_is() -> None:
    listing = Listing(12, OLDEST)
    read = _read(listing, 5, ListOrders())
    assert list(read.items) == list(range(12, 0, -1)) and read.complete
    assert listing.asked == [1]


def test_an_order_that_no_longer_fits_is_learnt_again() -> None:
    memory = ListOrders()
    memory.learned("deployments:u", NEWEST)  # wrong: the list is oldest first now
    listing = Listing(100, OLDEST)
    read = _read(listing, 5, memory)
    assert list(read.items)[:5] == [100, 99, 98, 97, 96]
    assert memory.order("deployments:u") == OLDEST
    assert listing.asked[:2] == [1, 4]


def test_without_a_count_next_is_followed_and_a_known_newest_order_stops_early() -> None:
    memory = ListOrders()
    unknown = Listing(100, NEWEST, counted=False)
    assert len(_read(unknown, 5, memory).items) == 100  # every page: nothing says the order
    assert unknown.asked == [1, 2, 3, 4]
    memory.learned("deployments:u", NEWEST)
    known = Listing(100, NEWEST, counted=False)
    assert list(_read(known, 5, memory).items)[:5] == [100, 99, 98, 97, 96]
    assert known.asked == [1]  # page 1 holds enough


def test_orders_are_kept_in_a_file_for_the_next_command(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    ListOrders(path).learned("deployments:u", OLDEST)
    assert ListOrders(path).order("deployments:u") == OLDEST
    path.write_text("not json")
    assert ListOrders(path).order("deployments:u") is None  # a cache: a bad one is empty


def test_shared_reads_last_a_few_seconds_and_a_change_forgets_its_stack() -> None:
    now = [0.0]
    shared = SharedReads(lambda: now[0], seconds=10.0)
    read: Newest[int] = Newest((3, 2, 1))
    shared.keep("deployments:u", "u", read, shared.mark("u"))
    shared.keep("actions:u", "u", read, shared.mark("u"))
    shared.keep("deployments:v", "v", read, shared.mark("v"))
    now[0] = 9.0
    assert shared.recent("deployments:u") is read
    shared.forget("u")
    assert shared.recent("deployments:u") is None and shared.recent("actions:u") is None
    assert shared.recent("deployments:v") is read
    now[0] = 10.0
    assert shared.recent("deployments:v") is None


def test_a_read_under_way_when_a_change_is_posted_is_not_kept() -> None:
    # It may have been answered before the change: kept, it would hide the change for
    # the next commands' reads (a history right after a deploy).
    shared = SharedReads(lambda: 0.0, seconds=10.0)
    read: Newest[int] = Newest((3, 2, 1))
    started = shared.mark("u")
    shared.forget("u")  # a deploy to u was posted meanwhile
    shared.keep("deployments:u", "u", read, started)
    assert shared.recent("deployments:u") is None
    shared.keep("deployments:u", "u", read, shared.mark("u"))  # read after it: kept
    assert shared.recent("deployments:u") is read
