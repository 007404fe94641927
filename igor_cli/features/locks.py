"""Human deploy locks: `igor lock`, `igor unlock`, `igor locks`.

A lock is a record in the state store (`igor_cli/state/locks.py`) under
`lock:<stack uid>`, kept for as long as it lasts (4 hours unless told), so an
expired lock vanishes by itself. Taking one is a claim (`SET NX PX`, or one SQL
statement); extending or releasing it is a compare-and-set or compare-and-delete
on the record that was read, so two people racing for one stack cannot both hold
it. While a stack is locked, a change (a `Change`) by anyone but the
holder is refused before anything is posted (`core.perform.guard_change`, which
every change passes); a request that only stops a change (a `Halt`, e.g. cancel)
goes through. Locking and unlocking are `Bookkeeping`: they change igor's records,
not a stack, so chat asks no question before them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer

from igor_cli.cli import EnvironmentName, Json, Reason, StackName, command
from igor_cli.core.request import Bookkeeping, OnAStack, Outcome, Read
from igor_cli.errors import AmbiguousStack, ExitCode, IgorError, UsageProblem

if TYPE_CHECKING:
    from igor_cli.cloud66.models import Stack
    from igor_cli.config import Environment
    from igor_cli.core.run import Run
    from igor_cli.freeze import Window
    from igor_cli.identity import Origin
    from igor_cli.render.said import Said, Words
    from igor_cli.state import Store
    from igor_cli.state.locks import ForcedUnlock, Lock

COMMANDS = {"lock": (), "unlock": (), "locks": ()}

DEFAULT_SECONDS = 4 * 3600.0
LONGEST_SECONDS = 14 * 86400.0
_TRIES = 5  # a lock that changes under us this often is a lock someone else holds

# -- how long ------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(value: str | float) -> float:
    """`2h`, `90m`, `1h30m`, `1d`, `45s` -> seconds (1 second to 14 days)."""
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


# -- the commands --------------------------------------------------------------

LockFor = Annotated[
    float,
    typer.Option(
        "--for", metavar="DURATION", parser=parse_duration, show_default=False,
        help="How long the lock lasts, e.g. 30m, 2h, 1d (default 4h); then it vanishes.",
    ),
]  # fmt: skip
Force = Annotated[
    bool,
    typer.Option(
        "--force", help="Unlock someone else's lock (recorded; a holder in Slack is told there)."
    ),
]


@command(
    "lock",
    chat=True,
    examples=("igor lock shop -e production --reason 'release 4.2' --for 2h", "igor locks"),
)
def lock_command(
    stack: StackName,
    environment: EnvironmentName = None,
    reason: Reason = "",
    for_: LockFor = 4 * 3600.0,
    as_json: Json = None,
) -> LockRequest:
    """Lock a stack: until you unlock it or the lock expires, only you can deploy it.

    Everyone else's changes to it (deploy, and every command that changes a
    stack) are refused, naming you, the reason and the expiry; anyone may still
    cancel. Locking it again extends it.
    """
    return LockRequest(
        stack=stack, environment=environment, reason=reason, seconds=for_, as_json=as_json
    )


@command(
    "unlock",
    chat=True,
    examples=(
        "igor unlock shop -e production",
        "igor unlock shop -e production --force --reason 'hotfix waiting'",
    ),
)
def unlock_command(
    stack: StackName,
    environment: EnvironmentName = None,
    force: Force = False,
    reason: Reason = "",
    as_json: Json = None,
) -> UnlockRequest:
    """Release your lock on a stack (--force: someone else's)."""
    return UnlockRequest(
        stack=stack, environment=environment, force=force, reason=reason, as_json=as_json
    )


@command("locks", chat=True, examples=("igor locks", "igor locks --json"))
def locks_command(as_json: Json = None) -> LocksRequest:
    """Show the locks in force: who holds which stack, why, and until when."""
    return LocksRequest(as_json=as_json)


# -- requests ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LockRequest(Bookkeeping, OnAStack):
    """`igor lock`."""

    needs_cloud66: ClassVar[bool] = True  # the stack is resolved, so a typo locks nothing
    json_fields: ClassVar[tuple[str, ...]] = ("result", "lock", "shared")

    reason: str = ""
    seconds: float = DEFAULT_SECONDS

    def act(self, run: Run) -> LockOutcome:
        """Lock the stack, extend your lock, or say whose is in the way."""
        from igor_cli.core.resolve import find_stack
        from igor_cli.state import shared_store

        stack = find_stack(run.connect(), self.stack, self.environment, run.hints)
        store = _store(run)
        taken = take_lock(store, stack, run.origin, self.reason, self.seconds, run.env.clock())
        return replace(taken, shared=shared_store(store))


@dataclass(frozen=True, kw_only=True)
class UnlockRequest(Bookkeeping, OnAStack):
    """`igor unlock` (chat may resolve its stack, for rules per environment)."""

    needs_cloud66: ClassVar[bool] = False  # the lock records name their stacks
    json_fields: ClassVar[tuple[str, ...]] = ("result", "stack", "lock")

    force: bool = False
    reason: str = ""  # why someone else's lock was forced: told to them, and on record

    def rule_name(self, command: str) -> str:
        """What chat rules must allow: forcing someone else's lock is a permission of its own."""
        return "unlock --force" if self.force else "unlock"

    def act(self, run: Run) -> UnlockOutcome:
        """Release your lock (with --force anyone's, on record)."""
        return release_lock(_store(run), self, run.origin, run.env.clock())


@dataclass(frozen=True, kw_only=True)
class LocksRequest(Read):
    """`igor locks`."""

    needs_cloud66: ClassVar[bool] = False
    json_fields: ClassVar[tuple[str, ...]] = ("locks", "unreadable", "freezes", "store_reset")

    def act(self, run: Run) -> LockList:
        """The locks in force, and the freezes now or within a week."""
        from igor_cli.freeze import freezes_from_config
        from igor_cli.state.locks import current_locks, unreadable_locks

        store = _store(run)
        locks = [lock for lock, _ in current_locks(store).values()]
        locks.sort(key=lambda lock: (lock.expires, lock.label.casefold()))
        now = run.env.clock()
        freezes = freezes_from_config(run.env.config(), str(run.env.config_path()))
        windows = sorted(
            (window for freeze in freezes for window in freeze.windows(now)),
            key=lambda window: (window.start, window.freeze.number),
        )
        return LockList(locks, now, windows, _reset_said(run.env, store), unreadable_locks(store))


# -- outcomes ------------------------------------------------------------------


class LockResult(Enum):
    """What `igor lock` came to."""

    TAKEN = "taken"
    EXTENDED = "extended"  # the holder locked again: new reason and expiry
    HELD = "held"  # someone else holds it


@dataclass(frozen=True)
class LockOutcome(Outcome):
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

    def said(self, now: datetime) -> Said:
        """The lock taken or extended, and whom it holds back; or whose is in the way."""
        from igor_cli.render.said import Said, joined

        lock = self.lock
        if self.result is LockResult.HELD:
            return Said(
                joined(f"{lock.label} is already locked by ", lock.holder,
                       f" {lock.until(self.now)}{_why(lock)}. Nothing was changed."),
                tone="refused",
            )  # fmt: skip
        verb = "Locked" if self.result is LockResult.TAKEN else "Extended the lock on"
        held = (
            "Others' changes to it are refused until then."
            if self.shared
            else "Until then, others' changes to it through igor on this machine are refused; "
            "igor elsewhere does not see this lock (it is kept in a file here: a store the "
            "team shares is set with IGOR_STATE_URL)."
        )
        said = joined(
            f"{verb} {lock.label} for ", lock.holder, f" {lock.until(self.now)}{_why(lock)}. ",
            held,
        )  # fmt: skip
        return Said(said, tone="locked")

    def facts(self) -> Any:
        """The lock, as igor's JSON has it."""
        return {"result": self.result.value, "lock": self.lock.facts(), "shared": self.shared}


class UnlockResult(Enum):
    """What `igor unlock` came to."""

    RELEASED = "released"
    FORCED = "forced"  # someone else's, with --force: recorded, and the holder is named
    NOT_LOCKED = "not_locked"
    NOT_YOURS = "not_yours"


@dataclass(frozen=True)
class UnlockOutcome(Outcome):
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

    def said(self, now: datetime) -> Said:
        """The lock released (a forced one: whose, and that they are told), or why not; how
        to force someone else's."""
        from igor_cli.render.said import Hint, Said

        if self.result in (UnlockResult.RELEASED, UnlockResult.FORCED):
            return Said(self._sentence(now), tone="unlocked")
        if self.result is UnlockResult.NOT_YOURS:
            force = Hint(
                "Add --force to unlock it anyway; the forced unlock is recorded.",
                "Add `--force` to unlock it anyway, where the rules allow it; it is recorded.",
            )
            return Said(self._sentence(now), None, (force,), "refused")
        return Said(self._sentence(now), tone="refused")

    def _sentence(self, now: datetime) -> Words:
        from igor_cli.render.said import joined
        from igor_cli.render.sentences import ago

        lock, when = self.lock, self.now or now
        if self.result is UnlockResult.FORCED and lock is None:
            return (
                f"Unlocked the stack with uid {self.stack}, held by a lock record igor could "
                "not read. The forced unlock is on record."
            )
        if self.result is UnlockResult.NOT_YOURS and lock is None:
            return (
                f"The stack with uid {self.stack} is held by a lock record igor cannot read: "
                "nobody can be shown to hold it. Nothing was unlocked."
            )
        if self.result is UnlockResult.NOT_LOCKED or lock is None:
            return f"{self.stack} is not locked; nothing to unlock."
        if self.result is UnlockResult.NOT_YOURS:
            return joined(
                f"{lock.label} is locked by ", lock.holder, ", not by you, ",
                f"{lock.until(when)}{_why(lock)}. Nothing was unlocked.",
            )  # fmt: skip
        if self.result is UnlockResult.FORCED:
            told = ""
            if self.forced is not None:  # the bot tells them; from elsewhere, a notice waits
                told = (
                    " They are told in Slack."
                    if self.forced.told_now
                    else " `igor serve` tells them in Slack (the notice waits a day for it)."
                )
            return joined(
                f"Unlocked {lock.label}, which ", lock.holder, " held since ",
                f"{ago(lock.started, when)}{_why(lock)}. The forced unlock is on record.{told}",
            )  # fmt: skip
        return f"Unlocked {lock.label}."

    def facts(self) -> Any:
        """What was unlocked, as igor's JSON has it."""
        return {
            "result": self.result.value,
            "stack": self.stack,
            "lock": self.lock.facts() if self.lock else None,
        }


@dataclass(frozen=True)
class LockList(Outcome):
    """The locks in force, soonest to expire first, and the freezes that hold now or start
    within a week, soonest first."""

    locks: list[Lock]
    now: datetime
    freezes: list[Window] = field(default_factory=list)
    reset: str = ""  # the store was reset: the locks shown are only those taken since
    # Stacks (by uid) held by a lock record igor cannot read: they hold all the same.
    unreadable: list[str] = field(default_factory=list)

    def said(self, now: datetime) -> Said:
        """How many locks, one a line, then the freezes (after a reset of the store, that
        first: the locks it held are gone)."""
        from igor_cli.render.said import Said, joined
        from igor_cli.state.locks import unreadable_hint

        count = len(self.locks) + len(self.unreadable)
        lines: list[Words] = [self.reset] if self.reset else []
        lines.append(
            f"{count} lock{'s' if count != 1 else ''} in force:" if count else "No stack is locked."
        )
        lines += [lock_line(lock, self.now) for lock in self.locks]
        lines += [
            f"The stack with uid {uid}: held by a lock igor cannot read (its record is damaged, "
            f"or not igor's). {unreadable_hint(uid)}"
            for uid in self.unreadable
        ]
        lines += [freeze_line(window, self.now) for window in self.freezes]
        said: Words = ""
        for i, line in enumerate(lines):
            said = joined(said, "\n" if i else "", line)
        return Said(said, tone="refused" if self.reset else "plain")

    def facts(self) -> Any:
        """The locks, the store's reset and the freezes, as igor's JSON has them."""
        from igor_cli.state.locks import lock_key

        return {
            "locks": [lock.facts() for lock in self.locks],
            "unreadable": [
                {"stack": {"uid": uid}, "key": lock_key(uid)} for uid in self.unreadable
            ],
            "store_reset": self.reset or None,
            "freezes": [
                {"environments": sorted(w.freeze.environments),
                 "stacks": sorted(w.freeze.stacks) if w.freeze.stacks is not None else None,
                 "message": w.freeze.message, "starts_at": w.start.isoformat(),
                 "ends_at": w.end.isoformat(), "now": w.start <= self.now}
                for w in self.freezes
            ],
        }  # fmt: skip


def _why(lock: Lock) -> str:
    return f": {lock.reason}" if lock.reason else " (no reason given)"


def lock_line(lock: Lock, now: datetime) -> Words:
    """`shop (production): locked by alice@laptop 5 minutes ago, until ... : release 4.2`."""
    from igor_cli.render.said import joined
    from igor_cli.render.sentences import ago

    return joined(
        f"{lock.label}: locked by ", lock.holder, f" {ago(lock.started, now)}, ",
        f"{lock.until(now)}{_why(lock)}",
    )  # fmt: skip


def freeze_line(window: Window, now: datetime) -> str:
    """`Frozen now: production: "Weekend" (Fri ... to Mon ...)`, or `Next freeze: ...`."""
    return ("Frozen now: " if window.start <= now else "Next freeze: ") + window.describe()


# -- the actions ---------------------------------------------------------------


def _store(run: Run) -> Store:
    store = run.env.state()
    # A store first used for a lock is marked now: if it comes back empty, the lock's
    # loss is noticed (state/continuity.py).
    run.env.continuity(store).generation()
    return store


def take_lock(
    store: Store, stack: Stack, holder: Origin, reason: str, seconds: float, now: datetime
) -> LockOutcome:
    """Lock a stack for `holder`, extend the holder's own lock, or say who holds it."""
    from igor_cli.state.locks import Lock, LockUnreadable, lock_key

    wanted = Lock(
        stack.uid, stack.name, stack.environment, holder.person,
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
        if held is None:  # held all the same (a guard fails closed): not by whoever asks
            raise LockUnreadable(stack.label, stack.uid, "Nothing was changed.")
        if not held.held_by(holder.person):
            return LockOutcome(LockResult.HELD, held, now)
        extended = replace(wanted, started=held.started)
        if store.swap(key, held_text, extended.dumps(), seconds):
            return LockOutcome(LockResult.EXTENDED, extended, now)
    raise IgorError(f"The lock on {stack.label} kept changing; try again.")


def _matching(store: Store, name: str, environment: str | None) -> list[tuple[Lock, str]]:
    from igor_cli.state.locks import current_locks

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
    from igor_cli.state.audit import keep_on_record
    from igor_cli.state.locks import ForcedUnlock, leave_notice, lock_key

    found = _matching(store, request.stack, request.environment)
    if not found:
        damaged = _unreadable(store, request.stack)
        if damaged is not None:
            return _release_unreadable(store, request, origin, now, damaged)
        where = f" in {request.environment}" if request.environment else ""
        return UnlockOutcome(UnlockResult.NOT_LOCKED, request.stack + where)
    if len(found) > 1:
        raise AmbiguousStack(found[0][0].stack_name, sorted(lock.environment for lock, _ in found))
    lock, text = found[0]
    mine = lock.held_by(origin.person)
    if not mine and not request.force:
        return UnlockOutcome(UnlockResult.NOT_YOURS, lock.label, lock, now)
    if not store.release(lock_key(lock.stack_uid), text):
        # Released, expired or changed since it was read: say what holds now.
        return release_lock(store, request, origin, now)
    if mine:
        return UnlockOutcome(UnlockResult.RELEASED, lock.label, lock, now)
    reason = request.reason.strip()
    record = {"event": "force-unlock", "by": origin.person.facts(),
              "lock": lock.facts(), "reason": reason}  # fmt: skip
    keep_on_record(store, record, now)
    forced = None
    if lock.holder.told_later:  # told in the thread they locked it in
        forced = ForcedUnlock(lock, origin.person, reason, now)
        if not forced.told_now:  # the bot answering tells them; anyone else leaves a notice
            leave_notice(store, forced)
    return UnlockOutcome(UnlockResult.FORCED, lock.label, lock, now, forced)


def _unreadable(store: Store, uid: str) -> str | None:
    """The stored text of a lock record igor cannot read on the stack with this uid (what
    `igor locks` and a refused change name it by), if there is one."""
    from igor_cli.state.locks import guarding_locks

    found = guarding_locks(store).get(uid.strip())
    return found[1] if found is not None and found[0] is None else None


def _release_unreadable(
    store: Store, request: UnlockRequest, origin: Origin, now: datetime, text: str
) -> UnlockOutcome:
    """A lock record igor cannot read ends only by --force (nobody can be shown to hold
    it), on record; compare-and-delete, so a lock taken meanwhile stays."""
    from igor_cli.state.audit import keep_on_record
    from igor_cli.state.locks import lock_key

    uid = request.stack.strip()
    if not request.force:
        return UnlockOutcome(UnlockResult.NOT_YOURS, uid)
    if not store.release(lock_key(uid), text):
        return release_lock(store, request, origin, now)  # changed since: what holds now
    record = {"event": "force-unlock", "by": origin.person.facts(),
              "lock": {"stack": {"uid": uid}, "unreadable": True},
              "reason": request.reason.strip()}  # fmt: skip
    keep_on_record(store, record, now)
    return UnlockOutcome(UnlockResult.FORCED, uid)


def _reset_said(env: Environment, store: Store) -> str:
    """The store's reset in words ("" when it was not): the locks it held are gone."""
    from igor_cli.state.continuity import StoreWasReset

    try:
        env.continuity(store).check()
    except StoreWasReset as reset:
        return f"{reset.message} {reset.hint}"
    return ""
