"""A clock that only moves when told (or when slept on)."""

from __future__ import annotations

from datetime import UTC, datetime


class FakeClock:
    """Epoch seconds; `sleep` advances time instead of waiting."""

    def __init__(self, start: float = 1_796_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the clock instead of sleeping."""
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Let time pass."""
        self.now += seconds

    def datetime(self) -> datetime:
        """The clock's time as an aware datetime."""
        return datetime.fromtimestamp(self.now, UTC)
