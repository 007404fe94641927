"""Settings: environment variables, the TOML config file, the sandbox switch.

Names are fixed by SPEC section 2. Environment variables win over the config
file; tokens are handled in `credentials.py`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO, cast

from igor_cli.errors import BadApiUrl, IgorError, UsageProblem

if TYPE_CHECKING:
    from igor_cli.state import Store
    from igor_cli.state.continuity import Continuity

DEFAULT_API_URL = "https://app.cloud66.com/api/3"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_TRUE = {"1", "true", "yes", "on"}


class ConfigError(UsageProblem):
    """The config file exists but cannot be read or parsed."""


def now_utc() -> datetime:
    """The current time, aware."""
    return datetime.now(UTC)


def os_account() -> str:
    """The name of the account igor runs as: the real user ID's, never $USER or $LOGNAME
    (anyone can set those, and a lock or a freeze's glass is keyed on this name)."""
    try:
        import pwd
    except ImportError:  # no pwd module (Windows): the login name is all there is
        import getpass

        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a user ID with no name (a container run with --user 1234)
        return f"uid-{uid}"


def shell_user(account: Callable[[], str] = os_account) -> str:
    """`alice@laptop`: who runs igor in this shell, by the operating system's account."""
    import socket

    return f"{account()}@{socket.gethostname()}"


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
    stdin: TextIO | None = None  # where answers are read (register, deregister)
    follow_interval: float = 5.0
    slack_ping_interval: float = 5.0  # how soon a dead Socket Mode connection is noticed
    sandbox: bool = False
    change_wait: float = 120.0  # seconds to wait while another igor changes the same stack
    account: Callable[[], str] = os_account  # who a shell's user is (locks, the glass)
    # What the commands and threads of one run share (not settings): the sandbox
    # simulator once started, one lock per stack for changes, and `lock` for
    # the rest (writing the completion cache, starting the sandbox).
    simulator: Any = field(default=None, init=False, repr=False, compare=False)
    # One HTTP connection pool for every Cloud 66 client of this run (tokens travel
    # with each request, never on the session): see `connect.shared_session`.
    session: Any = field(default=None, init=False, repr=False, compare=False)
    lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    _guard: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    _stack_locks: dict[str, threading.Lock] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # The stacks each thread holds (`stack_lock`): held again, a stack is not waited for.
    _holding: threading.local = field(
        default_factory=threading.local, init=False, repr=False, compare=False
    )
    # The config each thread decides on within `one_config` (read at its first ask).
    _one_config: threading.local = field(
        default_factory=threading.local, init=False, repr=False, compare=False
    )
    _store: Any = field(default=None, init=False, repr=False, compare=False)
    _continuity: Any = field(default=None, init=False, repr=False, compare=False)
    # The bot sets these: it names itself in the store's records, and says the store's
    # outages and resets in its log (a shell says them in the error it prints).
    replica: str = field(default="", init=False, compare=False)
    say_state_news: bool = field(default=False, init=False, compare=False)
    # Why audit lines are being lost now ("" when they are written), when `[audit] required`
    # holds changes back for it (the bot sets it: only the bot writes the audit file).
    audit_problem: Callable[[], str] | None = field(default=None, init=False, compare=False)
    # The config file as last parsed, with its path and bytes.
    _config: tuple[Any, dict[str, Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    # A long-running process (`igor serve`) keeps the config it last accepted, whole: a
    # file that no longer reads, or that `config_check` refuses (raising an IgorError),
    # leaves that one in force, and `config_problem` says why, until the file is fixed.
    config_check: Callable[[dict[str, Any], Path], None] | None = field(
        default=None, repr=False, compare=False
    )
    config_problem: str = field(default="", init=False, repr=False, compare=False)
    _refused: Any = field(default=None, init=False, repr=False, compare=False)
    _checking: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    # Stacks' histories read moments ago and the list orders learned (paging.SharedReads,
    # made by connect.shared_reads): the bot's commands share one read of a stack.
    recent_deployments: Any = field(default=None, init=False, repr=False, compare=False)

    def stack_lock(self, uid: str, label: str = "") -> AbstractContextManager[None]:
        """Hold one stack for one change: two changes to it, in this process or in any igor
        sharing the state store, go one after the other. A thread that holds it already
        (a deploy that looked ahead: core/resolve.py) holds it on, and lets go once."""
        from igor_cli.state.mutex import one_change_at_a_time
        from igor_cli.state.store import StateUnavailable, refusing_changes

        held: set[str] = self._holding.__dict__.setdefault("uids", set())
        if uid in held:
            return nullcontext()
        with self._guard:
            process_lock = self._stack_locks.setdefault(uid, threading.Lock())
        try:
            store = self.state_or_none()
        except StateUnavailable as error:  # the claim cannot be made: no change is
            raise refusing_changes(error) from None
        change = one_change_at_a_time(
            store, process_lock, uid, label or f"stack {uid}", self.change_wait
        )
        return _holding(held, uid, change)

    def state_or_none(self) -> Store | None:
        """The state store; None only when the default file does not exist and cannot be
        made (nothing can have been kept there). A configured store that cannot be reached,
        or a file that exists but cannot be read or written, is an error: a lock there
        must not be taken for no lock."""
        from igor_cli.state.store import NeverKept

        try:
            return self.state()
        except NeverKept:
            if self.state_configured():
                raise
            return None

    def state(self) -> Store:
        """igor's state store (locks, leases), opened on first use and shared by this run.

        Once an operation has failed, the store fails fast until it answers again
        (`state/health.py`): nobody waits for a store that is down.
        """
        with self._guard:
            if self._store is None:
                from igor_cli.state import open_store
                from igor_cli.state.health import Watched

                self._store = Watched(open_store(self.state_url()), say=self.say_state_news)
            store: Store = self._store
            return store

    def state_for_change(self) -> Store | None:
        """`state_or_none`, for a change: the store must still hold what it held
        (`StoreWasReset` when a Redis came back empty, until an operator confirms it)."""
        store = self.state_or_none()
        if store is not None:
            self.continuity(store).check()
        return store

    def continuity(self, store: Store) -> Continuity:
        """What this run knows of the store's marker (state/continuity.py)."""
        from igor_cli.state.continuity import Continuity, Memory

        with self._guard:
            known: Continuity | None = self._continuity
            if known is None or known.store is not store:
                # The sandbox's store lives in the cache directory: so does what is known of it.
                where = self.cache_dir() if self.in_sandbox else self.data_dir()
                known = Continuity(
                    store, Memory(where / "stores.json"), self.clock, self.who(),
                    say=self.say_state_news,
                )  # fmt: skip
                self._continuity = known
            return known

    def who(self) -> str:
        """Who this igor is in what it leaves in the store: a bot replica, or `user@host`."""
        return self.replica or shell_user(self.account)

    def close(self) -> None:
        """Stop what this environment started (the sandbox simulator, the connections, the
        state store)."""
        with self._guard:
            simulator, self.simulator = self.simulator, None
            session, self.session = self.session, None
            store, self._store = self._store, None
        if session is not None:
            session.close()
        if simulator is not None:
            simulator.stop()
        if store is not None:
            store.close()

    @property
    def out(self) -> TextIO:
        """Where results go."""
        return self.stdout or sys.stdout

    @property
    def err(self) -> TextIO:
        """Where progress and diagnostics go."""
        return self.stderr or sys.stderr

    @property
    def input(self) -> TextIO:
        """Where answers and piped tokens are read."""
        return self.stdin or sys.stdin

    @property
    def can_ask(self) -> bool:
        """Whether a person can answer a question: standard input is a terminal."""
        stream = self.input
        try:
            return stream is not None and stream.isatty()
        except (ValueError, OSError):  # closed
            return False

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
        """The parsed config file ({} when there is none); parsed again only when its bytes
        changed.

        A command asks for it several times (the API URL, the state store, freezes, the
        token); `igor serve` asks for every command, and sees an edit at once (with
        `config_check`, only an edit it accepts: see there). Within `one_config`, the
        file is read at this thread's first ask, and that answer stands.
        """
        held = self._one_config.__dict__
        if "config" in held:
            return cast("dict[str, Any]", held["config"])
        config = self._config_on_disk()
        if held.get("depth"):
            held["config"] = config
        return config

    @contextmanager
    def one_config(self) -> Iterator[None]:
        """Within it, this thread decides on one config: the file as read at its first ask
        (a bot's command reads its rules, the channel's defaults and the freezes from one
        file, read once, however often they are asked for)."""
        held = self._one_config.__dict__
        outer = held.get("depth", 0)
        held["depth"] = outer + 1
        try:
            yield
        finally:
            held["depth"] = outer
            if not outer:
                held.pop("config", None)

    def _config_on_disk(self) -> dict[str, Any]:
        """The config file as it is now (see `config`)."""
        path = self.config_path()
        try:
            data: bytes | None = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            data = None
        except OSError:
            if self.config_check is None or self._config is None:
                return read_config(path)  # which says what is wrong
            data = b"\0unreadable"  # kept the last one: the problem is said below
        known = self._config
        if known is not None and known[0] == (path, data):
            return known[1]
        if self.config_check is None:
            config = read_config(path)
            self._config = ((path, data), config)
            return config
        with self._checking:  # one check of a new file, however many threads ask
            known = self._config
            if known is not None and (path, data) in (known[0], self._refused):
                return known[1]
            try:
                if data is None and known is not None and known[0][1] is not None:
                    # Gone (or moved away while being replaced): not "no rules at all".
                    raise ConfigError(f"The config file {path} is gone.")
                config = read_config(path)
                self.config_check(config, path)
            except IgorError as error:
                if known is None:
                    raise
                self._refused = (path, data)
                self.config_problem = " ".join(filter(None, (error.message, error.hint)))
                return known[1]
            self._config, self._refused, self.config_problem = ((path, data), config), None, ""
            return config

    def api_url(self) -> str:
        """IGOR_API_URL, else `[cloud66] api_url` in the config file, else Cloud 66."""
        url = self.environ.get("IGOR_API_URL")
        if url:
            return url
        section = self.config().get("cloud66", {})
        value = section.get("api_url") if isinstance(section, dict) else None
        return str(value) if value else DEFAULT_API_URL

    def state_url(self) -> str:
        """IGOR_STATE_URL, else `[state] url` in the config file, else a SQLite file in
        `<user data dir>/igor` (one machine; Redis shares the state between machines).

        The sandbox keeps its locks beside its own state, away from the team's
        store, unless IGOR_STATE_URL says otherwise.
        """
        url = self.environ.get("IGOR_STATE_URL", "").strip()
        if url:
            return url
        if self.in_sandbox:
            return f"sqlite://{self.cache_dir().absolute() / 'sandbox-state.db'}"
        section = self.config().get("state", {})
        value = section.get("url") if isinstance(section, dict) else None
        if value and str(value).strip():
            return str(value).strip()
        return f"sqlite://{self.data_dir().absolute() / 'state.db'}"

    def data_dir(self) -> Path:
        """`<user data dir>/igor`: the state store's file, and what igor knows of stores."""
        from platformdirs import user_data_dir

        return Path(user_data_dir("igor"))

    def state_configured(self) -> bool:
        """Whether a state store was chosen (IGOR_STATE_URL or `[state] url`), not defaulted."""
        if self.environ.get("IGOR_STATE_URL", "").strip():
            return True
        section = self.config().get("state", {})
        return isinstance(section, dict) and bool(str(section.get("url", "")).strip())

    def api_url_setting(self) -> str:
        """Where the Cloud 66 API URL in force was set, in the words a person would look for."""
        if self.environ.get("IGOR_API_URL"):
            return "IGOR_API_URL"
        section = self.config().get("cloud66", {})
        if isinstance(section, dict) and section.get("api_url"):
            return f"[cloud66] api_url in {self.config_path()}"
        return "the default"

    def checked_api_url(self) -> str:
        """`api_url()`, or BadApiUrl naming the setting when it is not a usable URL."""
        return checked_url(self.api_url(), self.api_url_setting(), DEFAULT_API_URL, "Cloud 66")

    def slack_api_url(self) -> str:
        """IGOR_SLACK_API_URL, else Slack; BadApiUrl when it is not a usable URL."""
        url = self.environ.get("IGOR_SLACK_API_URL") or DEFAULT_SLACK_API_URL
        checked_url(url, "IGOR_SLACK_API_URL", DEFAULT_SLACK_API_URL, "Slack")
        return url


_HOST_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"


@contextmanager
def _holding(held: set[str], uid: str, change: AbstractContextManager[None]) -> Iterator[None]:
    """`change` entered, with `uid` among the stacks this thread holds meanwhile."""
    with change:
        held.add(uid)
        try:
            yield
        finally:
            held.discard(uid)


def url_problem(url: str) -> str:
    """What keeps `url` from being an http(s) API base, in words; "" when nothing does."""
    import ipaddress
    import re
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # a port that is not a number raises here
    except ValueError as error:
        return (
            "its port is not a number from 0 to 65535"
            if "port" in str(error).lower()
            else "it is not a URL"
        )
    if parts.scheme.lower() not in ("http", "https"):
        return "it does not start with http:// or https://"
    if not host:
        return "it names no host"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return f"{host!r} is not a host name"
        if len(ascii_host) > 253 or not re.fullmatch(
            rf"{_HOST_LABEL}(\.{_HOST_LABEL})*\.?", ascii_host
        ):
            return f"{host!r} is not a host name"
    return ""


def checked_url(url: str, setting: str, example: str, service: str, secret: str = "") -> str:
    """`url` without surrounding space and trailing slash, or BadApiUrl naming `setting`.

    Found before any request is made. `secret` (a token) is never shown, even
    pasted into the URL by mistake.
    """
    given = (url or "").strip()
    cleaned = given.rstrip("/")
    problem = url_problem(cleaned)
    if not problem:
        return cleaned
    shown = given if not secret or secret not in given else "(a value that contains the token)"
    shown = shown if len(shown) <= 80 else shown[:79] + "…"
    where = "" if setting == "the default" else f" ({setting})"
    fix = f"Set {setting} to" if setting.isupper() else f"Fix {setting}: use"
    raise BadApiUrl(
        f"The {service} API URL {shown!r}{where} is not usable: {problem}.",
        f"{fix} a URL such as {example}, or unset it to talk to {service}.",
    )


def read_config(path: Path) -> dict[str, Any]:
    """Parse and check the TOML config file; a missing file is an empty config."""
    config, text = parse_config(path)
    validate_config(config, path, text)
    return config


def parse_config(path: Path) -> tuple[dict[str, Any], str]:
    """The config file parsed but not checked, and its text ({} and "" when there is none)."""
    import tomllib

    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # no file (HOME may not even exist)
        return {}, ""
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {path}: {exc.strerror}.") from None
    try:
        # utf-8-sig: a byte order mark (Notepad writes one) is not an error.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"The config file {path} is not UTF-8 text "
            f"(byte 0x{data[exc.start]:02x} at line {line}).",
            "Save it as UTF-8, or point IGOR_CONFIG at another file.",
        ) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"The config file {path} is not valid TOML: {exc}.",
            "Fix the file, or point IGOR_CONFIG at another one.",
        ) from None


# -- what the config file may hold ---------------------------------------------


class ValueType(NamedTuple):
    """The type a config value must have: in words, and as a test."""

    # A NamedTuple: defined at every start in a sixth of a frozen dataclass's time.
    words: str
    accepts: Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


STRING = ValueType("a string", lambda value: isinstance(value, str))
BOOLEAN = ValueType("true or false", lambda value: isinstance(value, bool))
NUMBER = ValueType("a number", _is_number)
STRINGS = ValueType(
    "an array of strings",
    lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value),
)
# A list that means "only these": empty, it would mean nothing at all (a freeze of no stacks
# that `locks` and `doctor` still show as frozen).
SOME_STRINGS = ValueType(
    "a non-empty array of strings",
    lambda value: STRINGS.accepts(value) and len(value) > 0,
)
TABLES = ValueType(
    "an array of tables",
    lambda value: isinstance(value, list) and all(isinstance(v, dict) for v in value),
)

