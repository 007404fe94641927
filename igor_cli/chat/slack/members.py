"""Who counts: the members of the workspace the bot is installed in, and the teams the
config names (`[slack] allow_teams`). Nobody else's command, confirmation, approval or
Cancel click does anything.

Slack Connect puts people of other organisations in a channel (or a direct message)
with igor, and their messages and clicks reach it like anyone's. Each payload says
whose a person is (docs.slack.dev):

* Events API: an `app_mention` or `message` event from someone of another team carries
  `user_team` (and `source_team`); every person's message carries `team`; the event
  wrapper says `is_ext_shared_channel`. In a channel that is not shared outside, a
  message with neither is from a member.
* A slash command's payload: `team_id`, the workspace of whoever typed it.
* A button click (`block_actions`): `user.team_id`, the clicker's team.

What a payload does not say is not taken on trust where it could be an outsider's.
The installed workspace is what `auth.test` said at start (`Identity.team_id`).
An outsider is told once why nothing was done (across replicas, by a claim in the
store), and every refusal is logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from igor_cli.state import Store

TOLD_PREFIX = "outsider:"  # an outsider told why nothing was done, once
TOLD_SECONDS = 30 * 86400.0


def event_team(event: Mapping[str, Any], shared_channel: bool, home: str) -> str | None:
    """The team of whoever posted an event's message; None when it cannot be told."""
    team = event.get("user_team") or event.get("team")
    if isinstance(team, str) and team:
        return team
    return None if shared_channel else home


def slash_team(payload: Mapping[str, Any]) -> str | None:
    """The team of whoever typed a slash command."""
    team = payload.get("team_id")
    return team if isinstance(team, str) and team else None


def click_team(payload: Mapping[str, Any]) -> str | None:
    """The team of whoever clicked a button."""
    user = payload.get("user")
    team = user.get("team_id") if isinstance(user, Mapping) else None
    return team if isinstance(team, str) and team else None


class Membership:
    """Whether a person's team counts, and whether they were told why it does not."""

    def __init__(
        self,
        home: str,
        home_name: str,
        teams: Callable[[], frozenset[str]],
        store: Callable[[], Store | None],
    ) -> None:
        """`teams`: the other teams that count now (the rules, read again when they change);
        `store`: where an outsider's being told is claimed once."""
        self.home = home
        self.home_name = home_name
        self.teams = teams
        self.store = store
        self._told: set[str] = set()

    def counts(self, team: str | None) -> bool:
        """Whether someone of this team may act (None: the payload did not say: no)."""
        if not team or not self.home:
            return False  # a workspace auth.test did not name counts nobody in: fail closed
        return team == self.home or team in self.teams()

    def why(self) -> str:
        """What an outsider is told."""
        return (
            f"igor takes commands and clicks only from members of the {self.home_name} "
            "workspace it is installed in (and of teams its config names); nothing was done."
        )

    def first_telling(self, user: str) -> bool:
        """Whether to tell this outsider why (the first time, whichever replica)."""
        from igor_cli.errors import IgorError

        if user in self._told:
            return False
        self._told.add(user)
        try:
            store = self.store()
            return store is None or store.claim(TOLD_PREFIX + user, "told", TOLD_SECONDS)
        except IgorError:
            return True  # the store is down: better told twice than never
