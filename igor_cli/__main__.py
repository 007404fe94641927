"""`python -m igor_cli` and the `igor` console script."""

from __future__ import annotations

import sys


def main() -> None:
    """Run igor with the process's arguments and exit with its code."""
    from igor_cli.cli import run_shell

    sys.exit(run_shell())


if __name__ == "__main__":
    main()