# Table -> key -> type. Only names and top-level types: what `[slack]` means is
# checked by chat/guard.py, which can say which rule is wrong.
CONFIG_SCHEMA: dict[str, dict[str, ValueType]] = {
    "cloud66": {"api_url": STRING},
    "tokens": {
        "cloud66": STRING,
        "slack-bot": STRING,
        "slack-app": STRING,
        "slack-signing": STRING,
        "signing-key": STRING,
    },
    "slack": {
        "allow": TABLES,
        "confirm": STRINGS,
        "confirm_seconds": NUMBER,
        "channel": TABLES,
        "approve": STRINGS,
        "approvers": STRINGS,
        "notify": STRING,
        "allow_teams": STRINGS,
    },
    "audit": {"path": STRING, "required": BOOLEAN},
    "defaults": {"stack": STRING, "environment": STRING},  # targets.py
    "state": {"url": STRING},
}
WHEN = ValueType(
    'a date, a date and time, or a weekly time such as "Fri 16:00"',
    lambda value: isinstance(value, str | date | datetime),
)
# Arrays of tables (`[[freeze]]`) -> key -> type; what a freeze means is checked by
# freeze.py, which can say which window is wrong.
CONFIG_ARRAYS: dict[str, dict[str, ValueType]] = {
    "freeze": {
        "environments": SOME_STRINGS, "stacks": SOME_STRINGS, "from": WHEN, "until": WHEN,
        "timezone": STRING, "message": STRING, "break_glass": STRINGS,
    },
}  # fmt: skip


