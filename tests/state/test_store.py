"""One contract for every state backend: SQLite and Redis pass the same tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from igor_cli.errors import UsageProblem
from igor_cli.state import StateUnavailable, Store, open_store


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    opened = open_store(state_url)
    yield opened
    opened.close()


def _gone(store: Store, key: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if store.get(key) is None:
            return True
        time.sleep(0.02)
    return False


def test_a_key_is_claimed_once(store: Store) -> None:
    assert store.claim("lock:a", "alice", 60)
    assert not store.claim("lock:a", "bob", 60)
    assert store.get("lock:a") == "alice"
    assert store.get("lock:b") is None


def test_a_claim_expires_and_can_be_claimed_again(store: Store) -> None:
    assert store.claim("lease:x", "one", 0.2)
    assert store.get("lease:x") == "one"
    assert _gone(store, "lease:x")
    assert store.claim("lease:x", "two", 60)
    assert store.get("lease:x") == "two"


def test_compare_and_set_only_while_the_value_is_expected(store: Store) -> None:
    store.claim("k", "v1", 60)
    assert not store.swap("k", "wrong", "v2", 60)
    assert store.get("k") == "v1"
    assert store.swap("k", "v1", "v2", 60)
    assert store.get("k") == "v2"
    assert not store.swap("absent", "v1", "v2", 60)
    assert store.get("absent") is None  # compare-and-set never creates a key


def test_compare_and_delete_by_owner(store: Store) -> None:
    store.claim("k", "alice", 60)
    assert not store.release("k", "bob")
    assert store.get("k") == "alice"
    assert store.release("k", "alice")
    assert store.get("k") is None
    assert not store.release("k", "alice")  # already gone


def test_a_lease_is_renewed_only_by_its_holder(store: Store) -> None:
    store.claim("lease:d1", "replica-1", 0.3)
    assert not store.renew("lease:d1", "replica-2", 60)
    assert store.renew("lease:d1", "replica-1", 60)
    time.sleep(0.5)  # past the first expiry: the renewal holds
    assert store.get("lease:d1") == "replica-1"


def test_an_expired_lease_cannot_be_renewed_or_released(store: Store) -> None:
    store.claim("lease:d2", "replica-1", 0.1)
    assert _gone(store, "lease:d2")
    assert not store.renew("lease:d2", "replica-1", 60)
    assert not store.release("lease:d2", "replica-1")
    assert not store.swap("lease:d2", "replica-1", "replica-1", 60)


def test_listing_by_prefix(store: Store) -> None:
    store.claim("lock:b", "2", 60)
    store.claim("lock:a", "1", 60)
    store.claim("lockx", "no", 60)
    store.claim("dedupe:C1:1.2", "r1", 60)
    store.claim("lock:*", "star", 60)  # pattern characters are plain text
    store.claim("lock:gone", "x", 0.1)
    assert _gone(store, "lock:gone")
    assert store.items("lock:") == {"lock:*": "star", "lock:a": "1", "lock:b": "2"}
    assert store.items("lock:*") == {"lock:*": "star"}
    assert store.items("nothing:") == {}


def test_values_keep_any_text(store: Store) -> None:
    text = '{"reason": "release 4.2 — “freeze”", "who": "ü"}'
    assert store.claim("lock:u", text, 60)
    assert store.get("lock:u") == text
    assert store.release("lock:u", text)


def test_two_handles_see_each_other(state_url: str) -> None:
    first, second = open_store(state_url), open_store(state_url)
    try:
        assert first.claim("lock:shared", "first", 60)
        assert not second.claim("lock:shared", "second", 60)
        assert second.release("lock:shared", "first")
        assert second.claim("lock:shared", "second", 60)
        assert first.get("lock:shared") == "second"
    finally:
        first.close()
        second.close()


def test_an_unknown_url_is_a_usage_problem() -> None:
    with pytest.raises(UsageProblem, match="cannot keep its state"):
        open_store("mysql://db/igor")
    with pytest.raises(UsageProblem, match="absolute"):
        open_store("sqlite://state.db")


def test_an_unreachable_redis_is_said_plainly_without_its_password() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = open_store(f"redis://:s3cret@127.0.0.1:{port}/0")
    try:
        with pytest.raises(StateUnavailable) as raised:
            store.claim("lock:a", "x", 60)
    finally:
        store.close()
    assert f"127.0.0.1:{port}" in raised.value.message
    assert "s3cret" not in raised.value.message and "s3cret" not in store.url


def test_an_unwritable_sqlite_file_is_said_plainly(tmp_path: object) -> None:
    from pathlib import Path

    blocker = Path(str(tmp_path)) / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateUnavailable, match="Cannot open igor's state file"):
        open_store(f"sqlite://{blocker / 'state.db'}")


def _scans(client: object) -> int:
    stats = client.info("commandstats")  # type: ignore[attr-defined]
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


def test_redis_lists_a_kind_from_its_index_not_the_keyspace(redis_server: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_server, decode_responses=True)
    client.flushdb()
    store = open_store(redis_server)
    try:
        for n in range(2000):  # a busy hour of message dedupe keys, and another program's
            store.claim(f"seen:C1:{n}", "r1", 60)
            client.set(f"other-program:{n}", "x")
        store.claim("lock:a", "1", 60)
        store.claim("lock:b", "2", 60)
        store.claim("lock:gone", "x", 0.1)
        assert _gone(store, "lock:gone")
        client.config_resetstat()
        assert store.items("lock:") == {"lock:a": "1", "lock:b": "2"}
        assert _scans(client) == 0
        assert store.release("lock:a", "1")
        assert store.items("lock:") == {"lock:b": "2"}
        # The index forgets what expired or was released: it holds the live keys only.
        assert client.zrange("igor:#index:lock:", 0, -1) == ["igor:lock:b"]
        assert client.zcard("igor:#index:seen:") == 2000
        # A renewed or swapped key stays listed past its first expiry.
        store.claim("lease:follow:1", "r1", 0.2)
        assert store.renew("lease:follow:1", "r1", 60)
        store.claim("lease:follow:2", "r1", 0.2)
        assert store.swap("lease:follow:2", "r1", "r2", 60)
        time.sleep(0.4)
        assert store.items("lease:follow:") == {"lease:follow:1": "r1", "lease:follow:2": "r2"}
        # Only a prefix without a colon (igor never lists one) walks the keyspace.
        assert store.items("lock") == {"lock:b": "2"}
        assert _scans(client) > 0
    finally:
        store.close()
        client.flushdb()
        client.close()
