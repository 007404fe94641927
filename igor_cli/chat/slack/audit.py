"""The bot's audit lines: one JSON object a line on the `igor.audit` logger.

Every line the bot writes about a command, a click, a bypass or a holder told
goes through `audit()`, so their shape is decided here once: `event` first, then
the fields in the order given. People and tests read these lines (and the audit
file keeps them): a field renamed or reordered is a change to announce.
"""

from __future__ import annotations

import json
import logging
from typing import Any

_audit = logging.getLogger("igor.audit")


def audit(event: str, /, **fields: Any) -> None:
    """Write one audit line, `{"event": event, **fields}`, keys in the order given."""
    _audit.info(json.dumps({"event": event, **fields}))
