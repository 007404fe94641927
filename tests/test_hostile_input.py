"""Hostile chat input: every message gets a reply (or a deliberate silence), never a crash,
and never a Cloud 66 call about a stack the message does not name.

The corpus is fixed: hand-written cases for each kind of trouble Slack text can carry, plus
cases generated with `random.Random(SEED)`. The bulk goes through the bridge directly against
the simulator (fast); a few dozen of the nastiest go end to end through the real `igor serve`,
the fake Slack and the simulator. The bugs it found have regression tests at the end.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shlex
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from igor_cli import __version__
from igor_cli.chat.bridge import Bridge, Reply
from igor_cli.chat.guard import Signer, rules_from_config
from igor_cli.config import Environment
from igor_cli.features.stacks import StackList
from igor_cli.identity import Origin
from igor_cli.sandbox import RecordedRequest, Simulator
from tests.conftest import RunningBot, next_ts, rendered
from tests.fakes.clock import FakeClock
from tests.fakes.slack import Call, FakeSlack

SEED = 20_240_611
GENERATED = 170
CHUNKS = 6

# The simulator's sample account (SPEC section 7).
SAMPLE_STACKS = (
    ("shop", "production"),
    ("shop", "staging"),
    ("blog", "production"),
    ("api", "production"),
    ("legacy", "production"),
    ("Payments Portal", "production"),
    ("search", "staging"),
)
STACK_NAMES = frozenset(name.casefold() for name, _ in SAMPLE_STACKS)

# Block Kit and chat.postMessage limits.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK_TEXT = 40_000
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
_STACK_PATH = re.compile(r"^/api/3/stacks/([^/]+)(?:/|$)")


# -- the corpus -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One chat message (already without igor's mention) and what it may touch."""

    label: str
    text: str
    names: frozenset[str] = frozenset()  # casefolded sample stacks the message names
    may_change: bool = False  # a deploy POST or cancel DELETE of those stacks is allowed


def _case(label: str, text: str, *names: str, change: bool = False) -> Case:
    assert all(n.casefold() in STACK_NAMES for n in names), names
    return Case(label, text, frozenset(n.casefold() for n in names), change)


# Written as escapes so that the source stays readable (and ruff's RUF001 quiet).
RLO, RLE, PDF, RLM, ALM = "\u202e", "\u202b", "\u202c", "\u200f", "\u061c"
ZWSP, ZWNJ, ZWJ, WJ, BOM = "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"
HEBREW = "\u05e9\u05dc\u05d5\u05dd"
ARABIC = "\u0645\u0631\u062d\u0628\u0627"
ROCKET, TECHNOLOGIST = "\U0001f680", "\U0001f469\u200d\U0001f4bb"
RAINBOW_FLAG = "\U0001f3f3\ufe0f\u200d\U0001f308"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
UK_FLAG, THUMB_MEDIUM = "\U0001f1ec\U0001f1e7", "\U0001f44d\U0001f3fd"
EM_DASH, EN_DASH = "\u2014", "\u2013"
LEFT_DQ, RIGHT_DQ, LEFT_SQ, RIGHT_SQ = "\u201c", "\u201d", "\u2018", "\u2019"
ZALGO = "Z\u0334\u0321\u0322\u0347\u0353\u0344\u0346a\u0323\u0337\u031bl\u0337g\u0335o\u0335"
FULLWIDTH_BLOG = "\uff42\uff4c\uff4f\uff47"
CYRILLIC_BLOG = "bl\u043eg"  # a Cyrillic o
CYRILLIC_SHOP = "\u0455hop"  # a Cyrillic dze


