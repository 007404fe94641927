"""Chat text back to the words a person typed, then split like a shell would.

Slack escapes `& < >`, wraps links and mentions in `<...>`, and phones turn
`--` into dashes and quotes into curly ones. Undo all that before parsing.
"""

from __future__ import annotations

import re
import shlex

from igor_cli.errors import UsageProblem

_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
EM_DASH, EN_DASH = "\u2014", "\u2013"
_EN_DASH_SHORT = re.compile(EN_DASH + r"(?=[A-Za-z](?:\s|$))")
# Curly double and single quotes, as phones and Slack's editor type them.
_QUOTES = str.maketrans(
    {"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'", "\u201a": "'"}
)
_SPACES = re.compile(r"\s")  # every Unicode space, tab and line break separates words
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ue000-\uf8ff]")  # and private use: igor's own markers
MAX_TEXT = 4000  # no command is longer; bigger texts are refused, not parsed


class ChatSyntaxError(UsageProblem):
    """Text that cannot be split into words (an unbalanced quote)."""


def _unwrap(match: re.Match[str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith(("@", "!")):
        return match.group(0)  # user mentions and special mentions stay as they are
    if label:
        return label  # <http://shop.io|shop.io>, <mailto:a@b.c|a@b.c>, <#C123|deploys>
    return target.removeprefix("mailto:")


def normalise(text: str) -> str:
    """Undo Slack's escaping and typographic replacements."""
    text = _LINK.sub(_unwrap, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = _SPACES.sub(" ", text.translate(_QUOTES))
    text = text.replace(EM_DASH, "--")
    text = _EN_DASH_SHORT.sub("-", text)  # an en dash before one letter: a short option (-e)
    text = text.replace(EN_DASH, "--")  # before a word: a long one (--follow)
    text = _CONTROL.sub("", text)
    text = text.strip()
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        text = text[3:-3].strip()
    elif text.startswith("`") and text.endswith("`") and len(text) >= 2:
        text = text[1:-1].strip()
    return text


_MENTION = re.compile(r"<([@#!])([^<>|]*)(?:\|[^<>]*)?>")
# Slack tokens by their prefix; and a long unbroken run of letters and digits,
# which is how other secrets look: Cloud 66's own examples of personal access
# tokens are 64 hex digits. A git hash (40 hex digits) stays readable.
_SECRET = re.compile(r"\b(?:xox[a-z]|xapp)-[A-Za-z0-9-]+|\b[A-Za-z0-9]{41,}\b")


def loggable(text: str) -> str:
    """What was typed, fit for a log line: mentions as `@U123`, secrets as `[token]`.

    A mention keeps the ID and loses the display name Slack puts beside it;
    anything shaped like a token is replaced, whether or not igor knows it.
    """
    text = _MENTION.sub(lambda m: ("#" if m.group(1) == "#" else "@") + m.group(2), text)
    text = _SECRET.sub("[token]", text)
    return _SPACES.sub(" ", _CONTROL.sub("", text)).strip()[:MAX_TEXT]


def strip_address(text: str, bot_user_id: str, bot_name: str) -> tuple[str, bool]:
    """Remove a leading `<@BOT>`, `@igor` or `igor` (and `:`/`,`); say whether one was there."""
    # "igor deploy", "igor: deploy", "@igor, deploy"; not "igor's deploy went fine".
    name = rf"@?{re.escape(bot_name)}(?=[\s:,]|$)"
    pattern = rf"^\s*(?:<@{re.escape(bot_user_id)}(?:\|[^>]*)?>|{name})[:,]?\s*"
    stripped, count = re.subn(pattern, "", text, count=1, flags=re.IGNORECASE)
    return stripped, bool(count)


def split_words(text: str) -> list[str]:
    """Split like a shell; an unbalanced quote is a clear usage problem."""
    if len(text) > MAX_TEXT:
        raise ChatSyntaxError(
            f"That message is {len(text):,} characters long; igor reads commands of "
            f"at most {MAX_TEXT:,}.",
            "Send just the command, e.g. `deploy -s shop -e production`.",
        )
    try:
        return shlex.split(text)
    except ValueError:
        raise ChatSyntaxError(
            "A quote in that message is not closed.",
            'Close it, e.g. `deploy -s "Payments Portal"`, or leave the quotes out.',
        ) from None
