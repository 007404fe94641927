"""`igor chat`: the local console, as a person at a terminal uses it."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from igor_cli.chat.console import run_console
from igor_cli.config import Environment
from igor_cli.errors import NotRegistered
from igor_cli.render.slack import render_error
from igor_cli.sandbox import Simulator
from tests.fakes.clock import FakeClock

ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0  # generous bounds: the machine may be busy


def chat(clock: FakeClock, text: str, *, sleep: Callable[[float], None] | None = None) -> str:
    out = io.StringIO()
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=sleep or clock.sleep)
    assert run_console(env, "me@laptop", io.StringIO(text), out) == 0
    return out.getvalue()


def test_a_leading_slash_igor_is_accepted(sim: Simulator, clock: FakeClock) -> None:
    said = chat(clock, "/igor list -s shop\n/IGOR\n")
    assert "2 stacks:" in said
    assert "Unknown command" not in said and "Usage:" not in said


def test_tables_stand_on_their_own_lines_and_fit_the_screen(
    sim: Simulator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.add_stacks(1, prefix="customer-accounts-portal")
    monkeypatch.setenv("COLUMNS", "80")
    said = chat(clock, "list\n")
    lines = said.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("NAME"))
    assert lines[header - 1].endswith("igor> 8 stacks:")
    table = lines[header : header + 9]
    assert all(len(line) <= 80 for line in table)
    assert [line.split()[0] for line in table[1:3]] == ["api", "blog"]  # from the left edge
    # The name is what is typed next: never cut; other columns give way.
    assert any(line.startswith("customer-accounts-portal-0001 ") for line in table)
    assert "…" not in "\n".join(table)


def test_emoji_codes_become_emoji(sim: Simulator, clock: FakeClock) -> None:
    said = chat(clock, "deploy -s blog\nlist -s nosuch\n")
    assert "igor> 🚀 Deploy started: blog (production)." in said
    assert "igor> ✅ Deployed blog (production) in" in said  # the follow-up
    assert not re.search(r":[a-z_]+:", said)


def test_a_terminal_without_emoji_gets_words() -> None:
    from igor_cli.render.text import emoji_text

    assert emoji_text(":white_check_mark: Deployed", "ascii") == "[done] Deployed"
    assert emoji_text(":x: failed :custom: web:1.4:", "utf-8") == "❌ failed :custom: web:1.4:"


def test_every_emoji_code_igor_uses_is_known() -> None:
    # What Slack shows as an emoji must never reach the console as a code.
    from igor_cli.render.text import EMOJI

    used = set()
    for path in (ROOT / "igor_cli").rglob("*.py"):
        used |= set(re.findall(r"[\"' ](:[a-z0-9_+-]+:)[\"' ]", path.read_text()))
    assert used, "no emoji code found: the pattern is wrong"
    assert used <= set(EMOJI), sorted(used - set(EMOJI))


def test_without_a_token_the_console_says_so_plainly(clock: FakeClock) -> None:
    said = chat(clock, "list\n")
    first = said.splitlines()[1]
    assert first.startswith("igor> 🔑 No Cloud 66 token is set.")
    assert "`igor register`" in first and "`igor --sandbox chat`" in first
    assert "No Cloud 66 personal access token is set." in said  # the command's own answer
    assert "add --sandbox" not in said  # a shell hint, wrong in chat


def test_without_a_token_slack_does_not_speak_of_a_stored_token() -> None:
    text = render_error(NotRegistered("No Cloud 66 personal access token is set.")).text
    assert "No Cloud 66 token is set" in text
    assert "stored token" not in text


def test_a_follow_up_redraws_the_prompt(sim: Simulator, clock: FakeClock) -> None:
    # The follow-up waits until the console is back at its prompt, as in real life.
    release = threading.Event()

    def sleep(seconds: float) -> None:
        release.wait(WAIT)
        clock.sleep(seconds)

    read_end, write_end = os.pipe()
    out = io.StringIO()
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=sleep)
    with os.fdopen(read_end) as stdin, os.fdopen(write_end, "w") as typed:
        console = threading.Thread(target=run_console, args=(env, "me", stdin, out))
        console.start()
        try:
            typed.write("deploy -s blog\n")
            typed.flush()
            deadline = time.monotonic() + WAIT
            started = (
                "Deploy started: blog (production).\n"
                "      I'll post the outcome in this thread.\nyou> "
            )
            while not out.getvalue().endswith(started):
                assert time.monotonic() < deadline, out.getvalue()
                time.sleep(0.02)
            release.set()
            while "Deployed blog" not in out.getvalue():
                assert time.monotonic() < deadline, out.getvalue()
                time.sleep(0.02)
            time.sleep(0.1)
            said = out.getvalue()
            line = next(line for line in said.splitlines() if "Deployed blog" in line)
            assert line.startswith("igor> ")  # not glued to the prompt it interrupted
            assert said.endswith(line + "\nyou> ")  # and the prompt again, below it
        finally:
            release.set()
            typed.write("quit\n")
            typed.flush()
            console.join(WAIT)
    assert not console.is_alive()


# -- on a real terminal: readline --------------------------------------------------


class Pty:
    """`python -c CODE` on a pseudo-terminal."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.screen = b""

    def __enter__(self) -> Pty:
        self.master, slave = os.openpty()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm", "COLUMNS": "100"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", self.code], stdin=slave, stdout=slave, stderr=slave,
            env=env, start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        return self

    def wait_for(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + WAIT
        while self.screen.decode(errors="replace").count(text) < count:
            assert time.monotonic() < deadline, self.screen.decode(errors="replace")[-2000:]
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:
                    break

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT)
        os.close(self.master)


