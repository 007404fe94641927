"""The routes of Cloud 66 API v3 the simulator answers: the registry its endpoints fill,
and the dispatch through it.

An endpoint is one function in a module under `sandbox/endpoints/` (one module per
part of the docs), registered with `@endpoint(method, path, scope=, answers=)`: its
route, the scope the docs give it, the kind of object it answers and, for a kind the
table of `sources.py` does not name yet, where each of its fields is shown
(`sources=`, refused when missing). Every module there is found by itself, imported
when the simulator first routes, so a new endpoint is one new module (or a function
in one). A handler gets a `Call` (the state brought to the present, the parameters,
the path's names) and answers with `call.one`, `call.items` or `call.paged`, which
keep only the fields a source shows (`sources.documented`).

`server.py` checks the token, its scopes (`scope_needed`, the endpoint's) and its
hourly budget, then hands a request here. Error bodies are the Go client's {error,
error_description, details}, with the words of the docs' status table.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from igor_cli.sandbox.records import SandboxError
from igor_cli.sandbox.sources import FIELDS, documented, name_sources

if TYPE_CHECKING:
    from igor_cli.sandbox.records import Stack
    from igor_cli.sandbox.state import SandboxState

RATE_LIMIT = 3000
ENDPOINTS_PACKAGE = "igor_cli.sandbox.endpoints"


class Settings(Protocol):
    """What of the simulator's settings the answers depend on (tests change them live)."""

    order: str
    words: str
    undocumented: frozenset[str]
    per_page: int
    action_seconds: float
    pagination_style: str
    include_count: bool
    include_pages: bool


