"""Setting up HTTP mode from the shell: `serve --http`'s address and secrets, the manifest of
`slack-manifest --http`, `register --slack --http`, and doctor's signing-secret line."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import keyring
import pytest

from igor_cli.sandbox import Simulator
from tests.conftest import Igor
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_http import SIGNING_SECRET


@pytest.fixture(autouse=True)
def own_loggers() -> Iterator[None]:
    """`igor serve` in process sets up the bot's log lines: undone after each test."""
    loggers = [logging.getLogger(name) for name in ("igor", "slack_sdk", "waitress")]
    saved = [(logger.handlers[:], logger.propagate, logger.level) for logger in loggers]
    yield
    for logger, (handlers, propagate, level) in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers
        logger.propagate, logger.level = propagate, level


@pytest.fixture
def slack_api(slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> FakeSlack:
    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    return slack


# -- serve --http --------------------------------------------------------------------------


def test_serve_http_needs_the_bot_token_and_the_signing_secret_not_the_app_token(
    slack_api: FakeSlack, sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack_api.bot_token)
    monkeypatch.setenv("SLACK_APP_TOKEN", slack_api.app_token)  # of no use here
    ran = igor("serve", "--http", "127.0.0.1:0")
    assert ran.exit_code == 4
    assert "igor serve --http needs the Slack signing secret; it is not set." in ran.stderr
    assert "`igor register --slack --http`, or set SLACK_SIGNING_SECRET." in ran.stderr
    assert not slack_api.calls  # nothing asked of Slack before the secrets are there


def test_serve_http_refuses_an_address_that_is_not_one(igor: Igor, slack_api: FakeSlack) -> None:
    ran = igor("serve", "--http", "::1:3000")
    assert ran.exit_code == 2
    assert "--http takes [HOST:]PORT, e.g. 3000, 0.0.0.0:3000 or [::]:3000" in ran.stderr
    assert not slack_api.calls


def test_serve_http_says_when_its_port_is_taken(
    slack_api: FakeSlack, sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack_api.bot_token)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = igor("serve", "--http", f"127.0.0.1:{port}")
    assert ran.exit_code == 1
    assert f"igor cannot listen on 127.0.0.1:{port}: Address already in use." in ran.stderr
    assert "Traceback" not in ran.output and SIGNING_SECRET not in ran.output


def test_serve_http_alone_takes_the_default_address() -> None:
    from igor_cli.cli import parse

    assert getattr(parse(["serve", "--http"]).request, "http", None) == ""  # 127.0.0.1:3000
    assert getattr(parse(["serve", "--http", "8080"]).request, "http", None) == "8080"
    assert getattr(parse(["serve"]).request, "http", "absent") is None  # Socket Mode


# -- slack-manifest --http -------------------------------------------------------------------


def test_the_manifest_for_http_mode_names_the_request_urls_and_no_socket_mode(igor: Igor) -> None:
    ran = igor("slack-manifest", "--http", "https://ops.example.com/igor/")
    assert ran.exit_code == 0, ran.output
    manifest = json.loads(ran.stdout)
    url = "https://ops.example.com/igor/slack/events"
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["event_subscriptions"]["request_url"] == url
    assert settings["interactivity"] == {"is_enabled": True, "request_url": url}
    assert manifest["features"]["slash_commands"][0]["url"] == url
    # The same events and scopes as Socket Mode's manifest.
    plain = json.loads(igor("slack-manifest").stdout)
    assert plain["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in plain["settings"]["event_subscriptions"]
    assert plain["oauth_config"] == manifest["oauth_config"]
    assert (
        plain["settings"]["event_subscriptions"]["bot_events"]
        == (settings["event_subscriptions"]["bot_events"])
    )


def test_the_manifest_refuses_what_is_not_a_url(igor: Igor) -> None:
    for wrong in ("igor.example.com", "ftp://igor.example.com", "https://x:port/", "https://x/?a"):
        ran = igor("slack-manifest", "--http", wrong)
        assert ran.exit_code == 2, wrong
        assert "--http takes the URL where Slack reaches igor serve --http" in ran.stderr
        assert ran.stdout == ""


# -- register --slack --http, doctor ---------------------------------------------------------


def test_register_for_http_mode_stores_the_bot_token_and_the_signing_secret(
    slack_api: FakeSlack, igor: Igor
) -> None:
    ran = igor("register", "--slack", "--http", "--stdin",
               input=f"{slack_api.bot_token}\n{SIGNING_SECRET}\n")  # fmt: skip
    assert ran.exit_code == 0, ran.output
    assert "Registered the Slack bot token (xoxb-): bot @igor in the Acme workspace" in ran.stdout
    assert "Registered the Slack signing secret: Slack has no way to check it" in ran.stdout
    assert keyring.get_password("igor", "slack-signing") == SIGNING_SECRET
    assert keyring.get_password("igor", "slack-app") is None  # not asked for
    assert not slack_api.calls_to("apps.connections.open")
    assert SIGNING_SECRET not in ran.output
    doctor = igor("doctor").stdout
    assert "✓ Slack signing secret: from keyring, …00d5: set" in doctor
    assert SIGNING_SECRET not in doctor
    # deregister --slack removes it with the other Slack secrets.
    assert igor("deregister", "--slack", "--yes").exit_code == 0
    assert keyring.get_password("igor", "slack-signing") is None


def test_register_refuses_a_token_given_as_the_signing_secret(
    slack_api: FakeSlack, igor: Igor
) -> None:
    ran = igor("register", "--http", "--stdin",
               input=f"{slack_api.bot_token}\n{slack_api.bot_token}\n")  # fmt: skip
    assert ran.exit_code == 2
    assert "That looks like a Slack bot token, not a Slack signing secret." in ran.stderr
    assert "Basic Information page, under App Credentials" in ran.stderr
    assert keyring.get_password("igor", "slack-signing") is None


def test_doctor_says_where_the_signing_secret_is_missing_from(igor: Igor) -> None:
    doctor = igor("--sandbox", "doctor").stdout
    assert (
        "Slack signing secret: missing (only igor serve --http needs it; set "
        "SLACK_SIGNING_SECRET or run `igor register --slack --http`)"
    ) in doctor
