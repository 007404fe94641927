"""The Cloud 66 API v3 client and the models it returns.

One keep-alive session per client (or one shared by several clients whose
tokens differ), every page of a list (the first, then the rest concurrently),
retries with backoff for idempotent GETs only, and a total deadline on every
public call. A deploy POST or a cancel DELETE is never retried: when its answer
is missing or unreadable, `OutcomeUnknown` says so. A `throttled` answer is
final until the next hour. `requests` is imported inside the client so that
importing the models stays cheap.
"""

from __future__ import annotations

import functools
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
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
    TrialExpired,
    Unauthorized,
    Unreachable,
)

if TYPE_CHECKING:
    import requests

USER_AGENT = f"igor/{__version__} (+https://github.com/cloud66-oss/igor)"

# igor marks spans of Slack text with private-use characters; text from the API
# must never carry them in.
_PRIVATE_USE = re.compile("[\ue000-\uf8ff]")


def clean_text(value: Any) -> str:
    """A string read from the API, without Unicode private-use characters (None -> "")."""
    if value is None:
        return ""
    return _PRIVATE_USE.sub("", value if isinstance(value, str) else str(value))


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


def _names(value: Any) -> tuple[str, ...]:
    """Service names given as "a,b:tag", ["a", "b"] or [{"name": "a"}, ...]."""
    if isinstance(value, str):
        parts: list[Any] = value.split(",")
    elif isinstance(value, list):
        parts = [v.get("name") if isinstance(v, Mapping) else v for v in value]
    else:
        return ()
    names = (clean_text(p).strip() for p in parts if p is not None)
    return tuple(n for n in names if n)


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
    git: str = ""
    git_branch: str = ""
    backend: str = ""
    dashboard_url: str = ""  # the stack's page in the Cloud 66 dashboard, when known

    @classmethod
    def from_api(cls, data: Mapping[str, Any], origin: str = "") -> Stack:
        """Build from one entry of the API's `response` (`origin`: where the API lives)."""
        uid = clean_text(data.get("uid"))
        return cls(
            uid=uid,
            name=clean_text(data.get("name")),
            environment=clean_text(data.get("environment")),
            status=_enum(StackStatus, data.get("status"), StackStatus.UNKNOWN),
            health=_enum(StackHealth, data.get("health"), StackHealth.UNKNOWN),
            is_busy=bool(data.get("is_busy")),
            framework=clean_text(data.get("framework")),
            cloud=clean_text(data.get("cloud")),
            fqdn=clean_text(data.get("fqdn")),
            last_activity=parse_time(data.get("last_activity_iso") or data.get("last_activity")),
            git=clean_text(data.get("git")),
            git_branch=clean_text(data.get("git_branch")),
            backend=clean_text(data.get("backend")),
            dashboard_url=dashboard_url(origin, uid) if origin and uid else "",
        )

    @property
    def label(self) -> str:
        """`name (environment)`, the way igor names a stack to people."""
        return f"{self.name} ({self.environment})" if self.environment else self.name

    @property
    def is_docker(self) -> bool:
        """A container stack, where `services` apply (classic stacks take `git_ref`)."""
        # Unconfirmed: that framework "docker" or backend "kubernetes"/"docker" is how
        # the API marks container stacks (the Go client has both fields, no rule).
        return self.framework.casefold() == "docker" or self.backend.casefold() in {
            "kubernetes",
            "docker",
        }


def dashboard_url(origin: str, uid: str) -> str:
    """The stack's page in the dashboard of the Cloud 66 that serves the API at `origin`.

    Unconfirmed: that the dashboard takes the stack's uid (`/stacks/<uid>`); the
    links people share show `/stacks/<number>`, a number the API v3 does not give.
    The sandbox serves a page at the same place.
    """
    from urllib.parse import quote

    return f"{origin.rstrip('/')}/stacks/{quote(uid, safe='')}"


