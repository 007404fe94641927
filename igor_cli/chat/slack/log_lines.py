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


class AuditFile(logging.FileHandler):
    """The audit file (`[audit] path`): a line that cannot be written (a full disk, a
    volume gone) is counted and said once, in one line on the bot's log, instead of
    Python's `--- Logging error ---` traceback for each; said again, with the count,
    once lines are written again. `failing` says why lines are being lost now."""

    def __init__(self, path: str) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self.lost = 0
        self.failing = ""
        self._wrote = True

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line; on failure, count it (see `handleError`)."""
        self._wrote = True
        super().emit(record)
        if self._wrote and self.failing:
            lost, self.failing = self.lost, ""
            logging.getLogger("igor.serve").warning(
                "audit lines are written to %s again; %d were lost", self.baseFilename, lost
            )

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging names it)
        """A line was not written: counted, and said the first time in a row."""
        import sys

        self._wrote = False
        self.lost += 1
        if self.failing:
            return
        error = sys.exc_info()[1]
        self.failing = str(error) or type(error).__name__
        logging.getLogger("igor.serve").error(
            "audit lines are being lost: cannot write %s (%s); igor counts them and says when "
            "they are written again", self.baseFilename, self.failing,
        )  # fmt: skip

    def close(self) -> None:
        """Close the file; lines lost until the end are counted once more in the log."""
        if self.failing and self.lost:
            logging.getLogger("igor.serve").error(
                "%d audit line(s) could not be written to %s", self.lost, self.baseFilename
            )
            self.failing = ""
        try:
            super().close()  # the last lines, flushed now, may not fit either
        except OSError as error:
            logging.getLogger("igor.serve").error(
                "the audit file %s could not be closed cleanly (%s): its last lines may be "
                "lost", self.baseFilename, error.strerror or error,
            )  # fmt: skip
