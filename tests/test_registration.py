"""register, deregister, doctor, and where tokens come from."""

from __future__ import annotations

import keyring
import pytest

from igor_cli.config import Environment
from igor_cli.credentials import TokenKind, find_token
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import Igor
from tests.fakes.keyring import DroppingKeyring, FailingKeyring, MemoryKeyring
from tests.fakes.slack import FakeSlack


@pytest.fixture
def api(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """The simulator, with no Cloud 66 token in the environment."""
    monkeypatch.delenv("IGOR_CLOUD66_TOKEN")
    return sim


@pytest.fixture
def slack_api(slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> FakeSlack:
    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    return slack


def stored(entry: str) -> str | None:
    return keyring.get_password("igor", entry)


def test_register_checks_stores_and_says_whose_token(api: Simulator, igor: Igor) -> None:
    ran = igor("register", input=f"{SANDBOX_TOKEN}\n")
    assert ran.exit_code == 0, ran.output
    assert "Registered the Cloud 66 personal access token: igor sandbox, 7 stacks." in (ran.stdout)
    assert stored("cloud66") == SANDBOX_TOKEN
    assert api.count("GET", "/accounts") == 1
    assert SANDBOX_TOKEN not in ran.output  # the prompt hides it, igor never prints it
    assert igor("list").exit_code == 0  # and now igor works with it


def test_register_from_stdin(api: Simulator, igor: Igor) -> None:
    ran = igor("register", "--stdin", input=f"  {SANDBOX_TOKEN}  \n")
    assert ran.exit_code == 0
    assert stored("cloud66") == SANDBOX_TOKEN


def test_a_rejected_token_is_not_stored(api: Simulator, igor: Igor) -> None:
    ran = igor("register", "--stdin", input="not-the-token-7777\n")
    assert ran.exit_code == 4
    assert "Cloud 66 rejected the token" in ran.stderr
    assert stored("cloud66") is None
    assert "not-the-token-7777" not in ran.output


@pytest.mark.parametrize(
    ("flags", "text", "message"),
    [
        ([], "xoxb-123-456\n", "That looks like a Slack bot token, not a Cloud 66"),
        ([], "\n", "is empty"),
        ([], "abc def\n", "contains spaces"),
        (["--slack"], "xapp-1-A1-2-abc\n", "igor needs the Slack bot token (xoxb-) here. That looks like a Slack app-level token"),  # noqa: E501
    ],
)  # fmt: skip
def test_tokens_of_the_wrong_shape_are_refused(
    api: Simulator, igor: Igor, flags: list[str], text: str, message: str
) -> None:
    ran = igor("register", "--stdin", *flags, input=text)
    assert ran.exit_code == 2
    assert message in ran.stderr
    assert api.requests == []
    assert stored("cloud66") is None and stored("slack-bot") is None


def test_register_slack_checks_both_tokens(slack_api: FakeSlack, igor: Igor) -> None:
    ran = igor(
        "register", "--slack", "--stdin", input=f"{slack_api.bot_token}\n{slack_api.app_token}\n"
    )
    assert ran.exit_code == 0, ran.output
    assert "bot @igor in the Acme workspace" in ran.stdout
    assert "Socket Mode connections allowed" in ran.stdout
    assert stored("slack-bot") == slack_api.bot_token
    assert stored("slack-app") == slack_api.app_token
    assert len(slack_api.calls_to("auth.test")) == 1
    assert len(slack_api.calls_to("apps.connections.open")) == 1
    assert slack_api.connections_opened == 0  # checked, not kept


def test_register_slack_rejected_bot_token(slack_api: FakeSlack, igor: Igor) -> None:
    ran = igor("register", "--slack", "--stdin", input="xoxb-wrong\nxapp-whatever\n")
    assert ran.exit_code == 4
    assert "Slack rejected the Slack bot token (xoxb-) (invalid_auth)" in ran.stderr
    assert stored("slack-bot") is None


def test_no_keyring_says_so_before_asking(api: Simulator, igor: Igor) -> None:
    keyring.set_keyring(FailingKeyring())
    ran = igor("register", "--stdin", input=f"{SANDBOX_TOKEN}\n")
    assert ran.exit_code == 4
    assert "No usable OS keyring" in ran.stderr
    assert "IGOR_CLOUD66_TOKEN" in ran.stderr
    assert "PYTHON_KEYRING_BACKEND" in ran.stderr
    assert api.requests == []


def test_a_keyring_that_drops_writes_is_caught(api: Simulator, igor: Igor) -> None:
    keyring.set_keyring(DroppingKeyring())
    ran = igor("register", "--stdin", input=f"{SANDBOX_TOKEN}\n")
    assert ran.exit_code == 4
    assert "accepted the token but did not keep it" in ran.stderr


def test_environment_variable_still_wins_is_said(sim: Simulator, igor: Igor) -> None:
    ran = igor("register", "--stdin", input=f"{SANDBOX_TOKEN}\n")
    assert ran.exit_code == 0
    assert "IGOR_CLOUD66_TOKEN is set and still wins over the keyring" in ran.stderr


def test_deregister_all_after_confirmation(igor: Igor, isolated: MemoryKeyring) -> None:
    for entry in ("cloud66", "slack-bot", "slack-app"):
        keyring.set_password("igor", entry, "x")
    refused = igor("deregister", terminal="n\n")
    assert refused.exit_code == 1
    assert stored("cloud66") == "x"
    ran = igor("deregister", terminal="y\n")
    assert ran.exit_code == 0
    assert isolated.passwords == {}


def test_deregister_only_the_ones_named(igor: Igor) -> None:
    keyring.set_password("igor", "cloud66", "x")
    keyring.set_password("igor", "slack-bot", "y")
    ran = igor("deregister", "--slack", "--yes")
    assert ran.exit_code == 0
    assert "Removed the Slack bot token (xoxb-)." in ran.stdout
    assert "No Slack app-level token (xapp-) was stored." in ran.stderr
    assert stored("cloud66") == "x"
    assert stored("slack-bot") is None
    assert igor("deregister", "--cloud66", "--yes").exit_code == 0
    assert igor("deregister", "--cloud66", "--yes").exit_code == 0  # not stored: not an error


def test_precedence_environment_then_keyring_then_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    env = Environment()
    env.config_path().write_text('[tokens]\ncloud66 = "from-config-file"\n')
    assert find_token(TokenKind.CLOUD66, env).source == "config file"  # type: ignore[union-attr]
    keyring.set_password("igor", "cloud66", "from-keyring")
    found = find_token(TokenKind.CLOUD66, env)
    assert (found.source, found.value) == ("keyring", "from-keyring")  # type: ignore[union-attr]
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "from-environment")
    found = find_token(TokenKind.CLOUD66, env)
    assert (found.source, found.value) == ("environment", "from-environment")  # type: ignore[union-attr]
    assert "from-environment" not in repr(found)


def test_doctor_all_good(
    sim: Simulator, slack_api: FakeSlack, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack_api.bot_token)
    keyring.set_password("igor", "slack-app", slack_api.app_token)
    ran = igor("doctor")
    assert ran.exit_code == 0, ran.output
    out = ran.stdout
    assert "✓ Cloud 66 personal access token: from environment (IGOR_CLOUD66_TOKEN), …" in out
    assert "accepted (igor sandbox, 7 stacks)" in out
    assert "✓ Slack bot token (xoxb-): from environment (SLACK_BOT_TOKEN)" in out
    assert "✓ Slack app-level token (xapp-): from keyring" in out
    for token in (SANDBOX_TOKEN, slack_api.bot_token, slack_api.app_token):
        assert token not in ran.output


def test_doctor_missing_and_rejected(api: Simulator, igor: Igor) -> None:
    ran = igor("doctor")
    assert ran.exit_code == 4
    assert "✗ Cloud 66 personal access token: missing" in ran.stdout
    assert "only igor serve needs it" in ran.stdout
    keyring.set_password("igor", "cloud66", "wrong-but-long-9999")
    ran = igor("doctor")
    assert ran.exit_code == 4
    assert "from keyring, …9999: Cloud 66 rejected the token" in ran.stdout


def test_doctor_broken_config_file(sim: Simulator, igor: Igor) -> None:
    Environment().config_path().write_text("[slack\n")
    ran = igor("doctor")
    assert ran.exit_code == 2
    assert "is not valid TOML" in ran.stdout


def test_tokens_never_appear_in_any_output(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    distinctive = SANDBOX_TOKEN  # the simulator accepts only this one
    commands = [
        ["list"], ["list", "--json"], ["deploy", "-s", "blog"], ["deploy", "-s", "blog", "--json"],
        ["cancel", "-s", "blog"], ["deploy", "-s", "nope"], ["doctor"], ["version"], ["-h"],
        ["deploy", "-s", "blog", "--follow"],
    ]  # fmt: skip
    for command in commands:
        ran = igor(*command)
        assert distinctive not in ran.output, command
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", "a-wrong-and-distinctive-token-1234")
    for command in commands:
        assert "a-wrong-and-distinctive-token" not in igor(*command).output, command


def test_register_slack_waits_out_a_rate_limit(slack_api: FakeSlack, igor: Igor) -> None:
    # A 429 is Slack asking to wait, not a verdict on the token: waited out, then checked.
    slack_api.fail_next("auth.test", retry_after=1)
    slack_api.fail_next("apps.connections.open", status=503)
    ran = igor(
        "register", "--slack", "--stdin", input=f"{slack_api.bot_token}\n{slack_api.app_token}\n"
    )
    assert ran.exit_code == 0, ran.output
    assert "rejected" not in ran.output
    assert stored("slack-bot") == slack_api.bot_token
    assert len(slack_api.calls_to("auth.test")) == 2
    assert len(slack_api.calls_to("apps.connections.open")) == 2


def test_register_slack_says_a_long_rate_limit_and_stores_nothing(
    slack_api: FakeSlack, igor: Igor
) -> None:
    slack_api.fail_next("auth.test", retry_after=90)
    ran = igor(
        "register", "--slack", "--stdin", input=f"{slack_api.bot_token}\n{slack_api.app_token}\n"
    )
    assert ran.exit_code == 5, ran.output
    assert "Slack is rate-limiting igor" in ran.stderr
    assert "Try again in 90 s." in ran.stderr
    assert "rejected" not in ran.output
    assert stored("slack-bot") is None
    assert len(slack_api.calls_to("auth.test")) == 1  # not asked again in a loop
