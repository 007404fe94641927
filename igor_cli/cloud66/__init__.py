"""Cloud 66: its API's models (`models.py`), the client that speaks it (`client.py`),
how its lists are paged (`paging.py`), its refusals as igor's errors (`refusals.py`),
what its deployments and actions say together (`activity.py`), and reads made at once
(`at_once.py`)."""

from contextvars import ContextVar

# The request being performed when it is no change (its class name; "" for a change):
# the client refuses to POST or DELETE for it. A command that changes a stack but was
# declared a read fails here, closed, instead of running past locks, freezes and the
# confirmation (core/perform.py sets it around every action).
READS_ONLY: ContextVar[str] = ContextVar("reads_only", default="")

# Reads of Cloud 66 in flight at once beside the commands' own (at_once.py's threads; the
# bot runs 32 commands at once): also the stacks whose histories a listing reads together,
# and what a client's connection pool is sized for.
READS_AT_ONCE = 32