def validate_config(config: Mapping[str, Any], path: Path | str, text: str = "") -> None:
    """ConfigError for the first unknown table or key, or value of the wrong type.

    The message names the file, the line (found in `text`, best effort), the
    problem and the valid names.
    """
    for table, value in config.items():
        if table in CONFIG_ARRAYS:
            _check_array(path, text, table, value)
            continue
        keys = CONFIG_SCHEMA.get(table)
        if keys is None:
            raise _unknown_table(path, table, value, _at(_line_of(text, table)))
        if not isinstance(value, dict):
            at = _at(_line_of(text, table))
            raise _problem(path, f"'{table}'{at} must be a table ([{table}]), not {_kind(value)}")
        for key, item in value.items():
            expected = keys.get(key)
            if expected is None or not expected.accepts(item):
                at = _at(_line_of(text, table, key))
                raise _bad_key(path, table, keys, key, item, at)


def _check_array(path: Path | str, text: str, name: str, value: Any) -> None:
    """An array of tables (`[[freeze]]`): each table's keys and their types."""
    keys = CONFIG_ARRAYS[name]
    if not TABLES.accepts(value):
        at = _at(_line_of(text, name))
        raise _problem(path, f"'{name}'{at} must be tables ([[{name}]]), not {_kind(value)}")
    for number, table in enumerate(value, start=1):
        for key, item in table.items():
            expected = keys.get(key)
            if expected is None or not expected.accepts(item):
                at = _at(_line_in_array(text, name, number, key) or _line_of(text, name, key))
                raise _bad_key(path, f"[{name}]", keys, key, item, at)


