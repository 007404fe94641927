"""Lock take and release latency on each state backend (issue 13).

One take (`igor lock`: a claim) and one release (`igor unlock`: a
compare-and-delete) of a lock record, repeated, on a SQLite file and on a
private redis-server on a free loopback port (skipped, saying so, where
redis-server is not installed). Each is set against two bare operations on the
same backend measured in the same run (two `PING`s; two plain one-row writes
on SQLite, where there is no round trip): the ratio is what atomicity and the
lock's bookkeeping cost over just talking to the store.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from igor_cli.cloud66.models import Stack
from igor_cli.config import now_utc
from igor_cli.features.locks import UnlockRequest, release_lock, take_lock
from igor_cli.identity import Origin
from igor_cli.state import Store, open_store

ROUNDS = 300
# A take is one claim; a release lists the locks (a SCAN and an MGET on Redis) and
# deletes by compare-and-delete: four round trips against two.
BUDGET = 4.0


def _timed(operation: Callable[[], object]) -> float:
    started = time.perf_counter()
    operation()
    return time.perf_counter() - started


def _timings(
    first: Callable[[], object], second: Callable[[], object], rounds: int = ROUNDS
) -> tuple[list[float], list[float]]:
    """Both, interleaved, so that drifts in machine load hit both sides alike."""
    first()  # warm: connections, statements
    second()
    a, b = [], []
    for _ in range(rounds):
        a.append(_timed(first))
        b.append(_timed(second))
    return a, b


def _p(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100)[percent - 1] if len(values) > 1 else values[0]


def _measure(name: str, store: Store, round_trip: Callable[[], object]) -> bool:
    stack = Stack.from_api({"uid": "bench-uid", "name": "shop", "environment": "production"})
    holder = Origin("cli", "bench@host")
    unlock = UnlockRequest(stack="shop", environment="production")

    def take_and_release() -> None:
        taken = take_lock(store, stack, holder, "benchmark", 60, now_utc())
        released = release_lock(store, unlock, holder, now_utc())
        assert taken.result.value == "taken" and released.result.value == "released"

    def two_round_trips() -> None:
        round_trip()
        round_trip()

    locks, bare = _timings(take_and_release, two_round_trips)
    ratio = statistics.median(locks) / statistics.median(bare)
    verdict = "ok" if ratio <= BUDGET else "OVER BUDGET"
    print(
        f"{name:<8} lock take+release  p50 {statistics.median(locks) * 1000:7.3f} ms  "
        f"p99 {_p(locks, 99) * 1000:7.3f} ms | two bare operations p50 "
        f"{statistics.median(bare) * 1000:7.3f} ms  ratio {ratio:5.2f} (budget {BUDGET:.2f})  "
        f"{verdict}"
    )
    return ratio <= BUDGET


def _sqlite() -> bool:
    import sqlite3

    folder = Path(tempfile.mkdtemp(prefix="igor-bench-state-"))
    store = open_store(f"sqlite://{folder / 'state.db'}")
    plain = sqlite3.connect(folder / "plain.db", isolation_level=None)
    plain.execute("PRAGMA journal_mode = WAL")
    plain.execute("PRAGMA synchronous = NORMAL")
    plain.execute("CREATE TABLE plain (key TEXT PRIMARY KEY, value TEXT)")
    try:
        return _measure(
            "sqlite",
            store,
            lambda: plain.execute("INSERT OR REPLACE INTO plain VALUES ('k', 'v')"),
        )
    finally:
        plain.close()
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A private redis-server on a free loopback port, stopped afterwards: its URL, or None
    (saying so) where redis-server is not installed."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        print("redis    skipped: redis-server is not installed (apt-get install redis-server)")
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    plain = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                plain.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        plain.close()
        server.terminate()
        server.wait(10)


def _redis() -> bool:
    import redis

    with redis_server() as url:
        if url is None:
            return True
        plain = redis.Redis.from_url(url)
        store = open_store(url)
        try:
            return _measure("redis", store, plain.ping)
        finally:
            store.close()
            plain.close()


def bench_state() -> bool:
    """Lock take and release on SQLite and Redis, against bare round trips."""
    return all([_sqlite(), _redis()])
