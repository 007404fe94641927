"""igor never crashes on its surroundings and never lets a token out.

Output that cannot be written, a cache dir that cannot be, a damaged sandbox,
Ctrl-C, a keyring that cannot be loaded, tokens of the wrong shape wherever
they come from, tokens pasted as arguments, debug tracebacks and log records.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keyring
import pytest

from igor_cli.config import Environment
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from igor_cli.terminal import main
from tests.conftest import Igor, RunningBot
from tests.fakes.clock import FakeClock
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


def igor_process(
    *args: str, extra: dict[str, str | None] | None = None, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """`python -m igor_cli ARGS` from this checkout, in the test's isolated environment.

    `extra` adds variables, or removes those given as None.
    """
    env = {**os.environ, **NO_KEYRING, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    popen.setdefault("stdout", subprocess.PIPE)
    if "input" not in popen:
        popen.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        [sys.executable, "-m", "igor_cli", *args],
        env={k: v for k, v in env.items() if v is not None},
        stderr=subprocess.PIPE, text=True, timeout=60, check=False, **popen,
    )  # fmt: skip


def no_crash(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "unexpected error" not in stderr, stderr


# -- output that cannot be written ---------------------------------------------------

WRITERS = [["--version"], ["-h"], ["--sandbox", "list"], ["--sandbox", "list", "--json"],
           ["slack-manifest"]]  # fmt: skip
SANDBOX_NOTE = "Sandbox: igor's built-in Cloud 66 simulator, not your account.\n"


def said(ran: subprocess.CompletedProcess[str], args: list[str]) -> str:
    """stderr less the line that marks the sandbox's output (expected, and on stderr)."""
    if "--sandbox" in args:
        assert ran.stderr.startswith(SANDBOX_NOTE), ran.stderr
        return ran.stderr.removeprefix(SANDBOX_NOTE)
    return ran.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", WRITERS, ids=" ".join)
