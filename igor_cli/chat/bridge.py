"""The chat core: text -> the very same command definitions as the shell -> a reply.

The bridge knows no chat platform: it takes a line of text, who sent it and
where, checks the rules, asks for confirmations, performs, and returns a
neutral `Reply` (the outcome, an error, a refusal, a question, help). Each
adapter renders and delivers it: the Slack adapter as Block Kit, the local
console (`igor chat`) as plain text.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from igor_cli.chat.guard import PendingCommand, Refusal, Rules, Signer
from igor_cli.chat.text import normalise, split_words
from igor_cli.completion import StackCache
from igor_cli.config import Environment
from igor_cli.core.perform import guard_change, perform
from igor_cli.core.request import Bookkeeping, Change, OnAStack, Outcome, Request, held_back
from igor_cli.core.resolve import find_stack, looking_ahead
from igor_cli.core.run import Run
from igor_cli.errors import IgorError
from igor_cli.identity import Origin

if TYPE_CHECKING:
    from igor_cli.cli import ClickException
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Stack
    from igor_cli.core.follow import Followed
    from igor_cli.targets import Default


@dataclass(frozen=True)
class Question:
    """A change waiting for its requester's click: what it is, and the signed value."""

    request: Change
    stack: Stack
    value: str  # the pending command, signed: it travels in the button
    user: str
    seconds: float
    approval: bool = False  # someone other than `user` must answer
    approvers: tuple[str, ...] = ()  # who may (empty: anyone but the requester)
    glass: str = ""  # the freeze whose glass the change would break, in words


@dataclass
class Reply:
    """What igor answers to one message, before any platform renders it.

    Exactly one of `outcome`, `error`, `refusal`, `question`, `notice` or
    `text` (help and usage, as the shell prints them) says what to answer;
    each adapter renders it its own way (Block Kit for Slack, plain text for
    the console). `fields` are what the log line says about it.
    """

    status: str  # ok, failed, error, usage, help, refused, confirm
    command: str = ""
    request: Request | None = None
    outcome: Outcome | None = None
    error: IgorError | None = None
    refusal: Refusal | None = None
    question: Question | None = None
    notice: str = ""  # a sentence of igor's own, in plain words
    text: str = ""
    note: str = ""  # a line after the answer: the defaults it used (targets.py)
    fields: dict[str, Any] = field(default_factory=dict)
    ephemeral: bool = False  # only the requester sees it (refusals)
    pending: PendingCommand | None = None  # waiting for the requester's click

    @property
    def deployment_to_follow(self) -> Followed | None:
        """A deployment to follow in the thread: one igor runs, or one `watch` attached to."""
        if isinstance(self.request, Change) and self.request.dry_run:
            return None  # a dry run asked what would happen; it follows nothing
        return self.outcome.to_follow() if self.outcome is not None else None


@dataclass(frozen=True)
class Work:
    """The rest of a command, to run on a Cloud 66 worker: `work()` makes its reply.

    `stack` names the stack a change is about (its name, any case): changes to
    one stack run one after another, so a worker never waits on another one.
    """

    run: Callable[[], Reply]
    stack: str | None = None
    name: str = ""  # the stack as typed, for what its thread is told while it waits

    def __call__(self) -> Reply:
        return self.run()


BUTTON_VALUE_LIMIT = 2000  # Slack's limit for a button's value
Step = Reply | Work  # a reply now, or the work that makes it
ADDRESS = "@igor"  # how a person calls igor in chat, unless the adapter knows its name


def parse(
    words: list[str], defaults: Callable[[], Mapping[str, Default]] | None = None
) -> tuple[str, Request, Mapping[str, Default]]:
    """Parse chat words with the shell's command definitions: (command, request, defaults used).

    The command is the canonical name (`deploy` for `redeploy`); `defaults` are
    the channel's (never the shell's). Raises the shell's own exceptions:
    `HelpRequested` for help, a click `UsageError` (with the same usage text)
    for anything wrong.
    """
    from igor_cli import cli

    if not words or words in (["help"], ["-h"], ["--help"]):
        # The shell's top-level help lists shell-only commands and options.
        raise cli.HelpRequested(chat_help())
    allowed = cli.chat_allowed()
    for word in words[:2] if words[0].lower() == "help" else words[:1]:
        if word.lower() not in allowed:  # unknown here, shell-only, or an option
            group = cli.group()
            # A shell-only command is not a typo: nothing in chat is close to what it meant.
            names = [] if word.lower() in group.commands else sorted(allowed)
            with group.make_context("igor", [], resilient_parsing=True) as root:
                raise cli.unknown_command(word, root, list(cli.chat_commands()), names)
    parsed = cli.parse(words, defaults) if defaults else cli.parse(words)
    if parsed.sandbox:  # chat cannot switch the bot's Cloud 66: it would act on the real one
        raise cli.UsageError(
            "--sandbox works in a shell only: the bot talks to the sandbox when it was "
            "started with `igor --sandbox serve`. Nothing was done."
        )
    return parsed.command, parsed.request, parsed.defaults


