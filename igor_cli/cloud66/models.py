"""What Cloud 66's API v3 answers, as igor reads it: stacks, services, deployments,
async actions, accounts.

Only the fields Cloud 66 documents (its API docs, its Go client); every text
cleaned of what would mislead a reader (`refusals.clean_text`). Cheap to import:
the client that fetches them is `client.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from sys import intern
from typing import Any

from igor_cli.cloud66.paging import PER_PAGE
from igor_cli.cloud66.refusals import clean_text


class StackStatus(IntEnum):
    """A stack's `status` code."""

    PENDING_ANALYSIS = 0
    DEPLOYED = 1
    DEPLOY_FAILED = 2
    ANALYZING = 3
    ANALYZED = 4
    QUEUED = 5
    DEPLOYING = 6
    UNABLE_TO_ANALYZE = 7
    UNKNOWN = -1

    @property
    def text(self) -> str:
        """The words Cloud 66 uses for this status."""
        return _STATUS_TEXT[self]


_STATUS_TEXT = {
    StackStatus.PENDING_ANALYSIS: "Pending analysis",
    StackStatus.DEPLOYED: "Deployed successfully",
    StackStatus.DEPLOY_FAILED: "Deployment failed",
    StackStatus.ANALYZING: "Analyzing",
    StackStatus.ANALYZED: "Analyzed",
    StackStatus.QUEUED: "Queued for deployment",
    StackStatus.DEPLOYING: "Deploying",
    StackStatus.UNABLE_TO_ANALYZE: "Unable to analyze",
    StackStatus.UNKNOWN: "Unknown",
}


class StackHealth(IntEnum):
    """A stack's `health` code."""

    UNKNOWN = 0
    BUILDING = 1
    IMPAIRED = 2
    HEALTHY = 3
    FAILED = 4

    @property
    def text(self) -> str:
        """The words Cloud 66 uses for this health."""
        return self.name.capitalize()


def _enum(kind: type[IntEnum], value: Any, default: IntEnum) -> Any:
    try:
        return kind(int(value))
    except (TypeError, ValueError):
        return default


