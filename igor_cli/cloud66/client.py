"""The Cloud 66 API v3 client (the models it returns are `models.py`).

One keep-alive session per client (or one shared by several clients whose
tokens differ; `igor_cli/http.py`), every page of a list (the first, then the
rest concurrently), retries with backoff for idempotent GETs only, and a total
deadline on every public call. A deploy POST or a cancel DELETE is never
retried: when its answer is missing or unreadable, `OutcomeUnknown` says so. A
`throttled` answer is final until the next hour. The HTTP module is imported
inside the client so that importing it stays cheap.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from igor_cli import __version__
from igor_cli.cloud66 import READS_AT_ONCE, READS_ONLY
from igor_cli.cloud66.models import (
    Account,
    AsyncAction,
    Deployment,
    DeployResponse,
    Service,
    Stack,
    a_page,
    newness,
    what_runs,
)
from igor_cli.cloud66.paging import READ_PAGES, Newest, SharedReads, every_entry, newest
from igor_cli.cloud66.refusals import (
    aware,
    clean_text,
    error_for,
    header_int,
    unknown,
    unreachable,
)
from igor_cli.config import DEFAULT_API_URL
from igor_cli.errors import (
    ApiError,
    Cloud66Error,
    Throttled,
    UnreadableAnswer,
)

if TYPE_CHECKING:
    from igor_cli.http import Response, Session

T = TypeVar("T")
USER_AGENT = f"igor/{__version__} (+https://github.com/cloud66-oss/igor)"


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


_RETRYABLE = frozenset({429, 500, 502, 503, 504})
TIMEOUT = (5.0, 30.0)  # connect, read: each request's own limits, within the call's deadline
# A list's pages fetched at once: every page but the first, up to this many. Cloud 66
# documents no limit on requests in flight, only 3,000 an hour (the client stops at what
# is left of them); 50,000 stacks are 1,667 pages, and each round in flight costs one
# request's latency more than fetching them all at once.
MAX_PAGES_IN_FLIGHT = 256
_HEADERS = {"User-Agent": USER_AGENT, "Accept": "application/json"}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def new_session(pool_size: int = MAX_PAGES_IN_FLIGHT + 2) -> Session:
    """A keep-alive session whose pool keeps every concurrent page fetch's connection
    (they are opened only when that many are in flight).

    Several clients with different tokens may share it (`Cloud66Client(session=...)`):
    the token travels with each request, never on the session, and no cookie is kept.
    """
    from igor_cli.http import Session

    return Session(pool_size)


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
        pages_in_flight: int = MAX_PAGES_IN_FLIGHT,
        timeout: tuple[float, float] = TIMEOUT,
        observer: Observer | None = None,
        session: Session | None = None,
        now: Callable[[], datetime] = _utc_now,
        shared: SharedReads | None = None,
    ) -> None:
        """Raises `BadApiUrl` when `base_url` is not an http(s) URL.

        With `session` (make it with `new_session()`, which keeps no cookies), the
        client borrows it: the Authorization header goes with each request, not on
        the session, and `close()` leaves it open. `now` dates a throttle's reset.
        `shared`: the run's reads of stacks' histories and the list orders learned.
        """
        self.base_url = _checked_base_url(base_url, token)
        self.origin = _origin(self.base_url)
        self.retry = retry or RetryPolicy()
        self.pages_in_flight = max(1, pages_in_flight)
        self.timeout = timeout
        self.observer = observer
        self.shared = shared
        self.now = now
        self.rate_remaining: int | None = None
        self.rate_limit: int | None = None
        # The change (deploy or cancel, and the stack's uid) last sent: from then on it
        # may reach Cloud 66 whatever happens here, a Ctrl-C included (terminal.py says so).
        self.change_sent: tuple[str, str] | None = None
        self._token = token
        # The token goes with each request, never on a shared session.
        self._headers = {**_HEADERS, "Authorization": f"Bearer {token}"}
        self._throttled: Throttled | None = None
        self._lock = threading.Lock()
        self._owns_session = session is None
        self._session = (
            session
            if session is not None
            else new_session(max(READS_AT_ONCE, self.pages_in_flight) + 2)
        )

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
        origin = self.origin
        stacks = self._list("/stacks", parse=lambda item: Stack.from_api(item, origin))
        if self.observer is not None:
            self.observer.stacks(stacks)
        return stacks

    def stack(self, uid: str) -> Stack:
        """One stack (one GET)."""
        return Stack.from_api(self._object(f"/stacks/{_segment(uid)}"), self.origin)

    def services(self, uid: str) -> list[Service]:
        """The services of a stack (empty for stacks without containers)."""
        services = self._list(f"/stacks/{_segment(uid)}/services", parse=Service.from_api)
        if self.observer is not None:
            self.observer.services(uid, services)
        return services

    def newest_deployments(
        self,
        uid: str,
        enough: Callable[[Sequence[Deployment]], bool] | None = None,
        *,
        fresh: bool = False,
        max_pages: int = READ_PAGES,
    ) -> Newest[Deployment]:
        """A stack's newest deployments, newest first, read from the newest end only until
        `enough` of them (by default: the running one and the last one over) are read.

        A read made moments ago by another command of this run serves unless `fresh`.
        """
        return self._newest(
            "deployments", uid, Deployment.from_api, enough or what_runs, fresh, max_pages
        )

    def newest_deployments_of(
        self, uids: Iterable[str], enough: Callable[[Sequence[Deployment]], bool] | None = None
    ) -> dict[str, Newest[Deployment]]:
        """`newest_deployments` of several stacks at once, on igor's reader threads (not a
        pool of the call's own: the bot would start and join threads at every `list`)."""
        from igor_cli.cloud66.at_once import at_once

        wanted = list(dict.fromkeys(uids))
        # Reads another command made moments ago are at hand: only the others go to threads.
        held = {uid: self._recent("deployments", uid, enough or what_runs) for uid in wanted}
        unread = [uid for uid, read in held.items() if read is None]
        reads = [functools.partial(self.newest_deployments, uid, enough) for uid in unread]
        answers = dict(zip(unread, at_once(*reads), strict=True)) if reads else {}
        return {uid: answers[uid] if read is None else read for uid, read in held.items()}

    def deployment(self, uid: str, deployment_id: str) -> Deployment:
        """One deployment (one GET; `NotFound` when the stack has no such deployment)."""
        path = f"/stacks/{_segment(uid)}/deployments/{_segment(deployment_id)}"
        return Deployment.from_api(self._object(path))

    def newest_actions(
        self,
        uid: str,
        enough: Callable[[Sequence[AsyncAction]], bool] | None = None,
        *,
        fresh: bool = False,
        max_pages: int = READ_PAGES,
    ) -> Newest[AsyncAction]:
        """A stack's newest async actions, newest first (by default: one page's worth)."""
        return self._newest(
            "actions", uid, AsyncAction.from_api, enough or a_page, fresh, max_pages
        )

    def actions_at_hand(self, uid: str) -> bool:
        """Whether `newest_actions(uid)` is answered from a read another command of this run
        made moments ago, without asking Cloud 66."""
        return self._recent("actions", uid, a_page) is not None

    def actions_for(self, uid: str, user_reference: str) -> list[AsyncAction]:
        """The stack's actions tagged with this `user_reference`, newest first: Cloud 66
        filters on it (`?user_reference=`); what it answers is checked here too."""
        params = {"user_reference": user_reference}

        def found(actions: Sequence[AsyncAction]) -> bool:
            return any(a.user_reference == user_reference for a in actions)

        read = self._newest("actions", uid, AsyncAction.from_api, found, True, READ_PAGES, params)
        return [a for a in read.items if a.user_reference == user_reference]

    def action(self, uid: str, action_id: str) -> AsyncAction:
        """One async action (for following a deployment)."""
        path = f"/stacks/{_segment(uid)}/actions/{_segment(action_id)}"
        # The 2020 sample wraps it in `response`; the 2024 one does not.
        return AsyncAction.from_api(self._object(path, bare=True))

    def accounts(self) -> list[Account]:
        """The accounts the token belongs to (needs the `users` scope)."""
        return self._list("/accounts", parse=Account.from_api)

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
        # Unconfirmed: the Go client posts `services` as a JSON array; the 2024 docs
        # document the string "svc:tag,svc2", which igor sends.
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
        try:
            body = self._send_once("POST", f"/stacks/{_segment(uid)}/deployments", data, "deploy")
        finally:
            self._forget(uid)
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
        try:
            body = self._send_once("DELETE", path, None, "cancel")
        finally:
            self._forget(uid)
        response = _answer_of(body, "cancel")
        return clean_text(response.get("message")) or "Cancelling deployment"

    def stack_action(
        self, uid: str, command: str, *, service_name: str = "", value: str = ""
    ) -> AsyncAction:
        """Ask Cloud 66 to run a stack action (`POST /stacks/{id}/actions`, scope `redeploy`):
        `restart`, `clear_caches`, `maintenance_mode` (`value` "1" or "0"), or
        `service_restart`/`service_pause`/`service_resume` (`service_name`). Cloud 66
        answers the async action it started (docs: "Run Stack action").

        Sent once, never retried: a missing or unreadable answer is `OutcomeUnknown`.
        Only the documented parameters are sent (no `user_reference`: the docs name none
        for this POST). `value` is sent as the text "1" or "0", as the docs' Ruby sample
        (a form body) sends every parameter.
        """
        data = {"command": command}
        if service_name:
            data["service_name"] = service_name
        if value:
            data["value"] = value
        self.change_sent = (f"run the {command} action on", uid)  # what an interrupt says
        try:
            body = self._send_once("POST", f"/stacks/{_segment(uid)}/actions", data, command)
        finally:
            self._forget(uid)
        return AsyncAction.from_api(_answer_of(body, command))

    # -- lists -----------------------------------------------------------

    def _object(self, path: str, *, bare: bool = False) -> Mapping[str, Any]:
        """One object: `response`, or (`bare`) the body itself when it is the object."""
        deadline = _Deadline(self.retry.total_seconds)
        body = self._get(path, {}, deadline)
        response = body.get("response")
        if bare and "response" not in body and "id" in body:
            response = body
        if not isinstance(response, Mapping):
            raise UnreadableAnswer(f"Cloud 66 answered {path} with something igor cannot read.")
        return response

    def _list(self, path: str, parse: Callable[[Mapping[str, Any]], T]) -> list[T]:
        """Every entry of a paged list, parsed: page 1, then the rest at once (or by `next`)."""
        deadline = _Deadline(self.retry.total_seconds)

        def get(page: int) -> Mapping[str, Any]:
            return self._get(path, {"page": str(page)} if page > 1 else {}, deadline)

        def stop() -> None:
            deadline.stopped = True

        return every_entry(get, path, workers=self._in_flight, stop=stop, parse=parse)

    def _in_flight(self, pages: int) -> int:
        """How many of a list's other pages to fetch at once: all of them, up to
        `pages_in_flight`, and never more than the token has requests left this hour
        (`X-RateLimit-Remaining` of page 1): past that each would only be refused."""
        most = min(pages - 1, self.pages_in_flight)
        remaining = self.rate_remaining
        return max(1, min(most, remaining)) if remaining is not None else most

    def _newest(
        self,
        kind: str,
        uid: str,
        parse: Callable[[Mapping[str, Any]], Any],
        enough: Callable[[Sequence[Any]], bool],
        fresh: bool,
        max_pages: int,
        params: Mapping[str, str] | None = None,
    ) -> Newest[Any]:
        key = f"{kind}:{uid}"
        shared = self.shared if params is None else None  # a filtered read is not the list
        if shared is not None and not fresh:
            seen = self._recent(kind, uid, enough)
            if seen is not None:
                return seen
        mark = shared.mark(uid) if shared is not None else 0
        path = f"/stacks/{_segment(uid)}/{kind}"
        deadline = _Deadline(self.retry.total_seconds)
        query = dict(params or {})

        def get(page: int) -> Mapping[str, Any]:
            return self._get(path, {**query, "page": str(page)} if page > 1 else query, deadline)

        memory = self.shared.orders if self.shared is not None else None
        read: Newest[Any] = newest(
            get, path, parse, newness, enough, memory=memory, key=key, max_pages=max_pages
        )
        if shared is not None:
            shared.keep(key, uid, read, mark)
        return read

    def _recent(
        self, kind: str, uid: str, enough: Callable[[Sequence[Any]], bool]
    ) -> Newest[Any] | None:
        """The stack's newest `kind` as another command of this run read them moments ago
        (`SharedReads`), when that read is `enough`; None when there is none to share."""
        seen = self.shared.recent(f"{kind}:{uid}") if self.shared is not None else None
        return seen if seen is not None and (seen.complete or enough(seen.items)) else None

    def _forget(self, uid: str) -> None:
        if self.shared is not None:
            self.shared.forget(uid)

    # -- transport -------------------------------------------------------

    def _get(self, path: str, params: dict[str, str], deadline: _Deadline) -> Mapping[str, Any]:
        """One GET, retried with backoff on network errors, 429 and 5xx, within the deadline."""
        from igor_cli.http import NetworkError

        url = self.base_url + path + ("?" + _query(params) if params else "")
        failure: Cloud66Error | None = None
        attempt = 0
        while True:
            attempt += 1
            self._refuse_if_throttled()
            timeout = self._timeout(deadline)
            if timeout is None:
                raise failure or unreachable(self.origin, "timed out")
            retry_after: float | None = None
            try:
                response = self._session.request(
                    "GET", url, headers=self._headers, timeout=timeout[:2], total=timeout[2]
                )
            except NetworkError as exc:
                failure = unreachable(self.origin, exc.words)
            else:
                self._note_rate(response)
                if response.status < 400:
                    return _json_body(response, path)
                failure = self._failure(response, "GET", path)
                if response.status not in _RETRYABLE or _is_final(failure):
                    raise failure
                retry_after = _retry_after(response)
            delay = self.retry.delay(attempt, retry_after)
            if attempt > self.retry.attempts or deadline.stopped or delay >= deadline.remaining():
                raise failure
            deadline.wait(self.retry.sleep, delay)

    def _send_once(
        self, method: str, path: str, data: dict[str, str] | None, what: str
    ) -> Mapping[str, Any]:
        """POST or DELETE, exactly once. Unknown outcomes are said to be unknown.

        Refused, with nothing sent, while a request that is no change is performed.
        Sent on a connection of its own (`http.Session`): no kept-alive connection that
        the server closed meanwhile can make a change's fate unknown."""
        import json

        from igor_cli.http import NetworkError

        reading = READS_ONLY.get()
        if reading:
            raise TypeError(f"{reading} is no Change (core/request.py): it may not {what}")
        self._refuse_if_throttled()
        timeout = self._timeout(_Deadline(self.retry.total_seconds))
        if timeout is None:
            raise unreachable(self.origin, "timed out")
        headers = self._headers
        body = None
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
            body = json.dumps(data).encode()
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                headers=headers,
                body=body,
                timeout=timeout[:2],
                total=timeout[2],
            )  # never redirected: a redirected POST would arrive as a GET
        except NetworkError as exc:
            # Nothing left igor before the connection was made (refused, not resolved,
            # the TLS handshake or the proxy failed); anything later (a reset, a dropped
            # or cut answer, a read timeout) may have reached Cloud 66.
            if not exc.sent:
                raise unreachable(self.origin, exc.words) from None
            raise unknown(what, exc.words) from None
        self._note_rate(response)
        status = response.status
        if status >= 400:
            failure = self._failure(response, method, path)
            if status >= 500 and not isinstance(failure, Throttled):
                raise unknown(what, f"Cloud 66 answered HTTP {status}")
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
            raise unknown(what, "its answer could not be read")
        return body

    def _timeout(self, deadline: _Deadline) -> tuple[float, float, float] | None:
        """This request's connect and read timeouts, and what is left of the call (None:
        nothing left): the total bounds them together, so a request never overruns it."""
        remaining = deadline.remaining()
        if remaining <= 0 or deadline.stopped:
            return None
        connect, read = self.timeout
        return min(connect, remaining), min(read, remaining), remaining

    # -- what the answers say ----------------------------------------------

    def _note_rate(self, response: Response) -> None:
        remaining = header_int(response, "X-RateLimit-Remaining")
        if remaining is not None:
            self.rate_remaining = remaining
        # Unconfirmed: SPEC names only X-RateLimit-Remaining; the Limit header is read if sent.
        limit = header_int(response, "X-RateLimit-Limit")
        if limit is not None:
            self.rate_limit = limit

    def _refuse_if_throttled(self) -> None:
        with self._lock:
            throttled = self._throttled
            if throttled is None or throttled.reset_at is None:
                return
            if aware(self.now()) >= throttled.reset_at:
                self._throttled = None
                return
        raise Throttled(
            throttled.message, throttled.hint, throttled.status, reset_at=throttled.reset_at
        )

    def _failure(self, response: Response, method: str, path: str) -> Cloud66Error:
        """The typed error for an HTTP error answer; a final throttle is remembered."""
        failure = error_for(response, method, path, self._token, self.now)
        if isinstance(failure, Throttled) and failure.reset_at is not None:
            with self._lock:
                self._throttled = failure
        return failure


def _is_final(failure: Cloud66Error) -> bool:
    return isinstance(failure, Throttled) and failure.reset_at is not None


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


def _answer_of(body: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    response = body.get("response", body)
    if not isinstance(response, Mapping):
        raise unknown(what, "its answer could not be read")
    return response


def _query(params: Mapping[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def _json_body(response: Response, path: str) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise UnreadableAnswer(
            f"Cloud 66 answered {path} with something that is not JSON (HTTP {response.status}).",
            "If IGOR_API_URL is set, check that it points at the Cloud 66 API.",
            response.status,
        ) from None
    if not isinstance(body, Mapping):
        raise UnreadableAnswer(f"Cloud 66 answered {path} with JSON igor cannot read.")
    return body


def _retry_after(response: Response) -> float | None:
    value = response.header("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
