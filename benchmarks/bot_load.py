"""`igor serve` under load (SPEC section 8, issue 27): bursts of commands sent at once
through the fake Slack, against the Cloud 66 simulator, with igor serve in a process of its
own, as it runs.

    python -m benchmarks bot             # from the repository root (--quick: one run each)

What is measured, each figure printed with its budget and the load average:
- bot CPU a command, counted from the first envelope until the bot is idle again (its
  follow loops done, every outcome posted), for a busy channel's mix, a list-only and a
  deploy-only burst, at 0 ms and at 100 ms of Cloud 66 latency, beside the time this
  machine takes to start Python (`python -S -c pass`, measured by `python -m benchmarks
  bot`): milliseconds of CPU, unlike the ratios, depend on the machine;
- the time to answer 500 commands at 100 ms of latency against the same at 0 ms, and the
  Cloud 66 requests the burst cost against the token's hourly budget;
- ack p99 of 500 and 2,000 envelopes at once, on SQLite and on Redis (a private
  redis-server on a free loopback port), in every run;
- beside them, floors: a client that only acks (slack_sdk's built-in client; igor's
  reader taking nothing).

The bot is warmed up with a real command (`list`: the first one pays the parser's import)
before each burst; every command must be answered exactly once, and a stack's deploys never
POSTed twice.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests.fakes` lives beside `benchmarks`

from igor_cli.chat.slack.updates import GROUP as UPDATE_GROUP  # noqa: E402
from igor_cli.chat.slack.updates import UPDATES_PER_MINUTE  # noqa: E402
from igor_cli.config import Environment  # noqa: E402
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator  # noqa: E402
from tests.fakes.slack import Call, FakeSlack  # noqa: E402

COMMANDS = 500  # a burst; the mix below, ten times over
MANY = 2000  # the bigger burst the acks are measured at
ACK_P99_BUDGETS = {COMMANDS: 0.05, MANY: 0.1}  # seconds, in every run (SPEC section 8)
ACK_RUNS = 5  # runs of each ack figure (--quick: 1)
CPU_BUDGET = 0.004  # seconds of the bot's CPU a command, counted until it is idle again
SLOW = 0.1  # seconds a Cloud 66 request takes in the slow runs
SLOW_BUDGET = 2.0  # answering a burst at SLOW against the same at 0 ms
TOKEN_HOURLY_LIMIT = 3000  # Cloud 66 requests an hour for one token: the burst fits in it
ANSWER_TIMEOUT = 120.0  # seconds for all first replies: "every command answered"
DEPLOY_SECONDS = 8.0  # simulated deployments outlast the burst, and end in the run
LONG_DEPLOY_SECONDS = 600.0  # in the ack runs: they outlast even 2,000 commands
FOLLOW_INTERVAL = 1.0  # in process: the bot polls every 3 s (three times the shell's interval)
BOT_FOLLOW_INTERVAL = 15.0  # igor serve as it runs: 3 x the default 5 s
# Seconds without a call to Slack or Cloud 66 that count as idle: longer than the progress
# edits' longest pause (a group of them, then the pause it earned: chat/slack/updates.py).
IDLE_QUIET = 3.0 + UPDATE_GROUP * 60.0 / UPDATES_PER_MINUTE
IDLE_TIMEOUT = 240.0
WAKE_ASLEEP = 0.1  # seconds asleep before the wake whose CPU is printed (_wake_cost)
HARNESS_SWITCH_SECONDS = 0.0005  # this process's GIL switch interval (see bench_bot_load)
CHANNEL = "C0LOAD"
WARM_UP = "C0WARM"  # the one command before the burst

# What a busy channel sends at once: listing, deploying several stacks (two people
# deploying blog together, one Slack retry), cancelling, help, mistakes of every kind.
MIX: tuple[tuple[str, str], ...] = (
    ("U0ALICE", "list"),
    ("U0BOB", "list -s shop"),
    ("U0CAROL", "list -e staging"),
    ("U0DAN", "get -s o"),
    ("U0ERIN", "stacks"),
    ("U0FRANK", "show -e production"),
    ("U0ALICE", "list --json"),
    ("U0BOB", "find -s PAY"),
    ("U0CAROL", "list -s nothing-here"),
    ("U0DAN", "list -s ' ' -e production"),
    ("U0ALICE", "deploy -s blog"),
    ("U0BOB", "deploy -s blog"),
    ("U0CAROL", "deploy -s api"),
    ("U0DAN", 'deploy -s "Payments Portal"'),
    ("U0ERIN", "deploy -s shop -e staging"),
    ("U0FRANK", "redeploy -s search"),
    ("U0ALICE", "deploy -s legacy -w false"),
    ("U0BOB", "deploy -s shop"),
    ("U0CAROL", "deploy -s shop -e production --dry-run"),
    ("U0DAN", "deploy -s api -v web --dry-run"),
    ("U0ERIN", "cancel -s shop -e production"),
    ("U0FRANK", "stop -s nope"),
    ("U0ALICE", "halt -s blog -e staging"),
    ("U0BOB", "cancel -s api -v nosuch"),
    ("U0CAROL", "help"),
    ("U0DAN", "help deploy"),
    ("U0ERIN", "deploy -h"),
    ("U0FRANK", "list --help"),
    ("U0ALICE", "cancel -h"),
    ("U0BOB", "-h"),
    ("U0CAROL", "version"),
    ("U0DAN", "version --json"),
    ("U0ERIN", "frobnicate"),
    ("U0FRANK", "deploy"),
    ("U0ALICE", "deploy -s blog -w maybe"),
    ("U0BOB", "list --bogus"),
    ("U0CAROL", "serve"),
    ("U0DAN", "deploy -s nope"),
    ("U0ERIN", "deploy -s ../../etc/passwd"),
    ("U0FRANK", "cancel -s <!channel>"),
    ("U0ALICE", "*deploy* -s blog"),
    ("U0BOB", "list -s " + "x" * 3000),
    ("U0CAROL", "deploy -s blog " + "A" * 5000),
    ("U0DAN", 'deploy -s "Payments Portal'),
    ("U0ERIN", "list -s 'shop"),
    ("U0FRANK", 'cancel -s "'),
    ("U0ALICE", "deploy -s \u2018blog"),
    ("U0BOB", "deploy -s api \u2014dry-run \u2014stack"),
    ("U0CAROL", "\u201cdeploy -s search"),
    ("U0DAN", "deploy -s \x00blog\x00 --dry-run"),
)
# The mix's parts on their own: what a list-only and a deploy-only burst send.
LISTS = MIX[:10]
DEPLOYS = MIX[10:20]
BURSTS: dict[str, tuple[tuple[str, str], ...]] = {"mix": MIX, "list-only": LISTS,
                                                  "deploy-only": DEPLOYS}  # fmt: skip
SAMPLE_STACKS = (
    ("shop", "production"), ("shop", "staging"), ("blog", "production"), ("api", "production"),
    ("legacy", "production"), ("Payments Portal", "production"), ("search", "staging"),
)  # fmt: skip
RETRIED = 12  # the index in MIX of one deploy Slack delivers a second time (same ts)
# A first reply that starts a deployment to follow; its outcome is posted later in the thread.
FOLLOWED = ("Deploy started", "queued behind", "already deploying")
WAITING = "Waiting behind"  # a notice while a command waits its turn (chat/lines.py)


@dataclass
class Measured:
    """What one burst saw."""

    commands: int
    ack_latencies: list[float]
    answer_seconds: float | None  # first push to the last first answer; None if not all came
    answered_once: int
    doubles: list[str]
    posts_per_stack: Counter[str]
    follow_ups: int
    requests: int  # Cloud 66 requests from the first push until idle (or all answered)
    bot_cpu: float | None  # seconds of the bot's CPU a command, until idle (None: not counted)
    idle_seconds: float | None  # first push until the bot was idle again
    harness_cpu: float  # seconds of CPU a command of this process: the fake Slack, the simulator
    stopped_cleanly: bool = False

    @property
    def p99(self) -> float:
        """The acks' 99th percentile."""
        return _p99(self.ack_latencies)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def _wake_cost(wakes: int = 10, asleep: float = WAKE_ASLEEP) -> float:
    """Seconds of CPU this machine charges a thread for waking after `asleep` seconds
    (the mean of `wakes`). The bot's CPU counted until idle is mostly wake-ups (a reply
    posted, an edit, a ping answered, a timer), and a VM may charge one several times more
    in one hour than in another: printed beside each figure, so that runs compare."""
    spent: list[float] = []

    def sleeper() -> None:
        for _ in range(wakes):
            before = time.thread_time()
            time.sleep(asleep)
            spent.append(time.thread_time() - before)

    thread = threading.Thread(target=sleeper, name="bench-wake-cost")
    thread.start()
    thread.join()
    return sum(spent) / len(spent)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "OVER BUDGET"


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def _environment(slack: FakeSlack, sim: Simulator, scratch: Path) -> Environment:
    return Environment(
        environ={
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_APP_TOKEN": slack.app_token,
            "IGOR_SLACK_API_URL": slack.api_url,
            "IGOR_API_URL": sim.url,
            "IGOR_CLOUD66_TOKEN": SANDBOX_TOKEN,
            "IGOR_CACHE_DIR": str(scratch / "cache"),
            "IGOR_CONFIG": str(scratch / "config.toml"),
            "IGOR_STATE_URL": f"sqlite://{scratch / 'state.db'}",  # a fresh store each run
        },
        follow_interval=FOLLOW_INTERVAL,
        slack_ping_interval=5.0,
    )


