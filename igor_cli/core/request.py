"""The change contract: what a request is, and what an outcome says of itself.

Every command's request is of one kind, chosen by its base class:

- `Read` reads only (list, history, watch, whoami, version, locks);
- `Bookkeeping` changes igor's own records, not a stack at Cloud 66 (lock,
  unlock): chat's rules gate it by its rule name; nothing asks for a click;
- `Change` changes a stack at Cloud 66 (deploy, rollback, promote): locks,
  freezes and approvals hold it back, and chat asks before it is made;
- `Halt` is a change that stops a change (cancel): chat asks before it too, but
  locks, freezes and approvals let it through.

The contract fails closed where it is written, not where it is forgotten. A class
that subclasses `Request` without choosing a kind is refused when it is defined;
so is a request without its action (`act`), a change without its confirmation
question or one that says it needs no Cloud 66, a read or bookkeeping that does
not say whether it needs Cloud 66, and an outcome without its words. The guard
(`core/perform.py`) and the chat bridge tell a change by its class, never by a
flag a new command could leave out. A shell-only command (set-up, the bot) is a
`ShellCommand`: no `Request`, so the shared `perform` and chat never run it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self, TypeGuard

from igor_cli.errors import ExitCode

if TYPE_CHECKING:
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Stack
    from igor_cli.config import Environment
    from igor_cli.core.follow import Followed
    from igor_cli.core.run import Run
    from igor_cli.identity import Origin
    from igor_cli.json_output import JsonOutput
    from igor_cli.render.said import Said

# Holds one stack while a change decides and posts: `Environment.stack_lock`.
StackLock = Callable[[str], AbstractContextManager[Any]]


@dataclass(frozen=True, kw_only=True)
class Request:
    """What a command asks for, built by its typer function; performed afterwards.

    Never subclassed by a command directly: a command's request is a `Read`, a
    `Bookkeeping`, a `Change` or a `Halt`.
    """

    # The fields of its JSON, for `--json a,b` (a test checks them against the output).
    json_fields: ClassVar[tuple[str, ...]] = ()
    # Whether performing it talks to Cloud 66 (declared by each read and bookkeeping;
    # a change always does). Chat answers one that does not at once, off the workers.
    needs_cloud66: ClassVar[bool]

    as_json: JsonOutput | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a request class that breaks the contract, when it is defined."""
        super().__init_subclass__(**kwargs)
        if cls.__module__ == __name__:
            return  # the kinds themselves
        if not issubclass(cls, KINDS):
            raise TypeError(
                f"{cls.__name__} does not say what it is: subclass Read, Bookkeeping, Change "
                "or Halt (core/request.py), not Request"
            )
        if issubclass(cls, Change):
            if cls.needs_cloud66 is not True:
                raise TypeError(f"{cls.__name__} is a change: it always needs Cloud 66")
            if cls.question is Change.question:
                raise TypeError(
                    f"{cls.__name__} changes a stack but asks no confirmation question: "
                    "define question(stack, literal)"
                )
        elif not isinstance(getattr(cls, "needs_cloud66", None), bool):
            raise TypeError(f"{cls.__name__} does not say whether it needs Cloud 66")
        if cls.act is Request.act:
            raise TypeError(f"{cls.__name__} has no action: define act(run)")

    def act(self, run: Run) -> Outcome:
        """Do it: what it came to (its action; it never prints, and knows no shell or chat).
        `core.perform.perform` runs it, behind the guard when it is a change."""
        raise NotImplementedError

    @property
    def follows(self) -> bool:
        """Whether a shell follows the deployment it leads to (`--follow`; `watch` always)."""
        return False

    def rule_name(self, command: str) -> str:
        """What chat's rules must allow for it: its command, unless it names a permission
        of its own (`unlock --force`)."""
        return command

    def replaced(self, **changes: Any) -> Self:
        """This request with some fields changed (every request is a frozen dataclass)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class OnAStack:
    """A request about one stack: named with -s (or first), narrowed with -e. Chat decides
    its rules on the stack it resolves to, so -e is needed no more than for deploy."""

    stack: str
    environment: str | None = None


# The kinds that add no field are plain subclasses: a dataclass costs half a millisecond
# to make, and a TAB imports the family that defines a command.
class Read(Request):
    """A request that reads only."""


class Bookkeeping(Request):
    """A request that changes igor's own records (a lock), not a stack at Cloud 66: rules
    gate it; chat refuses it where the bot's replicas do not share one store."""


class QuestionWords(NamedTuple):
    """What chat asks before a change: the question (Slack's mrkdwn, each typed value
    written with the renderer's `literal`), and the labels of its two buttons."""

    question: str
    confirm: str
    decline: str


