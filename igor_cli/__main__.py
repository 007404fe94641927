"""`python -m igor_cli` and the `igor` console script.

Two requests are answered here with the standard library alone, before anything of
igor's command line is imported (SPEC section 8): `igor --version`, and a TAB that
the completion index can answer (`tab_index`). Everything else goes to the terminal
edge.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run igor with the process's arguments and exit with its code."""
    if sys.argv[1:] == ["--version"]:
        sys.exit(_version())
    try:
        if os.environ.get("_IGOR_COMPLETE"):
            code = _tab()
        else:
            import gc

            # Start-up makes only what lives until exit (modules, classes, functions), and
            # a command that answers at once little else: the collector's passes find
            # nothing (7 ms of `igor list`'s 100). A command that runs long (igor serve,
            # --follow) turns it on again (`terminal.collect_again`).
            gc.disable()
            from igor_cli.terminal import main as run

            code = run()
    except KeyboardInterrupt:
        code = 130  # Ctrl-C before the terminal edge could catch it (while importing): quietly
    _exit_quickly()
    sys.exit(code)


def _version() -> int:
    from igor_cli import version_text

    try:
        sys.stdout.write(version_text() + "\n")
        sys.stdout.flush()
    except OSError as error:  # a full disk, a reader gone: said as every command says it
        from igor_cli.terminal import say_os_error

        code = say_os_error(error)
        if code is None:
            raise
        return code
    return 0


def _tab() -> int:
    """One TAB: from the completion index when it can, else from the command definitions."""
    action, _, shell = os.environ.get("_IGOR_COMPLETE", "").partition("_")
    if action == "complete":
        from igor_cli.tab_index import answer

        said = answer(shell)
        if said is not None:
            sys.stdout.write(said + "\n")
            return 0
    # It answers and exits: the objects it makes (modules, mostly) live until then,
    # so the collector has nothing to find (6 ms of passes over them).
    import gc

    gc.disable()
    from igor_cli.tab import answer_request

    return answer_request(fast=False)


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
