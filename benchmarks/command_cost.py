"""How many Cloud 66 requests each command costs, against stacks with short and long
histories, in both list orders (issue 20's table).

    python -m benchmarks.command_cost            # 45 and 3,000 past deployments
    python -m benchmarks.command_cost 45 300     # other lengths

Each command runs in process against the simulator, twice: with an empty cache
(a first run, or a restarted bot) and again with the cache the first run left
(what a user pays every day). `watch` counts its follow polls too (two: the
deployment it watches ends between them).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from igor_cli.config import Environment
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from igor_cli.terminal import main
from tests.fakes.clock import FakeClock

ORDERS = ("newest", "oldest")


def _account(past: int) -> list[dict[str, Any]]:
    """shop in production and staging (classic, one repository), api (docker)."""
    repo = "git@github.com:example/shop.git"
    return [
        {"name": "shop", "environment": "production", "git": repo, "git_branch": "main",
         "history": [{"count": past, "via": "api"}]},
        {"name": "shop", "environment": "staging", "git": repo, "git_branch": "develop",
         "history": [{"count": past}]},
        {"name": "api", "environment": "production", "framework": "docker",
         "services": ["web", "worker"], "history": [{"count": past}]},
    ]  # fmt: skip


def _roomy_ids() -> None:
    """Older simulators number deployments from 4001 down: make room for long histories."""
    from igor_cli.sandbox import state

    original = state.SandboxState.__init__
    if getattr(original, "roomy", False):
        return

    def roomy(self: Any) -> None:
        original(self)
        self.next_deployment_id = max(self.next_deployment_id, 1_000_001)
        self.next_action_id = max(self.next_action_id, 2_000_001)

    roomy.roomy = True  # type: ignore[attr-defined]
    state.SandboxState.__init__ = roomy  # type: ignore[method-assign]


def _run(clock: FakeClock, *args: str) -> int:
    from typer.testing import CliRunner

    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    with CliRunner().isolation():
        return main(list(args), env)


def _idle(sim: Simulator, clock: FakeClock) -> None:
    clock.advance(3600)  # whatever ran has ended


def _foreign(sim: Simulator, clock: FakeClock) -> None:
    _idle(sim, clock)
    sim.start_foreign_deployment("shop", "production")


def _igor_running(sim: Simulator, clock: FakeClock) -> None:
    _idle(sim, clock)
    _run(clock, "deploy", "-s", "shop", "-e", "production")
    clock.advance(sim.deploy_seconds - 1)  # the first look sees it run, the second its end


COMMANDS: list[tuple[str, Callable[[Simulator, FakeClock], None], tuple[str, ...]]] = [
    ("list", _idle, ("list",)),
    ("deploy (idle)", _idle, ("deploy", "-s", "shop", "-e", "production")),
    ("deploy (busy)", _foreign, ("deploy", "-s", "shop", "-e", "production")),
    ("cancel", _foreign, ("cancel", "-s", "shop", "-e", "production")),
    ("watch", _igor_running, ("watch", "-s", "shop", "-e", "production")),
    ("history", _idle, ("history", "-s", "shop", "-e", "production")),
    ("rollback", _idle, ("rollback", "-s", "shop", "-e", "production")),
    ("promote", _idle, ("promote", "-s", "shop", "--from", "staging", "--to", "production")),
    ("lock", _idle, ("lock", "-s", "shop", "-e", "production", "--for", "1h")),
    ("whoami", _idle, ("whoami",)),
]


def measure(past: int, order: str) -> dict[str, tuple[int, int, int]]:
    """{command: (requests with an empty cache, requests with a warm one, exit code)}."""
    _roomy_ids()
    found: dict[str, tuple[int, int, int]] = {}
    for name, prepare, args in COMMANDS:
        counts = []
        code = 0
        with tempfile.TemporaryDirectory(prefix="igor-cost-") as home:
            os.environ["IGOR_CACHE_DIR"] = os.path.join(home, "cache")
            os.environ["IGOR_CONFIG"] = os.path.join(home, "config.toml")
            os.environ["IGOR_STATE_URL"] = "sqlite://" + os.path.join(home, "state.db")
            clock = FakeClock()
            with Simulator(clock=clock, stacks=_account(past), order=order) as sim:
                os.environ["IGOR_API_URL"] = sim.url
                for _ in range(2):
                    sim.reset()
                    clock.advance(1)
                    prepare(sim, clock)
                    if name == "lock":
                        _run(clock, "unlock", "-s", "shop", "-e", "production")
                    sim.reset_requests()
                    code = _run(clock, *args)
                    counts.append(len(sim.requests))
        found[name] = (counts[0], counts[1], code)
    return found


def main_(argv: list[str]) -> int:
    """Print the table."""
    os.environ["IGOR_CLOUD66_TOKEN"] = SANDBOX_TOKEN
    lengths = [int(a) for a in argv] or [45, 3000]
    table = {(n, o): measure(n, o) for n in lengths for o in ORDERS}
    heads = [f"{n} {o[:3]}" for n in lengths for o in ORDERS]
    print(f"{'command':<16}" + "".join(f"{h:>14}" for h in heads) + "   (cold/warm, exit)")
    for name, _, _ in COMMANDS:
        cells = []
        for n in lengths:
            for o in ORDERS:
                cold, warm, code = table[n, o][name]
                cells.append(f"{cold:>5}/{warm:<4} {code:<3}")
        print(f"{name:<16}" + "".join(f"{c:>14}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main_(sys.argv[1:]))
