"""Replies as plain text, for the local chat console (`igor chat`).

The console is a peer of the Slack adapter: it renders the chat core's neutral
replies and follow-up news itself, in the shell's words, without Block Kit.
"""

from __future__ import annotations

import json
from datetime import datetime

from igor_cli.actions import History, StackList
from igor_cli.chat.bridge import Reply
from igor_cli.chat.follow import News
from igor_cli.errors import IgorError
from igor_cli.render import sentences


def render_text(reply: Reply, now: datetime) -> str:
    """The chat core's reply as lines of text."""
    if reply.question is not None:
        if reply.question.approval:
            return "This needs someone else's approval: in Slack, a button for them to press."
        return "This needs a confirmation: in Slack, a button only you can press."
    if reply.refusal is not None:
        return reply.refusal.sentence(lambda user: user, lambda channel: channel or "here")
    if reply.error is not None:
        return _error(reply.error)
    if reply.outcome is not None:
        outcome = reply.outcome
        if getattr(reply.request, "as_json", False):
            return json.dumps(sentences.facts(outcome), indent=2)
        if isinstance(outcome, StackList) and outcome.stacks:  # the one table
            rows = sentences.stack_rows(outcome.stacks, now, outcome.running)
            return "\n".join(sentences.aligned(rows))
        if isinstance(outcome, History) and outcome.deployments:
            rows = sentences.history_rows(outcome, sentences.plain_person, now)
            return "\n".join([sentences.history_summary(outcome), *sentences.aligned(rows)])
        return sentences.sentence(outcome, sentences.plain_person, now)
    return reply.notice or reply.text


def render_news_text(news: News) -> str:
    """What became of a followed deployment, as a line of text."""
    if news.stopped:
        return sentences.stopped_sentence(news.stack)
    if news.error is not None:
        return _error(news.error)
    assert news.progress is not None
    return sentences.progress_sentence(news.stack, news.progress)


def _error(error: IgorError) -> str:
    return f"Error: {error.message}" + (f"\n{error.hint}" if error.hint else "")