def _unknown_table(path: Path | str, name: str, value: Any, at: str) -> ConfigError:
    tables = ", ".join(CONFIG_SCHEMA)
    if isinstance(value, dict):
        return _problem(
            path,
            f"unknown table [{name}]{at}; valid tables: {tables}",
            _did_you_mean(name, CONFIG_SCHEMA),
        )
    # A key outside any table: most likely one that belongs in a table.
    home = next((table for table, keys in CONFIG_SCHEMA.items() if name in keys), None)
    return _problem(
        path,
        f"unknown key '{name}' outside any table{at}; valid tables: {tables}",
        f"Put it under [{home}]." if home else _did_you_mean(name, CONFIG_SCHEMA),
    )


def _bad_key(
    path: Path | str, table: str, keys: Mapping[str, ValueType], key: str, value: Any, at: str
) -> ConfigError:
    expected = keys.get(key)
    if expected is None:
        valid = ", ".join(keys)
        return _problem(
            path,
            f"unknown key '{key}' in [{table}]{at}; valid keys: {valid}",
            _did_you_mean(key, keys),
        )
    hint = ""
    if expected is SOME_STRINGS and value == []:
        return _problem(
            path,
            f"'{key}' in [{table}]{at} is empty: it would hold back nothing",
            f"Name at least one, or leave {key} out (every one there).",
        )
    if expected is TABLES:
        hint = f"Write each one as a [[{table}.{key}]] table."
    elif expected is STRINGS and isinstance(value, str):
        import json

        hint = f"Write it as an array: {key} = [{json.dumps(value)}]"
    return _problem(
        path, f"'{key}' in [{table}]{at} must be {expected.words}, not {_kind(value)}", hint
    )


