"""Measure igor's budgets (SPEC section 8) in one run and print the ratios.

    python -m benchmarks                 # everything
    python -m benchmarks --quick         # the start, the lists and the table, under a minute
    python -m benchmarks start big-list  # only some

Each budget is a ratio against a floor measured in the same run on the same machine, in
interleaved pairs (min, median and max printed, the load average too), so the figures mean
the same on a fast or a slow computer. A floor does the same work and prints the same bytes:
each is checked before it is timed.
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

from benchmarks import floors
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator

RUNS = 11
QUICK_RUNS = 5
VERSION_BUDGET = 2.0  # `igor --version` against `python -S -c pass`
TAB_BUDGET = 0.5  # one TAB against gh's (`gh __complete`)
BIG_ACCOUNTS = (10_000, 50_000)  # stacks; quick mode: QUICK_ACCOUNT
QUICK_ACCOUNT = 2_000
BIG_LIST_BUDGET = 1.2  # against a client that fetches page 1, then every other page at once
TABLE_BUDGET = 1.5  # the table of TABLE_ROWS rows against its --json (compact), whole processes
TABLE_ROWS = 10_000
SMALL_LIST_BUDGET = 2.0  # `igor list` of 30 stacks against a standard-library urllib script
RSS_BUDGET_MB = 100.0
TOKEN_HOURLY_LIMIT = 3000  # Cloud 66 requests an hour for one token
FOLLOWED_AT_ONCE = 20


class Settings:
    """How much to measure: everything (the default) or `--quick` (under a minute)."""

    quick = False

    @property
    def runs(self) -> int:
        """Interleaved pairs a figure takes."""
        return QUICK_RUNS if self.quick else RUNS

    @property
    def accounts(self) -> tuple[int, ...]:
        """The big accounts `igor list --json` is measured on."""
        return (QUICK_ACCOUNT,) if self.quick else BIG_ACCOUNTS

    @property
    def table_rows(self) -> int:
        """The rows of the table measured against its JSON."""
        return QUICK_ACCOUNT if self.quick else TABLE_ROWS


SETTINGS = Settings()


def _wall(command: Sequence[str], env: dict[str, str]) -> float:
    """Wall seconds of one run, its output thrown away."""
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)  # fmt: skip
    return time.perf_counter() - started


# Starts a command from a small process and says its wall seconds and peak RSS (KB) on the
# file descriptor named first.
# Linux carries a process's peak RSS across exec, and a child spawned straight from this
# process (which holds the simulator: 240 MB at 50,000 stacks) would report this one's.
_LAUNCH = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvpe(sys.argv[2], sys.argv[2:], os.environ)
_, _, usage = os.wait4(pid, 0)
os.write(int(sys.argv[1]), f"{time.perf_counter() - started} {usage.ru_maxrss}".encode())
"""


