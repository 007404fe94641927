"""How many Cloud 66 requests each command costs, against stacks with short and long
histories, in both list orders (issue 20's table; tests/test_request_cost.py bounds them).

    python -m benchmarks.command_cost            # 45 and 3,000 past deployments
    python -m benchmarks.command_cost 45 300     # other lengths

Each command runs in process against the simulator, twice: with an empty cache and
state (a first run, or a restarted bot) and again with what the first run left
(what a user pays every day). Following commands count their polls too (two: a
deployment lasts 6 s here, and ends between them).

The cases are every command's own examples (`command(examples=...)`, its help's
lines), run with the stacks idle, and the few named below that need the stacks in
another state (busy, locked, ...): a command added with its examples is measured
without being listed here.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from igor_cli.config import Environment
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from igor_cli.terminal import main
from tests.fakes.clock import FakeClock

ORDERS = ("newest", "oldest")
SHOP = ("-s", "shop", "-e", "production")


def account(past: int) -> list[dict[str, Any]]:
    """shop in production and staging (classic, one repository), blog (classic), api
    (docker): the sample account's stacks that the commands' examples name."""
    repo = "git@github.com:example/shop.git"
    return [
        {"name": "shop", "environment": "production", "git": repo, "git_branch": "main",
         "history": [{"count": past, "via": "api"}]},
        {"name": "shop", "environment": "staging", "git": repo, "git_branch": "develop",
         "history": [{"count": past}]},
        {"name": "blog", "environment": "production", "framework": "rack",
         "history": [{"count": past}]},
        {"name": "api", "environment": "production", "framework": "docker",
         "services": ["web", "worker"], "history": [{"count": past}]},
    ]  # fmt: skip


def run(clock: FakeClock, *args: str) -> int:
    """One igor command, in process, on the simulated clock (its output thrown away)."""
    from typer.testing import CliRunner

    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    with CliRunner().isolation():
        return main(list(args), env)


def _idle(sim: Simulator, clock: FakeClock) -> str:
    clock.advance(3600)  # whatever ran has ended
    return ""


def _foreign(sim: Simulator, clock: FakeClock) -> str:
    _idle(sim, clock)
    return str(sim.start_foreign_deployment("shop", "production"))


def _over(sim: Simulator, clock: FakeClock) -> str:
    over = _foreign(sim, clock)
    clock.advance(sim.deploy_seconds + 1)
    return over


def _igor_running(sim: Simulator, clock: FakeClock) -> str:
    _idle(sim, clock)
    run(clock, "deploy", *SHOP)
    clock.advance(sim.deploy_seconds - 1)  # the first look sees it run, the second its end
    return ""


def _igor_deployed_tags_twice(sim: Simulator, clock: FakeClock) -> str:
    _idle(sim, clock)
    for tags in ("web:1.5,worker:1.5", "web:1.6"):
        run(clock, "deploy", "-s", "api", "-v", tags)
        clock.advance(sim.deploy_seconds + 60)  # over, and apart
    return ""


def _unlocked(sim: Simulator, clock: FakeClock) -> str:
    _idle(sim, clock)
    run(clock, "unlock", *SHOP)
    return ""


def _locked(sim: Simulator, clock: FakeClock) -> str:
    _idle(sim, clock)
    run(clock, "lock", *SHOP, "--for", "1h")
    return ""


# What the stacks are doing when the command runs; the id of a deployment it made, if any.
Prepare = Callable[[Simulator, FakeClock], str]
Case = tuple[str, Prepare, tuple[str, ...]]  # (its name, the stacks' state, the words)

# The cases an example cannot show: the stacks in another state than idle, or what no
# example does (a rollback that posts). `MADE` is the deployment the state made.
NAMED: list[Case] = [
    ("deploy (busy)", _foreign, ("deploy", *SHOP)),
    ("cancel (running)", _foreign, ("cancel", *SHOP)),
    ("cancel --id (over)", _over, ("cancel", *SHOP, "--id", "MADE")),
    ("watch (running)", _igor_running, ("watch", *SHOP)),
    ("rollback", _idle, ("rollback", *SHOP)),
    ("rollback (docker)", _igor_deployed_tags_twice, ("rollback", "-s", "api")),
    ("lock (unlocked)", _unlocked, ("lock", *SHOP, "--for", "1h")),
    ("unlock (locked)", _locked, ("unlock", *SHOP)),
    ("restart (busy)", _foreign, ("restart", *SHOP)),
]

_SHELL = (">", "<", "|", "&", ";", "2>")  # what a shell does around a command line


def example_words(name: str) -> list[tuple[str, ...]]:
    """The words igor is given by each of `igor NAME`'s examples that runs it (not another
    command its help also shows): without a pipe before it, a redirection or a comment
    after it, or `--sandbox` (here igor is pointed at a simulator already)."""
    from igor_cli import cli

    info = cli.commands()[name]
    found: list[tuple[str, ...]] = []
    for line in info.examples:
        words = shlex.split(line, comments=True)
        if "igor" not in words:
            continue
        words = words[len(words) - words[::-1].index("igor") :]
        ends = [n for n, word in enumerate(words) if word.startswith(_SHELL)]
        words = [w for w in words[: min(ends, default=len(words))] if w != "--sandbox"]
        if words and words[0] in (info.name, *info.aliases):
            found.append(tuple(words))
    return list(dict.fromkeys(found))


def examples() -> list[Case]:
    """Every example of every command that talks to Cloud 66, the stacks idle."""
    from igor_cli import cli
    from igor_cli.core.request import Request

    cases: list[Case] = []
    for name in cli.commands():
        for words in example_words(name):
            try:
                request = cli.parse(list(words)).request
            except cli.HelpRequested:
                continue  # `igor help deploy`: help text, no request
            except cli.UsageError as problem:
                raise ValueError(f"`igor {' '.join(words)}`, an example: {problem}") from None
            if isinstance(request, Request) and request.needs_cloud66:
                cases.append((shlex.join(words), _idle, words))
    return cases


# Every case: the commands' examples, then the named states.
COMMANDS: list[Case] = examples() + NAMED


@contextlib.contextmanager
def _home(url: str) -> Iterator[None]:
    """A fresh cache, config and state store, and this API, for as long as it lasts."""
    names = ("IGOR_CACHE_DIR", "IGOR_CONFIG", "IGOR_STATE_URL", "IGOR_API_URL",
             "IGOR_CLOUD66_TOKEN")  # fmt: skip
    before = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="igor-cost-") as home:
        os.environ.update(
            IGOR_CACHE_DIR=os.path.join(home, "cache"),
            IGOR_CONFIG=os.path.join(home, "config.toml"),
            IGOR_STATE_URL="sqlite://" + os.path.join(home, "state.db"),
            IGOR_API_URL=url,
            IGOR_CLOUD66_TOKEN=SANDBOX_TOKEN,
        )
        try:
            yield
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def cost(sim: Simulator, clock: FakeClock, name: str) -> tuple[int, int, int]:
    """(requests with an empty cache and state, with what that run left, its exit code)."""
    _, prepare, words = next(c for c in COMMANDS if c[0] == name)
    counts = []
    code = 0
    with _home(sim.url):
        for _ in range(2):
            sim.reset()
            clock.advance(1)
            made = prepare(sim, clock)
            sim.reset_requests()
            code = run(clock, *(made if w == "MADE" else w for w in words))
            counts.append(len(sim.requests))
    return counts[0], counts[1], code


def simulator(past: int, order: str, clock: FakeClock) -> Simulator:
    """The account, its lists in `order`; a deployment (or a stack action) lasts 6 s, so
    that following one costs two looks (the first sees it run, the second its end)."""
    return Simulator(
        clock=clock, stacks=account(past), order=order, deploy_seconds=6.0, action_seconds=6.0
    )


def measure(past: int, order: str) -> dict[str, tuple[int, int, int]]:
    """{command: (requests cold, requests warm, exit code)} for every command."""
    clock = FakeClock()
    with simulator(past, order, clock) as sim:
        return {name: cost(sim, clock, name) for name, _, _ in COMMANDS}


def main_(argv: list[str]) -> int:
    """Print the table."""
    lengths = [int(a) for a in argv] or [45, 3000]
    table = {(n, o): measure(n, o) for n in lengths for o in ORDERS}
    heads = [f"{n} {o}" for n in lengths for o in ORDERS]
    width = max(len(name) for name, _, _ in COMMANDS) + 2
    print(f"{'command':<{width}}" + "".join(f"{h:>14}" for h in heads) + "   (cold/warm, exit)")
    for name, _, _ in COMMANDS:
        cells = []
        for n in lengths:
            for o in ORDERS:
                cold, warm, code = table[n, o][name]
                cells.append(f"{cold:>4}/{warm:<3} {code:<3}")
        print(f"{name:<{width}}" + "".join(f"{c:>14}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main_(sys.argv[1:]))
