"""A person at a terminal: the lines they type (register, deregister), and a real
pseudo-terminal of a given width, read back as the screen shows it (pyte)."""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
WAIT = 30.0  # a bound on a hang, not a budget: the machine may be busy


# igor's console script, with its Environment's follow interval set.
_WITH_INTERVAL = (
    "import sys\n"
    "from igor_cli.config import Environment\n"
    "from igor_cli.terminal import main\n"
    "sys.exit(main(sys.argv[1:], Environment(follow_interval={})))\n"
)


class TerminalInput(io.StringIO):
    """Standard input that is a terminal: the lines a person will type, in order."""

    def isatty(self) -> bool:
        return True


class PtyIgor:
    """`python -m igor_cli ARGS` on a pseudo-terminal `columns` wide, as a person runs it.

    The window size is set on the terminal itself (no COLUMNS), so igor and rich learn
    it as they would from xterm or tmux; what igor writes is fed to a terminal emulator
    (pyte), so `lines` is what the person sees: a line longer than the screen wraps
    there, as it would. Standard error goes to the screen too, or (`stderr_apart`) to a
    pipe of its own, read as `stderr`.
    """

    def __init__(
        self,
        *args: str,
        columns: int = 80,
        rows: int = 400,
        env: dict[str, str | None] | None = None,
        stderr_apart: bool = False,
        follow_interval: float | None = None,
    ) -> None:
        """`follow_interval`: seconds between looks at a followed deployment (igor's
        Environment setting; 5 by default), for a test that follows one."""
        import pyte

        self.args = args
        self.follow_interval = follow_interval
        self.columns = columns
        self.rows = rows
        self.extra = env or {}
        self.stderr_apart = stderr_apart
        self.raw = b""
        self.stderr = b""
        self.screen = pyte.Screen(columns, rows)
        self.stream = pyte.ByteStream(self.screen)

    def __enter__(self) -> PtyIgor:
        import fcntl
        import struct
        import termios

        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", self.rows, self.columns, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", **self.extra}
        env.pop("COLUMNS", None)
        env.pop("LINES", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "igor_cli", *self.args]
        if self.follow_interval is not None:
            command = [sys.executable, "-c", _WITH_INTERVAL.format(self.follow_interval),
                       *self.args]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdin=slave, stdout=slave,
            stderr=subprocess.PIPE if self.stderr_apart else slave,
            env={k: v for k, v in env.items() if v is not None},
            start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        return self

    def _read(self, wait: float) -> bool:
        """Take what igor wrote within `wait` seconds; False once it can write no more."""
        streams = [self.master]
        if self.stderr_apart and self.process.stderr is not None:
            streams.append(self.process.stderr.fileno())
        ready, _, _ = select.select(streams, [], [], wait)
        alive = bool(ready)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal's other end closed: igor is done
                chunk = b""
            if fd == self.master:
                self.raw += chunk
                self.stream.feed(chunk)
            else:
                self.stderr += chunk
            alive = alive and bool(chunk)
        return alive

    def wait_for(self, text: str, count: int = 1, timeout: float = WAIT) -> None:
        """Until `text` has appeared `count` times in what igor wrote (the screen's bytes)."""
        deadline = time.monotonic() + timeout
        while self.written.count(text) < count:
            assert time.monotonic() < deadline, f"{text!r} never came; the screen:\n{self.text}"
            if not self._read(0.05) and self.process.poll() is not None:
                assert self.written.count(text) >= count, f"{text!r} never came:\n{self.text}"

    def interrupt(self) -> None:
        """What Ctrl-C sends."""
        self.process.send_signal(signal.SIGINT)

    def wait(self, timeout: float = WAIT) -> int:
        """igor's exit code, once it ended; everything it wrote is read."""
        code = self.process.wait(timeout=timeout)
        while self._read(0.05):
            pass
        return code

    @property
    def written(self) -> str:
        """Everything written to the terminal, escape codes and all."""
        return self.raw.decode(errors="replace")

    @property
    def lines(self) -> list[str]:
        """The screen's lines as the person sees them, without trailing blanks."""
        shown = [line.rstrip() for line in self.screen.display]
        while shown and not shown[-1]:
            shown.pop()
        return shown

    @property
    def text(self) -> str:
        """The screen as text."""
        return "\n".join(self.lines)

    def __exit__(self, *exc: Any) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT)
        with contextlib.suppress(OSError):
            os.close(self.master)
        if self.process.stderr is not None:
            self.process.stderr.close()