def chat_usage(problem: ClickException, address: str = ADDRESS) -> str:
    """A usage error in chat's words: `@igor deploy -h`, never the shell's `Try 'igor -h'`.

    `address` is how a person calls the bot where it runs (`@deploybot`).
    """
    lines = []
    ctx = getattr(problem, "ctx", None)
    if ctx is not None and ctx.parent is not None:  # a command's own usage
        usage = " ".join([address, ctx.info_name or "", *ctx.command.collect_usage_pieces(ctx)])
        lines += [f"Usage: {usage}", f"Try `{address} {ctx.info_name} -h` for help.", ""]
        return "\n".join([*lines, f"Error: {problem.format_message()}"])
    return f"Error: {problem.format_message()}\n`{address} help` tells what igor does in chat."


def chat_help() -> str:
    """What igor does in chat, from the same command definitions as the shell."""
    from igor_cli import cli

    group = cli.group()
    lines = ["Commands:"]
    registered = cli.commands()
    for name in cli.chat_commands():
        command = group.commands[name]
        aliases = registered[name].aliases
        also = f" (also {', '.join(aliases)})" if aliases else ""
        lines.append(f"  {name:<8} {command.get_short_help_str(70)}{also}")
    lines += ["", "Options can come in any order. `help deploy` (or `deploy -h`) for details."]
    return "\n".join(lines)


