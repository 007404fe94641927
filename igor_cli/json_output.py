"""`--json [FIELDS]` and `--jq EXPR`: what a command's JSON output is asked to be, as in gh.

`--json` alone prints every field; `--json name,status` only those (an unknown one
is a usage error naming the valid ones, before anything runs); `--jq EXPR` filters
the JSON with jq's own language, through the `jq` package's binding of jq's C
library (jq's language is big and exact; a copy of our own would be neither). A
string a filter yields is printed raw, as gh and `jq -r` print it; anything else
as JSON. With JSON Lines (a followed deployment's events) each event is shaped on
its own and keeps its `event` name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TextIO

from igor_cli.errors import ExitCode, IgorError

# The fields of the events a followed deployment prints (`deploy --follow --json`,
# `watch --json`), besides those of the command's own answer.
FOLLOW_EVENT_FIELDS = (
    "event", "stack", "environment", "stack_uid", "async_action_id", "deployment_id",
    "state", "finished", "success", "message", "elapsed_seconds", "timed_out",
    "cancelled_by", "dashboard_url", "exit_code",
)  # fmt: skip


def with_follow_events(*fields: str) -> tuple[str, ...]:
    """A command's fields, and those of the events it prints while following."""
    return tuple(dict.fromkeys((*fields, *FOLLOW_EVENT_FIELDS)))


class BadJsonRequest(IgorError):
    """A field list or jq expression igor cannot use; its message says why. Found while
    parsing, it is a usage error; a filter that fails on the data itself, a failure."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class JsonOutput:
    """JSON was asked for: of these fields only (none: every field), through `jq`."""

    fields: tuple[str, ...] = ()
    jq: str = ""

    @classmethod
    def parse(cls, text: str) -> JsonOutput:
        """`name,status` (or "" for every field) as typed after --json."""
        fields = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        return cls(fields)

    def check(self, valid: Sequence[str], command: str) -> None:
        """`BadJsonRequest` for a field `command`'s JSON does not have, or a bad filter."""
        unknown = [name for name in self.fields if name not in valid]
        if unknown:
            named = ", ".join(repr(name) for name in unknown)
            raise BadJsonRequest(
                f"Unknown JSON field{'s' if len(unknown) > 1 else ''} {named} for igor "
                f"{command}. Valid fields: {', '.join(valid)}."
            )
        if self.jq:
            self._program()

    def _program(self) -> Any:
        import jq

        try:
            return jq.compile(self.jq)
        except ValueError as error:
            raise BadJsonRequest(f"--jq: {_first_line(error)}") from None

    def shaped(self, data: Any, *, event: bool = False) -> Any:
        """`data` with only the fields asked for (each object of a list, or the object;
        an event keeps its name and has only the fields it carries)."""
        if not self.fields:
            return data
        if event and isinstance(data, Mapping):
            return {"event": data.get("event")} | {
                name: data[name] for name in self.fields if name in data and name != "event"
            }
        if isinstance(data, Mapping):
            return {name: data.get(name) for name in self.fields}
        if isinstance(data, list):
            return [self.shaped(item) for item in data]
        return data

    def lines(self, data: Any, *, indent: int | None = None, event: bool = False) -> list[str]:
        """What to print for `data`: its JSON (shaped), or what the jq filter yields."""
        shaped = self.shaped(data, event=event)
        if not self.jq:
            return [_dumps(shaped, indent)]
        try:
            results = self._program().input_value(shaped).all()
        except ValueError as error:  # a filter that fails on this input (jq says why)
            raise BadJsonRequest(f"--jq: {_first_line(error)}") from None
        return [r if isinstance(r, str) else _dumps(r, indent) for r in results]

    def write_each(self, rows: Iterable[Any], out: TextIO, *, indent: int | None = None) -> None:
        """A JSON array of `rows` on `out`, each row encoded as it comes: the bytes `lines`
        prints for the whole list, without holding it (50,000 stacks' objects are 60 MB).
        A jq filter reads its input whole, and the indented form is a person's: as `lines`."""
        if self.jq or indent:
            out.write("".join(line + "\n" for line in self.lines(list(rows), indent=indent)))
            return
        encoded = (_dumps(self.shaped(row), None) for row in rows)
        out.write("[")
        first = True
        while chunk := list(islice(encoded, _ROWS_A_WRITE)):
            out.write(("" if first else ",") + ",".join(chunk))
            first = False
        out.write("]\n")


_ROWS_A_WRITE = 500  # rows encoded before each write: few writes, little held


def _dumps(data: Any, indent: int | None) -> str:
    # Indented for a person at a terminal; compact for a program (C-encoded: 10x faster).
    if indent:
        return json.dumps(data, indent=indent)
    return json.dumps(data, separators=(",", ":"))


def _first_line(error: Exception) -> str:
    lines: Iterable[str] = str(error).strip().splitlines() or [type(error).__name__]
    return next(iter(lines)).removeprefix("jq: error: ").strip().rstrip(":")
