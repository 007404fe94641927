"""`igor serve`: the Slack bot over Socket Mode (no public URL needed).

Every envelope is acked at once (Slack allows 3 s); the work runs on igor's own
worker threads, through the same bridge as `igor chat`, and the answer goes in
the message's thread. The bot keeps no state another replica would need:
deduplication here only saves work, idempotency of deploys comes from the
`user_reference` stored at Cloud 66.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from igor_cli.actions import FollowPolicy, Origin
from igor_cli.chat.bridge import Bridge, BridgeReply
from igor_cli.chat.follow import Followers, Watcher
from igor_cli.chat.guard import BadConfirmation, Rules, RulesError, Signer, rules_from_config
from igor_cli.chat.text import strip_address
from igor_cli.config import Environment
from igor_cli.credentials import TokenKind, find_token, require_token
from igor_cli.errors import ExitCode, IgorError, NotRegistered, Unreachable
from igor_cli.render.slack import (
    CONFIRM_ACTION,
    DECLINE_ACTION,
    SlackMessage,
    has_buttons,
    message,
)

if TYPE_CHECKING:
    from slack_sdk.socket_mode.builtin import SocketModeClient
    from slack_sdk.socket_mode.client import BaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.web import WebClient

log = logging.getLogger("igor.serve")
audit = logging.getLogger("igor.audit")

WORKERS = 8
SHUTDOWN_SECONDS = 8.0  # SIGTERM to exit stays under 10 s
START_ATTEMPTS = 4


class SlackTokenRejected(NotRegistered):
    """Slack refused one of igor's tokens at start-up."""


@dataclass(frozen=True)
class Identity:
    """Who the bot is in the workspace (from `auth.test`)."""

    user_id: str
    name: str
    team: str


class RecentKeys:
    """A bounded set of recently seen keys: the same post delivered twice runs once."""

    def __init__(self, size: int = 2000) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        """True the first time a key is seen."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


def _web_client(token: str, env: Environment) -> WebClient:
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
    from slack_sdk.web import WebClient

    client = WebClient(token=token, base_url=env.slack_api_url(), timeout=15)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    return client


def _slack_call(kind: TokenKind, env: Environment, call: Callable[[], Any]) -> Any:
    """One Slack Web API call with a token; network failures retried, rejection final."""
    from slack_sdk.errors import SlackApiError

    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return call()
        except SlackApiError as error:
            reason = str(error.response.get("error", "rejected"))
            raise SlackTokenRejected(
                f"Slack rejected the {kind.description} ({reason}).",
                f"Check {kind.variable}, or run `igor register --slack`.",
            ) from None
        except OSError as error:  # URLError, timeouts, refused connections
            if attempt == START_ATTEMPTS:
                raise Unreachable(
                    f"Slack could not be reached ({type(error).__name__}).",
                    "Check the network, or IGOR_SLACK_API_URL if you set it.",
                ) from None
            log.warning("Slack unreachable (%s); retrying", type(error).__name__)
            env.sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def check_bot_token(token: str, env: Environment) -> tuple[WebClient, Identity]:
    """`auth.test` with the bot token: who the bot is, in which workspace."""
    web = _web_client(token, env)
    me = _slack_call(TokenKind.SLACK_BOT, env, web.auth_test)
    return web, Identity(str(me["user_id"]), str(me.get("user") or "igor"), str(me.get("team")))


def check_app_token(token: str, env: Environment) -> None:
    """`apps.connections.open` with the app token (the connection is not kept)."""
    web = _web_client(token, env)
    _slack_call(TokenKind.SLACK_APP, env, lambda: web.apps_connections_open(app_token=token))


def check_slack_tokens(env: Environment) -> tuple[WebClient, Identity]:
    """Check both Slack tokens; return a client with the bot token, and the bot's identity."""
    bot_token = require_token(TokenKind.SLACK_BOT, env)
    app_token = require_token(TokenKind.SLACK_APP, env)
    web, identity = check_bot_token(bot_token, env)
    check_app_token(app_token, env)
    return web, identity


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