class Bridge:
    """Turns one chat message into a reply, through the shared commands and actions."""

    def __init__(
        self,
        env: Environment,
        connect: Callable[[], Cloud66Client] | None = None,
        *,
        rules: Rules | Callable[[], Rules] | None = None,
        signer: Signer | None = None,
        address: str = ADDRESS,
        changes_refused: Callable[[], str] | None = None,
    ) -> None:
        """`rules`: fixed, or asked for each command (a bot reads them again when the config
        changes); `changes_refused`: why no change may be made from here now ("" if one
        may: a bot whose replicas do not share their store)."""
        self.env = env
        self._connect = connect
        fixed = rules if isinstance(rules, Rules) else Rules()
        self._rules: Callable[[], Rules] = rules if callable(rules) else lambda: fixed
        self.signer = signer
        self.address = address  # `@igor`, or the bot's name in Slack
        self._changes_refused = changes_refused

    @property
    def rules(self) -> Rules:
        """The rules in force now."""
        return self._rules()

    def channel_defaults(self, channel: str) -> Mapping[str, Default]:
        """The channel's default target (`[[slack.channel]]`); a shell's never apply here."""
        from igor_cli.targets import channel_defaults

        return channel_defaults(self.env.config(), channel, str(self.env.config_path()))

    def connect(self) -> Cloud66Client:
        """A Cloud 66 client with the token in force now (read afresh every command)."""
        if self._connect is not None:
            return self._connect()
        from igor_cli.connect import open_client

        return open_client(self.env)

    @contextmanager
    def _client(self) -> Iterator[Callable[[], Cloud66Client]]:
        """A `connect` that opens one client on first use; it is closed at the end."""
        clients: list[Cloud66Client] = []

        def connect() -> Cloud66Client:
            if not clients:
                clients.append(self.connect())
            return clients[0]

        try:
            yield connect
        finally:
            for client in clients:
                _close(client)

    def not_now(self, words: list[str]) -> str:
        """Why a change its requester just confirmed cannot be done now ("" when it can be
        tried): one that locks hold back needs the state store, sound. A cancel does not
        (stopping a deployment never waits for a lock), nor words that do not parse (they
        are answered as such)."""
        from igor_cli.cli import ClickException
        from igor_cli.state.store import StateUnavailable

        try:
            _, request, _ = parse(words)
        except (ClickException, IgorError):
            return ""
        if not held_back(request):
            return ""
        try:
            self.env.state_for_change()  # reads the store's marker: it answers, and is sound
        except StateUnavailable as error:
            return (
                f"Not done: {error.message} igor cannot check the locks or record this "
                "answer, so nothing was done. Ask again once it answers."
            )
        except IgorError as error:  # the store was reset: an operator must confirm it first
            return f"Not done: {error.message} {error.hint}"
        return ""

    def handle(self, text: str, origin: Origin, channel: str = "", thread: str = "") -> Reply:
        """Answer one message (already stripped of igor's name or mention)."""
        step = self.begin(text, origin, channel, thread)
        return step if isinstance(step, Reply) else step()

    def begin(self, text: str, origin: Origin, channel: str = "", thread: str = "") -> Step:
        """The reply now when no Cloud 66 call is needed (usage, help, version, a
        refusal); otherwise the rest of the work, to run on a Cloud 66 worker."""
        try:
            words = split_words(normalise(text))
        except IgorError as error:
            return Reply("usage", error=error)
        return self.begin_words(words, origin, channel, thread)

    def confirmed(self, pending: PendingCommand) -> Reply:
        """Run a command its requester has just confirmed (the rules are checked again)."""
        step = self.begin_confirmed(pending)
        return step if isinstance(step, Reply) else step()

    def begin_confirmed(self, pending: PendingCommand) -> Step:
        """`begin` for a command its requester has just confirmed."""
        origin = Origin.of(pending.person, pending.request_id)
        return self.begin_words(pending.words, origin, pending.channel, pending.thread, pending)

    def run_words(
        self,
        words: list[str],
        origin: Origin,
        channel: str,
        thread: str,
        confirmed: PendingCommand | None = None,
    ) -> Reply:
        """Parse, check the rules, ask for a confirmation or perform."""
        step = self.begin_words(words, origin, channel, thread, confirmed)
        return step if isinstance(step, Reply) else step()

    def begin_words(
        self,
        words: list[str],
        origin: Origin,
        channel: str,
        thread: str,
        confirmed: PendingCommand | None = None,
    ) -> Step:
        """`begin`, for words already split."""
        from igor_cli.cli import ClickException, HelpRequested

        started = time.monotonic()
        origin = dataclasses.replace(origin, channel=channel, thread=thread)  # where it was typed
        try:
            name, request, defaults = parse(words, lambda: self.channel_defaults(channel))
        except HelpRequested as shown:
            return Reply("help", "help", text=shown.text)
        except ClickException as problem:
            return Reply("usage", text=chat_usage(problem, self.address))
        except IgorError as error:  # the channel's default is malformed in the config file
            return Reply("error", error=error)

        def finish(reply: Reply) -> Reply:
            if confirmed is not None and reply.status not in ("refused", "usage"):
                reply.fields["confirmed_by"] = origin.user
            if defaults:
                from igor_cli.targets import sentence

                reply.note = sentence(defaults)
            reply.fields["duration_ms"] = round((time.monotonic() - started) * 1000)
            return reply

        # What the rules must allow: the command, or a permission the request names
        # for itself (`unlock --force`).
        rule_name = request.rule_name(name)
        refused_here = self._changes_refused() if self._changes_refused else ""
        if isinstance(request, Change):  # decided first, by what it is: nothing else says
            return self._change_step(
                name, request, words, origin, channel, thread, confirmed, refused_here, finish
            )
        if refused_here and isinstance(request, Bookkeeping):
            fields = {**_request_fields(request), "refused": "replicas on stores of their own"}
            return finish(Reply("refused", name, request, notice=refused_here, fields=fields))
        refusal = self._refused_whatever_the_stack(rule_name, request, channel, origin.user)
        if refusal is not None:
            return finish(_refused(name, request, refusal))
        # A command on one stack (lock, history) that the rules allow only in some
        # environments is decided on the stack it resolves to, as a change is: no -e needed.
        on_its_stack = (
            isinstance(request, OnAStack)
            and self.rules.check(rule_name, _typed_environment(request), channel, origin.user)
            is not None
        )
        if not request.needs_cloud66 and not on_its_stack:
            return finish(self.perform(name, request, origin))

        def rest() -> Reply:
            with self._client() as connect:
                if on_its_stack:
                    return finish(self._on_its_stack(name, rule_name, request, origin, connect))
                return finish(self.perform(name, request, origin, connect))

        return Work(rest)

    def _change_step(
        self,
        name: str,
        request: Change,
        words: list[str],
        origin: Origin,
        channel: str,
        thread: str,
        confirmed: PendingCommand | None,
        refused_here: str,
        finish: Callable[[Reply], Reply],
    ) -> Step:
        """A change: refused where the replicas share no store, or by a rule no stack could
        lift; otherwise its work, keyed on the stack it names (changes to one stack run one
        after another; a dry run, which posts nothing, runs at once)."""
        if refused_here:
            fields = {**_request_fields(request), "refused": "replicas on stores of their own"}
            return finish(Reply("refused", name, request, notice=refused_here, fields=fields))
        refusal = self._refused_whatever_the_stack(
            request.rule_name(name), request, channel, origin.user
        )
        if refusal is not None:
            return finish(_refused(name, request, refusal))

        def rest() -> Reply:
            with self._client() as connect:
                try:
                    with self._reaching(request, origin, confirmed, connect) as reach:
                        reply = self._change(
                            name, request, words, origin, channel, thread, confirmed, reach
                        )
                except IgorError as error:  # reading ahead (a decision's own errors are its reply)
                    fields = {**_request_fields(request), "error": type(error).__name__}
                    reply = Reply("error", name, request, error=error, fields=fields)
                return finish(reply)

        if not request.posts:  # a dry run changes nothing: it waits for nobody's change
            return Work(rest)
        # One stack name (any case) covers every stack a change could resolve to.
        return Work(rest, request.stack.strip().casefold(), request.stack.strip())

    def _refused_whatever_the_stack(
        self, name: str, request: Request, channel: str, user: str
    ) -> Refusal | None:
        """A refusal that no stack could lift: decided without asking Cloud 66."""
        typed = _typed_environment(request)
        if not isinstance(request, OnAStack):
            return self.rules.check(name, typed, channel, user)
        # A change is decided on the stack it resolves to; a typed -e can only
        # narrow that down, so a refusal for it stands whatever the stack.
        if typed or not self.rules.could_allow(name, channel, user):
            return self.rules.check(name, typed, channel, user)
        return None

    def _on_its_stack(
        self,
        name: str,
        rule_name: str,
        request: Request,
        origin: Origin,
        connect: Callable[[], Cloud66Client],
    ) -> Reply:
        """A command on one stack, allowed by the rules of the environment it resolves to."""
        fields = _request_fields(request)
        assert isinstance(request, OnAStack)  # `on_its_stack`
        try:
            stack = find_stack(connect(), request.stack, None, StackCache(self.env))
        except IgorError as error:
            fields["error"] = type(error).__name__
            return Reply("error", name, request, error=error, fields=fields)
        refusal = self.rules.check(rule_name, stack.environment, origin.channel, origin.user)
        if refusal is not None:
            return _refused(name, request, refusal, stack)
        pinned = request.replaced(environment=stack.environment)
        return self.perform(name, pinned, origin, connect, stack)

    def _reaching(
        self,
        request: Change,
        origin: Origin,
        confirmed: PendingCommand | None,
        connect: Callable[[], Cloud66Client],
    ) -> AbstractContextManager[Callable[[], Cloud66Client]]:
        """How a change reaches Cloud 66: one that reads ahead (deploy, cancel) reads its
        stack's state with the stack's record (core/resolve.py, `looking_ahead`), unless a
        question may come first (those reads would be made again after the click)."""
        if confirmed is None and self.rules.asks:
            return nullcontext(connect)
        hints = StackCache(self.env)
        return looking_ahead(connect, request, origin, hints, request.stack_lock(self.env))

    def _change(
        self,
        name: str,
        request: Change,
        words: list[str],
        origin: Origin,
        channel: str,
        thread: str,
        confirmed: PendingCommand | None,
        connect: Callable[[], Cloud66Client],
    ) -> Reply:
        """A command that changes a stack: every decision rests on the stack it resolves to.

        What was typed can only narrow things down: a rule or a confirmation
        keyed on an environment applies whether or not `-e` was given.
        """
        fields = _request_fields(request)
        named, typed = request.stack, request.environment
        try:
            stack = find_stack(connect(), named, typed, StackCache(self.env))
        except IgorError as error:
            fields["error"] = type(error).__name__
            return Reply("error", name, request, error=error, fields=fields)
        refusal = self.rules.check(name, stack.environment, channel, origin.user)
        if refusal is not None:
            return _refused(name, request, refusal, stack)
        if confirmed is not None and confirmed.stack_uid and confirmed.stack_uid != stack.uid:
            text = (
                f"`{named}` no longer means the stack you confirmed; nothing was done. Ask again."
            )
            fields["refused"] = "stack changed since the confirmation"
            return Reply("refused", name, request, notice=text, fields=fields)
        # The action acts on the stack the decisions were made about.
        pinned = request.replaced(environment=stack.environment)
        if confirmed is not None and confirmed.expect:
            # The click deploys what its question named, or nothing.
            pinned = pinned.replaced(expect=confirmed.expect)
        dry_run = request.dry_run  # nothing would be posted
        approval = self.rules.needs_approval(stack.environment) and held_back(request)
        if (
            confirmed is None
            and not dry_run
            and (approval or self.rules.needs_confirmation(stack.environment))
        ):
            glass = ""
            if held_back(request):
                try:  # no question for a change a lock or a freeze would refuse after it
                    guarded = guard_change(Run(self.env, connect, origin, None, stack), pinned)
                except IgorError as error:
                    fields["error"] = type(error).__name__
                    return Reply("error", name, request, error=error, fields=fields)
                glass = guarded.glass.describe() if guarded.glass is not None else ""
            if request.previews:
                # What it would deploy is known only by looking: look (a dry run), and
                # answer a refusal now; otherwise the question names it.
                dry = pinned.replaced(dry_run=True)
                looked = self.perform(name, dry, origin, connect, stack)
                if looked.outcome is None or looked.outcome.exit_code != 0:
                    return looked
                expect = looked.outcome.deploys
                if expect:  # what the click deploys (a cancel deploys nothing)
                    pinned = pinned.replaced(expect=expect)
            asked = self._ask(name, pinned, stack, words, origin, channel, thread, approval)
            if asked.question is not None and glass:  # the question says it breaks the glass
                asked.question = dataclasses.replace(asked.question, glass=glass)
            return asked
        return self.perform(name, pinned, origin, connect, stack)

    def _ask(
        self,
        name: str,
        request: Change,
        stack: Stack,
        words: list[str],
        origin: Origin,
        channel: str,
        thread: str,
        approval: bool = False,
    ) -> Reply:
        fields = {**_request_fields(request), "stack_uid": stack.uid}
        if self.signer is None:  # serve refuses to start like this; the console has no buttons
            text = "This needs a confirmation, and confirmations need a signing key."
            return Reply("refused", name, request, notice=text, fields=fields, ephemeral=True)
        seconds = self.rules.confirm_seconds
        pending = PendingCommand(
            words, origin.user, channel, thread, origin.request_id,
            expires=self.env.clock().timestamp() + seconds, stack_uid=stack.uid,
            approval=approval, expect=request.expect,
        )  # fmt: skip
        value = self.signer.sign(pending)
        if len(value) > BUTTON_VALUE_LIMIT:
            text = "That command is too long to put behind a confirmation button; shorten it."
            return Reply("usage", name, request, notice=text, fields=fields)
        approvers = tuple(sorted(self.rules.approvers)) if approval else ()
        question = Question(request, stack, value, origin.user, seconds, approval, approvers)
        fields["confirmation"] = "approval asked" if approval else "asked"
        return Reply("confirm", name, request, question=question, fields=fields, pending=pending)

    def perform(
        self,
        name: str,
        request: Request,
        origin: Origin,
        connect: Callable[[], Cloud66Client] | None = None,
        stack: Stack | None = None,
    ) -> Reply:
        """Run a parsed request; the reply carries its outcome. `stack`: the stack it acts
        on, just resolved for it (the decisions were made about it: the action acts on it,
        without asking Cloud 66 for it again)."""
        fields = _request_fields(request)
        try:
            with nullcontext(connect) if connect else self._client() as connect_now:
                hints = StackCache(self.env)
                outcome = perform(self.env, connect_now, request, origin, hints, stack)
        except IgorError as error:
            fields["error"] = type(error).__name__
            return Reply("error", name, request, error=error, fields=fields)
        status = "ok" if outcome.exit_code == 0 else "failed"
        result = getattr(outcome, "result", None)
        if result is not None:  # what it came to, beyond ok or failed (started, queued, ...)
            fields["result"] = str(result.value)
        if outcome.deploys:  # rollback, promote: the hash or tags
            fields["deploys"] = outcome.deploys
        fields.update(outcome.record())  # e.g. the operation a stack action is
        return Reply(status, name, request, outcome, fields=fields)


def _typed_environment(request: Request) -> str | None:
    """The environment typed with -e (a stack's, or list's filter), if any."""
    typed: str | None = getattr(request, "environment", None)
    return typed


def _refused(name: str, request: Request, refusal: Refusal, stack: Stack | None = None) -> Reply:
    fields = _request_fields(request)
    if stack is not None:
        fields["environment"] = stack.environment
    fields["refused"] = refusal.sentence()
    return Reply("refused", name, request, refusal=refusal, fields=fields, ephemeral=True)


def _close(client: Cloud66Client) -> None:
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