def test_a_full_disk_is_said_plainly(args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        ran = igor_process(*args, stdout=full)
    assert ran.returncode == 1
    assert said(ran, args) == "igor: cannot write the output: no space left on device.\n"


@pytest.mark.parametrize("args", WRITERS, ids=" ".join)
def test_a_reader_that_went_away_ends_igor_quietly(args: list[str]) -> None:
    read, write = os.pipe()
    os.close(read)  # `igor list | head -0`, with head already gone
    try:
        ran = igor_process(*args, stdout=write)
    finally:
        os.close(write)
    assert ran.returncode == 1
    assert said(ran, args) == ""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file descriptors")
def test_a_closed_stdout_is_not_a_crash() -> None:
    for args in (["--sandbox", "list"], ["-h"]):
        ran = igor_process(*args, stdout=None, preexec_fn=lambda: os.close(1))
        assert ran.returncode == 0, ran.stderr
        assert said(ran, args) == ""


# -- directories igor cannot write ---------------------------------------------------


def test_a_sandbox_state_dir_that_cannot_be_made_names_it_and_the_variable(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    ran = igor_process("--sandbox", "list", extra={"IGOR_CACHE_DIR": str(blocker / "cache")})
    assert ran.returncode == 1
    no_crash(ran.stderr)
    assert f"The sandbox cannot keep its state in {blocker / 'cache'}" in ran.stderr
    assert "Set IGOR_CACHE_DIR to a directory you can write to." in ran.stderr
    assert ran.stdout == ""


def test_a_home_that_cannot_hold_a_cache_is_said_plainly(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    ran = igor_process(
        "--sandbox", "list",
        extra={"HOME": str(blocker / "home"), "IGOR_CACHE_DIR": None, "XDG_CACHE_HOME": None},
    )  # fmt: skip
    assert ran.returncode == 1
    no_crash(ran.stderr)
    assert f"cannot keep its state in {blocker / 'home'}" in ran.stderr
    assert "IGOR_CACHE_DIR" in ran.stderr


def test_a_completion_cache_that_cannot_be_written_is_skipped(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("IGOR_CACHE_DIR", str(blocker / "cache"))
    ran = igor("list")
    assert ran.exit_code == 0, ran.output
    assert "shop" in ran.stdout
    assert blocker.read_text() == "not a directory"


def test_a_damaged_sandbox_state_starts_afresh(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "sandbox-state.json").write_text("{damaged")
    ran = igor_process("--sandbox", "list", "--json", extra={"IGOR_CACHE_DIR": str(cache)})
    assert ran.returncode == 0, ran.stderr
    no_crash(ran.stderr)
    assert len(json.loads(ran.stdout)) == 7
    if hasattr(Simulator(), "recovered"):  # simulators that set the damaged file aside
        assert (
            "The sandbox state could not be read (damaged, or an older igor's); it was set aside as"
            in ran.stderr
        )


def test_the_note_about_a_recovered_sandbox_names_the_file_set_aside(tmp_path: Path) -> None:
    from igor_cli.connect import _note_recovery

    err = io.StringIO()
    env = Environment(stdout=io.StringIO(), stderr=err)
    _note_recovery(env, SimpleNamespace(recovered=None))  # type: ignore[arg-type]
    assert err.getvalue() == ""
    kept = tmp_path / "sandbox-state.json.damaged"
    _note_recovery(env, SimpleNamespace(recovered=kept))  # type: ignore[arg-type]
    assert " ".join(err.getvalue().split()) == (
        "The sandbox state could not be read (damaged, or an older igor's); it was set aside as "
        f"{kept} and the sandbox started afresh."
    )


# -- Ctrl-C ---------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_at_the_token_prompt_exits_130_quietly() -> None:
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "tests.fakes.keyring.MemoryKeyring"}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, "-m", "igor_cli", "register"], env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,  # no tty
    )  # fmt: skip
    assert process.stderr is not None
    seen = bytearray()
    reader = threading.Thread(target=read_into, args=(process.stderr, seen))
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while b"personal access token" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"personal access token" in seen, bytes(seen)
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        process.kill()
        process.wait(timeout=10)
        reader.join(10)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert code == 130
    assert b"Aborted" not in seen
    assert b"Traceback" not in seen


def read_into(stream: Any, seen: bytearray) -> None:
    """Append what a stream says, as it comes, until it closes."""
    while chunk := os.read(stream.fileno(), 4096):
        seen.extend(chunk)


# -- a keyring that cannot be loaded --------------------------------------------------

BAD_BACKEND = {"PYTHON_KEYRING_BACKEND": "no_such_module.Keyring"}
BAD_BACKEND_SAID = "PYTHON_KEYRING_BACKEND names a backend that cannot be loaded"


def test_an_unloadable_keyring_backend_is_no_keyring_everywhere(sim: Simulator) -> None:
    token = {"IGOR_API_URL": sim.url, "IGOR_CLOUD66_TOKEN": SANDBOX_TOKEN}
    ran = igor_process("list", "--json", extra={**BAD_BACKEND, **token})
    assert ran.returncode == 0, ran.stderr
    assert len(json.loads(ran.stdout)) == 7

    ran = igor_process("doctor", extra={**BAD_BACKEND, **token})
    no_crash(ran.stderr)
    assert ran.returncode == 2, ran.stdout + ran.stderr  # a setting to fix: a configuration error
    assert f"✗ keyring: {BAD_BACKEND_SAID}" in ran.stdout
    assert "✓ Cloud 66 personal access token: from environment" in ran.stdout

    ran = igor_process("list", extra={**BAD_BACKEND, "IGOR_API_URL": sim.url,
                                      "IGOR_CLOUD66_TOKEN": None})  # fmt: skip
    no_crash(ran.stderr)
    assert ran.returncode == 2
    assert "No Cloud 66 personal access token is set" in ran.stderr
    assert BAD_BACKEND_SAID in ran.stderr
    assert "Fix or remove PYTHON_KEYRING_BACKEND" in ran.stderr
    assert "igor register" not in ran.stderr  # it could not store a token either

    for args, given in ((["register", "--stdin"], "a-token-1234567\n"), (["deregister", "-y"], "")):
        ran = igor_process(*args, extra=BAD_BACKEND, input=given)
        no_crash(ran.stderr)
        assert ran.returncode == 2, args
        assert f"No usable OS keyring on this machine ({BAD_BACKEND_SAID}" in ran.stderr


# -- tokens of the wrong shape, wherever they come from ------------------------------

SHAPES = [
    ("abcdefgh\nijklmnop", "contains a line break"),
    ("abcdefgh\rijklmnop", "contains a line break"),
    ("abcdefgh ijklmnop", "contains whitespace"),
    ("abcdefgh\tijklmnop", "contains whitespace"),
    ("abcdefgh\x1bijklmnop", "contains a control character"),
    ("abcdéfghijklmnop", "contains a character that is not ASCII"),
    ("xoxb-1234-5678-abcdef", "looks like a Slack bot token, not a Cloud 66 personal access token"),
]


def test_doctor_exits_2_for_a_broken_setting_even_when_a_token_is_missing_too(
    sim: Simulator,
) -> None:
    # The README: 2 when a setting is wrong. Without the keyring no token can be found
    # (that alone is 4), but the setting is what to fix first, as `igor list` says.
    extra = {**BAD_BACKEND, "IGOR_API_URL": sim.url, "IGOR_CLOUD66_TOKEN": None}
    ran = igor_process("doctor", extra=extra)
    no_crash(ran.stderr)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert f"✗ keyring: {BAD_BACKEND_SAID}" in ran.stdout
    assert "✗ Cloud 66 personal access token: missing" in ran.stdout
    assert igor_process("list", extra=extra).returncode == 2  # the same code as the command


def put_token(
    source: str, entry: str, variable: str, value: str, monkey: pytest.MonkeyPatch
) -> str:
    """Store `value` in one place igor reads tokens from; returns how igor names that place."""
    if source == "environment":
        monkey.setenv(variable, value)
        return variable
    if source == "keyring":
        keyring.set_password("igor", entry, value)
        return "stored in the keyring"
    path = Environment().config_path()
    path.write_text(f"[tokens]\n{entry} = {json.dumps(value)}\n", encoding="utf-8")
    return f"[tokens] {entry} in the config file {path}"


@pytest.mark.parametrize("source", ["environment", "keyring", "config file"])
@pytest.mark.parametrize(("value", "problem"), SHAPES, ids=[p for _, p in SHAPES])
def test_a_malformed_cloud66_token_is_refused_before_it_is_sent(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch,
    source: str, value: str, problem: str,
) -> None:  # fmt: skip
    monkeypatch.delenv("IGOR_CLOUD66_TOKEN")
    place = put_token(source, "cloud66", "IGOR_CLOUD66_TOKEN", value, monkeypatch)
    ran = igor("list")
    assert ran.exit_code == 4, ran.output
    said = " ".join(ran.stderr.split())
    assert f"{place} {problem}." in said
    assert sim.requests == []  # nothing went out with it
    for piece in (value, *value.split()):
        assert piece not in ran.output
    assert "abcdefgh" not in ran.output and "5678" not in ran.output


def test_surrounding_whitespace_is_not_a_problem(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", f"  {SANDBOX_TOKEN}\r\n")
    assert igor("list").exit_code == 0
    assert sim.count("GET", "/stacks") == 1  # the listing, once: the token was taken at once


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("SLACK_BOT_TOKEN", "xapp-1-A1-2-abcdef", "does not start with xoxb- (it looks like a "
         "Slack app-level token)"),
        ("SLACK_APP_TOKEN", "abcdefghijkl", "does not start with xapp-"),
        ("SLACK_BOT_TOKEN", "xoxb-1234\n5678", "contains a line break"),
    ],
)  # fmt: skip
def test_doctor_reports_a_malformed_slack_token(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch,
    variable: str, value: str, problem: str,
) -> None:  # fmt: skip
    unreachable = "http://127.0.0.1:9/api/"  # before: the token was sent to Slack
    monkeypatch.setenv("IGOR_SLACK_API_URL", unreachable)
    monkeypatch.setenv(variable, value)
    ran = igor("doctor")
    no_crash(ran.output)
    assert f"✗ Slack {'bot' if 'BOT' in variable else 'app-level'} token" in ran.stdout
    assert f"{variable} {problem}." in " ".join(ran.stdout.split())
    assert value not in ran.output and "5678" not in ran.output


