"""`igor serve`'s life cycle, the same for both transports (Socket Mode and HTTP).

Start-up checks everything a request will need before one is taken: the config
(rules and freezes: a broken one stops the bot, never "no rules by accident"),
the audit file, the Slack tokens the transport needs, the state store; then the
bot is made, and only then the transport opens. Shutdown goes the other way: the
transport stops taking requests (Slack delivers what it did not ack again,
elsewhere), the bot finishes what it took (bounded: SIGTERM to exit under 10 s),
then the transport closes. `wsgi_app` starts the same bot for a server of the
user's own (`igor_cli.wsgi`).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from igor_cli.chat.guard import Rules, RulesError, Signer, bot_rules
from igor_cli.chat.live_rules import LiveRules
from igor_cli.chat.slack.bot import SHUTDOWN_SECONDS, SlackBot
from igor_cli.chat.slack.tokens import HTTP_KINDS, SOCKET_MODE_KINDS, Identity, check_slack_tokens
from igor_cli.chat.slack.transports.socket_mode import SocketModeTransport
from igor_cli.config import Environment
from igor_cli.credentials import TokenKind, signing_key
from igor_cli.errors import ExitCode, IgorError

if TYPE_CHECKING:
    from igor_cli.chat.slack.transports.events_http import Address, EventsEndpoint, HttpTransport
    from igor_cli.chat.slack.web import SlackWeb

log = logging.getLogger("igor.serve")
audit = logging.getLogger("igor.audit")


def load_guard(env: Environment) -> tuple[Rules, Signer | None]:
    """The rules in the config file, and the signer confirmations need (fail closed)."""
    key = signing_key(env)  # a key too short to trust stops the bot (WeakSigningKey)
    signer = Signer(key.value.encode()) if key else None
    return bot_rules(env.config(), str(env.config_path()), signer), signer


@dataclass
class Started:
    """A bot ready for its transport, and what to undo once it has stopped."""

    bot: SlackBot
    web: SlackWeb
    identity: Identity
    undo: list[Callable[[], None]] = field(default_factory=list)

    def finish(self) -> None:
        """Undo what start-up did (log filters, the audit file, Slack's connections), last
        first."""
        while self.undo:
            self.undo.pop()()


def start_bot(env: Environment, kinds: tuple[TokenKind, ...] = SOCKET_MODE_KINDS) -> Started:
    """Everything `igor serve` checks before it takes a request, then the bot; IgorError
    (with nothing left behind) when something is not right. `kinds`: the Slack secrets
    the transport needs."""
    undo: list[Callable[[], None]] = []
    try:
        # A broken config stops the bot here: never start with no rules by accident.
        rules, signer = load_guard(env)
        from igor_cli.freeze import freezes_from_config

        freezes_from_config(env.config(), str(env.config_path()))  # a broken freeze stops it too
        handler = audit_file(env)
        if handler is not None:
            undo.append(lambda: _close_audit(handler))
        undo.append(_scrub_logs(env, handler))
        web, identity = check_slack_tokens(env, kinds)
        undo.append(web.close)  # its kept-alive connections, once the bot has stopped
        _check_state(env)
        _load_ahead()
        live = LiveRules(env, rules, lambda config, path: bot_rules(config, path, signer))
        bot = SlackBot(env, web, identity, live, signer)
    except BaseException:
        for step in reversed(undo):
            step()
        raise
    for line in rules.summary():
        log.info("rules: %s", line)
    return Started(bot, web, identity, undo)


def configure_logging() -> None:
    """One JSON object a line on stderr; slack_sdk's and waitress's own chatter only from
    warnings up."""
    from igor_cli.chat.slack.log_lines import StderrLines

    handler = StderrLines()
    # slack_sdk's and waitress's warnings pass the same token scrubber.
    for name in ("igor", "slack_sdk", "waitress"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
        logger.propagate = False
    logging.getLogger("igor").setLevel(logging.INFO)
    logging.getLogger("igor.socket").setLevel(logging.WARNING)
    logging.getLogger("slack_sdk").setLevel(logging.WARNING)
    logging.getLogger("waitress").setLevel(logging.WARNING)


def _scrub_logs(env: Environment, extra: logging.Handler | None) -> Callable[[], None]:
    """Give every handler that writes the bot's log lines the token scrubber; returns its undo."""
    from igor_cli.credentials import TokenScrubber

    scrubber = TokenScrubber(env)
    handlers = {*logging.getLogger("igor").handlers, *logging.getLogger("slack_sdk").handlers}
    handlers.update(logging.getLogger("waitress").handlers)
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

    from igor_cli.private_files import private_file

    path = Path(str(section["path"])).expanduser()
    from igor_cli.chat.slack.log_lines import AuditFile, JsonLines

    try:
        private_file(path)  # what was typed in chat, and by whom: its owner's alone
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


def _close_audit(handler: logging.Handler) -> None:
    audit.removeHandler(handler)
    handler.close()


def serve(
    env: Environment,
    stop: threading.Event | None = None,
    report: Callable[[IgorError], None] | None = None,
    *,
    http: str | None = None,
) -> int:
    """Run the bot until `stop` is set (or SIGTERM/SIGINT); return the exit code.

    Over Socket Mode, or with `http` (`[HOST:]PORT`) as Slack's request URL's
    server. The error that ends the bot goes to `report` (the terminal's
    `Error:` lines) and, once the bot had started, to the log as well; without
    `report`, to the log only.
    """
    stop = stop or threading.Event()
    connected = False
    restore = _stop_on_signals(stop)
    started: Started | None = None
    transport: SocketModeTransport | HttpTransport | None = None
    try:
        address = None
        if http is not None:
            from igor_cli.chat.slack.transports.events_http import listen_address

            address = listen_address(http)  # a usage error before anything is asked of Slack
        started = start_bot(env, SOCKET_MODE_KINDS if address is None else HTTP_KINDS)
        identity = started.identity
        if address is None:
            transport = _socket_mode(env, started, stop)
            if transport.connect():
                log.info("connected to Slack as %s in %s", identity.name, identity.team)
                connected = True
        else:
            transport = _http(env, started, stop, address)
            transport.listen()
            log.info("listening for Slack at %s as %s in %s", transport.url, identity.name,
                     identity.team)  # fmt: skip
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
        if started is not None:
            started.bot.close(SHUTDOWN_SECONDS)
        if transport is not None:
            transport.close()
            log.info("disconnected from Slack" if http is None else "stopped listening for Slack")
        if started is not None:
            started.finish()
        restore()
    return int(ExitCode.OK)


def _socket_mode(env: Environment, started: Started, stop: threading.Event) -> SocketModeTransport:
    transport = SocketModeTransport(env, started.web, started.bot.taker("socket_mode"), stop)
    transport.hello = started.bot.hello
    return transport


def _http(
    env: Environment, started: Started, stop: threading.Event, address: Address
) -> HttpTransport:
    from igor_cli.chat.slack.transports.events_http import HttpTransport
    from igor_cli.state import shared_url

    if not shared_url(env.state_url()):  # Slack does not say how many replicas it reaches
        log.info("state store is local to this machine: run one igor serve --http only; "
                 "replicas behind a load balancer share IGOR_STATE_URL (Redis)")  # fmt: skip
    return HttpTransport(env, endpoint_for(env, started.bot), address, stop)


def endpoint_for(env: Environment, bot: SlackBot) -> EventsEndpoint:
    """The HTTP endpoint that hands the bot what Slack sends, signed with the app's secret."""
    from igor_cli.chat.slack.transports.events_http import EventsEndpoint, SigningSecret

    return EventsEndpoint(
        SigningSecret(env), bot.taker("http"), health=lambda: bot_health(env, bot),
        clock=lambda: env.clock().timestamp(),
    )  # fmt: skip


def bot_health(env: Environment, bot: SlackBot) -> str:
    """Why the bot cannot work now ("" when it can): `GET /healthz` answers 503 with it."""
    if bot.stopping.is_set():
        return "igor is stopping"
    try:
        store = env.state_or_none()
    except IgorError as error:
        return f"the state store cannot be used: {error.message}"
    down = getattr(store, "down", None)  # a watched store knows, without asking it again
    return f"the state store cannot be used: {down.message}" if down is not None else ""


class ServeFailed(RuntimeError):
    """The bot could not start under a server of the user's own (the message says why)."""


def wsgi_app(env: Environment) -> EventsEndpoint:
    """The bot of `igor serve --http`, started the same way, as a WSGI application for a
    server of the user's own. The server owns the process's signals; the bot stops (bounded)
    when the process exits. ServeFailed, after the log line, when it cannot start."""
    import atexit

    configure_logging()
    try:
        started = start_bot(env, HTTP_KINDS)
    except IgorError as error:
        said = " ".join(filter(None, (error.message, error.hint)))
        log.error("%s", said)
        raise ServeFailed(said) from None
    endpoint = endpoint_for(env, started.bot)
    log.info("serving Slack's requests at %s as %s in %s", endpoint.path, started.identity.name,
             started.identity.team)  # fmt: skip

    def stop() -> None:
        endpoint.stop_taking()
        started.bot.close(SHUTDOWN_SECONDS)
        started.finish()

    atexit.register(stop)
    return endpoint


def _load_ahead() -> None:
    """Import now what the first commands would import while a burst's acks are due (a
    burst holds the interpreter meanwhile): every command converted (cli.py), the state
    store's records, the channel defaults."""
    import importlib
    import pkgutil

    import igor_cli.state
    import igor_cli.targets
    from igor_cli import cli

    cli.load_ahead()
    for module in pkgutil.iter_modules(igor_cli.state.__path__, "igor_cli.state."):
        importlib.import_module(module.name)


def _check_state(env: Environment) -> None:
    """The team's store, or a local file that exists: a bot that cannot use it stops here."""
    env.say_state_news = True  # its outages and resets are said in the bot's log
    store = env.state_or_none()
    if store is not None:
        store.items("lock:")
        log.info("state store: %s", store.url)


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
