"""What the simulator and its users share: the sandbox token and a recorded request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Not a secret: the fixed token every sandbox accepts unless told otherwise.
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105


@dataclass(frozen=True)
class RecordedRequest:
    """One request the simulator received, as tests inspect it."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]
