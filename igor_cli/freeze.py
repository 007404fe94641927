"""Freeze windows: times when changes to some environments are refused.

Each `[[freeze]]` table in the config file names environments (and optionally
stacks), a window and a message. A window recurs weekly (`from = "Fri 16:00"`,
`until = "Mon 08:00"`, in `timezone`) or runs between two dates (`from =
2026-12-20`, `until = 2027-01-04`: a date alone means the start of that day).
During a freeze every change to a matching stack is refused, naming the window
and when it ends (`core.perform.guard_change`, which every change passes), unless
the requester breaks the glass: `--break-glass --reason TEXT`, allowed only to
the people the freeze names in `break_glass` (Slack user IDs, or `user@host`
for a shell), and recorded in the state store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from igor_cli.errors import IgorError, UsageProblem

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK_MINUTES = 7 * 24 * 60
KEYS = ("environments", "stacks", "from", "until", "timezone", "message", "break_glass")
_WEEKLY = re.compile(r"([a-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})")
UPCOMING = timedelta(days=7)  # how far ahead `igor locks` looks for the next freeze


class FreezeError(UsageProblem):
    """A `[[freeze]]` table that igor cannot read: the file, the table and the reason."""


@dataclass(frozen=True)
class Window:
    """One occurrence of a freeze: when it starts and ends."""

    freeze: Freeze
    start: datetime
    end: datetime

    def describe(self) -> str:
        """`production, shop: "Weekend freeze" (Fri 2026-12-04 16:00 CET to Mon ... 08:00 CET)`."""
        message = f' "{self.freeze.message}"' if self.freeze.message else ""
        return (
            f"{self.freeze.scope()}:{message} ({self.start:%a %Y-%m-%d %H:%M %Z} to "
            f"{self.end:%a %Y-%m-%d %H:%M %Z})"
        )


@dataclass(frozen=True)
class Freeze:
    """One `[[freeze]]` table."""

    number: int
    environments: frozenset[str]  # casefolded
    stacks: frozenset[str] | None  # casefolded; None: every stack there
    zone: tzinfo
    message: str = ""
    weekly: tuple[int, int] | None = None  # minutes into the week (Monday 00:00) from, until
    dated: tuple[datetime, datetime] | None = None
    break_glass: frozenset[str] = frozenset()

    def scope(self) -> str:
        """`production` or `production (shop, api)`."""
        where = ", ".join(sorted(self.environments))
        return where + (f" ({', '.join(sorted(self.stacks))})" if self.stacks else "")

    def applies_to(self, name: str, environment: str) -> bool:
        """Whether this freeze covers that stack."""
        in_env = environment.casefold() in self.environments or "*" in self.environments
        return in_env and (self.stacks is None or name.casefold() in self.stacks)

    def windows(self, now: datetime) -> list[Window]:
        """The occurrences that hold now or start within `UPCOMING`, soonest first."""
        if self.dated is not None:
            start, end = self.dated
            return [Window(self, start, end)] if end > now and start < now + UPCOMING else []
        assert self.weekly is not None
        first, last = self.weekly
        length = (last - first) % WEEK_MINUTES or WEEK_MINUTES
        local = now.astimezone(self.zone)
        monday = (local - timedelta(days=local.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0, tzinfo=None
        )
        found = []
        for week in (-1, 0, 1):
            begins = monday + timedelta(weeks=week, minutes=first)
            start = local_moment(begins, self.zone, last=False)
            end = local_moment(begins + timedelta(minutes=length), self.zone, last=True)
            if end > now and start < now + UPCOMING:
                found.append(Window(self, start, end))
        return found

    def holds(self, now: datetime) -> Window | None:
        """The occurrence that holds now, if any."""
        return next((w for w in self.windows(now) if w.start <= now < w.end), None)

    def may_break(self, user: str) -> bool:
        """Whether this person may break the glass (Slack ID or `user@host`, any case)."""
        return any(name.casefold() == user.casefold() for name in self.break_glass)


class StackFrozen(IgorError):
    """A change during a freeze, without a broken glass: nothing was posted."""

    def __init__(self, label: str, window: Window, hint: str) -> None:
        super().__init__(
            f"{label} is frozen until {window.end:%a %Y-%m-%d %H:%M %Z}: "
            f"{window.describe()}. Nothing was posted.",
            hint,
        )
        self.window = window


def freezes_from_config(config: Mapping[str, Any], path: str = "the config file") -> list[Freeze]:
    """Every `[[freeze]]` table, checked; a FreezeError names the first that is wrong."""
    tables = config.get("freeze", [])
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise FreezeError(f"{path}: freeze must be an array of tables ([[freeze]]).")
    return [_freeze(table, number, path) for number, table in enumerate(tables, start=1)]


def _freeze(table: Mapping[str, Any], number: int, path: str) -> Freeze:
    where = f"{path}: freeze {number} ([[freeze]] number {number})"
    unknown = set(table) - set(KEYS)
    if unknown:
        raise FreezeError(
            f"{where} has unknown key(s): {', '.join(sorted(unknown))}.",
            f"Known keys: {', '.join(KEYS)}.",
        )
    environments = _names(table.get("environments"), f"{where}: environments")
    if not environments:
        raise FreezeError(f"{where} names no environments.", 'Add environments = ["production"].')
    stacks = _names(table["stacks"], f"{where}: stacks") if "stacks" in table else None
    if stacks == []:  # a freeze of no stack at all, shown as frozen: never that
        raise FreezeError(f"{where}: stacks is empty.", "Name the stacks, or leave stacks out.")
    zone = _zone(table.get("timezone", "UTC"), where)
    if "from" not in table or "until" not in table:
        raise FreezeError(f"{where} needs both from and until.")
    begins, ends = table["from"], table["until"]
    message = table.get("message", "")
    if not isinstance(message, str):
        raise FreezeError(f"{where}: message must be a string.")
    people = frozenset(_names(table.get("break_glass", []), f"{where}: break_glass"))
    weekly: tuple[int, int] | None = None
    dated: tuple[datetime, datetime] | None = None
    if isinstance(begins, str) and _WEEKLY.fullmatch(begins.strip().lower()):
        weekly = (_weekly(begins, where, "from"), _weekly(ends, where, "until"))
    else:
        start, end = _moment(begins, zone, where, "from"), _moment(ends, zone, where, "until")
        if end <= start:
            raise FreezeError(f"{where}: until ({ends}) must come after from ({begins}).")
        dated = (start, end)
    return Freeze(
        number, frozenset(environments), frozenset(stacks) if stacks is not None else None,
        zone, message.strip(), weekly, dated, people,
    )  # fmt: skip


def _names(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise FreezeError(f"{where} must be a list of names.")
    return [v.strip().casefold() if "environments" in where or "stacks" in where else v.strip()
            for v in value]  # fmt: skip


def _zone(name: Any, where: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name.strip():
        raise FreezeError(f"{where}: timezone must be a name such as Europe/London.")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise FreezeError(
            f"{where}: unknown timezone {name!r}.", "Use an IANA name such as Europe/London."
        ) from None


def _weekly(value: Any, where: str, key: str) -> int:
    found = _WEEKLY.fullmatch(str(value).strip().lower()) if isinstance(value, str) else None
    if found is None or found.group(1) not in DAYS:
        raise FreezeError(
            f'{where}: {key} = {value!r} is not a weekly time such as "Fri 16:00".',
            "A weekly freeze gives both from and until as a day and a time.",
        )
    hour, minute = int(found.group(2)), int(found.group(3))
    if hour > 23 or minute > 59:
        raise FreezeError(f"{where}: {key} = {value!r} is not a time of day.")
    return DAYS.index(found.group(1)) * 1440 + hour * 60 + minute


def _moment(value: Any, zone: tzinfo, where: str, key: str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise FreezeError(
                f"{where}: {key} = {value!r} is neither a date (2026-12-20), a date and time, "
                'nor a weekly time ("Fri 16:00").'
            ) from None
    last = key == "until"
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else local_moment(value, zone, last=last)
    if isinstance(value, date):
        return local_moment(datetime(value.year, value.month, value.day), zone, last=last)
    raise FreezeError(f"{where}: {key} must be a date, a date and time, or a weekly time.")


# -- wall-clock times at the changes of daylight saving time ------------------------


def local_moment(wall: datetime, zone: tzinfo, *, last: bool) -> datetime:
    """A time on the clocks of `zone` (naive) as the moment it means, for a freeze.

    A freeze holds from the first moment the clocks show its `from` until the last
    moment they show its `until`. So where the clocks pass a time twice (the hour
    they go back), `from` is its first pass and `until` its second (`last`); where
    they never show it (the hour they skip going forward), either is the moment
    they jump past it. A freeze is never shortened by a change of clocks.
    """
    early, late = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early  # an ordinary time: one moment
    if _shown_at(early.timestamp(), zone) == wall:  # shown twice: clocks went back
        first, second = sorted((early, late), key=lambda moment: moment.timestamp())
        return second if last else first
    # Skipped: the clocks jump past it between the two readings; find the second they do.
    low, high = sorted((int(early.timestamp()), int(late.timestamp())))
    while high - low > 1:
        middle = (low + high) // 2
        if _shown_at(middle, zone) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, zone)


def _shown_at(timestamp: float, zone: tzinfo) -> datetime:
    """What the clocks of `zone` show at a moment (naive)."""
    return datetime.fromtimestamp(timestamp, zone).replace(tzinfo=None)


# -- the check every change passes -------------------------------------------------


def freeze_in_the_way(
    freezes: list[Freeze], name: str, environment: str, now: datetime
) -> Window | None:
    """The freeze window holding this stack now, if any (the one that ends last)."""
    held = [
        window
        for freeze in freezes
        if freeze.applies_to(name, environment)
        for window in [freeze.holds(now)]
        if window is not None
    ]
    return max(held, key=lambda window: window.end) if held else None


def any_freeze_now(freezes: list[Freeze], now: datetime) -> bool:
    """Whether some freeze holds now (for some stack): only then is a stack looked up."""
    return any(freeze.holds(now) is not None for freeze in freezes)
