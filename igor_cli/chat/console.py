"""`igor chat`: a local console that talks to the bot's own bridge.

Like Hubot's shell adapter: type what you would type in Slack, read what igor
answers, follow-ups included. The console is a peer of the Slack adapter: it
renders the chat core's replies as plain text. Nothing reaches Slack; with
--sandbox nothing reaches Cloud 66 either.

On a terminal, lines are read with readline when Python has it (editing, and a
history kept between sessions in igor's cache dir); without it, or when the
input is not a terminal, lines are read plainly.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import uuid
from pathlib import Path
from types import ModuleType
from typing import TextIO

from igor_cli.chat.bridge import Bridge
from igor_cli.chat.follow import Followers, News, Watcher
from igor_cli.chat.text import strip_address
from igor_cli.config import Environment
from igor_cli.core.follow import FollowPolicy, seconds_running
from igor_cli.identity import Origin
from igor_cli.outside_text import printable
from igor_cli.render.sentences import wrapped
from igor_cli.render.text import ConsoleText, emoji_text, render_console, render_news_console

PROMPT = "you> "
LEAD = "igor> "
EXITS = {"exit", "quit", "exit()", ":q", "/quit", "/exit"}  # `exit` no longer cancels
HISTORY_LINES = 1000
# Slack's slash command, as someone used to it types it: `/igor deploy -s shop`.
_SLASH = re.compile(r"^/igor(?:\s+|$)", re.IGNORECASE)


class Console:
    """Reads lines after the prompt and shows igor's words, whoever writes them when."""

    def __init__(
        self, env: Environment, stdin: TextIO, stdout: TextIO, line_editor: ModuleType | None
    ) -> None:
        self.env = env
        self.stdin = stdin
        self.stdout = stdout
        self.readline = line_editor
        self.lock = threading.Lock()
        self.prompting = False  # the prompt is on screen, waiting for a line
        self.on_terminal = _is_terminal(stdout)

    def width(self) -> int | None:
        """The screen's width for tables (None when piped without COLUMNS)."""
        columns = self.env.environ.get("COLUMNS", "")
        if columns.isdigit():
            return int(columns)
        return shutil.get_terminal_size().columns if self.on_terminal else None

    def read(self) -> str | None:
        """The next line typed; None at the end of input. Ctrl-C drops what was typed
        and asks again, as a shell does (Ctrl-D, `exit` or `quit` leave)."""
        with self.lock:
            self.prompting = True
        try:
            if self.readline is not None:
                try:
                    return input(PROMPT)
                except EOFError:
                    return None
            with self.lock:
                self.stdout.write(PROMPT)
                self.stdout.flush()
            line = self.stdin.readline()
            return line if line else None
        except KeyboardInterrupt:
            with self.lock:
                self.stdout.write("\n")  # the terminal echoed ^C: the next prompt below it
                self.stdout.flush()
            return ""
        finally:
            with self.lock:
                self.prompting = False

    def show(self, said: ConsoleText) -> None:
        """igor's words after `igor> `, then its table on lines of their own, at full width.

        Said while the prompt waits (a follow-up), the prompt and what was being
        typed are drawn again below.
        """
        encoding = getattr(self.stdout, "encoding", None) or "utf-8"
        # Others' words (a lock's reason, a stack's name) carry no escape sequence here.
        mark = emoji_text(said.emoji, encoding)
        lines = self._lead_lines(mark, printable(said.lead)) if said.lead else []
        lines += [printable(line) for line in said.table]
        with self.lock:
            if self.prompting:
                # Over the prompt on a terminal; below it when piped.
                self.stdout.write("\r\x1b[K" if self.on_terminal else "\n")
            self.stdout.write("\n".join(lines) + "\n")
            if self.prompting:
                typed = self.readline.get_line_buffer() if self.readline is not None else ""
                self.stdout.write(PROMPT + typed)
            self.stdout.flush()

    def _lead_lines(self, mark: str, text: str) -> list[str]:
        """igor's words after `igor> `, broken between words to the screen's width (the
        terminal would break them anywhere), each line under the first indented."""
        encoding = getattr(self.stdout, "encoding", None) or "utf-8"
        text = emoji_text(text, encoding)
        width = self.width()
        # An emoji takes two cells on screen (one or two characters); a word, its length.
        cells = (len(mark) if mark.isascii() else 2) + 1 if mark else 0
        first = len(LEAD) + cells
        broken = wrapped(text, width - len(LEAD), first - len(LEAD)) if width else None
        lines = broken if broken is not None else text.split("\n")
        lines[0] = f"{mark} {lines[0]}" if mark else lines[0]
        return [LEAD + lines[0], *(" " * len(LEAD) + line for line in lines[1:])]

    def note(self, text: str) -> None:
        """A line of the console's own (not igor's words), broken between words."""
        width = self.width()
        lines = wrapped(text, width) if width else [text]
        with self.lock:
            self.stdout.write("\n".join(lines) + "\n")
            self.stdout.flush()


