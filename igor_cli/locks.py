"""Human deploy locks: `igor lock`, `igor unlock`, `igor locks`.

A lock is a record in the state store (`igor_cli/state/locks.py`) under
`lock:<stack uid>`, kept for as long as it lasts (4 hours unless told), so an
expired lock vanishes by itself. Taking one is a claim (`SET NX PX`, or one SQL
statement); extending or releasing it is a compare-and-set or compare-and-delete
on the record that was read, so two people racing for one stack cannot both hold
it. While a stack is locked, a change (`changes` is true) by anyone but the
holder is refused before anything is posted (`actions.guard_change`, which every
change passes); a request that only stops a change (`halts`, e.g. cancel) goes
through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from igor_cli.actions import Origin, Request, Run, find_stack, performs
from igor_cli.errors import AmbiguousStack, ExitCode, IgorError, UsageProblem
from igor_cli.state.audit import keep_on_record
from igor_cli.state.locks import ForcedUnlock, Lock, current_locks, leave_notice, lock_key

if TYPE_CHECKING:
    from igor_cli.cloud66.models import Stack
    from igor_cli.config import Environment
    from igor_cli.freeze import Window
    from igor_cli.json_output import JsonOutput
    from igor_cli.state import Store

DEFAULT_SECONDS = 4 * 3600.0
LONGEST_SECONDS = 14 * 86400.0
_TRIES = 5  # a lock that changes under us this often is a lock someone else holds

# -- how long ------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(value: str | float) -> float:
    """`2h`, `90m`, `1h30m`, `1d`, `45s` -> seconds (1 second to 14 days)."""
    import typer

    if isinstance(value, int | float):
        return float(value)
    text = value.strip().lower().replace(" ", "")
    found = _DURATION.fullmatch(text)
    if not text or found is None:
        raise typer.BadParameter(f"{value!r} is not a duration: write it like 2h, 30m or 1h30m.")
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    total = float(days * 86400 + hours * 3600 + minutes * 60 + seconds)
    if not 1 <= total <= LONGEST_SECONDS:
        raise typer.BadParameter("a lock lasts from 1 second to 14 days.")
    return total


# -- requests ------------------------------------------------------------------


@dataclass(frozen=True)
class LockRequest(Request):
    """`igor lock`."""

    changes: ClassVar[bool] = False  # it changes no stack at Cloud 66: no confirmation
    needs_cloud66: ClassVar[bool] = True  # the stack is resolved, so a typo locks nothing
    acts_on_a_stack: ClassVar[bool] = True
    json_fields: ClassVar[tuple[str, ...]] = ("result", "lock", "shared")
    keeps_state: ClassVar[bool] = True

    stack: str
    environment: str | None = None
    reason: str = ""
    seconds: float = DEFAULT_SECONDS
    as_json: JsonOutput | None = None


@dataclass(frozen=True)
class UnlockRequest(Request):
    """`igor unlock`."""

    changes: ClassVar[bool] = False
    needs_cloud66: ClassVar[bool] = False  # the lock records name their stacks
    acts_on_a_stack: ClassVar[bool] = True  # chat may resolve it, for rules per environment
    json_fields: ClassVar[tuple[str, ...]] = ("result", "stack", "lock")
    keeps_state: ClassVar[bool] = True

    stack: str
    environment: str | None = None
    force: bool = False
    as_json: JsonOutput | None = None
    reason: str = ""  # why someone else's lock was forced: told to them, and on record

    @property
    def rule_name(self) -> str:
        """What chat rules must allow: forcing someone else's lock is a permission of its own."""
        return "unlock --force" if self.force else "unlock"


@dataclass(frozen=True)
class LocksRequest(Request):
    """`igor locks`."""

    changes: ClassVar[bool] = False
    needs_cloud66: ClassVar[bool] = False
    json_fields: ClassVar[tuple[str, ...]] = ("locks", "freezes", "store_reset")

    as_json: JsonOutput | None = None


# -- outcomes ------------------------------------------------------------------


class LockResult(Enum):
    """What `igor lock` came to."""

    TAKEN = "taken"
    EXTENDED = "extended"  # the holder locked again: new reason and expiry
    HELD = "held"  # someone else holds it


@dataclass(frozen=True)
class LockOutcome:
    """The lock taken, or the one in the way."""

    result: LockResult
    lock: Lock
    now: datetime
    # Whether the store is one others share (Redis): a local one holds back only the
    # igor of this machine, and the sentence must not promise more.
    shared: bool = True

    @property
    def exit_code(self) -> ExitCode:
        """Someone else's lock is a failure."""
        return ExitCode.FAILED if self.result is LockResult.HELD else ExitCode.OK


class UnlockResult(Enum):
    """What `igor unlock` came to."""

    RELEASED = "released"
    FORCED = "forced"  # someone else's, with --force: recorded, and the holder is named
    NOT_LOCKED = "not_locked"
    NOT_YOURS = "not_yours"


@dataclass(frozen=True)
class UnlockOutcome:
    """The lock released (or why not)."""

    result: UnlockResult
    stack: str  # the name asked for (or the lock's own label)
    lock: Lock | None = None
    now: datetime | None = None
    forced: ForcedUnlock | None = None  # FORCED, of a lock held in Slack: what they are told

    @property
    def exit_code(self) -> ExitCode:
        """Nothing unlocked is a failure."""
        done = (UnlockResult.RELEASED, UnlockResult.FORCED)
        return ExitCode.OK if self.result in done else ExitCode.FAILED


