"""The terminal renderer: the stacks table drawn in one pass is rich's table, byte for byte."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from igor_cli.actions import StackList
from igor_cli.cloud66 import Stack
from igor_cli.render import terminal
from igor_cli.render.terminal import TerminalRenderer

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Terminal(io.StringIO):
    """A stream rich takes for a terminal."""

    def isatty(self) -> bool:
        return True


def _stacks(names: list[str], count: int = 40) -> list[Stack]:
    return [
        Stack.from_api({
            "uid": f"uid-{n}", "name": f"{names[n % len(names)]}-{n:03d}",
            "environment": ["production", "staging", ""][n % 3],
            "status": [0, 1, 2, 3, 4, 5, 6, 7, -1, "x"][n % 10], "health": n % 6,
            "is_busy": n % 4 == 0,
            "last_activity_iso": None if n % 5 == 0 else f"2026-11-{1 + n % 28:02d}T10:00:00Z",
        })
        for n in range(count)
    ]  # fmt: skip


def _drawn(stacks: list[Stack], *, tty: bool, one_pass: bool) -> str:
    out = Terminal() if tty else io.StringIO()
    renderer = TerminalRenderer(out, io.StringIO(), NOW)
    if one_pass:
        renderer.stack_list(StackList(stacks))
    else:
        saved = terminal.drawn_at_once
        terminal.drawn_at_once = lambda *_: None  # type: ignore[assignment]
        try:
            renderer.stack_list(StackList(stacks))
        finally:
            terminal.drawn_at_once = saved
    return out.getvalue()


@pytest.fixture(params=["color", "no-color"])
def colour(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    if request.param == "no-color":
        monkeypatch.setenv("NO_COLOR", "1")
    yield str(request.param)


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "piped"])
@pytest.mark.parametrize(
    "names",
    [
        ["api", "blog"],
        ["Payments Portal", "[bold]not markup[/]", "tab\tname"],
        ["日本語", "e\u0301cole", "bell\x07name", "two\nlines"],
    ],
    ids=["plain", "markup-and-tabs", "wide-and-control"],
)
@pytest.mark.parametrize("columns", [200, 80, 40])
def test_the_one_pass_table_is_richs_table(
    monkeypatch: pytest.MonkeyPatch, colour: str, tty: bool, names: list[str], columns: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    for count in (1, 2, 40):
        stacks = _stacks(names, count)
        by_rich = _drawn(stacks, tty=tty, one_pass=False)
        assert _drawn(stacks, tty=tty, one_pass=True) == by_rich
        assert by_rich.count("\n") >= count + 1  # a header and a line a stack, at least


def test_the_one_pass_table_is_the_one_drawn_when_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    renderer = TerminalRenderer(Terminal(), io.StringIO(), NOW)
    table = renderer._table(("NAME", "ENVIRONMENT", "STATUS", "HEALTH", "LAST ACTIVITY"))
    fitting = [renderer._row(s) for s in _stacks(["api", "日本語", "e\u0301cole", "bell\x07"])]
    assert terminal.drawn_at_once(table, fitting, renderer.out) is not None
    too_wide = [[("x" * 300, ""), *fitting[0][1:]]]
    assert terminal.drawn_at_once(table, too_wide, renderer.out) is None  # rich shrinks it
    two_lines = [[("two\nlines", ""), *fitting[0][1:]]]
    assert terminal.drawn_at_once(table, two_lines, renderer.out) is None
    table.show_lines = True  # anything the one pass does not know is left to rich
    assert terminal.drawn_at_once(table, fitting, renderer.out) is None


def test_a_status_without_a_colour_is_shown_not_parsed_as_markup() -> None:
    # "Analyzed" has no colour: as markup it was "[]Analyzed[/]", which rich refused.
    analyzed = Stack.from_api({"uid": "u1", "name": "shop", "environment": "production",
                               "status": 4, "health": 3})  # fmt: skip
    out = Terminal()
    TerminalRenderer(out, io.StringIO(), NOW).stack_list(StackList([analyzed]))
    assert "Analyzed" in out.getvalue()


def test_json_is_indented_on_a_terminal_and_compact_when_piped() -> None:
    stacks = _stacks(["api"], 3)
    shown = Terminal()
    TerminalRenderer(shown, io.StringIO(), NOW, as_json=True).stack_list(StackList(stacks))
    piped = io.StringIO()
    TerminalRenderer(piped, io.StringIO(), NOW, as_json=True).stack_list(StackList(stacks))
    assert json.loads(shown.getvalue()) == json.loads(piped.getvalue())
    assert shown.getvalue().startswith('[\n  {\n    "uid": "uid-0",')
    assert piped.getvalue().count("\n") == 1 and ", " not in piped.getvalue()
