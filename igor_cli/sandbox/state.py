"""The simulated Cloud 66 account: stacks, deployments and async actions.

Pure data and rules, no HTTP and no disk: the server wraps every request in
`advance()` + one operation, and persists `to_json()` when `dirty` is set.
Times are kept as epoch seconds and rendered as ISO 8601 UTC only on output.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACCOUNT_ID = 1
ACCOUNT_EMAIL = "sandbox@igor.example"
ACCOUNT_NAME = "igor sandbox"
# /3: services keep their images where the sources show them (image_name, image_tag).
FORMAT = "igor-sandbox/3"
CANCEL_SECONDS = 5.0
MAX_USER_REFERENCE = 255
DEFAULT_OUTCOMES = ("Success", "Success", "Failed", "Cancelled")

STATUS_DEPLOYED = 1
STATUS_FAILED = 2
STATUS_DEPLOYING = 6
HEALTH_BUILDING = 1
HEALTH_HEALTHY = 3
HEALTH_FAILED = 4

SUCCESS = "Success"
FAILED = "Failed"
CANCELLED = "Cancelled"
IN_PROGRESS = "In progress"

# How a deployment's `outcome` and `triggered_via` read, {code, meaning}. The docs'
# sample shows {"code": 1, "meaning": "success"} and {"code": 0, "meaning": "web"};
# other values are unconfirmed. The docs disagree on which half holds the short
# word, so the simulator can also put it in `code` ("web" / "Web Interface",
# "success" / "Successful"): WORDS_IN_CODE. Integer codes for some and string
# codes for others, on purpose: clients must read both halves.
WORDS_IN_MEANING = "meaning"
WORDS_IN_CODE = "code"
_OUTCOME_WORDS: dict[str, dict[str, dict[str, int | str]]] = {
    WORDS_IN_MEANING: {
        IN_PROGRESS: {"code": 0, "meaning": "in progress"},
        SUCCESS: {"code": 1, "meaning": "success"},
        FAILED: {"code": "failed", "meaning": "failed"},
        CANCELLED: {"code": "3", "meaning": "cancelled"},
    },
    WORDS_IN_CODE: {
        IN_PROGRESS: {"code": "deploying", "meaning": "In progress"},
        SUCCESS: {"code": "success", "meaning": "Successful"},
        FAILED: {"code": "failed", "meaning": "Failed"},
        CANCELLED: {"code": "cancelled", "meaning": "Cancelled"},
    },
}
_VIA_WORDS: dict[str, dict[str, dict[str, int | str]]] = {
    WORDS_IN_MEANING: {"api": {"code": 2, "meaning": "api"}, "web": {"code": 0, "meaning": "web"}},
    WORDS_IN_CODE: {
        "api": {"code": "api", "meaning": "API request"},
        "web": {"code": "web", "meaning": "Web Interface"},
    },
}
_VIA = _VIA_WORDS[WORDS_IN_MEANING]
_FINISHED_MESSAGES = {
    SUCCESS: "Deployment completed successfully",
    FAILED: "Deployment failed",
    CANCELLED: "Deployment cancelled",
}
# The one deploy type the documented sample shows (an object, like outcome and
# triggered_via). Unconfirmed: the codes and meanings of the other deploy types.
_DEPLOY_TYPE = {"code": 0, "meaning": "build"}
# What the 2024 sample calls the action a redeploy tracks (the one with a user_reference).
DEPLOY_ACTION = "application_deployment"
_CLOUDS = ("AWS", "DigitalOcean", "Google Cloud", "Hetzner", "Linode", "Azure")
_TEAM = ("alice@example.com", ACCOUNT_EMAIL, "bob@example.com", "carol@example.com")
_DAY = 86400.0
_HOUR = 3600.0
_HEX_REF = re.compile(r"[0-9a-f]{7,40}")


class SandboxError(Exception):
    """A request the API refuses; carries the HTTP status and error body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        """Remember the status and the `error` / `error_description` pair."""
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def iso(epoch: float) -> str:
    """Render epoch seconds the way Cloud 66 does: ISO 8601 UTC with a Z."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stack_uid(name: str, environment: str) -> str:
    """A stable 32-hex uid for a stack, so sample uids survive restarts."""
    return hashlib.sha256(f"stack:{name}:{environment}".encode()).hexdigest()[:32]


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "stack"


@dataclass
class Stack:
    """A stack: the fields GET /stacks shows, plus what only the simulator knows."""

    fields: dict[str, Any]
    services: list[dict[str, Any]] = field(default_factory=list)
    failing: bool = False

    @property
    def uid(self) -> str:
        """The stack's uid."""
        return str(self.fields["uid"])

    @property
    def is_docker(self) -> bool:
        """A docker stack deploys services (`services`), never a `git_ref`."""
        return self.fields.get("framework") == "docker"


