"""One person (issue 23 item 4): a typed `Person` whichever way they reached igor; locks,
break glass and approvals compare people through it; the words igor writes (the
`user_reference`, the store's records) stay as they were."""

from __future__ import annotations

import ast
import socket
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest

from igor_cli.chat.console import run_console
from igor_cli.chat.guard import Rules
from igor_cli.config import Environment, os_account
from igor_cli.freeze import Freeze
from igor_cli.identity import Origin, Person
from igor_cli.sandbox import Simulator
from igor_cli.sandbox.records import stack_uid
from igor_cli.state.locks import ForcedUnlock, Lock
from igor_cli.state.store import Store
from tests.conftest import Igor
from tests.fakes.clock import FakeClock

PACKAGE = Path(__file__).resolve().parent.parent / "igor_cli"


def posts(sim: Simulator) -> int:
    return sim.count("POST", "/deployments")


# -- who is the same person ------------------------------------------------------------


def test_a_shell_and_the_console_on_one_account_are_one_person() -> None:
    shell, console = Person.in_shell("alice@laptop"), Person.at_console("alice@laptop")
    assert shell.same_person(console) and console.same_person(shell)
    assert not shell.same_person(Person.at_console("bob@laptop"))
    assert not shell.same_person(Person.in_shell("alice@desktop"))  # another machine


def test_a_slack_user_is_never_a_shell_account_whatever_the_names() -> None:
    slack, shell = Person.in_slack("U0ALICE"), Person.in_shell("U0ALICE")
    assert not slack.same_person(shell) and not shell.same_person(slack)
    assert not slack.same_person(Person.at_console("U0ALICE"))
    assert slack.same_person(Person.in_slack("U0ALICE"))
    assert not slack.same_person(Person.in_slack("U0BOB"))


def test_slack_teams_tell_people_apart_only_when_both_are_known() -> None:
    home, partner = Person.in_slack("U0EVE", "T0HOME"), Person.in_slack("U0EVE", "T0PARTNER")
    assert not home.same_person(partner)
    assert home.same_person(Person.in_slack("U0EVE"))  # a record that kept no team


def test_how_people_are_named() -> None:
    assert Person.in_shell("alice@laptop").name == "alice@laptop"
    assert Person.at_console("alice@laptop").short_name == "alice"
    assert Person.in_slack("U123").name == "Slack user U123"
    assert Person.in_slack("U123").slack_id == "U123"
    assert Person.in_shell("alice@laptop").slack_id == ""  # a shell user is named, never @ed
    assert Person.in_shell("").name == "someone"
    assert (Person.in_shell("a@b").where, Person.in_slack("U1").where) == ("shell", "Slack")


# -- the words igor writes do not change ---------------------------------------------


def test_the_user_reference_keeps_its_words_for_older_and_newer_igor() -> None:
    assert Origin.of(Person.in_slack("U1"), "Ev1").user_reference == "igor:slack:U1:Ev1"
    assert Origin.of(Person.at_console("a@h"), "c-1").user_reference == "igor:chat:a@h:c-1"
    assert Origin.of(Person.in_shell("a@h")).user_reference == "igor:cli:a@h"
    assert Person.from_reference("igor:chat:a@h:c-1") == Person.at_console("a@h")
    assert Person.from_reference("igor:cli:a@h") == Person.in_shell("a@h")
    assert Person.from_reference("igor:slack:U1") == Origin("slack", "U1", "Ev9").person
    assert Person.from_reference("deployed by a hook") is None


# Records as igor wrote them before the Person type: read back, and written the same.
OLD_LOCK = (
    '{"stack":{"uid":"s1","name":"blog","environment":"production"},'
    '"holder":{"via":"chat","user":"alice@laptop"},"reason":"release",'
    '"started_at":"2026-12-02T09:00:00+00:00","expires_at":"2026-12-02T10:00:00+00:00",'
    '"place":null}'
)


def test_a_lock_written_before_the_person_type_reads_and_writes_the_same() -> None:
    lock = Lock.loads(OLD_LOCK)
    assert lock is not None
    assert lock.holder == Person.at_console("alice@laptop")
    assert lock.held_by(Person.in_shell("alice@laptop"))  # their shell, the same account
    assert not lock.held_by(Person.in_slack("alice@laptop"))
    assert lock.dumps() == OLD_LOCK
    assert (lock.holder_via, lock.holder_user) == ("chat", "alice@laptop")  # the record's words


