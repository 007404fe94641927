"""Issue 21, "Secrets": a state store's password is never shown (chat, the log, doctor),
igor's files are its owner's alone, and a signing key too short to trust stops the bot."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from igor_cli.config import Environment
from igor_cli.sandbox import Simulator
from tests.conftest import Igor, RunningBot, start_redis, stop_process
from tests.fakes.slack import FakeSlack

PASSWORD = "s3cr3t-Passw0rd-of-the-store"


@pytest.fixture
def redis_with_password() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A private redis-server that asks for PASSWORD; its URL without it."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not installed; .ci/run should have installed it")
        pytest.skip("redis-server is not installed")
    started = start_redis(binary, PASSWORD)
    assert started is not None, "redis-server did not start"
    process, url = started
    try:
        yield process, url
    finally:
        stop_process(process)


def test_the_stores_password_is_never_shown_in_chat_the_log_or_doctor(
    bot: RunningBot,
    slack: FakeSlack,
    sim: Simulator,
    igor: Igor,
    redis_with_password: tuple[subprocess.Popen[bytes], str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    process, url = redis_with_password  # redis://127.0.0.1:<port>/0
    monkeypatch.setenv("IGOR_STATE_URL", f"{url}?password={PASSWORD}")  # redis-py's own form
    caplog.set_level(logging.INFO, logger="igor")
    bot.start()
    for args in (("doctor",), ("doctor", "--json")):
        ran = igor(*args)
        assert PASSWORD not in ran.output
        assert url in ran.stdout  # scheme, host, port and database
    assert f"state store: {url}" in caplog.text  # the serve log names where, not how

    stop_process(process)  # Redis goes away: a change is refused, naming the store
    bot.mention("deploy -s blog")
    reply = bot.replies(1)[0].params
    said = reply["text"] + json.dumps(reply["blocks"])
    assert url in said and "password" not in said and PASSWORD not in said
    assert sim.count("POST", "/deployments") == 0

    bot.mention(f"list -s {PASSWORD}")  # pasted in chat by mistake: scrubbed like a token
    bot.replies(2)
    assert PASSWORD not in caplog.text
    assert "list -s [token]" in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cr3t/pa?ss#w0rd-x@127.0.0.1:1/0",  # / ? # in the user info, unescaped
        "redis://admin:s3cr3t/pa?ss#w0rd-x@127.0.0.1:1/3",
        "unix:///tmp/igor-no-such.sock?db=2&password=s3cr3t/pa?ss#w0rd-x",  # redis-py's form
        "rediss://default:s3cr3t%2Fpa%3Fss%23w0rd-x@127.0.0.1:1/0",  # %-escaped
    ],
)
def test_doctor_shows_a_state_url_without_any_piece_of_its_password(
    igor: Igor, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("IGOR_STATE_URL", url)
    for args in (("doctor",), ("doctor", "--json")):
        ran = igor(*args)
        assert "state store" in ran.stdout
        for piece in ("s3cr3t", "w0rd-x", "pa?ss", "ss#w0rd", "pa%3F", "admin:"):
            assert piece not in ran.output, (piece, ran.output)
    shown = igor("doctor").stdout
    assert "127.0.0.1:1" in shown or "unix:///tmp/igor-no-such.sock?db=2" in shown


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_file_and_its_directory_are_private_and_doctor_says_when_not(
    sim: Simulator, igor: Igor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "state" / "here" / "state.db"
    monkeypatch.setenv("IGOR_STATE_URL", f"sqlite://{store}")
    old = os.umask(0o022)  # the usual one: files 0644, directories 0755
    try:
        assert igor("lock", "-s", "blog", "--reason", "release").exit_code == 0
    finally:
        os.umask(old)
    assert _mode(store) == 0o600
    assert _mode(store.parent) == 0o700 and _mode(store.parent.parent) == 0o700
    wal = store.with_name("state.db-wal")
    assert not wal.exists() or _mode(wal) == 0o600
    assert "✓ state store" in igor("doctor").stdout

    store.chmod(0o644)  # made readable by someone (or by an older igor)
    ran = igor("doctor")
    assert ran.exit_code == 2
    assert "✗ state store" in ran.stdout
    assert f"{store} is open to other accounts (mode 0644): chmod 600 {store}" in ran.stdout
    facts = json.loads(igor("doctor", "--json").stdout)
    check = next(c for c in facts["checks"] if c["name"] == "state store")
    assert check["ok"] is False and check["private"] is False


def test_the_audit_file_is_private(
    bot: RunningBot, slack: FakeSlack, igor: Igor, tmp_path: Path
) -> None:
    audit = tmp_path / "logs" / "igor" / "audit.jsonl"
    Environment().config_path().write_text(f'[audit]\npath = "{audit}"\n')
    old = os.umask(0o022)
    try:
        bot.start()
        bot.mention("list")
        bot.replies(1)
    finally:
        os.umask(old)
    assert _mode(audit) == 0o600 and _mode(audit.parent) == 0o700
    assert "✓ audit file" in igor("doctor").stdout
    audit.chmod(0o640)
    ran = igor("doctor")
    assert "✗ audit file" in ran.stdout and "chmod 600" in ran.stdout and ran.exit_code == 2


def test_a_signing_key_too_short_to_trust_stops_the_bot(
    bot: RunningBot, slack: FakeSlack, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_SIGNING_KEY", "k")
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(10)
    assert bot.exit_code == 2
    assert slack.connections_opened == 0  # it never listened
    ran = igor("doctor")
    assert ran.exit_code == 2
    assert "✗ confirmation signing key" in ran.stdout and "1 bytes long" in ran.stdout
    assert "IGOR_SIGNING_KEY to a long random value" in ran.stdout

    monkeypatch.setenv("IGOR_SIGNING_KEY", "k" * 31)  # one byte short
    assert igor("serve").exit_code == 2
    monkeypatch.setenv("IGOR_SIGNING_KEY", "k" * 32)
    assert "✓ confirmation signing key" in igor("doctor").stdout


def test_register_replaces_a_weak_signing_key_in_the_keyring(
    igor: Igor, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyring

    monkeypatch.setenv("IGOR_SLACK_API_URL", slack.api_url)
    keyring.set_password("igor", "signing-key", "short")
    ran = igor("register", "--slack", input=f"{slack.bot_token}\n{slack.app_token}\n")
    assert ran.exit_code == 0, ran.output
    key = keyring.get_password("igor", "signing-key")
    assert key is not None and len(key.encode()) >= 32
