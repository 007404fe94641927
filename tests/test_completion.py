"""TAB completion: the cache, the answers, the committed scripts in real shells, a light start."""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shlex
import shutil
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from datetime import datetime
from io import StringIO
from pathlib import Path

import pytest
from typer.testing import CliRunner

from igor_cli.cli import app
from igor_cli.cloud66.models import Service, Stack, StackHealth, StackStatus
from igor_cli.completion import StackCache, cache_file, cache_key, load, orders_file
from igor_cli.config import Environment
from igor_cli.sandbox import Simulator
from igor_cli.tab import COMPLETE_VAR, answer_request, main, scripts
from tests.conftest import Igor

ROOT = Path(__file__).resolve().parent.parent
COMPLETIONS = ROOT / "completions"
SHELLS = ("bash", "zsh", "fish")
FILES = {"bash": "igor.bash", "zsh": "_igor", "fish": "igor.fish"}
SHELL_TIMEOUT = 40.0
ALIASES = {"get", "show", "find", "stacks", "redeploy", "stop", "halt"}
SANDBOX_NAMES = ["api", "blog", "legacy", "Payments Portal", "search", "shop"]


def stack(name: str, environment: str = "production", uid: str = "") -> Stack:
    return Stack(
        uid=uid or f"{name}-{environment}",
        name=name,
        environment=environment,
        status=StackStatus.DEPLOYED,
        health=StackHealth.HEALTHY,
        is_busy=False,
    )


# -- asking the way a shell asks ----------------------------------------------------


