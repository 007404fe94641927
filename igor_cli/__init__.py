"""igor: a terminal toolbelt for Cloud 66 that doubles as a Slack bot."""

__version__ = "0.1.0"
