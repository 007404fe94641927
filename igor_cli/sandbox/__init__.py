"""A Cloud 66 API v3 simulator for `igor --sandbox` and the test suite.

Importing this package is cheap: the HTTP server (and `http.server` with it) is
only loaded when `Simulator` is first used, so the CLI can read `SANDBOX_TOKEN`
without paying for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from igor_cli.sandbox.server import Simulator

__all__ = ["SANDBOX_TOKEN", "RecordedRequest", "Simulator"]

# Not a secret: the fixed token every sandbox accepts unless told otherwise.
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105


@dataclass(frozen=True)
class RecordedRequest:
    """One request the simulator received, as tests inspect it."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]


def __getattr__(name: str) -> Any:
    """Load the server module on first use of `Simulator`."""
    if name == "Simulator":
        from igor_cli.sandbox.server import Simulator

        return Simulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