def _measure(command: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run, its output thrown away."""
    read, write = os.pipe()
    subprocess.run(
        [sys.executable, "-S", "-c", _LAUNCH, str(write), *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write,),
        check=False,
    )
    os.close(write)
    with os.fdopen(read) as said:
        wall, peak = said.read().split()
    return float(wall), int(peak) / 1024


def _piped(command: Sequence[str], env: dict[str, str]) -> float:
    """Wall seconds of one run whose output is read through a pipe, as `| cat` reads it."""
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def _on_pty(command: Sequence[str], env: dict[str, str]) -> float:
    """Wall seconds of one run on a terminal (a pty 160 columns wide, read as it writes)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env={**env, "TERM": "xterm-256color"},
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    try:
        while os.read(leader, 1 << 16):
            pass
    except OSError:  # EIO: every end of the terminal the program held is closed
        pass
    process.wait()
    elapsed = time.perf_counter() - started
    os.close(leader)
    return elapsed


def _interleaved(
    first: Callable[[], float], second: Callable[[], float], runs: int | None = None
) -> tuple[list[float], list[float]]:
    """`runs` measurements of each, in pairs, so that drifts in machine load hit both alike."""
    a, b = [], []
    for _ in range(runs or SETTINGS.runs):
        a.append(first())
        b.append(second())
    return a, b


def _spread(values: Sequence[float], unit: str = "ms") -> str:
    scale = 1000.0 if unit == "ms" else 1.0
    low, mid, high = (scale * v for v in (min(values), statistics.median(values), max(values)))
    digits = 1 if unit == "ms" else 2
    return f"{mid:.{digits}f} [{low:.{digits}f}-{high:.{digits}f}]{unit}"


def _figure(
    name: str,
    measured: Sequence[float],
    floor: Sequence[float],
    floor_name: str,
    budget: float | None,
    unit: str = "ms",
) -> bool:
    """Print one figure: median [min-max] of each side, the ratio of each pair, the budget."""
    ratios = sorted(m / f for m, f in zip(measured, floor, strict=True))
    ratio = statistics.median(ratios)
    verdict = "reference" if budget is None else "ok" if ratio <= budget else "OVER BUDGET"
    limit = "no budget" if budget is None else f"budget <= {budget:.2f}x"
    print(
        f"{name:<46} {_spread(measured, unit):>24}  vs {floor_name}: {_spread(floor, unit)}\n"
        f"{'':<46} ratio {ratio:5.2f}x [{ratios[0]:.2f}-{ratios[-1]:.2f}]  {limit}  {verdict}"
    )
    return budget is None or ratio <= budget


def _load() -> str:
    """The load average, and a warning when the machine is busy."""
    one, five, fifteen = os.getloadavg()
    busy = "  (BUSY: above 1, figures are not trustworthy)" if one > 1 else ""
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}{busy}"


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


def _python_floor() -> list[str]:
    return [sys.executable, *floors.PYTHON_FLOOR]


def _tab_env(env: dict[str, str]) -> dict[str, str]:
    """A TAB as completions/igor.bash sends it (`igor deploy -s <TAB>`), in the sandbox."""
    return dict(
        env,
        IGOR_SANDBOX="1",
        _IGOR_COMPLETE="complete_bash",
        COMP_WORDS="igor deploy -s ''",
        COMP_CWORD="-1",
    )


def _gh() -> tuple[str | None, str]:
    """Debian's `gh`, or why there is none."""
    found = shutil.which("gh")
    if found is None:
        return None, "gh is not installed (Debian: apt-get install gh)"
    return found, ""


def bench_start() -> bool:
    """`igor --version` against `python -S -c pass`; one TAB against gh's; the peers."""
    env = _base_env()
    igor = igor_command()
    python = _python_floor()
    tab = _tab_env(env)
    listed = subprocess.run([*igor, "list"], env=dict(env, IGOR_SANDBOX="1"), check=False,
                            capture_output=True)  # fmt: skip
    answer = subprocess.run(igor, env=tab, check=False, capture_output=True, text=True)
    if listed.returncode != 0 or "shop" not in answer.stdout.split():
        print(f"the completion request does not complete stack names: {answer.stdout!r}")
        return False
    for command, run_env in (([*igor, "--version"], env), (igor, tab), (python, env)):
        _wall(command, run_env)  # bytecode, the disk cache and the completion index
    ok = _figure(
        "igor --version",
        *_interleaved(lambda: _wall([*igor, "--version"], env), lambda: _wall(python, env)),
        "python -S -c pass",
        VERSION_BUDGET,
    )
    gh, why = _gh()
    if gh is None:
        print(f"{'one TAB (igor deploy -s <TAB>)':<46} not measured against gh: {why}")
        return False
    gh_env = dict(env, GH_NO_UPDATE_NOTIFIER="1", GH_PROMPT_DISABLED="1")
    gh_tab = [gh, "__complete", "pr", ""]  # subcommands: answered without the network
    _wall(gh_tab, gh_env)
    ok &= _figure(
        "one TAB (igor deploy -s <TAB>)",
        *_interleaved(lambda: _wall(igor, tab), lambda: _wall(gh_tab, gh_env)),
        "gh __complete pr ''",
        TAB_BUDGET,
    )
    _figure(
        "gh __complete pr '' (a peer)",
        *_interleaved(lambda: _wall(gh_tab, gh_env), lambda: _wall(python, env)),
        "python -S -c pass",
        None,
    )
    _figure(
        "gh --version (a peer)",
        *_interleaved(lambda: _wall([gh, "--version"], gh_env), lambda: _wall(python, env)),
        "python -S -c pass",
        None,
    )
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

        return _figure(
            "igor list --json, 1,000 stacks, 100 ms",
            *_interleaved(lambda: _wall([*igor_command(), "list", "--json"], env),
                          one_after_another, min(SETTINGS.runs, 5)),
            "pages one after another (in process)",
            0.4,
            "s",
        )  # fmt: skip