class SlackBot:
    """Socket Mode events -> the bridge -> replies in thread, with follow-ups."""

    def __init__(
        self,
        env: Environment,
        web: WebClient,
        identity: Identity,
        rules: Rules | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.env = env
        self.web = web
        self.identity = identity
        self.bridge = Bridge(env, rules=rules, signer=signer)
        self.followers = Followers(
            self.bridge.connect,
            FollowPolicy(
                interval=max(env.follow_interval, 1.0) * 2,
                timeout=2 * 3600,
                clock=env.monotonic,
                sleep=env.sleep,
            ),
        )
        self.seen = RecentKeys()
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="igor-cmd")
        self._busy = 0
        self._busy_changed = threading.Condition()
        self._stopping = threading.Event()
        self.socket: SocketModeClient | None = None

    # -- Socket Mode -------------------------------------------------------

    def connect(self) -> None:
        """Open the Socket Mode connection (slack_sdk reconnects by itself)."""
        from slack_sdk.socket_mode.builtin import SocketModeClient

        app_token = require_token(TokenKind.SLACK_APP, self.env)
        self.socket = SocketModeClient(
            app_token=app_token,
            web_client=self.web,
            auto_reconnect_enabled=True,
            logger=logging.getLogger("igor.socket"),
            ping_interval=self.env.slack_ping_interval,
        )
        self.socket.socket_mode_request_listeners.append(self._on_request)
        self.socket.connect()
        log.info("connected to Slack as %s in %s", self.identity.name, self.identity.team)

    def close(self, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Stop taking commands, let running ones finish (bounded), close the socket."""
        self._stopping.set()
        if self.socket is not None:
            self.socket.socket_mode_request_listeners.clear()
        deadline = time.monotonic() + timeout / 2
        with self._busy_changed:
            while self._busy and time.monotonic() < deadline:
                self._busy_changed.wait(deadline - time.monotonic())
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.socket is not None:
            closer = threading.Thread(target=self.socket.close, daemon=True)
            closer.start()
            closer.join(timeout / 2)
        log.info("disconnected from Slack")

    def _on_request(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        # Ack first, always: Slack retries anything not acked within 3 s.
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if self._stopping.is_set():
            return
        payload = request.payload or {}
        if request.type == "events_api":
            self._submit(self.handle_event, payload.get("event") or {})
        elif request.type == "slash_commands":
            self._submit(self.handle_slash_command, payload)
        elif request.type == "interactive" and payload.get("type") == "block_actions":
            self._submit(self.handle_click, payload)

    def _submit(self, work: Callable[[dict[str, Any]], None], payload: dict[str, Any]) -> None:
        with self._busy_changed:
            self._busy += 1

        def run() -> None:
            try:
                work(payload)
            except Exception:  # the bot must outlive any one command
                log.exception("a command failed unexpectedly")
            finally:
                with self._busy_changed:
                    self._busy -= 1
                    self._busy_changed.notify_all()

        self._pool.submit(run)

    # -- events ------------------------------------------------------------

    def command_text(self, event: dict[str, Any]) -> str | None:
        """The command in an event, or None when igor should stay silent."""
        if event.get("subtype") or event.get("bot_id") or event.get("bot_profile"):
            return None  # edits, deletions, joins, and every bot (igor included)
        user = event.get("user")
        if not user or user == self.identity.user_id:
            return None
        text = str(event.get("text") or "")
        stripped, addressed = strip_address(text, self.identity.user_id, self.identity.name)
        kind = event.get("type")
        if kind == "app_mention":
            return stripped
        if kind == "message":
            if event.get("channel_type") == "im":
                return stripped
            return stripped if addressed else None
        return None

    def handle_event(self, event: dict[str, Any]) -> None:
        """Answer one `app_mention` or `message` event in its thread."""
        text = self.command_text(event)
        if text is None:
            return
        channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
        # A mention arrives as app_mention and as message, and Slack retries:
        # one post is one (channel, ts).
        if not self.seen.first_time(f"{channel}:{ts}"):
            return
        thread = str(event.get("thread_ts") or ts)
        user = str(event["user"])
        origin = Origin("slack", user, f"{channel}-{ts}")
        reply = self.bridge.handle(text, origin, channel, thread)
        self._log(reply, user, channel)
        if reply.ephemeral:
            self._ephemeral(channel, user, reply.message, thread)
            return
        posted = self._post(channel, thread, reply.message)
        if reply.pending is not None:
            self._expire_later(channel, thread, posted, reply)
        self._follow(reply, user, channel, thread, posted)

    def handle_slash_command(self, payload: dict[str, Any]) -> None:
        """Answer `/igor ...` through its response URL, visible to the channel."""
        from slack_sdk.webhook import WebhookClient

        user = str(payload.get("user_id", ""))
        channel = str(payload.get("channel_id", ""))
        trigger = str(payload.get("trigger_id") or time.time())
        hook = WebhookClient(str(payload.get("response_url", "")), timeout=15)
        origin = Origin("slack", user, trigger)
        reply = self.bridge.handle(str(payload.get("text", "")), origin, channel)

        def respond(message: SlackMessage) -> None:
            hook.send(text=message.text, blocks=message.blocks, response_type="in_channel")

        self._log(reply, user, channel)
        if reply.ephemeral:
            hook.send(
                text=reply.message.text, blocks=reply.message.blocks, response_type="ephemeral"
            )
            return
        respond(reply.message)
        outcome = reply.deployment_to_follow
        if outcome is not None:
            self.followers.watch(
                outcome.stack, outcome.action_id, Watcher(user, respond, place=f"slash:{trigger}")
            )

    # -- confirmations -------------------------------------------------------

    def handle_click(self, payload: dict[str, Any]) -> None:
        """A confirmation button: only the requester's click counts, and only in time."""
        actions = payload.get("actions") or [{}]
        action = actions[0]
        if action.get("action_id") not in (CONFIRM_ACTION, DECLINE_ACTION):
            return
        user = str((payload.get("user") or {}).get("id", ""))
        container = payload.get("container") or {}
        channel = str(container.get("channel_id") or (payload.get("channel") or {}).get("id", ""))
        message_ts = str(container.get("message_ts") or (payload.get("message") or {}).get("ts"))
        response_url = str(payload.get("response_url") or "")
        log_line: dict[str, Any] = {"user": user, "channel": channel, "command": "confirmation"}
        try:
            assert self.bridge.signer is not None
            pending = self.bridge.signer.verify(
                str(action.get("value", "")), self.env.clock().timestamp()
            )
        except (BadConfirmation, AssertionError) as error:
            expired = isinstance(error, BadConfirmation) and "expired" in error.message
            if expired:
                self._decide(
                    channel,
                    message_ts,
                    response_url,
                    ":hourglass: This request expired; nothing was done. Ask again if need be.",
                )
            else:
                self._ephemeral(
                    channel, user, "That button is not one igor made; nothing was done."
                )
            audit.info(json.dumps({**log_line, "outcome": "expired" if expired else "refused"}))
            return
        if user != pending.user:
            self._ephemeral(channel, user, f"Only <@{pending.user}> can confirm this.")
            audit.info(
                json.dumps({**log_line, "outcome": "refused", "reason": "not the requester"})
            )
            return
        when = self.env.clock().strftime("%H:%M UTC")
        if action.get("action_id") == DECLINE_ACTION:
            self._decide(
                channel,
                message_ts,
                response_url,
                f":heavy_multiplication_x: Declined by <@{user}> at {when}; nothing was done.",
            )
            audit.info(
                json.dumps(
                    {
                        **log_line,
                        "outcome": "declined",
                        "confirmation": "declined",
                        "confirmed_by": user,
                    }
                )
            )
            return
        self._decide(
            channel,
            message_ts,
            response_url,
            f":white_check_mark: Confirmed by <@{user}> at {when}.",
        )
        reply = self.bridge.confirmed(pending)
        reply.fields["confirmation"] = "confirmed"
        self._log(reply, user, channel)
        if reply.ephemeral:
            self._ephemeral(channel, user, reply.message, pending.thread)
            return
        posted = self._post(channel, pending.thread or message_ts, reply.message)
        self._follow(reply, user, channel, pending.thread or message_ts, posted)

    def _decide(self, channel: str, ts: str, response_url: str, text: str) -> None:
        """Replace the question (and its buttons) with what became of it."""
        decided = message(text)
        if response_url:
            from slack_sdk.webhook import WebhookClient

            WebhookClient(response_url, timeout=15).send(
                text=decided.text, blocks=decided.blocks, replace_original=True
            )
        else:
            self.web.chat_update(channel=channel, ts=ts, text=decided.text, blocks=decided.blocks)

    def _ephemeral(
        self, channel: str, user: str, said: SlackMessage | str, thread: str = ""
    ) -> None:
        """A reply only `user` sees (a plain string is made into a message)."""
        said = message(said) if isinstance(said, str) else said
        self.web.chat_postEphemeral(
            channel=channel, user=user, text=said.text, blocks=said.blocks,
            thread_ts=thread or None,
        )  # fmt: skip

    def _expire_later(self, channel: str, thread: str, posted: str, reply: BridgeReply) -> None:
        """When the time is up and nobody answered, say so on the question itself."""
        from slack_sdk.errors import SlackApiError

        assert reply.pending is not None
        delay = max(0.0, reply.pending.expires - self.env.clock().timestamp())

        def expire() -> None:
            if self._stopping.is_set():
                return
            # Another replica may have handled the click: look at the message
            # as Slack shows it now, and only edit a question still waiting.
            try:
                found = self.web.conversations_replies(
                    channel=channel,
                    ts=thread,
                    oldest=posted,
                    latest=posted,
                    inclusive=True,
                    limit=1,
                )
                messages: list[dict[str, Any]] = found.get("messages", [])
                current = next((m for m in messages if m.get("ts") == posted), None)
            except (SlackApiError, OSError):
                log.warning("could not read the confirmation back from Slack", exc_info=True)
                return
            if current is not None and has_buttons(current):
                self._decide(
                    channel,
                    posted,
                    "",
                    ":hourglass: Nobody confirmed within the time; nothing was done.",
                )
                line = {
                    "user": reply.pending.user if reply.pending else "",
                    "channel": channel,
                    "command": reply.command,
                    "outcome": "expired",
                    "confirmation": "expired",
                }
                audit.info(json.dumps(line))

        timer = threading.Timer(delay, expire)
        timer.daemon = True
        timer.start()

    def _post(self, channel: str, thread: str, message: SlackMessage) -> str:
        answer = self.web.chat_postMessage(
            channel=channel, thread_ts=thread, text=message.text, blocks=message.blocks
        )
        return str(answer.get("ts", ""))

    def _follow(
        self, reply: BridgeReply, user: str, channel: str, thread: str, posted: str
    ) -> None:
        outcome = reply.deployment_to_follow
        if outcome is None:
            return

        def post(message: SlackMessage) -> None:
            self._post(channel, thread, message)

        def update(message: SlackMessage) -> None:
            self.web.chat_update(
                channel=channel, ts=posted, text=message.text, blocks=message.blocks
            )

        watcher = Watcher(user, post, update if posted else None, place=f"{channel}:{thread}")
        self.followers.watch(outcome.stack, outcome.action_id, watcher)

    def _log(self, reply: BridgeReply, user: str, channel: str) -> None:
        line = {"event": "command", "user": user, "channel": channel, "command": reply.command}
        line.update(reply.fields)
        line["outcome"] = reply.status
        audit.info(json.dumps(line, sort_keys=False))


def configure_logging() -> None:
    """One line per event on stderr; slack_sdk's own chatter only from warnings up."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("igor")
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("igor.socket").setLevel(logging.WARNING)
    logging.getLogger("slack_sdk").setLevel(logging.WARNING)


def audit_file(env: Environment) -> logging.Handler | None:
    """`[audit] path`: the command lines appended to a JSON-lines file, flushed per line."""
    section = env.config().get("audit", {})
    if not isinstance(section, dict) or not section.get("path"):
        return None
    from pathlib import Path

    path = Path(str(section["path"])).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    except OSError as error:
        raise RulesError(f"Cannot open the audit file {path}: {error.strerror}.") from None
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.INFO)
    audit.setLevel(logging.INFO)  # the file gets every command whatever stderr shows
    audit.addHandler(handler)
    return handler


def serve(env: Environment, stop: threading.Event | None = None) -> int:
    """Run the bot until `stop` is set (or SIGTERM/SIGINT); return the exit code."""
    stop = stop or threading.Event()
    restore = _stop_on_signals(stop)
    bot: SlackBot | None = None
    audit_handler: logging.Handler | None = None
    try:
        # A broken config stops the bot here: never start with no rules by accident.
        rules, signer = load_guard(env)
        audit_handler = audit_file(env)
        web, identity = check_slack_tokens(env)
        bot = SlackBot(env, web, identity, rules, signer)
        for line in rules.summary():
            log.info("rules: %s", line)
        bot.connect()
        stop.wait()
    except IgorError as error:
        log.error("%s %s", error.message, error.hint)
        return int(error.exit_code)
    finally:
        if bot is not None:
            bot.close()
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
