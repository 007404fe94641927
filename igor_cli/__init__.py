"""igor: a terminal toolbelt for Cloud 66 that doubles as a Slack bot."""

__version__ = "0.1.0"


def version_text() -> str:
    """What `igor --version` says: the fast path in `__main__` and the command line alike
    (here, where both import it without importing each other)."""
    return f"igor {__version__}"