def _hand_written() -> list[Case]:
    long_x = "x" * 3990
    return [
        # option injection, repeated options, odd option spellings
        _case("repeated -s", 'deploy -s "x" -s "y"'),
        _case("repeated -s, real last, dry run", 'deploy -s "x" -s "blog" --dry-run', "blog"),
        _case("repeated -e", "deploy -e production -e staging -s nope"),
        _case("--stack= path as command", "--stack=../../etc/passwd"),
        _case("--stack= path", "deploy --stack=../../etc/passwd"),
        _case("cancel path and env path", "cancel --stack=../../etc/passwd -e ../../"),
        _case("stack ../../", "deploy -s ../../"),
        _case("stack ../../blog", "deploy -s ../../blog"),
        _case("stack ./blog", "cancel -s ./blog"),
        _case("stack blog/../api", "deploy -s blog/../api"),
        _case("stack url-encoded dots", "deploy -s %2e%2e%2fblog"),
        _case("stack windows path", "deploy -s ..\\..\\windows"),
        _case("list path filter", "list -s ../../../../etc/passwd -e /"),
        _case("stack -s=blog", "deploy -s=blog"),
        _case("stack glued -sblog", "deploy -sblog --dry-run", "blog"),
        _case("stack -s -h", "deploy -s -h"),
        _case("empty stack after real", "deploy --stack blog --stack="),
        _case("unknown long option", "deploy --sta blog"),
        _case("capital -S", "DEPLOY -S blog"),
        _case("missing -s", "deploy -e production"),
        _case("bare deploy", "deploy"),
        _case("bare cancel", "cancel"),
        _case("bad -w", "deploy -s blog -w maybe"),
        _case("-w without value", "deploy -s blog -w"),
        _case("shell injection", "deploy -s $(whoami)"),
        _case("backtick injection", "deploy -s x`id`"),
        _case("chained commands", "deploy -s blog; cancel -s shop"),
        _case("and-and", "deploy -s blog && deploy -s api"),
        _case("pipe", "deploy -s '|rm -rf /'"),
        _case("extra argument after real name", "deploy -s blog extra"),
        _case("double dash -h", "deploy -s blog -- -h"),
        # -h and --help in odd places: help is eager, nothing is asked of Cloud 66
        _case("-h alone", "-h"),
        _case("--help alone", "--help"),
        _case("-h before command", "-h deploy -s blog"),
        _case("-h after real stack", "deploy -s blog -h"),
        _case("-h between options", "cancel -s blog -h -e production"),
        _case("--help last on list", "list -s shop --help"),
        _case("-hs bundle", "deploy -hs blog"),
        _case("help -h", "help -h"),
        _case("help of unknown", "help ../../"),
        _case("help with many words", "help deploy deploy deploy"),
        _case("version -h --json", "version -h --json"),
        # entities and links: unescaped once, never twice
        _case("escaped script", "deploy -s &lt;script&gt;alert(1)&lt;/script&gt;"),
        _case("double-escaped gt", "deploy -s &amp;gt;blog"),
        _case("double-escaped lt", "cancel -s &amp;lt;blog&amp;gt;"),
        _case("escaped link is not a link", "deploy -s &lt;http://blog|blog&gt;"),
        _case("amp soup", "list -s &amp;amp;amp;"),
        _case(
            "link-wrapped real name", "deploy -s <http://shop|shop> -e production --dry-run", "shop"
        ),
        _case("mailto link", "deploy -s <mailto:a@b|a@b>"),
        _case("link to a look-alike", "deploy -s <http://blog.example.com|blog.example.com>"),
        _case("bare link", "cancel -s <https://blog>"),
        _case("channel link label", "deploy -s <#C0123|blog> --dry-run", "blog"),
        _case("empty link", "deploy -s <>"),
        _case("link without closing", "deploy -s <http://blog|blog"),
        # mentions of other users and special mentions
        _case("user mention as stack", "deploy -s <@U0BOB>"),
        _case("user mention with label", "cancel -s <@U0BOB|bob>"),
        _case("igor mentioned as stack", "deploy -s <@UIGOR>"),
        _case("channel mention as stack", "cancel -s <!channel>"),
        _case("channel mention first", "<!channel> deploy -s blog"),
        _case("here with label", "<!here|here> list"),
        _case("everyone", "<!everyone>"),
        _case("subteam", "deploy -s <!subteam^S0123|@devs>"),
        _case("mention before command", "<@U0BOB> deploy -s blog"),
        _case("mention after real name", "deploy -s blog <@U0BOB>"),
        # Slack formatting
        _case("bold command", "*deploy* -s blog --dry-run", "blog"),
        _case("bold whole", "*deploy -s nope*"),
        _case("italic list", "_list_"),
        _case("strike cancel", "~cancel -s nope~"),
        _case("backticks", "`deploy -s nope`"),
        _case("code fence one line", "```deploy -s nope```"),
        _case("code fence lines", "```\ndeploy -s blog --dry-run\n```", "blog"),
        _case("code fence real deploy", "```deploy -s api```", "api", change=True),
        _case("empty code fence", "``````"),
        _case("lone fence", "```"),
        _case("lone backtick", "`"),
        _case("quote block", "> deploy -s nope"),
        _case("emoji shortcode", ":rocket: deploy -s blog"),
        # quotes: balanced, unbalanced, curly, escaped
        _case("unbalanced double", 'deploy -s "Payments Portal'),
        _case("unbalanced single", "deploy -s 'shop"),
        _case("just a double quote", '"'),
        _case("just a single quote", "'"),
        _case("three double quotes", '"""'),
        _case(
            "curly and dashes",
            f"deploy {EM_DASH}stack {LEFT_DQ}Payments Portal{RIGHT_DQ} {EM_DASH}dry-run",
            "Payments Portal",
        ),
        _case("mixed curly", f'deploy -s "Payments Portal{RIGHT_DQ} --dry-run', "Payments Portal"),
        _case("unbalanced curly single", f"deploy -s {LEFT_SQ}blog --dry-run"),
        _case(
            "backslash-escaped space", "deploy -s Payments\\ Portal --dry-run", "Payments Portal"
        ),
        _case("double space inside name", 'deploy -s "Payments  Portal"'),
        # A line break is a space, as in any shell word list: "Pay ments Portal" names nothing.
        _case("newline inside quoted name", 'deploy -s "Pay\nments Portal"'),
        _case("trailing backslash", "deploy -s blog\\"),
        _case("en dash short option", f"list {EN_DASH}e staging"),
        _case("two em dashes", f"deploy {EM_DASH}{EM_DASH}stack nope"),
        # whitespace and newlines
        _case("padded list", "   list   "),
        _case("newlines around", "\n\n list \n"),
        _case("tabs around", "\t deploy -s nope \t"),
        _case("newlines between words", "deploy\n-s\nnope"),
        _case("newline before option, real", "deploy -s blog\n--dry-run", "blog"),
        _case("only spaces", "     "),
        _case("empty", ""),
        _case("nbsp between words", "list\u00a0-s\u00a0shop"),
        _case("CRLF lines", "deploy -s nope\r\n-e production\r\n"),
        # case and whitespace variants of real names
        _case("upper case name, dry run", "deploy -s BLOG --dry-run", "blog"),
        _case("padded quoted name, dry run", 'deploy -s "  blog  " --dry-run', "blog"),
        _case(
            "env in capitals",
            'deploy -s "payments portal" -e PRODUCTION --dry-run',
            "Payments Portal",
        ),
        _case("real cancel", "cancel -s shop -e staging", "shop", change=True),
        _case("real deploy in backticks", "`redeploy -s legacy`", "legacy", change=True),
        # control characters and NUL
        _case("one NUL", "\x00"),
        _case("many NULs", "\x00" * 100),
        _case("NUL after command", "deploy\x00 -s nope"),
        _case("NUL as the value", "list -s \x00"),
        _case("NULs in options", "deploy -s nope\x00\x00 -e \x00production"),
        _case("NUL inside a real name", "deploy -s bl\x00og --dry-run", "blog"),
        _case("all C0 controls", "".join(chr(c) for c in range(32)) + "list"),
        _case("ANSI colours", "\x1b[31mdeploy\x1b[0m -s nope"),
        _case("DEL run", "\x7f" * 50),
        _case("NEL", "\x85 list"),
        _case("bell and backspace", "deploy -s blog\x07\x08\x08\x08\x08nope"),
        # RTL, zero-width, combining marks, emoji, look-alikes
        _case("RLO before command", f"{RLO}deploy -s nope"),
        _case("Hebrew stack", f"deploy -s {HEBREW}"),
        _case("Arabic with ALM", f"cancel -s {ARABIC}{ALM}"),
        _case("RLE-wrapped command", f"{RLE}deploy -s blog{PDF} --dry-run"),
        _case("RLM after real name", f"deploy -s blog{RLM} --dry-run"),
        _case("ZWSP in command", f"de{ZWSP}ploy -s blog"),
        _case("ZWSP in name", f"deploy -s bl{ZWSP}og"),
        _case("BOM first", f"{BOM}deploy -s blog"),
        _case("ZWJ after name", f"deploy -s blog{ZWJ} --dry-run"),
        _case("ZWNJ and WJ", f"list -s {ZWNJ}{WJ}"),
        _case("combining accent in name", "deploy -s blo\u0301g"),
        _case("combining in command", "de\u0300ploy -s nope"),
        _case("2000 combining marks", "list -s a" + "\u0301" * 2000),
        _case("zalgo", f"deploy -s {ZALGO}"),
        _case("emoji first", f"{ROCKET} deploy -s blog"),
        _case("ZWJ emoji as stack", f"deploy -s {TECHNOLOGIST}"),
        _case("flag emoji env", f"deploy -s {RAINBOW_FLAG} -e {UK_FLAG}"),
        _case("family emoji list", f"list -s {FAMILY}{THUMB_MEDIUM}"),
        _case("fullwidth name", f"deploy -s {FULLWIDTH_BLOG}"),
        _case("Cyrillic o", f"deploy -s {CYRILLIC_BLOG}"),
        _case("Cyrillic s", f"cancel -s {CYRILLIC_SHOP} -e production"),
        _case("lone high surrogate", "list -s \ud800"),
        _case("lone low surrogate", "deploy -s \udfff"),
        # sizes: 40 KB messages, values at the limit, many options
        _case("40 KB after a real command", "deploy -s blog " + "A" * 40_000),
        _case("40 KB of emoji", ROCKET * 10_000),
        _case("40 KB of entities", "&amp;" * 8_000),
        _case("40 KB of channel mentions", "<!channel>" * 4_000),
        _case("40 KB of NUL", "\x00" * 40_000),
        _case("40 KB of lines", "list\n" * 8_000),
        _case("20 K combining marks", "deploy -s " + "\u0301" * 20_000),
        _case("long stack value", "deploy -s " + long_x),
        _case("long filter value", "list -s " + "x" * 3992),
        _case("one past the limit", "list -s " + "x" * 3993),
        _case("long escaped value", "deploy -s " + "<" * 3990),
        _case("long ampersand filter", "list -s " + "&" * 3900),
        _case("long -w value", "deploy -s shop -w " + "&" * 1400),
        _case(
            "long service on real stack",
            "deploy -s shop -e production --dry-run -v " + "w" * 3000,
            "shop",
        ),
        _case("500 services, no stack", "deploy " + "-v web " * 500),
        _case("700 environments", "deploy -s nope " + "-e x " * 700),
        _case("500 json flags", "list " + "--json " * 500),
        _case("1000 comma services", "cancel -s nope -v " + ",".join(["x"] * 1000)),
        _case("empty services", "deploy -s nope -v web,worker,,,:,:::"),
        _case("many -h", "deploy " + "-h " * 300),
        # commands igor has, has not, or has only in a shell
        _case("unknown command", "frobnicate --stack blog"),
        _case("shell-only command", "serve"),
        _case("shell-only register", "register --slack"),
        _case("alias halt", "halt -s nope"),
        _case("alias stop path", "stop -s ../../"),
        _case("alias exit everyone", "exit -s <!everyone>"),
        _case("alias stacks star", "stacks -s *"),
        _case("version json", "version --json"),
        _case("format strings", "list -s %s%s%s%n -e {0}{1}"),
    ]