def request(shell: str, line: str) -> dict[str, str]:
    """The variables each script in completions/ sets for the command line `line`."""
    if shell == "bash":
        # completions/igor.bash sends the line, a new empty word as ''.
        words = line + "''" if line.endswith(" ") else line
        return {COMPLETE_VAR: "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "-1"}
    variables = {COMPLETE_VAR: f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line}
    if shell == "fish":
        variables["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    return variables


_ZSH_ITEM = re.compile(r'"((?:[^"]|"")*)"(?::"((?:[^"]|"")*)")?')


def candidates(shell: str, answer: str) -> list[tuple[str, str]]:
    """(value, help) pairs out of one shell's answer; help is "" where there is none."""
    answer = answer.strip()
    if shell == "zsh":
        if answer in ("", "_files"):
            return []
        assert answer.startswith("_arguments '*: :((") and answer.endswith("))'"), answer

        def unescape(text: str) -> str:
            # igor writes an apostrophe as '\'' (typer's '' loses it in zsh); typer as ''.
            for escaped, plain in (
                ("'\\''", "'"),
                ('""', '"'),
                ("''", "'"),
                ("\\$", "$"),
                ("\\`", "`"),
            ):
                text = text.replace(escaped, plain)
            return text.replace("\\\\:", ":")

        return [
            (unescape(value), " ".join(unescape(help_ or "").split()))
            for value, help_ in _ZSH_ITEM.findall(answer[len("_arguments '*: :((") : -3])
        ]
    pairs = []
    for line in answer.splitlines():
        value, _, help_ = line.partition("\t")
        pairs.append((value, help_))
    return pairs


def via_typer(shell: str, line: str) -> list[tuple[str, str]]:
    """Ask typer's own completion, in process (what typer's generic scripts would get)."""
    from typer.completion import completion_init

    from igor_cli.cli import load_every_family

    completion_init()  # typer's classes (igor leaves out typer's --install-completion)
    load_every_family()  # typer converts every command itself, as answer_request lets it
    result = CliRunner().invoke(app, [], env=request(shell, line), prog_name="igor")
    assert result.exit_code == 0, result.output
    answer = result.stdout
    if shell == "fish":
        # typer renders help through rich, which wraps it at 80 columns: a
        # line without a tab after one with help is the rest of that help.
        joined: list[str] = []
        for piece in answer.splitlines():
            if joined and "\t" in joined[-1] and "\t" not in piece:
                joined[-1] += " " + piece
            else:
                joined.append(piece)
        answer = "\n".join(joined)
    return candidates(shell, answer)


def via_igor(shell: str, line: str, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Ask `answer_request`, igor's own answer to a TAB, in process."""
    with monkeypatch.context() as patched:
        for name, value in request(shell, line).items():
            patched.setenv(name, value)
        out = StringIO()
        assert answer_request(out) == 0
    return candidates(shell, out.getvalue())


def values(pairs: list[tuple[str, str]]) -> list[str]:
    return [value for value, _ in pairs]


Ask = Callable[[str, str], list[tuple[str, str]]]


@pytest.fixture(params=["typer", "igor"])
def ask(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Ask:
    """Both ways of answering a TAB: `ask(shell, line)` -> (value, help) pairs."""
    if request.param == "typer":
        return via_typer
    return lambda shell, line: via_igor(shell, line, monkeypatch)


@pytest.fixture
def cached(sim: Simulator, igor: Igor) -> Simulator:
    """The simulator's stacks in the cache, as `igor list` and `deploy -v` leave them."""
    assert igor("list").exit_code == 0
    assert igor("deploy", "-s", "api", "-v", "web").exit_code == 0
    return sim


# -- the cache ----------------------------------------------------------------------


def test_a_command_that_fetched_the_stacks_leaves_them_per_api_with_a_time_stamp(
    sim: Simulator, igor: Igor
) -> None:
    assert igor("list").exit_code == 0
    env = Environment()
    data = load(env, sim.url)
    assert data["api"] == sim.url
    # The time stamp is igor's clock (a fake one in tests), not the wall clock.
    assert datetime.fromisoformat(data["saved_at"]) == igor.clock.datetime()
    pairs = {(s["name"], s["environment"]) for s in data["stacks"]}
    assert ("Payments Portal", "production") in pairs
    assert ("shop", "staging") in pairs
    path = cache_file(env, sim.url)
    assert path.parent.parent == Path(os.environ["IGOR_CACHE_DIR"])
    assert path.stat().st_mode & 0o077 == 0  # stack names are nobody else's business
    # Beside it, the order each stack's lists were found in (learning it costs a request).
    orders = orders_file(env)
    assert orders.stat().st_mode & 0o077 == 0
    shop = next(s["uid"] for s in data["stacks"] if s["name"] == "shop")
    assert json.loads(orders.read_text())[f"deployments:{shop}"] == "newest"
    # No temporary files left.
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, orders.name])


def test_services_igor_has_seen_are_kept_when_the_list_is_fetched_again(
    cached: Simulator, igor: Igor
) -> None:
    assert igor("list").exit_code == 0
    entries = {s["name"]: s for s in load(Environment(), cached.url)["stacks"]}
    assert entries["api"]["services"] == ["web", "worker"]
    assert entries["shop"]["services"] == []


def test_sandbox_and_account_never_mix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IGOR_API_URL", "https://cloud66.example/api/3/")
    StackCache(Environment()).stacks([stack("real-shop")])
    StackCache(Environment(sandbox=True)).stacks([stack("toy-shop")])
    # A trailing slash does not make another account.
    monkeypatch.setenv("IGOR_API_URL", "https://cloud66.example/api/3")
    assert values(via_igor("bash", "igor deploy -s ", monkeypatch)) == ["real-shop"]
    assert values(via_igor("bash", "igor --sandbox deploy -s ", monkeypatch)) == ["toy-shop"]
    monkeypatch.setenv("IGOR_SANDBOX", "1")
    assert values(via_igor("bash", "igor deploy -s ", monkeypatch)) == ["toy-shop"]
    monkeypatch.delenv("IGOR_SANDBOX")
    monkeypatch.setenv("IGOR_API_URL", "https://other.example/api/3")
    assert values(via_igor("bash", "igor deploy -s ", monkeypatch)) == []


def test_a_file_for_another_api_or_a_damaged_file_completes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = Environment()
    StackCache(env).stacks([stack("shop")])
    path = cache_file(env, cache_key(env))
    data = json.loads(path.read_text())
    assert ", " not in path.read_text() and "\n" not in path.read_text()  # written compactly
    path.write_text(json.dumps({**data, "api": "https://elsewhere.example"}))
    assert values(via_igor("bash", "igor deploy -s ", monkeypatch)) == []
    path.write_text('{"api": "' + data["api"] + '", "stacks": [{"name": 1}, "x"')
    assert values(via_igor("bash", "igor deploy -s ", monkeypatch)) == []
    path.write_text(json.dumps({**data, "stacks": [{"name": "x"}, 3, data["stacks"][0]]}))
    assert values(via_igor("bash", "igor deploy -s ", monkeypatch)) == ["shop"]


def test_list_asks_for_no_services(sim: Simulator, igor: Igor) -> None:
    assert igor("list").exit_code == 0
    assert sim.count("GET", "/services") == 0
    # LAST DEPLOY reads each stack's newest deployments (7 stacks; shop's two pages each:
    # the first, and the last that tells their order).
    assert sim.count("GET", "/deployments") == 9


def test_concurrent_commands_leave_a_whole_cache() -> None:
    # `igor serve` runs commands in threads that all write the cache.
    env = Environment()
    stacks = [stack(f"app{n}", uid=f"uid{n}") for n in range(40)]
    cache = StackCache(env)
    cache.stacks(stacks)
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for _ in range(5):
            StackCache(env).stacks(stacks)
            StackCache(env).services(f"uid{n}", [Service(f"svc{n}")])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    entries = {s["uid"]: s for s in load(env, cache.key)["stacks"]}
    assert len(entries) == 40
    assert all(entries[f"uid{n}"]["services"] == [f"svc{n}"] for n in range(8))
    assert len(list(cache_file(env, cache.key).parent.iterdir())) == 1


def test_an_unwritable_cache_dir_only_costs_completions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("IGOR_CACHE_DIR", str(blocker))
    StackCache(Environment()).stacks([stack("shop")])  # no exception
    assert values(via_igor("bash", "igor deploy -s ", monkeypatch)) == []


def test_a_broken_config_file_completes_nothing_rather_than_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    StackCache(Environment()).stacks([stack("shop")])
    Path(os.environ["IGOR_CONFIG"]).write_text("[cloud66\n")
    assert values(via_igor("bash", "igor deploy -s ", monkeypatch)) == []


# -- what TAB offers (typer's answer and igor's fast one) -----------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_commands_complete_without_aliases_or_hidden_commands(ask: Ask, shell: str) -> None:
    listed = values(ask(shell, "igor "))
    assert {"list", "deploy", "cancel", "help", "version"} <= set(listed)  # listed in -h too
    assert not set(listed) & ALIASES
    started = values(ask(shell, "igor de"))
    assert "deploy" in started
    assert all(name.startswith("de") for name in started)


@pytest.mark.parametrize("shell", SHELLS)
def test_options_and_wait_values_complete(ask: Ask, shell: str) -> None:
    options = set(values(ask(shell, "igor deploy --")))
    assert {"--stack", "--environment", "--service", "--wait", "--no-wait", "--dry-run"} <= options
    assert values(ask(shell, "igor deploy -w ")) == ["true", "false"]
    assert values(ask(shell, "igor deploy -s shop --wait f")) == ["false"]


@pytest.mark.parametrize("shell", SHELLS)
def test_stack_names_come_from_the_cache_with_their_environments(
    cached: Simulator, ask: Ask, shell: str
) -> None:
    pairs = ask(shell, "igor deploy -s ")
    assert values(pairs) == SANDBOX_NAMES
    if shell != "bash":  # bash shows no help
        assert dict(pairs)["shop"] == "production, staging"
        assert dict(pairs)["Payments Portal"] == "production"
    assert values(ask(shell, "igor cancel --stack Pay")) == ["Payments Portal"]
    assert values(ask(shell, "igor deploy --stack=sh")) == ["shop"]
    assert values(ask(shell, "igor list -e staging -s ")) == ["search", "shop"]
    # An alias is a command like the others; its name is not case-sensitive.
    assert values(ask(shell, "igor REDEPLOY -s le")) == ["legacy"]
    # The stack may come first, without -s (`igor deploy shop`): it completes the same.
    assert values(ask(shell, "igor deploy ")) == SANDBOX_NAMES
    assert values(ask(shell, "igor history -e staging sh")) == ["shop"]


@pytest.mark.parametrize("shell", SHELLS)
def test_environments_narrow_to_the_stack_typed_and_services_to_its_own(
    cached: Simulator, ask: Ask, shell: str
) -> None:
    assert values(ask(shell, "igor deploy -e ")) == ["production", "staging"]
    assert values(ask(shell, "igor deploy -s search -e ")) == ["staging"]
    assert values(ask(shell, "igor deploy -s 'Payments Portal' -e ")) == ["production"]
    assert values(ask(shell, "igor deploy -s API -v ")) == ["web", "worker"]
    assert values(ask(shell, "igor deploy -v w -s api -v ")) == ["web", "worker"]
    assert values(ask(shell, "igor deploy -s shop -v ")) == []
    assert values(ask(shell, "igor deploy -v ")) == []
    # The stack typed first narrows them too (click leaves it unread while -v waits).
    assert values(ask(shell, "igor deploy search -e ")) == ["staging"]
    assert values(ask(shell, "igor pause API -v ")) == ["web", "worker"]
    assert values(ask(shell, "igor maintenance on search -e ")) == ["staging"]


@pytest.mark.parametrize("shell", SHELLS)
def test_without_a_cache_stack_names_complete_nothing(sim: Simulator, ask: Ask, shell: str) -> None:
    started = time.monotonic()
    assert ask(shell, "igor deploy -s ") == []
    assert ask(shell, "igor deploy -e ") == []
    assert time.monotonic() - started < 10
    assert sim.requests == []  # never the network


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    "line",
    [
        "igor ",
        "igor -",
        "igor d",
        "igor list -",
        "igor deploy -",
        "igor deploy -s ",
        "igor deploy -s P",
        "igor deploy --stack=s",
        "igor stop -s shop -e ",
        "igor deploy -s api -v w",
        "igor deploy -w ",
        "igor --sandbox list -s ",
    ],
)
def test_igor_answers_as_typer_does(
    cached: Simulator, monkeypatch: pytest.MonkeyPatch, shell: str, line: str
) -> None:
    # The fast answer must not drift from the command definitions typer reads.
    # Help texts are compared on one line: typer wraps them at 80 columns.
    ours = via_igor(shell, line, monkeypatch)
    theirs = via_typer(shell, line)
    assert sorted(ours) == sorted((v, " ".join(h.split())) for v, h in theirs)


def test_other_instructions_are_left_to_typer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(COMPLETE_VAR, "source_elvish")
    monkeypatch.setattr(sys, "argv", ["igor"])
    with pytest.raises(SystemExit) as exited:
        answer_request()
    assert exited.value.code == 1
    assert "elvish not supported" in capsys.readouterr().err


@pytest.mark.parametrize("shell", SHELLS)
def test_typers_source_instruction_gets_igors_script(
    shell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(COMPLETE_VAR, f"source_{shell}")
    out = StringIO()
    assert answer_request(out) == 0
    assert out.getvalue() == (COMPLETIONS / FILES[shell]).read_text(encoding="utf-8")


# -- the scripts --------------------------------------------------------------------


def test_the_committed_scripts_are_what_the_app_generates() -> None:
    generated = scripts()
    assert sorted(generated) == ["_igor", "igor.bash", "igor.fish"]
    for name, text in generated.items():
        committed = (COMPLETIONS / name).read_text(encoding="utf-8")
        stale = f"completions/{name} is stale: `python -m igor_cli.tab generate completions/`"
        assert committed == text, stale
    assert generated["_igor"].startswith("#compdef igor\n")
    assert all(COMPLETE_VAR in text for text in generated.values())


def test_generate_writes_the_three_scripts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "_igor",
        "igor.bash",
        "igor.fish",
    ]
    assert (tmp_path / "out" / "_igor").read_text() == scripts()["_igor"]
    assert main(["generate"]) == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("shell", SHELLS)
def test_igor_completion_prints_the_committed_script(igor: Igor, shell: str) -> None:
    ran = igor("completion", shell)
    assert ran.exit_code == 0, ran.output
    assert ran.stdout == (COMPLETIONS / FILES[shell]).read_text(encoding="utf-8")
    assert ran.stderr == ""


@pytest.mark.parametrize(
    ("shell", "where"),
    [
        ("bash", "data/bash-completion/completions/igor"),
        ("zsh", "home/.zfunc/_igor"),
        ("fish", "config/fish/completions/igor.fish"),
    ],
)
@pytest.mark.parametrize("how", [["completion", "--install"], ["--install-completion"]])
def test_install_writes_igors_script_where_the_shell_loads_it(
    igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: str, where: str,
    how: list[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("SHELL", f"/usr/bin/{shell}")
    ran = igor(*how)
    assert ran.exit_code == 0, ran.output
    installed = tmp_path / where
    assert installed.read_text(encoding="utf-8") == scripts()[FILES[shell]]
    assert str(installed) in ran.stdout
    assert not (tmp_path / "home" / ".bashrc").exists()  # no start-up file is edited
    assert not (tmp_path / "home" / ".zshrc").exists()
    if shell == "zsh":
        assert "fpath=(~/.zfunc $fpath)" in ran.stdout  # what is left to do, said


def test_show_completion_prints_the_script_of_shell(
    igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHELL", "/bin/zsh")
    ran = igor("--show-completion")
    assert ran.exit_code == 0
    assert ran.stdout == scripts()["_igor"]


def test_completion_for_an_unknown_shell_says_which_it_knows(
    igor: Igor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHELL", "/bin/tcsh")
    monkeypatch.setenv("HOME", str(tmp_path))
    for words in (["completion"], ["completion", "--install"], ["--install-completion"]):
        ran = igor(*words)
        assert ran.exit_code == 2
        assert "$SHELL is 'tcsh'" in ran.stderr
        assert "`igor completion bash`" in ran.stderr
    assert list(tmp_path.iterdir()) == []
    assert igor("completion", "tcsh").exit_code == 2  # a usage error naming the choices


def test_install_completion_in_chat_installs_nothing(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from igor_cli.chat.bridge import Bridge
    from igor_cli.identity import Origin

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SHELL", "/bin/bash")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    bridge = Bridge(Environment())
    for text in ("--install-completion", "--show-completion list", "completion bash"):
        reply = bridge.handle(text, Origin("slack", "U1", text))
        assert reply.outcome is None
    assert list(tmp_path.iterdir()) == []


# -- the real shells on the committed scripts ---------------------------------------


def needs(shell: str) -> str:
    found = shutil.which(shell)
    if found is None:
        pytest.skip(f"{shell} is not installed")
    return found


@pytest.fixture
def shell_env(cached: Simulator, tmp_path: Path) -> dict[str, str]:
    """The environment of a shell in which `igor` is this checkout's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "igor"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m igor_cli "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["HOME"] = str(tmp_path / "home")
    Path(env["HOME"]).mkdir()
    env["TERM"] = "dumb"
    cached.reset_requests()
    return env


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where the shells run: a file to offer, should a script fall back to file names."""
    directory = tmp_path / "work"
    directory.mkdir()
    (directory / "a-file-not-a-stack").write_text("")
    return directory


def test_bash_completes_with_the_committed_script(
    shell_env: dict[str, str], workdir: Path, cached: Simulator
) -> None:
    bash = needs("bash")
    # The words are as bash splits them (it also cuts at = and :), seen in a
    # real interactive bash.
    cases = [
        ("igor de", ["igor", "de"]),
        ("igor deploy -s ", ["igor", "deploy", "-s", ""]),
        ("igor deploy -s Pay", ["igor", "deploy", "-s", "Pay"]),
        ('igor deploy -s "Pay', ["igor", "deploy", "-s", '"Pay']),
        ("igor deploy --stack=Pa", ["igor", "deploy", "--stack", "=", "Pa"]),
        (
            "igor deploy -s Payments\\ Portal -e ",
            ["igor", "deploy", "-s", "Payments\\ Portal", "-e", ""],
        ),
        ("igor deploy -s nosuch -v ", ["igor", "deploy", "-s", "nosuch", "-v", ""]),
    ]
    script = [f"source {COMPLETIONS / 'igor.bash'}", "complete -p igor"]
    for line, words in cases:
        script += [
            f"COMP_LINE={shlex.quote(line)}",
            "COMP_POINT=${#COMP_LINE}",
            f"COMP_WORDS=({' '.join(shlex.quote(word) for word in words)})",
            "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))",
            "_igor_completion igor",
            "printf '%s\\n' \"${COMPREPLY[@]}\" '--'",
        ]
    ran = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", "\n".join(script)], cwd=workdir,
        env=shell_env, capture_output=True, text=True, timeout=SHELL_TIMEOUT, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    registration, _, rest = ran.stdout.partition("\n")
    assert registration == "complete -F _igor_completion igor"
    answers = [block.split("\n") for block in rest.split("--\n")[:-1]]
    answers = [[item for item in block if item] for block in answers]
    assert len(answers) == len(cases)
    assert "deploy" in answers[0] and all(w.startswith("de") for w in answers[0])
    assert not set(answers[0]) & ALIASES
    assert answers[1] == ["api", "blog", "legacy", "Payments\\ Portal", "search", "shop"]
    assert answers[2] == ["Payments\\ Portal"]  # escaped, so it stays one word
    assert answers[3] == ["Payments Portal"]  # inside the quote bash opened
    assert answers[4] == ["Payments\\ Portal"]
    assert answers[5] == ["production"]
    assert answers[6] == []
    assert cached.requests == []


def test_zsh_completes_with_the_committed_script_on_the_first_tab(
    shell_env: dict[str, str], tmp_path: Path, workdir: Path, cached: Simulator
) -> None:
    zsh = needs("zsh")
    log = tmp_path / "zsh.log"
    setup = tmp_path / "setup.zsh"
    # A fresh interactive zsh loads _igor from $fpath, as users have it; a
    # compadd wrapper records what zsh offers, a key records the line.
    setup.write_text(
        f"fpath=({COMPLETIONS} $fpath)\n"
        "autoload -Uz compinit && compinit -u -D\n"
        "compadd() {\n"
        "    local -a hits\n"
        '    builtin compadd -O hits "$@"\n'
        f'    (( $#hits )) && print -rl -- "${{hits[@]/#/match:}}" >> {log}\n'
        '    builtin compadd "$@"\n'
        "}\n"
        f'record-line() {{ print -r -- "line:$BUFFER" >> {log}; BUFFER=; }}\n'
        "zle -N record-line\n"
        "bindkey '^T' record-line\n"
        f"print -r -- ready >> {log}\n"
    )
    lines = ["igor dep", "igor deploy -s ", "igor deploy -s Pay", 'igor deploy -s "Pay',
             "igor deploy --stack=Pa", "igor deploy -s Payments\\ Portal -e ",
             "igor deploy -s nosuch -v "]  # fmt: skip
    with Terminal(zsh, ["-f", "-i"], shell_env, workdir) as terminal:
        terminal.type(f"source {setup}\n", log, "ready\n")
        for count, line in enumerate(lines, start=1):
            terminal.type(line + "\t\x14", log, "line:", count)
    blocks = re.split(r"^line:(.*)$", log.read_text().split("ready\n", 1)[1], flags=re.M)
    offered = [{m for m in block.splitlines() if m.startswith("match:")} for block in blocks[0::2]]
    after = blocks[1::2]
    assert after[0] == "igor deploy "  # the very first TAB completes
    assert offered[1] == {f"match:{name}" for name in SANDBOX_NAMES}
    assert after[1] == "igor deploy -s "  # several: listed, nothing inserted
    assert after[2] == "igor deploy -s Payments\\ Portal "
    assert after[3] == 'igor deploy -s "Payments Portal" '
    assert after[4] == "igor deploy --stack=Payments\\ Portal "
    assert after[5] == "igor deploy -s Payments\\ Portal -e production "
    assert offered[6] == set()  # no file names instead
    assert after[6] == "igor deploy -s nosuch -v "
    assert cached.requests == []


def test_zsh_keeps_the_apostrophes_in_descriptions(
    shell_env: dict[str, str], tmp_path: Path, workdir: Path, cached: Simulator
) -> None:
    zsh = needs("zsh")
    log = tmp_path / "zsh.log"
    setup = tmp_path / "setup.zsh"
    setup.write_text(
        f"fpath=({COMPLETIONS} $fpath)\n"
        "autoload -Uz compinit && compinit -u -D\n"
        f'record-line() {{ print -r -- "line:$BUFFER" >> {log}; BUFFER=; }}\n'
        "zle -N record-line\n"
        "bindkey '^T' record-line\n"
        f"print -r -- ready >> {log}\n"
    )
    with Terminal(zsh, ["-f", "-i"], shell_env, workdir) as terminal:
        terminal.type(f"source {setup}\n", log, "ready\n")
        terminal.type("igor cancel -\t\x14", log, "line:")
        terminal.read_until(b"exact name")  # the listing zsh wrote before the line was taken
    screen = terminal.screen.decode(errors="replace")
    assert "The stack's exact name (any case);" in screen
    assert "The stacks exact name" not in screen


def test_fish_completes_with_the_committed_script(
    shell_env: dict[str, str], workdir: Path, cached: Simulator
) -> None:
    fish = needs("fish")
    lines = ["igor de", "igor deploy -s ", 'igor deploy -s "Pay', "igor deploy --stack=Pa",
             "igor deploy -s Payments\\ Portal -e ", "igor deploy -s nosuch -v "]  # fmt: skip
    commands = [f"source {COMPLETIONS / 'igor.fish'}"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("'", "\\'")
        commands += [f"complete -C '{escaped}'", "echo =="]
    ran = subprocess.run(
        [fish, "--no-config", "-c", "; ".join(commands)], cwd=workdir,
        env=shell_env, capture_output=True, text=True, timeout=SHELL_TIMEOUT, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    answers = [
        [tuple(item.split("\t", 1)) for item in block.split("\n") if item]
        for block in ran.stdout.split("==\n")[:-1]
    ]
    assert len(answers) == len(lines)
    assert ("deploy", "Deploy a stack (or only some of its...") in answers[0]
    assert all(item[0].startswith("de") for item in answers[0])
    assert [name for name, _ in answers[1]] == SANDBOX_NAMES
    assert ("shop", "production, staging") in answers[1]
    assert answers[2] == [("Payments Portal", "production")]
    assert answers[3] == [("--stack=Payments Portal", "production")]
    assert answers[4] == [("production",)]
    assert answers[5] == []  # no file names instead
    assert cached.requests == []


class Terminal:
    """A program on a pseudo-terminal: type into it, wait for what it writes to a log."""

    def __init__(self, program: str, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.argv = [program, *args]
        self.env = env
        self.cwd = cwd

    def __enter__(self) -> Terminal:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        self.process = subprocess.Popen(
            self.argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        os.close(slave)
        self.screen = b""
        return self

    def type(self, keys: str, log: Path, marker: str, count: int = 1) -> None:
        """Type `keys`, then wait until `marker` is in `log` `count` times."""
        os.write(self.master, keys.encode())
        deadline = time.monotonic() + SHELL_TIMEOUT
        while time.monotonic() < deadline:
            if log.exists() and log.read_text().count(marker) >= count:
                return
            # Keep reading the terminal, or the shell blocks writing to it.
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:
                    break
        tail = self.screen[-2000:].decode(errors="replace")
        raise AssertionError(f"no {marker!r} in {log} after {keys!r}; the terminal showed:\n{tail}")

    def read_until(self, text: bytes) -> None:
        """Read the terminal until it has shown `text` (or the time is up)."""
        deadline = time.monotonic() + SHELL_TIMEOUT
        while text not in self.screen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:
                    return

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)


# -- a light start --------------------------------------------------------------------

_HEAVY = {"requests", "keyring", "slack_sdk", "rich"}


def loaded_modules(code: str, env: dict[str, str]) -> set[str]:
    """The modules a fresh interpreter holds when `code` is done (SystemExit included)."""
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('\\nMODULES ' + ' '.join(sys.modules)))\n"
        f"{code}\n"
    )
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    ran = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert "MODULES " in ran.stderr, ran.stderr
    return set(ran.stderr.rsplit("MODULES ", 1)[1].split())


def heavy(modules: set[str], family: str | None = "") -> set[str]:
    """What a TAB or --version must not load: network, keyring, Slack, rich, the state store,
    the families of other commands (`family`: the typed command's, which a TAB converts;
    None: every family, whose commands a TAB on a command's name lists)."""
    return {
        m
        for m in modules
        if m.split(".")[0] in _HEAVY
        or (family is not None and m.startswith("igor_cli.state"))
        or (
            family is not None
            and m.startswith("igor_cli.features.")
            and m != f"igor_cli.features.{family}"
        )
    }


def test_version_and_a_tab_leave_the_heavy_modules_unloaded(cached: Simulator) -> None:
    entry = "sys.argv = ['igor'{}]\nfrom igor_cli.__main__ import main\nmain()"
    env = dict(os.environ)
    # --version is answered with the standard library alone: nothing of the command line.
    modules = loaded_modules(entry.format(", '--version'"), env)
    assert "igor_cli.__main__" in modules  # the probe does see igor's modules
    assert not {m for m in modules if m.startswith("igor_cli.") and m != "igor_cli.__main__"}
    assert "typer" not in modules
    modules = loaded_modules(entry.format(", '--help'"), env)
    assert "igor_cli.cli" in modules
    # help lists every command: every family is loaded, and nothing heavy with them
    assert "igor_cli.features.locks" in modules
    assert not heavy(modules, None)
    # The first TAB reads the command definitions and writes the completion index, for
    # which it loads every family (and nothing heavy with them); the next ones read only
    # the index and the cache: no typer, no click, no config, no family.
    tab = {**env, **request("bash", "igor deploy -s ")}
    modules = loaded_modules(entry.format(""), tab)
    assert "igor_cli.completion" in modules
    assert "igor_cli.features.locks" in modules  # the index has every command
    assert not heavy(modules, None)
    assert not {m for m in modules if m.startswith("igor_cli.state")}  # nor the state store
    assert "pydantic" not in modules  # igor_cli/__main__.py hands a TAB to answer_request
    for _ in range(2):
        modules = loaded_modules(entry.format(""), tab)
        assert "igor_cli.tab_index" in modules
        assert not {m for m in modules if m.split(".")[0] in {"typer", "click", "pydantic"}}
        assert not heavy(modules)  # no family either
        assert not {"igor_cli.cli", "igor_cli.config", "igor_cli.tab"} & modules
        assert not {"json", "re", "shlex"} & modules  # 8 ms of a 21 ms TAB (tab_index.loads)


@pytest.mark.parametrize("shell", SHELLS)
def test_igors_answer_to_a_tab_loads_neither_pydantic_nor_rich(
    cached: Simulator, shell: str
) -> None:
    # The full path (no index yet, or a stale one): the command definitions, still light.
    code = "from igor_cli.tab import answer_request\nanswer_request(fast=False)"
    for line in ("igor de", "igor deploy -s ", "igor deploy -"):
        modules = loaded_modules(code, {**os.environ, **request(shell, line)})
        assert "igor_cli.cli" in modules
        # the first line ("igor de") builds the index from every family; the next ones
        # find it current and convert only the command typed
        assert not heavy(modules, None if line == "igor de" else "deploy")
        assert not {m for m in modules if m.split(".")[0] == "pydantic"}, line
    # and it leaves the index for the next TAB
    assert (Path(os.environ["IGOR_CACHE_DIR"]) / "completion" / "tab-index.json").is_file()


def test_the_same_listing_again_soon_does_not_rewrite_the_cache() -> None:
    from tests.fakes.clock import FakeClock

    clock = FakeClock()
    env = Environment(clock=clock.datetime)
    cache = StackCache(env)
    cache.stacks([stack("shop"), stack("blog")])
    path = cache_file(env, cache.key)
    written = path.stat().st_ino  # each write is a new file renamed over the old one
    clock.advance(5)
    cache.stacks([stack("shop"), stack("blog")])
    assert path.stat().st_ino == written
    cache.stacks([stack("shop")])  # a change is written at once
    assert path.stat().st_ino != written
    assert [e["name"] for e in json.loads(path.read_text())["stacks"]] == ["shop"]
    written = path.stat().st_ino
    clock.advance(11)  # and the same listing a while later refreshes saved_at
    cache.stacks([stack("shop")])
    assert path.stat().st_ino != written
    assert json.loads(path.read_text())["saved_at"] == clock.datetime().isoformat()


def test_a_listing_that_differs_late_or_ends_sooner_is_written_whole() -> None:
    # The new listing is compared with the file first and written only from where it
    # differs (the bytes before it are the file's): what is written is the whole new list.
    env = Environment()
    cache = StackCache(env)
    names = [f"app-{n:05}" for n in range(1_200)]  # three pieces of entries
    cache.stacks([stack(name) for name in names])
    path = cache_file(env, cache.key)
    late = [*names[:1_100], "renamed", *names[1_101:]]
    shorter = late[:700]
    for listing in (late, shorter):
        cache.stacks([stack(name) for name in listing])
        assert [e["name"] for e in json.loads(path.read_text())["stacks"]] == listing
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_big_accounts_cache_is_rewritten_holding_little_more_than_the_old_file() -> None:
    # 50,000 stacks' entries held whole, old and new, as objects or as text, were a third
    # of `igor list --json`'s peak memory (issue 27): compared in place, written in pieces.
    import tracemalloc

    env = Environment()
    cache = StackCache(env)
    cache.stacks([stack(f"app-{n:05}") for n in range(20_000)])
    path = cache_file(env, cache.key)
    size = path.stat().st_size
    moved = [stack(f"app-{n:05}", "staging") for n in range(20_000)]  # every entry changes
    tracemalloc.start()
    cache.stacks(moved)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert {e["environment"] for e in json.loads(path.read_text())["stacks"]} == {"staging"}
    assert path.stat().st_size != size
    assert peak < 1.5 * size, (peak, size)


def test_a_stack_is_looked_up_without_parsing_an_unchanged_cache_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # igor serve resolves every command's stack from the cache: a big account's file is
    # megabytes of JSON (92 ms a parse at 50,000 stacks), parsed again only when it changed.
    from igor_cli import completion

    env = Environment()
    cache = StackCache(env)
    cache.stacks([stack(f"app-{n:05}", uid=f"uid-{n:05}") for n in range(2_000)])
    parsed: list[int] = []
    real_load = completion.load
    monkeypatch.setattr(completion, "load", lambda *a: parsed.append(1) or real_load(*a))
    for _ in range(50):
        assert cache.uids("APP-00007", None) == ["uid-00007"]
        assert StackCache(env).named("uid-01999") == ("app-01999", "production")
    assert len(parsed) == 1

    cache.stacks([stack("app-00007", "staging", uid="uid-new")])  # igor's own rewrite
    assert cache.uids("app-00007", None) == ["uid-new"]
    assert cache.named("uid-01999") is None
    assert len(parsed) == 2

    path = cache_file(env, cache.key)  # an edit in place, by hand: same inode
    data = json.loads(path.read_text())
    data["stacks"][0]["uid"] = "uid-edited"
    inode = path.stat().st_ino
    path.write_text(json.dumps(data))
    assert path.stat().st_ino == inode
    assert cache.uids("app-00007", "staging") == ["uid-edited"]

    path.unlink()  # gone: nothing known, nothing kept from before
    assert cache.uids("app-00007", "staging") == []
    assert cache.named("uid-edited") is None


def test_a_cache_lookup_still_trusts_a_name_alone_only_from_a_recent_listing() -> None:
    from tests.fakes.clock import FakeClock

    clock = FakeClock()
    env = Environment(clock=clock.datetime)
    cache = StackCache(env)
    cache.stacks([stack("shop", uid="uid-shop")])
    assert cache.uids("shop", None) == ["uid-shop"]
    clock.advance(601)  # the file is unchanged, its listing now too old for a name alone
    assert cache.uids("shop", None) == []
    assert cache.uids("shop", "production") == ["uid-shop"]


def test_the_index_igor_serve_keeps_of_a_big_accounts_cache_is_small() -> None:
    # Held for the bot's life (issue 27, big accounts): one string per environment, a name
    # that is its folded self kept once. 5.3x the file before, 3.0x at 50,000 stacks.
    import tracemalloc

    env = Environment()
    cache = StackCache(env)
    cache.stacks([stack(f"app-{n:05}", uid=f"{n:032x}") for n in range(20_000)])
    size = cache_file(env, cache.key).stat().st_size
    tracemalloc.start()
    assert cache.uids("app-00007", "production") == [f"{7:032x}"]
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert held < 4 * size, (held, size)
    assert cache.named(f"{19_999:032x}") == ("app-19999", "production")