CHAT = (
    "import sys\n{}sys.argv = ['igor', '--sandbox', 'chat']\n"
    "from igor_cli.__main__ import main\nmain()"
)
NO_READLINE = "sys.modules['readline'] = None  # as on a Python built without it\n"


def test_lines_are_edited_and_remembered_between_sessions() -> None:
    history = Path(os.environ["IGOR_CACHE_DIR"]) / "chat-history"
    with Pty(CHAT.format("")) as first:
        first.wait_for("you> ")
        first.type("list -s sxop")
        first.type("\x1b[D\x1b[D\x7fh\r")  # left, left, backspace, h: "list -s shop"
        first.wait_for("2 stacks:")
        first.type("\x1b[A\r")  # up: the same line again
        first.wait_for("2 stacks:", 2)
        first.type("quit\r")
        assert first.process.wait(timeout=WAIT) == 0
    assert "list -s shop" in history.read_text()
    with Pty(CHAT.format("")) as second:
        second.wait_for("you> ")
        second.type("\x1b[A\r")  # the last session's line
        second.wait_for("2 stacks:")
        second.type("\x04")
        assert second.process.wait(timeout=WAIT) == 0


def test_without_readline_the_console_still_works() -> None:
    with Pty(
        CHAT.format("sys.modules['readline'] = None  # as on a Python built without it\n")
    ) as pty:
        pty.wait_for("No line editing")
        pty.type("list -s shop\r")
        pty.wait_for("2 stacks:")
        pty.type("\x04")
        assert pty.process.wait(timeout=WAIT) == 0
    assert not (Path(os.environ["IGOR_CACHE_DIR"]) / "chat-history").exists()


# -- issue 26: words whole, and Ctrl-C clears the line ------------------------------


def test_words_are_broken_between_words_at_the_screens_width(
    sim: Simulator, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    said = chat(clock, "cancel -s shop\nwhoami\n")
    lines = said.splitlines()
    answer = [line for line in lines if "stacks named" in line or line.startswith(" " * 6)]
    assert len(answer) >= 2, said  # the error takes more than one line at 60 columns
    assert all(len(line) <= 60 for line in lines if not line.startswith("you> ")), said
    words = " ".join(" ".join(lines).split())
    # Every word whole, in order: the terminal would otherwise break `(production,` anywhere.
    assert "There are 2 stacks named 'shop' (production, staging)." in words
    assert "Choose one with -e, for example `-e production`." in words
    continued = [line for line in lines if line.startswith(" " * 6)]
    assert continued and all(line[6] != " " for line in continued)  # under igor's words


def test_ctrl_c_at_the_prompt_clears_the_line_and_stays() -> None:
    import signal

    with Pty(CHAT.format("")) as pty:
        pty.wait_for("you> ")
        pty.type("deploy -s blo")  # typed, never sent
        time.sleep(0.2)
        pty.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        pty.wait_for("you> ", 2)
        assert pty.process.poll() is None, pty.screen.decode(errors="replace")
        pty.type("list -s shop\r")
        pty.wait_for("2 stacks:")
        pty.type("quit\r")
        assert pty.process.wait(timeout=WAIT) == 0
    screen = pty.screen.decode(errors="replace")
    assert "Deploy started" not in screen and "Traceback" not in screen


def test_the_console_says_what_to_do_next_as_chat_does(sim: Simulator, clock: FakeClock) -> None:
    # The hints in chat's words came only to Slack: the console said the refusal alone.
    sim.start_foreign_deployment("blog", "production")  # someone else's, running
    said = chat(clock, "deploy -s blog -w false\n")
    assert "is busy, not queued" in said
    assert "Ask again with `-w true` to queue behind the running deployment." in said
