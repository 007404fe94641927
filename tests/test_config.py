"""The config file: one schema, checked whenever it is read, with the file, line and valid names."""

from __future__ import annotations

import pytest

from igor_cli.config import ConfigError, Environment, read_config
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import Igor, RunningBot
from tests.fakes.slack import FakeSlack

GOOD = """\
[cloud66]
api_url = "https://app.cloud66.com/api/3"

[tokens]
cloud66 = "a-token-from-the-file"

[slack]
confirm = ["production"]
confirm_seconds = 60

[[slack.allow]]
commands = ["list"]

[[slack.channel]]
id = "C0SHOP"
stack = "shop"

[audit]
path = "/tmp/igor-audit.jsonl"

[defaults]
stack = "shop"
environment = "staging"

[state]
url = "redis://127.0.0.1:6379/0"
"""


def write_config(text: str | bytes) -> None:
    path = Environment().config_path()
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


def test_a_good_config_is_read_as_it_is() -> None:
    from igor_cli.config import CONFIG_SCHEMA

    write_config(GOOD)
    config = Environment().config()
    assert config["audit"] == {"path": "/tmp/igor-audit.jsonl"}
    assert config["slack"]["allow"] == [{"commands": ["list"]}]
    assert set(config) == set(CONFIG_SCHEMA)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # a misspelt key, several lines down
            '[cloud66]\napi_url = "https://x.example"\n\n# audit\n\n[audit]\npth = "/tmp/a"\n',
            "unknown key 'pth' in [audit] at line 7; valid keys: path, required.",
        ),
        ('[audits]\npath = "/tmp/a"\n', "unknown table [audits] at line 1; valid tables: "),
        ("audit = 5\n", "'audit' at line 1 must be a table ([audit]), not an integer."),
        ('[slack]\nconfirm = "production"\n', "'confirm' in [slack] at line 2 must be an array"),
        ("[slack]\nconfirm_seconds = '60'\n", "'confirm_seconds' in [slack] at line 2 must be a"),
        (
            '[slack.allow]\ncommands = ["list"]\n',
            "'allow' in [slack] at line 1 must be an array of",
        ),
        ("[tokens]\ncloud66 = 12345\n", "'cloud66' in [tokens] at line 2 must be a string"),
        ("[tokens]\n'slack-bot' = true\n", "'slack-bot' in [tokens] at line 2 must be a string"),
        ("tokens = { cloud66 = 5 }\n", "'cloud66' in [tokens] at line 1 must be a string"),
        ('audit.pth = "x"\n', "unknown key 'pth' in [audit] at line 1"),
        ('api_url = "https://x.example"\n', "unknown key 'api_url' outside any table at line 1"),
        ("[cloud66]\napi_url = 3\n[cloud66.extra]\nx = 1\n", "'api_url' in [cloud66] at line 2"),
    ],
)
def test_what_the_file_may_not_hold_is_named_with_its_line(
    text: str, expected: str, igor: Igor
) -> None:
    write_config(text)
    path = Environment().config_path()
    with pytest.raises(ConfigError) as caught:
        Environment().config()
    assert caught.value.message.startswith(f"{path}: ")
    assert expected in caught.value.message
    ran = igor("doctor")  # the same message where a person sees it
    assert ran.exit_code == 2
    assert expected in " ".join(ran.stdout.split())


def test_a_close_name_is_suggested() -> None:
    write_config('[audit]\npth = "/tmp/a"\n')
    with pytest.raises(ConfigError) as caught:
        Environment().config()
    assert caught.value.hint == "Did you mean 'path'?"
    write_config('api_url = "https://x.example"\n')
    with pytest.raises(ConfigError) as caught:
        Environment().config()
    assert caught.value.hint == "Put it under [cloud66]."