def parse_time(value: Any) -> datetime | None:
    """An API timestamp (ISO 8601, `Z` or offset) as an aware datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _meaning(value: Any) -> str:
    # Codes are integers in some API versions and strings in others: the
    # meaning is the stable part.
    if isinstance(value, Mapping):
        return clean_text(value.get("meaning") or value.get("code") or "")
    return clean_text(value or "")


def _code(value: Any) -> str:
    """The `code` of a {code, meaning} pair as text ("" for an integer code or none)."""
    if isinstance(value, Mapping) and isinstance(value.get("code"), str):
        return clean_text(value["code"])
    return ""


_API = re.compile(r"\bapi\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)  # slots: a big account holds 50,000 of them
class Stack:
    """A Cloud 66 stack as `GET /stacks` describes it."""

    uid: str
    name: str
    environment: str
    status: StackStatus
    health: StackHealth
    is_busy: bool  # read when an answer carries it; no source shows the field
    framework: str = ""
    cloud: str = ""
    fqdn: str = ""
    last_activity: datetime | None = None
    git: str = ""
    git_branch: str = ""
    # Where the API that answered lives (one string, shared by every stack of a listing):
    # `dashboard_url` is made from it when asked, not held 50,000 times.
    api_origin: str = ""
    # Docs' stack object and samples (`maintenance_mode`), Go client `Stack.MaintenanceMode`.
    maintenance_mode: bool = False

    @classmethod
    def from_api(cls, data: Mapping[str, Any], origin: str = "") -> Stack:
        """Build from one entry of the API's `response` (`origin`: where the API lives)."""
        uid = clean_text(data.get("uid"))
        # Words most stacks share are held once (a big account has 50,000 stacks).
        return cls(
            uid=uid,
            name=clean_text(data.get("name")),
            environment=intern(clean_text(data.get("environment"))),
            status=_enum(StackStatus, data.get("status"), StackStatus.UNKNOWN),
            health=_enum(StackHealth, data.get("health"), StackHealth.UNKNOWN),
            is_busy=bool(data.get("is_busy")),
            framework=intern(clean_text(data.get("framework"))),
            cloud=intern(clean_text(data.get("cloud"))),
            fqdn=clean_text(data.get("fqdn")),
            last_activity=parse_time(data.get("last_activity_iso") or data.get("last_activity")),
            git=clean_text(data.get("git")),
            git_branch=intern(clean_text(data.get("git_branch"))),
            api_origin=origin,
            maintenance_mode=data.get("maintenance_mode") is True,
        )

    @property
    def dashboard_url(self) -> str:
        """The stack's page in the Cloud 66 dashboard, when known ("" otherwise)."""
        return dashboard_url(self.api_origin, self.uid) if self.api_origin and self.uid else ""

    @property
    def label(self) -> str:
        """`name (environment)`, the way igor names a stack to people."""
        return f"{self.name} ({self.environment})" if self.environment else self.name

    def named(self) -> dict[str, str]:
        """The stack as igor's JSON output and records name it: uid, name, environment."""
        return {"uid": self.uid, "name": self.name, "environment": self.environment}

    @property
    def busy(self) -> bool:
        """Queued for or in a deployment, by its status (5 or 6), or by `is_busy` where an
        answer carries that field (no source shows it)."""
        return self.is_busy or self.status in (StackStatus.QUEUED, StackStatus.DEPLOYING)

    @property
    def is_docker(self) -> bool:
        """A container stack, where `services` apply (classic stacks take `git_ref`).

        From `framework` only: a documented example is a rails stack whose `backend`
        (a field only the Go client shows) says kubernetes. Unconfirmed: that every
        container stack's framework is "docker".
        """
        return self.framework.casefold() == "docker"


def dashboard_url(origin: str, uid: str) -> str:
    """The stack's page in the dashboard of the Cloud 66 that serves the API at `origin`.

    Unconfirmed: that the dashboard takes the stack's uid (`/stacks/<uid>`); the
    links people share show `/stacks/<number>`, a number the API v3 does not give.
    The sandbox serves a page at the same place.
    """
    from urllib.parse import quote

    return f"{origin.rstrip('/')}/stacks/{quote(uid, safe='')}"


def image_tag(image: str) -> str:
    """The tag of an image reference (`quay.io/x/api:1.4` -> `1.4`), "" when it has none."""
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    return last.rsplit(":", 1)[1].strip() if ":" in last else ""


@dataclass(frozen=True)
class Service:
    """A service of a (docker) stack, and the image tag it runs when Cloud 66 says."""

    name: str
    tag: str = ""  # "" when no source says, or its containers run different tags

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Service:
        """Build from one entry of `GET /stacks/{uid}/services`: the Go client's `image_tag`,
        else the tag its containers' `image` carries (the documented sample's has none)."""
        tag = clean_text(data.get("image_tag")).strip()
        if not tag:
            containers = data.get("containers")
            images = [
                clean_text(c.get("image"))
                for c in (containers if isinstance(containers, list) else [])
                if isinstance(c, Mapping)
            ]
            tags = {image_tag(i) for i in images}
            tag = tags.pop() if len(tags) == 1 else ""
        return cls(name=clean_text(data.get("name")), tag=tag)


