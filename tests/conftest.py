"""Fixtures shared by every test: isolation, a fake clock, the simulator, the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import keyring
import pytest
from typer.testing import CliRunner

from igor_cli.cli import app
from igor_cli.config import Environment
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.fakes.clock import FakeClock
from tests.fakes.keyring import MemoryKeyring

_CLEARED_PREFIXES = ("IGOR_", "SLACK_", "NO_COLOR", "PYTHON_KEYRING")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """No test sees the user's config, cache, keyring, tokens or proxies."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES) or name.upper() in _PROXIES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("IGOR_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("IGOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
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

    def __call__(self, *args: str, input: str | None = None) -> Ran:
        env = Environment(clock=self.clock.datetime, monotonic=self.clock, sleep=self.clock.sleep)
        result = self.runner.invoke(app, list(args), obj=env, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def igor(clock: FakeClock) -> Igor:
    """Run igor: `igor("deploy", "-s", "shop")`."""
    return Igor(clock)