def test_a_lock_held_through_a_way_this_igor_does_not_know_still_refuses(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    # A newer igor (another chat platform) wrote it: nobody here is its holder, so it holds.
    text = OLD_LOCK.replace('"via":"chat"', '"via":"teams"')
    lock = Lock.loads(text)
    assert lock is not None and lock.holder.via == "unknown"
    assert not lock.held_by(Person.in_shell("alice@laptop"))
    assert not lock.held_by(Person.of_record("teams", "alice@laptop"))
    uid = stack_uid("blog", "production")
    later = clock.datetime() + timedelta(hours=1)
    text = text.replace('"uid":"s1"', f'"uid":"{uid}"').replace(
        '"expires_at":"2026-12-02T10:00:00+00:00"', f'"expires_at":"{later.isoformat()}"'
    )
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    store = env.state_for_change()
    assert store is not None
    assert store.claim(f"lock:{uid}", text, 3600.0)
    ran = igor("deploy", "-s", "blog", "-e", "production")
    assert ran.exit_code != 0 and "is locked by someone (teams:alice@laptop)" in ran.stderr
    assert posts(sim) == 0


DAMAGED = '{"stack": damaged'


def _damaged_lock_on_blog(clock: FakeClock) -> tuple[Store, str]:
    """blog (production) held by a lock record igor cannot read: the store, the stack's uid."""
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    store = env.state_for_change()
    assert store is not None
    uid = stack_uid("blog", "production")
    assert store.claim(f"lock:{uid}", DAMAGED, 3600.0)
    return store, uid


def test_a_lock_record_igor_cannot_read_holds_its_stack(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    _store, uid = _damaged_lock_on_blog(clock)
    ran = igor("deploy", "-s", "blog", "-e", "production")
    assert ran.exit_code == 1 and "has a lock igor cannot read" in ran.stderr, ran.stderr
    assert f"lock:{uid}" in ran.stderr  # what to delete to end it now
    assert posts(sim) == 0
    assert igor("deploy", "-s", "shop", "-e", "production").exit_code == 0  # others go on
    assert posts(sim) == 1


def test_a_lock_record_igor_cannot_read_is_listed_and_not_taken_over(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    import json

    store, uid = _damaged_lock_on_blog(clock)
    listed = igor("locks")
    assert listed.exit_code == 0
    assert "1 lock in force" in listed.stdout and f"lock:{uid}" in listed.stdout
    assert json.loads(igor("locks", "--json").stdout)["unreadable"] == [
        {"stack": {"uid": uid}, "key": f"lock:{uid}"}
    ]
    # Taking the stack's lock does not say it is held by whoever asked: it is refused.
    ran = igor("lock", "-s", "blog", "-e", "production")
    assert ran.exit_code == 1 and "has a lock igor cannot read" in ran.stderr, ran.stderr
    assert "Nothing was changed." in ran.stderr and f"lock:{uid}" in ran.stderr
    assert store.get(f"lock:{uid}") == DAMAGED


def test_a_lock_record_igor_cannot_read_ends_by_force_by_its_uid(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    import json

    store, uid = _damaged_lock_on_blog(clock)
    refused = igor("deploy", "-s", "blog", "-e", "production")
    assert f"igor unlock -s {uid} --force" in refused.stderr  # the way out, named
    # Nobody can be shown to hold it: not unlocked without --force.
    ran = igor("unlock", "-s", uid)
    assert ran.exit_code == 1, ran.output
    assert "cannot read" in ran.stderr and "--force" in ran.stderr
    assert store.get(f"lock:{uid}") == DAMAGED
    ran = igor("unlock", "-s", uid, "--force", "--reason", "damaged record", "--json")
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["result"] == "forced"
    assert store.get(f"lock:{uid}") is None
    on_record = [json.loads(text) for key, text in store.items("audit:").items()]
    assert [(r["event"], r["lock"], r["reason"]) for r in on_record] == [
        ("force-unlock", {"stack": {"uid": uid}, "unreadable": True}, "damaged record")
    ]
    assert igor("deploy", "-s", "blog", "-e", "production").exit_code == 0
    assert posts(sim) == 1
    # A name that is neither a readable lock's stack nor an unreadable record's uid.
    assert "not locked" in igor("unlock", "-s", "nothing-here", "--force").stderr


def test_a_forced_unlock_notice_keeps_its_words() -> None:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    lock = Lock("s1", "blog", "production", Person.in_slack("U0ALICE"), "", now, now)
    notice = ForcedUnlock(lock, Person.in_shell("bob@laptop"), "hotfix", now)
    assert '"by":{"via":"cli","user":"bob@laptop"}' in notice.dumps()
    assert ForcedUnlock.loads(notice.dumps()) == notice
    assert not notice.told_now  # from a shell: a notice waits for the bot
    assert ForcedUnlock(lock, Person.in_slack("U0BOB"), "", now).told_now


# -- approvals and break glass -------------------------------------------------------


def test_nobody_approves_their_own_request() -> None:
    rules = Rules()
    assert not rules.may_approve("U0ALICE", "U0ALICE")
    assert rules.may_approve("U0BOB", "U0ALICE")


def test_the_glass_is_broken_by_the_people_a_freeze_names_in_any_case() -> None:
    now = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    freeze = Freeze(1, frozenset({"production"}), None, UTC, dated=(now, now + timedelta(days=2)),
                    break_glass=frozenset({"U0LEAD", "Alice@Laptop"}))  # fmt: skip
    assert freeze.may_break(Person.in_slack("U0LEAD"))
    assert freeze.may_break(Person.in_shell("alice@laptop"))
    assert freeze.may_break(Person.at_console("alice@laptop"))
    assert not freeze.may_break(Person.in_slack("U0BOB"))
    assert not freeze.may_break(Person.in_shell(""))


# -- a shell and `igor chat` on one machine ------------------------------------------


def test_a_shell_lock_is_its_own_accounts_in_igor_chat_and_nobody_elses(
    sim: Simulator, igor: Igor, clock: FakeClock
) -> None:
    assert igor("lock", "-s", "blog", "--reason", "release").exit_code == 0
    env = Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep)
    host = socket.gethostname()

    other = StringIO()
    run_console(env, f"mallory-{os_account()}@{host}", StringIO("deploy -s blog\nunlock -s blog\n"),
                other)  # fmt: skip
    assert "locked by" in other.getvalue() and "not by you" in other.getvalue(), other.getvalue()
    assert posts(sim) == 0  # another account's console: refused, nothing posted

    mine = StringIO()
    me = f"{os_account()}@{host}"
    run_console(env, me, StringIO("unlock -s blog\n"), mine)
    assert "Unlocked blog" in mine.getvalue(), mine.getvalue()  # their own, without --force
    assert "forced" not in mine.getvalue().lower()
    assert igor("deploy", "-s", "blog").exit_code == 0  # nobody holds it now
    assert posts(sim) == 1


# -- no module but Slack's own compares with "slack" -----------------------------------

# identity.py is where the words a record keeps are given their meaning.
_MAY_SAY_SLACK = ("igor_cli/chat/slack/", "igor_cli/identity.py")


def _compares_with_slack(source: str) -> list[int]:
    """Lines where a comparison (==, !=, in, not in) has the string "slack" on a side."""

    def says_slack(node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str) and node.value.casefold() == "slack"
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(says_slack(element) for element in node.elts)
        return False

    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Compare) and any(map(says_slack, [node.left, *node.comparators]))
    ]


def test_no_module_outside_the_slack_adapter_compares_with_slack() -> None:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        where = path.relative_to(PACKAGE.parent).as_posix()
        if where.startswith(_MAY_SAY_SLACK):
            continue
        lines = _compares_with_slack(path.read_text(encoding="utf-8"))
        if lines:
            found[where] = lines
    assert not found, f"compare people through identity.Person, not the word: {found}"


@pytest.mark.parametrize(
    "source",
    ['if via == "slack": pass', 'x = "slack" != person.via', 'ok = via in ("cli", "Slack")',
     'ok = via not in {"slack"}'],
)  # fmt: skip
def test_the_slack_comparison_finder_finds_them(source: str) -> None:
    assert _compares_with_slack(source) == [1]
    assert _compares_with_slack('config.get("slack", {})') == []
