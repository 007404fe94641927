"""Files only their owner may read: the state store and the audit file.

A lock's reason, who broke the glass and every command typed in chat are the
team's business, not every account's on the machine. igor creates these files
0600 and their directories 0700 (whatever the umask), and `igor doctor` says
when one that exists lets others in; it never changes an existing file's mode
itself (an operator may share it with a group on purpose).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_OTHERS = 0o077  # the group's and everyone else's bits


def private_dir(directory: Path) -> None:
    """Create `directory` and the ones above it that are missing, each 0700."""
    missing = []
    for folder in (directory, *directory.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # made meanwhile by another process
        os.chmod(folder, PRIVATE_DIR)  # a umask may have taken the owner's bits too


def private_file(path: Path) -> None:
    """Create `path` (and its directory) readable by its owner alone, unless it exists."""
    private_dir(path.parent)
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    except FileExistsError:
        return  # its mode is its owner's choice; `exposed` tells them
    os.close(descriptor)


def exposed(*paths: Path) -> list[str]:
    """What of `paths` (that exist) others may read or enter, in words; [] when nothing.

    `["/srv/igor/state.db is open to other accounts (mode 0644): chmod 600 ..."]`
    """
    if os.name != "posix":
        return []  # modes do not tell who may read a file elsewhere
    problems = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & _OTHERS:
            wanted = PRIVATE_DIR if path.is_dir() else PRIVATE_FILE
            problems.append(
                f"{path} is open to other accounts (mode {mode:04o}): chmod {wanted:o} {path}"
            )
    return problems
