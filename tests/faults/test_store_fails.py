"""The state store failing under the shell and an `igor serve` (issue 22): a SQLite file that
cannot be read, a Redis that comes back empty, stalls or stops, a full audit disk, a
confirmation clicked meanwhile, and a slow stack's line of commands. Counted at the fakes:
no change goes through a lock it could not check (0 deploy POSTs), and each fault is said
once, plainly."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest

from igor_cli.chat.leases import FollowJob, FollowLeases
from igor_cli.cloud66.models import Stack
from igor_cli.config import Environment, shell_user
from igor_cli.sandbox import Simulator
from igor_cli.state import Store, open_store
from tests.conftest import Igor, RunningBot, wait_until
from tests.fakes.slack import FakeSlack
from tests.faults.conftest import OwnRedis
from tests.test_guard import button_value, click

pytestmark = pytest.mark.faults


def posts(sim: Simulator) -> int:
    return sim.count("POST", "/deployments")


def as_user(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("LOGNAME", name)  # getpass.getuser() reads it first


def thread(slack: FakeSlack, ts: str) -> list[str]:
    return [
        str(call.params.get("text", ""))
        for call in slack.calls_to("chat.postMessage")
        if call.params.get("thread_ts") == ts
    ]


# -- 1. a SQLite store that exists but cannot be read ---------------------------------------


def _damage(path: Path, how: str) -> None:
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    if how == "not a database":  # its header overwritten: SQLite cannot read a byte of it
        with path.open("r+b") as file:
            file.write(b"this is no longer a SQLite file")
    else:  # something else where the file was: it cannot be opened at all
        path.unlink()
        path.mkdir()


@pytest.mark.parametrize("how", ["not a database", "a directory"])
def test_a_store_that_cannot_be_read_refuses_every_change_from_the_shell(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    as_user(monkeypatch, "alice")
    assert igor("lock", "blog", "--reason", "migration").exit_code == 0
    path = Path(Environment().state_url().removeprefix("sqlite://"))  # the default file
    assert path.exists()
    _damage(path, how)

    as_user(monkeypatch, "bob")
    locked = igor("deploy", "-s", "blog")
    assert locked.exit_code == 1
    assert "Cannot open igor's state file" in locked.stderr and "refuses changes" in locked.stderr
    other = igor("deploy", "-s", "api")  # every change, not only the locked stack's
    assert other.exit_code == 1 and "refuses changes" in other.stderr
    assert posts(sim) == 0
    assert igor("locks").exit_code == 1  # says the store cannot be read, not "no lock"
    assert igor("list").exit_code == 0  # what needs no store still works


def test_serve_refuses_to_start_on_a_store_it_cannot_read(
    bot: RunningBot, sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert igor("lock", "blog").exit_code == 0
    _damage(Path(Environment().state_url().removeprefix("sqlite://")), "not a database")
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(15)
    assert bot.exit_code == 1
    assert posts(sim) == 0


def test_a_store_that_cannot_be_made_held_nothing_but_keeps_no_broken_glass(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))  # <data dir>/igor cannot be made
    assert igor("deploy", "-s", "blog").exit_code == 0  # no file: no lock can be in one
    assert posts(sim) == 1
    Environment().config_path().write_text(
        '[[freeze]]\nenvironments = ["*"]\nfrom = "2000-01-01"\nuntil = "2100-01-01"\n'
        f'break_glass = ["{shell_user()}"]\n'
    )
    broken = igor("deploy", "-s", "api", "--break-glass", "--reason", "outage")
    assert broken.exit_code == 1 and "kept on record" in broken.stderr
    assert posts(sim) == 1


# -- 2. a Redis that came back empty ---------------------------------------------------------


def test_a_redis_that_came_back_empty_refuses_changes_until_an_operator_confirms(
    sim: Simulator, igor: Igor, own_redis: OwnRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_STATE_URL", own_redis.url)
    as_user(monkeypatch, "alice")
    assert igor("lock", "blog", "--reason", "migration").exit_code == 0
    own_redis.restart_empty()  # every lock gone; Redis answers as if nothing happened

    as_user(monkeypatch, "bob")
    for stack in ("blog", "api"):
        refused = igor("deploy", "-s", stack)
        assert refused.exit_code == 1, refused.output
        assert "was reset" in refused.stderr and "igor confirm-reset" in refused.stderr
    assert posts(sim) == 0
    shown = igor("locks")
    assert shown.exit_code == 0 and "was reset" in shown.stdout
    assert json.loads(igor("locks", "--json").stdout)["store_reset"]

    confirmed = igor("confirm-reset")
    assert confirmed.exit_code == 0 and "Confirmed the reset" in confirmed.stdout
    assert igor("deploy", "-s", "api").exit_code == 0
    assert posts(sim) == 1
    assert igor("confirm-reset").exit_code == 1  # nothing to confirm now
    assert "confirm-reset" not in igor("locks").stdout


def test_a_bot_notices_the_reset_says_it_once_and_every_igor_refuses_changes(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, igor: Igor, own_redis: OwnRedis,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="igor")
    monkeypatch.setenv("IGOR_STATE_URL", own_redis.url)
    monkeypatch.setattr("igor_cli.chat.slack.takeover.RENEW_SECONDS", 0.2)
    bot.start()
    ts = bot.mention("lock -s blog --reason 'migration'", user="U0ALICE")
    assert wait_until(lambda: thread(slack, ts))
    own_redis.restart_empty()

    def said_reset() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "was reset" in r.getMessage()]

    assert wait_until(said_reset)
    time.sleep(1.0)  # five more looks: said once, not at each
    assert len(said_reset()) == 1
    asked = bot.mention("deploy -s blog", user="U0BOB")
    assert wait_until(lambda: thread(slack, asked))
    assert "was reset" in thread(slack, asked)[0]
    # A shell that never used this store (another machine) sees the reset the bot marked.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "another-machine"))
    fresh = igor("deploy", "-s", "blog")
    assert fresh.exit_code == 1 and "was reset" in fresh.stderr
    assert posts(sim) == 0

    assert igor("confirm-reset").exit_code == 0
    again = bot.mention("deploy -s api", user="U0BOB")
    assert wait_until(lambda: thread(slack, again))
    assert "Deploy started: api" in thread(slack, again)[0]
    assert posts(sim) == 1


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ((), "keeps nothing on disk"),
        (("--appendonly", "yes"), "its data on disk, and never evicts"),
        (("--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"),
         "may evict igor's keys when it is full (maxmemory-policy allkeys-lru)"),
        (("--rename-command", "CONFIG", ""), "cannot read its snapshot settings"),
    ],
    ids=["no-persistence", "aof", "evicts", "config-disabled"],
)  # fmt: skip
def test_doctor_says_whether_redis_keeps_igors_keys(
    igor: Igor, redis_binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    options: tuple[str, ...], said: str,
) -> None:  # fmt: skip
    server = OwnRedis(redis_binary, tmp_path, *options).start()
    try:
        monkeypatch.setenv("IGOR_STATE_URL", server.url)
        ran = igor("doctor", "--json")
    finally:
        server.stop()
    checks = {check["name"]: check for check in json.loads(ran.stdout)["checks"]}
    assert said in checks["state store keeps"]["detail"]
    assert checks["state store keeps"]["ok"] is (True if said.startswith("its data") else None)
    assert checks["state store"]["ok"] is True


# -- 6 and 7. a stalled Redis, a stopped one --------------------------------------------------


@pytest.mark.timeout(60)
def test_a_stalled_redis_slows_no_command_that_needs_no_store(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, own_redis: OwnRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("IGOR_STATE_URL", own_redis.url)
    bot.start()
    own_redis.stall()
    started = time.monotonic()
    helps = [bot.mention("help", user=f"U0USER{n}") for n in range(6)]
    assert wait_until(lambda: all(thread(slack, ts) for ts in helps), 20)
    # One operation waits out its 1 s timeout; then the store is known down, and nobody waits.
    assert time.monotonic() - started < 4.0
    started = time.monotonic()
    refused = bot.mention("deploy -s blog")
    assert wait_until(lambda: thread(slack, refused), 10)
    assert time.monotonic() - started < 3.0
    assert "refuses changes" in thread(slack, refused)[0]
    assert posts(sim) == 0
    own_redis.resume()
    time.sleep(1.5)  # the probe finds it answering again
    again = bot.mention("deploy -s blog")
    assert wait_until(lambda: thread(slack, again), 10)
    assert "Deploy started: blog" in thread(slack, again)[0]


def test_a_store_outage_is_one_line_in_the_log_not_tracebacks(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, own_redis: OwnRedis,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="igor")
    monkeypatch.setenv("IGOR_STATE_URL", own_redis.url)
    monkeypatch.setattr("igor_cli.chat.slack.bypass_watch.BYPASS_CHECK_SECONDS", 0.2)
    monkeypatch.setattr("igor_cli.chat.slack.bypass_watch.FIRST_LOOK_SECONDS", 0.1)
    monkeypatch.setattr("igor_cli.chat.slack.takeover.RENEW_SECONDS", 0.2)
    bot.start()
    own_redis.stop()
    for text in ("help", "list", "deploy -s blog", "version"):
        ts = bot.mention(text)
        assert wait_until(lambda ts=ts: thread(slack, ts))
    time.sleep(2.0)  # ten looks for bypasses and orphans while the store is down
    said = [r.getMessage() for r in caplog.records if r.name != "igor.audit"]
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1, said  # the outage, once: no line per look, no traceback
    assert "state store" in loud[0].getMessage() and not loud[0].exc_info
    assert len([m for m in said if "Error 111" in m or "refused" in m.lower()]) == 1, said
    assert posts(sim) == 0


# -- 7. a full audit disk ----------------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("required", [False, True], ids=["changes-go-on", "required"])
def test_a_full_audit_disk_is_said_once_and_counted(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str], required: bool,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="igor")
    extra = "required = true\n" if required else ""
    Environment().config_path().write_text(f'[audit]\npath = "/dev/full"\n{extra}')
    bot.start()
    for _ in range(3):
        ts = bot.mention("help")
        assert wait_until(lambda ts=ts: thread(slack, ts))
    asked = bot.mention("deploy -s blog")
    assert wait_until(lambda: thread(slack, asked))
    bot.close()
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "audit lines are being lost" in m]) == 1, messages
    assert any("4 audit line(s) could not be written" in m for m in messages), messages
    assert "Logging error" not in capsys.readouterr().err
    if required:
        assert "The audit file cannot be written" in thread(slack, asked)[0]
        assert posts(sim) == 0
    else:
        assert "Deploy started: blog" in thread(slack, asked)[0]
        assert posts(sim) == 1


# -- 9. a Confirm click while the store is down ------------------------------------------------


def test_a_confirm_click_while_the_store_is_down_says_it_was_not_done(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, own_redis: OwnRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("IGOR_STATE_URL", own_redis.url)
    monkeypatch.setenv("IGOR_SIGNING_KEY", "a-key-shared-by-every-replica-of-the-bot")
    Environment().config_path().write_text('[slack]\nconfirm = ["production"]\n')
    bot.start()
    bot.mention("deploy -s blog")
    bot.replies(1)
    value = button_value(slack)
    own_redis.stop()
    slack.wait_ack(click(slack, "U0ALICE", value))
    decided = slack.wait_for_calls("response_url", 1)[0].params["text"]
    assert "Not done" in decided and "nothing was done" in decided
    assert "Confirmed" not in decided
    time.sleep(0.5)
    assert posts(sim) == 0


def test_a_confirmed_cancel_needs_no_store(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, igor: Igor, own_redis: OwnRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("IGOR_STATE_URL", own_redis.url)
    monkeypatch.setenv("IGOR_SIGNING_KEY", "a-key-shared-by-every-replica-of-the-bot")
    Environment().config_path().write_text('[slack]\nconfirm = ["production"]\n')
    assert igor("deploy", "-s", "blog").exit_code == 0
    bot.start()
    own_redis.stop()  # stopping a deployment never waits for a lock
    bot.mention("cancel -s blog")
    bot.replies(1)
    slack.wait_ack(click(slack, "U0ALICE", button_value(slack)))
    decided = slack.wait_for_calls("response_url", 1)[0].params["text"]
    assert "Confirmed" in decided
    assert wait_until(lambda: sim.count("DELETE") == 1)


# -- 5. a slow stack's line --------------------------------------------------------------------


def test_commands_waiting_for_their_stack_are_told_and_the_line_is_bounded(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("igor_cli.chat.lines.NOTICE_SECONDS", 0.2)
    monkeypatch.setattr("igor_cli.chat.lines.LINE_LIMIT", 2)
    sim.latency = 0.4  # a slow Cloud 66: each command on blog takes seconds
    bot.start()
    # A cancel with nothing to cancel: a change that waits in line, and posts nothing.
    asked = [bot.mention("cancel -s blog", user=f"U0USER{n}") for n in range(4)]
    assert wait_until(lambda: all(thread(slack, ts) for ts in asked), 30)
    # The intake takes them in any order: one runs, two wait (and are told), one is refused.
    first = {thread(slack, ts)[0].split(";")[0] for ts in asked}
    assert first == {
        "blog (production) is not deploying, nothing to cancel.",
        "Waiting behind 1 command for blog",
        "Waiting behind 2 commands for blog",
        "2 commands for blog are already waiting",
    }, first
    waited = [ts for ts in asked if thread(slack, ts)[0].startswith("Waiting")]
    assert wait_until(lambda: all(len(thread(slack, ts)) == 2 for ts in waited), 30)
    refused = next(ts for ts in asked if "already waiting" in thread(slack, ts)[0])
    time.sleep(0.5)
    assert len(thread(slack, refused)) == 1  # nothing more: it never ran


def test_a_dry_run_waits_in_no_line(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("igor_cli.chat.lines.NOTICE_SECONDS", 0.2)
    sim.latency = 0.4  # each change on blog takes a second or so: three take seconds
    bot.start()
    changes = [bot.mention("cancel -s blog", user=f"U0USER{n}") for n in range(3)]
    dry = bot.mention("deploy -s blog --dry-run", user="U0LOOK")
    assert wait_until(lambda: bool(thread(slack, dry)), 30)

    # Answered while changes to blog still wait their turn, never told to wait itself.
    def answered(ts: str) -> bool:
        return any(not text.startswith("Waiting") for text in thread(slack, ts))

    assert not all(map(answered, changes)), [thread(slack, ts) for ts in changes]
    said = thread(slack, dry)
    assert len(said) == 1 and said[0].startswith("Dry run: a deploy of blog"), said
    assert wait_until(lambda: all(map(answered, changes)), 30)
    assert sim.count("POST") == 0


def test_a_command_whose_turn_comes_too_late_is_not_run(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("igor_cli.chat.lines.NOTICE_SECONDS", 0.1)
    monkeypatch.setattr("igor_cli.chat.lines.LINE_SECONDS", 0.5)
    sim.latency = 0.4  # the first in line takes longer than the second may wait
    bot.start()
    asked = [bot.mention("cancel -s blog", user=user) for user in ("U0AL", "U0BO")]
    assert wait_until(lambda: sum(len(thread(slack, ts)) for ts in asked) >= 3, 30)
    time.sleep(0.5)
    said = [thread(slack, ts) for ts in asked]
    ran = [s for s in said if len(s) == 1]
    late = [s for s in said if len(s) == 2]
    assert len(ran) == 1 and "nothing to cancel" in ran[0][0], said
    assert len(late) == 1 and late[0][0].startswith("Waiting behind 1 command"), said
    assert "waited more than" in late[0][1] and "nothing was done" in late[0][1]
    assert sim.count("GET", "/stacks") <= 2  # the late one asked Cloud 66 nothing


# -- 4. the takeover scan, and a lease that cannot be renewed ------------------------------------


class _FinishesBetweenReads:
    """The store as seen while another replica finishes a deployment normally: it tells the
    outcome (deletes the job) and lets go (deletes its lease) between this replica's reads."""

    def __init__(self, store: Store, job: FollowJob) -> None:
        self.store = store
        self.url = store.url
        self.job = job
        self.finished = False

    def items(self, prefix: str) -> dict[str, str]:
        found = self.store.items(prefix)
        if not self.finished:
            self.finished = True
            assert self.store.release(self.job.key, self.job.dumps())
            assert self.store.release(f"lease:follow:{self.job.deployment}", "other-replica")
        return found

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def test_a_deployment_finishing_normally_is_not_taken_for_an_orphan(state_url: str) -> None:
    store = open_store(state_url)
    try:
        stack = Stack.from_api({"uid": "s1", "name": "blog", "environment": "production"})
        job = FollowJob.of(stack, "a1", "C1", "1.1", "U0ALICE")
        assert store.claim(job.key, job.dumps(), 3600)
        assert store.claim(f"lease:follow:{job.deployment}", "other-replica", 30)
        seen = _FinishesBetweenReads(store, job)
        leases = FollowLeases(lambda: seen, "this-replica")  # type: ignore[arg-type, return-value]
        assert leases.orphans() == {}
    finally:
        store.close()


def test_a_lease_that_cannot_be_renewed_stops_the_polling_before_it_may_lapse(
    own_redis: OwnRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("igor_cli.chat.leases.LEASE_SECONDS", 2.0)
    monkeypatch.setattr("igor_cli.chat.leases.RENEW_SECONDS", 0.5)
    env = Environment()
    monkeypatch.setenv("IGOR_STATE_URL", own_redis.url)
    try:
        leases = FollowLeases(env.state_or_none, "this-replica")
        stack = Stack.from_api({"uid": "s1", "name": "blog", "environment": "production"})
        job = FollowJob.of(stack, "a1", "C1", "1.1", "U0ALICE")
        assert leases.wait_for(job) and leases.hold(job.deployment)
        leases.watching(job, shared=True)
        own_redis.stall()
        assert leases.renew() == []  # still ours for sure: it keeps polling
        time.sleep(1.6)
        assert leases.renew() == [job.deployment]  # it may lapse before the next try: stop
        assert not leases.claim(job)  # nor is its outcome told while the store cannot say
        own_redis.resume()
    finally:
        env.close()