def test_serve_reports_a_malformed_slack_token_and_stops(
    bot: RunningBot, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token + "\n" + "pasted-twice-1234")
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(10)
    assert bot.exit_code == 4
    assert "SLACK_BOT_TOKEN contains a line break." in caplog.text
    assert slack.bot_token not in caplog.text and "pasted-twice" not in caplog.text
    assert slack.connections_opened == 0
    assert slack.calls == []


# -- tokens pasted as arguments -------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["register", "tok-abcdef-0123456789"], ["register", "--slack", "xoxb-1-2-secret"],
     ["register", "--stdin", "tok-abcdef-0123456789"]],
    ids=["cloud66", "slack", "stdin"],
)  # fmt: skip
def test_a_token_given_as_an_argument_is_refused_unrepeated(
    igor: Igor, isolated: MemoryKeyring, args: list[str]
) -> None:
    ran = igor(*args, input="never-read-0123456789\n")
    assert ran.exit_code == 2
    assert args[-1] not in ran.output
    said = " ".join(ran.stderr.split())
    assert "igor register takes no arguments" in said
    assert "hidden prompt" in said and "--stdin" in said
    assert isolated.passwords == {}  # nothing read, checked or stored


# -- debug tracebacks and log records -------------------------------------------------


class ExplodingKeyring(MemoryKeyring):
    """Fails in a way igor does not expect, with every secret it can find in the message."""

    def __init__(self, leak: Callable[[], str]) -> None:
        super().__init__()
        self.leak = leak

    def get_password(self, service: str, username: str) -> str | None:
        if username == "cloud66":
            raise LookupError(f"cannot decode the entry: {self.leak()}")
        return super().get_password(service, username)


