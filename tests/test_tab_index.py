"""A TAB answered from the completion index with the standard library alone (issue 27:
one TAB <= 0.5x gh's): the same answer as the command definitions give, and the full
path whenever the index is missing, stale or cannot read the line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest

import igor_cli
from igor_cli import tab_index
from igor_cli.sandbox import Simulator
from igor_cli.tab import answer_request
from tests.conftest import Igor
from tests.test_completion import ROOT, SHELLS, request

LINES = [
    "igor ",
    "igor -",
    "igor --",
    "igor d",
    "igor DE",
    "igor nosuch ",
    "igor list -",
    "igor list --w",
    "igor deploy -",
    "igor deploy --",
    "igor deploy -s ",
    "igor deploy -s P",
    "igor deploy -s 'Payments Por",
    "igor deploy --stack=s",
    "igor deploy --stack=",
    "igor deploy -s shop -",
    "igor deploy -s shop --",
    "igor deploy -e staging -s ",
    "igor deploy -s search -e ",
    "igor deploy -s API -v ",
    "igor deploy -v w -s api -v ",
    "igor deploy -w ",
    "igor deploy -s shop --wait f",
    "igor deploy ",
    "igor deploy sh",
    "igor deploy shop ",
    "igor deploy shop -e ",
    "igor deploy api -v ",
    "igor deploy API -e production -v w",
    "igor pause api -v ",
    "igor maintenance on shop -e ",
    "igor deploy --json ",
    "igor deploy --json -",
    "igor deploy --ref ",
    "igor REDEPLOY -s le",
    "igor stop -s shop -e ",
    "igor history -e staging sh",
    "igor promote -s shop --from ",
    "igor --sandbox list -s ",
    "igor list --sandbox -s ",
    "igor cancel --stack Pay",
    "igor version -",
    "igor help ",
    "igor completion ",
]


@pytest.fixture
def cached(sim: Simulator, igor: Igor) -> Simulator:
    """The simulator's stacks in the cache, as `igor list` and `deploy -v` leave them."""
    assert igor("list").exit_code == 0
    assert igor("deploy", "-s", "api", "-v", "web").exit_code == 0
    return sim


def ask(shell: str, line: str, monkeypatch: pytest.MonkeyPatch, *, fast: bool) -> str:
    with monkeypatch.context() as patched:
        for name, value in request(shell, line).items():
            patched.setenv(name, value)
        out = StringIO()
        assert answer_request(out, fast=fast) == 0
    return out.getvalue()


def from_index(shell: str, line: str, monkeypatch: pytest.MonkeyPatch) -> str | None:
    with monkeypatch.context() as patched:
        for name, value in request(shell, line).items():
            patched.setenv(name, value)
        return tab_index.answer(shell)


def index_file() -> Path:
    return Path(os.environ["IGOR_CACHE_DIR"]) / "completion" / tab_index.INDEX_NAME


@pytest.mark.parametrize("shell", SHELLS)
def test_the_index_answers_as_the_command_definitions_do(
    cached: Simulator, monkeypatch: pytest.MonkeyPatch, shell: str
) -> None:
    cached.reset_requests()
    assert from_index(shell, "igor deploy -s ", monkeypatch) is None  # no index yet
    ask(shell, "igor ", monkeypatch, fast=False)  # the full path writes it
    assert index_file().is_file()
    for line in LINES:
        full = ask(shell, line, monkeypatch, fast=False)
        fast = from_index(shell, line, monkeypatch)
        if line == "igor completion ":  # a choice of shells: the index leaves it to click
            assert fast is None
            continue
        assert fast is not None, line
        assert fast + "\n" == full, line
    assert cached.requests == []  # never the network


