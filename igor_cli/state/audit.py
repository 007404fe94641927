"""What igor keeps on record in the state store: forced unlocks, broken glass.

Every igor sharing the store (each replica, each shell) writes here, so the
record is whole whichever process did it. Entries are kept 90 days.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from igor_cli.state.store import Store

AUDIT_PREFIX = "audit:"
AUDIT_SECONDS = 90 * 86400.0


def keep_on_record(store: Store, record: dict[str, Any], now: datetime) -> None:
    """Add one entry (a fresh key: entries never overwrite each other)."""
    key = f"{AUDIT_PREFIX}{now.isoformat()}:{uuid.uuid4().hex[:12]}"
    store.claim(key, json.dumps({**record, "at": now.isoformat()}), AUDIT_SECONDS)
