"""TAB completion: the local cache of stack names, and the candidates it offers.

Any command that fetched the stacks (list, deploy, cancel) leaves their names,
environments and known services in the user cache dir, one file per API (the
sandbox and a real account never mix). Completion reads that file and nothing
else: never the network, the keyring or Slack.

Answering a TAB (typer's protocol) and writing the shell scripts is the job
of `tab.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from igor_cli import tab_index

if TYPE_CHECKING:
    import typer

    from igor_cli.cloud66.models import Service, Stack
    from igor_cli.config import Environment

# Not a URL, so that no IGOR_API_URL can share the sandbox's cache.
SANDBOX_KEY = tab_index.SANDBOX_KEY
# How long a listing is trusted to say a name is unique without `-e` (deploy, cancel).
FRESH_SECONDS = 600.0
# The same listing again within this time does not rewrite the file (the bot lists
# one account again and again in a burst); saved_at stays at most this much older.
RESAVE_SECONDS = 10.0

# -- the cache ------------------------------------------------------------------


def cache_key(env: Environment, *, sandbox: bool = False) -> str:
    """Which API the cache is for: the sandbox, or the API URL in force."""
    if sandbox or env.in_sandbox:
        return SANDBOX_KEY
    # The client ignores a trailing slash; so must the choice of file.
    return env.api_url().rstrip("/")


def cache_file(env: Environment, key: str) -> Path:
    """The cache file for one API: a readable name, the key itself inside."""
    # Two URLs that differ only in punctuation share a file name; `load` checks
    # the key stored inside, so their stacks still never mix.
    return env.cache_dir() / "completion" / tab_index.cache_name(key)


def orders_file(env: Environment) -> Path:
    """Where the order of each stack's deployments and actions lists, once learned, is kept
    for this API (paging.ListOrders): learning it costs a request, once."""
    path = cache_file(env, cache_key(env))
    return path.with_name(path.name.replace("stacks-", "orders-", 1))


class StackCache:
    """Records what a Cloud 66 client saw, for completion (errors are ignored)."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.key = cache_key(env)

    def stacks(self, stacks: list[Stack]) -> None:
        """Replace the stack list, keeping the services already known."""
        with self.env.lock:  # igor serve's threads must not interleave
            # The old file is read for its services and compared as the text it is; the
            # new one is encoded and written a few hundred entries at a time: a big
            # account's 50,000 entries held whole, as objects or as text, old and new,
            # would be a third of what `igor list` holds at its peak (SPEC section 8).
            fresh, was, known = self._as_saved()
            pieces = (_compact(_entry(s, known.get(s.uid, []))) for s in stacks)
            # The bot lists the same stacks again and again: then nothing new is kept.
            self._write(_array(pieces), same_as=was if fresh else None)

    def services(self, uid: str, services: list[Service]) -> None:
        """Remember a stack's services."""
        with self.env.lock:  # igor serve's threads must not interleave
            data = load(self.env, self.key)
            entries = _entries(data)
            for entry in entries:
                if entry["uid"] == uid:
                    entry["services"] = [s.name for s in services]
                    self._save(entries, data.get("saved_at"))
                    return

    def named(self, uid: str) -> tuple[str, str] | None:
        """The name and environment last seen for this uid, if it was seen (a shell's
        `unlock -s <uid>`: the index is kept by name, for the bot's every command)."""
        for stacks in _names(self.env, self.key).by_name.values():
            for seen, name, environment in stacks:
                if seen == uid:
                    return name, environment
        return None

    def uids(self, name: str, environment: str | None) -> list[str]:
        """The uids last seen for this name (any case), in this environment when given.

        Without an environment the answer is trusted only from a recent listing:
        a stack of the same name added since would make the name ambiguous.
        """
        names = _names(self.env, self.key)
        if environment is None and not self._recent(names.saved_at):
            return []
        env = (environment or "").casefold()
        stacks = names.by_name.get(name.casefold(), [])
        return [uid for uid, _, its in stacks if not env or its.casefold() == env]

    def _recent(self, saved_at: Any, seconds: float = FRESH_SECONDS) -> bool:
        """Whether a listing saved at `saved_at` (the file's, as written) is this recent."""
        from datetime import datetime

        try:
            saved = datetime.fromisoformat(str(saved_at))
        except ValueError:
            return False
        age = (self.env.clock() - saved).total_seconds()
        return 0 <= age <= seconds

    def _as_saved(self) -> tuple[bool, _Span | None, dict[str, list[str]]]:
        """Whether the file is recent, where its stacks are in its bytes (`_write`'s), and
        the services it knows by uid; a file igor did not write so reads as empty."""
        try:
            data = cache_file(self.env, self.key).read_bytes()
            at = data.find(b',"stacks":')
            start, end = at + len(b',"stacks":'), len(data) - 1
            said: Any = json.loads(data[:at] + b"}") if at != -1 and data.endswith(b"}") else {}
            found: Any = []
            # Services are known for few stacks, if any: the entries (5 MB for 50,000,
            # and as much again as text) are read only when one is.
            if said and b'"services":["' in data:
                text = data[start:end].decode()
                found = json.loads(text, object_hook=_services_only)
        except (OSError, ValueError):
            return False, None, {}
        if not isinstance(said, dict) or said.get("api") != self.key or not isinstance(found, list):
            return False, None, {}
        known: dict[str, list[str]] = dict(e for e in found if isinstance(e, tuple))
        return self._recent(said.get("saved_at"), RESAVE_SECONDS), _Span(data, start, end), known

    def _save(self, entries: list[dict[str, Any]], saved_at: Any = None) -> None:
        """Write the cache; `saved_at` is when the stacks were listed (now, unless kept:
        learning a stack's services does not make the listing any fresher)."""
        self._write([_compact(entries)], saved_at)

    def _write(
        self, entries: Iterable[str], saved_at: Any = None, same_as: _Span | None = None
    ) -> None:
        """Write the cache with `entries`, the stacks' JSON array in pieces, as `_save`
        does; nothing is written when they say what `same_as` (the file's stacks) says:
        they are compared first, and written from where they differ."""
        import tempfile

        path = cache_file(self.env, self.key)
        pieces = (piece.encode() for piece in entries)
        matched: bytes | memoryview = b""
        differing = b""
        if same_as is not None:
            for encoded in pieces:
                if not same_as.followed_by(encoded):
                    differing = encoded
                    break
            else:
                if same_as.done():
                    return  # the bot lists the same stacks again and again: kept as it is
            matched = same_as.matched()  # the same bytes the new pieces began with
        when = saved_at if isinstance(saved_at, str) else self.env.clock().isoformat()
        # What json.dumps({"api", "saved_at", "stacks"}) writes, the stacks already encoded.
        head = f'{{"api":{_compact(self.key)},"saved_at":{_compact(when)},"stacks":'
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A unique temporary file, then an atomic rename: a TAB pressed
            # meanwhile reads the old list or the new one, never half of one.
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".stacks-", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(head.encode())
                    stream.write(matched)
                    stream.write(differing)
                    for encoded in pieces:
                        stream.write(encoded)
                    stream.write(b"}")
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError:
            pass  # a cache that cannot be written only costs completions


