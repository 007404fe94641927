"""The routes of Cloud 66 API v3 the simulator answers, and the shape of its answers.

`server.py` checks the token, its scopes and its hourly budget, then hands a
request here with the state brought to the present. Every answer keeps only the
fields a source shows (`sources.documented`); error bodies are the Go client's
{error, error_description, details}, with the words of the docs' status table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from igor_cli.sandbox.payloads import render_action
from igor_cli.sandbox.records import SandboxError
from igor_cli.sandbox.sources import documented
from igor_cli.sandbox.state import SandboxState

RATE_LIMIT = 3000


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


def _text_param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


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
    route = (method, len(parts), parts[0] if parts else "")
    if route == ("GET", 1, "accounts"):
        return _page(sim, "account", [state.account()], page)
    if route == ("GET", 1, "stacks"):
        # Only the page's stacks are touched: a page costs the same at 30 or 50,000 stacks.
        stacks = state.stacks
        return _paged(
            sim, "stack", page, lambda window: (len(stacks), [s.fields for s in stacks[window]])
        )
    if not parts or parts[0] != "stacks" or len(parts) < 2:
        raise SandboxError(404, "not_found", "Route not found")
    uid, rest = parts[1], parts[2:]
    stack = state.get_stack(uid)
    if method == "GET" and not rest:
        return _one(sim, "stack", stack.fields)
    if method == "GET" and rest == ["services"]:
        return _page(sim, "service", stack.services, page)
    if method == "GET" and rest == ["deployments"]:
        return _paged(
            sim,
            "deployment",
            page,
            lambda window: state.list_deployments(uid, sim.order, words=sim.words, window=window),
        )
    if method == "GET" and len(rest) == 2 and rest[0] == "deployments":
        deployment_id = _int_id(rest[1], "Deployment")
        return _one(sim, "deployment", state.get_deployment(uid, deployment_id, sim.words))
    if method == "POST" and rest == ["deployments"]:
        return _post_deployment(sim, state, now, uid, params)
    if method == "DELETE" and len(rest) == 2 and rest[0] == "deployments":
        state.cancel(uid, _int_id(rest[1], "Deployment"), now)
        return _one(sim, "cancel", {"ok": True, "message": "Cancelling deployment"})
    if method == "POST" and rest == ["actions"]:
        action = state.run_action(uid, params, now=now, seconds=sim.action_seconds)
        # The "Run Stack action" sample answers the action's own fields, nothing more.
        return _one(sim, "stack_action", render_action(action))
    if method == "GET" and rest == ["actions"]:
        # Unconfirmed: an empty `user_reference` filters nothing (Rails' `present?`).
        reference = _text_param(params, "user_reference") or None
        return _paged(
            sim,
            "action",
            page,
            lambda window: state.list_actions(uid, sim.order, reference, window=window),
        )
    if method == "GET" and len(rest) == 2 and rest[0] == "actions":
        return _one(sim, "action", state.get_action(uid, _int_id(rest[1], "Action")))
    raise SandboxError(404, "not_found", "Route not found")


def _post_deployment(
    sim: Settings, state: SandboxState, now: float, uid: str, params: dict[str, Any]
) -> Reply:
    _, action, queued = state.deploy(
        uid,
        now=now,
        services=_text_param(params, "services"),
        git_ref=_text_param(params, "git_ref"),
        user_reference=_text_param(params, "user_reference"),
        deployment_profile=_text_param(params, "deployment_profile"),
    )
    # The documented answer's words; `queued` says whether it waits behind another.
    response = {
        "ok": True,
        "message": "Stack queued for redeployment",
        "async_action_id": action.id,
        "queued": queued,
    }
    return _one(sim, "redeploy", response)


def _one(sim: Settings, kind: str, payload: dict[str, Any]) -> Reply:
    """One object in `response`, with only the fields a source shows."""
    return Reply(200, {"response": documented(kind, payload, sim.undocumented)}, {})


def _page(sim: Settings, kind: str, items: list[dict[str, Any]], page: int) -> Reply:
    def window(chosen: slice) -> tuple[int, list[dict[str, Any]]]:
        return len(items), items[chosen]

    return _paged(sim, kind, page, window)


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
    """The scope a route needs: `users` for accounts, `redeploy` to deploy, cancel or run a
    stack action (the docs' "Run Stack action": scope redeploy)."""
    if method == "GET":
        return "users" if parts == ["accounts"] else "public"
    if method in ("POST", "DELETE") and len(parts) >= 3 and parts[0] == "stacks":
        return "redeploy" if parts[2] in ("deployments", "actions") else None
    return None


def page_number(query: dict[str, str]) -> int:
    raw = query.get("page", "1") or "1"
    try:
        page = int(raw)
    except ValueError:
        page = 0
    if page < 1:
        raise SandboxError(400, "bad_request", f"page must be a positive integer, not {raw!r}")
    return page


def _int_id(raw: str, what: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SandboxError(404, "not_found", f"{what} not found") from None
