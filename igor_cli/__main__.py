"""`python -m igor_cli` and the `igor` console script."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run igor with the process's arguments and exit with its code."""
    try:
        if os.environ.get("_IGOR_COMPLETE"):
            # A TAB: answered from the cache without typer's value conversion,
            # which imports pydantic (SPEC section 8: within 1.3x of `import typer`).
            from igor_cli.tab import answer_request

            code = answer_request()
        else:
            from igor_cli.terminal import main as run

            code = run()
    except KeyboardInterrupt:
        code = 130  # Ctrl-C before the terminal edge could catch it (while importing): quietly
    sys.exit(code)


if __name__ == "__main__":
    main()