def run_console(env: Environment, user: str, stdin: TextIO, stdout: TextIO) -> int:
    """Read lines until end of input; answer each as the bot would."""
    editor = _line_editor(stdin, stdout)
    history = env.cache_dir() / "chat-history"
    if editor is not None:
        _load_history(editor, history)
    console = Console(env, stdin, stdout, editor)
    try:
        return _converse(env, user, console)
    finally:
        if editor is not None:
            _save_history(editor, history)


def _converse(env: Environment, user: str, console: Console) -> int:
    bridge = Bridge(env)
    followers = Followers(
        bridge.connect,
        FollowPolicy(interval=env.follow_interval, clock=env.monotonic, sleep=env.sleep),
    )

    def tell(news: News) -> None:
        console.show(render_news_console(news))

    session = uuid.uuid4().hex[:12]
    console.note(
        "Talk to igor as you would in Slack (e.g. `list`, `deploy -s shop`). "
        "Ctrl-D, `exit` or `quit` to leave."
    )
    if console.stdin.isatty() and console.readline is None:
        console.note("(No line editing: this Python has no readline module.)")
    missing = _missing_token(env)
    if missing:
        console.show(ConsoleText(missing, emoji=":key:"))
    for number, line in enumerate(iter(console.read, None), start=1):
        text, _ = strip_address(_SLASH.sub("", line.strip()), "", "igor")
        if not text:
            continue
        if text.lower() in EXITS:
            break
        # Unique across sessions: a request id seen at Cloud 66 means "this very request".
        reply = bridge.handle(text, Origin("chat", user, f"console-{session}-{number}"))
        console.show(render_console(reply, env.clock(), console.width()))
        outcome = reply.deployment_to_follow
        if outcome is not None:
            already = seconds_running(outcome, env.clock())
            watcher = Watcher(user, tell, what=outcome.what)
            followers.watch(outcome.stack, outcome.action_id, watcher, already)
    if followers.active:
        console.note(f"\nWaiting for {followers.active} deployment(s) to finish (Ctrl-C to stop).")
        followers.join()
    return 0


def _missing_token(env: Environment) -> str:
    """ "No Cloud 66 token is set ..." when none is (and not in the sandbox); "" otherwise."""
    if env.in_sandbox:
        return ""
    from igor_cli.credentials import TokenKind, find_token
    from igor_cli.errors import IgorError
    from igor_cli.render.text import HOW_TO_REGISTER

    try:
        if find_token(TokenKind.CLOUD66, env) is not None:
            return ""
    except IgorError:
        return ""  # a token there is, only unusable: the first command says why
    return f"No Cloud 66 token is set. {HOW_TO_REGISTER}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _line_editor(stdin: TextIO, stdout: TextIO) -> ModuleType | None:
    """readline, when the console reads the process's own terminal and Python has it."""
    import sys

    if stdin is not sys.stdin or stdout is not sys.stdout or not _is_terminal(stdin):
        return None  # input() reads and writes the process's own streams only
    try:
        import readline
    except ImportError:
        return None
    return readline


def _load_history(editor: ModuleType, path: Path) -> None:
    editor.set_history_length(HISTORY_LINES)
    with contextlib.suppress(OSError):  # no history yet, or unreadable: start afresh
        editor.read_history_file(str(path))


def _save_history(editor: ModuleType, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        editor.write_history_file(str(path))
    except OSError:
        pass  # a history that cannot be kept only costs the next session's arrows
