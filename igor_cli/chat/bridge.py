"""Chat text -> the very same command definitions as the shell -> an outcome.

The bridge never talks to Slack: it takes a line of text and who sent it, and
returns the reply to post (and the outcome, so the adapter can follow a
deployment). `igor serve` and `igor chat` both use it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from igor_cli.actions import DeployOutcome, Origin, Outcome, Request, perform
from igor_cli.chat.text import normalise, split_words
from igor_cli.config import Environment
from igor_cli.errors import IgorError
from igor_cli.render.slack import SlackMessage, preformatted, render_error, render_outcome

if TYPE_CHECKING:
    from igor_cli.actions import Client


@dataclass
class BridgeReply:
    """What igor answers to one message, and what the log line says about it."""

    message: SlackMessage
    status: str  # ok, failed, error, usage, help
    command: str = ""
    request: Request | None = None
    outcome: Outcome | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def deployment_to_follow(self) -> DeployOutcome | None:
        """A deployment igor runs for this stack, to follow in the thread."""
        outcome = self.outcome
        return outcome if isinstance(outcome, DeployOutcome) and outcome.followable else None


class _Capture:
    """Stands where the shell session stands: keeps the request instead of running it."""

    def __init__(self) -> None:
        self.request: Request | None = None

    def submit(self, request: Request) -> None:
        self.request = request


def parse(words: list[str]) -> tuple[str, Request]:
    """Parse chat words with the shell's command definitions.

    Raises the shell's own exceptions: `HelpRequested` for help, a click
    `UsageError` (with the same usage text) for anything wrong.
    """
    import typer

    from igor_cli.cli import CHAT_ALLOWED, app, unknown_command

    group = typer.main.get_command(app)
    capture = _Capture()
    with group.make_context("igor", [], resilient_parsing=True, obj=capture) as root:
        name, command, rest = group.resolve_command(root, words or ["help"])  # type: ignore[attr-defined]
        if name not in CHAT_ALLOWED:
            raise unknown_command(words[0], root)
        with command.make_context(name, rest, parent=root) as context:
            command.invoke(context)
    assert capture.request is not None, "every chat command submits a request"
    return command.name or name, capture.request


class Bridge:
    """Turns one chat message into a reply, through the shared commands and actions."""

    def __init__(self, env: Environment, connect: Callable[[], Client] | None = None) -> None:
        self.env = env
        self._connect = connect

    def connect(self) -> Client:
        """A Cloud 66 client with the token in force now (read afresh every command)."""
        if self._connect is not None:
            return self._connect()
        from igor_cli.connect import open_client

        return open_client(self.env)

    def handle(self, text: str, origin: Origin) -> BridgeReply:
        """Answer one message (already stripped of igor's name or mention)."""
        from typer._click import ClickException

        from igor_cli.cli import HelpRequested

        started = time.monotonic()
        try:
            name, request = parse(split_words(normalise(text)))
        except HelpRequested as shown:
            return BridgeReply(preformatted(shown.text), "help", "help")
        except ClickException as problem:
            buffer = io.StringIO()
            problem.show(file=buffer)
            return BridgeReply(preformatted(buffer.getvalue().strip()), "usage")
        except IgorError as error:
            return BridgeReply(render_error(error), "usage")
        reply = self.perform(name, request, origin)
        reply.fields["duration_ms"] = round((time.monotonic() - started) * 1000)
        return reply

    def perform(self, name: str, request: Request, origin: Origin) -> BridgeReply:
        """Run a parsed request and render its outcome for Slack."""
        clients: list[Client] = []

        def connect() -> Client:
            clients.append(self.connect())
            return clients[-1]

        fields = _request_fields(request)
        try:
            outcome = perform(connect, request, origin)
        except IgorError as error:
            fields["error"] = type(error).__name__
            return BridgeReply(render_error(error), "error", name, request, fields=fields)
        finally:
            for client in clients:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
        status = "ok" if outcome.exit_code == 0 else "failed"
        fields["result"] = _result(outcome)
        message = render_outcome(outcome, self.env.clock(), as_json=request.as_json)
        return BridgeReply(message, status, name, request, outcome, fields)


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