# Characters for noise: everything but ASCII letters, so noise never spells a command or a
# stack name by accident.
_NOISE = (
    "0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    + HEBREW + ARABIC + RLO + RLE + PDF + RLM + ALM
    + ZWSP + ZWNJ + ZWJ + WJ + BOM
    + "".join(chr(c) for c in range(0x300, 0x370, 7))  # combining marks
    + "".join(chr(c) for c in (*range(32), 0x7F, 0x85))  # control characters
    + "\u00a0\u2007\u202f\u3000\u2028\u2029\u2009"  # odd spaces
    + LEFT_DQ + RIGHT_DQ + LEFT_SQ + RIGHT_SQ + EM_DASH + EN_DASH
    + "\u4e2d\u6587\u65e5\u672c\u03b1\u03b2\u0436\u00e9\u00df"
)  # fmt: skip
_EMOJI = (ROCKET, TECHNOLOGIST, RAINBOW_FLAG, FAMILY, UK_FLAG, THUMB_MEDIUM, "\u2764\ufe0f")
_COMMANDS = (
    "deploy", "cancel", "list", "help", "version", "redeploy", "stop", "exit", "halt", "get",
    "show", "find", "stacks", "Deploy", "DEPLOY", "deploy!", "serve", "register", "frobnicate",
    "", "-h", "--help", "--version",
)  # fmt: skip
_OPTIONS = (
    "-s", "--stack", "-e", "--environment", "-v", "--service", "-w", "--wait", "--no-wait",
    "--follow", "--dry-run", "--json", "-h", "--help", "--", "-", "--stack=", "-ss", "--bogus",
    "-Z", "---", "--=", "-s=", f"{EM_DASH}stack", f"{EN_DASH}e", f"{EM_DASH}{EM_DASH}dry-run",
)  # fmt: skip
_PATHS = (
    "../../etc/passwd", "../../", "..", "/", "//", "./", "~", "~root", "C:\\Windows\\system32",
    "\\\\server\\share", "%2e%2e%2f", "..%2f..%2f", "/dev/null", "file:///etc/passwd",
    "..\\..\\", "/proc/self/environ",
)  # fmt: skip
_INJECTIONS = (
    "$(whoami)", "`id`", "; cancel -s x", "| cat", "&& rm -rf /", "${IFS}", "%s%s%s%n",
    "{0}{1}", "\\x00", "' OR 1=1 --", "<script>alert(1)</script>", "{{7*7}}", "$HOME", "null",
    "None", "undefined", "NaN", "true", "-1", "0", "9" * 40,
)  # fmt: skip
_SLACKISH = (
    "&lt;", "&gt;", "&amp;", "&amp;gt;", "&amp;lt;", "&lt;!channel&gt;", "<!channel>", "<!here>",
    "<!everyone>", "<!subteam^S0123|@devs>", "<@U0BOB>", "<@U0BOB|bob>", "<@UIGOR>",
    "<#C0123|deploys>", "<http://example.com|example.com>", "<https://x.io>",
    "<mailto:a@b.c|a@b.c>", "<tel:123|call>", "<>", "<|>", "<<>>", "*bold*", "_it_", "~strike~",
    "`code`", "```fence```", "> quote", ":rocket:", f"{LEFT_DQ}quoted{RIGHT_DQ}",
    f"{LEFT_SQ}single{RIGHT_SQ}",
)  # fmt: skip
_SEPARATORS = (" ", " ", " ", "  ", "\n", "\t", "\u00a0", f" {ZWSP} ", "\r\n")
_WRAPS = (
    "{}", "{}", "{}", "*{}*", "_{}_", "`{}`", "```{}```", "```\n{}\n```", "> {}", "  {}  ",
    "\n{}\n", "<@U0BOB> {}", "{} <!channel>", "{}" + ZWSP, RLO + "{}", "{}\x00", "{}" + ROCKET,
)  # fmt: skip
_QUOTING = ('"{}"', "'{}'", '"{}', "'{}", '{}"', f"{LEFT_DQ}{{}}{RIGHT_DQ}", f"{LEFT_DQ}{{}}")