def _first_replies(
    slack: FakeSlack, threads: set[str], channel: str = CHANNEL
) -> dict[str, list[Call]]:
    replies: dict[str, list[Call]] = {ts: [] for ts in threads}
    for call in slack.calls_to("chat.postMessage"):
        thread = str(call.params.get("thread_ts"))
        if thread in replies and call.params.get("channel") == channel:
            replies[thread].append(call)
    return replies


def _answers(calls: list[Call]) -> list[Call]:
    """A thread's posts that answer (a notice that the command waits its turn does not)."""
    return [call for call in calls if WAITING not in call.params["text"]]


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class WorkerWatch:
    """Samples the bot's Cloud 66 workers: the most that ever held deploys of one stack.

    A worker holds a deploy while `features.deploy.deploy` is on its stack, running or
    waiting for anything; sampled every millisecond, so a lower bound of the peak.
    """

    def __init__(self) -> None:
        self.peak = 0
        self.peak_stack = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-sampler", daemon=True)

    def __enter__(self) -> WorkerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _sample(self) -> None:
        names = {}
        while not self._stop.wait(0.001):
            names = {t.ident: t.name for t in threading.enumerate()}
            held: Counter[str] = Counter()
            for ident, frame in sys._current_frames().items():
                if not names.get(ident, "").startswith("igor-cmd"):
                    continue
                stack = _deploying(frame)
                if stack:
                    held[stack] += 1
            for stack, workers in held.items():
                if workers > self.peak:
                    self.peak, self.peak_stack = workers, stack


