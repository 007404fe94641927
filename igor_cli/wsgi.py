"""igor's Slack bot as a WSGI application, for a server of your own.

`igor serve --http` runs it on waitress; to run it under another WSGI server, point
that server at the factory `igor_cli.wsgi:app()`:

    gunicorn --workers 1 --threads 4 --bind 0.0.0.0:3000 'igor_cli.wsgi:app()'
    waitress-serve --port 3000 --call igor_cli.wsgi:app

The factory reads its settings from the process environment, as `igor serve`
does (SPEC section 2): SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or the keyring),
IGOR_CLOUD66_TOKEN, IGOR_STATE_URL (Redis, shared by every process and replica),
IGOR_CONFIG, and IGOR_SANDBOX=1 to rehearse on the simulator. Each call starts one
bot (one replica): a server's worker processes are replicas, so several need the
shared store. The server owns the signals; the bot stops when its process exits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from igor_cli.chat.slack.transports.events_http import EventsEndpoint


def app() -> EventsEndpoint:
    """Start the bot from the process environment; its WSGI application (Slack's requests at
    /slack/events, /healthz). Raises ServeFailed, after saying why in the log, when it cannot
    start."""
    from igor_cli.chat.slack.lifecycle import wsgi_app
    from igor_cli.config import Environment

    return wsgi_app(Environment())
