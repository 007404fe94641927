"""The shared state store: Redis, for several bot replicas and a team's shell users.

Claims (`SET NX PX`), compare-and-set, renewals and compare-and-delete are Lua
scripts, which Redis runs atomically; each also keeps an index of its key's kind, so
listing the locks never walks the keyspace. Every key igor writes starts with `igor:`,
so the store can share a Redis database with other programs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from igor_cli.state.store import StateUnavailable

if TYPE_CHECKING:
    from redis import Redis

NAMESPACE = "igor:"
# Seconds. igor's operations are single keys and tiny scripts that a sound Redis answers
# in a millisecond: one that takes longer is in trouble, and a command should say so
# rather than wait. Nothing is retried: a claim whose answer was lost may have been
# made, and a second try would read it as someone else's.
CONNECT_TIMEOUT = 2.0
OPERATION_TIMEOUT = 1.0
INDEX = NAMESPACE + "#index:"  # a sorted set a kind: its live keys, scored by expiry (ms)

# Every script that writes a key also keeps the index of its kind (the key's text up to
# its first colon, `lock:` for `lock:<uid>`): the member's score is when it expires, and
# each write drops the entries that have expired since, so an index holds about as many
# entries as its kind has live keys. Listing a kind reads its index, never the keyspace.
_NOW = """
redis.replicate_commands()  -- Redis 5 and 6: writes may follow TIME (7 always allows it)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
_CLAIM = (
    _NOW
    + """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), KEYS[1])
return 1
"""
)
_SWAP = (
    _NOW
    + """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), KEYS[1])
    return 1
end
return 0
"""
)
_RENEW = (
    _NOW
    + """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), KEYS[1])
    return 1
end
return 0
"""
)
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('ZREM', KEYS[2], KEYS[1])
    return redis.call('DEL', KEYS[1])
end
return 0
"""
_LIVE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
"""
)


def _kind(key: str) -> str:
    """`lock:` for `lock:abc`, `lease:` for `lease:follow:1`; the whole key without a colon."""
    head, colon, _ = key.partition(":")
    return head + colon