def _deploying(frame: Any) -> str:
    while frame is not None:
        code = frame.f_code
        if code.co_name == "deploy" and code.co_filename.endswith(
            ("features/deploy.py", "features\\deploy.py")
        ):
            request = frame.f_locals.get("request")
            return str(getattr(request, "stack", "")).strip().casefold()
        frame = frame.f_back
    return ""


def _process_cpu(pid: int) -> float | None:
    """CPU seconds a process has spent so far (user and system), or None off Linux."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _until_idle(pid: int, slack: FakeSlack, sim: Simulator) -> tuple[float | None, float]:
    """Wait until the bot has called neither Slack nor Cloud 66 for IDLE_QUIET seconds (its
    progress edits, rate-limited to about 50 a minute, come last); its CPU seconds then, and
    when it last called (monotonic)."""
    seen, worked_at = -1, time.monotonic()
    deadline = worked_at + IDLE_TIMEOUT
    spent = _process_cpu(pid)
    while time.monotonic() < deadline:
        now = len(slack.calls) + len(sim.requests)
        if now != seen:
            seen, worked_at = now, time.monotonic()
        elif time.monotonic() - worked_at >= IDLE_QUIET:
            break
        spent = _process_cpu(pid)
        time.sleep(0.1)
    return spent, worked_at


def _events(slack: FakeSlack, lines: tuple[tuple[str, str], ...], commands: int,
            base: int) -> list[tuple[str, dict[str, Any]]]:  # fmt: skip
    """(who, event) for `commands` mentions, `lines` over and over."""
    burst = [lines[number % len(lines)] for number in range(commands)]
    events = []
    for number, (user, text) in enumerate(burst):
        ts = f"{base + number}.000100"
        events.append((user, {"type": "app_mention", "user": user, "channel": CHANNEL,
                              "ts": ts, "event_ts": ts,
                              "text": f"<@{slack.bot_user_id}> {text}"}))  # fmt: skip
    return events


def _run(
    slack: FakeSlack,
    sim: Simulator,
    bot_pid: int,
    lines: tuple[tuple[str, str], ...],
    commands: int,
    *,
    until_idle: bool,
) -> Measured:
    pushed: dict[str, str] = {}  # envelope -> ts
    users: dict[str, str] = {}  # ts -> who asked
    events = _events(slack, lines, commands, 1_800_000_000)
    requests_before = len(sim.requests)
    started = time.monotonic()
    cpu_started = time.process_time()
    bot_started = _process_cpu(bot_pid)
    for number, (user, event) in enumerate(events):
        pushed[slack.push_event(event)] = event["ts"]
        users[event["ts"]] = user
        if lines is MIX and number % len(MIX) == RETRIED:  # Slack's retry: must not run twice
            again = slack.push_event(event, retry_attempt=1, retry_reason="timeout")
            pushed[again] = event["ts"]
    threads = set(users)
    acks = slack.wait_acks(list(pushed), timeout=60)
    latencies = [ack.acked_at - ack.sent_at for ack in acks]

    def everyone_answered() -> bool:
        return all(map(_answers, _first_replies(slack, threads).values()))

    answered = _wait(everyone_answered, ANSWER_TIMEOUT)
    replies = {ts: _answers(calls) for ts, calls in _first_replies(slack, threads).items()}
    last_first = max((calls[0].at for calls in replies.values() if calls), default=started)
    answer_seconds = last_first - started if answered else None

    bot_cpu = idle_seconds = None
    if until_idle:
        # Outcomes of the followed deployments arrive later: the CPU is counted until the
        # bot is idle again, after the last of them.
        def outcomes_posted() -> bool:
            now = _first_replies(slack, threads)
            return all(
                len(answers) >= 2
                for answers in map(_answers, now.values())
                if answers and any(word in answers[0].params["text"] for word in FOLLOWED)
            )

        _wait(outcomes_posted, DEPLOY_SECONDS + 3 * BOT_FOLLOW_INTERVAL + 30)
        spent, worked_at = _until_idle(bot_pid, slack, sim)
        if spent is not None and bot_started is not None:
            bot_cpu = (spent - bot_started) / commands
        idle_seconds = worked_at - started
    harness_cpu = (time.process_time() - cpu_started) / commands
    requests = len(sim.requests) - requests_before
    replies = _first_replies(slack, threads)
    doubles: list[str] = []
    follow_ups = 0
    for ts, calls in replies.items():
        if not calls:
            continue
        answers = _answers(calls)
        if not answers:  # told it waits, never answered: not answered once
            continue
        first, later = answers[0], answers[1:]
        followed = any(word in first.params["text"] for word in FOLLOWED)
        outcomes = [c for c in later if followed and f"<@{users[ts]}>" in c.params["text"]]
        follow_ups += len(outcomes)
        notices = len(calls) - len(answers)
        if len(later) != len(outcomes) or len(outcomes) > 1 or notices > 1:
            doubles.append(f"{ts}: {len(calls)} posts, first {first.params['text'][:60]!r}")
    labels = {sim.stack(name, env)["uid"]: f"{name} ({env})" for name, env in SAMPLE_STACKS}
    posts = Counter(
        labels.get(uid, uid)
        for uid in (
            r.path.split("/")[4]  # /api/3/stacks/<uid>/deployments
            for r in list(sim.requests)
            if r.method == "POST" and r.path.endswith("/deployments")
        )
    )
    answered_once = sum(1 for calls in replies.values() if _answers(calls)) - len(doubles)
    return Measured(commands, latencies, answer_seconds, answered_once, doubles, posts,
                    follow_ups, requests, bot_cpu, idle_seconds, harness_cpu)  # fmt: skip


def _serve(
    slack: FakeSlack,
    sim: Simulator,
    scratch: Path,
    state_url: str | None = None,
    client: str = "reader",
) -> subprocess.Popen[bytes]:
    """`igor serve` in a process of its own, as it runs (its log lines go to a file); its
    state store a fresh SQLite file, or `state_url`; its Socket Mode transport igor's
    reader, or with `client="public"` slack_sdk's public aiohttp client (public_socket.py)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGOR_", "SLACK_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "igor_cli", "serve"]
    if client == "public":
        from benchmarks.public_socket import LAUNCHER

        command = [sys.executable, "-c", LAUNCHER]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    env.update({
        "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
        "IGOR_SLACK_API_URL": slack.api_url, "IGOR_API_URL": sim.url,
        "IGOR_CLOUD66_TOKEN": SANDBOX_TOKEN, "IGOR_CACHE_DIR": str(scratch / "cache"),
        "IGOR_CONFIG": str(scratch / "config.toml"),
        "IGOR_STATE_URL": state_url or f"sqlite://{scratch / 'state.db'}",  # fresh each run
    })  # fmt: skip
    with (scratch / "serve.log").open("wb") as log:
        return subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip


