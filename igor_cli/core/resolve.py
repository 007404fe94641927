"""Finding the stack a command names: by its exact name (any case), narrowed by its
environment, from the completion cache when it knows the uid, else from the listing.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from igor_cli.errors import (
    AmbiguousStack,
    NotFound,
    ServicesNeedDocker,
    StackNotFound,
    UnknownService,
    UsageProblem,
)

if TYPE_CHECKING:
    from igor_cli.cloud66.activity import StackHints
    from igor_cli.cloud66.client import Cloud66Client
    from igor_cli.cloud66.models import Stack
    from igor_cli.core.request import Change, StackLock
    from igor_cli.identity import Origin


def resolve_stack(stacks: Sequence[Stack], name: str, environment: str | None) -> Stack:
    """The one stack with this exact name (any case), narrowed by environment."""
    wanted = name.strip().casefold()
    if not wanted:
        raise UsageProblem("The stack name is empty.", "Name a stack with -s.")
    named = [s for s in stacks if s.name.casefold() == wanted]
    if environment:
        in_env = [s for s in named if s.environment.casefold() == environment.casefold()]
        if not in_env and named:
            have = ", ".join(sorted({s.environment for s in named}))
            raise StackNotFound(
                name,
                environment,
                [],
                f"Stack {name!r} has no {environment!r} environment; it is in: {have}.",
            )
        named = in_env
    if len(named) == 1:
        return named[0]
    if named:
        raise AmbiguousStack(named[0].name, sorted(s.environment for s in named))
    where = f" in {environment!r}" if environment else ""
    raise StackNotFound(
        name, environment, _close_names(stacks, name), f"No stack named {name!r}{where}."
    )


def _close_names(stacks: Sequence[Stack], name: str) -> list[str]:
    names = sorted({s.name for s in stacks})
    by_fold = {n.casefold(): n for n in names}
    wanted = name.casefold()
    close = difflib.get_close_matches(wanted, list(by_fold), n=3, cutoff=0.6)
    contains = [n for f, n in by_fold.items() if wanted in f and f not in close]
    return ([by_fold[c] for c in close] + contains)[:3]


def split_services(values: Sequence[str]) -> tuple[str, ...]:
    """`-v web -v worker:1.2,api` -> ("web", "worker:1.2", "api"), without blanks or repeats."""
    seen: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            if part.strip():
                seen[part.strip()] = None
    return tuple(seen)


def find_stack(
    client: Cloud66Client, name: str, environment: str | None, hints: StackHints | None = None
) -> Stack:
    """The one stack with this exact name (any case), narrowed by environment.

    A uid the cache already knows is confirmed with one `GET /stacks/{uid}`; the
    whole listing (every page) is read only when the cache has no single answer
    or its answer turns out wrong.
    """
    if hints is not None and name.strip():
        uids = hints.uids(name.strip(), environment)
        if len(uids) == 1:
            try:
                stack = client.stack(uids[0])
            except NotFound:
                stack = None  # deleted or renamed since: the listing will say
            if stack is not None and _is(stack, name, environment):
                return stack
    return resolve_stack(client.stacks(), name, environment)


@contextmanager
def looking_ahead(
    connect: Callable[[], Cloud66Client],
    request: Change,
    origin: Origin,
    hints: StackHints | None,
    hold: StackLock | None,
) -> Iterator[Callable[[], Cloud66Client]]:
    """How a change reaches Cloud 66 while it resolves its stack and acts.

    For a change that `looks_ahead` (deploy, cancel) on a stack the completion cache names
    once: that stack held (`hold`, its lock, for a change that holds it: no other change
    to it between these reads and its own), then its record read at once with what the
    change reads before it decides: one round trip where `find_stack` and those reads took
    two, the stack held until the block ends. Otherwise, or when the record is not the
    stack asked for (renamed, deleted), `connect` as it is, holding nothing: the change
    resolves its stack, and holds it, as usual.
    """
    name = request.stack.strip()
    uids = hints.uids(name, request.environment) if request.looks_ahead and hints and name else []
    if len(uids) != 1:
        yield connect
        return
    with ExitStack() as held:
        if hold is not None:
            held.enter_context(hold(uids[0]))
        looked = request.look(connect(), uids[0], origin)
        if looked is not None and _is(looked.stack(uids[0]), name, request.environment):
            yield lambda: looked
            return
    yield connect


def _is(stack: Stack, name: str, environment: str | None) -> bool:
    same_name = stack.name.casefold() == name.strip().casefold()
    return same_name and (not environment or stack.environment.casefold() == environment.casefold())


def check_services(client: Cloud66Client, stack: Stack, services: Sequence[str]) -> None:
    """Refuse services on a classic stack, and services the stack does not have."""
    if not services:
        return
    if not stack.is_docker:
        # Checked before the services are read: Cloud 66 deploys services of docker stacks only.
        raise ServicesNeedDocker(stack.label)
    available = [s.name for s in client.services(stack.uid)]
    by_fold = {a.casefold() for a in available}
    unknown = [s for s in services if s.split(":", 1)[0].casefold() not in by_fold]
    if unknown:
        raise UnknownService(stack.label, unknown, available)


def stack_words(stack: Stack) -> str:
    """`-s shop -e production`, quoted for a shell."""
    import shlex

    env = f" -e {shlex.quote(stack.environment)}" if stack.environment else ""
    return f"-s {shlex.quote(stack.name)}{env}"
