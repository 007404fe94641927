"""Measure igor's budgets (SPEC section 8) in one run and print the ratios.

    python -m benchmarks            # everything
    python -m benchmarks start list # only some

Each budget is a ratio against a baseline measured in the same run on the same
machine, so the figures mean the same on a fast or a slow computer.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from igor_cli.sandbox import SANDBOX_TOKEN, Simulator

RUNS = 15


def _wall(command: Sequence[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=False, capture_output=True)
    return time.perf_counter() - started


def _median_pair(
    first: Callable[[], float], second: Callable[[], float], runs: int = RUNS
) -> tuple[float, float]:
    # Interleaved so that drifts in machine load hit both sides alike.
    a, b = [], []
    for _ in range(runs):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b)


def _report(name: str, measured: float, baseline: float, budget: float, unit: str = "s") -> bool:
    ratio = measured / baseline
    verdict = "ok" if ratio <= budget else "OVER BUDGET"
    print(
        f"{name:<44} {measured:8.3f}{unit} vs {baseline:8.3f}{unit}  "
        f"ratio {ratio:5.2f} (budget {budget:.2f})  {verdict}"
    )
    return ratio <= budget


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGOR_", "SLACK_"))}
    # Measure what a user's Python does: it writes bytecode once and reuses it
    # (typer's is already there; without this igor would be compiled every run).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["IGOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="igor-bench-")
    env["IGOR_CONFIG"] = os.path.join(env["IGOR_CACHE_DIR"], "none.toml")
    return env


def igor_command() -> list[str]:
    """The installed `igor` console script beside this Python (what users run), else `-m`."""
    script = shutil.which("igor", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "igor_cli"]


def bench_start() -> bool:
    """`igor --version` and one completion request against `import typer`."""
    env = _base_env()
    igor = igor_command()
    print(f"running {' '.join(igor)}")
    typer_import = [sys.executable, "-c", "import typer"]
    # A TAB as completions/igor.bash sends it, with stacks in the cache.
    sandbox = dict(env, IGOR_SANDBOX="1")
    complete_env = dict(
        sandbox, _IGOR_COMPLETE="complete_bash", COMP_WORDS="igor deploy -s ''", COMP_CWORD="-1"
    )
    listed = subprocess.run([*igor, "list"], env=sandbox, check=False, capture_output=True)
    tab = subprocess.run(igor, env=complete_env, check=False, capture_output=True, text=True)
    if listed.returncode != 0 or "shop" not in tab.stdout.split():
        print(f"the completion request does not complete stack names: {tab.stdout!r}")
        return False
    ok = True
    _wall([*igor, "--version"], env)  # bytecode and disk cache, for both sides alike
    _wall(typer_import, env)
    version, baseline = _median_pair(
        lambda: _wall([*igor, "--version"], env),
        lambda: _wall(typer_import, env),
    )
    ok &= _report("igor --version", version, baseline, 1.3)
    completion, baseline = _median_pair(
        lambda: _wall(igor, complete_env),
        lambda: _wall(typer_import, env),
    )
    ok &= _report("completion request (igor deploy -s <TAB>)", completion, baseline, 1.3)
    return ok


def bench_list() -> bool:
    """`igor list` over 1,000 stacks, 100 ms a request, against pages fetched in turn."""
    import requests

    with Simulator(stacks=[], rate_limit=None) as sim:
        sim.add_stacks(1000)
        sim.latency = 0.1
        env = dict(_base_env(), IGOR_API_URL=sim.url, IGOR_CLOUD66_TOKEN=SANDBOX_TOKEN)

        def one_after_another() -> float:
            started = time.perf_counter()
            with requests.Session() as session:
                session.headers["Authorization"] = f"Bearer {SANDBOX_TOKEN}"
                page, pages = 1, 1
                while page <= pages:
                    body = session.get(f"{sim.url}/stacks", params={"page": page}).json()
                    pages = -(-body["count"] // 30)  # Cloud 66 sends the count, not pages
                    page += 1
            return time.perf_counter() - started

        igor, sequential = _median_pair(
            lambda: _wall([*igor_command(), "list", "--json"], env),
            one_after_another,
            runs=5,
        )
    return _report("igor list, 1,000 stacks, 100 ms a request", igor, sequential, 0.4)


def bench_bot() -> bool:
    """50 commands at once through the fake Slack (benchmarks/bot_load.py)."""
    from benchmarks.bot_load import bench_bot_load

    return bench_bot_load()


def bench_state() -> bool:
    """Lock take and release on each state backend (benchmarks/state.py)."""
    from benchmarks.state import bench_state as measure

    return measure()


BENCHMARKS: dict[str, Callable[[], bool]] = {
    "start": bench_start,
    "list": bench_list,
    "bot": bench_bot,
    "state": bench_state,
}


def main(argv: Sequence[str]) -> int:
    """Run the named benchmarks (all by default); exit 1 if one is over budget."""
    chosen = list(argv) or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    results = [BENCHMARKS[name]() for name in chosen]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