@dataclass
class Deployment:
    """A deployment, queued (not started), live, or finished."""

    id: int
    stack_uid: str
    triggered_by: str
    via: str
    requested_at: float
    action_id: int
    git_ref: str
    git_hash: str
    services: list[str] | None
    user_reference: str | None
    deployment_profile: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    cancel_at: float | None = None
    cancelled_by: str | None = None
    outcome: str | None = None
    prev_status: int | None = None
    prev_health: int | None = None

    @property
    def live(self) -> bool:
        """Started and not finished."""
        return self.started_at is not None and self.finished_at is None

    @property
    def queued(self) -> bool:
        """Waiting for the live deployment of its stack to end."""
        return self.started_at is None and self.finished_at is None


@dataclass
class Action:
    """An async action (`stack_redeploy`) that tracks one deployment."""

    id: int
    stack_uid: str
    user: str
    started_via: str
    started_at: float
    metadata: dict[str, Any]
    finished_at: float | None = None
    finished_success: bool | None = None
    finished_message: str | None = None


def _service(stack_name: str, name: str, image: str, replicas: int, now: float) -> dict[str, Any]:
    """A service as `GET /stacks/{uid}/services` shows it (sources.py names each field)."""
    containers = [
        {
            "uid": _digest("container", stack_name, name, i)[:64],
            "server_uid": _digest("server", stack_name, i % 3)[:32],
            "server_name": ("Lion", "Tiger", "Otter")[i % 3],
            "service_name": name,
            "image": image,
            "port_list": "[]",
            "command": "",
            "started_at": iso(now - _DAY),
            "web_ports": "",
            "created_at": iso(now - _DAY),
            "updated_at": iso(now - _DAY),
        }
        for i in range(replicas)
    ]
    service = {"name": name, "containers": containers, "source_type": "image"}
    _set_image(service, image)
    return service


def _set_image(service: dict[str, Any], image: str) -> None:
    """The service runs `image` now: its containers' `image`, the Go client's two fields."""
    tag = _tag(image)
    service["image_name"] = image[: -len(tag) - 1] if tag else image
    service["image_tag"] = tag
    for container in service.get("containers", []):
        container["image"] = image


def _given_service(spec: dict[str, Any]) -> dict[str, Any]:
    """A service a test wrote out; an `image` (as older tests give it) is put where the
    sources show images: the containers' `image` and the Go client's two fields."""
    service = dict(spec)
    service.setdefault("containers", [])
    image = service.pop("image", None)
    if isinstance(image, str):
        _set_image(service, image)
    return service


# Newest first: mostly successes, with the failures and cancellations a real team has.
_SHOP_OUTCOMES = (
    SUCCESS, SUCCESS, SUCCESS, FAILED, SUCCESS, SUCCESS, CANCELLED, SUCCESS, SUCCESS,
    SUCCESS, SUCCESS, FAILED, FAILED, SUCCESS, SUCCESS,
)  # fmt: skip
_SHOP_PROFILES = (None, None, None, None, "fast", None, None, None, None, None, None)
_SHOP_REPO = "git@github.com:example/shop.git"


