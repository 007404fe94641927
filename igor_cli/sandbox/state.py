"""The simulated Cloud 66 account: stacks, deployments and async actions.

Pure data and rules, no HTTP and no disk: the server wraps every request in
`advance()` + one operation, and persists `to_json()` when `dirty` is set.
Times are kept as epoch seconds and rendered as ISO 8601 UTC only on output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from igor_cli.sandbox.payloads import (
    FINISHED_MESSAGES,
    VIA,
    WORDS_IN_MEANING,
    given_service,
    render_action,
    render_deployment,
    service,
    set_image,
)
from igor_cli.sandbox.records import (
    ACCOUNT_EMAIL,
    ACCOUNT_ID,
    ACCOUNT_NAME,
    ACTION_FAILED,
    ACTION_SUCCEEDED,
    CANCELLED,
    DAY,
    FAILED,
    HEALTH_BUILDING,
    HEALTH_FAILED,
    HEALTH_HEALTHY,
    STATUS_DEPLOYED,
    STATUS_DEPLOYING,
    STATUS_FAILED,
    SUCCESS,
    Action,
    Deployment,
    SandboxError,
    Stack,
    digest,
    iso,
    slug,
    stack_uid,
)

# /3: services keep their images where the sources show them (image_name, image_tag).
FORMAT = "igor-sandbox/3"
CANCEL_SECONDS = 5.0
MAX_USER_REFERENCE = 255
DEFAULT_OUTCOMES = ("Success", "Success", "Failed", "Cancelled")

_CLOUDS = ("AWS", "DigitalOcean", "Google Cloud", "Hetzner", "Linode", "Azure")
_TEAM = ("alice@example.com", ACCOUNT_EMAIL, "bob@example.com", "carol@example.com")
_HOUR = 3600.0
_HEX_REF = re.compile(r"[0-9a-f]{7,40}")


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
         "cloud": "AWS", "age": 2 * hour, "created": 400 * DAY,
         "git": _SHOP_REPO, "git_branch": "main",
         "history": [{"count": 45, "outcomes": _SHOP_OUTCOMES, "profiles": _SHOP_PROFILES}]},
        {"name": "shop", "environment": "staging", "framework": "rails", "language": "ruby",
         "cloud": "AWS", "age": 26 * hour, "created": 380 * DAY,
         "git": _SHOP_REPO, "git_branch": "develop",
         "history": [{"count": 35, "outcomes": _SHOP_OUTCOMES[3:] + _SHOP_OUTCOMES[:3],
                      "via": "api"}]},
        {"name": "blog", "environment": "production", "framework": "rack", "language": "ruby",
         "cloud": "DigitalOcean", "age": 3 * DAY, "created": 900 * DAY,
         "history": [{"count": 4, "outcomes": (SUCCESS,)}]},
        {"name": "api", "environment": "production", "framework": "docker", "language": "docker",
         "cloud": "Google Cloud", "age": 5 * hour, "created": 200 * DAY,
         "services": [
             service("api", "web", "ghcr.io/example/api:1.4.2", 2, now),
             service("api", "worker", "ghcr.io/example/api:1.4.2", 1, now),
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
         "cloud": "Linode", "age": 6 * DAY, "created": 2000 * DAY,
         "status": STATUS_FAILED, "health": HEALTH_FAILED, "failing": True,
         "history": [{"count": 8, "outcomes": (FAILED, SUCCESS, SUCCESS, SUCCESS)}]},
        {"name": "Payments Portal", "environment": "production", "framework": "node",
         "language": "node", "cloud": "Azure", "age": 2 * DAY, "created": 150 * DAY,
         "history": [{"count": 12, "outcomes": (SUCCESS, SUCCESS, SUCCESS, FAILED)}]},
        {"name": "search", "environment": "staging", "framework": "node", "language": "node",
         "cloud": "Hetzner", "age": 12 * hour, "created": 90 * DAY,
         "status": STATUS_DEPLOYED, "health": 2, "history": [{"count": 3}]},
    ]  # fmt: skip


def _history_length(history: Any) -> int:
    """How many past deployments a stack spec's `history` asks for."""
    chunks = [history] if isinstance(history, int) else history
    return sum(c if isinstance(c, int) else int(c.get("count", 0)) for c in chunks)