SECRETS = {
    "environment": "xoxb-secret-from-the-environment",
    "keyring": "xapp-secret-from-the-keyring",
    "config": "signing-key-secret-from-the-config",
    "malformed": "abcdefgh\nsecret-after-a-line-break",
}


def exploding_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = ExplodingKeyring(lambda: " ".join(map(repr, SECRETS.values())))
    broken.passwords[("igor", "slack-app")] = SECRETS["keyring"]
    keyring.set_keyring(broken)  # the `isolated` fixture puts the previous one back
    monkeypatch.setenv("SLACK_BOT_TOKEN", SECRETS["environment"])
    monkeypatch.setenv("IGOR_SIGNING_KEY", SECRETS["malformed"])
    Environment().config_path().write_text(f'[tokens]\nsigning-key = "{SECRETS["config"]}"\n')


def test_igor_debug_shows_the_traceback_with_every_token_scrubbed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exploding_setup(monkeypatch)
    monkeypatch.setenv("IGOR_DEBUG", "1")
    assert main(["list"]) == 1  # before: the exception, token and all, went up
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback (most recent call last)" in err
    assert "LookupError: cannot decode the entry: '[token]' '[token]' '[token]' '[token]'" in err
    for secret in (*SECRETS.values(), "secret-after-a-line-break", "abcdefgh\\n"):
        assert secret not in err


