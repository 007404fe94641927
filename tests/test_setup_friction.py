"""Set-up friction (issue 11): serve's missing tokens, bad URLs, the bot's JSON log lines,
cancel -v, the manifest, doctor, register and deregister."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from igor_cli.chat.slack.log_lines import JsonLines
from igor_cli.chat.slack.manifest import manifest
from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import Igor, RunningBot, next_ts
from tests.fakes.slack import FakeSlack

# -- igor serve without its Slack tokens (item 3) ------------------------------------


def test_serve_names_every_missing_slack_token_at_once(sim: Simulator, igor: Igor) -> None:
    ran = igor("serve")
    assert ran.exit_code == 4
    assert ran.stdout == ""
    assert ran.stderr.startswith(
        "Error: igor serve needs the Slack bot token (xoxb-) and the Slack app-level token "
        "(xapp-); neither is set.\n"
    ), ran.stderr
    said = " ".join(ran.stderr.split())
    assert "`igor register --slack`, or set SLACK_BOT_TOKEN and SLACK_APP_TOKEN." in said
    assert "--sandbox" not in said  # a Cloud 66 token is set: the sandbox is no fix for Slack
    assert "ERROR" not in ran.stderr and "igor.serve" not in ran.stderr  # not a log line


def test_serve_names_only_the_missing_one(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1234-5678-abcdef")
    ran = igor("--sandbox", "serve")
    assert ran.exit_code == 4
    said = " ".join(ran.stderr.split())
    assert "needs the Slack app-level token (xapp-); it is not set." in said
    assert "bot token" not in said
    assert "or set SLACK_APP_TOKEN." in said
    assert "--sandbox" not in said


def test_serve_without_any_token_mentions_the_sandbox_for_cloud66_only(igor: Igor) -> None:
    ran = igor("serve")
    assert ran.exit_code == 4
    said = " ".join(ran.stderr.split())
    assert "neither is set" in said
    assert "also needs a Cloud 66 token to answer commands (`igor register`)" in said
    assert "--sandbox to rehearse on the simulator" in said


# -- URLs and network errors (item 6) --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("app.cloud66.com/api/3", "it does not start with http:// or https://"),
        ("https://", "it names no host"),
        ("https://exa mple.com/api/3", "'exa mple.com' is not a host name"),
        ("https://bad_host!/api/3", "'bad_host!' is not a host name"),
        ("https://example.com:99999/api/3", "its port is not a number from 0 to 65535"),
    ],
)
def test_a_malformed_api_url_is_a_configuration_error_before_any_request(
    igor: Igor, monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", SANDBOX_TOKEN)
    monkeypatch.setenv("IGOR_API_URL", url)
    ran = igor("list")
    assert ran.exit_code == 2, ran.output
    said = " ".join(ran.stderr.split())
    assert f"(IGOR_API_URL) is not usable: {problem}." in said
    assert "Set IGOR_API_URL to a URL such as https://app.cloud66.com/api/3" in said
    assert "could not be reached" not in said


def test_a_malformed_api_url_in_the_config_file_names_the_file(
    igor: Igor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", SANDBOX_TOKEN)
    (tmp_path / "config.toml").write_text('[cloud66]\napi_url = "cloud66.example/api"\n')
    ran = igor("list")
    assert ran.exit_code == 2
    said = " ".join(ran.stderr.split())
    assert f"([cloud66] api_url in {tmp_path / 'config.toml'})" in said
    assert "IGOR_API_URL" not in said


def test_a_refused_connection_names_the_url_and_the_reason(
    igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", SANDBOX_TOKEN)
    monkeypatch.setenv("IGOR_API_URL", f"http://127.0.0.1:{port}/api/3")
    ran = igor("list")
    assert ran.exit_code == 5
    assert f"could not be reached at http://127.0.0.1:{port} (connection refused)" in ran.stderr
    assert "Error" in ran.stderr and "ConnectionError" not in ran.stderr


def test_unreachable_slack_is_named_with_its_url_and_reason(
    igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1234-5678-abcdef")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A1-2-abcdef")
    monkeypatch.setenv("IGOR_SLACK_API_URL", f"http://127.0.0.1:{port}/api/")
    ran = igor("--sandbox", "serve")
    assert ran.exit_code == 5
    said = " ".join(ran.stderr.split())
    assert f"Slack could not be reached at http://127.0.0.1:{port}/api/ (connection refused)" in (
        said
    )
    assert "URLError" not in said and "OSError" not in said


def test_a_malformed_slack_api_url_is_a_configuration_error(
    igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1234-5678-abcdef")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-A1-2-abcdef")
    monkeypatch.setenv("IGOR_SLACK_API_URL", "slack.com/api/")
    ran = igor("--sandbox", "serve")
    assert ran.exit_code == 2
    assert "(IGOR_SLACK_API_URL) is not usable" in " ".join(ran.stderr.split())


# -- the bot's log: JSON lines (item 8) -------------------------------------------------


def test_log_records_become_one_json_object_a_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("igor.test-json-lines")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("two\nlines %s", "here")
        logger.warning(json.dumps({"event": "command", "user": "U1", "level": "mine"}))
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["message"] == "two\nlines here"
    assert (first["level"], first["logger"]) == ("warning", "igor.test-json-lines")
    assert first["time"].endswith("Z")
    assert second["event"] == "command" and second["user"] == "U1"
    assert second["level"] == "warning"  # the record's own keys win
    assert "message" not in second
    assert "ValueError: boom" in third["exception"]


def test_serve_logs_json_lines_with_what_was_typed(
    bot: RunningBot,
    slack: FakeSlack,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from igor_cli.chat.slack import configure_logging

    audit = tmp_path / "audit.jsonl"
    (tmp_path / "config.toml").write_text(f'[audit]\npath = "{audit}"\n')
    loggers = [logging.getLogger(name) for name in ("igor", "slack_sdk")]
    saved = [(lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    for logger in loggers:
        logger.handlers.clear()
    try:
        configure_logging()
        bot.start()
        bot.mention("list -s <@U0BOB|bob>")
        bot.mention("dploy -s shop")  # a usage error
        slack.push_slash_command(f"list -s {slack.bot_token}")
        bot.replies(2)
        slack.wait_for_calls("response_url", 1)
        time.sleep(0.3)
        bot.close()
    finally:
        for logger, (handlers, propagate, level) in zip(loggers, saved, strict=True):
            logger.handlers[:] = handlers
            logger.propagate, logger.level = propagate, level
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines, err
    assert all({"time", "level", "logger"} <= set(line) for line in lines)
    commands = [line for line in lines if line.get("event") == "command"]
    assert len(commands) == 3, commands
    typed = {line["text"]: line for line in commands}
    assert set(typed) == {"list -s @U0BOB", "dploy -s shop", "list -s [token]"}
    listed = typed["list -s @U0BOB"]
    assert (listed["command"], listed["outcome"]) == ("list", "ok")
    assert "result" not in listed  # "ok" said once
    usage = typed["dploy -s shop"]
    assert usage["outcome"] == "usage"
    assert "command" not in usage
    assert typed["list -s [token]"]["via"] == "slash"
    assert slack.bot_token not in err
    assert all("bob" not in line["text"] for line in commands)  # the mention's ID, not a name
    written = [json.loads(line) for line in audit.read_text().splitlines()]
    assert sorted(line["text"] for line in written) == sorted(typed)


# -- cancel -v, the manifest (item 19) ---------------------------------------------------


def test_cancel_refuses_a_service(sim: Simulator, igor: Igor) -> None:
    igor("deploy", "-s", "shop", "-e", "staging")
    before = len(sim.requests)
    ran = igor("cancel", "-s", "shop", "-e", "staging", "-v", "web")
    assert ran.exit_code == 2
    said = " ".join(ran.stderr.split())
    assert "Usage: igor cancel" in said
    assert "cancel takes no -v/--service: Cloud 66 cancels a whole deployment" in said
    assert not [r for r in sim.requests[before:] if r.method == "DELETE"]


def test_cancel_help_offers_no_service(igor: Igor) -> None:
    ran = igor("cancel", "-h")
    assert ran.exit_code == 0
    assert "--running" in ran.stdout  # the help is cancel's
    assert "-v" not in ran.stdout.split() and "--service" not in ran.stdout


def test_cancel_refuses_a_service_in_chat_too(sim: Simulator, igor: Igor) -> None:
    ran = igor("chat", input="cancel -s shop -v web\n")
    assert "cancel takes no -v/--service" in " ".join(ran.stdout.split())
    assert not [r for r in sim.requests if r.method == "DELETE"]


def test_the_manifest_subscribes_to_private_channels_and_the_bot_answers_there(
    bot: RunningBot, slack: FakeSlack
) -> None:
    printed = manifest()
    events = printed["settings"]["event_subscriptions"]["bot_events"]
    assert "message.groups" in events
    assert "groups:history" in printed["oauth_config"]["scopes"]["bot"]
    bot.start()
    ts = next_ts()
    slack.push_event(
        {"type": "message", "channel_type": "group", "user": "U0ALICE",
         "text": "igor list -s shop", "channel": "G0PRIVATE", "ts": ts}
    )  # fmt: skip
    reply = bot.replies(1)[0]
    assert reply.params["channel"] == "G0PRIVATE"
    assert reply.params["thread_ts"] == ts


@pytest.mark.parametrize(
    ("name", "command"),
    [("igor", "/igor"), ("deploybot", "/deploybot"), ("Deploy Bot", "/deploy-bot"),
     ("ops.bot", "/ops-bot"), ("A" * 35, "/" + "a" * 31)],
)  # fmt: skip
def test_the_slash_command_follows_the_name(igor: Igor, name: str, command: str) -> None:
    printed = json.loads(igor("slack-manifest", "--name", name).stdout)
    assert printed["features"]["slash_commands"][0]["command"] == command
    assert 2 <= len(command) <= 32
    about = printed["display_information"]["long_description"]
    assert f"use {command}:" in about
    assert " is igor " not in about


# -- doctor (item 5) --------------------------------------------------------------------


def doctor_json(igor: Igor, *args: str) -> tuple[int, dict[str, dict[str, object]]]:
    ran = igor("doctor", "--json", *args)
    data = json.loads(ran.stdout)
    assert data["exit_code"] == ran.exit_code
    assert data["ok"] is (ran.exit_code == 0)
    return ran.exit_code, {check["name"]: check for check in data["checks"]}


def test_doctor_shows_the_urls_in_use_and_the_scopes_it_can_learn(
    sim: Simulator, slack: FakeSlack, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_APP_TOKEN", slack.app_token)
    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    code, checks = doctor_json(igor)
    assert code == 0
    assert checks["Cloud 66 API"]["url"] == sim.url.rstrip("/")
    assert checks["Cloud 66 API"]["setting"] == "IGOR_API_URL"
    assert checks["Slack API"]["url"] == slack.api_url
    cloud66 = checks["Cloud 66 personal access token"]
    assert cloud66["scopes"] == {"public": True, "users": True, "redeploy": None}
    bot = checks["Slack bot token (xoxb-)"]
    assert bot["ok"] is True
    assert set(bot["scopes"]) == slack.bot_scopes  # type: ignore[arg-type]
    # Learning the scopes posted nothing: never a deploy or a cancel to find out.
    assert {r.method for r in sim.requests} == {"GET"}
    text = igor("doctor").stdout
    assert f"· Cloud 66 API: {sim.url.rstrip('/')} (IGOR_API_URL)" in text
    assert "scopes: public yes, users yes, redeploy unknown" in " ".join(text.split())
    assert f"· Slack API: {slack.api_url} (IGOR_SLACK_API_URL)" in text


def test_doctor_says_which_scopes_a_token_lacks(
    clock: object, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        Simulator(scopes={"public", "redeploy"}) as sim,
        FakeSlack(bot_scopes={"chat:write", "commands", "app_mentions:read"}) as slack,
    ):
        monkeypatch.setenv("IGOR_API_URL", sim.url)
        monkeypatch.setenv("IGOR_CLOUD66_TOKEN", sim.token)
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
        monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
        code, checks = doctor_json(igor)
        text = " ".join(igor("doctor").stdout.split())
    assert code == 0  # igor list works without the users scope
    assert checks["Cloud 66 personal access token"]["scopes"] == {
        "public": True, "users": False, "redeploy": None,
    }  # fmt: skip
    bot = checks["Slack bot token (xoxb-)"]
    assert bot["ok"] is False
    assert "missing scopes channels:history, groups:history, im:history" in str(bot["detail"])
    assert "✗ Slack bot token (xoxb-)" in text
    assert "account name not shown (it needs the users scope)" in text


def test_doctor_reports_a_malformed_api_url_as_a_setting(
    igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_CLOUD66_TOKEN", SANDBOX_TOKEN)
    monkeypatch.setenv("IGOR_API_URL", "cloud66.example/api")
    code, checks = doctor_json(igor)
    assert code == 2
    assert checks["Cloud 66 API"]["ok"] is False
    assert "IGOR_API_URL" in str(checks["Cloud 66 API"]["detail"])
    assert "Cloud 66 personal access token" not in checks  # said once, as the setting


# -- register and deregister (item 17) ---------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def run_igor(args: list[str], extra: dict[str, str], **popen: object) -> subprocess.Popen[bytes]:
    """`python -m igor_cli ARGS` from this checkout, with an in-memory keyring."""
    env = {**os.environ, **extra, "PYTHON_KEYRING_BACKEND": "tests.fakes.keyring.MemoryKeyring"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "igor_cli", *args], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **popen,  # type: ignore[arg-type]
    )  # fmt: skip


def read_until(process: subprocess.Popen[bytes], marker: bytes, timeout: float = 30) -> bytes:
    """What the process wrote on stderr until `marker` (or its end, or `timeout`)."""
    import select

    assert process.stderr is not None
    seen, deadline = b"", time.monotonic() + timeout
    while marker not in seen and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stderr], [], [], left)
        chunk = os.read(process.stderr.fileno(), 4096) if ready else b""
        if ready and not chunk:
            break  # it ended
        seen += chunk
    return seen


def test_a_piped_token_is_read_without_getpass_warnings(sim: Simulator) -> None:
    process = run_igor(["register"], {"IGOR_API_URL": sim.url}, stdin=subprocess.PIPE)
    out, err = process.communicate(f"{SANDBOX_TOKEN}\n".encode(), timeout=60)
    said = err.decode()
    assert process.returncode == 0, said
    assert "Registered the Cloud 66 personal access token: igor sandbox" in out.decode()
    assert "Warning" not in said and "echo" not in said
    assert "Reading the Cloud 66 personal access token from standard input." in said
    assert SANDBOX_TOKEN not in said + out.decode()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")
def test_at_a_real_terminal_an_empty_line_is_an_error_not_a_new_prompt(sim: Simulator) -> None:
    import pty

    controller, terminal = pty.openpty()
    try:
        process = run_igor(["register"], {"IGOR_API_URL": sim.url}, stdin=terminal)
        seen = read_until(process, b"(hidden): ")
        os.write(controller, b"\n")
        _, rest = process.communicate(timeout=60)
    finally:
        process.kill()
        os.close(controller)
        os.close(terminal)
    said = " ".join((seen + rest).decode().split())
    assert process.returncode == 2, said
    assert "https://app.cloud66.com/oauth/authorized_applications" in said
    assert "with the scopes public and redeploy; add users to see the account's name" in said
    assert said.count("(hidden): ") == 1  # asked once, not again
    assert "The Cloud 66 personal access token is empty." in said
    assert "Warning" not in said
    assert sim.requests == []


def test_the_prompt_says_where_each_token_is_made(slack: FakeSlack, igor: Igor) -> None:
    ran = igor("register", "--slack", terminal="\n")
    said = " ".join(ran.stderr.split())
    assert ran.exit_code == 2
    assert "OAuth & Permissions page at https://api.slack.com/apps" in said
    assert "Slack bot token (xoxb-) (hidden): " in said
    assert "is empty" in said


def test_registering_over_a_working_token_asks_first(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    monkeypatch.delenv("IGOR_CLOUD66_TOKEN")
    keyring.set_password("igor", "cloud66", SANDBOX_TOKEN)
    piped = igor("register", "--stdin", input="another-token-12345\n")
    assert piped.exit_code == 2
    said = " ".join(piped.stderr.split())
    assert "A working Cloud 66 personal access token is already stored (igor sandbox" in said
    assert "Add --force to replace it." in said
    declined = igor("register", terminal="n\n")
    assert declined.exit_code == 1
    assert "Replace it? [y/N]" in declined.stderr
    assert "Nothing was changed." in declined.stderr
    assert keyring.get_password("igor", "cloud66") == SANDBOX_TOKEN
    posts_before = len([r for r in sim.requests if r.method != "GET"])
    forced = igor("register", "--force", "--stdin", input=f"{SANDBOX_TOKEN}\n")
    assert forced.exit_code == 0, forced.output
    assert "Replace it?" not in forced.stderr
    again = igor("register", terminal=f"y\n{SANDBOX_TOKEN}\n")
    assert again.exit_code == 0, again.output
    assert "Registered the Cloud 66 personal access token" in again.stdout
    assert len([r for r in sim.requests if r.method != "GET"]) == posts_before  # only reads


def test_a_stored_token_that_no_longer_works_is_replaced_without_asking(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    monkeypatch.delenv("IGOR_CLOUD66_TOKEN")
    keyring.set_password("igor", "cloud66", "revoked-token-123456")
    ran = igor("register", "--stdin", input=f"{SANDBOX_TOKEN}\n")
    assert ran.exit_code == 0, ran.output
    assert "Replace it?" not in ran.stderr
    assert keyring.get_password("igor", "cloud66") == SANDBOX_TOKEN


def test_deregister_asks_only_about_what_is_stored(igor: Igor) -> None:
    import keyring

    keyring.set_password("igor", "cloud66", "stored-token-1234")
    ran = igor("deregister", terminal="n\n")
    assert ran.exit_code == 1
    assert "Remove the Cloud 66 personal access token from the keyring? [y/N]" in ran.stderr
    assert "Slack" not in ran.stderr
    assert keyring.get_password("igor", "cloud66") == "stored-token-1234"


def test_deregister_without_a_terminal_refuses_instead_of_asking(igor: Igor) -> None:
    import keyring

    keyring.set_password("igor", "slack-bot", "xoxb-stored-1234")
    ran = igor("deregister", input="y\n")  # piped: nobody to ask
    assert ran.exit_code == 2
    said = " ".join(ran.stderr.split())
    assert (
        "asks before it removes the Slack bot token (xoxb-), and standard input is not a " in said
    )
    assert "Add --yes to remove without asking." in said
    assert "[y/N]" not in said
    assert keyring.get_password("igor", "slack-bot") == "xoxb-stored-1234"
    assert igor("deregister", "--yes").exit_code == 0
    assert keyring.get_password("igor", "slack-bot") is None


def test_deregister_with_nothing_stored_asks_nothing(igor: Igor) -> None:
    ran = igor("deregister", "--cloud66", terminal="y\n")
    assert ran.exit_code == 0
    assert "No Cloud 66 personal access token is stored." in ran.stderr
    assert "[y/N]" not in ran.stderr


def test_serve_with_an_unloadable_keyring_names_the_setting_and_the_variables() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON_KEYRING_BACKEND": "no_such.Keyring"}
    ran = subprocess.run(
        [sys.executable, "-m", "igor_cli", "--sandbox", "serve"], env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    said = " ".join(ran.stderr.split())
    assert ran.returncode == 2, said
    assert said.startswith("Error: igor serve needs the Slack bot token (xoxb-) and the Slack")
    assert "PYTHON_KEYRING_BACKEND names a backend that cannot be loaded: 'no_such.Keyring'" in said
    assert "or set SLACK_BOT_TOKEN and SLACK_APP_TOKEN." in said
    assert "igor register" not in said and "Traceback" not in said


def test_a_tls_failure_names_the_url_and_tls(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    https = sim.url.replace("http://", "https://")  # TLS spoken to a plain-HTTP server
    monkeypatch.setenv("IGOR_API_URL", https)
    ran = igor("list")
    assert ran.exit_code == 5
    origin = https.split("/api")[0]
    assert f"could not be reached at {origin} (TLS error)" in " ".join(ran.stderr.split())
    assert "SSLError" not in ran.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX terminals")
def test_ctrl_c_at_a_real_terminal_prompt_exits_130(sim: Simulator) -> None:
    import pty
    import signal

    controller, terminal = pty.openpty()
    try:
        process = run_igor(["register"], {"IGOR_API_URL": sim.url}, stdin=terminal)
        seen = read_until(process, b"(hidden): ")
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=60)
    finally:
        process.kill()
        os.close(controller)
        os.close(terminal)
    assert process.returncode == 130, (seen + rest).decode()
    assert b"Traceback" not in seen + rest
    assert sim.requests == []