def _ms(ttl: float) -> int:
    return max(1, round(ttl * 1000))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisStore:
    """The store in Redis (`redis://host:port/db`, `rediss://` for TLS)."""

    def __init__(self, url: str) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        from igor_cli.state.urls import shown_url

        self.url = shown_url(url)  # never its password (shown in doctor, the log, chat)
        self._given = url  # to take its secrets out of the driver's messages
        try:
            self._redis: Redis = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=OPERATION_TIMEOUT,
                retry=Retry(NoBackoff(), 0),  # redis-py retries timeouts by default
            )
        except ValueError as error:
            raise StateUnavailable(
                f"The state URL {self.url} is not a Redis URL igor can use "
                f"({self._hidden(error)}).",
                "Write it as redis://host:port/db (a password in it %-escaped).",
            ) from None
        self._claim = self._redis.register_script(_CLAIM)
        self._swap = self._redis.register_script(_SWAP)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._live = self._redis.register_script(_LIVE)

    def _call(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return operation(*args, **kwargs)
        except redis.RedisError as error:
            raise self._unavailable(error) from None

    def _unavailable(self, error: Exception) -> StateUnavailable:
        return StateUnavailable(
            f"igor's state store at {self.url} failed: {self._hidden(error)}.",
            "Check that Redis runs there, or unset IGOR_STATE_URL to use a local file.",
        )

    def _hidden(self, error: Exception) -> str:
        """The driver's words, without the URL's password (it may quote a misread piece)."""
        from igor_cli.state.urls import hide_secrets

        return hide_secrets(str(error), self._given)

    @staticmethod
    def _keys(key: str) -> list[str]:
        """The key in Redis, and the index of its kind."""
        return [NAMESPACE + key, INDEX + _kind(key)]

    def claim(self, key: str, value: str, ttl: float) -> bool:
        """`SET key value NX PX ttl` (and the key in its kind's index), in one Lua script."""
        return bool(self._call(self._claim, keys=self._keys(key), args=[value, _ms(ttl)]))

    def get(self, key: str) -> str | None:
        """`GET key` (Redis forgets expired keys by itself)."""
        value = self._call(self._redis.get, NAMESPACE + key)
        return None if value is None else str(value)

    def swap(self, key: str, expected: str, value: str, ttl: float) -> bool:
        """Compare-and-set, in one Lua script."""
        args = [expected, value, _ms(ttl)]
        return bool(self._call(self._swap, keys=self._keys(key), args=args))

    def renew(self, key: str, expected: str, ttl: float) -> bool:
        """Compare-and-expire, in one Lua script."""
        args = [expected, _ms(ttl)]
        return bool(self._call(self._renew, keys=self._keys(key), args=args))

    def release(self, key: str, expected: str) -> bool:
        """Compare-and-delete, in one Lua script."""
        return bool(self._call(self._release, keys=self._keys(key), args=[expected]))

    def items(self, prefix: str) -> dict[str, str]:
        """The live keys of the prefix's kind from its index, then `MGET`.

        A prefix without a colon could span kinds: only then is the keyspace scanned
        (igor always lists by a prefix with one). A key that expires in between is left out.
        """
        if ":" in prefix:
            live = self._call(self._live, keys=[INDEX + _kind(prefix)], args=[])
            wanted = NAMESPACE + prefix
            keys = sorted(str(key) for key in live if str(key).startswith(wanted))
        else:
            pattern = _glob_escape(NAMESPACE + prefix) + "*"
            scanned = self._call(lambda: list(self._redis.scan_iter(match=pattern, count=500)))
            keys = sorted(key for key in scanned if not key.startswith(INDEX))
        if not keys:
            return {}
        values = self._call(self._redis.mget, keys)
        return {
            key[len(NAMESPACE) :]: str(value)
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }

    def exposed(self) -> list[str]:
        """Nothing of igor's on this machine's disk: who may read Redis is Redis's to say."""
        return []

    def durability(self) -> list[str]:
        """What may lose igor's keys, in words (for `igor doctor`): a Redis that keeps
        nothing on disk (no AOF, no RDB snapshots) or that may evict keys when full.

        Read with CONFIG GET; where CONFIG is disabled (managed Redis often renames it),
        INFO tells the AOF and the eviction policy but not the snapshots.
        """
        import redis

        rdb: bool | None
        try:
            config: dict[str, str] = {}
            for name in ("save", "appendonly", "maxmemory-policy"):
                answer = self._redis.config_get(name)
                config.update({str(k): str(v or "") for k, v in answer.items()})
            aof = config.get("appendonly", "") == "yes"
            rdb = bool(config.get("save", "").strip())
            policy = config.get("maxmemory-policy", "")
        except redis.ResponseError:  # CONFIG renamed away, or not allowed to this user
            info = self._call(self._redis.info, "persistence")
            memory = self._call(self._redis.info, "memory")
            aof, rdb = bool(int(info.get("aof_enabled", 0))), None
            policy = str(memory.get("maxmemory_policy", ""))
        except redis.RedisError as error:
            raise self._unavailable(error) from None
        said = []
        if not aof and rdb is False:
            said.append("keeps nothing on disk (no AOF, no RDB snapshots): a restart empties "
                        "it and every lock is lost; run it with --appendonly yes")  # fmt: skip
        elif not aof and rdb is None:
            said.append("has no AOF, and igor cannot read its snapshot settings (CONFIG is "
                        "disabled): check that it keeps its data on disk, or locks are lost "
                        "when it restarts")  # fmt: skip
        if policy and policy != "noeviction":
            said.append(f"may evict igor's keys when it is full (maxmemory-policy {policy}); "
                        "igor needs noeviction")  # fmt: skip
        return said

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()
