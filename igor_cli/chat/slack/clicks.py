"""Button clicks: a confirmation's or an approval's Confirm and Decline, and the Cancel
button on a report of a deployment that bypassed igor.

A button's value is the command it stands for, signed (chat/guard.py: Signer).
Only a member's click counts (members.py); a question is decided once, by whoever
may decide it, in time; an offer to cancel runs once per deployment. A click
that counts runs its command again from its words, so every check is made anew.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from igor_cli.chat.bridge import Reply
from igor_cli.chat.guard import BadConfirmation, ConfirmationExpired, PendingCommand
from igor_cli.chat.slack.audit import audit
from igor_cli.chat.slack.delivery import Place
from igor_cli.chat.slack.dispatch import Commands
from igor_cli.chat.slack.envelope import SlackRequest
from igor_cli.chat.slack.events import RecentKeys
from igor_cli.chat.slack.questions import Questions
from igor_cli.chat.text import loggable
from igor_cli.render.slack import (
    CANCEL_OFFER_ACTION,
    CONFIRM_ACTION,
    DECLINE_ACTION,
    mention,
    message,
    mrkdwn,
    without_buttons,
)

ALREADY_ANSWERED = "That question was already answered; nothing more was done."
NOT_IGORS = "That button is not one igor made; nothing was done."


class Clicks:
    """Confirm, Decline and Cancel clicks -> a decision on the question, and the command run."""

    def __init__(self, commands: Commands, questions: Questions) -> None:
        self.commands = commands
        self.questions = questions
        self.env = commands.env
        self.bridge = commands.bridge
        self.delivery = commands.delivery
        self.decided = RecentKeys()

    def click(self, request: SlackRequest) -> None:
        """A button: only the requester's click counts, only once, only in time; and no
        click of anyone but a member (members.py)."""
        if self.commands.outsider(request, {"command": "click", "action": request.action_id}):
            return
        with self.env.one_config():  # decided on one reading of the config file
            if request.action_id == CANCEL_OFFER_ACTION:
                self._cancel(request)
            elif request.action_id in (CONFIRM_ACTION, DECLINE_ACTION):
                self._decide(request)

    def _decide(self, request: SlackRequest) -> None:
        """Confirm or Decline on a confirmation (or an approval) question."""
        user, question_ts = request.user, request.ts
        line: dict[str, Any] = {"user": user, "channel": request.channel,
                                "command": "confirmation"}  # fmt: skip
        try:
            pending = self._verify(request.value, offered=False)
        except ConfirmationExpired as late:
            self._too_late(request, late.pending, line)
            return
        except BadConfirmation:
            self.delivery.ephemeral(request.at(""), NOT_IGORS)
            audit("command", **line, outcome="refused", reason="bad signature")
            return
        place = request.at(pending.thread or question_ts)
        line["command"] = pending.words[0] if pending.words else "confirmation"
        declining = request.action_id == DECLINE_ACTION
        refused = self._not_theirs(pending, user, declining)
        if refused:
            self.delivery.ephemeral(place, refused)
            reason = "may not approve" if pending.approval else "not the requester"
            audit("command", **line, outcome="refused", reason=reason)
            return
        if not declining and self._cannot_confirm(pending, place, question_ts, line):
            return
        # A decision makes the value useless: the first one wins, whether the
        # second comes from a Slack retry, another client, or another replica
        # (which sees the question already replaced).
        key = pending.digest  # the signed content, however the value was spelled
        if (
            not self.decided.first_time(key)
            or not self.questions.decided_here(key, pending)
            or self.questions.answered_already(
                request.shown, request.channel, pending.thread, question_ts
            )
        ):
            self.delivery.ephemeral(place, ALREADY_ANSWERED)
            audit("command", **line, outcome="refused", reason="already answered")
            return
        when = self.env.clock().strftime("%H:%M UTC")
        who = mrkdwn(mention(user))
        said = ("Rejected", "Approved") if pending.approval else ("Declined", "Confirmed")
        if declining:
            declined = f":heavy_multiplication_x: {said[0]} by {who} at {when}; nothing was done."
            self.delivery.replace(place, question_ts, message(declined))
            audit("command", **line, outcome="declined", confirmation="declined",
                  confirmed_by=user)  # fmt: skip
            return
        self.delivery.replace(
            place, question_ts, message(f":white_check_mark: {said[1]} by {who} at {when}.")
        )
        # The command runs again from its words, as its requester: every check (rules,
        # the stack, busy, locked, frozen) is made anew before anything is posted.
        step = self.bridge.begin_confirmed(pending)
        typed = loggable(" ".join(pending.words))
        decided: dict[str, Any] = {"text": typed, "confirmation": "confirmed"}
        if pending.approval:
            decided.update(confirmation="approved", approved_by=user)
        self.commands.run(step, place, decided)

    def _too_late(
        self, request: SlackRequest, pending: PendingCommand, line: dict[str, Any]
    ) -> None:
        """A click on a question whose time is up. A question decided, or already said to
        have expired, keeps its words (whatever was decided): the clicker alone is told.
        One still showing its buttons (its timer has not run yet) says it expired."""
        place = request.at(pending.thread or request.ts)
        expired = ":hourglass: This request expired; nothing was done. Ask again if need be."
        if self.questions.settled(pending):
            told = ALREADY_ANSWERED
        elif self.questions.answered_already(
            request.shown, place.channel, pending.thread, request.ts
        ):
            told = expired
        else:
            self.delivery.replace(place, request.ts, message(expired))
            audit("command", **line, outcome="expired")
            return
        self.delivery.ephemeral(place, told)
        audit("command", **line, outcome="refused", reason="settled or expired")

    def _not_theirs(self, pending: PendingCommand, user: str, declining: bool) -> str:
        """Why this person's click does not count ("" when it does)."""
        requester = mrkdwn(mention(pending.user))
        if not pending.approval:
            return "" if user == pending.user else f"Only {requester} can confirm this."
        if declining and user == pending.user:
            return ""  # the requester may withdraw their own request
        if self.bridge.rules.may_approve(user, pending.user):
            return ""
        if user == pending.user:
            return "Someone else must approve your own request; you may reject it."
        approvers = " or ".join(mrkdwn(mention(a)) for a in sorted(self.bridge.rules.approvers))
        return f"Only {approvers} can approve this."

    def _cannot_confirm(
        self, pending: PendingCommand, place: Place, question_ts: str, line: dict[str, Any]
    ) -> bool:
        """While a confirmed change cannot be done (the state store), the question says so
        instead of "Confirmed", and nothing runs."""
        why = self.bridge.not_now(pending.words)
        if why:
            self.delivery.replace(place, question_ts, message(mrkdwn(why), emoji=":warning:"))
            audit("command", **line, outcome="refused", reason="state store")
        return bool(why)

    def _verify(self, value: str, *, offered: bool) -> PendingCommand:
        """The signed command in a button, if igor made it for this kind of button (a
        question's value never runs as an offer, nor an offer's as a question)."""
        if self.bridge.signer is None:
            raise BadConfirmation("This bot asks no confirmations.")
        pending = self.bridge.signer.verify(value, self.env.clock().timestamp())
        if pending.offered != offered:
            raise BadConfirmation("That button's value belongs to another button.")
        return pending

    def _cancel(self, request: SlackRequest) -> None:
        """The Cancel button on a report of a deployment that bypassed igor: whoever the
        rules let cancel there cancels exactly that deployment, once across replicas."""
        user, channel = request.user, request.channel
        line: dict[str, Any] = {"user": user, "channel": channel, "command": "cancel",
                                "via": "bypass button"}  # fmt: skip
        try:
            offer = self._verify(request.value, offered=True)
        except BadConfirmation as problem:
            expired = isinstance(problem, ConfirmationExpired)
            self.delivery.ephemeral(
                request.at(""),
                "That Cancel button has expired; nothing was done. `cancel` still works."
                if expired
                else NOT_IGORS,
            )
            audit("command", **line, outcome="refused",
                  reason="expired" if expired else "bad signature")  # fmt: skip
            return
        place = request.at(offer.thread or request.ts)
        # The click runs the offered command as the clicker, from where they clicked:
        # the rules decide now whether they may cancel on that stack and environment.
        clicked = dataclasses.replace(offer, user=user, channel=channel, thread=place.thread)
        step = self.bridge.begin_confirmed(clicked)
        fields = {"text": loggable(" ".join(offer.words)), "via": "bypass button"}
        if isinstance(step, Reply):  # refused by the rules (or unusable): nothing is claimed
            self.commands.deliver(step, place, fields)
            return
        key = "cancel:" + offer.request_id  # one click per deployment, whichever place
        if not self.decided.first_time(key) or not self.questions.decided_here(key, offer):
            self.delivery.ephemeral(
                place, "Someone already pressed Cancel on that deployment; nothing more was done."
            )
            audit("command", **line, outcome="refused", reason="already used")
            return
        when = self.env.clock().strftime("%H:%M UTC")
        note = f":octagonal_sign: {mrkdwn(mention(user))} pressed Cancel at {when}."
        shown = request.shown
        said = without_buttons(shown, note) if shown is not None else message(note)
        self.delivery.replace(place, request.ts, said)
        self.commands.run(step, place, fields)
