"""Who asks igor for something: one typed `Person`, whichever way they reached igor.

A `Person` is how they reached igor (a shell, the `igor chat` console, Slack),
their id there (`alice@laptop`, a Slack user ID) and, in Slack, their team. Locks,
break glass and the words that name people all go through it: a shell and
`igor chat` on one machine are one account, so one person (`same_person`).

An `Origin` is one request: the person, and what the `user_reference` stored at
Cloud 66 with a change needs (`igor:<via>:<user>[:<request id>]`), read back by
`Person.from_reference` so that a deployment igor made can be named by who asked.

The words `cli`, `chat` and `slack` are what igor writes in records (the
`user_reference`, the state store's locks, the audit lines, JSON output); they are
read into a `Person` at the edge, and only this module says what each one means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from igor_cli.config import Environment

IGOR_REFERENCE_PREFIX = "igor:"

# How a person reached igor, as igor writes it: a shell, `igor chat`, Slack (both of
# Slack's transports). A new way in is a new word here, and a new row in `_WAYS`.
Via = Literal["cli", "chat", "slack", "unknown"]


class _Way(NamedTuple):
    """What a way in says about the people who use it."""

    # A NamedTuple: defined at every start in a sixth of a frozen dataclass's time.
    local: bool  # an account on this machine: a shell and `igor chat` are one person
    where: str  # how igor's words say where it was asked (`igor (Slack)`)
    named: str  # how plain words name a person of it (`{}`: by their id)
    told_later: bool  # a bot can write to them afterwards (their thread, their DMs)


_WAYS: dict[Via, _Way] = {
    "cli": _Way(local=True, where="shell", named="{}", told_later=False),
    "chat": _Way(local=True, where="shell", named="{}", told_later=False),
    "slack": _Way(local=False, where="Slack", named="Slack user {}", told_later=True),
    # A record's way in that this igor does not know (a newer igor's): read, never matched,
    # so a lock it holds still refuses everyone here (a guard fails closed).
    "unknown": _Way(local=False, where="another igor", named="someone ({})", told_later=False),
}


@dataclass(frozen=True)
class Person:
    """Someone who asked igor for something (errbot's `Person`: one identity, every backend).

    `id` is who they are where they came from: `alice@laptop` (the operating
    system's account, `config.shell_user`) in a shell or the console, a Slack user
    ID in Slack. `team` is their Slack team when Slack said it ("" when unknown).
    """

    via: Via
    id: str
    team: str = ""

    @classmethod
    def in_shell(cls, account: str) -> Person:
        """`alice@laptop` in a shell (`config.shell_user`)."""
        return cls("cli", account)

    @classmethod
    def at_console(cls, account: str) -> Person:
        """`alice@laptop` in `igor chat`: the same person as in their shell."""
        return cls("chat", account)

    @classmethod
    def in_slack(cls, user: str, team: str = "") -> Person:
        """A Slack user, by ID (and team, when Slack said it)."""
        return cls("slack", user, team)

    @classmethod
    def from_words(cls, via: str, user: str, team: str = "") -> Person | None:
        """A person from the words a record keeps (`{"via": ..., "user": ...}`); None for
        a way this igor does not know."""
        known = _known(via)
        return cls(known, user, team) if known is not None else None

    @classmethod
    def of_record(cls, via: str, user: str) -> Person:
        """Who a stored record (a lock, a notice) names: a way this igor does not know is
        read as a person nobody here is (`same_person` never matches them)."""
        return cls.from_words(via, user) or cls("unknown", f"{via}:{user}")

    @classmethod
    def from_reference(cls, reference: str) -> Person | None:
        """Parse `igor:<via>:<user>[:<request id>]`; None if igor did not write it."""
        if not reference.startswith(IGOR_REFERENCE_PREFIX):
            return None
        _, via, *rest = reference.split(":", 3)
        return cls.from_words(via, rest[0] if rest else "")

    @property
    def local(self) -> bool:
        """An account on this machine (a shell or `igor chat`), not a chat platform's user."""
        return _WAYS[self.via].local

    @property
    def where(self) -> str:
        """Where they asked, in igor's words: `shell`, `Slack`."""
        return _WAYS[self.via].where

    @property
    def told_later(self) -> bool:
        """Whether a bot can tell them something afterwards (in Slack: their thread or
        their direct messages); a shell or the console cannot be told later."""
        return _WAYS[self.via].told_later

    @property
    def name(self) -> str:
        """How plain words name them: `alice@laptop`, `Slack user U123`."""
        if not self.id:
            return "someone"
        return _WAYS[self.via].named.format(self.id)

    @property
    def short_name(self) -> str:
        """A name that fits a table cell: `alice` for alice@laptop, a Slack user's ID."""
        return self.id.split("@", 1)[0] or self.id or "someone"

    @property
    def slack_id(self) -> str:
        """Their Slack user ID, to mention them there ("" unless they came from Slack)."""
        return self.id if self.via == "slack" else ""

    def same_person(self, other: Person) -> bool:
        """Whether two are one person: one Slack user (of one team, when both teams are
        known), or one account on one machine whether it typed in a shell or in the
        console. A shell account is never a Slack user, whatever their names."""
        if "unknown" in (self.via, other.via):
            return False  # nobody here is the person a newer igor's record names
        if self.local or other.local:
            return self.local and other.local and self.id == other.id
        if self.team and other.team and self.team != other.team:
            return False
        return (self.via, self.id) == (other.via, other.id)

    def answers_to(self, name: str) -> bool:
        """Whether a name in the config (a Slack user ID, or `user@host`; any case) is them."""
        return bool(self.id) and self.id.casefold() == name.strip().casefold()

    def facts(self) -> dict[str, Any]:
        """The person in igor's JSON output, the store's records and the audit lines."""
        return {"via": self.via, "user": self.id}


def _known(via: str) -> Via | None:
    # (`in` narrows a word to the Literal; "unknown" is igor's own word, never a record's)
    return via if via in _WAYS and via != "unknown" else None


# How words name a person: each renderer its own way (a mention in Slack).
PersonNamer = Callable[[Person], str]


@dataclass(frozen=True)
class Origin:
    """One request: who asked (`person`), for the `user_reference` and the audit line.

    Built from the words the `user_reference` keeps (`Origin("slack", "U123", ...)`)
    or from a person (`Origin.of`); everything else reads `person`.
    """

    via: Via
    user: str  # "alice@laptop" or a Slack user ID
    request_id: str = ""  # the Slack event ID: a retry of one event must not deploy twice
    channel: str = ""  # where in chat it was typed (a lock records it: the holder's thread)
    thread: str = ""
    team: str = ""  # the Slack team of whoever typed it, when Slack said it

    @classmethod
    def of(cls, person: Person, request_id: str = "") -> Origin:
        """A request of this person's."""
        return cls(person.via, person.id, request_id, team=person.team)

    @classmethod
    def of_shell(cls, env: Environment) -> Origin:
        """`igor:cli:<account>@<host>`: who deploys from this shell, by the operating
        system's account (`Environment.account`), not by what $USER says."""
        from igor_cli.config import shell_user

        return cls.of(Person.in_shell(shell_user(env.account)))

    @property
    def person(self) -> Person:
        """Who asked."""
        return Person(self.via, self.user, self.team)

    @property
    def user_reference(self) -> str:
        """The tag stored at Cloud 66 with the deployment (at most 255 chars)."""
        parts = [IGOR_REFERENCE_PREFIX + self.via, self.user]
        if self.request_id:
            parts.append(self.request_id)
        return ":".join(parts)[:255]