def _problem(path: Path | str, problem: str, hint: str = "") -> ConfigError:
    return ConfigError(
        f"{path}: {problem}.", hint or "Fix the file, or point IGOR_CONFIG at another one."
    )


def _did_you_mean(name: str, valid: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(valid), n=1)
    return f"Did you mean '{close[0]}'?" if close else ""


def _at(line: int | None) -> str:
    return f" at line {line}" if line else ""


def _kind(value: Any) -> str:
    """A TOML value's type in words: `an integer`, `a table`."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        tables = value and all(isinstance(v, dict) for v in value)
        return "an array of tables" if tables else "an array"
    words = {int: "an integer", float: "a number", str: "a string"}
    return words.get(type(value), "a date or time")


def _line_in_array(text: str, name: str, number: int, key: str) -> int | None:
    """The line of `key` in the `number`th `[[name]]` table: best effort."""
    import re

    header = re.compile(rf"""\s*\[\[\s*(?:{re.escape(name)}|"{re.escape(name)}")\s*\]\]""")
    assignment = re.compile(rf"""\s*(?:{re.escape(key)}|"{re.escape(key)}")\s*=""")
    seen, inside = 0, False
    for line_number, line in enumerate(text.split("\n"), start=1):
        if line.lstrip().startswith("["):
            seen += 1 if header.match(line) else 0
            inside = header.match(line) is not None and seen == number
            continue
        if seen == number and inside and assignment.match(line):
            return line_number
    return None


def _line_of(text: str, table: str, key: str | None = None) -> int | None:
    """The line defining `table` (or `key` in it): best effort, for error messages."""
    import re

    def name(word: str) -> str:
        word = re.escape(word)
        return f"""(?:{word}|"{word}"|'{word}')"""

    table_header = re.compile(rf"\s*\[\[?\s*{name(table)}\s*[\].]")
    any_header = re.compile(r"\s*\[")
    lines = text.split("\n")
    if key is None:
        direct = re.compile(rf"\s*{name(table)}\s*[=.]")
        candidates = [table_header, direct]
    else:
        dotted = re.compile(rf"\s*{name(table)}\s*\.\s*{name(key)}\s*[=.]")
        sub_header = re.compile(rf"\s*\[\[?\s*{name(table)}\s*\.\s*{name(key)}\s*[\].]")
        in_section = re.compile(rf"\s*{name(key)}\s*[=.]")
        section = False
        for number, line in enumerate(lines, start=1):
            if any_header.match(line):
                section = bool(re.match(rf"\s*\[\s*{name(table)}\s*\]", line))
            elif section and in_section.match(line):
                return number
        # Last, anywhere (an inline table: `tokens = { cloud66 = 5 }`).
        inline = re.compile(rf"(?:.*[{{,]\s*)?{name(key)}\s*=")
        candidates = [dotted, sub_header, inline]
    for pattern in candidates:
        for number, line in enumerate(lines, start=1):
            if pattern.match(line):
                return number
    return None
