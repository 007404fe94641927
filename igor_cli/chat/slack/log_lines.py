"""The bot's log: one JSON object a line, on stderr and in the audit file.

A command's audit line is already a JSON object (who, where, what was typed,
the outcome); the formatter adds the time, level and logger beside its keys
instead of wrapping it in a string. Every other record becomes
`{"time", "level", "logger", "message"}`, with `exception` when there is one.
Tokens are scrubbed before this runs (`credentials.TokenScrubber` on each handler).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any


class JsonLines(logging.Formatter):
    """A logging formatter that writes each record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON (no line break inside, whatever the message)."""
        when = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        fields = _json_object(message)
        if fields is not None:
            line.update({k: v for k, v in fields.items() if k not in line})
        else:
            line["message"] = message
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def _json_object(message: str) -> dict[str, Any] | None:
    """The message as a JSON object when it is one (an audit line), else None."""
    if not message.startswith("{"):
        return None
    try:
        value = json.loads(message)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class StderrLines(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that writes to whatever `sys.stderr` is when a record comes.

    `igor serve` may run more than once in a process (tests, an embedding
    program) with stderr swapped in between: a stream kept from the first run
    would be closed by then.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonLines())

    @property
    def stream(self) -> Any:
        """The current standard error."""
        import sys

        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        """Ignored: the stream is always the current standard error."""