# The floor for acks: slack_sdk's built-in Socket Mode client that acks and does nothing else.
_ACKS_ONLY = """
import os, signal, threading
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web import WebClient
web = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["IGOR_SLACK_API_URL"])
client = SocketModeClient(app_token=os.environ["SLACK_APP_TOKEN"], web_client=web)
def ack(client, request):
    client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
client.socket_mode_request_listeners.append(ack)
client.connect()
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
client.close()
"""


# The same with igor's reader (igor_cli/chat/slack/transports/socket_reader.py), handing
# every envelope to nothing: what the acks cost without the intake work that shares the
# process with them.
_READER_ONLY = """
import signal, threading
from igor_cli.chat.slack.web import SlackWeb
from igor_cli.chat.slack.transports.socket_mode import SocketModeTransport
from igor_cli.config import Environment
env = Environment()
web = SlackWeb(env.environ["SLACK_BOT_TOKEN"], env.environ["IGOR_SLACK_API_URL"])
stop = threading.Event()
transport = SocketModeTransport(env, web, lambda kind, payload: None, stop)
transport.connect()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
transport.close()
"""


def _ack_floor(client_code: str = _ACKS_ONLY) -> float:
    """Ack p99 of the same burst for a client that only acks (slack_sdk's own reading, or
    igor's reader with `_READER_ONLY`)."""
    with (
        tempfile.TemporaryDirectory(prefix="igor-bench-") as scratch,
        FakeSlack(server_ping_interval=0.5) as slack,
    ):
        env = {**os.environ, "SLACK_BOT_TOKEN": slack.bot_token,
               "SLACK_APP_TOKEN": slack.app_token, "IGOR_SLACK_API_URL": slack.api_url}  # fmt: skip
        with (Path(scratch) / "acks.log").open("wb") as log:
            client = subprocess.Popen(
                [sys.executable, "-c", client_code], env=env, stdout=log, stderr=log
            )
        try:
            slack.wait_connected(timeout=30)
            slack.wait_ack(slack.push_event({"type": "app_mention", "user": "U0WARM",
                                             "channel": WARM_UP, "ts": "1.000100",
                                             "text": "warm-up"}), timeout=30)  # fmt: skip
            envelopes = []
            for number, (user, text) in enumerate(MIX[n % len(MIX)] for n in range(COMMANDS)):
                ts = f"{1_950_000_000 + number}.000100"
                envelopes.append(slack.push_event({
                    "type": "app_mention", "user": user, "channel": CHANNEL, "ts": ts,
                    "event_ts": ts, "text": f"<@{slack.bot_user_id}> {text}",
                }))  # fmt: skip
            acks = slack.wait_acks(envelopes, timeout=30)
        finally:
            client.terminate()
            client.wait(15)
    return _p99([ack.acked_at - ack.sent_at for ack in acks])


