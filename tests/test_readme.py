"""The README shows real output: help blocks must match what igor prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"<!-- help: (?P<command>[\w-]+) -->\n```text\n(?P<text>.*?)\n```", re.S)


def help_blocks() -> list[tuple[str, str]]:
    return [(m["command"], m["text"]) for m in BLOCK.finditer(README.read_text())]


def test_the_readme_has_help_blocks() -> None:
    assert help_blocks(), "README.md lost its <!-- help: ... --> blocks"


@pytest.mark.parametrize(("command", "shown"), help_blocks())
def test_help_in_the_readme_is_what_igor_prints(command: str, shown: str) -> None:
    # As a person sees it: the real program, in an 80-column terminal.
    words = ["-h"] if command == "igor" else [command, "-h"]  # `igor`: the command list
    ran = subprocess.run(
        [sys.executable, "-m", "igor_cli", *words],
        env={**os.environ, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.rstrip("\n") == shown, (
        f"README.md's `igor {' '.join(words)}` block is out of date; it should read:\n{ran.stdout}"
    )


# -- the first screen, and the sandbox tour as a script (issue 26 item 3) -----------------


def _block_after(heading: str) -> list[str]:
    text = README.read_text()
    start = text.index(heading) if heading else 0
    block = re.search(r"```sh\n(.*?)\n```", text[start:], re.S)
    assert block is not None, f"no ```sh block after {heading!r}"
    return block[1].splitlines()


def test_the_readme_opens_with_the_two_set_up_commands() -> None:
    # Each makes its virtual environment first: Debian's system pip refuses to install
    # (externally-managed-environment) outside one.
    first, second = _block_after("")  # exactly two
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert first == venv + "pip install . && igor --sandbox list"
    assert second == venv + "pip install -e '.[test]' && python -m pytest"
    opening = README.read_text().split("## ", 1)[0]
    assert "takes a few" in opening and "minutes" in opening
    assert opening.index(first) < opening.index("virtual environment")  # said after, not before


def test_ci_runs_the_readmes_test_command() -> None:
    # .ci/run installs and tests as the README's second command does (in its own venv).
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci and "python -m pytest" in ci


def test_every_line_of_the_sandbox_tour_does_what_it_says_in_order(igor: Any) -> None:
    # igor's own sandbox, on the test's clock: a deployment's minute passes while igor
    # follows it (the fake clock's sleep), so the tour runs as a person would, at once.
    import getpass
    import shlex

    me = getpass.getuser()
    lines = _block_after("## Try it in the sandbox")
    assert len(lines) >= 10
    for line in lines:
        command, _, comment = line.partition("#")
        words = shlex.split(command)
        assert words[0] == "igor"
        ran = igor(*words[1:])
        said = ran.stdout + ran.stderr
        assert "Traceback" not in said and "unexpected error" not in said, (line, said)
        quoted = re.findall(r'"([^"]+)"', comment)
        code = re.search(r"\(exit (\d)\)", comment)
        if quoted or code:
            assert ran.exit_code == (int(code[1]) if code else 0), (line, said)
        else:  # a line that says only what it is about (rollback -s api) must not fail oddly
            assert ran.exit_code in (0, 1), (line, said)
        for text in quoted:
            assert " ".join(text.split()) in " ".join(said.split()), (line, said)
        if " you" in comment:  # "started by" you, "cancelled ·" you: the shell's user
            assert me in said, (line, said)
