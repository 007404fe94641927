"""Outcomes to Slack: Block Kit with a plain-text fallback.

The facts and sentences are the terminal's (each outcome's own, and
`render/sentences.py`); here they get mrkdwn, mentions, and the limits of Block
Kit (50 blocks a message, 3,000 characters a text block), so a long stack list
never becomes a Slack error.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from igor_cli.chat.bridge import Reply
from igor_cli.chat.follow import News
from igor_cli.chat.guard import Refusal
from igor_cli.cloud66.models import Stack
from igor_cli.core.follow import Progress
from igor_cli.core.request import Change, Outcome
from igor_cli.errors import Forbidden, IgorError, NotRegistered, Remedy
from igor_cli.identity import Person, PersonNamer
from igor_cli.render import sentences
from igor_cli.render.said import Said, plain_name, spoken
from igor_cli.render.table import aligned, text_table

if TYPE_CHECKING:
    from igor_cli.chat.bypass import Bypass
    from igor_cli.json_output import JsonOutput
    from igor_cli.state.locks import ForcedUnlock

TEXT_LIMIT = 2900  # a section's text may hold 3,000 characters
MAX_BLOCKS = 45  # a message may hold 50 blocks; leave room for a footer
MAX_LIST_ROWS = 100  # more is no longer readable in a chat thread
CANNOT_REACH_CLOUD66 = "I can't reach Cloud 66 with the stored token; run `igor register`."
CLOUD66_UNREGISTERED = (
    "No Cloud 66 token is set. Whoever runs igor can store one with `igor register`; "
    "no restart is needed."
)


@dataclass(frozen=True)
class SlackMessage:
    """What to post: the fallback text (notifications, screen readers) and the blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# igor's own mentions are written as markers (private-use characters, which
# chat text normalisation removes from what people type), so that escaping
# the whole sentence cannot leave a mention that a user smuggled in. Text that
# never passed that normalisation (a lock's reason typed in a shell, a stack's
# name from Cloud 66) may hold the characters too: a marker also carries this
# process's own random key, which no such text can know, so it stays text.
_OPEN, _CLOSE = "\ue000", "\ue001"
_KEY = os.urandom(8).hex()
_MARKER = re.compile(_OPEN + _KEY + r"([@#])([A-Z0-9]+)" + _CLOSE)


def mention(user: str) -> str:
    """A mention of a Slack user, for `mrkdwn` to make live."""
    return f"{_OPEN}{_KEY}@{user}{_CLOSE}"


def channel_link(channel: str) -> str:
    """A link to a Slack channel, for `mrkdwn` to make live."""
    return f"{_OPEN}{_KEY}#{channel}{_CLOSE}"


def mrkdwn(text: str) -> str:
    """Plain text as mrkdwn: everything escaped but igor's own mentions (any other marker
    is dropped, and what it held stays plain text)."""
    return _MARKER.sub(r"<\1\2>", escape(text)).replace(_OPEN, "").replace(_CLOSE, "")


def slack_person(requester: Person) -> str:
    """A Slack requester is mentioned; a shell user is named."""
    if requester.slack_id:
        return mention(requester.slack_id)
    return f"{requester.id or 'someone'} (from a shell)"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def _code(text: str) -> str:
    return "```" + text.replace("```", "'''") + "```"


def message(text: str, hint: str = "", emoji: str = "") -> SlackMessage:
    """A short reply; `text` and `hint` are mrkdwn (see `mrkdwn`).

    The fallback text stays escaped too: Slack reads it as mrkdwn in
    notifications, where an unescaped `<!channel>` would ping everyone.
    """
    text = _cut(text, TEXT_LIMIT)
    blocks = [_section(f"{emoji} {text}".strip())]
    if hint:
        blocks.append(_context(_cut(hint, TEXT_LIMIT)))
    return SlackMessage(text, blocks)


