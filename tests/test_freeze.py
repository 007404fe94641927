"""Freeze windows from the config file: changes refused during them, the glass broken by
those a freeze names (on record in the state store, on both backends), `igor locks`
showing them. The simulated clock starts on Monday 2026-11-30 00:53 UTC."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from igor_cli.chat.bridge import Bridge
from igor_cli.chat.guard import rules_from_config
from igor_cli.config import Environment
from igor_cli.freeze import StackFrozen, freezes_from_config
from igor_cli.identity import Origin
from igor_cli.sandbox import Simulator
from igor_cli.state import open_store
from tests.conftest import Igor, RunningBot, wait_until
from tests.fakes.clock import FakeClock
from tests.fakes.slack import FakeSlack

WEEKEND = """
[[freeze]]
environments = ["production"]
from = "Fri 16:00"
until = "Mon 08:00"
timezone = "Europe/Berlin"
message = "Weekend freeze"
break_glass = ["U0LEAD", "{me}"]
"""


def write(text: str) -> None:
    Path(Environment().config_path()).write_text(text, encoding="utf-8")


def me(name: str = "alice") -> str:
    return f"{name}@{socket.gethostname()}"


def posts(sim: Simulator) -> int:
    return sim.count("POST", "/deployments")


def test_a_weekly_freeze_refuses_changes_until_it_ends(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    write(WEEKEND.format(me=me()))
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 1
    assert "blog (production) is frozen until Mon 2026-11-30 08:00 CET" in ran.stderr
    assert '"Weekend freeze"' in ran.stderr and "Nothing was posted" in ran.stderr
    assert "--break-glass" not in ran.stderr  # not for everyone: only those it names
    assert igor("deploy", "-s", "shop", "-e", "production", "--dry-run").exit_code == 1
    assert posts(sim) == 0
    assert igor("deploy", "-s", "shop", "-e", "staging").exit_code == 0  # not frozen
    assert posts(sim) == 1
    clock.advance(7 * 3600)  # 07:53 UTC, 08:53 in Berlin: the freeze is over
    assert igor("deploy", "-s", "blog").exit_code == 0
    assert posts(sim) == 2


def test_a_dated_freeze_on_some_stacks(sim: Simulator, igor: Igor, clock: FakeClock) -> None:
    write(
        '[[freeze]]\nenvironments = ["production"]\nstacks = ["Shop"]\n'
        'from = 2026-11-20\nuntil = 2026-12-01\nmessage = "Black Friday"\n'
    )
    ran = igor("deploy", "-s", "shop", "-e", "production")
    assert ran.exit_code == 1 and "Black Friday" in ran.stderr
    assert "until Tue 2026-12-01 00:00 UTC" in ran.stderr
    assert igor("deploy", "-s", "blog").exit_code == 0
    assert posts(sim) == 1


def test_breaking_the_glass_is_for_those_named_needs_a_reason_and_is_on_record(
    sim: Simulator, igor: Igor, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    write(WEEKEND.format(me=me("alice")))
    igor.account = "bob"
    refused = igor("deploy", "-s", "blog", "--break-glass", "--reason", "hotfix")
    assert refused.exit_code == 1 and "not among those" in refused.stderr
    assert igor("cancel", "-s", "blog").exit_code == 1  # allowed: nothing to cancel says so
    igor.account = "alice"
    hinted = igor("deploy", "-s", "blog")
    assert hinted.exit_code == 1 and "--break-glass --reason" in hinted.stderr
    no_reason = igor("deploy", "-s", "blog", "--break-glass")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr
    assert posts(sim) == 0
    broke = igor("deploy", "-s", "blog", "--break-glass", "--reason", "payment outage")
    assert broke.exit_code == 0, broke.output
    assert posts(sim) == 1
    store = open_store(state_url)
    try:
        record = [json.loads(v) for v in store.items("audit:").values()]
    finally:
        store.close()
    assert len(record) == 1
    assert record[0]["event"] == "break-glass" and record[0]["reason"] == "payment outage"
    assert record[0]["by"]["user"] == me("alice")
    assert record[0]["stack"]["name"] == "blog"


def test_locks_shows_the_freeze_now_and_the_next(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    write(
        WEEKEND.format(me=me())
        + '\n[[freeze]]\nenvironments = ["staging"]\nfrom = 2026-12-03T18:00:00\n'
        'until = 2026-12-04\nmessage = "Offsite"\n'
        '\n[[freeze]]\nenvironments = ["qa"]\nfrom = 2027-03-01\nuntil = 2027-03-02\n'
    )
    ran = igor("locks")
    assert ran.exit_code == 0
    lines = ran.stdout.splitlines()
    assert lines[0] == "No stack is locked."
    assert lines[1].startswith('Frozen now: production: "Weekend freeze" (Fri 2026-11-27 16:00')
    assert lines[2].startswith('Next freeze: staging: "Offsite" (Thu 2026-12-03 18:00 UTC')
    assert 'Next freeze: production: "Weekend freeze" (Fri 2026-12-04 16:00 CET' in lines[3]
    assert len(lines) == 4  # March is more than a week away
    facts = json.loads(igor("locks", "--json").stdout)
    assert facts["locks"] == []
    assert [(f["environments"], f["now"]) for f in facts["freezes"]] == [
        (["production"], True), (["staging"], False), (["production"], False)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[freeze]]\nenvironments = ["production"]\nfrom = "Fri 16:00"\nuntil = "Mon 8"\n',
         "is not a weekly time"),
        ('[[freeze]]\nenvironments = ["production"]\nfrom = "Fri 16:00"\nuntil = "Mon 08:00"\n'
         'timezone = "Mars/Olympus"\n', "unknown timezone"),
        ('[[freeze]]\nenvironments = ["production"]\nfrom = 2026-12-04\nuntil = 2026-12-01\n',
         "must come after from"),
        ('[[freeze]]\nfrom = 2026-12-01\nuntil = 2026-12-04\n', "names no environments"),
        ('[[freeze]]\nenvironments = ["x"]\nfrom = 2026-12-01\nuntil = 2026-12-04\nwhy = "?"\n',
         "unknown key 'why' in [[freeze]]"),
        ('[freeze]\nenvironments = ["x"]\n', "must be tables ([[freeze]])"),
    ],
)  # fmt: skip
def test_a_broken_freeze_stops_every_change_with_a_reason(
    sim: Simulator, igor: Igor, text: str, expected: str
) -> None:
    write(text)
    ran = igor("deploy", "-s", "blog")
    assert ran.exit_code == 2, ran.output
    assert expected in ran.stderr
    assert posts(sim) == 0


def test_freezes_in_chat(sim: Simulator, clock: FakeClock) -> None:
    write(WEEKEND.format(me="nobody@nowhere"))
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    bridge = Bridge(env, rules=rules_from_config({}))
    try:
        refused = bridge.handle("deploy -s blog", Origin("slack", "U0ALICE", "Ev1"), "C1")
        assert refused.status == "error" and isinstance(refused.error, StackFrozen)
        lead = Origin("slack", "U0LEAD", "Ev2")
        broke = bridge.handle("deploy -s blog --break-glass --reason 'db down'", lead, "C1")
        assert broke.status == "ok", broke
        assert posts(sim) == 1
    finally:
        env.close()


def test_the_freeze_reader_alone() -> None:
    freezes = freezes_from_config(
        {"freeze": [{"environments": ["*"], "from": "sat 00:00", "until": "sun 00:00"}]}
    )
    from datetime import UTC, datetime

    saturday = datetime(2026, 12, 5, 12, tzinfo=UTC)
    assert freezes[0].holds(saturday) is not None
    assert freezes[0].holds(datetime(2026, 12, 6, 0, 0, tzinfo=UTC)) is None  # ends then
    assert freezes[0].applies_to("anything", "anywhere")


def test_doctor_checks_the_freezes_and_the_state_store(sim: Simulator, igor: Igor) -> None:
    write(WEEKEND.format(me=me()))
    ran = igor("doctor")
    assert "freezes: 1 configured; now: production:" in ran.stdout
    assert "state store: sqlite://" in ran.stdout and "(0 locks)" in ran.stdout
    write('[[freeze]]\nenvironments = ["production"]\nfrom = "Fri 16:00"\nuntil = "Someday"\n')
    broken = igor("doctor")
    assert broken.exit_code == 2
    assert "freezes: " in broken.stdout and "is not a weekly time" in broken.stdout


def test_a_broken_glass_is_announced_in_the_channel(
    bot: RunningBot, slack: FakeSlack, sim: Simulator
) -> None:
    write(WEEKEND.format(me="nobody@nowhere"))
    bot.start()
    ts = bot.mention("deploy -s blog --break-glass --reason 'payments down'", user="U0LEAD")
    # The channel's announcement and the thread's answers go on lanes of their own: in
    # any order (the deployment's outcome may come before the announcement).
    assert wait_until(
        lambda: any(not c.params.get("thread_ts") for c in slack.calls_to("chat.postMessage"))
    )
    calls = slack.calls_to("chat.postMessage")
    in_thread = [c for c in calls if c.params.get("thread_ts") == ts]
    in_channel = [c for c in calls if not c.params.get("thread_ts")]
    assert any("Deploy started" in c.params["text"] for c in in_thread)
    assert len(in_channel) == 1
    said = in_channel[0].params["text"]
    assert "<@U0LEAD> broke the glass" in said and "payments down" in said
    assert "blog (production)" in said
    assert posts(sim) == 1


def test_rollback_and_promote_break_the_glass_too(
    sim: Simulator, igor: Igor, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGOR_STATE_URL", state_url)
    igor.account = "alice"
    write(WEEKEND.format(me=me("alice")))
    promote = ("promote", "-s", "shop", "--from", "staging", "--to", "production")
    assert igor(*promote).exit_code == 1
    dry = igor(*promote, "--dry-run", "--break-glass", "--reason", "checking")
    assert dry.exit_code == 0, dry.output
    ran = igor(*promote, "--break-glass", "--reason", "customer outage")
    assert ran.exit_code == 0, ran.output
    assert posts(sim) == 1
    store = open_store(state_url)
    try:
        record = [json.loads(v) for v in store.items("audit:").values()]
    finally:
        store.close()
    assert [r["reason"] for r in record] == ["customer outage"]  # the dry run is not on record
