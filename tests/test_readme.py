"""The README shows real output: help blocks must match what igor prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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