def preformatted(text: str) -> SlackMessage:
    """Help and usage text, as the shell shows it, in code blocks that fit."""
    chunks = _chunks([escape(line) for line in text.splitlines()], TEXT_LIMIT - 6)
    blocks = [_section(_code(chunk)) for chunk in chunks[:MAX_BLOCKS]]
    return SlackMessage(_cut(escape(text), TEXT_LIMIT), blocks)


Names = Callable[[str], str]  # a Slack user ID -> the name Slack shows (chat/slack/users.py)


def named_by(names: Names | None) -> PersonNamer:
    """How a table or an error names people: a Slack user by the name Slack shows them
    under (a mention does not work there), anyone else as the shell names them."""

    def person(requester: Person) -> str:
        if requester.slack_id and names is not None:
            return names(requester.slack_id)
        return plain_name(requester)

    return person


def render_outcome(
    outcome: Outcome,
    now: datetime,
    *,
    as_json: JsonOutput | None = None,
    names: Names | None = None,
) -> SlackMessage:
    """The reply to a command: its facts as JSON (`as_json`), else what it says; `names`
    names Slack users where mentions cannot."""
    if as_json:
        return preformatted("\n".join(as_json.lines(outcome.facts(), indent=2)))
    return render_said(outcome.said(now), names)


def render_said(said: Said, names: Names | None = None) -> SlackMessage:
    """What an outcome says, as Slack shows it: its lead with its tone's emoji and its hints
    in the small print; a table in code blocks that fit, under its lead.

    A table with no rows is said by its lead (found nothing: `:mag:`). A table that says
    how to narrow it shows a screenful of rows, then how many more and how; people in it
    are named as Slack shows them (mentions do not work in code blocks).
    """
    lead = mrkdwn(spoken(said.lead, slack_person))
    table = said.table
    if table is None:
        return message(lead, _hint(said), TONE_EMOJI[said.tone])
    if not table.rows:
        return message(lead, _hint(said), ":mag:")
    named = named_by(names)

    def brief(person: Person) -> str:
        return person.short_name if person.local else named(person)

    shown = table.rows[:MAX_LIST_ROWS] if table.narrow else table.rows
    laid = text_table(replace(table, rows=shown), named, brief)
    chunks = _chunks([escape(line) for line in aligned(laid)], TEXT_LIMIT - 6)
    blocks = [_section(lead)] if lead else []
    blocks += [_section(_code(chunk)) for chunk in chunks[:MAX_BLOCKS]]
    hidden = len(table.rows) - (sum(chunk.count("\n") + 1 for chunk in chunks[:MAX_BLOCKS]) - 1)
    if hidden > 0:
        blocks.append(_context(f"…and {hidden} more. {table.narrow}".strip()))
    hint = _hint(said)
    if hint:
        blocks.append(_context(_cut(hint, TEXT_LIMIT)))
    fallback = lead or escape(table.caption)
    if not lead and table.names:
        fallback += escape(": " + ", ".join(table.names[:20]))
        fallback += ", …" if len(table.names) > 20 else ""
    return SlackMessage(_cut(fallback, TEXT_LIMIT), blocks)


TONE_EMOJI = {
    "started": ":rocket:",
    "queued": ":hourglass_flowing_sand:",
    "stopping": ":octagonal_sign:",
    "info": ":information_source:",
    "refused": ":no_entry_sign:",
    "dry-run": ":mag:",
    "locked": ":lock:",
    "unlocked": ":unlock:",
    "plain": "",
}