def test_a_file_that_is_not_utf8_is_an_error_not_a_crash(igor: Igor) -> None:
    write_config(b'[audit]\npath = "/tmp/caf\xe9"\n')  # Latin-1
    ran = igor("doctor")
    assert ran.exit_code == 2
    assert "is not UTF-8 text (byte 0xe9 at line 2)" in " ".join(ran.stdout.split())


def test_a_byte_order_mark_is_not_an_error() -> None:
    write_config("\ufeff" + GOOD)
    assert Environment().config()["cloud66"]["api_url"] == "https://app.cloud66.com/api/3"


def test_reading_a_token_from_the_file_checks_the_whole_file(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IGOR_CLOUD66_TOKEN")
    write_config(f'[tokens]\ncloud66 = "{SANDBOX_TOKEN}"\n\n[audit]\npth = "/tmp/a"\n')
    ran = igor("list")
    assert ran.exit_code == 2
    assert "unknown key 'pth' in [audit] at line 5; valid keys: path" in ran.stderr
    assert "unexpected error" not in ran.output
    assert sim.requests == []  # nothing was sent
    write_config(f'[tokens]\ncloud66 = "{SANDBOX_TOKEN}"\n\n[audit]\npath = "/tmp/a"\n')
    assert igor("list").exit_code == 0
    assert sim.count("GET", "/stacks") == 1  # the listing (LAST DEPLOY reads the rest)


def test_a_table_given_as_a_value_stops_serve_at_start(
    bot: RunningBot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    write_config("audit = 5\n")  # before: the audit file was silently not written
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(10)
    assert bot.exit_code == 2
    assert "'audit' at line 1 must be a table ([audit]), not an integer" in caplog.text
    assert slack.connections_opened == 0


def test_a_missing_file_is_an_empty_config() -> None:
    assert not Environment().config_path().exists()
    assert read_config(Environment().config_path()) == {}


def test_the_config_file_is_parsed_again_only_when_its_bytes_change() -> None:
    env = Environment()
    path = env.config_path()
    path.write_text('[cloud66]\napi_url = "http://127.0.0.1:9/a"\n', encoding="utf-8")
    first = env.config()
    assert env.config() is first  # asked again, the same bytes: not parsed again
    assert env.api_url() == "http://127.0.0.1:9/a"
    # An edit of the same size at once (the same modification time, to the file system's
    # grain) is seen all the same: igor serve reads the file for every command.
    path.write_text('[cloud66]\napi_url = "http://127.0.0.1:9/b"\n', encoding="utf-8")
    assert env.api_url() == "http://127.0.0.1:9/b"
    path.unlink()
    assert env.config() == {}
    path.write_text("[cloud66\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        env.config()
    with pytest.raises(ConfigError):  # a broken file is said every time, never remembered
        env.config()


def test_within_one_config_a_thread_decides_on_the_file_as_it_first_read_it() -> None:
    # A bot's command asks for the config some seven times (its rules, the channel's
    # defaults, the freezes): it decides on one file, read once.
    import threading

    env = Environment()
    path = env.config_path()
    a, b = (
        '[cloud66]\napi_url = "http://127.0.0.1:9/a"\n',
        '[cloud66]\napi_url = "http://127.0.0.1:9/b"\n',
    )
    path.write_text(a, encoding="utf-8")
    seen_elsewhere: list[str] = []
    with env.one_config():
        assert env.api_url() == "http://127.0.0.1:9/a"
        path.write_text(b, encoding="utf-8")
        with env.one_config():  # nested: still the first reading
            assert env.api_url() == "http://127.0.0.1:9/a"
        assert env.api_url() == "http://127.0.0.1:9/a"
        other = threading.Thread(target=lambda: seen_elsewhere.append(env.api_url()))
        other.start()
        other.join()
    assert seen_elsewhere == ["http://127.0.0.1:9/b"]  # another thread reads the file
    assert env.api_url() == "http://127.0.0.1:9/b"  # and so does this one, after
    path.write_text("[cloud66\n", encoding="utf-8")
    with env.one_config(), pytest.raises(ConfigError):  # a broken file is not held either
        env.config()
