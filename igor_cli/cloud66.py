"""The Cloud 66 API v3 client and the models it returns.

One `requests.Session` per client (keep-alive), a timeout on every call, every
page of a list (the first, then the rest concurrently), retries with backoff for
idempotent GETs only. A deploy POST or a cancel DELETE is never retried: if no
answer comes back, `OutcomeUnknown` says so. `requests` is imported inside the
client so that importing the models stays cheap.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol

from igor_cli import __version__
from igor_cli.config import DEFAULT_API_URL
from igor_cli.errors import (
    ApiError,
    Cloud66Error,
    Conflict,
    Forbidden,
    NotFound,
    OutcomeUnknown,
    Throttled,
    Unauthorized,
    Unreachable,
)

if TYPE_CHECKING:
    import requests

USER_AGENT = f"igor/{__version__} (+https://github.com/cloud66-oss/igor)"


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
        return str(value.get("meaning") or value.get("code") or "")
    return str(value or "")


@dataclass(frozen=True)
class Stack:
    """A Cloud 66 stack as `GET /stacks` describes it."""

    uid: str
    name: str
    environment: str
    status: StackStatus
    health: StackHealth
    is_busy: bool
    framework: str = ""
    cloud: str = ""
    fqdn: str = ""
    last_activity: datetime | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Stack:
        """Build from one entry of the API's `response`."""
        return cls(
            uid=str(data.get("uid", "")),
            name=str(data.get("name", "")),
            environment=str(data.get("environment") or ""),
            status=_enum(StackStatus, data.get("status"), StackStatus.UNKNOWN),
            health=_enum(StackHealth, data.get("health"), StackHealth.UNKNOWN),
            is_busy=bool(data.get("is_busy")),
            framework=str(data.get("framework") or ""),
            cloud=str(data.get("cloud") or ""),
            fqdn=str(data.get("fqdn") or ""),
            last_activity=parse_time(data.get("last_activity_iso") or data.get("last_activity")),
        )

    @property
    def label(self) -> str:
        """`name (environment)`, the way igor names a stack to people."""
        return f"{self.name} ({self.environment})" if self.environment else self.name


@dataclass(frozen=True)
class Service:
    """A service of a (docker) stack."""

    name: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Service:
        """Build from one entry of `GET /stacks/{uid}/services`."""
        return cls(name=str(data.get("name", "")))


