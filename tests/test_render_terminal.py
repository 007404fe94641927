"""What the terminal shows at 50, 80 and 120 columns: tables that fit, hints that wrap well."""

from __future__ import annotations

import re

import pytest

from igor_cli.render import sentences
from igor_cli.sandbox import Simulator
from tests.conftest import Igor

LONG_NAME = "customer-accounts-portal-0001"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SHORT_TIME = re.compile(r"(\d+[smhd] ago|just now|never)$")


def cells(line: str) -> list[str]:
    """A table line split on its gaps (two spaces or more)."""
    return re.split(r" {2,}", line.strip())


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
@pytest.mark.parametrize("width", [50, 80, 120])
def test_the_list_fits_the_screen_and_keeps_its_last_column(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch, width: int, terminal: bool
) -> None:
    sim.add_stacks(1, prefix="customer-accounts-portal")
    monkeypatch.setenv("COLUMNS", str(width))
    if terminal:  # rich draws for a terminal: box art (a rule under the header), colour
        monkeypatch.setenv("FORCE_COLOR", "1")
    ran = igor("list")
    assert ran.exit_code == 0
    shown = ANSI.sub("", ran.stdout)
    assert (shown != ran.stdout) == terminal
    lines = [line for line in shown.rstrip("\n").splitlines() if not line.startswith("─")]
    assert len(lines) == 9  # the header and eight stacks
    assert max(len(line.rstrip()) for line in lines) <= width
    header, *rows = lines
    assert len(cells(header)) == 5
    for row in rows:
        _name, environment, _status, health, when = cells(row)
        assert SHORT_TIME.match(when), row  # the last column, whole
        assert environment in ("production", "staging")  # never cut
        assert "…" not in health + when
    names = [cells(row)[0] for row in rows]
    if width >= 120:
        assert LONG_NAME in names and "…" not in shown
        assert header.split() == ["NAME", "ENVIRONMENT", "STATUS", "HEALTH", "LAST", "ACTIVITY"]
    else:  # only NAME and STATUS give way, with an ellipsis
        assert LONG_NAME not in names
        assert any(name.endswith("…") and LONG_NAME.startswith(name[:-1]) for name in names)


def test_times_in_the_table_are_short(sim: Simulator, igor: Igor) -> None:
    ran = igor("list", "-s", "shop")
    times = [cells(row)[-1] for row in ran.stdout.splitlines()[1:]]
    assert times == ["2h ago", "1d ago"]


def test_a_column_without_a_rule_never_shrinks() -> None:
    # A column added later (LAST DEPLOY) keeps its width until it is given a rule.
    rows = [
        ("NAME", "STATUS", "LAST DEPLOY"),
        ("a-rather-long-stack-name", "Deployed successfully", "succeeded by alice 2h ago"),
    ]
    fitted = sentences.fit(rows, 60)
    assert fitted.widths[2] == len(rows[1][2])
    assert fitted.width <= 60
    assert fitted.widths[0] >= sentences.SHRINKS_TO["NAME"]
    # Past the minimums the table stays wider than the screen rather than cut more.
    assert sentences.fit(rows, 20).widths == [7, 9, len(rows[1][2])]


@pytest.mark.parametrize("width", [50, 80, 120])
def test_hints_wrap_between_words_and_keep_commands_whole(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    ran = igor("deploy", "-s", "Payments Portal")
    assert ran.exit_code == 0
    hint = ran.stderr.splitlines()
    assert all(len(line) <= width for line in hint)
    assert all(line.count("`") % 2 == 0 for line in hint)  # no command broken across lines
    said = " ".join(hint)
    assert '`igor list -s "Payments Portal"`' in said
    assert '`igor cancel -s "Payments Portal" -e production`' in said
    assert (len(hint) == 1) == (width >= 120)


def test_an_error_wraps_between_words(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "50")
    ran = igor("deploy", "-s", "shop", "-v", "no-such-service-at-all")
    assert ran.exit_code != 0
    lines = ran.stderr.splitlines()
    assert lines[0].startswith("Error: ")
    assert all(len(line) <= 50 for line in lines)
    assert all(line == line.strip() and line for line in lines)


def test_piped_without_columns_the_table_keeps_its_full_width(sim: Simulator, igor: Igor) -> None:
    sim.add_stacks(1, prefix="customer-accounts-portal")
    ran = igor("list")
    assert LONG_NAME in ran.stdout and "…" not in ran.stdout