def _workers_for_one_stack() -> tuple[int, str, bool]:
    """Thirty deploys of one stack and ten lists at once, at 20 ms a request.

    The bot runs in this process so that its workers can be sampled. Returns the
    most workers that ever held deploys of one stack, that stack, and whether
    every command was answered.
    """
    from igor_cli.chat.slack import serve

    with (
        tempfile.TemporaryDirectory(prefix="igor-bench-") as scratch,
        Simulator(deploy_seconds=600, rate_limit=None) as sim,
        FakeSlack(server_ping_interval=0.5) as slack,
    ):
        sim.latency = 0.02
        env = _environment(slack, sim, Path(scratch))
        stop = threading.Event()
        bot = threading.Thread(target=lambda: serve(env, stop), name="igor-serve", daemon=True)
        bot.start()
        try:
            slack.wait_connected(timeout=15)
            threads: set[str] = set()
            with WorkerWatch() as workers:
                for number in range(40):
                    ts = f"{1_900_000_000 + number}.000100"
                    text = "list" if number % 4 == 3 else "deploy -s blog"
                    slack.push_event({"type": "app_mention", "user": f"U0{number:03d}",
                                      "channel": CHANNEL, "ts": ts, "event_ts": ts,
                                      "text": f"<@{slack.bot_user_id}> {text}"})  # fmt: skip
                    threads.add(ts)
                answered = _wait(lambda: all(_first_replies(slack, threads).values()), 60)
        finally:
            stop.set()
            bot.join(15)
    return workers.peak, workers.peak_stack, answered


