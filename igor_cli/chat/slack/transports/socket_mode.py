"""`igor serve`'s default transport: Socket Mode (no public URL needed).

The transport acks every envelope at once (Slack allows 3 s), on the
connection's receive thread (socket_reader.py), and hands the payload to the bot.
slack_sdk's built-in client makes each connection; igor decides when to make
the next one. After a connection that worked it reconnects at once; while
`apps.connections.open` fails or Slack turns connections away
(`too_many_websockets`: an app may hold 10) it waits 2, 4, 8 ... up to 60 s
between tries (the method is rated Tier 1, about once a minute), saying so once
a try. A connection gone quiet (python-slack-sdk issue 1701; slack_sdk notices
only after four ping intervals) is replaced after two. An app token Slack
stops accepting ends the bot with exit code 4, and Socket Mode turned off
(`link_disabled`) with exit code 2, instead of a reconnect loop. Its peer, HTTP
mode (events_http.py), calls the same `SlackBot.dispatch`; both are
started and stopped by lifecycle.py.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from igor_cli.chat.slack.tokens import AUTH_ERRORS, rejected
from igor_cli.config import Environment
from igor_cli.credentials import TokenKind, require_token
from igor_cli.errors import IgorError, UsageProblem

if TYPE_CHECKING:
    from slack_sdk.socket_mode.builtin import SocketModeClient
    from slack_sdk.socket_mode.builtin.connection import Connection

    from igor_cli.chat.slack.web import SlackWeb

log = logging.getLogger("igor.serve")

STALE_PINGS = 2  # reconnect after this many ping intervals without a pong
STALE_FLOOR = 3.0  # but never sooner: a loaded machine may answer a ping late
RETRY_FIRST = 2.0  # seconds before the second try after a failed one; doubled each time
RETRY_MOST = 60.0  # apps.connections.open is Tier 1: about once a minute


class SocketModeDisabled(UsageProblem):
    """Slack turned Socket Mode off for the app: nothing reaches igor until it is on again."""


@dataclass(eq=False)
class Link:
    """One Socket Mode connection, as igor judges it when it ends."""

    session: Connection
    greeted: bool = False  # Slack's `hello` came: the connection worked
    refused: str = ""  # Slack turned it away (the `disconnect` reason)
    over: bool = False  # it ended, or must be replaced


class Backoff:
    """How long to wait before the next try: nothing after a connection that worked, then
    RETRY_FIRST doubling up to RETRY_MOST while tries keep failing, each wait drawn between
    half of it and all of it, so that replicas cut off together do not all try again at
    the same moments (apps.connections.open allows about one a minute)."""

    def __init__(self, first: float = RETRY_FIRST, most: float = RETRY_MOST) -> None:
        self.first = first
        self.most = most
        self.failures = 0

    def failed(self, at_least: float = 0.0) -> float:
        """One more failed try; the seconds to wait before the next (Slack's Retry-After
        when it asks for longer)."""
        self.failures += 1
        longest = min(self.most, self.first * 2.0 ** (self.failures - 1))
        return max(at_least, random.uniform(longest / 2, longest))

    def worked(self) -> None:
        """A connection worked: the next one is tried at once."""
        self.failures = 0


class SocketModeTransport:
    """Socket Mode envelopes in, acks out, payloads to `dispatch`; reconnected by igor.

    `pause(seconds)` waits between tries and says whether igor is stopping
    (default: `stop.wait`, so a stop never waits out a backoff).
    """

    def __init__(
        self,
        env: Environment,
        web: SlackWeb,
        dispatch: Callable[[str, dict[str, Any]], object],
        stop: threading.Event,
        *,
        pause: Callable[[float], bool] | None = None,
    ) -> None:
        self.env = env
        self.web = web
        self.dispatch = dispatch
        self.stop = stop
        self.pause = pause or stop.wait
        self.failure: IgorError | None = None
        self.reconnects = 0
        self.listening = True
        self.socket: SocketModeClient | None = None
        self.backoff = Backoff()
        self._link: Link | None = None
        self._links = threading.Lock()
        self._wake = threading.Event()  # the connection ended, or slack_sdk saw it dead
        self._connecting = threading.Lock()  # no connection is opened once close() began
        self._reconnector: threading.Thread | None = None
        # Told each `hello`'s num_connections, and how many of them were this bot's own.
        self.hello: Callable[[int, int], None] = lambda connections, own: None
        self._own_open = 0

    def connect(self) -> bool:
        """Open the connection (trying again, backing off, until it opens or igor stops)
        and keep it open from then on; whether it opened."""
        from slack_sdk.socket_mode.builtin import SocketModeClient

        from igor_cli.chat.slack.transports.socket_reader import SessionReader, unsupported

        transport = self

        class Socket(SocketModeClient):
            def __init__(self, **options: Any) -> None:
                self.closing = threading.Event()  # before slack_sdk starts its threads
                super().__init__(**options)

            def process_messages(self) -> None:
                """igor's reader takes every message itself and never fills slack_sdk's
                queue: the queue's thread waits for the close, instead of waking every
                second to look into an empty queue."""
                self.closing.wait()

            def close(self) -> None:
                self.closing.set()
                super().close()

            def connect(self) -> None:
                """A reconnect opens the new connection before it closes the old one."""
                transport._own_open = 1 if self.is_connected() else 0
                super().connect()

            def issue_new_wss_url(self) -> str:
                """`apps.connections.open`, once: igor's reconnector decides when to ask
                again (slack_sdk's own sleeps on a 429, and cannot be stopped)."""
                return str(transport.web.call("apps.connections.open", token=self.app_token)["url"])

            def connect_to_new_endpoint(self, force: bool = False) -> None:
                """slack_sdk's monitor saw the connection dead: igor's reconnector replaces
                it (backing off), not slack_sdk at once and again every ping interval."""
                transport._wake.set()

            def _on_error(self, error: Exception) -> None:
                """A connection that could not open: igor says so once, with the next try."""
                log.debug("Socket Mode: %s", type(error).__name__)

            def _run_current_session(self) -> None:
                """igor's reader on slack_sdk's receive thread (socket_reader.py says why)."""
                session, state = self.current_session, self.current_session_state
                if session is None or not session.is_active():
                    return
                missing = unsupported(self, session)
                if missing:  # a slack_sdk igor does not know: stop, saying so
                    transport.fail(unfit_slack_sdk(missing))
                    return
                state.terminated = False
                link = transport.link_for(session)
                reader = SessionReader(
                    session, state, listening=lambda: transport.listening,
                    take=transport.dispatch, other=lambda message: transport.heard(link, message),
                    closed=lambda code, reason: transport.ended(link),
                )  # fmt: skip
                try:
                    reader.run()
                except Exception as error:  # as slack_sdk's own: the runner must not die
                    log.warning("reading from Slack stopped (%s)", type(error).__name__)
                    state.terminated = True  # no new reader mid-frame: a new connection
                    session.disconnect()
                    transport.ended(link)

        self.socket = Socket(
            app_token=require_token(TokenKind.SLACK_APP, self.env),
            auto_reconnect_enabled=True,
            logger=logging.getLogger("igor.socket"),
            ping_interval=self.env.slack_ping_interval,
        )
        connected = self._replace(None)
        self._reconnector = threading.Thread(target=self._run, name="igor-reconnect", daemon=True)
        self._reconnector.start()
        return connected

    def fail(self, error: IgorError) -> None:
        """End the bot with this error (e.g. Slack no longer accepts the app token)."""
        if self.failure is None:
            self.failure = error
        if self.socket is not None:
            self.socket.auto_reconnect_enabled = False
        self.stop.set()

    def stop_listening(self) -> None:
        """Take no more envelopes, nor ack them (the socket stays open while the bot winds
        down; Slack delivers what is not acked again, to another replica)."""
        self.listening = False

    def close(self, timeout: float = 1.5) -> None:
        """Close the connection (bounded: a hung socket must not hold the exit)."""
        if self.socket is None:
            return
        held = self._connecting.acquire(timeout=timeout)  # a try under way opens nothing after
        try:
            closer = threading.Thread(target=self.socket.close, daemon=True)
            closer.start()
            closer.join(timeout)
        finally:
            if held:
                self._connecting.release()

    def link_for(self, session: Connection) -> Link:
        """The link of this session: the current one (a new session makes a new link)."""
        with self._links:
            if self._link is None or self._link.session is not session:
                self._link = Link(session)
            return self._link

    def heard(self, link: Link, message: dict[str, Any]) -> None:
        """A message from Slack that is not an envelope: `hello`, or `disconnect`."""
        kind, reason = message.get("type"), str(message.get("reason") or "")
        if kind == "hello":
            link.greeted = True
            connections = message.get("num_connections")
            if isinstance(connections, int) and not isinstance(connections, bool):
                self.hello(connections, self._own_open)  # replicas.py: what it means
        elif kind == "disconnect" and reason == "link_disabled":
            self.fail(socket_mode_disabled())
        elif kind == "disconnect":
            if reason == "too_many_websockets":  # _judge says so, with the wait
                link.refused = reason
            else:  # refresh_requested, warning: a new connection at once
                log.info("Slack asked for a new connection (%s)", reason or "no reason given")
            self.ended(link)

    def ended(self, link: Link) -> None:
        """This connection is over (closed, broken, or Slack asked for a new one)."""
        link.over = True
        if link is self._link:
            self._wake.set()

    def _run(self) -> None:
        """Replace the connection when it ends, or when it has been quiet for two ping
        intervals (slack_sdk would wait four)."""
        interval = self.env.slack_ping_interval
        while not self.stop.is_set():
            self._wake.wait(interval / 2)
            self._wake.clear()
            link = self._link
            if self.stop.is_set():
                return
            if link is not None and not link.over:
                if link.session.is_active() and not self._quiet(link):
                    continue
                link.over = True
            self._replace(link)

    def _quiet(self, link: Link) -> bool:
        """Whether this connection has gone two ping intervals without a pong."""
        session = link.session
        heard = session.last_ping_pong_time or session._first_ping_time
        if heard is None:
            return False
        quiet = time.time() - heard
        if quiet <= max(STALE_PINGS * self.env.slack_ping_interval, STALE_FLOOR):
            return False
        log.warning("no answer from Slack for %.0f s; reconnecting", quiet)
        self.reconnects += 1
        return True

    def _replace(self, old: Link | None) -> bool:
        """Connect anew: at once after a connection that worked, else after a backoff; try
        until a connection opens (True) or igor stops (False)."""
        delay = self._judge(old)
        while not self.stop.is_set():
            if delay:
                self._drop(old)  # it counts against the app's 10 while igor waits
                if self.pause(delay):
                    return False
            problem, at_least = self._attempt()
            if problem is None:
                if self.backoff.failures:
                    log.info("connected to Slack again")
                return True
            if self.stop.is_set():
                return False
            delay = self.backoff.failed(at_least)
            log.warning("could not connect to Slack (%s); trying again in %.0f s", problem, delay)
        return False

    def _judge(self, old: Link | None) -> float:
        """Seconds to wait before replacing `old`: none after a connection that worked."""
        if old is None:
            return 0.0
        if old.greeted and not old.refused:
            self.backoff.worked()
            return 0.0
        delay = self.backoff.failed()
        if old.refused == "too_many_websockets":
            why = (
                "Slack turned the connection away: the app has 10 open already "
                "(too_many_websockets: other replicas, or connections not yet closed)"
            )
        else:
            why = f"Slack ended the connection before its hello ({old.refused or 'closed'})"
        log.warning("%s; trying again in %.0f s", why, delay)
        return delay

    def _drop(self, link: Link | None) -> None:
        """Close this connection now (it is over, and no reader needs it)."""
        if link is None or self.socket is None:
            return
        if self.socket.current_session is link.session:
            self.socket.current_session_state.terminated = True
        link.session.disconnect()

    def _attempt(self) -> tuple[str | None, float]:
        """One try: a URL from `apps.connections.open`, then the WebSocket. What went
        wrong (None: connected) and how long Slack asked to wait (a 429's Retry-After)."""
        from slack_sdk.errors import SlackApiError

        from igor_cli.chat.slack.web import retry_after

        socket = self.socket
        assert socket is not None  # connect() made it
        try:
            url = socket.issue_new_wss_url()
        except SlackApiError as error:
            answer = error.response
            reason = str(answer.get("error") or f"HTTP {answer.status_code}")
            if reason in AUTH_ERRORS:
                self.fail(rejected(TokenKind.SLACK_APP, reason))
            wait = retry_after(answer.headers) if answer.status_code == 429 else 0.0
            return f"apps.connections.open answered {reason}", wait
        except OSError as error:  # URLError, timeouts, refused connections
            from igor_cli.cloud66.refusals import network_reason

            return f"Slack could not be reached ({network_reason(error)})", 0.0
        with self._connecting:
            if self.stop.is_set():
                return "stopping", 0.0
            socket.wss_uri = url
            socket.connect()
            session = socket.current_session
            if session is None or not session.is_active():
                return "the WebSocket handshake failed", 0.0
            self.link_for(session)
        return None, 0.0


def socket_mode_disabled() -> SocketModeDisabled:
    """Slack's `link_disabled`: Socket Mode was turned off in the app's settings."""
    return SocketModeDisabled(
        "Slack turned Socket Mode off for this app (link_disabled): it sends igor nothing "
        "while it is off.",
        "Turn it back on at api.slack.com/apps (your app, then Socket Mode), and start "
        "igor serve again.",
    )


def unfit_slack_sdk(missing: list[str]) -> IgorError:
    """The installed slack_sdk lacks what igor's Socket Mode reader builds on."""
    from importlib.metadata import version

    return IgorError(
        f"igor cannot read Socket Mode with slack_sdk {version('slack_sdk')}: it has no "
        f"{', '.join(missing)}.",
        'Install a slack_sdk igor supports: pip install "slack_sdk>=3.27,<4".',
    )