@dataclass(frozen=True)
class Deployment:
    """One deployment of a stack, from the fields Cloud 66 documents.

    `git_ref`, `services` and `deployment_profile` are what igor asked for, filled
    from its own record of what it deployed (or, for what runs now, the stack's
    services): Cloud 66 shows none of them on a deployment.
    """

    id: str
    triggered_by: str
    triggered_via: str  # Cloud 66's words: the meaning, else the code
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str
    is_deploying: bool
    git_hash: str = ""
    git_ref: str = ""
    services: tuple[str, ...] = ()
    deploy_type: str = ""
    is_live: bool = False
    deployment_profile: str = ""
    # The docs disagree on which half of {code, meaning} holds the short word
    # ("web" and "success", or "Web Interface" and "Successful"): both are kept.
    triggered_via_code: str = ""
    outcome_code: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Deployment:
        """Build from one entry of `GET /stacks/{uid}/deployments`."""
        return cls(
            id=clean_text(data.get("id")),
            triggered_by=clean_text(data.get("triggered_by")) or "someone",
            triggered_via=_meaning(data.get("triggered_via")),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            outcome=_meaning(data.get("outcome")),
            is_deploying=bool(data.get("is_deploying")),
            git_hash=clean_text(data.get("git_hash")),
            deploy_type=_meaning(data.get("deploy_type")),
            is_live=bool(data.get("is_live")),
            triggered_via_code=_code(data.get("triggered_via")),
            outcome_code=_code(data.get("outcome")),
        )

    @property
    def via_api(self) -> bool | None:
        """Whether it was started through the API (either word says "api"); None when
        Cloud 66 gives no word at all."""
        words = [w for w in (self.triggered_via, self.triggered_via_code) if w]
        if not words:
            return None
        return any(_API.search(w) for w in words)


def what_runs(deployments: Sequence[Deployment]) -> bool:
    """Enough read to tell what runs now and how the last deployment ended: one that is
    over (the running one, if any, is newer)."""
    return any(d.finished_at is not None and not d.is_deploying for d in deployments)


def a_page(actions: Sequence[AsyncAction]) -> bool:
    """A page's worth of the newest actions: every one still running is among them."""
    return len(actions) >= PER_PAGE


def newness(entry: Deployment | AsyncAction) -> tuple[float, int]:
    """A sort key, higher for newer: the start (a deployment not started yet is newest),
    then the numeric id."""
    started = entry.started_at.timestamp() if entry.started_at else float("inf")
    return (started, int(entry.id) if entry.id.isdigit() else 0)


@dataclass(frozen=True)
class AsyncAction:
    """A long-running Cloud 66 action, such as the deployment igor asked for."""

    id: str
    started_at: datetime | None
    finished_at: datetime | None
    finished_success: bool | None
    finished_message: str
    user_reference: str = ""
    user: str = ""
    action: str = ""  # what it does: `application_deployment` in the documented sample

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> AsyncAction:
        """Build from `GET /stacks/{uid}/actions[/{id}]`."""
        metadata = data.get("metadata")
        if not isinstance(metadata, Mapping):
            metadata = {}
        reference = metadata.get("user_reference")
        success = data.get("finished_success")
        return cls(
            id=clean_text(data.get("id")),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            finished_success=None if success is None else bool(success),
            finished_message=clean_text(data.get("finished_message")),
            user_reference=clean_text(reference),
            user=clean_text(data.get("user")),
            action=clean_text(data.get("action")),
        )

    @property
    def finished(self) -> bool:
        """Cloud 66 sets `finished_at` when the action is over."""
        return self.finished_at is not None


@dataclass(frozen=True)
class DeployResponse:
    """Cloud 66's answer to a deploy POST."""

    ok: bool
    message: str
    queued: bool
    async_action_id: str


@dataclass(frozen=True)
class Account:
    """The account a token belongs to."""

    id: str
    owner: str
    name: str
    stack_count: int

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Account:
        """Build from one entry of `GET /accounts` (the name is `friendly_name`)."""
        try:
            stack_count = int(data.get("stack_count") or 0)
        except (TypeError, ValueError):
            stack_count = 0
        return cls(
            id=clean_text(data.get("id")),
            owner=clean_text(data.get("owner")),
            name=clean_text(data.get("friendly_name")) or clean_text(data.get("name")),
            stack_count=stack_count,
        )
