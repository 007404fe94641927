"""Settings: environment variables, the TOML config file, the sandbox switch.

Names are fixed by SPEC section 2. Environment variables win over the config
file; tokens are handled in `credentials.py`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from igor_cli.errors import UsageProblem

DEFAULT_API_URL = "https://app.cloud66.com/api/3"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_TRUE = {"1", "true", "yes", "on"}


class ConfigError(UsageProblem):
    """The config file exists but cannot be read or parsed."""


def now_utc() -> datetime:
    """The current time, aware."""
    return datetime.now(UTC)


@dataclass
class Environment:
    """What a command runs in: variables, clocks, streams. Tests pass their own.

    Streams default to `sys.stdout`/`sys.stderr` looked up when used, so that
    test runners that swap them are honoured.
    """

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    clock: Callable[[], datetime] = now_utc
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    stdout: TextIO | None = None
    stderr: TextIO | None = None
    follow_interval: float = 5.0
    slack_ping_interval: float = 5.0  # how soon a dead Socket Mode connection is noticed
    sandbox: bool = False

    @property
    def out(self) -> TextIO:
        """Where results go."""
        return self.stdout or sys.stdout

    @property
    def err(self) -> TextIO:
        """Where progress and diagnostics go."""
        return self.stderr or sys.stderr

    def flag(self, name: str) -> bool:
        """An on/off environment variable such as IGOR_SANDBOX=1."""
        return self.environ.get(name, "").strip().lower() in _TRUE

    @property
    def in_sandbox(self) -> bool:
        """`--sandbox` or IGOR_SANDBOX=1."""
        return self.sandbox or self.flag("IGOR_SANDBOX")

    def config_path(self) -> Path:
        """IGOR_CONFIG, else `<user config dir>/igor/config.toml`."""
        explicit = self.environ.get("IGOR_CONFIG")
        if explicit:
            return Path(explicit).expanduser()
        from platformdirs import user_config_dir

        return Path(user_config_dir("igor")) / "config.toml"

    def cache_dir(self) -> Path:
        """Where igor keeps its caches and the sandbox's state."""
        explicit = self.environ.get("IGOR_CACHE_DIR")
        if explicit:
            return Path(explicit).expanduser()
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("igor"))

    def config(self) -> dict[str, Any]:
        """The parsed config file ({} when there is none)."""
        return read_config(self.config_path())

    def api_url(self) -> str:
        """IGOR_API_URL, else `[cloud66] api_url` in the config file, else Cloud 66."""
        url = self.environ.get("IGOR_API_URL")
        if url:
            return url
        section = self.config().get("cloud66", {})
        value = section.get("api_url") if isinstance(section, dict) else None
        return str(value) if value else DEFAULT_API_URL

    def slack_api_url(self) -> str:
        """IGOR_SLACK_API_URL, else Slack."""
        return self.environ.get("IGOR_SLACK_API_URL") or DEFAULT_SLACK_API_URL


def read_config(path: Path) -> dict[str, Any]:
    """Parse the TOML config file; a missing file is an empty config."""
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {path}: {exc.strerror}.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"The config file {path} is not valid TOML: {exc}.",
            "Fix the file, or point IGOR_CONFIG at another one.",
        ) from None
