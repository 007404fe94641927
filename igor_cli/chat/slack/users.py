"""People by the names Slack shows them under: `users.info`, asked once a person and kept.

Replies name people in places a mention cannot reach (a code block's table, the
words of an error), where a raw ID (`U0BOB`) would say nothing to anyone. Slack's
`users.info` (scope `users:read`, Tier 4: 100+ a minute) gives a user's profile,
whose `display_name` may be empty ("Data that has not been supplied may not be
present at all, may be null or may contain the empty string": docs.slack.dev,
users.info): then the `real_name`, then the account's `name`. A name is kept for
an hour (people rarely rename); a refusal (`missing_scope` on an app installed
before igor asked for `users:read`, `user_not_found`) is kept as well, so it is
asked once, and the ID stands in (`igor doctor` names the missing scope).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from igor_cli.chat.slack.web import SlackWeb

log = logging.getLogger("igor.serve")

KEEP_SECONDS = 3600.0
MAX_KEPT = 10_000  # people in a workspace, at most: the oldest go first beyond


class SlackNames:
    """A Slack user ID -> the name Slack shows, asked of `users.info` once and kept."""

    def __init__(
        self, web: SlackWeb, clock: Callable[[], float], seconds: float = KEEP_SECONDS
    ) -> None:
        self.web = web
        self.clock = clock
        self.seconds = seconds
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, str]] = {}

    def name(self, user: str) -> str:
        """The name Slack shows for `user`; the ID itself when Slack will not say."""
        now = self.clock()
        with self._lock:
            kept = self._kept.get(user)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1] or user
        found = self._ask(user)
        if found is None:  # Slack could not be asked now: ask again next time
            return user
        with self._lock:
            if len(self._kept) >= MAX_KEPT:
                self._kept.pop(next(iter(self._kept)))
            self._kept[user] = (now, found)
        return found or user

    def _ask(self, user: str) -> str | None:
        """The name from `users.info`; "" when Slack refuses to say, None when unreachable."""
        from slack_sdk.errors import SlackApiError

        try:
            answer = self.web.call("users.info", user=user)
        except SlackApiError as error:
            reason = error.response.get("error") if error.response is not None else None
            if reason == "ratelimited":
                return None
            log.info("users.info %s: %s (the ID is shown instead)", user, reason)
            return ""
        except OSError as error:
            from igor_cli.cloud66.refusals import network_reason

            log.info("users.info %s: %s (the ID is shown instead)", user, network_reason(error))
            return None
        return profile_name(answer.get("user"))


def profile_name(found: Any) -> str:
    """A user object's display name, else real name, else account name ("" for none):
    printable characters only (a name is someone's text, shown in igor's replies)."""
    from igor_cli.cloud66.refusals import clean_text

    if not isinstance(found, dict):
        return ""
    given_profile = found.get("profile")
    profile: dict[str, Any] = given_profile if isinstance(given_profile, dict) else {}
    for given in (profile.get("display_name"), profile.get("real_name"), found.get("real_name"),
                  found.get("name")):  # fmt: skip
        name = "".join(c for c in clean_text(given) if c.isprintable()).strip()
        if isinstance(given, str) and name:
            return name
    return ""
