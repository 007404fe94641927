"""`igor --version` answered before anything of the command line is imported (issue 27:
<= 2x `python -S -c pass`), saying what the full path says."""

from __future__ import annotations

import subprocess
import sys

import pytest

from igor_cli.sandbox import Simulator
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


def test_igor_serve_converts_every_command_at_start_not_on_its_first_use() -> None:
    # A burst's acks are due while its first commands run: a first `deploy`, a first bad
    # value (typer's own conversion imports pydantic: 110 ms) must find it all done.
    code = (
        "import sys\n"
        "from igor_cli.chat.slack import lifecycle\n"
        "lifecycle._load_ahead()\n"
        "from igor_cli.chat import bridge\n"
        "before = set(sys.modules)\n"
        "for line in ('deploy -s blog -w maybe', 'cancel -s shop', 'list --bogus',\n"
        "             'deploy -s api -v web --dry-run', 'lock -s shop', 'help deploy'):\n"
        "    try:\n"
        "        bridge.parse(line.split())\n"
        "    except BaseException:\n"
        "        pass\n"
        "new = set(sys.modules) - before\n"
        "heavy = ('pydantic', 'typer._adapters', 'igor_cli.features', 'igor_cli.state')\n"
        "print(sorted(m for m in new if m.startswith(heavy)))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_the_igor_command_is_our_own_script_importing_nothing_before_igor() -> None:
    # pip's generated launcher imports `re` and compiles a pattern before igor starts:
    # about 6 ms of the 2x budget. The wheel ships igor_cli/igor instead (pyproject's
    # shared-scripts): it imports only sys before igor, and runs as installed.
    import ast
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-scripts"] == {
        "igor_cli/igor": "igor"
    }
    assert "scripts" not in project["project"]  # no generated launcher beside it
    script = root / "igor_cli" / "igor"
    assert script.read_text().startswith("#!python\n")  # installers rewrite it
    imported = [
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert imported == ["sys", "igor_cli.__main__"]
    ran = subprocess.run(
        [sys.executable, str(script), "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.startswith("igor ")


@pytest.mark.parametrize(
    ("args", "collects"),
    [(["list"], False), (["watch", "-s", "shop"], True), (["slack-manifest"], True)],
)
def test_a_command_that_answers_at_once_runs_no_garbage_collection(
    sim: Simulator, args: list[str], collects: bool
) -> None:
    # Start-up makes only what lives until exit, and a command that answers at once little
    # else: the collector's passes are waste (issue 27). One that runs long (it follows a
    # deployment, or it is the bot or another set-up command) has the collector on again.
    # Counted from main() on: what Python does before it (its start, the script's one
    # import) may cross a collection threshold by chance.
    probe = (
        "import atexit, gc, sys\n"
        "seen = []\n"
        "atexit.register(lambda: sys.__stderr__.write(\n"
        "    f'\\nCOLLECTED {bool(seen)} ENABLED {gc.isenabled()}'))\n"
        f"sys.argv = ['igor', *{args!r}]\n"
        "from igor_cli.__main__ import main\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and seen.append(info))\n"
        "main()\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Traceback" not in ran.stderr, ran.stderr
    assert ran.stdout or args[0] == "watch"  # watch: nothing deploying, said on stderr
    said = ran.stderr.rsplit("\n", 1)[-1]
    assert said == "COLLECTED False ENABLED False" if not collects else said.endswith("True")