def test_the_full_path_offers_the_commands_in_helps_order_whatever_was_imported_first(
    cached: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process that imported a later family first (the suite's workers do) registered
    # its commands first; the full path still answers as the index does.
    code = (
        "import igor_cli.features.deploy\n"
        "from igor_cli.tab import answer_request\n"
        "answer_request(fast=False)\n"
    )
    env = {**os.environ, **request("bash", "igor "), "PYTHONPATH": str(ROOT)}
    ran = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    fast = from_index("bash", "igor ", monkeypatch)  # the index that run wrote
    assert fast is not None
    assert ran.stdout == fast + "\n"
    assert ran.stdout.split()[:2] == ["list", "deploy"]


@pytest.mark.parametrize(
    "line",
    ["igor deploy -sshop -e ", "igor deploy -- ", "igor deploy --nosuch -e ", "igor --nosuch "],
)
def test_what_the_index_cannot_read_goes_the_full_way(
    cached: Simulator, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    ask("bash", "igor ", monkeypatch, fast=False)
    assert from_index("bash", line, monkeypatch) is None
    assert ask("bash", line, monkeypatch, fast=True) == ask("bash", line, monkeypatch, fast=False)


def test_another_igor_version_or_source_makes_the_index_stale(
    cached: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask("bash", "igor ", monkeypatch, fast=False)
    assert from_index("bash", "igor deploy -s ", monkeypatch) is not None
    with monkeypatch.context() as upgraded:
        upgraded.setattr(igor_cli, "__version__", "99.0.0")
        assert from_index("bash", "igor deploy -s ", monkeypatch) is None
        # the full path answers, and writes an index for this version
        assert "shop" in ask("bash", "igor deploy -s ", monkeypatch, fast=True).split()
        assert from_index("bash", "igor deploy -s ", monkeypatch) is not None
    assert from_index("bash", "igor deploy -s ", monkeypatch) is None  # back: stale again
    index = json.loads(index_file().read_text())
    index["fingerprint"] = index["fingerprint"].replace("tab_index.py:", "tab_index.py:1")
    index_file().write_text(json.dumps(index))
    assert from_index("bash", "igor deploy -s ", monkeypatch) is None


def test_a_changed_config_file_or_setting_makes_the_index_stale(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "igor.toml"
    monkeypatch.setenv("IGOR_CONFIG", str(config))
    monkeypatch.delenv("IGOR_API_URL", raising=False)
    config.write_text(f'[cloud66]\napi_url = "{sim.url}"\n')
    assert igor("list").exit_code == 0  # the stacks of that API in the cache
    assert ask("bash", "igor deploy -s sh", monkeypatch, fast=False) == "shop\n"
    assert from_index("bash", "igor deploy -s sh", monkeypatch) == "shop"
    # Another API in the config file: its cache (none), not the old one.
    config.write_text('[cloud66]\napi_url = "http://127.0.0.1:9/api/3"\n')
    assert from_index("bash", "igor deploy -s sh", monkeypatch) is None
    assert ask("bash", "igor deploy -s sh", monkeypatch, fast=True) == "\n"
    assert from_index("bash", "igor deploy -s sh", monkeypatch) == ""
    # A broken one completes no stack, as the full path does.
    config.write_text("[cloud66\n")
    assert ask("bash", "igor deploy -s sh", monkeypatch, fast=True) == "\n"
    assert from_index("bash", "igor deploy -s sh", monkeypatch) == ""
    # Another config file altogether.
    monkeypatch.setenv("IGOR_CONFIG", str(tmp_path / "other.toml"))
    assert from_index("bash", "igor deploy -s sh", monkeypatch) is None


def test_the_api_in_force_is_read_at_each_tab(
    cached: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask("bash", "igor ", monkeypatch, fast=False)
    assert from_index("bash", "igor deploy -s sh", monkeypatch) == "shop"
    monkeypatch.setenv("IGOR_API_URL", "http://127.0.0.1:9/api/3")  # not the sandbox's
    assert from_index("bash", "igor deploy -s sh", monkeypatch) == ""
    assert ask("bash", "igor deploy -s sh", monkeypatch, fast=False) == "\n"
    # The sandbox has a cache of its own (empty here), whether asked on the line or by
    # IGOR_SANDBOX.
    assert from_index("bash", "igor --sandbox deploy -s sh", monkeypatch) == ""
    monkeypatch.setenv("IGOR_SANDBOX", "1")
    assert from_index("bash", "igor deploy -s sh", monkeypatch) == ""


# -- what the index reads with, without json, re or shlex (8 ms of a 21 ms TAB) ----------


def _random_texts(alphabet: str, count: int, longest: int) -> list[str]:
    import random

    chance = random.Random(27)
    return [
        "".join(chance.choice(alphabet) for _ in range(chance.randint(0, longest)))
        for _ in range(count)
    ]


def split_arg_string(line: str) -> list[str]:
    """How typer's click splits the line of a TAB (`split_arg_string`), as it is written."""
    import shlex

    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    try:
        for word in lexer:
            words.append(word)
    except ValueError:  # an unclosed quote or a last backslash: the word begun, as it is
        words.append(lexer.token)
    return words


def test_a_line_is_split_into_words_as_click_splits_it() -> None:
    lines = [
        "",
        " ",
        "igor deploy -s ",
        "igor deploy -s 'Payments Por",
        'igor deploy -s "Pay',
        "igor deploy -s Payments\\ Portal",
        "a\\",
        "'",
        '"',
        "''",
        '""',
        "a''b",
        'x"y\\"z"w',
        '"a\\b"',
        "'a\\b'",
        '"\\\\"',
        "\\\\",
        "a\tb\nc\rd",
        "é ß",
        '"a b" c',
        "-s=' x '",
    ]
    lines += _random_texts("ab '\"\\\t\né-=", 3000, 12)
    for line in lines:
        assert tab_index.split_words(line) == split_arg_string(line), repr(line)


def test_a_cache_file_is_named_as_before_for_any_api() -> None:
    import re

    keys = ["(sandbox)", "https://app.cloud66.com", "http://127.0.0.1:8080/api/3/", "", "://"]
    keys += _random_texts("aZ9.-:/_ é%?", 3000, 16)
    for key in keys:
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", key.split("://", 1)[-1]).strip("-")[:100]
        assert tab_index.cache_name(key) == f"stacks-{slug or 'default'}.json", repr(key)


def test_the_index_and_the_cache_read_as_json_reads_them() -> None:
    documents = [
        '{"api":"(sandbox)","saved_at":"2026-12-07T10:00:00+00:00","stacks":[]}',
        ' \n{"a": [1, 2.5, -3e2, true, false, null, "\\u00e9\\n", {"b": {}}]}\n',
        "[]",
        '"x"',
        "0",
        '{"n": NaN, "i": -Infinity}',
        '{"a": 1, "a": 2}',
    ]
    for text in documents:
        assert repr(tab_index.loads(text)) == repr(json.loads(text)), text
    for broken in ["", " ", "{", '{"a": 1} {}', "[1,]", "\ufeff{}", '{"a": "\x01"}', "{'a': 1}",
                   "nul", '{"a" 1}', "[1] x"]:  # fmt: skip
        with pytest.raises(ValueError):
            json.loads(broken)
        with pytest.raises(ValueError):
            tab_index.loads(broken)