@dataclass(frozen=True)
class LockList:
    """The locks in force, soonest to expire first, and the freezes that hold now or start
    within a week, soonest first."""

    locks: list[Lock]
    now: datetime
    freezes: list[Window] = field(default_factory=list)
    reset: str = ""  # the store was reset: the locks shown are only those taken since
    exit_code = ExitCode.OK


# -- the actions ---------------------------------------------------------------


def _store(run: Run) -> Store:
    if run.env is None:
        raise UsageProblem("Locks need igor's environment (its state store).")
    store = run.env.state()
    # A store first used for a lock is marked now: if it comes back empty, the lock's
    # loss is noticed (state/continuity.py).
    run.env.continuity(store).generation()
    return store


def _now(run: Run) -> datetime:
    from igor_cli.config import now_utc

    return run.env.clock() if run.env is not None else now_utc()


def take_lock(
    store: Store, stack: Stack, holder: Origin, reason: str, seconds: float, now: datetime
) -> LockOutcome:
    """Lock a stack for `holder`, extend the holder's own lock, or say who holds it."""
    wanted = Lock(
        stack.uid, stack.name, stack.environment, holder.via, holder.user,
        reason.strip(), now, now + timedelta(seconds=seconds), holder.channel, holder.thread,
    )  # fmt: skip
    key, text = lock_key(stack.uid), wanted.dumps()
    for _ in range(_TRIES):
        if store.claim(key, text, seconds):
            return LockOutcome(LockResult.TAKEN, wanted, now)
        held_text = store.get(key)
        if held_text is None:
            continue  # released or expired since: claim again
        held = Lock.loads(held_text)
        if held is None or not held.held_by(holder):
            return LockOutcome(LockResult.HELD, held or wanted, now)
        extended = replace(wanted, started=held.started)
        if store.swap(key, held_text, extended.dumps(), seconds):
            return LockOutcome(LockResult.EXTENDED, extended, now)
    raise IgorError(f"The lock on {stack.label} kept changing; try again.")


@performs(LockRequest)
def _lock_action(run: Run, request: LockRequest) -> LockOutcome:
    from igor_cli.state import shared_store

    stack = find_stack(run.connect(), request.stack, request.environment, run.hints)
    store = _store(run)
    taken = take_lock(store, stack, run.origin, request.reason, request.seconds, _now(run))
    return replace(taken, shared=shared_store(store))


def _matching(store: Store, name: str, environment: str | None) -> list[tuple[Lock, str]]:
    wanted = name.strip().casefold()
    if not wanted:
        raise UsageProblem("The stack name is empty.", "Name a stack with -s.")
    env = (environment or "").casefold()
    return [
        (lock, text)
        for lock, text in current_locks(store).values()
        if lock.stack_name.casefold() == wanted and (not env or lock.environment.casefold() == env)
    ]


def release_lock(
    store: Store, request: UnlockRequest, origin: Origin, now: datetime
) -> UnlockOutcome:
    """Release the holder's lock, or with `force` anyone's (recorded in the store)."""
    found = _matching(store, request.stack, request.environment)
    if not found:
        where = f" in {request.environment}" if request.environment else ""
        return UnlockOutcome(UnlockResult.NOT_LOCKED, request.stack + where)
    if len(found) > 1:
        raise AmbiguousStack(found[0][0].stack_name, sorted(lock.environment for lock, _ in found))
    lock, text = found[0]
    mine = lock.held_by(origin)
    if not mine and not request.force:
        return UnlockOutcome(UnlockResult.NOT_YOURS, lock.label, lock, now)
    if not store.release(lock_key(lock.stack_uid), text):
        # Released, expired or changed since it was read: say what holds now.
        return release_lock(store, request, origin, now)
    if mine:
        return UnlockOutcome(UnlockResult.RELEASED, lock.label, lock, now)
    reason = request.reason.strip()
    record = {"event": "force-unlock", "by": {"via": origin.via, "user": origin.user},
              "lock": lock.facts(), "reason": reason}  # fmt: skip
    keep_on_record(store, record, now)
    forced = None
    if lock.holder_via == "slack":  # told in the thread they locked it in
        forced = ForcedUnlock(lock, origin.via, origin.user, reason, now)
        if origin.via != "slack":  # the bot tells them itself; anyone else leaves it a notice
            leave_notice(store, forced)
    return UnlockOutcome(UnlockResult.FORCED, lock.label, lock, now, forced)


@performs(UnlockRequest)
def _unlock_action(run: Run, request: UnlockRequest) -> UnlockOutcome:
    return release_lock(_store(run), request, run.origin, _now(run))


@performs(LocksRequest)
def _locks_action(run: Run, request: LocksRequest) -> LockList:
    from igor_cli.freeze import freezes_from_config

    store = _store(run)
    locks = [lock for lock, _ in current_locks(store).values()]
    locks.sort(key=lambda lock: (lock.expires, lock.label.casefold()))
    now = _now(run)
    windows: list[Window] = []
    reset = ""
    if run.env is not None:
        freezes = freezes_from_config(run.env.config(), str(run.env.config_path()))
        windows = sorted(
            (window for freeze in freezes for window in freeze.windows(now)),
            key=lambda window: (window.start, window.freeze.number),
        )
        reset = _reset_said(run.env, store)
    return LockList(locks, now, windows, reset)


def _reset_said(env: Environment, store: Store) -> str:
    """The store's reset in words ("" when it was not): the locks it held are gone."""
    from igor_cli.state.continuity import StoreWasReset

    try:
        env.continuity(store).check()
    except StoreWasReset as reset:
        return f"{reset.message} {reset.hint}"
    return ""