def _hint(said: Said) -> str:
    """What to do next, in the reply's small print (mrkdwn), when there is something: the
    choices it leaves, and its hints in chat's words."""
    parts = [escape(hint) for hint in said.chat_hints()]
    if said.choices:
        choices = "; ".join(f"`{escape(c.command)}` to {c.what}" for c in said.choices)
        parts.insert(0, f"Say {choices}.")
    return " ".join(parts)


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters of escaped text, never half an entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def _chunks(lines: list[str], limit: int) -> list[str]:
    """Escaped lines grouped into blocks of at most `limit` characters."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for whole in lines:
        line = _cut(whole, limit)
        if current and size + len(line) + 1 > limit:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks


def render_error(error: IgorError, names: Names | None = None) -> SlackMessage:
    """An expected failure. A token problem names the fix that needs no restart; a lock's
    holder in Slack is named as Slack shows them."""
    from igor_cli.state.locks import StackLocked

    if isinstance(error, StackLocked) and names is not None:
        said = error.said(named_by(names)(error.lock.holder))
        return message(mrkdwn(said), mrkdwn(error.hint), ":warning:")
    if isinstance(error, NotRegistered) and error.remedy is Remedy.REGISTER_CLOUD66:
        return message(mrkdwn(CLOUD66_UNREGISTERED), emoji=":key:")  # not "the stored token"
    if error.remedy is Remedy.REGISTER_CLOUD66 and not isinstance(error, Forbidden):
        return message(mrkdwn(CANNOT_REACH_CLOUD66), emoji=":key:")
    remedy = CHAT_REMEDY[error.remedy] if error.remedy is not None else ""
    hint = " ".join(words for words in (error.hint, remedy) if words)
    return message(mrkdwn(error.message), mrkdwn(hint), ":warning:")


# What a person in chat can do: ask whoever runs igor, who stores a new token.
CHAT_REMEDY = {
    Remedy.REGISTER_CLOUD66: "Whoever runs igor can store a new one with `igor register`; "
    "no restart is needed.",
    Remedy.REGISTER_SLACK: "Whoever runs igor can store new ones with `igor register --slack`.",
}


NOTICE_EMOJI = {"refused": ":no_entry:", "usage": ":warning:", "failed": ":x:"}


def render_reply(reply: Reply, now: datetime, names: Names | None = None) -> SlackMessage:
    """The chat core's reply as Slack shows it, and its note (the defaults used) below;
    `names` names Slack users where a mention cannot (tables, errors)."""
    shown = _reply_body(reply, now, names)
    if reply.note:
        note = mrkdwn(reply.note)
        blocks = [*shown.blocks, _context(note)] if len(shown.blocks) < MAX_BLOCKS else shown.blocks
        return SlackMessage(_cut(f"{shown.text}\n{note}", TEXT_LIMIT), blocks)
    return shown


def _reply_body(reply: Reply, now: datetime, names: Names | None) -> SlackMessage:
    if reply.question is not None:
        asked = reply.question
        words = asked.request.question(asked.stack, literal)
        question, confirm, decline = words.question, words.confirm, words.decline
        warning = _question_warning(asked.request, asked.stack, asked.glass)
        if asked.approval:
            return render_approval(
                question, asked.value, asked.user, asked.seconds, asked.approvers, warning
            )
        return render_confirmation(
            question, confirm, decline, asked.value, asked.user, asked.seconds, warning
        )
    if reply.refusal is not None:
        return render_refusal(reply.refusal)
    if reply.error is not None:
        return render_error(reply.error, names)
    if reply.outcome is not None:
        as_json = reply.request.as_json if reply.request is not None else None
        return render_outcome(reply.outcome, now, as_json=as_json, names=names)
    if reply.notice:
        return message(mrkdwn(reply.notice), emoji=NOTICE_EMOJI.get(reply.status, ""))
    return preformatted(reply.text)


def render_refusal(refusal: Refusal) -> SlackMessage:
    """Why a command was refused (shown to the requester only)."""
    return message(mrkdwn(refusal.sentence(mention, channel_link)), emoji=":no_entry:")


CONFIRM_ACTION = "igor_confirm"
DECLINE_ACTION = "igor_decline"


def literal(text: str) -> str:
    """A value in a question, escaped for mrkdwn, each character outside printable ASCII
    written as its code (`m\\u0430in`): what is approved is what it reads, letter for letter
    (a Cyrillic a in `main` does not pass for a Latin one)."""
    shown = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode() for c in text)
    return escape(shown)


def _question_warning(request: Change, stack: Stack, glass: str) -> str:
    """What a question must say beyond what it asks (mrkdwn): the glass of a freeze it
    would break, and that some of its values are written as codes."""
    said = []
    if glass:
        why = f" The reason given: {mrkdwn(request.reason)}." if request.reason else ""
        said.append(f":rotating_light: This breaks the glass of a freeze: {mrkdwn(glass)}.{why}")
    values = [
        stack.name,
        stack.environment,
        request.reason,
        request.expect,
        *(str(getattr(request, name, "")) for name in ("ref", "profile", "source")),
    ]
    values += list(getattr(request, "services", ()))
    if any(not value.isascii() or not value.isprintable() for value in values if value):
        said.append("Characters outside ASCII are written as their codes (\\u…).")
    return " ".join(said)


def render_confirmation(
    question: str,
    confirm_label: str,
    decline_label: str,
    value: str,
    user: str,
    seconds: float,
    warning: str = "",
) -> SlackMessage:
    """A question with two buttons carrying the signed pending command.

    `question` and `warning` (what else it must say) are mrkdwn, escaped by the caller.
    """
    text = f"{mrkdwn(mention(user))}, {question} Only you can answer, within {seconds:g} seconds."
    text += f" {warning}" if warning else ""
    buttons = [
        {"type": "button", "action_id": CONFIRM_ACTION, "style": "primary",
         "text": {"type": "plain_text", "text": confirm_label}, "value": value},
        {"type": "button", "action_id": DECLINE_ACTION,
         "text": {"type": "plain_text", "text": decline_label}, "value": value},
    ]  # fmt: skip
    blocks = [_section(f":raised_hand: {text}"), {"type": "actions", "elements": buttons}]
    return SlackMessage(text, blocks)


def render_approval(
    question: str,
    value: str,
    user: str,
    seconds: float,
    approvers: tuple[str, ...],
    warning: str = "",
) -> SlackMessage:
    """A change waiting for someone other than its requester: Approve and Reject buttons.

    `question` is mrkdwn, as the change's `question` words it; `warning` what else it says.
    """
    who = (
        " or ".join(mrkdwn(mention(approver)) for approver in approvers)
        if approvers
        else "someone other than them"
    )
    text = (
        f"{mrkdwn(mention(user))} asks to {question.removesuffix('?')}. "
        f"This needs approval by {who}, within {seconds:g} seconds."
    )
    text += f" {warning}" if warning else ""
    buttons = [
        {"type": "button", "action_id": CONFIRM_ACTION, "style": "primary",
         "text": {"type": "plain_text", "text": "Approve"}, "value": value},
        {"type": "button", "action_id": DECLINE_ACTION,
         "text": {"type": "plain_text", "text": "Reject"}, "value": value},
    ]  # fmt: skip
    blocks = [_section(f":busts_in_silhouette: {text}"), {"type": "actions", "elements": buttons}]
    return SlackMessage(text, blocks)


CANCEL_OFFER_ACTION = "igor_cancel_offer"


def render_bypass(bypass: Bypass, value: str) -> SlackMessage:
    """A deployment started outside igor while its stack is held, with a Cancel button
    (`value`: the signed offer) for those the rules let cancel; without a signing key,
    the command that cancels it."""
    command = f"`{escape(shlex.join(bypass.cancel_words()))}`"  # typed back as it reads
    text = mrkdwn(bypass.sentence(slack_person))
    if not value:
        text = f"{text} Cancel it with {command}."
        return message(text, emoji=":warning:")
    text = f"{text} Whoever may cancel it can press Cancel (or type {command})."
    button = {
        "type": "button", "action_id": CANCEL_OFFER_ACTION, "style": "danger",
        "text": {"type": "plain_text", "text": f"Cancel deployment {bypass.deployment.id}"[:75]},
        "value": value,
    }  # fmt: skip
    blocks = [_section(f":warning: {text}"), {"type": "actions", "elements": [button]}]
    return SlackMessage(text, blocks)


def render_forced_unlock(notice: ForcedUnlock, *, name_holder: bool = True) -> SlackMessage:
    """A lock's holder told that someone else forced it open (in the thread they locked it
    in); `name_holder` False where a reply has mentioned them already."""
    lock = notice.lock
    by = slack_person(notice.by)
    why = f": {notice.reason}" if notice.reason else " (no reason given)"
    whose = f"{mention(lock.holder.id)}, your lock" if name_holder else "The lock"
    text = (
        f"{whose} on {lock.label}, taken {sentences.ago(lock.started, notice.at)}, was "
        f"forced open by {by} at {notice.at:%H:%M UTC}{why}. Others' changes to it are no "
        "longer held back."
    )
    return message(mrkdwn(text), emoji=":unlock:")


def without_buttons(shown: dict[str, Any], note: str) -> SlackMessage:
    """A posted message as Slack shows it, its buttons replaced by `note` (mrkdwn)."""
    blocks = [b for b in shown.get("blocks") or [] if b.get("type") != "actions"]
    return SlackMessage(str(shown.get("text", "")), [*blocks, _context(note)])


def has_buttons(message: dict[str, Any]) -> bool:
    """Whether a posted message still shows igor's confirmation buttons."""
    return any(block.get("type") == "actions" for block in message.get("blocks") or [])


