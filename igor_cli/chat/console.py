"""`igor chat`: a local console that talks to the bot's own bridge.

Like Hubot's shell adapter: type what you would type in Slack, read what igor
answers, follow-ups included. The console is a peer of the Slack adapter: it
renders the chat core's replies as plain text. Nothing reaches Slack; with
--sandbox nothing reaches Cloud 66 either.
"""

from __future__ import annotations

import threading
import uuid
from typing import TextIO

from igor_cli.actions import FollowPolicy, Origin
from igor_cli.chat.bridge import Bridge
from igor_cli.chat.follow import Followers, News, Watcher
from igor_cli.chat.text import strip_address
from igor_cli.config import Environment
from igor_cli.render.text import render_news_text, render_text

PROMPT = "you> "
EXITS = {"exit", "quit", "exit()", ":q", "/quit", "/exit"}  # `exit` no longer cancels


def run_console(env: Environment, user: str, stdin: TextIO, stdout: TextIO) -> int:
    """Read lines until end of input; answer each as the bot would."""
    bridge = Bridge(env)
    followers = Followers(
        bridge.connect,
        FollowPolicy(interval=env.follow_interval, clock=env.monotonic, sleep=env.sleep),
    )
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            stdout.write("igor> " + text.replace("\n", "\n      ") + "\n")
            stdout.flush()

    def tell(news: News) -> None:
        say(render_news_text(news))

    session = uuid.uuid4().hex[:12]
    stdout.write("Talk to igor as you would in Slack (e.g. `list`, `deploy -s shop`). ")
    stdout.write("Ctrl-D, `exit` or `quit` to leave.\n")
    for number, line in enumerate(iter(lambda: _prompt(stdin, stdout), None), start=1):
        text, _ = strip_address(line.strip(), "", "igor")
        if not text:
            continue
        if text.lower() in EXITS:
            break
        # Unique across sessions: a request id seen at Cloud 66 means "this very request".
        reply = bridge.handle(text, Origin("chat", user, f"console-{session}-{number}"))
        say(render_text(reply, env.clock()))
        outcome = reply.deployment_to_follow
        if outcome is not None:
            followers.watch(outcome.stack, outcome.action_id, Watcher(user, tell))
    if followers.active:
        stdout.write(
            f"\nWaiting for {followers.active} deployment(s) to finish (Ctrl-C to stop).\n"
        )
        stdout.flush()
        followers.join()
    return 0


def _prompt(stdin: TextIO, stdout: TextIO) -> str | None:
    stdout.write(PROMPT)
    stdout.flush()
    line = stdin.readline()
    return line if line else None