def _warm_up(slack: FakeSlack) -> None:
    """One real command answered before the burst (a `list`: the first command pays the
    parser's import, which `help` would not), once the bot reads its connection (slack_sdk
    starts reading a new one up to 0.1 s after it opens: a burst sent at once would time
    that wait, once a connection, not the bot)."""
    ts = "1799999999.000100"
    envelope = slack.push_event({"type": "app_mention", "user": "U0WARM", "channel": WARM_UP,
                                 "ts": ts, "event_ts": ts,
                                 "text": f"<@{slack.bot_user_id}> list"})  # fmt: skip
    slack.wait_ack(envelope, timeout=30)
    if not _wait(lambda: bool(_first_replies(slack, {ts}, WARM_UP)[ts]), 30):
        raise AssertionError("igor serve did not answer the warm-up command")


def burst(
    lines: tuple[tuple[str, str], ...] = MIX,
    commands: int = COMMANDS,
    *,
    latency: float = 0.0,
    state_url: str | None = None,
    until_idle: bool = True,
    client: str = "reader",
) -> Measured:
    """One burst through `igor serve` in its own process, then SIGTERM (whether that ended it
    cleanly is in the result)."""
    with (
        tempfile.TemporaryDirectory(prefix="igor-bench-") as scratch,
        # Counted until idle, deployments end in the run; else they outlast any burst, so
        # that a second deploy POST for one stack is a double, never a new deployment.
        Simulator(
            deploy_seconds=DEPLOY_SECONDS if until_idle else LONG_DEPLOY_SECONDS, rate_limit=None
        ) as sim,
        FakeSlack(server_ping_interval=0.5) as slack,
    ):
        bot = _serve(slack, sim, Path(scratch), state_url, client)
        try:
            slack.wait_connected(timeout=30)
            _warm_up(slack)
            sim.latency = latency  # after the warm-up: the burst alone is slow
            measured = _run(slack, sim, bot.pid, lines, commands, until_idle=until_idle)
            bot.send_signal(signal.SIGTERM)
            measured.stopped_cleanly = bot.wait(15) == 0
        finally:
            if bot.poll() is None:
                bot.kill()
                bot.wait(5)
    return measured