@dataclass(frozen=True)
class Deployment:
    """One deployment of a stack."""

    id: str
    triggered_by: str
    triggered_via: str
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str
    is_deploying: bool
    git_hash: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Deployment:
        """Build from one entry of `GET /stacks/{uid}/deployments`."""
        return cls(
            id=str(data.get("id", "")),
            triggered_by=str(data.get("triggered_by") or "someone"),
            triggered_via=_meaning(data.get("triggered_via")),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            outcome=_meaning(data.get("outcome")),
            is_deploying=bool(data.get("is_deploying")),
            git_hash=str(data.get("git_hash") or ""),
        )


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

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> AsyncAction:
        """Build from `GET /stacks/{uid}/actions[/{id}]`."""
        metadata = data.get("metadata")
        reference = metadata.get("user_reference") if isinstance(metadata, Mapping) else None
        success = data.get("finished_success")
        return cls(
            id=str(data.get("id", "")),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            finished_success=None if success is None else bool(success),
            finished_message=str(data.get("finished_message") or ""),
            user_reference=str(reference or ""),
            user=str(data.get("user") or ""),
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
        """Build from one entry of `GET /accounts`."""
        return cls(
            id=str(data.get("id", "")),
            owner=str(data.get("owner") or ""),
            name=str(data.get("name") or ""),
            stack_count=int(data.get("stack_count") or 0),
        )


@dataclass
class RetryPolicy:
    """How idempotent GETs are retried: exponential backoff with full jitter."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    total_seconds: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_delay * 4)
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class Observer(Protocol):
    """Told what the client saw (the completion cache listens)."""

    def stacks(self, stacks: list[Stack]) -> None:
        """Every stack, after a full listing."""

    def services(self, uid: str, services: list[Service]) -> None:
        """One stack's services."""


_RETRYABLE = frozenset({429, 500, 502, 503, 504})
TIMEOUT = (5.0, 30.0)  # connect, read


class Cloud66Client:
    """The Cloud 66 API on one keep-alive session."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_API_URL,
        *,
        retry: RetryPolicy | None = None,
        page_workers: int = 8,
        timeout: tuple[float, float] = TIMEOUT,
        observer: Observer | None = None,
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.page_workers = page_workers
        self.timeout = timeout
        self.observer = observer
        self._session = requests.Session()
        # The pool must hold every concurrent page fetch, or connections are
        # thrown away and re-opened.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=page_workers + 2)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            }
        )
        # Proxies and .netrc from the environment still apply; a .netrc must
        # not replace our Authorization header.
        self._session.trust_env = True

    def close(self) -> None:
        """Close the keep-alive connections."""
        self._session.close()

    def __enter__(self) -> Cloud66Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ---------------------------------------------------------

    def stacks(self) -> list[Stack]:
        """Every stack the token can see (every page)."""
        stacks = [Stack.from_api(item) for item in self._get_all("/stacks")]
        if self.observer is not None:
            self.observer.stacks(stacks)
        return stacks

    def stack(self, uid: str) -> Stack:
        """One stack."""
        return Stack.from_api(self._get_object(f"/stacks/{uid}"))

    def services(self, uid: str) -> list[Service]:
        """The services of a stack (empty for stacks without containers)."""
        services = [Service.from_api(item) for item in self._get_all(f"/stacks/{uid}/services")]
        if self.observer is not None:
            self.observer.services(uid, services)
        return services

    def deployments(self, uid: str) -> list[Deployment]:
        """The newest page of a stack's deployments, newest first."""
        return [Deployment.from_api(d) for d in self._get_page(f"/stacks/{uid}/deployments")[0]]

    def actions(self, uid: str) -> list[AsyncAction]:
        """The newest page of a stack's async actions, newest first."""
        return [AsyncAction.from_api(a) for a in self._get_page(f"/stacks/{uid}/actions")[0]]

    def action(self, uid: str, action_id: str) -> AsyncAction:
        """One async action (for following a deployment)."""
        return AsyncAction.from_api(self._get_object(f"/stacks/{uid}/actions/{action_id}"))

    def accounts(self) -> list[Account]:
        """The accounts the token belongs to."""
        return [Account.from_api(item) for item in self._get_all("/accounts")]

    def deploy(
        self, uid: str, *, services: Iterable[str] = (), user_reference: str = ""
    ) -> DeployResponse:
        """Ask Cloud 66 to deploy a stack. Sent once: never retried."""
        data: dict[str, str] = {}
        joined = ",".join(services)
        if joined:
            data["services"] = joined
        if user_reference:
            data["user_reference"] = user_reference[:255]
        body = self._send_once("POST", f"/stacks/{uid}/deployments", data, what="deploy")
        response = _as_mapping(body.get("response", body))
        return DeployResponse(
            ok=bool(response.get("ok", True)),
            message=str(response.get("message") or ""),
            queued=bool(response.get("queued")),
            async_action_id=str(response.get("async_action_id") or ""),
        )

    def cancel(self, uid: str, deployment_id: str) -> str:
        """Cancel a live deployment; returns Cloud 66's message. Never retried."""
        body = self._send_once(
            "DELETE", f"/stacks/{uid}/deployments/{deployment_id}", None, what="cancel"
        )
        response = _as_mapping(body.get("response", body))
        return str(response.get("message") or "Cancelling deployment")

    # -- transport -------------------------------------------------------

    def _get_object(self, path: str) -> Mapping[str, Any]:
        return _as_mapping(self._get(path, {}).get("response"))

    def _get_page(self, path: str, page: int = 1) -> tuple[list[Mapping[str, Any]], int]:
        """One page of a list, and how many pages there are."""
        body = self._get(path, {"page": str(page)} if page > 1 else {})
        items = body.get("response")
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ApiError(f"Cloud 66 answered {path} with something that is not a list.")
        return [_as_mapping(i) for i in items], _page_count(body, len(items))

    def _get_all(self, path: str) -> list[Mapping[str, Any]]:
        first, pages = self._get_page(path)
        if pages <= 1:
            return first
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.page_workers, pages - 1)) as pool:
            rest = pool.map(lambda n: self._get_page(path, n)[0], range(2, pages + 1))
            items = list(first)
            for page in rest:
                items.extend(page)
        return items

    def _get(self, path: str, params: dict[str, str]) -> Mapping[str, Any]:
        import requests

        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = self._session.get(
                    self.base_url + path, params=params, timeout=self.timeout
                )
            except requests.RequestException as exc:
                failure: Cloud66Error = _unreachable(exc)
            else:
                if response.status_code < 400:
                    return _json_body(response, path)
                failure = _error_for(response)
                if response.status_code not in _RETRYABLE:
                    raise failure
                retry_after = _retry_after(response)
            delay = self.retry.delay(attempt, retry_after)
            # The budget counts the waits, so that a slow API cannot stretch a
            # command beyond it however the clock is faked.
            if attempt > self.retry.attempts or waited + delay > self.retry.total_seconds:
                raise failure
            self.retry.sleep(delay)
            waited += delay

    def _send_once(
        self, method: str, path: str, data: dict[str, str] | None, *, what: str
    ) -> Mapping[str, Any]:
        import requests

        try:
            response = self._session.request(
                method, self.base_url + path, json=data, timeout=self.timeout
            )
        except (requests.ConnectTimeout, requests.exceptions.InvalidURL) as exc:
            raise _unreachable(exc) from None
        except requests.ConnectionError as exc:
            # A refused connection never carried the request; anything later
            # (a reset, a dropped answer) may have.
            if _refused(exc):
                raise _unreachable(exc) from None
            raise _unknown(what) from None
        except requests.RequestException:
            raise _unknown(what) from None
        if response.status_code >= 400:
            raise _error_for(response)
        return _json_body(response, path)