def test_without_igor_debug_an_unexpected_error_names_only_its_type(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exploding_setup(monkeypatch)
    assert main(["list"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", "igor: unexpected error (LookupError). Run again with "
                          "IGOR_DEBUG=1 to see where, and please report it.\n")  # fmt: skip


def test_scrub_replaces_each_token_as_it_may_be_spelt(monkeypatch: pytest.MonkeyPatch) -> None:
    from igor_cli.credentials import scrub

    exploding_setup(monkeypatch)
    keyring.set_keyring(MemoryKeyring())
    keyring.set_password("igor", "slack-app", SECRETS["keyring"])
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "short")  # too short to be a token: left alone
    env = Environment()
    text = (
        f"env {SECRETS['environment']} keyring {SECRETS['keyring']} "
        f"config {SECRETS['config']} repr {SECRETS['malformed']!r} "
        f"json {json.dumps(SECRETS['malformed'])} half secret-after-a-line-break; short"
    )
    assert scrub(text, env) == (
        "env [token] keyring [token] config [token] repr '[token]' json \"[token]\" "
        "half [token]; short"
    )


def test_the_log_filter_scrubs_messages_and_tracebacks(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    from igor_cli.credentials import TokenScrubber

    monkeypatch.setenv("SLACK_BOT_TOKEN", SECRETS["environment"])
    logger = logging.getLogger("igor.test-scrubber")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    scrubber = TokenScrubber(Environment(monotonic=clock), refresh_seconds=30)
    logger.addFilter(scrubber)
    try:
        logger.warning("connecting with %s", SECRETS["environment"])
        try:
            raise ValueError(f"bad header {SECRETS['environment']!r}")
        except ValueError:
            logger.exception("auth failed")
        keyring.set_password("igor", "slack-app", SECRETS["keyring"])  # registered meanwhile
        clock.advance(31)
        logger.error("app token %s", SECRETS["keyring"])
    finally:
        logger.removeFilter(scrubber)
        logger.removeHandler(handler)
        logger.propagate = True
    logged = stream.getvalue()
    assert "WARNING connecting with [token]" in logged
    assert "ValueError: bad header '[token]'" in logged
    assert "ERROR app token [token]" in logged
    assert SECRETS["environment"] not in logged and SECRETS["keyring"] not in logged


# -- the Slack manifest's names -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("x" * 36, "Slack takes an app name of 1 to 35 printable characters (that one has 36"),
        ("   ", "Slack takes an app name of 1 to 35 printable characters (that one has 0"),
        ("two\nlines", "--name holds U+000A a control character"),  # as every typed value
        ("🚀🚀", "does not make a bot user name: Slack allows lowercase letters, digits"),
        ("!!!", "does not make a bot user name"),
    ],
)
def test_slack_manifest_refuses_a_name_slack_would_not_take(
    name: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["slack-manifest", "--name", name]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert problem in " ".join(err.split())
    no_crash(err)


@pytest.mark.parametrize(
    ("name", "display_name", "begins"),
    [
        ("igor", "igor", "igor 0.1.0 is a Cloud 66 toolbelt"),
        ("Deploy Bot", "deploy-bot", "Deploy Bot runs igor 0.1.0, a Cloud 66 toolbelt"),
        ("Déploiement (prod)", "deploiement-prod", "Déploiement (prod) runs igor 0.1.0, a"),
        ("x" * 35, "x" * 35, "x" * 35 + " runs igor"),
        ("ops.bot_2", "ops.bot_2", "ops.bot_2 runs igor"),
    ],
)
def test_slack_manifest_derives_the_bot_user_name(
    igor: Igor, name: str, display_name: str, begins: str
) -> None:
    ran = igor("slack-manifest", "--name", name)
    assert ran.exit_code == 0, ran.output
    printed = json.loads(ran.stdout)
    assert printed["display_information"]["name"] == name
    assert printed["features"]["bot_user"]["display_name"] == display_name
    about = printed["display_information"]["long_description"]
    assert about.startswith(begins.replace("0.1.0", __import__("igor_cli").__version__))
    assert "igor is igor" not in about
    assert 175 <= len(about) <= 4000  # Slack's limits


def test_a_home_that_is_not_a_directory_does_not_stop_a_command(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for name in ("IGOR_CONFIG", "IGOR_CACHE_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(blocker / "home"))
    ran = igor("list", "--json")
    assert ran.exit_code == 0, ran.output
    assert len(json.loads(ran.stdout)) == 7
    ran = igor("doctor")  # reads the config file that cannot exist there: none, not an error
    assert ran.exit_code == 0, ran.output
    assert "✗" not in ran.stdout
    assert "config file: " + str(blocker / "home") in ran.stdout
    assert blocker.read_text() == "not a directory"


# -- Ctrl-C after a change may have left (issue 26 item 1) -----------------------------


def _when(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "it never happened"
        time.sleep(0.02)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")
@pytest.mark.parametrize("columns", [60, 80])
def test_ctrl_c_after_the_deploy_was_sent_says_it_may_run_and_how_to_check(
    sim: Simulator, columns: int
) -> None:
    from tests.fakes.terminal import PtyIgor

    sim.latency = 2.0  # Cloud 66 at 2 s a request: Ctrl-C comes while the POST is answered
    with PtyIgor("deploy", "-s", "blog", columns=columns, env=NO_KEYRING) as pty:
        _when(lambda: sim.count("POST", "/deployments") == 1)
        pty.interrupt()
        code = pty.wait()
    said = " ".join(pty.text.split())
    assert code == 130, pty.text
    assert "Interrupted after igor asked Cloud 66 to deploy blog (production): it may have" in said
    assert "Check with `igor watch -s blog -e production`" in said
    assert all(len(line) <= columns for line in pty.lines)
    assert "Traceback" not in said
    _when(lambda: bool(sim.stack("blog", "production")["is_busy"]))  # it did: Cloud 66 deploys


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")
def test_ctrl_c_before_anything_was_sent_says_nothing_changed(sim: Simulator) -> None:
    from tests.fakes.terminal import PtyIgor

    sim.latency = 2.0
    with PtyIgor("cancel", "-s", "blog", env=NO_KEYRING) as pty:
        _when(lambda: sim.count("GET") >= 1)  # still finding the stack
        pty.interrupt()
        code = pty.wait()
    assert code == 130
    assert "Interrupted before anything was asked of Cloud 66: nothing was changed." in pty.text
    assert sim.count("DELETE") == 0 and sim.count("POST") == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")
def test_ctrl_c_during_a_read_stays_quiet(sim: Simulator) -> None:
    from tests.fakes.terminal import PtyIgor

    sim.latency = 2.0
    with PtyIgor("list", env=NO_KEYRING) as pty:
        _when(lambda: sim.count("GET") >= 1)
        pty.interrupt()
        code = pty.wait()
    assert code == 130
    assert "Interrupted" not in pty.text and "Traceback" not in pty.text
