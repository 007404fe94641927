"""Fixtures shared by every test: isolation, a fake clock, the simulator, the CLI."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import keyring
import pytest
from typer.testing import CliRunner

from igor_cli.chat.bridge import Reply
from igor_cli.config import Environment
from igor_cli.render.slack import SlackMessage
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from igor_cli.terminal import main
from tests.fakes.clock import FakeClock
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.slack import Call, FakeSlack
from tests.fakes.terminal import TerminalInput

_CLEARED_PREFIXES = ("IGOR_", "SLACK_", "NO_COLOR", "PYTHON_KEYRING")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
# The terminal's size: a test that renders a table must not depend on the window it runs in.
_TERMINAL_SIZE = ("COLUMNS", "LINES")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """No test sees the user's config, cache, keyring, tokens, proxies or terminal size."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES) or name.upper() in _PROXIES + _TERMINAL_SIZE:
            monkeypatch.delenv(name)
    monkeypatch.setenv("IGOR_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("IGOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


@pytest.fixture
def clock() -> FakeClock:
    """Simulated time shared by the simulator and igor."""
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulator]:
    """A private simulator over real HTTP; igor is pointed at it by environment."""
    with Simulator(clock=clock) as simulator:
        monkeypatch.setenv("IGOR_API_URL", simulator.url)
        monkeypatch.setenv("IGOR_CLOUD66_TOKEN", SANDBOX_TOKEN)
        yield simulator


@dataclass
class Ran:
    """What one igor run did."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr


class Igor:
    """Runs the real CLI in process, with the fake clock and no real sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.runner = CliRunner()
        # The operating system account igor runs as (None: the real one), as another
        # person's shell would be; a test of who someone is sets it.
        self.account: str | None = None

    def __call__(self, *args: str, input: str | None = None, terminal: str | None = None) -> Ran:
        """`input` is piped in; `terminal` is typed by a person at a terminal."""
        env = Environment(clock=self.clock.datetime, monotonic=self.clock, sleep=self.clock.sleep)
        account = self.account
        if account is not None:
            env.account = lambda: account
        if terminal is not None:
            env.stdin = TerminalInput(terminal)
        with self.runner.isolation(input=input) as (stdout, stderr, _):
            code = main(list(args), env)
            return Ran(code, stdout.getvalue().decode(), stderr.getvalue().decode())


@pytest.fixture
def igor(clock: FakeClock) -> Igor:
    """Run igor: `igor("deploy", "-s", "shop")`."""
    return Igor(clock)


# -- the bot ----------------------------------------------------------------


@pytest.fixture
def slack(clock: FakeClock) -> Iterator[FakeSlack]:
    """A fake Slack (Web API and Socket Mode) on 127.0.0.1, on the tests' simulated time."""
    with FakeSlack(server_ping_interval=0.2, clock=clock) as fake:
        yield fake


class RunningBot:
    """`igor serve` running in a thread against the fake Slack and the simulator."""

    def __init__(self, slack: FakeSlack, clock: FakeClock) -> None:
        self.slack = slack
        self.clock = clock
        self.stop = threading.Event()
        self.exit_code: int | None = None
        self.thread: threading.Thread | None = None

    def start(self, *, wait: bool = True) -> RunningBot:
        from igor_cli.chat.slack import serve

        env = Environment(
            monotonic=self.clock,
            sleep=self.clock.sleep,
            clock=self.clock.datetime,
            slack_ping_interval=0.3,
        )

        def run() -> None:
            self.exit_code = serve(env, self.stop)

        self.thread = threading.Thread(target=run, name="igor-serve", daemon=True)
        self.thread.start()
        if wait:
            self.slack.wait_connected()
        return self

    def close(self, timeout: float = 10.0) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def mention(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0DEPLOY", ts: str = ""
    ) -> str:
        """Post `@igor <text>` in a channel; returns the message ts."""
        ts = ts or next_ts()
        self.slack.push_event(
            {"type": "app_mention", "user": user, "text": f"<@{self.slack.bot_user_id}> {text}",
             "channel": channel, "ts": ts, "event_ts": ts}
        )  # fmt: skip
        return ts

    def replies(self, count: int = 1, timeout: float = 5.0) -> list[Call]:
        return self.slack.wait_for_calls("chat.postMessage", count, timeout)


_ts = [1_700_000_000]


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """Whether `condition` comes true within `timeout` seconds (a bound on a hang, not a
    budget: what a bot does in the background, seen from the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def next_ts() -> str:
    """A fresh Slack message timestamp."""
    _ts[0] += 1
    return f"{_ts[0]}.000100"


@pytest.fixture
def config_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The threads (by name, without their number: `igor-intake`, `igor-cmd`) that read
    the config file from now on, one entry a read."""
    reads: list[str] = []
    on_disk = Environment._config_on_disk

    def counted(env: Environment) -> dict[str, object]:
        reads.append(threading.current_thread().name.rsplit("-", 1)[0])
        return on_disk(env)

    monkeypatch.setattr(Environment, "_config_on_disk", counted)
    return reads


@pytest.fixture
def handed_reads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The reads `at_once` hands to its reader threads from now on, one entry a read."""
    from igor_cli.cloud66 import at_once

    handed: list[object] = []
    submit = at_once._readers.submit

    def counted(read: Callable[[], object]) -> object:
        handed.append(read)
        return submit(read)

    monkeypatch.setattr(at_once._readers, "submit", counted)
    return handed


@pytest.fixture
def bot(
    slack: FakeSlack, sim: Simulator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningBot]:
    """A running bot; tokens come from the environment as a user would set them."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_APP_TOKEN", slack.app_token)
    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    running = RunningBot(slack, clock)
    yield running
    running.close()


def rendered(reply: Reply) -> SlackMessage:
    """A chat reply as the Slack adapter renders it (Block Kit and its fallback text)."""
    from igor_cli.render.slack import render_reply

    return render_reply(reply, datetime.now(UTC))


# -- the state store: SQLite always, Redis where redis-server can run -----------------


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(binary: str, password: str = "") -> tuple[subprocess.Popen[bytes], str] | None:
    """redis-server on a free loopback port (asking `password`, if given), answering PING;
    its URL (without the password), or None if it did not come up."""
    import time

    import redis

    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", *(["--requirepass", password] if password else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, password=password or None)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None:
            try:
                client.ping()
                return process, url
            except redis.ConnectionError:
                time.sleep(0.05)
    finally:
        client.close()
    stop_process(process)
    return None


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A private redis-server on a free loopback port, for the whole session; its URL.

    Skipped where redis-server is not installed, except on CI (`CI=true`), where
    `.ci/run` installs it and the Redis tests must run.
    """
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not installed; .ci/run should have installed it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    for _attempt in range(3):  # another process may take the free port first
        started = start_redis(binary)
        if started is None:
            continue
        process, url = started
        try:
            yield url
        finally:
            stop_process(process)
        return
    pytest.fail("redis-server did not start on a free port in three tries")


@pytest.fixture(params=["sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty state store, once for each backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'state' / 'state.db'}"
    import redis

    url: str = request.getfixturevalue("redis_server")
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()
    return url
