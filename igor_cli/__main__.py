"""`python -m igor_cli` and the `igor` console script."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run igor with the process's arguments and exit with its code."""
    try:
        if os.environ.get("_IGOR_COMPLETE"):
            # A TAB: answered from the cache without typer's value conversion,
            # which imports pydantic (SPEC section 8: within 1.15x of `import typer`).
            # It answers and exits: the objects it makes (modules, mostly) live until
            # then, so the collector has nothing to find (6 ms of passes over them).
            import gc

            gc.disable()
            from igor_cli.tab import answer_request

            code = answer_request()
        else:
            from igor_cli.terminal import main as run

            code = run()
    except KeyboardInterrupt:
        code = 130  # Ctrl-C before the terminal edge could catch it (while importing): quietly
    _exit_quickly()
    sys.exit(code)


def _exit_quickly() -> None:
    """Spare the interpreter's last garbage collections, which walk every object the run
    made (typer, requests and igor: 10 to 25 ms, a fifth of a short command).

    The command is done: its files, connections, threads and state store are closed
    (the terminal edge closes its environment), output is flushed at exit as ever, and
    atexit handlers still run. What freezing skips is only freeing memory the system
    takes back anyway, and the finalizers of garbage cycles, which igor leaves none of
    with work pending.
    """
    import gc

    gc.freeze()


if __name__ == "__main__":
    main()
