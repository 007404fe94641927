"""The shared state store: Redis, for several bot replicas and a team's shell users.

Claims are `SET NX PX`; compare-and-set and compare-and-delete are Lua scripts,
which Redis runs atomically. Every key igor writes starts with `igor:`, so the
store can share a Redis database with other programs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from igor_cli.state.store import StateUnavailable

if TYPE_CHECKING:
    from redis import Redis

NAMESPACE = "igor:"
CONNECT_TIMEOUT = 5.0  # seconds; a command in a shell should fail fast, not hang
_SWAP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def _ms(ttl: float) -> int:
    return max(1, round(ttl * 1000))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def safe_url(url: str) -> str:
    """The URL without its password, for messages and `igor doctor`."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


class RedisStore:
    """The store in Redis (`redis://host:port/db`, `rediss://` for TLS)."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = safe_url(url)
        try:
            self._redis: Redis = redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=CONNECT_TIMEOUT,
            )
        except ValueError as error:
            raise StateUnavailable(
                f"IGOR_STATE_URL is not a Redis URL igor can use ({error}).",
                "Write it as redis://host:port/db.",
            ) from None
        self._swap = self._redis.register_script(_SWAP)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)

    def _call(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return operation(*args, **kwargs)
        except redis.RedisError as error:
            raise StateUnavailable(
                f"igor's state store at {self.url} failed: {error}.",
                "Check that Redis runs there, or unset IGOR_STATE_URL to use a local file.",
            ) from None

    def claim(self, key: str, value: str, ttl: float) -> bool:
        """`SET key value NX PX ttl`."""
        return bool(self._call(self._redis.set, NAMESPACE + key, value, nx=True, px=_ms(ttl)))

    def get(self, key: str) -> str | None:
        """`GET key` (Redis forgets expired keys by itself)."""
        value = self._call(self._redis.get, NAMESPACE + key)
        return None if value is None else str(value)

    def swap(self, key: str, expected: str, value: str, ttl: float) -> bool:
        """Compare-and-set, in one Lua script."""
        args = [expected, value, _ms(ttl)]
        return bool(self._call(self._swap, keys=[NAMESPACE + key], args=args))

    def renew(self, key: str, expected: str, ttl: float) -> bool:
        """Compare-and-expire, in one Lua script."""
        args = [expected, _ms(ttl)]
        return bool(self._call(self._renew, keys=[NAMESPACE + key], args=args))

    def release(self, key: str, expected: str) -> bool:
        """Compare-and-delete, in one Lua script."""
        return bool(self._call(self._release, keys=[NAMESPACE + key], args=[expected]))

    def items(self, prefix: str) -> dict[str, str]:
        """`SCAN` for the prefix, then `MGET` (a key that expires in between is left out)."""
        pattern = _glob_escape(NAMESPACE + prefix) + "*"
        keys = sorted(self._call(lambda: list(self._redis.scan_iter(match=pattern, count=500))))
        if not keys:
            return {}
        values = self._call(self._redis.mget, keys)
        return {
            key[len(NAMESPACE) :]: str(value)
            for key, value in zip(keys, values, strict=True)
            if value is not None
        }

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()
