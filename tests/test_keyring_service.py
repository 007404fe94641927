"""The OS keyring as it is on Linux desktops: a Secret Service, unlocked or locked
(issue 26 item 4). A locked keyring is told apart from a missing one and says how to
unlock it; an unlocked one works end to end with a real gnome-keyring-daemon on a
private D-Bus session (installed by `.ci/keyring`; the test skips, saying why, where it
is not installed, and fails on CI, where it must be)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from igor_cli.sandbox import SANDBOX_TOKEN, Simulator
from tests.conftest import Igor
from tests.fakes.keyring import FailingKeyring, LockedKeyring

ROOT = Path(__file__).resolve().parent.parent
UNLOCK = "`gnome-keyring-daemon --replace --unlock`"


# -- a locked keyring is not a missing one ---------------------------------------------


def test_a_locked_keyring_says_so_and_how_to_unlock_it(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring.set_keyring(LockedKeyring())
    ran = igor("register", "--stdin", input=f"{SANDBOX_TOKEN}\n")
    said = " ".join(ran.stderr.split())
    assert ran.exit_code == 4
    assert "The OS keyring (" in said and "is locked" in said
    assert UNLOCK in said and "IGOR_CLOUD66_TOKEN" in said
    assert "No usable OS keyring" not in said  # that is a missing one
    monkeypatch.delenv("IGOR_CLOUD66_TOKEN")
    listed = igor("list")  # the token may well be in it: not "no token is set"
    said = " ".join(listed.stderr.split())
    assert listed.exit_code == 4 and "is locked" in said and UNLOCK in said
    assert "No Cloud 66 personal access token is set" not in said
    doctor = " ".join(igor("doctor").stdout.split())
    assert "keyring: " in doctor and "(locked: unlock it" in doctor
    assert sim.requests == []


def test_a_missing_keyring_still_says_there_is_none(sim: Simulator, igor: Igor) -> None:
    keyring.set_keyring(FailingKeyring())
    ran = igor("register", "--stdin", input=f"{SANDBOX_TOKEN}\n")
    said = " ".join(ran.stderr.split())
    assert ran.exit_code == 4
    assert "No usable OS keyring on this machine" in said and "locked" not in said


# -- a real Secret Service: gnome-keyring-daemon on a private session bus ----------------

NEEDED = ("dbus-daemon", "gnome-keyring-daemon", "secret-tool")


@pytest.fixture
def secret_service(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A private D-Bus session with gnome-keyring-daemon's Secret Service, its login
    keyring unlocked; the environment that reaches it. Every process is stopped after."""
    missing = [name for name in NEEDED if shutil.which(name) is None]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{', '.join(missing)} not installed; .ci/keyring should have done it")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install gnome-keyring "
                    "libsecret-tools dbus-daemon; .ci/keyring does)")  # fmt: skip
    home, run = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    run.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(run),
           "XDG_DATA_HOME": str(home / ".local" / "share"),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    for name in ("PYTHON_KEYRING_BACKEND", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )  # fmt: skip
    daemon: subprocess.Popen[bytes] | None = None
    try:
        assert bus.stdout is not None
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
        daemon = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env,
        )  # fmt: skip
        assert daemon.stdin is not None
        daemon.stdin.write(b"the login keyring's password")
        daemon.stdin.close()  # the password ends at the end of input
        _until_served(env)
        yield env
    finally:
        for process in (daemon, bus):
            if process is not None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def _until_served(env: dict[str, str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ran = _run(["secret-tool", "search", "service", "nothing-here"], env)
        if ran.returncode in (0, 1) and "not provided" not in ran.stderr:
            return
        time.sleep(0.1)
    pytest.fail("gnome-keyring-daemon's Secret Service never answered")


def _run(
    words: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        words, input=stdin, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _igor(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "igor_cli", *args], env, stdin)


@pytest.mark.skipif(sys.platform != "linux", reason="the Secret Service is Linux's")
def test_an_unlocked_secret_service_works_end_to_end(
    sim: Simulator, secret_service: dict[str, str]
) -> None:
    env = {**secret_service, "IGOR_API_URL": sim.url}
    env.pop("IGOR_CLOUD66_TOKEN", None)
    doctor = _igor(env, "doctor")
    assert "keyring: SecretService.Keyring" in doctor.stdout, doctor.stdout + doctor.stderr
    registered = _igor(env, "register", "--stdin", stdin=f"{SANDBOX_TOKEN}\n")
    assert registered.returncode == 0, registered.stderr
    assert "Registered the Cloud 66 personal access token" in registered.stdout
    # What igor stored is where other tools look for it: service igor, entry cloud66.
    found = _run(["secret-tool", "lookup", "service", "igor", "username", "cloud66"], env)
    assert found.stdout.strip().endswith(SANDBOX_TOKEN)
    listed = _igor(env, "list", "--json", "name")
    assert listed.returncode == 0, listed.stderr
    assert '"shop"' in listed.stdout
    removed = _igor(env, "deregister", "--cloud66", "--yes")
    assert removed.returncode == 0, removed.stderr
    gone = _run(["secret-tool", "lookup", "service", "igor", "username", "cloud66"], env)
    assert SANDBOX_TOKEN not in gone.stdout
    assert _igor(env, "list").returncode == 4  # no token left anywhere


@pytest.mark.skipif(sys.platform != "linux", reason="the Secret Service is Linux's")
def test_a_locked_secret_service_is_told_from_a_missing_one(
    sim: Simulator, secret_service: dict[str, str]
) -> None:
    env = {**secret_service, "IGOR_API_URL": sim.url}
    env.pop("IGOR_CLOUD66_TOKEN", None)
    lock = (
        "import secretstorage\n"
        "secretstorage.get_default_collection(secretstorage.dbus_init()).lock()\n"
    )
    assert _run([sys.executable, "-c", lock], env).returncode == 0
    ran = _igor(env, "register", "--stdin", stdin=f"{SANDBOX_TOKEN}\n")
    said = " ".join(ran.stderr.split())
    assert ran.returncode == 4, said
    assert "The OS keyring (SecretService.Keyring) is locked" in said and UNLOCK in said
    assert "No usable OS keyring" not in said
