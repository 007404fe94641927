"""Which Slack events are commands for igor, and the same post delivered twice."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from igor_cli.chat.slack.tokens import Identity
from igor_cli.chat.text import strip_address


class RecentKeys:
    """A bounded set of recently seen keys: the same thing delivered twice is done once."""

    def __init__(self, size: int = 5000) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        """True the first time a key is seen."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys[key] = None
            if len(self._keys) > self._size:
                self._keys.popitem(last=False)
            return True


def command_text(event: dict[str, Any], identity: Identity) -> str | None:
    """The command in an `app_mention` or `message` event, or None when igor stays silent."""
    if event.get("subtype") or event.get("bot_id") or event.get("bot_profile"):
        return None  # edits, deletions, joins, and every bot (igor included)
    user = event.get("user")
    if not user or user == identity.user_id:
        return None
    text = str(event.get("text") or "")
    stripped, addressed = strip_address(text, identity.user_id, identity.name)
    kind = event.get("type")
    if kind == "app_mention":
        return stripped
    if kind == "message":
        if event.get("channel_type") == "im":
            return stripped
        return stripped if addressed else None
    return None