def _noise(rng: random.Random, low: int = 1, high: int = 24) -> str:
    return "".join(rng.choices(_NOISE, k=rng.randint(low, high)))


def _value(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        value = _noise(rng)
    elif kind == 1:
        value = rng.choice(_PATHS)
    elif kind == 2:
        value = rng.choice(_INJECTIONS)
    elif kind == 3:
        value = rng.choice(_SLACKISH)
    elif kind == 4:
        value = rng.choice(("x", "&", "<", "\u00e9", ROCKET, "\u0301", "\x00")) * rng.randint(
            100, 1500
        )
    else:
        value = "".join(rng.choices(_EMOJI, k=rng.randint(1, 8)))
    if rng.random() < 0.3:
        value = rng.choice(_QUOTING).format(value)
    return value


def _command_text(rng: random.Random) -> str:
    words = [rng.choice(_COMMANDS)]
    for _ in range(rng.randint(0, 8)):
        words.append(rng.choice(_OPTIONS) if rng.random() < 0.5 else _value(rng))
    text = words[0]
    for word in words[1:]:
        text += rng.choice(_SEPARATORS) + word
    return rng.choice(_WRAPS).format(text)


def _targeted_text(rng: random.Random) -> str:
    # Well formed enough to reach stack resolution: a stack-changing command, quoted values.
    groups = [["-s", shlex.quote(_value(rng))]]
    if rng.random() < 0.4:
        groups.append(["-e", shlex.quote(_value(rng))])
    if rng.random() < 0.3:
        groups.append(["-v", shlex.quote(_value(rng))])
    if rng.random() < 0.5:
        groups.append([rng.choice(("--dry-run", "-w true", "--no-wait", "--json", "--follow"))])
    rng.shuffle(groups)  # option order never matters
    command = rng.choice(("deploy", "cancel", "redeploy", "stop", "halt"))
    text = " ".join([command, *(word for group in groups for word in group)])
    return rng.choice(_WRAPS).format(text)


def _generated_text(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.3:
        return "targeted", _targeted_text(rng)
    if roll < 0.45:
        return "noise", _noise(rng, 1, 300)
    if roll < 0.5:
        unit = rng.choice((ROCKET, "&amp;", "<!here>", "\x00", HEBREW + RLO, "-h ", '"'))
        return "giant", unit * (rng.randint(10_000, 40_000) // len(unit))
    if roll < 0.6:
        burst = "".join(rng.choices((*_EMOJI, ZWJ, ZWSP, RLO, "\x00", "\u0301"), k=60))
        return "burst", rng.choice(_COMMANDS) + " " + burst
    return "command", _command_text(rng)


def _may_spell_a_stack(text: str) -> bool:
    # Conservative: fold away everything a normaliser might drop, then look for any name.
    folded = unicodedata.normalize("NFKC", text)
    kept = "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "CMZ")
    kept = "".join(kept.split()).casefold()
    return any(name.replace(" ", "") in kept for name in STACK_NAMES)


def _generated(seed: int, count: int) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = []
    while len(cases) < count:
        kind, text = _generated_text(rng)
        if _may_spell_a_stack(text):
            continue  # the oracle says such a message names nothing; keep it true
        cases.append(Case(f"generated {len(cases)} ({kind})", text))
    return cases


def corpus(seed: int = SEED) -> list[Case]:
    """The fixed corpus: hand-written cases, then generated ones."""
    return _hand_written() + _generated(seed, GENERATED)


CORPUS = corpus()


# -- checking one reply ---------------------------------------------------------------


def _texts_of(blocks: list[dict[str, Any]]) -> list[str]:
    texts: list[str] = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            texts.append(str(block["text"].get("text", "")))
        for element in block.get("elements", []):
            if isinstance(element, dict) and isinstance(element.get("text"), str):
                texts.append(element["text"])
    return texts


def _actions_problems(number: int, elements: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if not 1 <= len(elements) <= MAX_ACTIONS:
        problems.append(f"block {number}: {len(elements)} elements")
    for element in elements:
        label = element.get("text", {}).get("text", "")
        if not 1 <= len(label) <= MAX_BUTTON_TEXT:
            problems.append(f"block {number}: button text of {len(label)}")
        if len(element.get("value", "")) > MAX_BUTTON_VALUE:
            problems.append(f"block {number}: button value of {len(element['value'])}")
        if len(element.get("action_id", "")) > MAX_ACTION_ID:
            problems.append(f"block {number}: action_id of {len(element['action_id'])}")
    return problems


def message_problems(text: Any, blocks: Any) -> list[str]:
    """What is wrong with a message as chat.postMessage would receive it."""
    problems: list[str] = []
    if not isinstance(text, str) or not text.strip():
        problems.append(f"fallback text is empty or not text: {text!r:.80}")
        text = str(text)
    if "\x00" in text:
        problems.append("fallback text holds a NUL")
    if len(text) > MAX_FALLBACK_TEXT:
        problems.append(f"fallback text is {len(text):,} characters long")
    if not isinstance(blocks, list):
        return [*problems, f"blocks are not a list: {type(blocks).__name__}"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks")
    for number, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "section":
            inner = block["text"]
            if inner.get("type") not in ("mrkdwn", "plain_text"):
                problems.append(f"block {number}: text type {inner.get('type')!r}")
            if not 1 <= len(inner.get("text", "")) <= MAX_SECTION_TEXT:
                problems.append(f"block {number}: section text of {len(inner.get('text', ''))}")
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                problems.append(f"block {number}: {len(elements)} context elements")
            for element in elements:
                if not 1 <= len(element.get("text", "")) <= MAX_SECTION_TEXT:
                    problems.append(f"block {number}: context text of {len(element['text'])}")
        elif kind == "actions":
            problems += _actions_problems(number, block.get("elements", []))
        else:
            problems.append(f"block {number}: unexpected block {block!r:.80}")
    if any("\x00" in t for t in _texts_of(blocks)):
        problems.append("a block holds a NUL")
    try:
        json.dumps({"text": text, "blocks": blocks})
    except (TypeError, ValueError) as error:
        problems.append(f"not JSON: {error}")
    return problems


def _stack_names_by_uid(sim: Simulator) -> dict[str, str]:
    return {sim.stack(name, env)["uid"]: name.casefold() for name, env in SAMPLE_STACKS}


def request_problems(
    case: Case,
    requests: list[RecordedRequest],
    names_by_uid: dict[str, str],
    listed: frozenset[str] = frozenset(),
) -> list[str]:
    """Calls to Cloud 66 that the message did not ask for.

    `listed`: the stacks a `list` answer shows, whose deployments it may read (LAST DEPLOY).
    """
    problems: list[str] = []
    for request in requests:
        if request.method in ("POST", "DELETE", "PUT", "PATCH") and not case.may_change:
            problems.append(f"{request.method} {request.path}")
        match = _STACK_PATH.match(request.path)
        if match is not None:
            name = names_by_uid.get(match.group(1), f"unknown uid {match.group(1)}")
            reads = request.method == "GET" and request.path.endswith(("/deployments", "/actions"))
            if name not in case.names and not (reads and name in listed):
                problems.append(f"{request.method} {request.path} ({name})")
    return problems


def reply_problems(reply: object) -> list[str]:
    """What is wrong with the bridge's answer."""
    if not isinstance(reply, Reply):
        return [f"not a Reply: {reply!r:.80}"]
    return message_problems(rendered(reply).text, rendered(reply).blocks)


# -- the fast layer: the bridge against the simulator -----------------------------------


def test_the_corpus_is_big_varied_and_fixed() -> None:
    assert len(CORPUS) >= 200
    assert corpus() == CORPUS  # the same seed, the same messages
    assert corpus(SEED + 1) != CORPUS
    kinds = {case.label.split("(")[-1] for case in CORPUS if case.label.startswith("generated")}
    assert {"noise)", "giant)", "burst)", "command)", "targeted)"} <= kinds
    everything = "".join(case.text for case in CORPUS)
    for needle in ("\x00", RLO, ZWJ, "\u0301", ROCKET, "<!channel>", "&amp;gt;", "<@U0BOB>",
                   "```", "-h", "../../", "\n"):  # fmt: skip
        assert needle in everything, needle
    assert max(len(case.text) for case in CORPUS) >= 40_000
    assert sum(1 for case in CORPUS if not case.names) >= 200


def _run(bridge: Bridge, sim: Simulator, numbers: range, guarded: bool = False) -> list[str]:
    """Every case in `numbers` through the bridge; what went wrong, one line each."""
    names_by_uid = _stack_names_by_uid(sim)
    problems: list[str] = []
    for number in numbers:
        case = CORPUS[number]
        user = "U1" if not guarded or number % 2 == 0 else "U2"
        before = len(sim.requests)
        try:
            reply = bridge.handle(case.text, Origin("slack", user, f"req-{number}"), "C0HOSTILE")
        except Exception as error:  # the point: nothing may escape
            problems.append(f"{case.label}: raised {type(error).__name__}: {error}"[:300])
            continue
        made = sim.requests[before:]
        shown = reply.outcome.stacks if isinstance(reply.outcome, StackList) else []
        listed = frozenset(stack.name.casefold() for stack in shown)
        found = reply_problems(reply) + request_problems(case, made, names_by_uid, listed)
        if reply.status in ("refused", "confirm"):
            # Deciding may look the stack up (a read); it never changes anything.
            changed = [r for r in made if r.method != "GET" or not _stack_lookup(r.path)]
            if changed:
                found.append(f"{reply.status}, yet {len(changed)} other calls to Cloud 66")
        problems += [f"{case.label} {case.text[:60]!r}: {p}" for p in found]
    return problems


def _stack_lookup(path: str) -> bool:
    """`GET /stacks` or `GET /stacks/{uid}`: finding the stack a command names."""
    parts = path.removeprefix("/api/3/").split("/")
    return parts[0] == "stacks" and len(parts) <= 2


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_the_bridge_answers_every_hostile_message_safely(
    chunk: int, sim: Simulator, clock: FakeClock
) -> None:
    bridge = Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))
    problems = _run(bridge, sim, range(chunk, len(CORPUS), CHUNKS))
    assert not problems, "\n".join(problems[:40])


GUARD_RAILS = {
    "slack": {
        "allow": [
            {"users": ["U1"], "environments": ["staging", "production"]},
            {"commands": ["list", "help", "version"]},
        ],
        "confirm": ["production"],
    }
}


def test_with_guard_rails_every_hostile_message_is_refused_asked_or_answered_safely(
    sim: Simulator, clock: FakeClock
) -> None:
    # U1 may do anything in staging and production (production asks first); U2 only looks.
    bridge = Bridge(
        Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep),
        rules=rules_from_config(GUARD_RAILS),
        signer=Signer(b"k" * 32),
    )
    problems = _run(bridge, sim, range(len(CORPUS)), guarded=True)
    assert not problems, "\n".join(problems[:40])


def test_the_request_oracle_sees_a_deploy_a_cancel_and_a_stack_call(
    sim: Simulator, clock: FakeClock
) -> None:
    # The checks above must be able to fail: a message that names nothing, run as if it
    # had been a real deploy and cancel, is caught.
    bridge = Bridge(Environment(clock=clock.datetime, monotonic=clock, sleep=clock.sleep))
    names_by_uid = _stack_names_by_uid(sim)
    sim.start_foreign_deployment("blog", "production")
    before = len(sim.requests)
    bridge.handle("deploy -s api", Origin("slack", "U1", "oracle-1"))
    bridge.handle("cancel -s blog", Origin("slack", "U1", "oracle-2"))
    made = sim.requests[before:]
    assert sim.count("POST", "/deployments") == 1
    assert sim.count("DELETE") == 1
    innocent = Case("innocent", "list")
    found = request_problems(innocent, made, names_by_uid)
    assert any(p.startswith("POST ") for p in found)
    assert any(p.startswith("DELETE ") for p in found)
    assert any("(api)" in p for p in found) and any("(blog)" in p for p in found)
    assert not request_problems(Case("both", "", frozenset({"api", "blog"}), True), made,
                                names_by_uid)  # fmt: skip
    assert message_problems("", [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}])
    assert message_problems("a\x00", [{"type": "divider"}] * 51)


# -- end to end: the real `igor serve`, the fake Slack, the simulator --------------------

E2E_LABELS = (
    "repeated -s", "--stack= path", "stack ../../", "-h alone", "-h after real stack",
    "double-escaped gt", "escaped link is not a link", "link-wrapped real name",
    "channel mention as stack", "channel mention first", "mention before command",
    "bold command", "code fence lines", "unbalanced double", "curly and dashes",
    "newline inside quoted name", "trailing backslash", "CRLF lines", "many NULs",
    "NUL inside a real name", "all C0 controls", "RLO before command", "ZWSP in name",
    "2000 combining marks", "ZWJ emoji as stack", "lone high surrogate",
    "40 KB after a real command", "40 KB of emoji", "40 KB of NUL", "long escaped value",
    "long -w value", "500 services, no stack", "many -h", "shell-only command", "empty",
)  # fmt: skip


def _by_label(label: str) -> Case:
    return next(case for case in CORPUS if case.label == label)


def _ignored_events(ts: Callable[[], str]) -> list[dict[str, Any]]:
    """Mentions igor must not answer: bots, edits, itself, no author."""
    base = {"type": "app_mention", "channel": "C0HOSTILE", "text": "<@UIGOR> deploy -s blog"}
    return [
        {**base, "user": "U0BOT", "bot_id": "B0OTHER", "ts": ts()},
        {**base, "user": "U0ALICE", "subtype": "message_changed", "ts": ts()},
        {**base, "user": "UIGOR", "ts": ts()},
        {**base, "ts": ts()},
        {**base, "user": "U0ALICE", "bot_profile": {"name": "other"}, "ts": ts()},
    ]


def test_the_nastiest_messages_end_to_end(
    bot: RunningBot, slack: FakeSlack, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="igor")
    bot.start()
    cases = [_by_label(label) for label in E2E_LABELS]
    assert all(not case.may_change for case in cases)
    pushed: dict[str, tuple[str, Case | None]] = {}  # envelope -> (ts, case or None if ignored)
    for case in cases:
        ts = next_ts()
        event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0HOSTILE", "ts": ts,
                 "event_ts": ts, "text": f"<@{slack.bot_user_id}> {case.text}"}  # fmt: skip
        pushed[slack.push_event(event)] = (ts, case)
    # The same post delivered again (a Slack retry) and odd mention forms.
    first_ts, first_case = next(iter(pushed.values()))
    again = {"type": "app_mention", "user": "U0ALICE", "channel": "C0HOSTILE", "ts": first_ts,
             "text": f"<@UIGOR> {first_case.text if first_case else ''}"}  # fmt: skip
    pushed[slack.push_event(again, retry_attempt=1, retry_reason="timeout")] = (first_ts, None)
    for text in ("<@UIGOR|igor> <@UIGOR> list -s \x00", "<@UIGOR>", "hey <@UIGOR> deploy -s x"):
        ts = next_ts()
        event = {"type": "app_mention", "user": "U0ALICE", "channel": "C0HOSTILE", "ts": ts,
                 "text": text}  # fmt: skip
        pushed[slack.push_event(event)] = (ts, Case(text, text))
    for event in _ignored_events(next_ts):
        pushed[slack.push_event(event)] = (event["ts"], None)

    for envelope in pushed:
        ack = slack.wait_ack(envelope, timeout=5)
        assert ack.acked_at - ack.sent_at < 2.0, envelope
    answered_threads = {ts for ts, case in pushed.values() if case is not None}
    slack.wait_for_calls("chat.postMessage", len(answered_threads), timeout=20)
    time.sleep(0.5)  # let any double answer or answer to an ignored event arrive
    posts = slack.calls_to("chat.postMessage")
    by_thread: dict[str, list[Call]] = {}
    for post in posts:
        by_thread.setdefault(str(post.params.get("thread_ts")), []).append(post)
    assert set(by_thread) == answered_threads
    problems: list[str] = []
    for thread, calls in by_thread.items():
        if len(calls) != 1:
            problems.append(f"thread {thread}: {len(calls)} replies")
        for call in calls:
            if call.error is not None:
                problems.append(f"thread {thread}: Slack said {call.error}")
            found = message_problems(call.params.get("text"), call.params.get("blocks", []))
            problems += [f"thread {thread}: {p}" for p in found]
            if call.params.get("channel") != "C0HOSTILE":
                problems.append(f"thread {thread}: posted in {call.params.get('channel')}")
    assert not problems, "\n".join(problems)
    assert sim.count("POST") == 0
    assert sim.count("DELETE") == 0
    failures = [
        r
        for r in caplog.records
        if r.name.startswith("igor") and (r.levelno >= logging.ERROR or r.exc_info)
    ]
    assert not failures, [r.getMessage() for r in failures]

    assert bot.thread is not None and bot.thread.is_alive()
    bot.mention("version", channel="C0FINAL")
    final = slack.wait_for_calls("chat.postMessage", len(posts) + 1, timeout=10)[-1]
    assert final.params["channel"] == "C0FINAL"
    assert f"igor {__version__}" in final.params["text"]


