"""`igor serve`: the bot over Socket Mode (no public URL needed), and its life cycle.

The transport acks every envelope at once (Slack allows 3 s), on the
connection's receive thread (reader.py), and hands the payload to the bot.
slack_sdk's built-in client reconnects by itself, but it can go quiet
(python-slack-sdk issue 1701) and notices a dead socket only after four ping
intervals: a watchdog reconnects after two intervals without a pong,
and an app token that Slack stops accepting ends the bot with exit code 4
instead of a reconnect loop. An HTTP events endpoint would be a second
transport calling the same `SlackBot.dispatch`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from igor_cli.chat.guard import Rules, RulesError, Signer, rules_from_config
from igor_cli.chat.slack.bot import SHUTDOWN_SECONDS, SlackBot
from igor_cli.chat.slack.tokens import AUTH_ERRORS, check_slack_tokens, rejected
from igor_cli.config import Environment
from igor_cli.credentials import TokenKind, find_token, require_token
from igor_cli.errors import ExitCode, IgorError

if TYPE_CHECKING:
    from slack_sdk.socket_mode.builtin import SocketModeClient
    from slack_sdk.web import WebClient

log = logging.getLogger("igor.serve")
audit = logging.getLogger("igor.audit")

STALE_PINGS = 2  # reconnect after this many ping intervals without a pong
STALE_FLOOR = 3.0  # but never sooner: a loaded machine may answer a ping late


def load_guard(env: Environment) -> tuple[Rules, Signer | None]:
    """The rules in the config file, and the signer confirmations need (fail closed)."""
    rules = rules_from_config(env.config(), str(env.config_path()))
    key = find_token(TokenKind.SIGNING_KEY, env)
    if rules.confirm and key is None:
        raise RulesError(
            "Confirmations are configured (slack.confirm) but there is no signing key.",
            "Run `igor register --slack` to create one, or set IGOR_SIGNING_KEY "
            "(the same value on every replica).",
        )
    return rules, Signer(key.value.encode()) if key else None


class SocketModeTransport:
    """Socket Mode envelopes in, acks out, payloads to `dispatch`; kept alive by a watchdog."""

    def __init__(
        self,
        env: Environment,
        web: WebClient,
        dispatch: Callable[[str, dict[str, Any]], None],
        stop: threading.Event,
    ) -> None:
        self.env = env
        self.web = web
        self.dispatch = dispatch
        self.stop = stop
        self.failure: IgorError | None = None
        self.reconnects = 0
        self.listening = True
        self.socket: SocketModeClient | None = None
        self._watchdog: threading.Thread | None = None

    def connect(self) -> None:
        """Open the connection and start watching it."""
        from slack_sdk.errors import SlackApiError
        from slack_sdk.socket_mode.builtin import SocketModeClient

        from igor_cli.chat.slack.reader import SessionReader, unsupported

        transport = self

        class Socket(SocketModeClient):
            def issue_new_wss_url(self) -> str:
                """Slack's `apps.connections.open`; a rejected app token stops the bot."""
                try:
                    return str(super().issue_new_wss_url())
                except SlackApiError as error:
                    reason = str(error.response.get("error", ""))
                    if reason in AUTH_ERRORS:
                        transport.fail(rejected(TokenKind.SLACK_APP, reason))
                    raise

            def _run_current_session(self) -> None:
                """igor's reader on slack_sdk's receive thread (reader.py says why)."""
                session, state = self.current_session, self.current_session_state
                if session is None or not session.is_active():
                    return
                missing = unsupported(self, session)
                if missing:  # a slack_sdk igor does not know: stop, saying so
                    transport.fail(unfit_slack_sdk(missing))
                    return
                state.terminated = False
                reader = SessionReader(
                    session, state, listening=lambda: transport.listening,
                    take=transport.dispatch, other=self._on_message, closed=self._on_close,
                )  # fmt: skip
                try:
                    reader.run()
                except Exception as error:  # as slack_sdk's own: the runner must not die
                    # (a reconnect from here can fail, e.g. on a revoked app token)
                    log.warning("reading from Slack stopped (%s)", type(error).__name__)

        self.socket = Socket(
            app_token=require_token(TokenKind.SLACK_APP, self.env),
            web_client=self.web,
            auto_reconnect_enabled=True,
            logger=logging.getLogger("igor.socket"),
            ping_interval=self.env.slack_ping_interval,
        )
        self.socket.connect()
        self._watchdog = threading.Thread(target=self._watch, name="igor-watchdog", daemon=True)
        self._watchdog.start()

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
        closer = threading.Thread(target=self.socket.close, daemon=True)
        closer.start()
        closer.join(timeout)

    def _watch(self) -> None:
        """Reconnect when the connection has gone quiet for two ping intervals."""
        interval = self.env.slack_ping_interval
        while not self.stop.wait(interval / 2):
            socket = self.socket
            session = socket.current_session if socket is not None else None
            if socket is None or session is None or not socket.is_connected():
                continue  # slack_sdk is reconnecting (or the app token was refused)
            heard = session.last_ping_pong_time or session._first_ping_time
            if heard is None:
                continue
            quiet = time.time() - heard
            if quiet > max(STALE_PINGS * interval, STALE_FLOOR):
                log.warning("no answer from Slack for %.0f s; reconnecting", quiet)
                self.reconnects += 1
                try:
                    socket.connect_to_new_endpoint(force=True)
                except Exception as error:  # slack_sdk retries on its own as well
                    log.warning("reconnecting failed (%s)", type(error).__name__)


