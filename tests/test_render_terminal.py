"""What the terminal shows at 50, 80 and 120 columns: tables that fit, hints that wrap well;
the stacks table drawn in one pass is rich's table, byte for byte."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from igor_cli.cloud66.models import Stack
from igor_cli.features.stacks import StackList
from igor_cli.json_output import JsonOutput
from igor_cli.render import terminal
from igor_cli.render.said import plain_brief, plain_name
from igor_cli.render.table import text_table
from igor_cli.render.terminal import TerminalRenderer
from igor_cli.sandbox import Simulator
from tests.conftest import Igor

LONG_NAME = "customer-accounts-portal-0001"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SHORT_TIME = re.compile(r"(\d+[smhd] ago|just now|never)$")


def cells(line: str) -> list[str]:
    """A table line split on its gaps (two spaces or more)."""
    return re.split(r" {2,}", line.strip())


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
@pytest.mark.parametrize("width", [50, 60, 80, 120])
def test_the_list_fits_the_screen_and_never_cuts_a_name(
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
    names = [cells(row)[0] for row in rows]
    assert LONG_NAME in names and "Payments Portal" in names  # what is typed next: whole
    assert [cells(row)[1] for row in rows].count("production") == 6  # never cut either
    if width >= 120:
        assert "…" not in shown
        assert header.split() == [
            "NAME", "ENVIRONMENT", "STATUS", "HEALTH", "LAST", "ACTIVITY", "LAST", "DEPLOY",
        ]  # fmt: skip
    elif width >= 60:  # the other columns gave way: shorter, or gone; LAST DEPLOY stays
        assert "DEPLOY" in header.split() and "ACTIVITY" not in header
        last = [cells(row)[-1] for row in rows]
        assert all(when.split(" ")[0] in ("succeeded", "failed") for when in last), last
        assert all(SHORT_TIME.search(when) for when in last), last  # whole, not cut


def test_history_at_60_and_80_columns_keeps_the_id_and_what_ran(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    for width in (60, 80):
        monkeypatch.setenv("COLUMNS", str(width))
        for args in (("shop", "-e", "production"), ("api",)):
            ran = igor("history", *args, "-n", "3")
            lines = ran.stdout.rstrip("\n").splitlines()
            assert max(len(line.rstrip()) for line in lines) <= width, ran.stdout
            assert lines[0].split()[0] == "ID" and lines[0].rstrip().endswith("WHAT")
            past = json.loads(igor("history", *args, "-n", "3", "--json").stdout)
            for line, deployment in zip(lines[1:], past, strict=True):
                assert line.startswith(f"{deployment['id']}  ")
                ran_what = ", ".join(deployment["services"]) or deployment["git_hash"][:7]
                assert ran_what in line  # the ref or the tags, whole
            assert "…" not in ran.stdout


def test_list_wide_fits_60_columns_keeping_what_each_runs(
    sim: Simulator, igor: Igor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    ran = igor("list", "--wide")
    lines = ran.stdout.rstrip("\n").splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 60
    assert lines[0].split() == ["NAME", "ENV", "RUNNING"]
    assert any(line.startswith("api ") and line.rstrip().endswith("web:1.4.2, worker:1.4.2")
               for line in lines)  # fmt: skip
    monkeypatch.delenv("COLUMNS")  # piped without a width: whole, every column
    whole = igor("list", "--wide").stdout.splitlines()[0].split()
    assert whole[:3] == ["NAME", "ENVIRONMENT", "STATUS"] and whole[-1] == "RUNNING"


def test_times_in_the_table_are_short(sim: Simulator, igor: Igor) -> None:
    ran = igor("list", "-s", "shop")
    times = [cells(row)[4] for row in ran.stdout.splitlines()[1:]]
    assert times == ["2h ago", "1d ago"]
    last = [cells(row)[5] for row in ran.stdout.splitlines()[1:]]
    assert last == ["succeeded · sandbox 2h ago", "succeeded · sandbox 1d ago"]


def test_a_column_without_a_rule_never_gives_way() -> None:
    # A column added later keeps its width until the table says how it gives way.
    from igor_cli.render.table import Table, fit

    table = Table(
        ("NAME", "STATUS", "WHAT"),
        [("a-rather-long-stack-name", "Deployed successfully", "succeeded by alice 2h ago")],
        {"STATUS": ["deployed"]},
        (("shorten", "STATUS"), ("cut", "STATUS")),
        {"STATUS": 5},
    )
    fitted = fit(table, 61)
    assert fitted.rows == [("a-rather-long-stack-name", "deployed", "succeeded by alice 2h ago")]
    assert fitted.width <= 61
    assert fit(table, 60).rows[0][1] == "deploy…"  # then cut, as far as its floor
    # Past what gives way the table stays wider than the screen rather than cut more.
    assert fit(table, 20).widths == [len("a-rather-long-stack-name"), 6, 25]
    assert fit(table, None).rows == table.rows  # no width: whole


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
    assert '`igor watch -s "Payments Portal" -e production`' in said
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


# -- the stacks table drawn in one pass ------------------------------------------

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


def _drawn(stacks: list[Stack], *, tty: bool, how: str) -> str:
    """The table as drawn `how`: "plain" (igor, without rich, where rich writes plainly),
    "one-pass" (`drawn_at_once` through rich) or "rich" (rich lays it out)."""
    out = Terminal() if tty else io.StringIO()
    renderer = TerminalRenderer(out, io.StringIO(), NOW)
    with pytest.MonkeyPatch.context() as patch:
        if how != "plain":
            patch.setattr(terminal, "written_plainly", lambda _file: False)
        if how == "rich":
            patch.setattr(terminal, "drawn_at_once", lambda *_: None)
        renderer.outcome(StackList(stacks))
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
        by_rich = _drawn(stacks, tty=tty, how="rich")
        assert _drawn(stacks, tty=tty, how="one-pass") == by_rich
        assert _drawn(stacks, tty=tty, how="plain") == by_rich
        assert by_rich.count("\n") >= count + 1  # a header and a line a stack, at least


@pytest.mark.parametrize(
    "names",
    [["api", "blog"], ["日本語", "e\u0301cole", "bell\x07name", "two\nlines", "[b]x[/]"]],
    ids=["plain", "wide-and-control"],
)
def test_piped_without_columns_the_table_igor_writes_is_richs(
    monkeypatch: pytest.MonkeyPatch, names: list[str]
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    stacks = _stacks(names, 40)
    assert _drawn(stacks, tty=False, how="plain") == _drawn(stacks, tty=False, how="rich")


def test_below_the_combining_marks_a_printable_character_is_one_cell_as_rich_counts() -> None:
    from rich.cells import cell_len

    below = [chr(c) for c in range(ord(terminal._ONE_CELL_BELOW)) if chr(c).isprintable()]
    assert len(below) > 600
    assert [c for c in below if cell_len(c) != 1] == []
    assert terminal._cells("succeeded · alice 2h ago") == len("succeeded · alice 2h ago")
    assert terminal._cells("日本語") == 6 and terminal._cells("e\u0301cole") == 5


PROSE = [
    "Sandbox: igor's built-in Cloud 66 simulator, not your account.",
    "LAST DEPLOY is read for up to 20 stacks; narrow the list with -s or -e to see it.",
    'Follow it: `igor watch -s "Payments Portal" -e production`; cancel: `igor cancel '
    '-s "Payments Portal" -e production`.',
    "a [bold]name[/] with markup and a \\[bracket]",
    "an emoji code :thumbs_up: and a time 10:30:00 and http://host:8080/x",
    "a\ttab, a bell\x07 and a carriage\rreturn",
    "wide 日本語 and e\u0301cole",
    "two\nlines",
    "",
]


@pytest.mark.parametrize("columns", [None, "50"])
@pytest.mark.parametrize("style", ["", "dim"])
def test_prose_igor_writes_to_a_pipe_is_what_rich_writes(
    monkeypatch: pytest.MonkeyPatch, columns: str | None, style: str
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    for text in PROSE:
        written = []
        for plainly in (True, False):
            out = io.StringIO()
            renderer = TerminalRenderer(out, io.StringIO(), NOW)
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(terminal, "written_plainly", lambda _file, plainly=plainly: plainly)
                renderer._prose(out, text, style)
            written.append(out.getvalue())
        assert written[0] == written[1], text
        assert written[0].endswith("\n")


@pytest.mark.parametrize(
    "variables",
    [{}, {"NO_COLOR": "1"}, {"TERM": "dumb"}, {"FORCE_COLOR": "1"}, {"FORCE_COLOR": ""},
     {"TTY_COMPATIBLE": "1"}, {"TTY_COMPATIBLE": "0"}, {"COLUMNS": "40"}],
)  # fmt: skip
def test_igor_writes_plainly_only_where_rich_sees_no_terminal(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    from rich.console import Console

    for name in ("NO_COLOR", "TERM", "FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    for stream in (io.StringIO(), Terminal()):
        if terminal.written_plainly(stream):
            assert not Console(file=stream).is_terminal, variables
    assert terminal.written_plainly(io.StringIO()) == (not variables.keys() & {
        "FORCE_COLOR", "TTY_COMPATIBLE"})  # fmt: skip
    assert not terminal.written_plainly(Terminal())


def test_the_one_pass_table_is_the_one_drawn_when_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    renderer = TerminalRenderer(Terminal(), io.StringIO(), NOW)
    stacks = _stacks(["api", "日本語", "e\u0301cole", "bell\x07"])
    said = StackList(stacks).said(NOW).table
    assert said is not None
    rows = text_table(said, plain_name, plain_brief)
    table = renderer._table(rows.header)
    fitting = []
    for cells, row in zip(said.rows, rows.rows, strict=True):
        styles = [terminal._cell_style(cell) for cell in cells]
        fitting.append(list(zip(row, styles, strict=True)))
    assert any(style for row in fitting for _, style in row)  # coloured by their marks
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
    TerminalRenderer(out, io.StringIO(), NOW).outcome(StackList([analyzed]))
    assert "Analyzed" in out.getvalue()


def test_json_is_indented_on_a_terminal_and_compact_when_piped() -> None:
    stacks = _stacks(["api"], 3)
    shown = Terminal()
    TerminalRenderer(shown, io.StringIO(), NOW, as_json=JsonOutput()).outcome(StackList(stacks))
    piped = io.StringIO()
    TerminalRenderer(piped, io.StringIO(), NOW, as_json=JsonOutput()).outcome(StackList(stacks))
    assert json.loads(shown.getvalue()) == json.loads(piped.getvalue())
    assert shown.getvalue().startswith('[\n  {\n    "uid": "uid-0",')
    assert piped.getvalue().count("\n") == 1 and ", " not in piped.getvalue()


@pytest.mark.parametrize("columns", [60, 80])
@pytest.mark.parametrize(
    "args", [("list",), ("list", "--wide"), ("history", "shop", "-e", "production", "-n", "5")]
)
def test_at_a_real_terminal_nothing_typed_next_is_cut(
    sim: Simulator, columns: int, args: tuple[str, ...]
) -> None:
    # issue 26: `Payments Por…` and `Deployed succe…` at 80 columns, history's ID gone at 60.
    from tests.fakes.terminal import PtyIgor

    keyring = {"PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    with PtyIgor(*args, columns=columns, env=keyring, stderr_apart=True) as pty:
        assert pty.wait() == 0, pty.text
    written = ANSI.sub("", pty.written).replace("\r", "").splitlines()
    assert all(len(line.rstrip()) <= columns for line in written), pty.written
    shown = pty.text
    assert "…" not in shown
    if args[0] == "list":
        assert "Payments Portal " in shown and "customer" not in shown
        assert ("RUNNING" in shown) == ("--wide" in args)
        if "--wide" in args:
            assert "web:1.4.2, worker:1.4.2" in shown
        else:
            assert "DEPLOY" in shown  # LAST DEPLOY outlasts the other columns
    else:
        assert pty.lines[0].split()[0] == "ID" and "WHAT" in pty.lines[0]
        assert all(line.split()[0].isdigit() for line in pty.lines[2:] if line.strip())
