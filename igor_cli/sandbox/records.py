"""What the simulated Cloud 66 account is made of: stacks, deployments, async actions.

The records `state.SandboxState` keeps and changes, and the small helpers they
share with `payloads.py` (how they read as the API's answers).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ACCOUNT_ID = 1
ACCOUNT_EMAIL = "sandbox@igor.example"
ACCOUNT_NAME = "igor sandbox"

STATUS_DEPLOYED = 1
STATUS_FAILED = 2
STATUS_DEPLOYING = 6
HEALTH_BUILDING = 1
HEALTH_HEALTHY = 3
HEALTH_FAILED = 4

DAY = 86400.0

SUCCESS = "Success"
FAILED = "Failed"
CANCELLED = "Cancelled"
IN_PROGRESS = "In progress"
# An async action's `finished_message`: the 2024 "Run Stack action" sample's, and the
# simulator's own words for a failure (no source shows a failed action's).
ACTION_SUCCEEDED = "Completed successfully"
ACTION_FAILED = "Action failed"


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


def digest(*parts: object) -> str:
    """A stable hex digest of these parts (sample names, ids and hashes)."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


def slug(text: str) -> str:
    """A stack name as it may stand in a host name or a path."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "stack"


@dataclass
class Stack:
    """A stack: the fields GET /stacks shows, plus what only the simulator knows."""

    fields: dict[str, Any]
    services: list[dict[str, Any]] = field(default_factory=list)
    failing: bool = False
    # What an endpoint module keeps about the stack that no other answer shows (saved
    # with the state), under its own key: `kept["environment_variables"]`.
    kept: dict[str, Any] = field(default_factory=dict)

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
    """An async action: the one that tracks a deployment (`application_deployment`), or
    one an endpoint starts (`POST /stacks/{id}/actions`: `restart`, ...,
    sandbox/endpoints/actions.py), which ends by itself at `ends_at`."""

    id: int
    stack_uid: str
    user: str
    started_via: str
    started_at: float
    metadata: dict[str, Any]
    finished_at: float | None = None
    finished_success: bool | None = None
    finished_message: str | None = None
    action: str = "application_deployment"  # what the 2024 sample calls a redeploy's action
    ends_at: float | None = None  # a stack action: when it is over
    params: dict[str, Any] | None = None  # a stack action: what it was asked with
    fails: bool = False  # a stack action on a stack set failing: it ends in failure
    sets: dict[str, Any] | None = None  # the stack's fields it changes when it succeeds


def tag(image: str) -> str:
    """The tag of an image reference (`ghcr.io/x/api:1.4` -> `1.4`), or ""."""
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""