def _same_output(name: str, ours: bytes, floor: bytes) -> bool:
    """Whether a floor printed igor's bytes; says where they part when not."""
    if ours == floor and ours:
        return True
    at = next(
        (i for i, (x, y) in enumerate(zip(ours, floor, strict=False)) if x != y),
        min(len(ours), len(floor)),
    )
    print(
        f"{name}: THE FLOOR DOES NOT PRINT WHAT IGOR PRINTS (not timed): byte {at} of "
        f"{len(ours)} vs {len(floor)}: {ours[max(0, at - 60) : at + 60]!r} vs "
        f"{floor[max(0, at - 60) : at + 60]!r}"
    )
    return False


def big_list_outputs(sim: Simulator, env: dict[str, str]) -> tuple[bytes, bytes]:
    """What `igor list --json` and the all-pages floor print against `sim` (piped)."""
    floor = [sys.executable, "-c", floors.ALL_PAGES_JSON, sim.url, SANDBOX_TOKEN]
    return tuple(  # type: ignore[return-value]
        subprocess.run(command, env=env, capture_output=True, check=False).stdout
        for command in ([*igor_command(), "list", "--json"], floor)
    )


def bench_big_list() -> bool:
    """`igor list --json` of a big account at 100 ms a request, against a client that fetches
    page 1 then every other page at once and prints the same bytes; peak RSS."""
    ok = True
    for stacks in SETTINGS.accounts:
        ok &= _big_list(stacks)
    return ok


def _big_list(stacks: int) -> bool:
    with Simulator(stacks=[], rate_limit=None) as sim:
        sim.add_stacks(stacks)
        sim.latency = 0.1
        env = dict(_base_env(), IGOR_API_URL=sim.url, IGOR_CLOUD66_TOKEN=SANDBOX_TOKEN)
        name = f"igor list --json, {stacks:,} stacks, 100 ms"
        if not _same_output(name, *big_list_outputs(sim, env)):
            return False
        floor = [sys.executable, "-c", floors.ALL_PAGES_JSON, sim.url, SANDBOX_TOKEN]
        peaks: list[float] = []

        def igor_list() -> float:
            wall, peak = _measure([*igor_command(), "list", "--json"], env)
            peaks.append(peak)
            return wall

        runs = min(SETTINGS.runs, 5)  # seconds each
        ok = _figure(name, *_interleaved(igor_list, lambda: _wall(floor, env), runs),
                     "all pages at once", BIG_LIST_BUDGET, "s")  # fmt: skip
    peak = max(peaks)
    verdict = "ok" if peak <= RSS_BUDGET_MB else "OVER BUDGET"
    print(f"{'  its peak RSS':<46} {peak:8.1f}MB  budget <= {RSS_BUDGET_MB:.0f}MB  {verdict}")
    return ok and peak <= RSS_BUDGET_MB