def _sample_stacks(now: float) -> list[dict[str, Any]]:
    """The fixed sample account; ages are relative to `now` so it always looks recent."""
    hour = 3600.0
    return [
        {"name": "shop", "environment": "production", "framework": "rails", "language": "ruby",
         "cloud": "AWS", "age": 2 * hour, "created": 400 * _DAY,
         "git": _SHOP_REPO, "git_branch": "main",
         "history": [{"count": 45, "outcomes": _SHOP_OUTCOMES, "profiles": _SHOP_PROFILES}]},
        {"name": "shop", "environment": "staging", "framework": "rails", "language": "ruby",
         "cloud": "AWS", "age": 26 * hour, "created": 380 * _DAY,
         "git": _SHOP_REPO, "git_branch": "develop",
         "history": [{"count": 35, "outcomes": _SHOP_OUTCOMES[3:] + _SHOP_OUTCOMES[:3],
                      "via": "api"}]},
        {"name": "blog", "environment": "production", "framework": "rack", "language": "ruby",
         "cloud": "DigitalOcean", "age": 3 * _DAY, "created": 900 * _DAY,
         "history": [{"count": 4, "outcomes": (SUCCESS,)}]},
        {"name": "api", "environment": "production", "framework": "docker", "language": "docker",
         "cloud": "Google Cloud", "age": 5 * hour, "created": 200 * _DAY,
         "services": [
             _service("api", "web", "ghcr.io/example/api:1.4.2", 2, now),
             _service("api", "worker", "ghcr.io/example/api:1.4.2", 1, now),
         ],
         "history": [
             {"count": 6, "services": ["web:1.4.1", "worker:1.4.1"], "via": "api",
              "profiles": (None, None, "canary")},
             {"count": 2, "services": ["web:1.4.1"], "outcomes": (FAILED, SUCCESS)},
             {"count": 6, "services": ["web:1.4.0", "worker:1.4.0"],
              "outcomes": (SUCCESS, SUCCESS, CANCELLED)},
             {"count": 4, "services": ["web:1.3.9", "worker:1.3.9"], "outcomes": (SUCCESS,)},
         ]},
        {"name": "legacy", "environment": "production", "framework": "rails", "language": "ruby",
         "cloud": "Linode", "age": 6 * _DAY, "created": 2000 * _DAY,
         "status": STATUS_FAILED, "health": HEALTH_FAILED, "failing": True,
         "history": [{"count": 8, "outcomes": (FAILED, SUCCESS, SUCCESS, SUCCESS)}]},
        {"name": "Payments Portal", "environment": "production", "framework": "node",
         "language": "node", "cloud": "Azure", "age": 2 * _DAY, "created": 150 * _DAY,
         "history": [{"count": 12, "outcomes": (SUCCESS, SUCCESS, SUCCESS, FAILED)}]},
        {"name": "search", "environment": "staging", "framework": "node", "language": "node",
         "cloud": "Hetzner", "age": 12 * hour, "created": 90 * _DAY,
         "status": STATUS_DEPLOYED, "health": 2, "history": [{"count": 3}]},
    ]  # fmt: skip


def _history_length(history: Any) -> int:
    """How many past deployments a stack spec's `history` asks for."""
    chunks = [history] if isinstance(history, int) else history
    return sum(c if isinstance(c, int) else int(c.get("count", 0)) for c in chunks)


