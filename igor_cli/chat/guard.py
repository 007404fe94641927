"""Guard rails for the bot: who may run what where, and signed confirmations.

Rules live in the config file under `[slack]` and are keyed on Slack IDs, never
on display names (anyone can change theirs). With no rules, everything is
allowed; once any rule exists, whatever no rule allows is refused. A pending
confirmation travels in the button's value, signed and with an expiry, so any
replica can act on the click and the bot keeps no state of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from igor_cli.errors import IgorError, UsageProblem
from igor_cli.identity import Person

RULE_KEYS = ("commands", "environments", "channels", "users")
ANY = "*"
CONFIRM_SECONDS = 60.0


class RulesError(UsageProblem):
    """The `[slack]` section of the config file is not what igor expects."""


@dataclass(frozen=True)
class Rule:
    """One `[[slack.allow]]` table: every listed field must match (missing = any)."""

    number: int
    commands: frozenset[str] | None = None
    environments: frozenset[str] | None = None
    channels: frozenset[str] | None = None
    users: frozenset[str] | None = None

    def describe(self) -> str:
        """`rule 2 (deploy, cancel in production; channels C1; users U1, U2)`."""
        parts = []
        for key in RULE_KEYS:
            values = getattr(self, key)
            if values is not None:
                parts.append(f"{key} {', '.join(sorted(values))}")
        return f"rule {self.number} ({'; '.join(parts) or 'anything'})"

    def allows(self, command: str, environment: str | None, channel: str, user: str) -> bool:
        """Whether this rule lets that user run that command there."""
        return (
            _match(self.commands, command)
            and _match(self.channels, channel)
            and _match(self.users, user)
            and (self.environments is None or _match(self.environments, environment or ""))
        )


def _match(allowed: frozenset[str] | None, value: str) -> bool:
    if allowed is None or ANY in allowed:
        return True
    return any(name.casefold() == value.casefold() for name in allowed)


@dataclass(frozen=True)
class Refusal:
    """Why a command was refused: the facts, worded by `sentence`."""

    command: str
    environment: str | None
    channel: str
    user: str
    rules: tuple[str, ...] = ()
    only_in: tuple[str, ...] = ()  # allowed there if the environment were named

    def sentence(
        self,
        person: Callable[[str], str] = lambda user: f"<@{user}>",
        place: Callable[[str], str] = lambda channel: f"<#{channel}>",
    ) -> str:
        """Why, in words; `person` and `place` say how to name a user and a channel."""
        if self.only_in:
            return (
                f"`{self.command}` is allowed for you here only in {', '.join(self.only_in)}: "
                "name the environment with -e."
            )
        where = f" in {self.environment}" if self.environment else ""
        return (
            f"No rule allows {person(self.user)} to run `{self.command}`{where} in "
            f"{place(self.channel)}. Rules in force: {'; '.join(self.rules)}."
        )


@dataclass(frozen=True)
class Rules:
    """The authorisation rules and the environments that need a confirmation."""

    allow: tuple[Rule, ...] = ()
    confirm: frozenset[str] = frozenset()
    confirm_seconds: float = CONFIRM_SECONDS
    approve: frozenset[str] = frozenset()  # environments where someone else must approve
    approvers: frozenset[str] = frozenset()  # who may approve (empty: anyone but the requester)
    notify: str = ""  # a channel told of deployments that bypass igor during a lock or freeze
    # Slack teams whose people count as members besides the workspace igor is installed in
    # (Slack Connect partners named on purpose); nobody else's command or click counts.
    allow_teams: frozenset[str] = frozenset()

    @property
    def configured(self) -> bool:
        """Any rule at all turns on fail-closed checking."""
        return bool(self.allow)

    def check(
        self, command: str, environment: str | None, channel: str, user: str
    ) -> Refusal | None:
        """None when allowed; otherwise why not (fail closed once rules exist)."""
        if not self.configured:
            return None
        command = command.casefold()
        if any(r.allows(command, environment, channel, user) for r in self.allow):
            return None
        if environment is None:
            envs = sorted(
                {
                    env
                    for rule in self.allow
                    for env in rule.environments or ()
                    if rule.allows(command, env, channel, user)
                }
            )
            if envs:
                return Refusal(command, environment, channel, user, only_in=tuple(envs))
        rules = tuple(r.describe() for r in self.allow)
        return Refusal(command, environment, channel, user, rules=rules)

    def could_allow(self, command: str, channel: str, user: str) -> bool:
        """Whether some rule lets that user run that command here, in some environment."""
        if not self.configured:
            return True
        command = command.casefold()
        return any(
            _match(r.commands, command) and _match(r.channels, channel) and _match(r.users, user)
            for r in self.allow
        )

    @property
    def asks(self) -> bool:
        """Whether a change anywhere waits for a click (a confirmation or an approval)."""
        return bool(self.confirm or self.approve)

    def needs_confirmation(self, environment: str) -> bool:
        """Whether a change to a stack in this (resolved) environment waits for a click.

        Names compare as `allow` compares them: in any case.
        """
        return environment.casefold() in self.confirm

    def needs_approval(self, environment: str) -> bool:
        """Whether a change to a stack in this (resolved) environment waits for a click from
        someone other than the requester (it replaces the requester's own confirmation)."""
        return environment.casefold() in self.approve

    def may_approve(self, user: str, requester: str) -> bool:
        """Whether this person may approve that requester's change (Slack user IDs: an
        approval is a click, and only Slack has buttons); never the requester themself."""
        if Person.in_slack(user).same_person(Person.in_slack(requester)):
            return False
        return not self.approvers or user in self.approvers

    def summary(self) -> list[str]:
        """The rules in force, one line each (for `igor doctor` and the log)."""
        teams = (
            [f"people of teams {', '.join(sorted(self.allow_teams))} count as members too"]
            if self.allow_teams
            else []
        )
        if not self.configured and not self.confirm and not self.approve:
            return ["no rules: every member may run every command everywhere", *teams]
        lines = [r.describe() for r in self.allow]
        if self.confirm:
            lines.append(
                f"confirm in {', '.join(sorted(self.confirm))} "
                f"(expires after {self.confirm_seconds:g} s)"
            )
        if self.approve:
            who = ", ".join(sorted(self.approvers)) or "anyone but the requester"
            lines.append(f"approval in {', '.join(sorted(self.approve))} by {who}")
        return [*lines, *teams]


def rules_from_config(config: Mapping[str, Any], path: str = "the config file") -> Rules:
    """Read `[slack]`; anything malformed is a RulesError naming the place."""
    slack = config.get("slack", {})
    if not isinstance(slack, Mapping):
        raise RulesError(f"{path}: [slack] must be a table.")
    # [[slack.channel]] holds a channel's default target (targets.py), not a rule.
    known = ("allow", "confirm", "confirm_seconds", "channel", "approve", "approvers", "notify",
             "allow_teams")  # fmt: skip
    unknown = set(slack) - set(known)
    if unknown:
        raise RulesError(
            f"{path}: unknown key(s) in [slack]: {', '.join(sorted(unknown))}.",
            f"Known keys: {', '.join(known)}.",
        )
    allow = slack.get("allow", [])
    if not isinstance(allow, list):
        raise RulesError(f"{path}: slack.allow must be an array of tables ([[slack.allow]]).")
    rules = tuple(_rule(entry, number, path) for number, entry in enumerate(allow, start=1))
    confirm = [
        name.casefold() for name in _names(slack.get("confirm", []), f"{path}: slack.confirm")
    ]
    seconds = slack.get("confirm_seconds", CONFIRM_SECONDS)
    if (
        not isinstance(seconds, (int, float))
        or isinstance(seconds, bool)
        or not 5 <= seconds <= 900
    ):
        raise RulesError(f"{path}: slack.confirm_seconds must be a number from 5 to 900.")
    approve = [
        name.casefold() for name in _names(slack.get("approve", []), f"{path}: slack.approve")
    ]
    approvers = _names(slack.get("approvers", []), f"{path}: slack.approvers")
    _check_ids(approvers, "users", f"{path}: slack.approvers")
    notify = _names(slack.get("notify", []), f"{path}: slack.notify")
    _check_ids(notify, "channels", f"{path}: slack.notify")
    if len(notify) > 1:
        raise RulesError(f"{path}: slack.notify names one channel.")
    teams = _names(slack.get("allow_teams", []), f"{path}: slack.allow_teams")
    _check_ids(teams, "teams", f"{path}: slack.allow_teams")
    return Rules(
        rules, frozenset(confirm), float(seconds), frozenset(approve), frozenset(approvers),
        notify[0] if notify else "", frozenset(teams),
    )  # fmt: skip


def bot_rules(config: Mapping[str, Any], path: str, signer: Signer | None) -> Rules:
    """`rules_from_config`, for a bot that signs its buttons with `signer` (None: no key):
    a RulesError when the rules ask for clicks it could not sign (fail closed)."""
    rules = rules_from_config(config, path)
    if (rules.confirm or rules.approve) and signer is None:
        raise RulesError(
            "Confirmations are configured (slack.confirm or slack.approve) but there is no "
            "signing key.",
            "Run `igor register --slack` to create one, or set IGOR_SIGNING_KEY "
            "(the same value on every replica).",
        )
    return rules


def _rule(entry: Any, number: int, path: str) -> Rule:
    where = f"{path}: rule {number} of [[slack.allow]]"
    if not isinstance(entry, Mapping):
        raise RulesError(f"{where} must be a table.")
    unknown = set(entry) - set(RULE_KEYS)
    if unknown:
        raise RulesError(
            f"{where} has unknown key(s): {', '.join(sorted(unknown))}.",
            f"Known keys: {', '.join(RULE_KEYS)}.",
        )
    if not entry:
        raise RulesError(f"{where} is empty; say what it allows, or remove it.")
    fields: dict[str, frozenset[str]] = {}
    for key in RULE_KEYS:
        if key in entry:
            names = _names(entry[key], f"{where}: {key}")
            if key in ("channels", "users"):
                _check_ids(names, key, where)
            fields[key] = frozenset(names)
    return Rule(number, **fields)


def _names(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RulesError(f"{where} must be a list of names.")
    return [v.strip() for v in value]


def _check_ids(names: list[str], key: str, where: str) -> None:
    # Slack IDs: U/W for users, C/G/D for channels, T (a workspace) or E (an Enterprise
    # Grid organisation) for teams. Display names can be changed by anyone, so they are
    # refused rather than silently never matching; a team is named, never `*`.
    prefixes = {"users": ("U", "W"), "teams": ("T", "E")}.get(key, ("C", "G", "D"))
    bad = [
        n for n in names
        if (n == ANY and key == "teams")
        or (n != ANY and not (n[:1] in prefixes and n.isalnum() and n.isupper()))
    ]  # fmt: skip
    if bad:
        kind = {"users": "user IDs (U…)", "teams": "team IDs (T… or E…)"}.get(
            key, "channel IDs (C…)"
        )
        raise RulesError(
            f"{where}: {', '.join(bad)} are not Slack {kind}.",
            "Use IDs, not names: in Slack, open the profile or channel details to copy the ID.",
        )


# -- confirmations ------------------------------------------------------------


class BadConfirmation(IgorError):
    """A button value that was forged, altered, or is too old."""


class ConfirmationExpired(BadConfirmation):
    """A genuine button value whose time is up (`pending`: what it was for)."""

    def __init__(self, pending: PendingCommand) -> None:
        super().__init__("That confirmation has expired.", "Ask again.")
        self.pending = pending


@dataclass(frozen=True)
class PendingCommand:
    """A command waiting for its requester's click, and the stack it was resolved to."""

    words: list[str]
    user: str
    channel: str
    thread: str
    request_id: str
    expires: float
    stack_uid: str = ""  # the confirmed command must still mean this stack
    approval: bool = False  # someone other than `user` must click (not `user` themself)
    expect: str = ""  # what the question named it would deploy (rollback, promote)
    # Offered to whoever the rules let run it (the Cancel button on a deployment that
    # bypassed igor), not a question for `user`: the click runs it as the clicker.
    offered: bool = False
    # What was signed (SHA-256 of it, set by `Signer.verify`): a used-once record is keyed
    # on it, so no other spelling of one value can be used again.
    digest: str = field(default="", compare=False)

    @property
    def person(self) -> Person:
        """Who asked: a button is clicked in Slack, the only chat with buttons (the
        console asks no confirmations)."""
        return Person.in_slack(self.user)


class Signer:
    """HMAC-SHA256 over the pending command, so a button value cannot be forged."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, pending: PendingCommand) -> str:
        """The button value (well under Slack's 2,000 characters for a command)."""
        body = json.dumps(
            {"w": pending.words, "u": pending.user, "c": pending.channel, "t": pending.thread,
             "r": pending.request_id, "e": round(pending.expires, 3), "s": pending.stack_uid,
             "a": int(pending.approval), "x": pending.expect, "o": int(pending.offered)},
            separators=(",", ":"), ensure_ascii=False,
        ).encode()  # fmt: skip
        mac = hmac.new(self._key, body, hashlib.sha256).digest()
        return _b64(body) + "." + _b64(mac)

    def verify(self, value: str, now: float) -> PendingCommand:
        """The pending command, if the value is ours, unaltered and not expired."""
        try:
            body_text, mac_text = value.split(".", 1)
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            raise BadConfirmation("That confirmation is not one igor made.") from None
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()):
            raise BadConfirmation("That confirmation is not one igor made (bad signature).")
        # One value has one spelling: base64 decoders take padding, `+` and `/`, even
        # other characters, and such a spelling must not pass for a fresh button.
        if value != _b64(body) + "." + _b64(mac):
            raise BadConfirmation("That confirmation is not one igor made (altered).")
        data = json.loads(body)
        pending = PendingCommand(
            words=list(data["w"]), user=data["u"], channel=data["c"], thread=data["t"],
            request_id=data["r"], expires=float(data["e"]), stack_uid=str(data.get("s", "")),
            approval=bool(data.get("a", 0)),
            expect=str(data.get("x", "")), offered=bool(data.get("o", 0)),
            digest=hashlib.sha256(body).hexdigest(),
        )  # fmt: skip
        if now > pending.expires:
            raise ConfirmationExpired(pending)
        return pending


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError("not base64") from None
