"""TAB completion from a local cache: never the network, the keyring or Slack.

Any command that fetched the stacks (list, deploy, cancel) leaves their names,
environments and known services here, one file per API (the sandbox and a real
account never mix). Completion reads that file and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

    from igor_cli.cloud66 import Service, Stack
    from igor_cli.config import Environment

SANDBOX_KEY = "sandbox"


def cache_key(env: Environment) -> str:
    """Which API the cache is for: the sandbox, or the API URL in force."""
    return SANDBOX_KEY if env.in_sandbox else env.api_url()


def cache_file(env: Environment, key: str) -> Path:
    """The cache file for one API."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return env.cache_dir() / "completion" / f"stacks-{digest}.json"


class StackCache:
    """Records what a Cloud 66 client saw, for completion (errors are ignored)."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.key = cache_key(env)

    def _load(self) -> dict[str, Any]:
        return load(self.env, self.key)

    def stacks(self, stacks: list[Stack]) -> None:
        """Replace the stack list, keeping services already known."""
        known = {(s["name"], s["environment"]): s for s in self._load().get("stacks", [])}
        entries = [
            {
                "uid": s.uid,
                "name": s.name,
                "environment": s.environment,
                "services": known.get((s.name, s.environment), {}).get("services", []),
            }
            for s in stacks
        ]
        self._save(entries)

    def services(self, uid: str, services: list[Service]) -> None:
        """Remember a stack's services."""
        entries = self._load().get("stacks", [])
        for entry in entries:
            if entry.get("uid") == uid:
                entry["services"] = [s.name for s in services]
        self._save(entries)

    def _save(self, entries: list[dict[str, Any]]) -> None:
        path = cache_file(self.env, self.key)
        data = {"api": self.key, "saved_at": datetime.now(UTC).isoformat(), "stacks": entries}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(data), encoding="utf-8")
            temporary.replace(path)
        except OSError:
            pass  # a cache that cannot be written only costs completions


def load(env: Environment, key: str) -> dict[str, Any]:
    """The cache for one API, or {} when missing or unreadable."""
    try:
        data = json.loads(cache_file(env, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cached_stacks(ctx: typer.Context) -> list[dict[str, Any]]:
    from igor_cli.config import Environment

    env = Environment()
    root = ctx.find_root()
    if root.params.get("sandbox"):
        env.sandbox = True
    try:
        key = cache_key(env)
    except Exception:
        return []
    stacks = load(env, key).get("stacks", [])
    return [s for s in stacks if isinstance(s, dict)]


def _matching(values: Iterable[str], incomplete: str) -> list[str]:
    folded = incomplete.casefold()
    return sorted({v for v in values if v.casefold().startswith(folded)}, key=str.casefold)


def stack_names(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """Stack names starting with what was typed, with their environments as help."""
    environment = (ctx.params.get("environment") or "").casefold()
    by_name: dict[str, list[str]] = {}
    for stack in _cached_stacks(ctx):
        if environment and str(stack.get("environment", "")).casefold() != environment:
            continue
        by_name.setdefault(str(stack.get("name", "")), []).append(str(stack.get("environment")))
    return [(name, ", ".join(sorted(by_name[name]))) for name in _matching(by_name, incomplete)]


def environments(ctx: typer.Context, incomplete: str) -> list[str]:
    """Environments, narrowed to those of the stack already typed with -s."""
    stack = (ctx.params.get("stack") or "").casefold()
    return _matching(
        (
            str(s.get("environment", ""))
            for s in _cached_stacks(ctx)
            if not stack or str(s.get("name", "")).casefold() == stack
        ),
        incomplete,
    )


def services(ctx: typer.Context, incomplete: str) -> list[str]:
    """Services of the stack already typed with -s (those igor has seen)."""
    stack = (ctx.params.get("stack") or "").casefold()
    environment = (ctx.params.get("environment") or "").casefold()
    names: list[str] = []
    for entry in _cached_stacks(ctx):
        if str(entry.get("name", "")).casefold() != stack:
            continue
        if environment and str(entry.get("environment", "")).casefold() != environment:
            continue
        names.extend(str(s) for s in entry.get("services", []))
    return _matching(names, incomplete)