def _fraction(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for these parts."""
    return int(_digest(*parts)[:8], 16) / 0x100000000


class SandboxState:
    """Everything the simulated API knows, with the rules that change it."""

    def __init__(self) -> None:
        """An empty account; use `seed()` or `from_json()` to fill it."""
        self.stacks: list[Stack] = []
        self.deployments: list[Deployment] = []
        self.actions: list[Action] = []
        self.next_deployment_id = 4001
        self.next_action_id = 9001
        # Set by every mutation except `advance()`, which any reader recomputes
        # the same way from the same file, so it never needs saving.
        self.dirty = False
        self._by_uid: dict[str, Stack] = {}

    # -- building ---------------------------------------------------------

    @classmethod
    def seed(cls, now: float, stacks: list[dict[str, Any]] | None = None) -> SandboxState:
        """A fresh account holding `stacks` (or the samples), each with one past deploy."""
        state = cls()
        specs = _sample_stacks(now) if stacks is None else [dict(s) for s in stacks]
        # Histories are numbered down from the first ids: room for every one asked for.
        room = sum(_history_length(spec.get("history", [])) + 1 for spec in specs) + 1000
        state.next_deployment_id = max(state.next_deployment_id, room)
        state.next_action_id = max(state.next_action_id, room + state.next_deployment_id)
        for index, spec in enumerate(specs):
            state._add_stack(spec, now, index)
        state.dirty = True
        return state

    def _add_stack(self, spec: dict[str, Any], now: float, index: int) -> Stack:
        spec = dict(spec)
        name = str(spec.pop("name"))
        environment = str(spec.pop("environment", "production"))
        uid = str(spec.pop("uid", stack_uid(name, environment)))
        if uid in self._by_uid:
            raise ValueError(f"duplicate stack {name!r} ({environment})")
        # Spread generated stacks over the past week so "last activity" varies.
        age = float(spec.pop("age", (index * 7919 % 604800) + 600))
        created = float(spec.pop("created", 365 * _DAY + index * 3600))
        history = spec.pop("history", [])
        services = [
            _given_service(s)
            if isinstance(s, dict)
            else _service(name, str(s), f"example/{_slug(name)}:1.0", 1, now)
            for s in spec.pop("services", [])
        ]
        failing = bool(spec.pop("failing", False))
        # A stack with containers is a docker stack unless the spec says otherwise.
        framework = str(spec.pop("framework", "docker" if services else "rails"))
        last = now - age
        slug = _slug(name)
        fields: dict[str, Any] = {
            "uid": uid,
            "name": name,
            "environment": environment,
            "status": STATUS_DEPLOYED,
            "health": HEALTH_HEALTHY,
            "is_busy": False,
            "framework": framework,
            "language": "docker" if framework == "docker" else "ruby",
            "cloud": _CLOUDS[index % len(_CLOUDS)],
            "fqdn": f"{slug}-{environment}-{uid[:6]}.c66.me",
            "git": f"git@github.com:example/{slug}.git",
            "git_branch": "main",
            # Unconfirmed: the values of `backend` (the Go client reads it, the docs
            # do not list it); "kubernetes" for docker stacks, "" for the others.
            # Served only when a test turns it on (sources.UNDOCUMENTED).
            "backend": "kubernetes" if framework == "docker" else "",
            "account_id": ACCOUNT_ID,
            "maintenance_mode": False,
            "has_loadbalancer": environment == "production",
            "created_at": iso(now - created),
            "created_at_iso": iso(now - created),
            "updated_at": iso(last),
            "updated_at_iso": iso(last),
            "last_activity": iso(last),
            "last_activity_iso": iso(last),
            "deploy_directory": f"/var/deploy/{slug.replace('-', '_')}",
            "cloud_status": "ok",
            "redeploy_hook": (
                f"https://hooks.cloud66.com/stacks/redeploy/{uid[:16]}/{_digest('hook', uid)[:32]}"
            ),
        }
        fields.update(spec)
        stack = Stack(fields=fields, services=services, failing=failing)
        self.stacks.append(stack)
        self._by_uid[uid] = stack
        if not fields.get("is_busy"):
            # The latest deployment: the code (or the images) running now.
            outcome = FAILED if fields["status"] == STATUS_FAILED else SUCCESS
            tags = [f"{s['name']}:{s.get('image_tag') or ''}" for s in services]
            deployment, _ = self._create(
                stack,
                user=ACCOUNT_EMAIL,
                via="web",
                now=last - 240.0,
                git_ref=None,
                services=[t for t in tags if not t.endswith(":")] or None,
                user_reference=None,
            )
            deployment.started_at = last - 240.0
            self._close(deployment, last, outcome, touch_stack=False)
        for chunk in [history] if isinstance(history, int) else history:
            options = {"count": chunk} if isinstance(chunk, int) else dict(chunk)
            self.add_history(uid, now=now, **options)
        return stack

    def add_history(
        self,
        uid: str,
        count: int,
        *,
        now: float,
        outcomes: Sequence[str] = DEFAULT_OUTCOMES,
        via: str = "web",
        services: Sequence[str] | None = None,
        git_ref: str | None = None,
        profiles: Sequence[str | None] = (None,),
    ) -> list[int]:
        """Add `count` finished deployments before the stack's oldest; returns their ids.

        Entries go back in time from the oldest deployment the stack has (or
        `now`), 6 to 36 hours apart, cycling through `outcomes` and `profiles`
        newest first. Their ids sit below every existing id, so within a stack a
        higher id is always a newer deployment.
        """
        stack = self.get_stack(uid)
        if count < 0:
            raise ValueError("count must not be negative")
        labels = [_outcome_label(o) for o in outcomes] or [SUCCESS]
        if via not in _VIA:
            raise ValueError(f"via must be one of {sorted(_VIA)}")
        try:
            tags = _check_targets(stack, services, git_ref)
        except SandboxError as exc:
            raise ValueError(exc.description) from None
        own = [d for d in self.deployments if d.stack_uid == uid]
        anchor = min((d.started_at or d.requested_at for d in own), default=now)
        lowest_deployment = min((d.id for d in self.deployments), default=self.next_deployment_id)
        lowest_action = min((a.id for a in self.actions), default=self.next_action_id)
        if count >= min(lowest_deployment, lowest_action):
            raise ValueError("the sandbox has no room for a history that long")
        ref = git_ref or str(stack.fields.get("git_branch") or "main")
        repo = str(stack.fields.get("git") or uid)
        commit = len(own)
        ids: list[int] = []
        at = anchor
        for i in range(count):
            key = (uid, anchor, i)
            at -= (6.0 + 30.0 * _fraction("gap", *key)) * _HOUR
            label = labels[i % len(labels)]
            # A redeploy with nothing new pushed runs the same commit again.
            if i == 0 or _fraction("same", *key) >= 0.25:
                commit += 1
            minutes = 1.0 if label == CANCELLED else 3.0 + 9.0 * _fraction("took", *key)
            user = _TEAM[int(_fraction("who", *key) * len(_TEAM))]
            deployment = Deployment(
                id=lowest_deployment - 1 - i,
                stack_uid=uid,
                triggered_by=user,
                via=via,
                requested_at=at,
                action_id=lowest_action - 1 - i,
                git_ref=ref,
                git_hash=_commit(repo, ref, commit),
                services=list(tags) if tags else None,
                user_reference=None,
                deployment_profile=profiles[i % len(profiles)] if profiles else None,
                started_at=at,
            )
            self.deployments.append(deployment)
            self.actions.append(_action_for(deployment, git_ref))
            self._close(deployment, at + minutes * 60.0, label, touch_stack=False)
            ids.append(deployment.id)
        self.dirty = True
        return ids

    def add_stacks(self, n: int, prefix: str, now: float) -> None:
        """Add `n` deployed, healthy production stacks named prefix-0001 onwards."""
        taken = {(s.fields["name"], s.fields["environment"]) for s in self.stacks}
        number = 0
        for _ in range(n):
            number += 1
            while (f"{prefix}-{number:04d}", "production") in taken:
                number += 1
            name = f"{prefix}-{number:04d}"
            taken.add((name, "production"))
            self._add_stack({"name": name, "environment": "production"}, now, len(self.stacks))
        self.dirty = True

    # -- persistence ------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Everything needed to rebuild this state, as plain JSON.

        It shares the state's inner dicts and lists (`asdict` would deep-copy
        them at several times the cost): serialise it, do not change it.
        """
        return {
            "format": FORMAT,
            "next_deployment_id": self.next_deployment_id,
            "next_action_id": self.next_action_id,
            "stacks": [vars(s) for s in self.stacks],
            "deployments": [vars(d) for d in self.deployments],
            "actions": [vars(a) for a in self.actions],
        }

    @classmethod
    def from_json(cls, data: Any) -> SandboxState:
        """Rebuild a state saved by `to_json`; ValueError if it is not one."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not an igor sandbox state file")
        state = cls()
        try:
            state.next_deployment_id = int(data["next_deployment_id"])
            state.next_action_id = int(data["next_action_id"])
            state.stacks = [Stack(**s) for s in data["stacks"]]
            state.deployments = [Deployment(**d) for d in data["deployments"]]
            state.actions = [Action(**a) for a in data["actions"]]
        except (AttributeError, KeyError, TypeError) as exc:
            raise ValueError(f"damaged sandbox state: {exc}") from exc
        state._by_uid = {s.uid: s for s in state.stacks}
        return state

    # -- lookups ----------------------------------------------------------

    def get_stack(self, uid: str) -> Stack:
        """The stack with this uid, or a 404."""
        stack = self._by_uid.get(uid)
        if stack is None:
            raise SandboxError(404, "not_found", "Stack not found")
        return stack

    def find_stack(self, name: str, environment: str) -> Stack:
        """The stack with this exact name and environment (KeyError if none)."""
        for stack in self.stacks:
            if stack.fields["name"] == name and stack.fields["environment"] == environment:
                return stack
        raise KeyError(f"no sandbox stack {name!r} in {environment!r}")

    def _running(self, uid: str) -> Deployment | None:
        return next((d for d in self.deployments if d.stack_uid == uid and d.live), None)

    def _next_queued(self, uid: str) -> Deployment | None:
        return next((d for d in self.deployments if d.stack_uid == uid and d.queued), None)

    def _action(self, action_id: int) -> Action:
        return next(a for a in self.actions if a.id == action_id)

    # -- time -------------------------------------------------------------

    def advance(self, now: float, deploy_seconds: float) -> None:
        """Finish every deployment whose time is up and start what was queued behind it."""
        pending = {d.stack_uid for d in self.deployments if d.finished_at is None}
        for uid in sorted(pending):
            self._advance_stack(uid, now, deploy_seconds)

    def _advance_stack(self, uid: str, now: float, deploy_seconds: float) -> None:
        while True:
            running = self._running(uid)
            if running is None:
                waiting = self._next_queued(uid)
                if waiting is None:
                    return
                # Only reachable from a hand-edited state file: nothing runs, so go.
                self._begin(waiting, waiting.requested_at)
                continue
            assert running.started_at is not None
            if running.cancel_at is not None:
                end, outcome = running.cancel_at, CANCELLED
            else:
                end = running.started_at + deploy_seconds
                outcome = FAILED if self.get_stack(uid).failing else SUCCESS
            if end > now:
                return
            self._close(running, end, outcome)
            waiting = self._next_queued(uid)
            if waiting is not None:
                self._begin(waiting, max(end, waiting.requested_at))

    # -- operations -------------------------------------------------------

    def deploy(
        self,
        uid: str,
        *,
        now: float,
        user: str = ACCOUNT_EMAIL,
        via: str = "api",
        services: str | None = None,
        git_ref: str | None = None,
        user_reference: str | None = None,
        deployment_profile: str | None = None,
    ) -> tuple[Deployment, Action, bool]:
        """Start a deployment or queue it behind the live one; returns (.., .., queued).

        Empty `services`, `git_ref` and `deployment_profile` count as absent: the
        official Go client sends all three on every redeploy, empty when unset.
        """
        stack = self.get_stack(uid)
        if user_reference is not None and len(user_reference) > MAX_USER_REFERENCE:
            raise SandboxError(
                400,
                "bad_request",
                f"user_reference is too long (maximum is {MAX_USER_REFERENCE} characters)",
            )
        wanted = [s.strip() for s in (services or "").split(",") if s.strip()]
        wanted = _check_targets(stack, wanted, git_ref or None)
        busy = self._running(uid) is not None or self._next_queued(uid) is not None
        deployment, action = self._create(
            stack,
            user=user,
            via=via,
            now=now,
            git_ref=git_ref or None,
            services=wanted or None,
            user_reference=user_reference,
            deployment_profile=deployment_profile or None,
        )
        if not busy:
            self._begin(deployment, now)
        self.dirty = True
        return deployment, action, busy

    def cancel(self, uid: str, deployment_id: int, now: float, user: str = ACCOUNT_EMAIL) -> None:
        """Ask a live deployment to stop (it ends CANCEL_SECONDS later), or drop a queued one.

        Unconfirmed: that DELETE also cancels a queued deployment (the API docs say
        "cancel a live stack deployment"), and that a cancelled deployment's async
        action says who cancelled it ("Deployment cancelled by <user>").
        """
        self.get_stack(uid)
        deployment = next(
            (d for d in self.deployments if d.id == deployment_id and d.stack_uid == uid), None
        )
        if deployment is None:
            raise SandboxError(404, "not_found", "Deployment not found")
        if deployment.finished_at is not None:
            raise SandboxError(404, "not_found", "Deployment is not running")
        if deployment.cancel_at is not None:
            raise SandboxError(409, "conflict", "Deployment is already being cancelled")
        deployment.cancelled_by = user
        if deployment.queued:
            # Never started, so there is nothing to wind down.
            self._close(deployment, now, CANCELLED, touch_stack=False)
        else:
            deployment.cancel_at = now + CANCEL_SECONDS
        self.dirty = True

    def set_failing(self, uid: str, failing: bool) -> None:
        """Make the stack's deployments end in failure (or stop doing so)."""
        self.get_stack(uid).failing = failing
        self.dirty = True

    def _create(
        self,
        stack: Stack,
        *,
        user: str,
        via: str,
        now: float,
        git_ref: str | None,
        services: list[str] | None,
        user_reference: str | None,
        deployment_profile: str | None = None,
    ) -> tuple[Deployment, Action]:
        deployment_id, action_id = self.next_deployment_id, self.next_action_id
        self.next_deployment_id += 1
        self.next_action_id += 1
        ref = git_ref or str(stack.fields.get("git_branch") or "main")
        deployment = Deployment(
            id=deployment_id,
            stack_uid=stack.uid,
            triggered_by=user,
            via=via,
            requested_at=now,
            action_id=action_id,
            git_ref=ref,
            git_hash=self._resolve(stack, ref),
            services=services,
            user_reference=user_reference,
            deployment_profile=deployment_profile,
        )
        action = _action_for(deployment, git_ref)
        self.deployments.append(deployment)
        self.actions.append(action)
        return deployment, action

    def _resolve(self, stack: Stack, ref: str) -> str:
        """The commit a ref names: a branch's head, or a (short) hash the repo has run."""
        repo = str(stack.fields.get("git") or stack.uid)
        if not _HEX_REF.fullmatch(ref):
            return _commit(repo, ref, 0)
        if len(ref) == 40:
            return ref
        same_repo = {s.uid for s in self.stacks if s.fields.get("git") == repo}
        for deployment in self.deployments:
            if deployment.stack_uid in same_repo and deployment.git_hash.startswith(ref):
                return deployment.git_hash
        return (ref + _digest("commit", repo, ref))[:40]

    def _begin(self, deployment: Deployment, at: float) -> None:
        fields = self.get_stack(deployment.stack_uid).fields
        deployment.started_at = at
        deployment.prev_status = int(fields["status"])
        deployment.prev_health = int(fields["health"])
        stamp = iso(at)
        # Starting a deployment is activity too, not only its end.
        fields.update(
            status=STATUS_DEPLOYING,
            health=HEALTH_BUILDING,
            is_busy=True,
            updated_at=stamp,
            updated_at_iso=stamp,
            last_activity=stamp,
            last_activity_iso=stamp,
        )

    def _close(
        self, deployment: Deployment, at: float, outcome: str, *, touch_stack: bool = True
    ) -> None:
        deployment.finished_at = at
        deployment.outcome = outcome
        action = self._action(deployment.action_id)
        action.finished_at = at
        action.finished_success = outcome == SUCCESS
        action.finished_message = _FINISHED_MESSAGES[outcome]
        if outcome == CANCELLED and deployment.cancelled_by:
            action.finished_message += f" by {deployment.cancelled_by}"
        if not touch_stack:
            return
        stack = self.get_stack(deployment.stack_uid)
        if outcome == SUCCESS:
            status, health = STATUS_DEPLOYED, HEALTH_HEALTHY
            self._retag(stack, deployment.services or [])
        elif outcome == FAILED:
            status, health = STATUS_FAILED, HEALTH_FAILED
        else:
            status = deployment.prev_status if deployment.prev_status is not None else 1
            health = deployment.prev_health if deployment.prev_health is not None else 3
        stamp = iso(at)
        stack.fields.update(
            status=status,
            health=health,
            is_busy=False,
            updated_at=stamp,
            updated_at_iso=stamp,
            last_activity=stamp,
            last_activity_iso=stamp,
        )

    @staticmethod
    def _retag(stack: Stack, services: list[str]) -> None:
        """After a successful `web:1.5` deploy, the web service runs tag 1.5."""
        for entry in services:
            name, _, tag = entry.partition(":")
            for service in stack.services:
                if service["name"] == name and tag:
                    _set_image(service, f"{service.get('image_name') or name}:{tag}")

    # -- rendering --------------------------------------------------------

    def account(self) -> dict[str, Any]:
        """The one account, as GET /accounts lists it (its name is `friendly_name`)."""
        oldest = min((str(s.fields["created_at"]) for s in self.stacks), default=None)
        clouds = sorted({str(s.fields.get("cloud", "")).lower() for s in self.stacks} - {""})
        return {
            "id": ACCOUNT_ID,
            "owner": ACCOUNT_EMAIL,
            "friendly_name": ACCOUNT_NAME,
            "stack_count": len(self.stacks),
            "used_clouds": clouds,
            "created_at_iso": oldest,
            "updated_at_iso": oldest,
        }

    def list_deployments(
        self,
        uid: str,
        order: str = "newest",
        *,
        words: str = WORDS_IN_MEANING,
        window: slice | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many deployments the stack lists, and those in `window` (all by default),
        newest (or oldest) first: only those in the window are rendered.

        Unconfirmed: that a queued deployment is not listed until it starts (igor
        never relies on it: what waits shows only as igor's unfinished action).
        """
        started = [d for d in self.deployments if d.stack_uid == uid and d.started_at is not None]
        started.sort(key=lambda d: (d.started_at or 0.0, d.id), reverse=order == "newest")
        live = self._live_of(started)
        chosen = started[window] if window is not None else started
        return len(started), [render_deployment(d, is_live=d is live, words=words) for d in chosen]

    @staticmethod
    def _live_of(deployments: Sequence[Deployment]) -> Deployment | None:
        return max(
            (d for d in deployments if d.outcome == SUCCESS),
            key=lambda d: (d.finished_at or 0.0, d.id),
            default=None,
        )

    def get_deployment(
        self, uid: str, deployment_id: int, words: str = WORDS_IN_MEANING
    ) -> dict[str, Any]:
        """One deployment of the stack (queued ones too), or a 404."""
        own = [d for d in self.deployments if d.stack_uid == uid]
        for deployment in own:
            if deployment.id == deployment_id:
                live = self._live_of(own)
                return render_deployment(deployment, is_live=deployment is live, words=words)
        raise SandboxError(404, "not_found", "Deployment not found")

    def list_actions(
        self,
        uid: str,
        order: str = "newest",
        user_reference: str | None = None,
        *,
        window: slice | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many async actions the stack lists (maybe for one user_reference), and
        those in `window`, newest (or oldest) first."""
        actions = [
            a
            for a in self.actions
            if a.stack_uid == uid
            and (user_reference is None or a.metadata.get("user_reference") == user_reference)
        ]
        actions.sort(key=lambda a: (a.started_at, a.id), reverse=order == "newest")
        chosen = actions[window] if window is not None else actions
        return len(actions), [render_action(a) for a in chosen]

    def get_action(self, uid: str, action_id: int) -> dict[str, Any]:
        """One async action of the stack, or a 404."""
        for action in self.actions:
            if action.id == action_id and action.stack_uid == uid:
                return render_action(action)
        raise SandboxError(404, "not_found", "Action not found")


def _tag(image: str) -> str:
    """The tag of an image reference (`ghcr.io/x/api:1.4` -> `1.4`), or ""."""
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def _commit(repo: str, ref: str, steps_back: int) -> str:
    """A stable 40-hex commit: the head of `ref` in `repo`, or one `steps_back` before it."""
    if steps_back == 0:
        return _digest("head", repo, ref)[:40]
    return _digest("commit", repo, ref, steps_back)[:40]


def _outcome_label(outcome: str) -> str:
    for label in (SUCCESS, FAILED, CANCELLED):
        if outcome.strip().lower() == label.lower():
            return label
    raise ValueError(f"outcome must be one of {SUCCESS}, {FAILED}, {CANCELLED}, not {outcome!r}")


def _check_targets(stack: Stack, services: Sequence[str] | None, git_ref: str | None) -> list[str]:
    """The `services` entries if they fit the stack; a 400 SandboxError if not."""
    wanted = [str(s).strip() for s in services or () if str(s).strip()]
    # Unconfirmed: both refusals and their wording. cx documents --service as
    # Docker only and --git-ref as non-Docker only; the API docs say the same
    # of `services_filter` and `git_ref`.
    if wanted and not stack.is_docker:
        raise SandboxError(400, "bad_request", "services apply to docker stacks only")
    if git_ref and stack.is_docker:
        raise SandboxError(400, "bad_request", "git_ref applies to non-docker stacks only")
    known = {str(s["name"]) for s in stack.services}
    for entry in wanted:
        name = entry.split(":", 1)[0]
        if name not in known:
            raise SandboxError(400, "bad_request", f"service '{name}' not found")
    return wanted


def _action_for(deployment: Deployment, git_ref: str | None) -> Action:
    """The async action (`stack_redeploy`) that tracks a deployment."""
    services = deployment.services
    return Action(
        id=deployment.action_id,
        stack_uid=deployment.stack_uid,
        user=deployment.triggered_by,
        started_via=deployment.via,
        started_at=deployment.requested_at,
        metadata={
            "user_reference": deployment.user_reference,
            "services": ",".join(services) if services else None,
            "git_ref": git_ref,
            "deployment_profile": deployment.deployment_profile,
            "deployment_id": deployment.id,
        },
    )


def render_deployment(
    d: Deployment, *, is_live: bool = False, words: str = WORDS_IN_MEANING
) -> dict[str, Any]:
    """A deployment as GET /stacks/{uid}/deployments shows it, with the fields only the
    simulator knows (the server serves those only when a test turns them on).

    `is_live` marks the deployment whose code runs now: the newest successful one.
    """
    label = d.outcome or IN_PROGRESS
    return {
        "id": d.id,
        "triggered_by": d.triggered_by,
        "triggered_via": dict(_VIA_WORDS[words].get(d.via, _VIA_WORDS[words]["api"])),
        "started_at": iso(d.started_at) if d.started_at is not None else None,
        "finished_at": iso(d.finished_at) if d.finished_at is not None else None,
        "outcome": dict(_OUTCOME_WORDS[words][label]),
        "git_hash": d.git_hash,
        "deploy_session": _digest("session", d.stack_uid, d.id)[:10],
        "deploy_type": dict(_DEPLOY_TYPE),
        "is_head": is_live,
        "is_live": is_live,
        "reverted": None,
        "reverted_by": None,
        "reverted_at": None,
        "is_deploying": d.live,
        "commit_url": None,
        "git_ref": d.git_ref,
        "services": list(d.services) if d.services else None,
        "deployment_profile": d.deployment_profile,
    }


def render_action(a: Action) -> dict[str, Any]:
    """An async action as GET /stacks/{uid}/actions shows it (metadata: what the redeploy
    was asked; the server serves only its `user_reference` unless a test asks)."""
    return {
        "id": a.id,
        "user": a.user,
        "resource_type": "stack",
        "action": DEPLOY_ACTION,
        "resource_id": str(int(a.stack_uid[:6], 16)) if _HEX6.match(a.stack_uid) else a.stack_uid,
        "started_via": a.started_via,
        "started_at": iso(a.started_at),
        "finished_at": iso(a.finished_at) if a.finished_at is not None else None,
        "finished_success": a.finished_success,
        "finished_message": a.finished_message,
        "finished_result": {},
        "metadata": dict(a.metadata),
    }


_HEX6 = re.compile(r"[0-9a-f]{6}")