@dataclass(frozen=True)
class Service:
    """A service of a (docker) stack."""

    name: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Service:
        """Build from one entry of `GET /stacks/{uid}/services`."""
        return cls(name=clean_text(data.get("name")))


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
    git_ref: str = ""
    services: tuple[str, ...] = ()
    deploy_type: str = ""
    is_live: bool = False
    deployment_profile: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Deployment:
        """Build from one entry of `GET /stacks/{uid}/deployments`."""
        # Unconfirmed: git_ref, services, deploy_type, is_live and deployment_profile
        # are not in the Go client's models; igor reads them when present.
        return cls(
            id=clean_text(data.get("id")),
            triggered_by=clean_text(data.get("triggered_by")) or "someone",
            triggered_via=_meaning(data.get("triggered_via")),
            started_at=parse_time(data.get("started_at")),
            finished_at=parse_time(data.get("finished_at")),
            outcome=_meaning(data.get("outcome")),
            is_deploying=bool(data.get("is_deploying")),
            git_hash=clean_text(data.get("git_hash")),
            git_ref=clean_text(data.get("git_ref")),
            services=_names(data.get("services")),
            deploy_type=_meaning(data.get("deploy_type")),
            is_live=bool(data.get("is_live")),
            deployment_profile=clean_text(data.get("deployment_profile")),
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
    deployment_id: str = ""  # Unconfirmed: metadata.deployment_id (the sandbox sets it)

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
            deployment_id=clean_text(metadata.get("deployment_id")),
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


@dataclass
class RetryPolicy:
    """How idempotent GETs are retried, and how long one public call may take in all.

    `total_seconds` bounds connecting, reading, retrying and waiting together.
    `sleep` is injectable (tests fake it; the bot passes one that a shutdown interrupts).
    """

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

    def deployments(self, uid: str, deployments: list[Deployment]) -> None:
        """One stack's deployments (their service tags name services at no extra cost)."""


_RETRYABLE = frozenset({429, 500, 502, 503, 504})
TIMEOUT = (5.0, 30.0)  # connect, read: each request's own limits, within the call's deadline
PER_PAGE = 30  # the API's page size when an answer does not say
MAX_PAGES = 5_000  # more than this is a broken answer, not 150,000 stacks
MAX_PAGE_WORKERS = 32
HOURLY_LIMIT = 3_000  # requests per user per hour (SPEC section 4)
_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}
_SCOPE_USES = {
    "public": "needed to read stacks and deployments",
    "redeploy": "needed to deploy and cancel",
    "users": "needed to read the account's name",
}
SCOPES_HINT = (
    "Make a token in Cloud 66 under Account -> Authorized Applications -> Personal Access "
    "Token, with the scopes public (to list), redeploy (to deploy and cancel) and, "
    "optionally, users (to show the account's name)."
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def new_session(pool_size: int = MAX_PAGE_WORKERS + 2) -> requests.Session:
    """A keep-alive session whose pool holds every concurrent page fetch.

    Several clients with different tokens may share it (`Cloud66Client(session=...)`):
    the token travels with each request, never on the session, and no cookie is kept.
    """
    from http.cookiejar import DefaultCookiePolicy

    from requests.adapters import HTTPAdapter

    session = _session_class()()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # A cookie set in answer to one token's request must not ride along with another's.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


@functools.cache
def _session_class() -> type[requests.Session]:
    import requests

    class Session(requests.Session):
        """A session that reads the proxy and CA settings from the environment once per
        host, not for every request (100 us each: the environment is scanned every time)."""

        def __init__(self) -> None:
            super().__init__()
            self._settings: dict[tuple[str, str], Any] = {}

        def merge_environment_settings(  # type: ignore[override]
            self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> Any:
            """`requests`' own answer, kept per scheme and host when nothing is asked."""
            if proxies or stream is not None or verify is not None or cert is not None:
                return super().merge_environment_settings(url, proxies, stream, verify, cert)
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            key = (parts.scheme, parts.netloc)
            settings: Any = self._settings.get(key)
            if settings is None:
                settings = super().merge_environment_settings(url, {}, None, None, None)
                self._settings[key] = settings
            return {**settings, "proxies": dict(settings["proxies"])}

    return Session


class _Deadline:
    """One public call's time budget: real time spent, plus waits counted as asked.

    A faked sleep (tests) or one that returns early still uses up the budget, so
    a slow API cannot stretch a call beyond it however the clock is faked.
    """

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self.stopped = False  # a sibling page failed: the others stop retrying

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def wait(self, sleep: Callable[[float], None], seconds: float) -> None:
        started = time.monotonic()
        sleep(seconds)
        unslept = seconds - (time.monotonic() - started)
        if unslept > 0:
            with self._lock:
                self._end -= unslept


class Cloud66Client:
    """The Cloud 66 API on one keep-alive session (its own, or one shared)."""

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_API_URL,
        *,
        retry: RetryPolicy | None = None,
        page_workers: int = MAX_PAGE_WORKERS,
        timeout: tuple[float, float] = TIMEOUT,
        observer: Observer | None = None,
        session: requests.Session | None = None,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Raises `BadApiUrl` when `base_url` is not an http(s) URL.

        With `session` (make it with `new_session()`, which keeps no cookies), the
        client borrows it: the Authorization header goes with each request, not on
        the session, and `close()` leaves it open. `now` dates a throttle's reset.
        """
        self.base_url = _checked_base_url(base_url, token)
        self.origin = _origin(self.base_url)
        self.retry = retry or RetryPolicy()
        self.page_workers = max(1, page_workers)
        self.timeout = timeout
        self.observer = observer
        self.now = now
        self.rate_remaining: int | None = None
        self.rate_limit: int | None = None
        # The change (deploy or cancel, and the stack's uid) last sent: from then on it
        # may reach Cloud 66 whatever happens here, a Ctrl-C included (terminal.py says so).
        self.change_sent: tuple[str, str] | None = None
        self._token = token
        self._auth = _bearer(token)
        self._throttled: Throttled | None = None
        self._lock = threading.Lock()
        self._owns_session = session is None
        self._session = session if session is not None else new_session(self.page_workers + 2)

    def close(self) -> None:
        """Close the keep-alive connections (of a session this client made)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Cloud66Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ---------------------------------------------------------

    def stacks(self) -> list[Stack]:
        """Every stack the token can see (every page)."""
        stacks = [Stack.from_api(item, self.origin) for item in self._list("/stacks")]
        if self.observer is not None:
            self.observer.stacks(stacks)
        return stacks

    def stack(self, uid: str) -> Stack:
        """One stack (one GET)."""
        return Stack.from_api(self._object(f"/stacks/{_segment(uid)}"), self.origin)

    def deployment(self, uid: str, deployment_id: str) -> Deployment:
        """One deployment of a stack (one GET: the API docs' "Deployment")."""
        path = f"/stacks/{_segment(uid)}/deployments/{_segment(deployment_id)}"
        return Deployment.from_api(self._object(path))

    def services(self, uid: str) -> list[Service]:
        """The services of a stack (empty for stacks without containers)."""
        items = self._list(f"/stacks/{_segment(uid)}/services")
        services = [Service.from_api(item) for item in items]
        if self.observer is not None:
            self.observer.services(uid, services)
        return services

    def deployments(self, uid: str) -> list[Deployment]:
        """Every deployment of a stack, every page, in the API's order (undocumented)."""
        items = self._list(f"/stacks/{_segment(uid)}/deployments")
        deployments = [Deployment.from_api(item) for item in items]
        if self.observer is not None:
            self.observer.deployments(uid, deployments)
        return deployments

    def deployments_of(self, uids: Iterable[str]) -> dict[str, list[Deployment]]:
        """Every deployment of each stack, the stacks read at once (at most `page_workers`).

        One request per stack, plus one per further page of its deployments.
        """
        from concurrent.futures import ThreadPoolExecutor

        wanted = list(dict.fromkeys(uids))
        if len(wanted) <= 1:
            return {uid: self.deployments(uid) for uid in wanted}
        with ThreadPoolExecutor(
            max_workers=min(self.page_workers, len(wanted)), thread_name_prefix="igor-stack"
        ) as pool:
            return dict(zip(wanted, pool.map(self.deployments, wanted), strict=True))

    def actions(self, uid: str, *, user_reference: str | None = None) -> list[AsyncAction]:
        """Every async action of a stack, every page, in the API's order (undocumented).

        With `user_reference`, Cloud 66 filters on it (`?user_reference=`).
        """
        params = {} if user_reference is None else {"user_reference": user_reference}
        items = self._list(f"/stacks/{_segment(uid)}/actions", params)
        return [AsyncAction.from_api(item) for item in items]

    def action(self, uid: str, action_id: str) -> AsyncAction:
        """One async action (for following a deployment)."""
        path = f"/stacks/{_segment(uid)}/actions/{_segment(action_id)}"
        return AsyncAction.from_api(self._object(path))

    def accounts(self) -> list[Account]:
        """The accounts the token belongs to (needs the `users` scope)."""
        return [Account.from_api(item) for item in self._list("/accounts")]

    def deploy(
        self,
        uid: str,
        *,
        services: Iterable[str] = (),
        user_reference: str = "",
        git_ref: str = "",
        deployment_profile: str = "",
    ) -> DeployResponse:
        """Ask Cloud 66 to deploy a stack; optional fields are sent only when given.

        Sent once, never retried: a missing or unreadable answer is `OutcomeUnknown`.
        """
        data: dict[str, str] = {}
        # Unconfirmed: the Go client posts `services` as a JSON array; SPEC section 4
        # documents the string "svc:tag,svc2", which igor sends.
        joined = ",".join(s for s in services if s)
        if joined:
            data["services"] = joined
        if user_reference:
            data["user_reference"] = user_reference[:255]
        if git_ref:
            data["git_ref"] = git_ref
        if deployment_profile:
            data["deployment_profile"] = deployment_profile
        self.change_sent = ("deploy", uid)
        body = self._send_once("POST", f"/stacks/{_segment(uid)}/deployments", data, "deploy")
        response = _answer_of(body, "deploy")
        return DeployResponse(
            ok=bool(response.get("ok", True)),
            message=clean_text(response.get("message")),
            queued=bool(response.get("queued")),
            async_action_id=clean_text(response.get("async_action_id")),
        )

    def cancel(self, uid: str, deployment_id: str) -> str:
        """Cancel a live deployment; returns Cloud 66's message. Never retried."""
        path = f"/stacks/{_segment(uid)}/deployments/{_segment(deployment_id)}"
        self.change_sent = ("cancel", uid)
        body = self._send_once("DELETE", path, None, "cancel")
        response = _answer_of(body, "cancel")
        return clean_text(response.get("message")) or "Cancelling deployment"

    # -- lists -----------------------------------------------------------

    def _object(self, path: str) -> Mapping[str, Any]:
        deadline = _Deadline(self.retry.total_seconds)
        response = self._get(path, {}, deadline).get("response")
        if not isinstance(response, Mapping):
            raise ApiError(f"Cloud 66 answered {path} with something igor cannot read.")
        return response

    def _list(self, path: str, params: Mapping[str, str] | None = None) -> list[Mapping[str, Any]]:
        """Every entry of a paged list: page 1, then the rest at once (or by `next`)."""
        deadline = _Deadline(self.retry.total_seconds)
        query = dict(params or {})
        first = self._get(path, query, deadline)
        items = _items(first, path)
        pages = _page_count(first, len(items), path)
        if pages is None:
            items.extend(self._walk(path, query, first, deadline))
        elif pages > 1:
            items.extend(self._pages(path, query, pages, deadline))
        return items

    def _walk(
        self, path: str, query: dict[str, str], body: Mapping[str, Any], deadline: _Deadline
    ) -> list[Mapping[str, Any]]:
        """No count to plan with: follow `next` one page at a time, forward only."""
        items: list[Mapping[str, Any]] = []
        current = 1
        while (following := _next_page(body)) is not None and following > current:
            if following > MAX_PAGES:
                raise _too_many_pages(path, f"a page number of {following:,}")
            body = self._get(path, {**query, "page": str(following)}, deadline)
            items.extend(_items(body, path))
            current = following
        return items

    def _pages(
        self, path: str, query: dict[str, str], pages: int, deadline: _Deadline
    ) -> list[Mapping[str, Any]]:
        """Pages 2..`pages`, fetched concurrently, returned in page order."""
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        def page(number: int) -> list[Mapping[str, Any]]:
            return _items(self._get(path, {**query, "page": str(number)}, deadline), path)

        if pages == 2:
            return page(2)
        pool = ThreadPoolExecutor(
            max_workers=min(self.page_workers, pages - 1), thread_name_prefix="igor-page"
        )
        try:
            futures = [pool.submit(page, number) for number in range(2, pages + 1)]
            wait(futures, return_when=FIRST_EXCEPTION)
            items: list[Mapping[str, Any]] = []
            for future in futures:
                items.extend(future.result())
            return items
        except BaseException:
            deadline.stopped = True  # the pages still running give up at their next retry
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- transport -------------------------------------------------------

    def _get(self, path: str, params: dict[str, str], deadline: _Deadline) -> Mapping[str, Any]:
        """One GET, retried with backoff on network errors, 429 and 5xx, within the deadline."""
        import requests

        failure: Cloud66Error | None = None
        attempt = 0
        while True:
            attempt += 1
            self._refuse_if_throttled()
            timeout = self._timeout(deadline)
            if timeout is None:
                raise failure or _unreachable(self.origin, "timed out")
            retry_after: float | None = None
            try:
                response = self._session.get(
                    self.base_url + path,
                    params=params or None,
                    headers=_HEADERS,
                    auth=self._auth,
                    timeout=timeout,
                )
            except requests.RequestException as exc:
                failure = _unreachable(self.origin, _reason(exc))
            else:
                self._note_rate(response)
                if response.status_code < 400:
                    return _json_body(response, path)
                failure = self._failure(response, "GET", path)
                if response.status_code not in _RETRYABLE or _is_final(failure):
                    raise failure
                retry_after = _retry_after(response)
            delay = self.retry.delay(attempt, retry_after)
            if attempt > self.retry.attempts or deadline.stopped or delay >= deadline.remaining():
                raise failure
            deadline.wait(self.retry.sleep, delay)

    def _send_once(
        self, method: str, path: str, data: dict[str, str] | None, what: str
    ) -> Mapping[str, Any]:
        """POST or DELETE, exactly once. Unknown outcomes are said to be unknown."""
        import requests

        self._refuse_if_throttled()
        timeout = self._timeout(_Deadline(self.retry.total_seconds))
        if timeout is None:
            raise _unreachable(self.origin, "timed out")
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=data,
                headers=_HEADERS,
                auth=self._auth,
                timeout=timeout,
                allow_redirects=False,  # a redirected POST would arrive as a GET
            )
        except (
            requests.ConnectTimeout,
            requests.exceptions.SSLError,  # the handshake failed: nothing was sent
            requests.exceptions.ProxyError,
            requests.exceptions.InvalidURL,
        ) as exc:
            raise _unreachable(self.origin, _reason(exc)) from None
        except requests.RequestException as exc:
            # A connection that was never made carried nothing; anything later
            # (a reset, a dropped or cut answer, a read timeout) may have.
            if _never_sent(exc):
                raise _unreachable(self.origin, _reason(exc)) from None
            raise _unknown(what, _reason(exc)) from None
        self._note_rate(response)
        status = response.status_code
        if status >= 400:
            failure = self._failure(response, method, path)
            if status >= 500 and not isinstance(failure, Throttled):
                raise _unknown(what, f"Cloud 66 answered HTTP {status}")
            raise failure  # a 4xx (or throttled) is a definite refusal
        if status >= 300:
            raise ApiError(
                f"Cloud 66 answered the {what} with a redirect (HTTP {status}); nothing was done.",
                "Check IGOR_API_URL: it should be the https:// address of the API.",
                status,
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping):
            raise _unknown(what, "its answer could not be read")
        return body

    def _timeout(self, deadline: _Deadline) -> Any:
        """This request's timeouts within what is left of the call (None: nothing left)."""
        from urllib3.util import Timeout

        remaining = deadline.remaining()
        if remaining <= 0 or deadline.stopped:
            return None
        connect, read = self.timeout
        # `total` bounds connect and read together, so one request never overruns the call.
        return Timeout(total=remaining, connect=min(connect, remaining), read=min(read, remaining))

    # -- what the answers say ----------------------------------------------

    def _note_rate(self, response: requests.Response) -> None:
        remaining = _header_int(response, "X-RateLimit-Remaining")
        if remaining is not None:
            self.rate_remaining = remaining
        # Unconfirmed: SPEC names only X-RateLimit-Remaining; the Limit header is read if sent.
        limit = _header_int(response, "X-RateLimit-Limit")
        if limit is not None:
            self.rate_limit = limit

    def _refuse_if_throttled(self) -> None:
        with self._lock:
            throttled = self._throttled
            if throttled is None or throttled.reset_at is None:
                return
            if _aware(self.now()) >= throttled.reset_at:
                self._throttled = None
                return
        raise Throttled(
            throttled.message, throttled.hint, throttled.status, reset_at=throttled.reset_at
        )

    def _failure(self, response: requests.Response, method: str, path: str) -> Cloud66Error:
        """The typed error for an HTTP error answer; a final throttle is remembered."""
        failure = _error_for(response, method, path, self._token, self.now)
        if isinstance(failure, Throttled) and failure.reset_at is not None:
            with self._lock:
                self._throttled = failure
        return failure


def _is_final(failure: Cloud66Error) -> bool:
    return isinstance(failure, Throttled) and failure.reset_at is not None


def _bearer(token: str) -> Callable[[requests.PreparedRequest], requests.PreparedRequest]:
    """Sets the token on each request: a shared session never holds it, and a .netrc
    (which requests consults only when a request has no auth) cannot replace it."""
    header = f"Bearer {token}"

    def authorise(request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = header
        return request

    return authorise


def _checked_base_url(base_url: str, token: str) -> str:
    from igor_cli.config import checked_url

    return checked_url(base_url, "IGOR_API_URL", DEFAULT_API_URL, "Cloud 66", secret=token)


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL: where igor talks to, without path or credentials."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{parts.port}" if parts.port else "")


def _segment(value: str) -> str:
    """A value as one path segment (a stray `/` or `?` cannot change the route)."""
    from urllib.parse import quote

    return quote(str(value), safe="")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _header_int(response: requests.Response, name: str) -> int | None:
    return _int(response.headers.get(name))


def _items(body: Mapping[str, Any], path: str) -> list[Mapping[str, Any]]:
    items = body.get("response")
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ApiError(f"Cloud 66 answered {path} with something that is not a list.")
    return list(items)


def _pagination(body: Mapping[str, Any]) -> Mapping[str, Any]:
    pagination = body.get("pagination")
    return pagination if isinstance(pagination, Mapping) else {}


def _page_count(body: Mapping[str, Any], on_first_page: int, path: str) -> int | None:
    """How many pages the first answer implies; None when it gives no count at all.

    `pagination.pages` when present (never more than the count implies), else the
    count (top level, or in `pagination`) over `per_page`. Without `per_page`, a
    full first page shows the page size; else the API's default of 30.
    """
    pagination = _pagination(body)
    pages = _int(pagination.get("pages"))
    if pages is not None and pages < 1:
        pages = None
    total = _int(body.get("count"))
    if total is None:
        total = _int(pagination.get("count"))
    if total is not None:
        per_page = _int(pagination.get("per_page")) or 0
        if per_page < 1:
            per_page = on_first_page if 0 < on_first_page < total else PER_PAGE
        implied = max(1, -(-total // per_page))
        pages = implied if pages is None else min(pages, implied)
        if pages > MAX_PAGES:
            raise _too_many_pages(path, f"{total:,} entries, {implied:,} pages")
    if pages is not None and pages > MAX_PAGES:
        raise _too_many_pages(path, f"{pages:,} pages")
    return pages


def _next_page(body: Mapping[str, Any]) -> int | None:
    return _int(_pagination(body).get("next"))


def _too_many_pages(path: str, said: str) -> ApiError:
    return ApiError(
        f"Cloud 66 answered {path} with {said}; igor reads at most {MAX_PAGES:,} pages, "
        "so it stopped instead of making that many requests.",
        "If IGOR_API_URL is set, check that it points at the Cloud 66 API.",
    )


def _answer_of(body: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    response = body.get("response", body)
    if not isinstance(response, Mapping):
        raise _unknown(what, "its answer could not be read")
    return response


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


def _api_words(body: Mapping[str, Any], token: str) -> str:
    """What the error body says: `details`, else `error_description`, else `error`
    (the Go client's order), cleaned, without the token, at most 300 characters."""
    for key in ("details", "error_description", "error"):
        value = body.get(key)
        if isinstance(value, list):
            value = "; ".join(clean_text(v) for v in value if v)
        text = " ".join(clean_text(value).split())
        if text:
            if token and len(token) >= 4:
                text = text.replace(token, "[token]")
            return text if len(text) <= 300 else text[:299] + "…"
    return ""


def _error_for(
    response: requests.Response,
    method: str,
    path: str,
    token: str,
    now: Callable[[], datetime],
) -> Cloud66Error:
    """The typed error for an HTTP error answer; carries the API's words, never a token."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, Mapping):
        body = {}
    code = clean_text(body.get("error")).strip().casefold()
    words = _api_words(body, token)
    said = f": {words.rstrip('.')}" if words else ""
    if status == 401:
        return Unauthorized(
            f"Cloud 66 rejected the token{said}.",
            "The token may be wrong, expired or revoked.",
            status,
        )
    if status == 402:
        return TrialExpired(
            f"The Cloud 66 account's trial has expired{said}.",
            "Choose a plan for the account in the Cloud 66 dashboard; "
            "igor works again once the account is active.",
            status,
        )
    if status == 403:
        scope = _scope_for(method, path)
        return Forbidden(
            f"The Cloud 66 token lacks the {scope} scope, {_SCOPE_USES[scope]}{said}.",
            SCOPES_HINT,
            status,
            scope=scope,
        )
    if status == 404:
        return NotFound(f"Cloud 66 could not find it{said}.", status=status)
    if status == 409:
        return Conflict(f"Cloud 66 refused: {words.rstrip('.') or 'conflict'}.", status=status)
    if status == 503 and code == "throttled":
        # Unconfirmed: that the hourly window resets on the clock hour (SPEC: "until
        # the next hourly interval").
        current = _aware(now()).astimezone(UTC)
        reset_at = current.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        at = reset_at.strftime("%H:%M UTC")
        return Throttled(
            f"Cloud 66 is throttling this token: its limit of {HOURLY_LIMIT:,} requests "
            f"an hour resets at {at}.",
            f"igor will not call Cloud 66 with this token again before {at}.",
            status,
            reset_at=reset_at,
        )
    if status == 429:
        return Throttled(
            f"Cloud 66 is throttling requests (HTTP 429){said}.",
            "Wait a minute and try again.",
            status,
        )
    if status >= 500:
        return ApiError(f"Cloud 66 answered HTTP {status}{said}.", "Try again later.", status)
    return ApiError(f"Cloud 66 refused the request (HTTP {status}){said}.", status=status)


def _scope_for(method: str, path: str) -> str:
    """The token scope a call needs (SPEC section 4)."""
    if path == "/accounts" or path.startswith("/accounts/"):
        return "users"
    if method in ("POST", "DELETE") and "/deployments" in path:
        return "redeploy"
    return "public"


def _unreachable(origin: str, reason: str) -> Unreachable:
    return Unreachable(
        f"Cloud 66 could not be reached at {origin} ({reason}).",
        "Check your network, or IGOR_API_URL if you set it.",
    )


def _unknown(what: str, reason: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        f"The {what} request was sent but no answer came back: it may or may not have "
        f"happened ({reason}).",
        f"Check with `igor list -s <stack>` or the Cloud 66 dashboard whether the {what} "
        "went through.",
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """An exception and everything it wraps (requests wraps urllib3 wraps socket errors)."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(found) < 32:
        current = todo.pop(0)
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        todo += [current.__cause__, current.__context__]
        for inner in (*current.args, getattr(current, "reason", None)):
            if isinstance(inner, BaseException):
                todo.append(inner)
            reason = getattr(inner, "reason", None)
            if isinstance(reason, BaseException):
                todo.append(reason)
    return found


def network_reason(exc: BaseException) -> str:
    """Why a request failed, in words: for other clients of the network (Slack's)."""
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    """Why a request failed, in words (never a Python class name)."""
    import socket
    import ssl

    import requests

    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(e, kinds) for e in chain)

    if has(requests.Timeout, TimeoutError) or names & {"ReadTimeoutError", "ConnectTimeoutError"}:
        return "timed out"
    if has(socket.gaierror) or "NameResolutionError" in names:
        return "name not resolved"
    if has(ConnectionRefusedError):
        return "connection refused"
    if has(ssl.SSLError, requests.exceptions.SSLError) or "SSLError" in names:
        return "TLS error"
    if has(requests.exceptions.ProxyError) or "ProxyError" in names:
        return "proxy error"
    if has(requests.TooManyRedirects):
        return "too many redirects"
    if has(ConnectionResetError):
        return "connection reset"
    if names & {"RemoteDisconnected", "IncompleteRead", "ProtocolError", "ChunkedEncodingError"}:
        return "connection closed before a full answer"
    if has(ConnectionError, requests.ConnectionError):
        return "connection failed"
    return "network error"


def _never_sent(exc: BaseException) -> bool:
    """The connection was never made (refused, name not resolved), so nothing was sent."""
    import socket

    from urllib3.exceptions import NewConnectionError

    never = (ConnectionRefusedError, socket.gaierror, NewConnectionError)
    return any(isinstance(e, never) for e in _chain(exc))
