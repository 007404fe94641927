"""Words as data: an outcome says itself once (`render/said.py`), and the terminal, Slack
and the console draw what it says, whatever command it came from."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from igor_cli.chat.bridge import Reply
from igor_cli.core.request import Outcome
from igor_cli.errors import ExitCode
from igor_cli.identity import Person
from igor_cli.json_output import JsonOutput
from igor_cli.render.said import Brief, Cell, Choice, Column, Hint, Said, Table, joined, spoken
from igor_cli.render.slack import render_outcome
from igor_cli.render.terminal import TerminalRenderer
from igor_cli.render.text import render_console

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ALICE = Person.in_slack("U0ALICE")
BOB = Person.in_shell("bob@laptop")


@dataclass(frozen=True)
class Services(Outcome):
    """A command added later (`igor services`): its outcome is a table no renderer knows."""

    stack: str
    running: tuple[tuple[str, int, str, Person], ...]

    def said(self, now: datetime) -> Said:
        columns = (
            Column("SERVICE"),
            Column("CONTAINERS", "CTRS", align="right"),
            Column("IMAGE"),
            Column("STARTED BY"),
        )
        rows = [
            (name, str(count), Cell(image, mark="good" if count else "bad"),
             Cell((person,), (Brief(person),)))
            for name, count, image, person in self.running
        ]  # fmt: skip
        table = Table(
            columns, rows, (("headers", ""), ("shorten", "STARTED BY"), ("drop", "IMAGE"))
        )
        lead = joined(f"{self.stack} runs {len(rows)} services; the last started by ", BOB, ".")
        hint = Hint("Restart one with `igor restart -v NAME`.", "Say `restart -v NAME`.")
        return Said(lead, table, (hint,))

    def facts(self) -> Any:
        return [{"service": name, "containers": count} for name, count, _, _ in self.running]


SERVICES = Services(
    "shop (production)",
    (("web", 12, "shop/web:1.4.2", ALICE), ("worker", 0, "shop/worker:1.4.2", BOB)),
)


def _terminal(outcome: Outcome, **options: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    TerminalRenderer(out, err, NOW, **options).outcome(outcome)
    return out.getvalue(), err.getvalue()


def test_a_new_outcome_with_a_table_is_drawn_by_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out, err = _terminal(SERVICES)
    assert [line.rstrip() for line in out.splitlines()] == [
        "SERVICE  CONTAINERS  IMAGE              STARTED BY",
        "web              12  shop/web:1.4.2     Slack user U0ALICE",
        "worker            0  shop/worker:1.4.2  bob@laptop",
    ]  # a number aligned right; people named as the shell names them
    assert err.splitlines() == [
        "shop (production) runs 2 services; the last started by bob@laptop.",  # over the table
        "Restart one with `igor restart -v NAME`.",
    ]
    monkeypatch.setenv("COLUMNS", "45")  # it gives way as it says: short header, brief names
    narrow, _ = _terminal(SERVICES)
    assert narrow.splitlines()[0].split() == ["SERVICE", "CTRS", "IMAGE", "STARTED", "BY"]
    assert narrow.splitlines()[1].split() == ["web", "12", "shop/web:1.4.2", "U0ALICE"]
    assert max(len(line) for line in narrow.splitlines()) <= 45
    monkeypatch.setenv("COLUMNS", "40")  # then a column goes
    assert _terminal(SERVICES)[0].splitlines()[0].split() == ["SERVICE", "CTRS", "STARTED", "BY"]
    assert json.loads(_terminal(SERVICES, as_json=JsonOutput())[0])[1] == {
        "service": "worker", "containers": 0,
    }  # fmt: skip


def test_a_new_outcome_with_a_table_is_drawn_through_rich_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    out = Terminal()
    TerminalRenderer(out, io.StringIO(), NOW).outcome(SERVICES)
    drawn = out.getvalue()
    assert "\x1b[32mshop/web:1.4.2" in drawn and "\x1b[31mshop/worker:1.4.2" in drawn  # marks
    shown = re.sub(r"\x1b\[[0-9;]*m", "", drawn).splitlines()
    assert shown[0].split() == ["SERVICE", "CONTAINERS", "IMAGE", "STARTED", "BY"]
    assert re.match(r"web +12 ", shown[2]) and re.match(r"worker +0 ", shown[3])
    assert shown[2].index("12") + 2 == shown[3].index("0") + 1  # right-aligned, by rich


def test_a_new_outcome_with_a_table_is_drawn_by_slack() -> None:
    shown = render_outcome(SERVICES, NOW, names={"U0ALICE": "alice"}.__getitem__)
    lead, table, hint = shown.blocks
    assert lead["text"]["text"] == (
        "shop (production) runs 2 services; the last started by bob@laptop (from a shell)."
    )
    code = table["text"]["text"]
    assert code.startswith("```SERVICE  CONTAINERS") and code.endswith("```")
    assert "web              12  shop/web:1.4.2     alice" in code  # Slack's name: no mention
    assert hint["elements"][0]["text"] == "Say `restart -v NAME`."
    assert shown.text == lead["text"]["text"]  # the notification says the lead
    as_json = render_outcome(SERVICES, NOW, as_json=JsonOutput())
    assert '"containers": 12' in as_json.blocks[0]["text"]["text"]


def test_a_new_outcome_with_a_table_is_drawn_by_the_console() -> None:
    shown = render_console(Reply("ok", outcome=SERVICES), NOW, width=45)
    assert shown.lead == "shop (production) runs 2 services; the last started by bob@laptop."
    assert shown.table[0].split() == ["SERVICE", "CTRS", "IMAGE", "STARTED", "BY"]
    assert shown.table[2].split() == ["worker", "0", "shop/worker:1.4.2", "bob"]


def test_a_table_without_rows_is_said_by_its_lead() -> None:
    empty = Services("blog (production)", ())
    out, err = _terminal(empty)
    assert out == "" and err.startswith("blog (production) runs 0 services")
    assert render_outcome(empty, NOW).blocks[0]["text"]["text"].startswith(":mag: blog")


def test_people_are_named_by_each_renderer_its_own_way() -> None:
    words = joined("locked by ", ALICE, " and ", Brief(BOB), ".")
    assert words == ("locked by ", ALICE, " and ", Brief(BOB), ".")
    assert spoken(words, lambda p: p.name, lambda p: p.short_name) == (
        "locked by Slack user U0ALICE and bob."
    )
    assert joined("a", "b", "") == "ab"  # no one in it: plain text


@dataclass(frozen=True)
class Choosing(Outcome):
    """An outcome that leaves a choice, and fails."""

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED

    def said(self, now: datetime) -> Said:
        return Said("Two are running.", hints=(Choice("cancel -s shop --running", "stop it"),),
                    tone="refused")  # fmt: skip

    def facts(self) -> Any:
        return {}


def test_a_choice_is_worded_by_each_renderer() -> None:
    out, err = _terminal(Choosing())
    assert out == "" and err.splitlines() == [  # not done: stderr, as every error
        "Two are running.", "`igor cancel -s shop --running` to stop it",
    ]  # fmt: skip
    slack = render_outcome(Choosing(), NOW)
    assert slack.blocks[0]["text"]["text"] == ":no_entry_sign: Two are running."
    assert slack.blocks[1]["elements"][0]["text"] == "Say `cancel -s shop --running` to stop it."
    console = render_console(Reply("ok", outcome=Choosing()), NOW)
    assert console.lead == "Two are running.\nSay `cancel -s shop --running` to stop it."