def _bridge() -> Bridge:
    return Bridge(Environment())


@pytest.mark.parametrize("text", ["-h", "--help"])
def test_dash_h_alone_gives_the_chat_help(sim: Simulator, text: str) -> None:
    # The usage text says "Try 'igor -h' for help": in chat that must work too.
    reply = _bridge().handle(text, Origin("slack", "U1", "h"))
    assert reply.status == "help"
    assert "Commands:" in rendered(reply).text


# -- bugs this corpus found, fixed: each test keeps it fixed ------------------------------


@pytest.mark.parametrize("command", ["serve", "register"])
def test_help_for_a_shell_only_command_is_refused_like_the_command(
    sim: Simulator, command: str
) -> None:
    bridge = _bridge()
    refused = bridge.handle(command, Origin("slack", "U1", "a"))
    assert f"Unknown command '{command}'" in rendered(refused).text  # the command itself
    reply = bridge.handle(f"help {command}", Origin("slack", "U1", "b"))
    assert f"Unknown command '{command}'" in rendered(reply).text


def _guarded_bridge() -> Bridge:
    return Bridge(Environment(), rules=rules_from_config(GUARD_RAILS), signer=Signer(b"k" * 32))


@pytest.mark.parametrize(
    ("guarded", "text"),
    [(False, 'deploy -s api -v "web:<@U0BOB>" --dry-run'), (True, 'deploy -s blog -e "<@U0BOB>"')],
    ids=["service tag in a dry run", "environment in a refusal"],
)
def test_user_text_cannot_mention_someone_in_igors_blocks(
    sim: Simulator, guarded: bool, text: str
) -> None:
    bridge = _guarded_bridge() if guarded else _bridge()
    reply = bridge.handle(text, Origin("slack", "U1"), "C0HOSTILE")
    assert reply.status in ("ok", "refused")  # the tag is not checked; the refusal names -e
    assert not any("<@U0BOB" in shown for shown in _texts_of(rendered(reply).blocks))