def bench_table() -> bool:
    """The table of many rows, piped and on a terminal, against the same rows as --json
    piped (the compact JSON a program reads): whole processes, 0 ms a request."""
    rows = SETTINGS.table_rows
    with Simulator(stacks=[], rate_limit=None) as sim:
        sim.add_stacks(rows)
        env = dict(_base_env(), IGOR_API_URL=sim.url, IGOR_CLOUD66_TOKEN=SANDBOX_TOKEN)
        table, as_json = [*igor_command(), "list"], [*igor_command(), "list", "--json"]
        _piped(table, env)
        runs = min(SETTINGS.runs, 5)
        ok = True
        for where, run in (("piped", _piped), ("on a terminal", _on_pty)):
            ok &= _figure(
                f"table of {rows:,} rows, {where}",
                *_interleaved(lambda run=run: run(table, env), lambda: _piped(as_json, env), runs),
                "--json piped",
                TABLE_BUDGET,
                "s",
            )
    return ok


def bench_small_list() -> bool:
    """`igor list` of 30 stacks at 0 ms, against a standard-library urllib script printing the
    same rows (the budget's floor), and a `requests` one (for reference)."""
    with Simulator(stacks=[], rate_limit=None) as sim:
        sim.add_stacks(30)
        env = dict(_base_env(), IGOR_API_URL=sim.url, IGOR_CLOUD66_TOKEN=SANDBOX_TOKEN)
        igor = [*igor_command(), "list"]
        urllib_floor = [sys.executable, "-c", floors.URLLIB_LIST, sim.url, SANDBOX_TOKEN]
        with_requests = [sys.executable, "-c", floors.REQUESTS_LIST, sim.url, SANDBOX_TOKEN]
        said = [_rows(command, env) for command in (igor, urllib_floor, with_requests)]
        if not said[0] or len(said[0]) != 31 or said.count(said[0]) != 3:
            print(f"the floors do not print igor's rows: {[rows[:2] for rows in said]}")
            return False
        ok = _figure("igor list, 30 stacks, 0 ms",
                     *_interleaved(lambda: _wall(igor, env), lambda: _wall(urllib_floor, env)),
                     "urllib script", SMALL_LIST_BUDGET)  # fmt: skip
        _figure("igor list, 30 stacks, 0 ms",
                *_interleaved(lambda: _wall(igor, env), lambda: _wall(with_requests, env)),
                "requests script", None)  # fmt: skip
    return ok


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
    """Bursts of commands through `igor serve` and the fake Slack (benchmarks/bot_load.py)."""
    from benchmarks.bot_load import bench_bot_load

    # The bot's CPU a command is the one budget in milliseconds rather than a ratio: it is
    # printed beside how long this machine takes to start Python, so that runs on faster
    # and slower machines can be compared.
    env = _base_env()
    start = statistics.median(_wall(_python_floor(), env) for _ in range(SETTINGS.runs))
    return bench_bot_load(quick=SETTINGS.quick, python_start=start)


def bench_state() -> bool:
    """Lock take and release on each state backend (benchmarks/state.py)."""
    from benchmarks.state import bench_state as measure

    return measure()


BENCHMARKS: dict[str, Callable[[], bool]] = {
    "start": bench_start,
    "small-list": bench_small_list,
    "table": bench_table,
    "big-list": bench_big_list,
    "list": bench_list,
    "follow": bench_follow,
    "bot": bench_bot,
    "state": bench_state,
}
# What `--quick` runs (under a minute): the start, the lists and the table, smaller.
QUICK = ("start", "small-list", "table", "big-list")


def main(argv: Sequence[str]) -> int:
    """Run the named benchmarks (all by default, QUICK with --quick); exit 1 if one is over
    budget or a floor does not print what igor prints."""
    words = list(argv)
    SETTINGS.quick = "--quick" in words
    chosen = [word for word in words if word != "--quick"] or list(
        QUICK if SETTINGS.quick else BENCHMARKS
    )
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    print(f"running {' '.join(igor_command())}, {_igor_code(_base_env())}")
    mode = "quick: " if SETTINGS.quick else ""
    print(f"{mode}{SETTINGS.runs} interleaved pairs a figure (fewer for the slow ones); "
          f"median [min-max]; {_load()}")  # fmt: skip
    results = [BENCHMARKS[name]() for name in chosen]
    print(f"at the end: {_load()}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