@contextmanager
def _harness_switch() -> Iterator[None]:
    # The fake Slack stamps an envelope before its send and an ack after its read, on
    # threads of this process, which also serves the bot's Web API calls and Cloud 66
    # requests: a thread back from a socket waits up to the switch interval (5 ms) for the
    # GIL, and that wait would count as igor's. Igor's own process keeps the default.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(HARNESS_SWITCH_SECONDS)
    try:
        yield
    finally:
        sys.setswitchinterval(switch)


def bench_bot_load(quick: bool = False, python_start: float | None = None) -> bool:
    """Every `igor serve` figure of SPEC section 8, each against its budget (`python_start`:
    the seconds `python -S -c pass` takes on this machine, printed with the CPU figures)."""
    with _harness_switch():
        ok = _cpu_and_latency(python_start)
        ok &= _acks(1 if quick else ACK_RUNS)
        ok &= _floors_and_lines()
    return ok


def _checked(name: str, measured: Measured) -> bool:
    """Every command answered exactly once, one deploy POST a stack, a clean SIGTERM."""
    most = max(measured.posts_per_stack.values(), default=0)
    ok = (measured.answered_once >= measured.commands and most <= 1
          and measured.stopped_cleanly and measured.answer_seconds is not None)  # fmt: skip
    if not ok:
        print(f"    {name}: answered once {measured.answered_once}/{measured.commands}, "
              f"deploy POSTs for one stack (max) {most}, all answered "
              f"{measured.answer_seconds is not None}, stopped cleanly (SIGTERM) "
              f"{measured.stopped_cleanly}  OVER BUDGET")  # fmt: skip
        for double in measured.doubles[:5]:
            print(f"    answered more than once: {double}")
    return ok


def _cpu_and_latency(python_start: float | None = None) -> bool:
    """The bot's CPU a command until idle, and the time to answer, at 0 and SLOW latency."""
    ok = True
    print(f"igor serve: {COMMANDS} commands at once, SQLite; bot CPU a command counted until "
          f"idle (budget <= {CPU_BUDGET * 1000:.1f} ms); answering at {SLOW * 1000:.0f} ms a "
          f"Cloud 66 request <= {SLOW_BUDGET:.1f}x at 0 ms, within the token's "
          f"{TOKEN_HOURLY_LIMIT:,} requests an hour")  # fmt: skip
    print(f"  (wake: the CPU this machine charges a thread for waking after "
          f"{WAKE_ASLEEP * 1000:.0f} ms asleep, measured after each burst)")  # fmt: skip
    if python_start is not None:
        # Unlike the ratios, milliseconds of CPU depend on the machine: its speed, said once.
        print(f"  (this machine starts Python, `python -S -c pass`, in {python_start * 1000:.1f} "
              f"ms: compare the CPU figures of runs on other machines by it)")  # fmt: skip
    for name, lines in BURSTS.items():
        fast = burst(lines)
        load_fast = f"wake {_wake_cost() * 1e6:.0f} us; {_load()}"
        slow = burst(lines, latency=SLOW)
        load_slow = f"wake {_wake_cost() * 1e6:.0f} us; {_load()}"
        for latency, measured, load in ((0.0, fast, load_fast), (SLOW, slow, load_slow)):
            cpu = measured.bot_cpu
            cpu_ok = cpu is not None and cpu <= CPU_BUDGET
            shown = "not measured (needs /proc)" if cpu is None else f"{cpu * 1000:6.2f} ms"
            answer = measured.answer_seconds
            requests_ok = measured.requests <= TOKEN_HOURLY_LIMIT
            print(f"  {name:<11} {latency * 1000:4.0f} ms: CPU a command {shown} "
                  f"{_verdict(cpu_ok)}; answered in "
                  f"{'never' if answer is None else f'{answer:6.2f} s'}; idle after "
                  f"{measured.idle_seconds or 0:6.1f} s; ack p99 {measured.p99 * 1000:5.1f} ms; "
                  f"{measured.requests} Cloud 66 requests {_verdict(requests_ok)}; "
                  f"{measured.follow_ups} outcomes; harness "
                  f"{measured.harness_cpu * 1000:.1f} ms a command; {load}")  # fmt: skip
            ok &= cpu_ok and requests_ok and _checked(f"{name} at {latency * 1000:.0f} ms",
                                                      measured)  # fmt: skip
        if fast.answer_seconds and slow.answer_seconds:
            ratio = slow.answer_seconds / fast.answer_seconds
            print(f"  {name:<11} answered at {SLOW * 1000:.0f} ms / at 0 ms: {ratio:5.2f}x "
                  f"(budget <= {SLOW_BUDGET:.1f}x)  {_verdict(ratio <= SLOW_BUDGET)}")  # fmt: skip
            ok &= ratio <= SLOW_BUDGET
        else:
            ok = False
    return ok