def render_progress(
    stack: Stack, progress: Progress, requesters: list[str], what: str = "", doing: str = ""
) -> SlackMessage:
    """Progress of a followed deployment (or stack action, `doing`); the final one mentions
    who asked."""
    if not progress.last:
        step = mrkdwn(sentences.progress_step(stack, progress, doing))
        return message(step, emoji=progress_emoji(progress))
    text = mrkdwn(sentences.progress_sentence(stack, progress, what, doing))
    mentions = " ".join(mrkdwn(mention(user)) for user in dict.fromkeys(requesters))
    said = f"{mentions} {text}".strip()
    return message(said, _after_failure(stack, progress, doing), progress_emoji(progress))


def _after_failure(stack: Stack, progress: Progress, doing: str = "") -> str:
    """After a failed deployment: the stack in the Cloud 66 dashboard, and what to ask next."""
    if progress.state != "failed" or not progress.finished:
        return ""
    steps = "; ".join(
        f"`{escape(words)}` to {why}" for words, why in sentences.after_failure(stack, doing)
    )
    link = (
        f"<{escape(stack.dashboard_url)}|Open {escape(stack.label)} in Cloud 66>. "
        if stack.dashboard_url
        else ""
    )
    return f"{link}Next: {steps}." if steps else link.strip()


def progress_emoji(progress: Progress) -> str:
    """How a followed deployment went, as an emoji code."""
    if not progress.last:
        return ":hourglass_flowing_sand:"
    if progress.timed_out:
        return ":hourglass:"
    if progress.cancelled:
        return ":octagonal_sign:"
    return ":white_check_mark:" if progress.success else ":x:"


def render_news(news: News) -> SlackMessage:
    """What became of a followed deployment (the final news mentions who asked)."""
    if news.stopped:
        return render_stopped(news.stack, news.what, news.doing)
    if news.error is not None:
        return render_error(news.error)
    assert news.progress is not None
    return render_progress(news.stack, news.progress, list(news.requesters), news.what, news.doing)


def render_stopped(stack: Stack, what: str = "", doing: str = "") -> SlackMessage:
    """igor stops watching (it is shutting down); the deployment goes on."""
    return message(mrkdwn(sentences.stopped_sentence(stack, what, doing)), emoji=":eyes:")