class _Span:
    """Where the stacks are in a cache file's bytes, and how much of them new pieces have
    matched so far (compared in place: the file is not cut into copies)."""

    def __init__(self, data: bytes, start: int, end: int) -> None:
        self.data, self.start, self.at, self.end = data, start, start, end

    def followed_by(self, piece: bytes) -> bool:
        """Whether the file goes on with `piece` where the last one matched."""
        if self.at + len(piece) > self.end or not self.data.startswith(piece, self.at):
            return False
        self.at += len(piece)
        return True

    def done(self) -> bool:
        """Whether every piece matched, and nothing of the file is left over."""
        return self.at == self.end

    def matched(self) -> memoryview:
        """The file's bytes the pieces matched so far (not copied)."""
        return memoryview(self.data)[self.start : self.at]


_PIECE = 500  # entries encoded, compared and written at a time


def _array(pieces: Iterator[str]) -> Iterator[str]:
    """A JSON array of encoded entries, in pieces of a few hundred entries."""
    yield "["
    first = True
    while chunk := list(islice(pieces, _PIECE)):
        yield ("" if first else ",") + ",".join(chunk)
        first = False
    yield "]"


def load(env: Environment, key: str) -> dict[str, Any]:
    """The cache for one API: {"api", "saved_at", "stacks"}, or {} when missing or unreadable."""
    try:
        data = json.loads(cache_file(env, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("api") != key:
        return {}
    return data


def _entries(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return tab_index.well_formed(data)


class _Names(NamedTuple):
    """What `uids` and `named` ask of a cache file, indexed once for as long as it is
    unchanged."""

    saved_at: Any
    by_name: dict[str, list[tuple[str, str, str]]]  # name, folded -> (uid, name, environment)


# The last index of each cache file, by its signature when it was read (`file_signature`).
# `igor serve` resolves a stack from the cache for every command, and a big account's file
# is megabytes of JSON (92 ms to parse at 50,000 stacks): read again only when it changed
# (igor replaces it whole, so a new file is a new inode; an edit in place changes its size
# or time). Only ever a hint: a stack found this way is confirmed with Cloud 66.
_INDEXED: dict[Path, tuple[list[int], _Names]] = {}
_INDEXED_KEPT = 8  # files (APIs, tests' directories); the oldest is forgotten first
_INDEXING = threading.Lock()


def _names(env: Environment, key: str) -> _Names:
    """The index of the cache for one API, read again only when the file changed."""
    path = cache_file(env, key)
    identity = tab_index.file_signature(str(path))
    if identity is None:
        return _Names(None, {})
    with _INDEXING:
        known = _INDEXED.get(path)
    if known is not None and known[0] == identity:
        return known[1]
    data = load(env, key)
    names = _Names(data.get("saved_at"), {})
    # Held for the process's life: one string per environment (a big account has a few),
    # a name that is its folded self kept once (most are): 30 MB -> 17 at 50,000 stacks.
    environments: dict[str, str] = {}
    for entry in _entries(data):
        uid, name, environment = entry["uid"], entry["name"], entry["environment"]
        environment = environments.setdefault(environment, environment)
        folded = name.casefold()
        stack = (uid, name, environment)
        names.by_name.setdefault(name if folded == name else folded, []).append(stack)
    with _INDEXING:
        _INDEXED.pop(path, None)
        _INDEXED[path] = (identity, names)
        while len(_INDEXED) > _INDEXED_KEPT:
            del _INDEXED[next(iter(_INDEXED))]
    return names


def _services_only(entry: dict[str, Any]) -> tuple[str, list[str]] | None:
    """An entry of the file as its uid and known services, when it knows some (the rest,
    not kept, are the listing's to say)."""
    uid, services = entry.get("uid"), entry.get("services")
    if not isinstance(uid, str) or not isinstance(services, list):
        return None
    known = [s for s in services if isinstance(s, str)]
    return (uid, known) if known else None


def _entry(stack: Stack, services: list[str]) -> dict[str, Any]:
    return {
        "uid": stack.uid,
        "name": stack.name,
        "environment": stack.environment,
        "services": services,
    }


def _compact(data: Any) -> str:
    # dumps, not dump: only a one-shot encode runs in C.
    return json.dumps(data, separators=(",", ":"))


# -- what TAB offers --------------------------------------------------------------


def _cached_stacks(ctx: typer.Context) -> list[dict[str, Any]]:
    from igor_cli.config import ConfigError, Environment

    root = ctx.find_root()
    env = root.obj if isinstance(root.obj, Environment) else Environment()
    try:
        key = cache_key(env, sandbox=bool(root.params.get("sandbox")))
    except ConfigError:
        return []  # the command itself will explain the broken config file
    return _entries(load(env, key))


def _typed(ctx: typer.Context, name: str) -> str:
    """An option's value as typed on the line so far ("" when absent), folded."""
    return tab_index.typed(ctx.params.get(name))


# The candidates are computed in tab_index, which answers most TABs without typer.


def stack_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Stack names starting with what was typed, with their environments as help."""
    return tab_index.stack_names(_cached_stacks(ctx), _typed(ctx, "environment"), incomplete)


def environments(ctx: typer.Context, incomplete: str) -> list[str]:
    """Environments, narrowed to those of the stack already typed with -s."""
    return tab_index.environments(_cached_stacks(ctx), _typed(ctx, "stack"), incomplete)


def services(ctx: typer.Context, incomplete: str) -> list[str]:
    """Services of the stack already typed with -s (those igor has seen)."""
    stack, environment = _typed(ctx, "stack"), _typed(ctx, "environment")
    return tab_index.services(_cached_stacks(ctx), stack, environment, incomplete)