def _acks(runs: int) -> bool:
    """Ack p99 at 500 and 2,000 at once, on SQLite and Redis: every run within its budget."""
    from benchmarks.state import redis_server

    ok = True
    with redis_server() as redis_url:
        stores = [("SQLite", None)] + ([("Redis", redis_url)] if redis_url else [])
        for store, url in stores:
            for commands, budget in ACK_P99_BUDGETS.items():
                p99s = []
                for _ in range(runs):
                    measured = burst(MIX, commands, state_url=url, until_idle=False)
                    p99s.append(measured.p99)
                    ok &= _checked(f"{commands} at once on {store}", measured)
                    if url is not None:  # the next run starts on an empty store
                        _flush(url)
                worst = max(p99s)
                shown = ", ".join(f"{p * 1000:.1f}" for p in p99s)
                print(f"igor serve: ack p99, {commands:>5} at once, {store:<6} runs [{shown}] ms; "
                      f"worst {worst * 1000:.1f} ms (budget <= {budget * 1000:.0f} ms, every "
                      f"run)  {_verdict(worst <= budget)}; {_load()}")  # fmt: skip
                ok &= worst <= budget
    ok &= _public_client(runs)
    return ok


def _public_client(runs: int) -> bool:
    """The same acks with slack_sdk's public aiohttp client in place of igor's reader, under
    the same intake (SQLite): the contender of issue 27, printed beside the budget (it does
    not decide the run). Skipped, saying so, where aiohttp is not installed."""
    import importlib.util

    if importlib.util.find_spec("aiohttp") is None:
        print("igor serve on slack_sdk's public aiohttp client: skipped (pip install aiohttp)")
        return True
    ok = True
    for commands, budget in ACK_P99_BUDGETS.items():
        p99s = []
        for _ in range(runs):
            measured = burst(MIX, commands, until_idle=False, client="public")
            p99s.append(measured.p99)
            ok &= _checked(f"{commands} at once on the public client", measured)
        worst = max(p99s)
        shown = ", ".join(f"{p * 1000:.1f}" for p in p99s)
        print(f"  (public aiohttp client instead of the reader: ack p99, {commands:>5} at once, "
              f"SQLite runs [{shown}] ms; worst {worst * 1000:.1f} ms against "
              f"{budget * 1000:.0f} ms {_verdict(worst <= budget)}; {_load()})")  # fmt: skip
    return ok


def _flush(url: str) -> None:
    import redis

    plain = redis.Redis.from_url(url)
    try:
        plain.flushdb()
    finally:
        plain.close()


def _floors_and_lines() -> bool:
    """The acks of clients that only ack; the workers one stack's deploys hold."""
    floor = _ack_floor()
    reader_floor = _ack_floor(_READER_ONLY)
    print(f"  (floors, {COMMANDS} at once: slack_sdk's built-in client that only acks "
          f"{floor * 1000:.1f} ms p99; igor's reader taking nothing "
          f"{reader_floor * 1000:.1f} ms p99; {_load()})")  # fmt: skip
    peak, peak_stack, one_stack_answered = _workers_for_one_stack()
    ok = peak <= 1 and one_stack_answered
    print(f"igor serve: workers held by one stack's deploys {peak} (budget at most 1); "
          f"all answered {one_stack_answered}  {_verdict(ok)}")  # fmt: skip
    if peak > 1:
        print(f"    {peak} workers held deploys of {peak_stack!r} at once")
    return ok


if __name__ == "__main__":
    sys.exit(0 if bench_bot_load("--quick" in sys.argv) else 1)
