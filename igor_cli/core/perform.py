"""Performing a request: its action, behind the guard every change passes.

The shell and the chat bridge both come through `perform`. Each request says
what answers it (`Request.act`); a change that is not a halt (`held_back`,
decided by its class) is checked first against the locks and freezes in force
(`guard_change`), with the environment that holds them: `perform` cannot run
without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from igor_cli.core.request import Change, Outcome, Request, held_back
from igor_cli.core.run import Run
from igor_cli.errors import AuditLost, IgorError, UsageProblem

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import StackHints
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Stack
    from igor_cli.config import Environment
    from igor_cli.freeze import Window
    from igor_cli.identity import Origin


def perform(
    env: Environment,
    connect: Callable[[], Cloud66Client],
    request: Request,
    origin: Origin,
    hints: StackHints | None = None,
    target: Stack | None = None,
) -> Outcome:
    """Run one request; the shell and the chat bridge both come through here.

    `env` holds what the guard reads (the state store, the config); `connect` is
    called only by actions that need Cloud 66; `hints` (the completion cache)
    saves listing every stack to find one; `target` is the stack the request acts on
    when the caller has just resolved it for this request (read from Cloud 66 on this
    request's turn: an action does not ask again).
    """
    if isinstance(request, Change) and target is None:  # its stack and reads, at once
        from igor_cli.core.resolve import looking_ahead

        with looking_ahead(connect, request, origin, hints, request.stack_lock(env)) as looked:
            return _perform(Run(env, looked, origin, hints), request)
    return _perform(Run(env, connect, origin, hints, target), request)


def _perform(run: Run, request: Request) -> Outcome:
    if held_back(request):
        run = guard_change(run, request)  # every change passes here, whatever its command
        if not request.dry_run:
            remember_reference(run.env, run.origin)  # before the POST: this deployment is igor's
    from igor_cli.cloud66 import READS_ONLY

    reading = READS_ONLY.set("" if isinstance(request, Change) else type(request).__name__)
    try:
        outcome = request.act(run)
    finally:
        READS_ONLY.reset(reading)
    if not isinstance(outcome, Outcome):
        raise TypeError(f"the action of {type(request).__name__} returned no Outcome")
    if run.glass is not None and isinstance(request, Change) and outcome.posted:
        _record_broken_glass(run, request)  # when the change is made, not when it is asked
    return outcome


def remember_reference(env: Environment, origin: Origin) -> None:
    """Keep the `user_reference` igor is about to post with in the state store: a
    deployment counts as igor's (not as one that bypassed a lock) only when it is known
    there (chat/bypass.py), whatever reference someone else gives theirs."""
    from igor_cli.state.posts import remember_post

    store = env.state_or_none()
    if store is not None:
        remember_post(store, origin.user_reference)


def _record_broken_glass(run: Run, request: Change) -> None:
    """A change made during a freeze with --break-glass, on record in the state store."""
    import logging

    from igor_cli.state.audit import keep_on_record

    env, stack, window = run.env, run.target, run.glass
    if stack is None or window is None:
        return
    origin = run.origin
    try:
        store = env.state_or_none()
        if store is not None:
            keep_on_record(
                store,
                {"event": "break-glass", "by": origin.person.facts(),
                 "stack": stack.named(),
                 "reason": request.reason.strip(), "freeze": window.describe()},
                env.clock(),
            )  # fmt: skip
    except IgorError as error:  # the change is made: say it, but do not hide that it was
        logging.getLogger("igor").warning(
            "The glass of a freeze was broken on %s, but that could not be recorded: %s",
            stack.label, error.message,
        )  # fmt: skip


def guard_change(run: Run, request: Change) -> Run:
    """Refuse a change to a stack someone else has locked (`StackLocked`) or that a freeze
    window holds (`StackFrozen`, unless the glass is broken); otherwise the run, with
    the stack it changes resolved when that had to be looked up.

    With no lock and no freeze now, nothing more is asked of Cloud 66.
    """
    from igor_cli.core.resolve import find_stack
    from igor_cli.freeze import any_freeze_now, freezes_from_config

    audit_problem = run.env.audit_problem() if run.env.audit_problem is not None else ""
    if audit_problem:  # `[audit] required`: no change without its line on record
        raise AuditLost(audit_problem)
    locks = _locks(run.env)
    freezes = freezes_from_config(run.env.config(), str(run.env.config_path()))
    now = run.env.clock()
    if not locks and not any_freeze_now(freezes, now):
        return run
    stack = run.target or find_stack(run.connect(), request.stack, request.environment, run.hints)
    refuse_if_locked(run.env, stack, run.origin, locks)
    glass = _refuse_if_frozen(run.env, stack, run.origin, request, freezes)
    return dataclasses.replace(run, target=stack, glass=glass)


def _refuse_if_frozen(
    env: Environment, stack: Stack, origin: Origin, request: Change, freezes: list[Any]
) -> Window | None:
    """`StackFrozen` during a freeze, unless someone it names breaks the glass: then the
    freeze's window (the change is recorded when it is made, by `perform`)."""
    from igor_cli.freeze import StackFrozen, freeze_in_the_way
    from igor_cli.state.store import StateUnavailable

    now = env.clock()
    window = freeze_in_the_way(freezes, stack.name, stack.environment, now)
    if window is None:
        return None
    allowed = window.freeze.may_break(origin.person)
    if not request.break_glass:
        hint = (
            "You may override it with --break-glass --reason TEXT (it is recorded)."
            if allowed
            else "Wait until it ends, or ask someone it lets break the glass."
        )
        raise StackFrozen(stack.label, window, hint)
    if not allowed:
        raise StackFrozen(
            stack.label, window, "You are not among those this freeze lets break the glass."
        )
    if not request.reason.strip():
        raise UsageProblem("--break-glass needs --reason TEXT: say why, for the record.")
    if request.dry_run:  # a dry run posts nothing: nothing to keep on record
        return window
    try:  # broken glass is kept on record when the change is made, or the glass stays whole
        env.state()
    except StateUnavailable as error:
        raise StateUnavailable(
            f"{error.message} Breaking the glass is kept on record there, so the freeze "
            "holds; nothing was posted.",
            error.hint,
        ) from None
    return window


def refuse_if_locked(
    env: Environment, stack: Stack, origin: Origin, locks: dict[str, Any] | None = None
) -> None:
    """`StackLocked` when someone other than `origin` holds this stack's lock;
    `LockUnreadable` when its lock's record cannot be read."""
    from igor_cli.state.locks import LockUnreadable, StackLocked

    held = (_locks(env) if locks is None else locks).get(stack.uid)
    if held is not None and held[0] is None:
        raise LockUnreadable(stack.label, stack.uid)
    if held is not None and not held[0].held_by(origin.person):
        raise StackLocked(held[0], env.clock())


def _locks(env: Environment) -> dict[str, Any]:
    from igor_cli.state.locks import guarding_locks
    from igor_cli.state.store import StateUnavailable, refusing_changes

    try:
        # A store that cannot be read, or that lost what it held, stops the change.
        store = env.state_for_change()
        return dict(guarding_locks(store)) if store is not None else {}
    except StateUnavailable as error:
        raise refusing_changes(error) from None
