"""Issue 21, "What reaches a terminal or a channel": outside text reaches a terminal without
control characters, piped or not; text typed in a shell never mentions anyone in Slack;
a project file someone else could have written is not used."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest

from igor_cli.chat.console import run_console
from igor_cli.cloud66.client import Cloud66Client
from igor_cli.config import Environment, os_account
from igor_cli.core.resolve import find_stack
from igor_cli.sandbox import Simulator
from igor_cli.state import open_store
from igor_cli.state.locks import Lock, lock_key
from tests.conftest import Igor, RunningBot
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack

# A window title, a clear screen and a hyperlink whose text hides where it goes.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b]8;;https://evil.example\x1b\\release\x1b]8;;\x1b\\\r"


def raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]


def teammates_lock(sim: Simulator, clock: FakeClock, stack: str, reason: str) -> None:
    """A lock a teammate's igor kept in the shared store, with the reason they gave."""
    client = Cloud66Client(sim.token, sim.url)
    store = open_store(Environment().state_url())
    try:
        found = find_stack(client, stack, None)
        now = clock.datetime()
        lock = Lock(found.uid, found.name, found.environment, "cli", "mallory@elsewhere",
                    reason, now, now + timedelta(hours=1))  # fmt: skip
        assert store.claim(lock_key(found.uid), lock.dumps(), 3600)
    finally:
        store.close()
        client.close()


def test_a_lock_reason_from_a_teammate_reaches_no_terminal_raw(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    teammates_lock(sim, clock, "blog", HOSTILE)
    for args in (("locks",), ("deploy", "-s", "blog"), ("lock", "-s", "blog"),
                 ("unlock", "-s", "blog")):  # fmt: skip
        ran = igor(*args)
        assert "mallory@elsewhere" in ran.output, (args, ran.output)
        assert raw_controls(ran.output) == [], (args, ran.output)
    assert json.loads(igor("locks", "--json").stdout)["locks"][0]["reason"] == HOSTILE


def test_stack_names_and_triggered_by_from_cloud66_reach_no_terminal_raw(
    sim: Simulator, igor: Igor
) -> None:
    sim.add_stacks(1, prefix=HOSTILE)
    sim.start_foreign_deployment("blog", "production", triggered_by=HOSTILE)
    for args in (("list",), ("list", "--wide"), ("history", "-s", "blog"),
                 ("deploy", "-s", "blog", "-w", "false"), ("watch", "-s", "blog")):  # fmt: skip
        ran = igor(*args)
        assert raw_controls(ran.output) == [], (args, ran.output)
    assert "pwned" in igor("list").stdout  # the words are shown, as text


def test_what_a_project_file_brings_reaches_no_terminal_raw(
    sim: Simulator, igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "checkout\x1b]0;pwned\x07\x1b[2J"  # a directory's name is text too
    project.mkdir()
    (project / ".igor.toml").write_text('stack = "blog"\n')
    monkeypatch.chdir(project)
    ran = igor("deploy", "--dry-run")
    assert ran.exit_code == 0 and "pwned" in ran.output, ran.output  # "Using stack blog ..."
    assert raw_controls(ran.output) == [], ran.output
    (project / ".igor.toml").write_text('environment = "\\u001b]0;pwned\\u0007production"\n')
    refused = igor("deploy", "-s", "blog", "--dry-run")  # a value with them is refused
    assert refused.exit_code == 2 and "U+001B" in refused.stderr
    assert raw_controls(refused.output) == [], refused.output


def test_the_console_shows_outside_text_without_control_characters(
    sim: Simulator, clock: FakeClock
) -> None:
    teammates_lock(sim, clock, "blog", HOSTILE)
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    out = StringIO()
    me = f"{os_account()}@{socket.gethostname()}"
    run_console(env, me, StringIO("locks\ndeploy -s blog\n"), out)
    assert "mallory@elsewhere" in out.getvalue()
    assert raw_controls(out.getvalue()) == [], out.getvalue()


# -- item 17: a shell's words mention nobody in Slack -------------------------------------------


def test_a_shell_lock_reason_never_mentions_anyone_in_slack(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, igor: Igor
) -> None:
    marked = "\ue000@U0BOSS\ue001 wants it, ask \ue000#C0ALL\ue001"  # igor's own markers
    assert igor("lock", "-s", "blog", "--reason", marked).exit_code == 0
    bot.start()
    bot.mention("deploy -s blog", user="U0BOB")
    bot.mention("locks", user="U0BOB")
    said = json.dumps([c.params for c in bot.replies(2)])
    said += json.dumps([c.params for c in slack.calls_to("chat.postEphemeral")])
    assert "U0BOSS" in said  # the words are there, as text
    assert "<@U0BOSS>" not in said and "<#C0ALL>" not in said
    assert sim.count("POST", "/deployments") == 0


# -- item 18: a project file someone else could have written ------------------------------------


def test_a_project_file_in_a_world_writable_directory_is_not_used(
    sim: Simulator, igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: anyone may put a file here
    (shared / ".igor.toml").write_text('stack = "blog"\n')
    monkeypatch.chdir(shared)
    ran = igor("deploy", "--dry-run")
    assert ran.exit_code == 2  # no stack: the file's was not taken
    planted = shared / ".igor.toml"
    assert f"igor: not using {planted}: anyone may write in {shared}." in ran.stderr
    assert sim.count("POST", "/deployments") == 0


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="chown needs root")
def test_a_project_file_of_another_account_is_not_used(
    sim: Simulator, igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "someone"
    project.mkdir()
    planted = project / ".igor.toml"
    planted.write_text('stack = "blog"\nenvironment = "production"\n')
    os.chown(planted, 65534, 65534)  # nobody's
    monkeypatch.chdir(project)
    ran = igor("deploy", "--dry-run")
    assert ran.exit_code == 2
    assert "it belongs to another account (user ID 65534), not to you" in ran.stderr


def test_ones_own_project_file_is_used(
    sim: Simulator, igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "mine"
    project.mkdir()
    (project / ".igor.toml").write_text('stack = "blog"\n')
    monkeypatch.chdir(project)
    ran = igor("deploy", "--dry-run")
    assert ran.exit_code == 0, ran.output
    assert "not using" not in ran.stderr
