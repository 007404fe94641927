"""`igor --version` answered before anything of the command line is imported (issue 27:
<= 2x `python -S -c pass`), saying what the full path says."""

from __future__ import annotations

import subprocess
import sys

import pytest

from igor_cli.terminal import main


def test_the_fast_version_says_what_the_command_line_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--version"]) == 0
    full = capsys.readouterr().out
    ran = subprocess.run(
        [sys.executable, "-m", "igor_cli", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, full, "")
    assert full.startswith("igor ")


def test_version_among_other_words_takes_the_command_line() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "igor_cli", "--version", "--nosuch"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode != 0  # the full path: an unknown option is a usage error
    assert "--nosuch" in ran.stderr