@pytest.mark.parametrize(
    "stack", ["x" * 1500, ROCKET * 120, HEBREW * 200], ids=["1500 x", "120 emoji", "Hebrew"]
)
def test_a_confirmation_button_fits_block_kit(sim: Simulator, stack: str) -> None:
    reply = _guarded_bridge().handle(f"deploy -s {stack} -e production", Origin("slack", "U1"))
    assert reply.status == "error"  # no such stack: looked up before asking
    assert not message_problems(rendered(reply).text, rendered(reply).blocks)
    long_words = _guarded_bridge().handle(
        "deploy -s shop -e production -v " + ",".join(["web"] * 600), Origin("slack", "U1")
    )
    assert long_words.status == "usage"  # too long for a button: said, not posted broken
    assert not message_problems(rendered(long_words).text, rendered(long_words).blocks)


@pytest.mark.parametrize(
    "text",
    ["<!channel>", "deploy -s <!channel>", "list -s <!here>", "cancel -s <@U0BOB>",
     "deploy -s <!subteam^S0123|@devs>"],
)  # fmt: skip
def test_user_markup_never_becomes_live_in_the_fallback_text(sim: Simulator, text: str) -> None:
    reply = _bridge().handle(text, Origin("slack", "U1"))
    assert rendered(reply).blocks  # the blocks are escaped; the fallback must be too
    assert not re.search(r"<[!@#]", rendered(reply).text), rendered(reply).text


