"""A Cloud 66 API v3 simulator for `igor --sandbox` and the test suite.

Importing this package is cheap: the HTTP server (and `http.server` with it) is
only loaded when `Simulator` is first used, so the CLI can read `SANDBOX_TOKEN`
without paying for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from igor_cli.sandbox.requests import SANDBOX_TOKEN, RecordedRequest

if TYPE_CHECKING:
    from igor_cli.sandbox.server import Simulator

__all__ = ["SANDBOX_TOKEN", "RecordedRequest", "Simulator"]


def __getattr__(name: str) -> Any:
    """Load the server module on first use of `Simulator`."""
    if name == "Simulator":
        from igor_cli.sandbox.server import Simulator

        return Simulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