def unfit_slack_sdk(missing: list[str]) -> IgorError:
    """The installed slack_sdk lacks what igor's Socket Mode reader builds on."""
    from importlib.metadata import version

    return IgorError(
        f"igor cannot read Socket Mode with slack_sdk {version('slack_sdk')}: it has no "
        f"{', '.join(missing)}.",
        'Install a slack_sdk igor supports: pip install "slack_sdk>=3.27,<4".',
    )


def configure_logging() -> None:
    """One JSON object a line on stderr; slack_sdk's own chatter only from warnings up."""
    from igor_cli.chat.slack.log_lines import StderrLines

    handler = StderrLines()
    for name in ("igor", "slack_sdk"):  # slack_sdk's warnings pass the same token scrubber
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.propagate = False
    logging.getLogger("igor").setLevel(logging.INFO)
    logging.getLogger("igor.socket").setLevel(logging.WARNING)
    logging.getLogger("slack_sdk").setLevel(logging.WARNING)
    # Every Web API failure reaches igor as an exception, and igor says it once
    # (with the URL and the reason); slack_sdk's ERROR line for it would repeat it.
    logging.getLogger("slack_sdk.web.base_client").setLevel(logging.CRITICAL)


def _scrub_logs(env: Environment, extra: logging.Handler | None) -> Callable[[], None]:
    """Give every handler that writes the bot's log lines the token scrubber; returns its undo."""
    from igor_cli.credentials import TokenScrubber

    scrubber = TokenScrubber(env)
    handlers = {*logging.getLogger("igor").handlers, *logging.getLogger("slack_sdk").handlers}
    handlers.update(logging.getLogger().handlers)
    if extra is not None:
        handlers.add(extra)
    for handler in handlers:
        handler.addFilter(scrubber)

    def undo() -> None:
        for handler in handlers:
            handler.removeFilter(scrubber)

    return undo


def audit_file(env: Environment) -> logging.Handler | None:
    """`[audit] path`: the command lines appended to a JSON-lines file, flushed per line."""
    section = env.config().get("audit", {})
    if not isinstance(section, dict) or not section.get("path"):
        return None
    from pathlib import Path

    path = Path(str(section["path"])).expanduser()
    from igor_cli.chat.slack.log_lines import AuditFile, JsonLines

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = AuditFile(str(path))  # a line it cannot write is counted and said once
    except OSError as error:
        raise RulesError(f"Cannot open the audit file {path}: {error.strerror}.") from None

    handler.setFormatter(JsonLines())
    handler.setLevel(logging.INFO)
    if section.get("required"):  # no change without its audit line: held back while lost
        env.audit_problem = lambda: handler.failing
    audit.setLevel(logging.INFO)  # the file gets every command whatever stderr shows
    audit.addHandler(handler)
    return handler


def serve(
    env: Environment,
    stop: threading.Event | None = None,
    report: Callable[[IgorError], None] | None = None,
) -> int:
    """Run the bot until `stop` is set (or SIGTERM/SIGINT); return the exit code.

    The error that ends the bot goes to `report` (the terminal's `Error:`
    lines) and, once the bot had connected, to the log as well; without
    `report`, to the log only.
    """
    stop = stop or threading.Event()
    connected = False
    restore = _stop_on_signals(stop)
    bot: SlackBot | None = None
    transport: SocketModeTransport | None = None
    audit_handler: logging.Handler | None = None
    unscrub: Callable[[], None] | None = None
    try:
        # A broken config stops the bot here: never start with no rules by accident.
        rules, signer = load_guard(env)
        from igor_cli.freeze import freezes_from_config

        freezes_from_config(env.config(), str(env.config_path()))  # a broken freeze stops it too
        audit_handler = audit_file(env)
        unscrub = _scrub_logs(env, audit_handler)
        web, identity = check_slack_tokens(env)
        # The team's store, or a local file that exists: a bot that cannot use it stops here.
        env.say_state_news = True  # its outages and resets are said in the bot's log
        store = env.state_or_none()
        if store is not None:
            store.items("lock:")
            log.info("state store: %s", store.url)
        bot = SlackBot(env, web, identity, rules, signer)
        for line in rules.summary():
            log.info("rules: %s", line)
        transport = SocketModeTransport(env, web, bot.dispatch, stop)
        transport.connect()
        log.info("connected to Slack as %s in %s", identity.name, identity.team)
        connected = True
        stop.wait()
        if transport.failure is not None:
            raise transport.failure
    except IgorError as error:
        if report is None or connected:
            log.error("%s", " ".join(filter(None, (error.message, error.hint))))
        if report is not None:
            report(error)
        return int(error.exit_code)
    finally:
        if transport is not None:
            transport.stop_listening()
        if bot is not None:
            bot.close(SHUTDOWN_SECONDS)
        if transport is not None:
            transport.close()
            log.info("disconnected from Slack")
        if unscrub is not None:
            unscrub()
        if audit_handler is not None:
            audit.removeHandler(audit_handler)
            audit_handler.close()
        restore()
    return int(ExitCode.OK)


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    for sig in previous:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