@pytest.mark.parametrize("space", ["\r", "\x0b", "\x0c", "\u3000", "\u2028"])
def test_every_kind_of_whitespace_separates_words(sim: Simulator, space: str) -> None:
    reply = _bridge().handle(f"list{space}-e{space}staging", Origin("slack", "U1"))
    assert reply.status == "ok", rendered(reply).text
    assert rendered(reply).text.startswith("2 stacks")


@pytest.mark.parametrize(
    "text",
    ["deploy -s shop -w " + "&" * 1400, "list -s " + "&" * 3900, "deploy -s " + "<" * 3990],
    ids=["usage in a code block", "list summary", "error message"],
)
def test_long_escaped_replies_keep_their_markup_whole(sim: Simulator, text: str) -> None:
    reply = _bridge().handle(text, Origin("slack", "U1"))
    assert not message_problems(rendered(reply).text, rendered(reply).blocks)
    for section in _texts_of(rendered(reply).blocks):
        if section.startswith("```"):
            assert section.endswith("```") and len(section) >= 6, section[-20:]
        assert not re.search(r"&(?:a|am|amp|l|lt|g|gt)?$", section), section[-20:]


def test_chatter_that_starts_with_igors_name_is_not_a_command(
    bot: RunningBot, slack: FakeSlack
) -> None:
    bot.start()
    for text in ("igor's deploy went fine", "igor-cli 2.0 is out", "igor.py crashed again"):
        slack.push_event(
            {"type": "message", "channel_type": "channel", "user": "U0ALICE", "text": text,
             "channel": "C1", "ts": next_ts()}
        )  # fmt: skip
    slack.push_event(
        {"type": "message", "channel_type": "channel", "user": "U0ALICE", "text": "igor version",
         "channel": "C1", "ts": next_ts()}
    )  # fmt: skip
    bot.replies(1)
    time.sleep(0.5)
    assert slack.post_message_count() == 1


def test_two_people_deploying_one_stack_at_once_post_one_deployment(sim: Simulator) -> None:
    sim.latency = 0.2  # each check takes a while, as with the real Cloud 66
    bridge = _bridge()  # one bridge, shared by the workers, as in `igor serve`
    start = threading.Barrier(2, timeout=5)
    replies: dict[str, Reply] = {}

    def deploy(user: str) -> None:
        start.wait()
        replies[user] = bridge.handle("deploy -s blog", Origin("slack", user, f"C1-{user}"))

    workers = [threading.Thread(target=deploy, args=(u,), daemon=True) for u in ("U1", "U2")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert len(replies) == 2
    assert sim.count("POST", "/deployments") == 1
    said = sorted(rendered(reply).text for reply in replies.values())
    assert "already deploying" in said[1], said