# The `error` words are those of the docs' table of statuses (index.html.md, Standard
# HTTP response statuses); its descriptions are the simulator's own.
_ERROR_NAMES = {
    400: ("bad_request", "The request is invalid"),
    401: ("unauthenticated", "The access token is invalid"),
    402: ("trial_expired", "The account's trial has expired"),
    403: ("forbidden", "The access token does not have the required scope"),
    404: ("not_found", "Not found"),
    409: ("conflict", "The request conflicts with the current state"),
    429: ("too_many_requests", "Too many requests, retry later"),
    500: ("internal_server_error", "Something went wrong"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("throttled", f"Rate limit exceeded: {RATE_LIMIT:,} requests per user per hour"),
    504: ("gateway_timeout", "Gateway timeout"),
}


def error_body(
    status: int, error: str | None = None, description: str | None = None
) -> dict[str, Any]:
    """The API's error shape, with defaults that fit the status."""
    default_error, default_description = _ERROR_NAMES.get(status, ("error", "Request failed"))
    return {
        "error": error or default_error,
        "error_description": description or default_description,
        "details": None,
    }


@dataclass
class Reply:
    """An answer: its status, its JSON body, its headers."""

    status: int
    payload: dict[str, Any]
    headers: dict[str, str]


# -- the registry ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request to an endpoint: what its handler reads, and how it answers."""

    sim: Settings
    state: SandboxState
    now: float
    page: int
    params: dict[str, Any]  # the query and the body's fields together
    names: dict[str, str]  # the path's `{names}`: uid, id, ...
    kind: str  # what the endpoint answers (a kind of `sources.FIELDS`)

    @property
    def stack(self) -> Stack:
        """The stack the path names (`{uid}`: looked up before the handler runs, a 404
        when there is none)."""
        return self.state.get_stack(self.names["uid"])

    def text(self, name: str) -> str | None:
        """A parameter as text (a list, as JSON bodies may send it, joined with commas)."""
        value = self.params.get(name)
        if value is None:
            return None
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return str(value)

    def number(self, name: str, what: str) -> int:
        """A path's id (`{id}`) as a number; a 404 naming `what` when it is none."""
        try:
            return int(self.names[name])
        except ValueError:
            raise SandboxError(404, "not_found", f"{what} not found") from None

    def one(self, payload: Mapping[str, Any]) -> Reply:
        """One object in `response`, with only the fields a source shows."""
        shown = documented(self.kind, payload, self.sim.undocumented)
        return Reply(200, {"response": shown}, {})

    def items(self, items: list[dict[str, Any]]) -> Reply:
        """One page of a list held whole."""

        def window(chosen: slice) -> tuple[int, list[dict[str, Any]]]:
            return len(items), items[chosen]

        return self.paged(window)

    def paged(self, window: Callable[[slice], tuple[int, list[dict[str, Any]]]]) -> Reply:
        """One page of a list: only the page's entries are rendered (long histories);
        `window` gives the list's length and the entries of a slice of it."""
        return _paged(self.sim, self.kind, self.page, window)


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Endpoint:
    """A route of the API: its method, its path (`{name}` segments match any), the scope
    the docs give it, what it answers, and the function that answers it."""

    method: str
    path: tuple[str, ...]
    scope: str
    answers: str
    handler: Handler

    def names(self, parts: list[str]) -> dict[str, str] | None:
        """The path's names when `parts` is this path, else None."""
        if len(parts) != len(self.path):
            return None
        found = {}
        for pattern, part in zip(self.path, parts, strict=True):
            if pattern.startswith("{"):
                found[pattern[1:-1]] = part
            elif pattern != part:
                return None
        return found


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str,
    path: str,
    *,
    scope: str,
    answers: str,
    sources_of: Mapping[str, str] | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler as the endpoint `method path` (`/stacks/{uid}/services`).

    `scope` is the one the docs give it (public, redeploy, users, admin); `answers`
    the kind of object it serves, whose fields `sources.py` names. A new kind names
    its own sources here (`sources_of`: field -> where it is shown): the simulator
    serves nothing no source shows, so a kind without them is refused.
    """

    def register(handler: Handler) -> Handler:
        if sources_of is not None:
            name_sources(answers, sources_of)
        elif answers not in FIELDS:
            raise TypeError(
                f"{method} {path} answers {answers!r}, whose fields no source names: give "
                "sources_of={field: where a Cloud 66 doc or the Go client shows it}"
            )
        pattern = tuple(part for part in path.split("/") if part)
        if any(e.method == method and e.path == pattern for e in ENDPOINTS):
            raise TypeError(f"{method} {path} is answered twice")
        ENDPOINTS.append(Endpoint(method, pattern, scope, answers, handler))
        return handler

    return register


@functools.cache
def endpoint_modules() -> tuple[str, ...]:
    """Import every module of `sandbox/endpoints/` (once): each registers its endpoints."""
    package = importlib.import_module(ENDPOINTS_PACKAGE)
    folder = os.path.dirname(package.__file__ or "")
    names = sorted(n[:-3] for n in os.listdir(folder) if n.endswith(".py") and n[0] != "_")
    for name in names:
        importlib.import_module(f"{ENDPOINTS_PACKAGE}.{name}")
    return tuple(f"{ENDPOINTS_PACKAGE}.{name}" for name in names)


def _found(method: str, parts: list[str]) -> tuple[Endpoint, dict[str, str]] | None:
    endpoint_modules()
    for candidate in ENDPOINTS:
        if candidate.method == method:
            names = candidate.names(parts)
            if names is not None:
                return candidate, names
    return None


# -- the dispatch -----------------------------------------------------------------------


def route(
    sim: Settings,
    state: SandboxState,
    now: float,
    method: str,
    parts: list[str],
    *,
    page: int,
    params: dict[str, Any],
) -> Reply:
    """Answer one request (its path split in `parts`) with the endpoint it names."""
    found = _found(method, parts)
    if len(parts) >= 2 and parts[0] == "stacks":
        state.get_stack(parts[1])  # an unknown stack is a 404 before anything else
    if found is None:
        raise SandboxError(404, "not_found", "Route not found")
    answering, names = found
    reply = answering.handler(Call(sim, state, now, page, params, names, answering.answers))
    if method != "GET":
        state.dirty = True  # what a change kept (`stack.kept`) is saved, whoever forgot to
    return reply


def _paged(
    sim: Settings,
    kind: str,
    page: int,
    window: Callable[[slice], tuple[int, list[dict[str, Any]]]],
) -> Reply:
    """One page of a list: only the page's entries are rendered (long histories)."""
    per_page = sim.per_page
    total, chunk = window(slice((page - 1) * per_page, page * per_page))
    pages = max(1, math.ceil(total / per_page))
    before = page - 1 if page > 1 else None
    after = page + 1 if page < pages else None
    pagination: dict[str, Any]
    if sim.pagination_style == "prev":
        pagination = {"prev": before, "next": after, "current": page}
    else:
        pagination = {"previous": before, "next": after, "current": page, "per_page": per_page}
    shown = [documented(kind, item, sim.undocumented) for item in chunk]
    body: dict[str, Any] = {"response": shown}
    if sim.include_count:
        pagination["count"] = total
        body["count"] = total
    if sim.include_pages:
        pagination["pages"] = pages
    body["pagination"] = pagination
    return Reply(200, body, {})


def scope_needed(method: str, parts: list[str]) -> str | None:
    """The scope a request needs: its endpoint's (the docs': `users` for accounts,
    `redeploy` to deploy, cancel or run a stack action, ...); a GET of no endpoint
    needs `public` (then finds nothing), anything else none."""
    found = _found(method, parts)
    if found is not None:
        return found[0].scope
    return "public" if method == "GET" else None


def page_number(query: dict[str, str]) -> int:
    """The `?page=` asked for (1 when none); a 400 when it is no positive integer."""
    raw = query.get("page", "1") or "1"
    try:
        page = int(raw)
    except ValueError:
        page = 0
    if page < 1:
        raise SandboxError(400, "bad_request", f"page must be a positive integer, not {raw!r}")
    return page
