"""Chat text -> the very same command definitions as the shell -> an outcome.

The bridge never talks to Slack: it takes a line of text and who sent it, and
returns the reply to post (and the outcome, so the adapter can follow a
deployment). `igor serve` and `igor chat` both use it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from igor_cli.actions import (
    CancelRequest,
    DeployOutcome,
    DeployRequest,
    Origin,
    Outcome,
    Request,
    perform,
    resolve_stack,
)
from igor_cli.chat.guard import PendingCommand, Rules, Signer
from igor_cli.chat.text import normalise, split_words
from igor_cli.config import Environment
from igor_cli.errors import IgorError
from igor_cli.render.slack import (
    SlackMessage,
    escape,
    message,
    preformatted,
    render_confirmation,
    render_error,
    render_outcome,
    render_refusal,
)

if TYPE_CHECKING:
    from igor_cli.actions import Client


@dataclass
class BridgeReply:
    """What igor answers to one message, and what the log line says about it."""

    message: SlackMessage
    status: str  # ok, failed, error, usage, help, refused, confirm
    command: str = ""
    request: Request | None = None
    outcome: Outcome | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    ephemeral: bool = False  # only the requester sees it (refusals)
    pending: PendingCommand | None = None  # waiting for the requester's click

    @property
    def deployment_to_follow(self) -> DeployOutcome | None:
        """A deployment igor runs for this stack, to follow in the thread."""
        outcome = self.outcome
        if isinstance(self.request, DeployRequest) and self.request.dry_run:
            return None  # a dry run asked what would happen; it follows nothing
        return outcome if isinstance(outcome, DeployOutcome) and outcome.followable else None


BUTTON_VALUE_LIMIT = 2000  # Slack's limit for a button's value


class _Capture:
    """Stands where the shell session stands: keeps the request instead of running it."""

    def __init__(self) -> None:
        self.request: Request | None = None

    def submit(self, request: Request) -> None:
        self.request = request


def parse(words: list[str]) -> tuple[str, Request]:
    """Parse chat words with the shell's command definitions: (command, request).

    The command is the canonical name (`deploy` for `redeploy`). Raises the
    shell's own exceptions: `HelpRequested` for help, a click `UsageError`
    (with the same usage text) for anything wrong.
    """
    import typer

    from igor_cli.cli import (
        ALIASES,
        CHAT_ALLOWED,
        CHAT_COMMANDS,
        HelpRequested,
        app,
        unknown_command,
    )

    group = typer.main.get_command(app)
    if not words or words in (["help"], ["-h"], ["--help"]):
        # The shell's top-level help lists shell-only commands and options.
        raise HelpRequested(chat_help(group))
    capture = _Capture()
    with group.make_context("igor", [], resilient_parsing=True, obj=capture) as root:
        chat_commands = list(CHAT_COMMANDS)
        for word in words[:2] if words[0].lower() == "help" else words[:1]:
            if word.lower() not in CHAT_ALLOWED:  # unknown here, or shell-only
                raise unknown_command(word, root, chat_commands)
        name, command, rest = group.resolve_command(root, words)  # type: ignore[attr-defined]
        with command.make_context(name, rest, parent=root) as context:
            command.invoke(context)
    assert capture.request is not None, "every chat command submits a request"
    canonical = next((c for c, aliases in ALIASES.items() if name in aliases), name)
    return canonical, capture.request


def chat_help(group: Any) -> str:
    """What igor does in chat, from the same command definitions as the shell."""
    from igor_cli.cli import ALIASES, CHAT_COMMANDS

    lines = ["Commands:"]
    for name in CHAT_COMMANDS:
        command = group.commands[name]
        aliases = ALIASES.get(name, ())
        also = f" (also {', '.join(aliases)})" if aliases else ""
        lines.append(f"  {name:<8} {command.get_short_help_str(70)}{also}")
    lines += ["", "Options can come in any order. `help deploy` (or `deploy -h`) for details."]
    return "\n".join(lines)


class Bridge:
    """Turns one chat message into a reply, through the shared commands and actions."""

    def __init__(
        self,
        env: Environment,
        connect: Callable[[], Client] | None = None,
        *,
        rules: Rules | None = None,
        signer: Signer | None = None,
    ) -> None:
        self.env = env
        self._connect = connect
        self.rules = rules or Rules()
        self.signer = signer

    def connect(self) -> Client:
        """A Cloud 66 client with the token in force now (read afresh every command)."""
        if self._connect is not None:
            return self._connect()
        from igor_cli.connect import open_client

        return open_client(self.env)

    @contextmanager
    def _clients(self) -> Iterator[Callable[[], Client]]:
        """A `connect` that opens clients on demand, all closed at the end."""
        clients: list[Client] = []

        def connect() -> Client:
            clients.append(self.connect())
            return clients[-1]

        try:
            yield connect
        finally:
            for client in clients:
                _close(client)

    def handle(self, text: str, origin: Origin, channel: str = "", thread: str = "") -> BridgeReply:
        """Answer one message (already stripped of igor's name or mention)."""
        try:
            words = split_words(normalise(text))
        except IgorError as error:
            return BridgeReply(render_error(error), "usage")
        return self.run_words(words, origin, channel, thread)

    def confirmed(self, pending: PendingCommand) -> BridgeReply:
        """Run a command its requester has just confirmed (the rules are checked again)."""
        origin = Origin("slack", pending.user, pending.request_id)
        return self.run_words(pending.words, origin, pending.channel, pending.thread, True)

    def run_words(
        self,
        words: list[str],
        origin: Origin,
        channel: str,
        thread: str,
        confirmed: bool = False,
    ) -> BridgeReply:
        """Parse, check the rules, ask for a confirmation or perform."""
        from typer._click import ClickException

        from igor_cli.cli import HelpRequested

        started = time.monotonic()
        try:
            name, request = parse(words)
        except HelpRequested as shown:
            return BridgeReply(preformatted(shown.text), "help", "help")
        except ClickException as problem:
            buffer = io.StringIO()
            problem.show(file=buffer)
            return BridgeReply(preformatted(buffer.getvalue().strip()), "usage")
        environment = getattr(request, "environment", None)
        fields = _request_fields(request)
        refusal = self.rules.check(name, environment, channel, origin.user)
        if refusal is not None:
            refused = render_refusal(refusal)
            fields["refused"] = refusal.sentence()
            return BridgeReply(refused, "refused", name, request, fields=fields, ephemeral=True)
        if not confirmed and self._needs_confirmation(name, request):
            return self._ask(name, request, words, origin, channel, thread)
        reply = self.perform(name, request, origin)
        if confirmed:
            reply.fields["confirmed_by"] = origin.user
        reply.fields["duration_ms"] = round((time.monotonic() - started) * 1000)
        return reply

    def _needs_confirmation(self, name: str, request: Request) -> bool:
        if isinstance(request, DeployRequest) and request.dry_run:
            return False  # nothing would be posted
        return self.rules.needs_confirmation(name, getattr(request, "environment", None))

    def _ask(
        self,
        name: str,
        request: Request,
        words: list[str],
        origin: Origin,
        channel: str,
        thread: str,
    ) -> BridgeReply:
        fields = _request_fields(request)
        if self.signer is None:  # serve refuses to start like this; the console has no buttons
            text = "This needs a confirmation, and confirmations need a signing key."
            refused = message(text, emoji=":no_entry:")
            return BridgeReply(refused, "refused", name, request, fields=fields, ephemeral=True)
        assert isinstance(request, (DeployRequest, CancelRequest))
        # Ask only about a stack that exists (a read; nothing is posted yet).
        try:
            with self._clients() as connect:
                resolve_stack(connect().stacks(), request.stack, request.environment)
        except IgorError as error:
            fields["error"] = type(error).__name__
            return BridgeReply(render_error(error), "error", name, request, fields=fields)
        seconds = self.rules.confirm_seconds
        pending = PendingCommand(
            words, origin.user, channel, thread, origin.request_id,
            expires=self.env.clock().timestamp() + seconds,
        )  # fmt: skip
        stack = escape(request.stack)
        where = escape(request.environment or "")
        if isinstance(request, DeployRequest):
            question = f"deploy *{stack}* to *{where}*?"
            labels = ("Deploy", "Cancel")
        else:
            question = f"cancel the running deployment of *{stack}* in *{where}*?"
            labels = ("Cancel the deployment", "Keep it")
        value = self.signer.sign(pending)
        if len(value) > BUTTON_VALUE_LIMIT:
            text = "That command is too long to put behind a confirmation button; shorten it."
            return BridgeReply(
                message(text, emoji=":warning:"), "usage", name, request, fields=fields
            )
        ask = render_confirmation(question, *labels, value, origin.user, seconds)
        fields["confirmation"] = "asked"
        return BridgeReply(ask, "confirm", name, request, fields=fields, pending=pending)

    def perform(self, name: str, request: Request, origin: Origin) -> BridgeReply:
        """Run a parsed request and render its outcome for Slack."""
        fields = _request_fields(request)
        try:
            with self._clients() as connect:
                outcome = perform(connect, request, origin)
        except IgorError as error:
            fields["error"] = type(error).__name__
            return BridgeReply(render_error(error), "error", name, request, fields=fields)
        status = "ok" if outcome.exit_code == 0 else "failed"
        fields["result"] = _result(outcome)
        message = render_outcome(outcome, self.env.clock(), as_json=request.as_json)
        return BridgeReply(message, status, name, request, outcome, fields)


def _close(client: Client) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        close()


def _request_fields(request: Request) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in ("stack", "environment"):
        value = getattr(request, key, None)
        if value:
            fields[key] = value
    return fields


def _result(outcome: Outcome) -> str:
    result = getattr(outcome, "result", None)
    if result is not None:
        return str(result.value)
    return "ok"
