"""The embedded state store: one SQLite file (WAL), for one laptop or one bot on one machine.

Each operation is a single SQL statement, which SQLite runs as one transaction,
so igor processes sharing the file cannot interleave a check and a write. Expired
rows are ignored by every statement and swept now and then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from igor_cli.private_files import exposed, private_file
from igor_cli.state.store import NeverKept, StateUnavailable

if TYPE_CHECKING:
    import sqlite3

BUSY_TIMEOUT_MS = 10_000  # other processes hold the write lock for microseconds
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID
"""


class SqliteStore:
    """The store in a SQLite file; safe across threads (one connection, one lock) and
    processes (SQLite's own locking, waited for up to `BUSY_TIMEOUT_MS`)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        import sqlite3

        self.path = path
        self.url = f"sqlite://{path}"
        self._clock = clock
        self._lock = threading.Lock()
        try:
            existed = path.exists()
        except OSError:  # a directory igor may not look into: something may be kept there
            existed = True
        try:
            # Only its owner may read it (SQLite gives its -wal and -shm files its mode).
            private_file(path)
            # Autocommit (isolation_level None): each statement is its own transaction.
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._set_up()
        except (OSError, sqlite3.Error) as error:
            # Only a file that was not there can have kept nothing (no lock, no lease).
            kind = StateUnavailable if existed else NeverKept
            raise kind(
                f"Cannot open igor's state file {path}: {error}.",
                "Point IGOR_STATE_URL at another file (sqlite:///path) or a Redis server.",
            ) from None

    def _set_up(self) -> None:
        """WAL, the table, expired rows swept. Processes opening a new file at once
        can find it locked while one of them switches it to WAL (SQLite does not
        wait for that): they try again, within the busy timeout."""
        import random
        import sqlite3

        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                mode = self._db.execute("PRAGMA journal_mode").fetchone()
                if not mode or str(mode[0]).lower() != "wal":
                    self._db.execute("PRAGMA journal_mode = WAL")  # kept in the file
                self._db.execute("PRAGMA synchronous = NORMAL")  # WAL keeps it consistent
                self._db.execute(_SCHEMA)
                self._db.execute("DELETE FROM entries WHERE expires <= ?", (self._clock(),))
                return
            except sqlite3.OperationalError as error:
                busy = "locked" in str(error) or "busy" in str(error)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.005, 0.05))

    def _run(self, sql: str, *params: object) -> sqlite3.Cursor:
        import sqlite3

        try:
            with self._lock:
                return self._db.execute(sql, params)
        except sqlite3.Error as error:
            raise StateUnavailable(f"igor's state file {self.path} failed: {error}.") from None

    def claim(self, key: str, value: str, ttl: float) -> bool:
        """Insert, or take over an expired row, in one statement."""
        now = self._clock()
        cursor = self._run(
            "INSERT INTO entries (key, value, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires "
            "WHERE entries.expires <= ?",
            key, value, now + ttl, now,
        )  # fmt: skip
        return cursor.rowcount == 1

    def get(self, key: str) -> str | None:
        """The live value, if any."""
        row = self._run(
            "SELECT value FROM entries WHERE key = ? AND expires > ?", key, self._clock()
        ).fetchone()
        return str(row[0]) if row else None

    def swap(self, key: str, expected: str, value: str, ttl: float) -> bool:
        """Compare-and-set in one UPDATE."""
        now = self._clock()
        cursor = self._run(
            "UPDATE entries SET value = ?, expires = ? WHERE key = ? AND value = ? AND expires > ?",
            value, now + ttl, key, expected, now,
        )  # fmt: skip
        return cursor.rowcount == 1

    def renew(self, key: str, expected: str, ttl: float) -> bool:
        """A lease's new expiry, while it is still ours."""
        return self.swap(key, expected, expected, ttl)

    def release(self, key: str, expected: str) -> bool:
        """Compare-and-delete in one DELETE."""
        cursor = self._run(
            "DELETE FROM entries WHERE key = ? AND value = ? AND expires > ?",
            key, expected, self._clock(),
        )  # fmt: skip
        return cursor.rowcount == 1

    def items(self, prefix: str) -> dict[str, str]:
        """Live keys under a prefix (compared as text, so no pattern characters to escape)."""
        rows = self._run(
            "SELECT key, value FROM entries WHERE substr(key, 1, ?) = ? AND expires > ? "
            "ORDER BY key",
            len(prefix), prefix, self._clock(),
        ).fetchall()  # fmt: skip
        return {str(key): str(value) for key, value in rows}

    def exposed(self) -> list[str]:
        """What of the store other accounts may read (the file and its journal)."""
        journal = [self.path.with_name(self.path.name + suffix) for suffix in ("-wal", "-shm")]
        return exposed(self.path, *journal)

    def durability(self) -> list[str]:
        """Nothing to say: a file on disk, written through SQLite's journal."""
        return []

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