def _as_mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise ApiError("Cloud 66 answered with something igor cannot read.")


def _page_count(body: Mapping[str, Any], items_on_page: int) -> int:
    pagination = body.get("pagination")
    if not isinstance(pagination, Mapping):
        return 1
    pages = pagination.get("pages")
    if isinstance(pages, int) and pages > 0:
        return pages
    # Older documents give no `pages`: derive it from the total and page size.
    total = body.get("count", pagination.get("count"))
    per_page = pagination.get("per_page") or items_on_page or 30
    if isinstance(total, int) and isinstance(per_page, int) and per_page > 0:
        return max(1, -(-total // per_page))
    return 1


def _json_body(response: requests.Response, path: str) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise ApiError(
            f"Cloud 66 answered {path} with something that is not JSON "
            f"(HTTP {response.status_code}).",
            "If IGOR_API_URL is set, check that it points at the Cloud 66 API.",
            response.status_code,
        ) from None
    if not isinstance(body, Mapping):
        raise ApiError(f"Cloud 66 answered {path} with JSON igor cannot read.")
    return body


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _error_for(response: requests.Response) -> Cloud66Error:
    """The typed error for an HTTP error answer; carries the API's words, never a token."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, Mapping):
        body = {}
    code = str(body.get("error") or "")
    description = str(body.get("error_description") or body.get("details") or code or "")
    said = f": {description}" if description else ""
    if status == 401:
        return Unauthorized(
            f"Cloud 66 rejected the token{said}.",
            "Check IGOR_CLOUD66_TOKEN, or run `igor register` with a new token.",
            status,
        )
    if status == 403:
        return Forbidden(
            f"The Cloud 66 token lacks the permission for this{said}.",
            "Create a personal access token with the public, redeploy and admin scopes.",
            status,
        )
    if status == 404:
        return NotFound(f"Cloud 66 could not find it{said}.", status=status)
    if status == 409:
        return Conflict(f"Cloud 66 refused: {description or 'conflict'}.", status=status)
    if status == 429 or (status == 503 and code == "throttled"):
        return Throttled(
            "Cloud 66 is throttling requests (3,000 an hour per user).",
            "Wait a few minutes and try again.",
            status,
        )
    return ApiError(f"Cloud 66 answered HTTP {status}{said}.", "Try again later.", status)


def _unreachable(exc: Exception) -> Unreachable:
    kind = type(exc).__name__
    return Unreachable(
        f"Cloud 66 could not be reached ({kind}).",
        "Check your network, or IGOR_API_URL if you set it.",
    )


def _unknown(what: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"The {what} request was sent but no answer came back: it may or may not have happened.",
        "Check with `igor list -s <stack>` or the Cloud 66 dashboard before trying again.",
    )


def _refused(exc: Exception) -> bool:
    reason: BaseException | None = exc
    while reason is not None:
        if (
            isinstance(reason, ConnectionRefusedError)
            or "NewConnectionError" in type(reason).__name__
        ):
            return True
        reason = reason.__context__ or reason.__cause__ or _first_arg(reason)
    return False


def _first_arg(exc: BaseException) -> BaseException | None:
    # urllib3 wraps its errors in the arguments of requests' exceptions.
    for arg in exc.args:
        if isinstance(arg, BaseException):
            return arg
        reason = getattr(arg, "reason", None)
        if isinstance(reason, BaseException):
            return reason
    return None
