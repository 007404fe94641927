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
from typing import Any

from igor_cli.sandbox import SANDBOX_TOKEN, Simulator

RUNS = 11
START_BUDGET = 1.15  # `igor --version` and a TAB, against `import typer`
BIG_ACCOUNT = 10_000  # stacks
BIG_LIST_BUDGET = 1.5  # against a client that fetches page 1, then every other page at once
TABLE_BUDGET = 1.5  # the table of BIG_ACCOUNT rows against its --json
SMALL_LIST_BUDGET = 1.5  # `igor list` of 30 stacks against a plain `requests` script
RSS_BUDGET_MB = 100.0
TOKEN_HOURLY_LIMIT = 3000  # Cloud 66 requests an hour for one token
FOLLOWED_AT_ONCE = 20


def _wall(command: Sequence[str], env: dict[str, str]) -> float:
    return _measure(command, env)[0]


def _measure(command: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run, its output thrown away."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0  # reaped above
    return time.perf_counter() - started, usage.ru_maxrss / 1024


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
    """A user who set nothing, in a home of their own: igor looks for its config file,
    cache and state where platformdirs says, as it does for a user (IGOR_CACHE_DIR and
    IGOR_CONFIG would spare it that, and the figures would flatter it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGOR_", "SLACK_", "XDG_"))}
    # Measure what a user's Python does: it writes bytecode once and reuses it
    # (typer's is already there; without this igor would be compiled every run).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["HOME"] = tempfile.mkdtemp(prefix="igor-bench-")
    if sys.platform == "win32":  # where platformdirs looks there
        env["APPDATA"] = env["LOCALAPPDATA"] = env["HOME"]
    return env


def igor_command() -> list[str]:
    """The installed `igor` console script beside this Python (what users run), else `-m`."""
    script = shutil.which("igor", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "igor_cli"]


def _igor_code(env: dict[str, str]) -> str:
    """Which igor_cli the command runs (PYTHONPATH picks a work tree over the installed one),
    and under which Python: the baselines run under this one."""
    probe = "import sys, igor_cli; print(igor_cli.__file__, sys.executable, sys.flags)"
    script = igor_command()[0]
    python = sys.executable
    if script != sys.executable:  # the console script's own interpreter, from its first line
        first = Path(script).read_text(encoding="utf-8", errors="replace").splitlines()[0]
        python = first.removeprefix("#!").strip() or python
    shown = subprocess.run(
        [python, "-c", probe], env=env, capture_output=True, text=True, check=False
    ).stdout.split(" ", 2)
    if len(shown) < 3:
        return "igor_cli not found"
    baseline = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.flags)"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    same = os.path.realpath(shown[1]) == os.path.realpath(sys.executable)
    flags = "same flags" if shown[2].strip() == baseline else "OTHER FLAGS"
    python_note = "the baselines' Python" if same else f"OTHER PYTHON {shown[1]}"
    return f"igor_cli from {os.path.dirname(shown[0])}, {python_note}, {flags}"


def bench_start() -> bool:
    """`igor --version` and one completion request against `import typer`."""
    env = _base_env()
    igor = igor_command()
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
    ok &= _report("igor --version", version, baseline, START_BUDGET)
    completion, baseline = _median_pair(
        lambda: _wall(igor, complete_env),
        lambda: _wall(typer_import, env),
    )
    ok &= _report("completion request (igor deploy -s <TAB>)", completion, baseline, START_BUDGET)
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


# The floor for a big account: page 1, then every other page at once; prints nothing.
_FLOOR_CLIENT = """
import sys
from concurrent.futures import ThreadPoolExecutor
import requests
url, token = sys.argv[1], sys.argv[2]
session = requests.Session()
adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=400)
session.mount("http://", adapter)
headers = {"Authorization": "Bearer " + token}
first = session.get(url + "/stacks", params={"page": 1}, headers=headers).json()
pages = -(-first["count"] // 30)
def page(number):
    return session.get(url + "/stacks", params={"page": number}, headers=headers).json()
with ThreadPoolExecutor(max_workers=max(1, pages - 1)) as pool:
    rest = list(pool.map(page, range(2, pages + 1)))
"""

# What a person could write instead of `igor list`: fetch the stacks, print the same rows
# (the same words, times and columns as igor's table piped; `bench_small_list` checks it).
_PLAIN_LIST = """
import sys
from datetime import datetime, timezone
import requests
STATUS = {0: "Pending analysis", 1: "Deployed successfully", 2: "Deployment failed",
          3: "Analyzing", 4: "Analyzed", 5: "Queued for deployment", 6: "Deploying",
          7: "Unable to analyze"}
HEALTH = {0: "Unknown", 1: "Building", 2: "Impaired", 3: "Healthy", 4: "Failed"}
url, token = sys.argv[1], sys.argv[2]
session = requests.Session()
body = session.get(url + "/stacks", headers={"Authorization": "Bearer " + token}).json()
now = datetime.now(timezone.utc)
def ago(iso):
    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now" if seconds < 10 else f"{seconds}s ago"
rows = [("NAME", "ENVIRONMENT", "STATUS", "HEALTH", "LAST ACTIVITY", "LAST DEPLOY")]
for s in sorted(body["response"], key=lambda s: (s["name"].lower(), s["environment"].lower())):
    rows.append((s["name"], s["environment"], STATUS[s["status"]], HEALTH[s["health"]],
                 ago(s["last_activity_iso"]), "-"))
widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
for row in rows:
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
"""


def bench_big_list() -> bool:
    """`igor list` over 10,000 stacks at 100 ms a request, against the floor; peak RSS."""
    with Simulator(stacks=[], rate_limit=None) as sim:
        sim.add_stacks(BIG_ACCOUNT)
        sim.latency = 0.1
        env = dict(_base_env(), IGOR_API_URL=sim.url, IGOR_CLOUD66_TOKEN=SANDBOX_TOKEN)
        floor = [sys.executable, "-c", _FLOOR_CLIENT, sim.url, SANDBOX_TOKEN]
        peaks: list[float] = []

        def igor_list() -> float:
            wall, peak = _measure([*igor_command(), "list", "--json"], env)
            peaks.append(peak)
            return wall

        def table() -> float:
            wall, peak = _measure([*igor_command(), "list"], env)
            peaks.append(peak)
            return wall

        igor, baseline = _median_pair(igor_list, lambda: _wall(floor, env), runs=5)
        ok = _report(
            f"igor list --json, {BIG_ACCOUNT:,} stacks, 100 ms a request",
            igor, baseline, BIG_LIST_BUDGET,
        )  # fmt: skip
        piped, baseline = _median_pair(table, lambda: _wall(floor, env), runs=3)
        ok &= _report("igor list (table, piped), same", piped, baseline, BIG_LIST_BUDGET)
    peak = max(peaks)
    verdict = "ok" if peak < RSS_BUDGET_MB else "OVER BUDGET"
    print(f"{'igor list, peak RSS':<44} {peak:8.1f}MB (budget {RSS_BUDGET_MB:.0f}MB)  {verdict}")
    return ok and peak < RSS_BUDGET_MB


def bench_table() -> bool:
    """The table of 10,000 rows on a terminal, against the same rows as --json (in process)."""
    import io
    from datetime import UTC, datetime

    from igor_cli.cloud66.models import Stack
    from igor_cli.features.stacks import StackList
    from igor_cli.json_output import JsonOutput
    from igor_cli.render.terminal import TerminalRenderer

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    now = datetime.now(UTC)
    stacks = [
        Stack.from_api({"uid": f"uid-{n}", "name": f"app-{n:05d}", "environment": "production",
                        "status": n % 8, "health": n % 5, "is_busy": n % 8 in (5, 6),
                        "last_activity_iso": "2026-01-01T00:00:00Z"})
        for n in range(BIG_ACCOUNT)
    ]  # fmt: skip
    listing = StackList(stacks)

    def render(as_json: bool) -> float:
        out = Terminal()
        shape = JsonOutput() if as_json else None  # --json is a shape, not a flag
        renderer = TerminalRenderer(out, io.StringIO(), now, as_json=shape)
        started = time.perf_counter()
        renderer.outcome(listing)
        return time.perf_counter() - started

    table, as_json = _median_pair(lambda: render(False), lambda: render(True), runs=3)
    return _report(
        f"table of {BIG_ACCOUNT:,} rows on a terminal vs --json", table, as_json, TABLE_BUDGET
    )


def bench_small_list() -> bool:
    """`igor list` of 30 stacks at 0 ms, against a plain `requests` script printing the rows."""
    with Simulator(stacks=[], rate_limit=None) as sim:
        sim.add_stacks(30)
        env = dict(_base_env(), IGOR_API_URL=sim.url, IGOR_CLOUD66_TOKEN=SANDBOX_TOKEN)
        plain = [sys.executable, "-c", _PLAIN_LIST, sim.url, SANDBOX_TOKEN]
        said = [_rows(command, env) for command in ([*igor_command(), "list"], plain)]
        if said[0] != said[1] or len(said[0]) != 31:
            print(f"the plain script does not print igor's rows: {said[0][:2]} vs {said[1][:2]}")
            return False
        igor, baseline = _median_pair(
            lambda: _wall([*igor_command(), "list"], env), lambda: _wall(plain, env)
        )
    return _report("igor list, 30 stacks, 0 ms a request", igor, baseline, SMALL_LIST_BUDGET)


def _rows(command: Sequence[str], env: dict[str, str]) -> list[str]:
    """What a command prints (piped), the LAST ACTIVITY column left out (time moves on)."""
    shown = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = shown.stdout.splitlines()
    if not lines or "LAST ACTIVITY" not in lines[0]:
        return lines
    start = lines[0].index("LAST ACTIVITY")
    end = lines[0].index("LAST DEPLOY") if "LAST DEPLOY" in lines[0] else len(lines[0])
    return [line[:start] + line[end:] for line in lines]


def bench_follow() -> bool:
    """Cloud 66 requests an hour of following costs: the shell's --follow and the bot's loops."""
    from igor_cli.chat.slack.bot import bot_follow_policy
    from igor_cli.config import Environment
    from igor_cli.terminal import shell_follow_policy

    env = Environment()
    # Each shell follows its own deployment and knows of no other: twenty people
    # following cost twenty times one. The bot's loops share one budget.
    shell = _looks_an_hour(shell_follow_policy(env), loops=1) * FOLLOWED_AT_ONCE
    bot = _looks_an_hour(bot_follow_policy(env), loops=FOLLOWED_AT_ONCE) * FOLLOWED_AT_ONCE
    ok = True
    for who, looks in (("igor deploy --follow", shell), ("igor serve", bot)):
        verdict = "ok" if looks <= TOKEN_HOURLY_LIMIT else "OVER BUDGET"
        print(
            f"{who + f', {FOLLOWED_AT_ONCE} followed for 1 h':<44} {looks:8d}  requests "
            f"(budget {TOKEN_HOURLY_LIMIT:,} a token)  {verdict}"
        )
        ok &= looks <= TOKEN_HOURLY_LIMIT
    return ok


def _looks_an_hour(policy: Any, loops: int) -> int:
    """How many times one loop looks at a deployment that runs for an hour (simulated time)."""
    import dataclasses

    from igor_cli.cloud66.models import AsyncAction
    from igor_cli.core.follow import follow

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    class StillRunning:
        looks = 0
        rate_remaining = None

        def action(self, uid: str, action_id: str) -> AsyncAction:
            self.looks += 1
            return AsyncAction.from_api({"id": action_id, "started_at": "2026-01-01T00:00:00Z"})

    client = StillRunning()
    hour = dataclasses.replace(policy, timeout=3600.0, clock=lambda: now[0], sleep=sleep)
    for _ in follow(client, "uid", "1", hour, lambda: loops):  # type: ignore[arg-type]
        pass
    return client.looks


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
    "big-list": bench_big_list,
    "table": bench_table,
    "small-list": bench_small_list,
    "follow": bench_follow,
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
    print(f"running {' '.join(igor_command())}, {_igor_code(_base_env())}")
    results = [BENCHMARKS[name]() for name in chosen]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