@dataclass(frozen=True, kw_only=True)
class Change(Request, OnAStack):
    """A request that changes a stack at Cloud 66: it names its stack, locks, freezes and
    approvals hold it back, and chat asks its question before it is made."""

    needs_cloud66: ClassVar[bool] = True
    # What it would deploy is known only by looking: chat looks first (a dry run), and
    # its question names what the click deploys (`expect`); with nothing to do, it says so.
    previews: ClassVar[bool] = False
    # It reads its stack's state before it decides (`look`): those reads go at once with
    # the stack's record, under its `stack_lock` if it has one (core/resolve.py,
    # `looking_ahead`).
    looks_ahead: ClassVar[bool] = False

    dry_run: bool = False
    follow: bool = False
    break_glass: bool = False  # during a freeze (only those it names; on record)
    reason: str = ""  # why, for the record
    expect: str = ""  # set by a confirmation: deploy this (a hash or tags) or nothing

    @property
    def follows(self) -> bool:
        """Whether a shell follows the deployment it leads to (`--follow`)."""
        return self.follow

    @property
    def posts(self) -> bool:
        """Whether it may post to Cloud 66 (a dry run does not): only what posts may hold
        its stack while it decides (`stack_lock`; a halt never does), and in chat waits in
        its stack's line."""
        return not self.dry_run

    def look(self, client: Cloud66Client, uid: str, origin: Origin) -> Cloud66Client | None:
        """When it `looks_ahead`: `client` with what it reads of the stack `uid` before it
        decides read already, with the stack's record (None: Cloud 66 has no such stack)."""
        raise NotImplementedError

    def stack_lock(self, env: Environment) -> StackLock | None:
        """What holds its stack while it decides and posts: one change at a time, across
        every igor sharing the state store (`Environment.stack_lock`); nothing for a dry
        run, which waits for nobody's change."""
        return env.stack_lock if self.posts else None

    def question(self, stack: Stack, literal: Callable[[str], str]) -> QuestionWords:
        """What chat asks before it is made on `stack` (the one it resolved to)."""
        raise NotImplementedError


class Halt(Change):
    """A change that stops a change (cancel): asked about in chat, never held back by locks,
    freezes or approvals (stopping a deployment never waits)."""

    def stack_lock(self, env: Environment) -> StackLock | None:
        """Nothing: it never waits for a change to its stack to be decided."""
        return None


KINDS = (Read, Bookkeeping, Change)  # Halt is a Change


def held_back(request: Request) -> TypeGuard[Change]:
    """Whether locks, freezes and approvals hold this request back: a change that does not
    only stop one."""
    return isinstance(request, Change) and not isinstance(request, Halt)


# -- outcomes ----------------------------------------------------------------------

WORDS = ("said", "facts")  # what every outcome says of itself, in its own class


class Outcome:
    """What a request came to: its facts, and its words, defined next to it.

    Every outcome class says itself in its own body: to people (`said`: one neutral
    value every renderer draws) and to programs (`facts`: its JSON). One without them
    is refused when it is defined, and one that inherits them (a rollback is a
    deploy) would be said as its parent, so it must say itself too.
    """

    # The name of its JSON Lines event when what it started is followed (`--follow --json`).
    event: ClassVar[str] = "deploy"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse an outcome class without its own words, when it is defined."""
        super().__init_subclass__(**kwargs)
        missing = [name for name in WORDS if name not in vars(cls)]
        if missing:
            raise TypeError(f"{cls.__name__} has no words of its own: define {', '.join(missing)}")

    @property
    def exit_code(self) -> ExitCode:
        """What the shell exits with (OK unless it says otherwise)."""
        return ExitCode.OK

    @property
    def posted(self) -> bool:
        """Whether a change was asked of Cloud 66 (a test checks that a change's outcome
        says so itself)."""
        return False

    @property
    def deploys(self) -> str:
        """What it deploys, as a confirmation carries it (`expect`): a hash or image tags."""
        return ""

    def to_follow(self) -> Followed | None:
        """The async action (a deployment's, a stack action's) it leaves to follow to its
        end, if any."""
        return None

    def record(self) -> dict[str, str]:
        """What the audit line adds about it, beyond its command and result."""
        return {}

    def said(self, now: datetime) -> Said:
        """What it came to, for people: a lead sentence, perhaps a table, hints and a tone
        (`render/said.py`); the terminal, Slack and the console draw it, each its way."""
        raise NotImplementedError

    def facts(self) -> Any:
        """What it came to, as igor's JSON output."""
        raise NotImplementedError

    def streamed_facts(self) -> Any:
        """Its facts as `--json` writes them: an outcome of many rows may give an iterator,
        written as each row is made (a big account's list is not held whole)."""
        return self.facts()


# -- the shell-only commands -----------------------------------------------------------


class ShellCommand:
    """The request of a shell-only command (set-up, the bot): the terminal edge runs it
    itself. It is no `Request`: the shared `perform`, and so chat, cannot run it."""

    json_fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a shell-only request that cannot run, when it is defined."""
        super().__init_subclass__(**kwargs)
        if cls.run is ShellCommand.run:
            raise TypeError(f"{cls.__name__} is a shell-only command: define run(env)")

    def run(self, env: Environment) -> int:
        """Do it for the person at this terminal; return the exit code."""
        raise NotImplementedError
