"""Replies as plain text, for the local chat console (`igor chat`).

The console is a peer of the Slack adapter: it renders the chat core's neutral
replies and follow-up news itself, in the shell's words, without Block Kit. The
marks Slack shows as emoji codes (`:rocket:`) are shown as real emoji, or as
words where the terminal cannot show them; tables come apart from the words,
to be printed on lines of their own.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime

from igor_cli.chat.bridge import Reply
from igor_cli.chat.follow import News
from igor_cli.errors import IgorError, NotRegistered, Remedy
from igor_cli.render import sentences
from igor_cli.render.said import Said, plain_brief, plain_name, spoken
from igor_cli.render.slack import NOTICE_EMOJI, TONE_EMOJI, progress_emoji
from igor_cli.render.table import aligned, text_table

# Every emoji code igor's Slack replies use: the emoji, and words for a terminal
# that cannot show it. A test keeps this complete.
EMOJI = {
    ":rocket:": ("🚀", "[started]"),
    ":hourglass_flowing_sand:": ("⏳", "[waiting]"),
    ":hourglass:": ("⌛", "[time]"),
    ":octagonal_sign:": ("🛑", "[stop]"),
    ":information_source:": ("\u2139\ufe0f", "[info]"),
    ":no_entry_sign:": ("🚫", "[refused]"),
    ":no_entry:": ("⛔", "[refused]"),
    ":mag:": ("🔍", "[check]"),
    ":key:": ("🔑", "[token]"),
    ":warning:": ("⚠️", "[!]"),
    ":white_check_mark:": ("✅", "[done]"),
    ":x:": ("❌", "[failed]"),
    ":eyes:": ("👀", "[watching]"),
    ":raised_hand:": ("✋", "[confirm]"),
    ":heavy_multiplication_x:": ("✖️", "[declined]"),
    ":lock:": ("🔒", "[locked]"),
    ":unlock:": ("🔓", "[unlocked]"),
    ":busts_in_silhouette:": ("👥", "[approval]"),
    ":rotating_light:": ("🚨", "[break glass]"),
}
_CODE = re.compile(r":[a-z0-9_+-]+:")

# What a person at the console can do without a token (chat's hint names `--sandbox`
# on a command, which chat does not take).
HOW_TO_REGISTER = (
    "Store one with `igor register` (or set IGOR_CLOUD66_TOKEN); "
    "rehearse without an account with `igor --sandbox chat`."
)


def emoji_text(text: str, encoding: str | None = "utf-8") -> str:
    """Slack emoji codes in `text` as emoji, or as words where `encoding` has no emoji."""

    def shown(match: re.Match[str]) -> str:
        known = EMOJI.get(match.group(0))
        if known is None:
            return match.group(0)  # not one of igor's: someone's text, left alone
        emoji, words = known
        try:
            emoji.encode(encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            return words
        return emoji

    return _CODE.sub(shown, text)


@dataclass(frozen=True)
class ConsoleText:
    """What igor says (`lead`, emoji codes included), and a table to show on its own lines."""

    lead: str
    table: tuple[str, ...] = ()
    emoji: str = ""  # the mark Slack would show before the words

    def text(self) -> str:
        """The words and the table as lines of text (without the mark)."""
        return "\n".join([*([self.lead] if self.lead else []), *self.table])


def render_console(reply: Reply, now: datetime, width: int | None = None) -> ConsoleText:
    """The chat core's reply for the console; tables fitted to `width` when given.

    Its note (the defaults it used) comes last, on a line of its own.
    """
    said = _console_body(reply, now, width)
    return dataclasses.replace(said, table=(*said.table, reply.note)) if reply.note else said


def _console_body(reply: Reply, now: datetime, width: int | None) -> ConsoleText:
    if reply.question is not None:
        if reply.question.approval:
            return ConsoleText(
                "This needs someone else's approval: in Slack, a button for them to press."
            )
        return ConsoleText("This needs a confirmation: in Slack, a button only you can press.")
    if reply.refusal is not None:
        said = reply.refusal.sentence(lambda user: user, lambda channel: channel or "here")
        return ConsoleText(said, emoji=":no_entry:")
    if reply.error is not None:
        return ConsoleText(_error(reply.error), emoji=":warning:")
    if reply.outcome is not None:
        outcome = reply.outcome
        shape = reply.request.as_json if reply.request is not None else None
        if shape:
            lines = "\n".join(shape.lines(outcome.facts(), indent=2))
            return ConsoleText("", tuple(lines.split("\n")))
        return console_said(outcome.said(now), width)
    if reply.notice:
        return ConsoleText(reply.notice, emoji=NOTICE_EMOJI.get(reply.status, ""))
    return ConsoleText(reply.text)


def console_said(said: Said, width: int | None = None) -> ConsoleText:
    """What an outcome says, for the console: its lead with its tone's mark, then the choices
    it leaves and its hints in chat's words; a table (fitted to `width` when given) on lines
    of its own, under its lead (or its caption)."""
    lead = spoken(said.lead, plain_name)
    # What to do next, as Slack says it in its small print: the choices, then the hints.
    after = [*said.chat_hints()]
    if said.choices:
        after.insert(
            0, "Say " + "; ".join(f"`{c.command}` to {c.what}" for c in said.choices) + "."
        )
    table = said.table
    if table is not None and table.rows:
        caption = lead or (f"{table.caption}:" if table.caption else "")
        lines = aligned(text_table(table, plain_name, plain_brief), width)
        return ConsoleText(caption, (*lines, *after))
    return ConsoleText("\n".join([lead, *after]), emoji=TONE_EMOJI.get(said.tone, ""))


def render_text(reply: Reply, now: datetime) -> str:
    """The chat core's reply as lines of text."""
    return render_console(reply, now).text()


def render_news_console(news: News) -> ConsoleText:
    """What became of a followed deployment."""
    if news.stopped:
        said = sentences.stopped_sentence(news.stack, news.what, news.doing)
        return ConsoleText(said, emoji=":eyes:")
    if news.error is not None:
        return ConsoleText(_error(news.error), emoji=":warning:")
    assert news.progress is not None
    said = sentences.progress_sentence(news.stack, news.progress, news.what, news.doing)
    if news.progress.finished and news.progress.state == "failed":
        if news.stack.dashboard_url:
            said += f"\nSee it in Cloud 66: {news.stack.dashboard_url}"
        steps = sentences.after_failure(news.stack, news.doing)
        if steps:
            said += "\nNext: " + "; ".join(f"`{words}` to {why}" for words, why in steps) + "."
    return ConsoleText(said, emoji=progress_emoji(news.progress))


def render_news_text(news: News) -> str:
    """What became of a followed deployment, as a line of text."""
    return render_news_console(news).text()


def _error(error: IgorError) -> str:
    if isinstance(error, NotRegistered) and error.remedy is Remedy.REGISTER_CLOUD66:
        return f"Error: {error.message}\n{HOW_TO_REGISTER}"  # not the shell's "add --sandbox"
    return f"Error: {error.message}" + (f"\n{error.hint}" if error.hint else "")