def _fraction(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for these parts."""
    return int(digest(*parts)[:8], 16) / 0x100000000


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
        # The stacks that may have a deployment not finished yet (a superset: `advance`
        # drops those it finds idle), so that bringing the state to the present costs
        # what is running, not the whole account, on every request.
        self._open: set[str] = set()
        self._timed: list[Action] = []  # the stack actions not over yet, likewise

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
        created = float(spec.pop("created", 365 * DAY + index * 3600))
        history = spec.pop("history", [])
        services = [
            given_service(s)
            if isinstance(s, dict)
            else service(name, str(s), f"example/{slug(name)}:1.0", 1, now)
            for s in spec.pop("services", [])
        ]
        failing = bool(spec.pop("failing", False))
        # A stack with containers is a docker stack unless the spec says otherwise.
        framework = str(spec.pop("framework", "docker" if services else "rails"))
        last = now - age
        short = slug(name)
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
            "fqdn": f"{short}-{environment}-{uid[:6]}.c66.me",
            "git": f"git@github.com:example/{short}.git",
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
            "deploy_directory": f"/var/deploy/{short.replace('-', '_')}",
            "cloud_status": "ok",
            "redeploy_hook": (
                f"https://hooks.cloud66.com/stacks/redeploy/{uid[:16]}/{digest('hook', uid)[:32]}"
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
            self._open.discard(uid)  # its only deployment, and over
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
        if via not in VIA:
            raise ValueError(f"via must be one of {sorted(VIA)}")
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
        state._open = {d.stack_uid for d in state.deployments if d.finished_at is None}
        state._timed = [a for a in state.actions if a.ends_at is not None and a.finished_at is None]
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
        # From the end: the action of a deployment being closed is among the newest.
        return next(a for a in reversed(self.actions) if a.id == action_id)

    # -- time -------------------------------------------------------------

    def advance(self, now: float, deploy_seconds: float) -> None:
        """Finish every deployment whose time is up and start what was queued behind it;
        end the stack actions whose time is up."""
        for uid in sorted(self._open):
            if not self._advance_stack(uid, now, deploy_seconds):
                self._open.discard(uid)
        for action in [a for a in self._timed if a.ends_at is not None and a.ends_at <= now]:
            _end(self.get_stack(action.stack_uid), action)
            self._timed.remove(action)

    def _advance_stack(self, uid: str, now: float, deploy_seconds: float) -> bool:
        """Bring one stack to `now`; whether a deployment of it is still unfinished."""
        while True:
            running = self._running(uid)
            if running is None:
                waiting = self._next_queued(uid)
                if waiting is None:
                    return False
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
                return True
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

    def start_action(
        self,
        stack: Stack,
        action: str,
        params: dict[str, Any],
        *,
        now: float,
        seconds: float,
        sets: dict[str, Any] | None = None,
        user: str = ACCOUNT_EMAIL,
    ) -> Action:
        """Start an async action on the stack, as an endpoint that answers one does (a
        stack action: sandbox/endpoints/actions.py): it ends `seconds` later, and then,
        unless the stack is set failing, the stack's fields `sets` become so."""
        started = Action(
            id=self.next_action_id, stack_uid=stack.uid, user=user, started_via="api",
            started_at=now, metadata={"user_reference": None}, action=action,
            ends_at=now + max(0.0, seconds), params=params, fails=stack.failing, sets=sets,
        )  # fmt: skip
        self.next_action_id += 1
        self.actions.append(started)
        self._timed.append(started)
        self.dirty = True
        return started

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
        self._open.add(stack.uid)
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
        return (ref + digest("commit", repo, ref))[:40]

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
        action.finished_message = FINISHED_MESSAGES[outcome]
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
            for running in stack.services:
                if running["name"] == name and tag:
                    set_image(running, f"{running.get('image_name') or name}:{tag}")

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


def _end(stack: Stack, action: Action) -> None:
    """An async action is over (at `ends_at`): it succeeds and does what it says, or fails."""
    assert action.ends_at is not None
    action.finished_at = action.ends_at
    action.finished_success = not action.fails
    action.finished_message = ACTION_FAILED if action.fails else ACTION_SUCCEEDED
    if action.fails:
        return
    stack.fields.update(action.sets or {})
    # The stack object's `last_activity`: "the last action was performed for the stack".
    stamp = iso(action.ends_at)
    stack.fields.update(last_activity=stamp, last_activity_iso=stamp)


def _commit(repo: str, ref: str, steps_back: int) -> str:
    """A stable 40-hex commit: the head of `ref` in `repo`, or one `steps_back` before it."""
    if steps_back == 0:
        return digest("head", repo, ref)[:40]
    return digest("commit", repo, ref, steps_back)[:40]


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
