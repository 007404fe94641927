"""How igor serve gets a new Socket Mode connection: at once after one that worked, backing
off to a minute while Slack refuses, and never again once Slack turned Socket Mode off.

The transport runs against the fake Slack with the real slack_sdk client. Its waits between
tries are the test's `Pauses`: recorded, not waited, so the sequence is exact on any machine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.web import WebClient

from igor_cli.chat.slack.transports.socket_mode import Backoff, SocketModeTransport
from igor_cli.chat.slack.web import SlackWeb
from igor_cli.config import Environment
from tests.conftest import RunningBot, wait_until
from tests.fakes.slack import FakeSlack


class Pauses:
    """The transport's waits between tries: recorded instead of waited; `then(n)` runs at
    the n-th (a test's way to change the world between tries)."""

    def __init__(self, then: Callable[[int], None] | None = None) -> None:
        self.seconds: list[float] = []
        self.then = then
        self.stop = threading.Event()

    def __call__(self, seconds: float) -> bool:
        self.seconds.append(seconds)
        if self.then is not None:
            self.then(len(self.seconds))
        return self.stop.is_set()


@pytest.fixture
def transport(slack: FakeSlack) -> Iterator[Callable[[Pauses], SocketModeTransport]]:
    made: list[SocketModeTransport] = []

    def make(pauses: Pauses) -> SocketModeTransport:
        env = Environment(environ={"SLACK_APP_TOKEN": slack.app_token}, slack_ping_interval=0.3)
        web = SlackWeb(slack.bot_token, slack.api_url)
        made.append(SocketModeTransport(env, web, lambda kind, payload: None, pauses.stop,
                                        pause=pauses))  # fmt: skip
        return made[-1]

    yield make
    for each in made:
        each.stop.set()
        each.close(timeout=5)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What igor (and slack_sdk, which logs to igor.socket) said at WARNING and above."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def spread(waits: list[float], longest: list[float]) -> bool:
    """Each wait between half of its backoff and all of it."""
    return len(waits) == len(longest) and all(
        most / 2 <= wait <= most for wait, most in zip(waits, longest, strict=True)
    )


def test_backoff_waits_are_spread_not_in_step() -> None:
    # Two replicas cut off at once draw their waits: not the same moments every time.
    first, second = Backoff(), Backoff()
    drawn = [(first.failed(), second.failed()) for _ in range(8)]
    assert any(one != other for one, other in drawn)
    assert spread([one for one, _ in drawn], [2, 4, 8, 16, 32, 60, 60, 60])
    assert Backoff().failed(at_least=45) == 45  # Slack's Retry-After is waited out whole


def opens(slack: FakeSlack) -> int:
    return len(slack.calls_to("apps.connections.open"))


def test_failing_connection_urls_back_off_to_a_minute(
    slack: FakeSlack,
    transport: Callable[[Pauses], SocketModeTransport],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pauses = Pauses()
    assert transport(pauses).connect()
    slack.ping_and_wait()  # Slack's hello was read: this connection worked
    caplog.set_level(logging.INFO, logger="igor")
    slack.fail_next("apps.connections.open", error="internal_error", count=7)
    slack.drop_connections(mode="close")
    slack.wait_connected(count=2, timeout=10)
    # At once after a connection that worked, then 2, 4, ... never more than a minute,
    # each drawn between half and all of that (replicas do not try in step).
    assert spread(pauses.seconds, [2, 4, 8, 16, 32, 60, 60])
    assert opens(slack) == 1 + 8  # the first connection, seven refusals, the eighth try
    said = warnings(caplog)
    assert len(said) == 7, said  # each failed try said once, with the wait that follows
    assert all("apps.connections.open answered internal_error" in line for line in said)
    # Each with the wait that follows it, as waited.
    assert [line.rsplit("again in ", 1)[1] for line in said] == [
        f"{wait:.0f} s" for wait in pauses.seconds
    ]
    assert wait_until(lambda: "connected to Slack again" in caplog.text)


def test_a_rate_limited_try_waits_as_long_as_slack_asks(
    slack: FakeSlack, transport: Callable[[Pauses], SocketModeTransport]
) -> None:
    pauses = Pauses()
    assert transport(pauses).connect()
    slack.ping_and_wait()
    slack.fail_next("apps.connections.open", status=429, retry_after=45)
    slack.drop_connections(mode="reset")
    slack.wait_connected(count=2, timeout=10)
    assert pauses.seconds == [45]


def test_a_connection_that_worked_is_replaced_at_once(
    slack: FakeSlack, transport: Callable[[Pauses], SocketModeTransport]
) -> None:
    pauses = Pauses()
    assert transport(pauses).connect()
    for count in (2, 3, 4):
        slack.ping_and_wait()
        slack.send_disconnect("refresh_requested", close_after=0.2)
        slack.wait_connected(count=count)
    assert pauses.seconds == []  # Slack's routine refreshes cost no wait
    assert opens(slack) == 4


@pytest.mark.parametrize("hello_first", [False, True], ids=["no-hello", "hello-first"])
def test_too_many_websockets_backs_off_until_a_connection_is_free(
    slack: FakeSlack,
    transport: Callable[[Pauses], SocketModeTransport],
    caplog: pytest.LogCaptureFixture,
    hello_first: bool,
) -> None:
    caplog.set_level(logging.INFO, logger="igor")
    slack.max_connections = 1  # the app's connections are all taken: by this other replica
    slack.hello_before_refusal = hello_first
    replica = SocketModeClient(
        app_token=slack.app_token, web_client=WebClient(token="", base_url=slack.api_url)
    )
    replica.connect()
    slack.wait_connected()

    def free_one(pause: int) -> None:
        if pause == 4:  # the other replica stops: its connection is free
            replica.close()
            assert wait_until(lambda: slack.open_connections() == 0)

    pauses = Pauses(free_one)
    try:
        transport(pauses).connect()  # (the first try connects, to be turned away)
        slack.wait_connected(count=2, timeout=10)
    finally:
        replica.close()
    assert slack.connections_refused == 4
    assert spread(pauses.seconds, [2, 4, 8, 16])  # not a new connection every 3 s
    said = [line for line in warnings(caplog) if "too_many_websockets" in line]
    assert len(said) == 4 and len(warnings(caplog)) == 4, warnings(caplog)


def test_socket_mode_turned_off_ends_serve_with_the_reason(
    bot: RunningBot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="igor")
    bot.start()
    before = opens(slack)
    slack.disable_socket_mode()
    assert bot.thread is not None
    bot.thread.join(15)
    assert not bot.thread.is_alive()
    assert bot.exit_code == 2  # a setting of the Slack app that cannot work
    assert "Slack turned Socket Mode off for this app (link_disabled)" in caplog.text
    assert "Turn it back on at api.slack.com/apps" in caplog.text
    assert opens(slack) == before  # and no new connection was asked for
    assert slack.connections_opened == 1


def test_serve_while_socket_mode_is_off_stops_at_once(
    bot: RunningBot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="igor")
    slack.disable_socket_mode()
    bot.start(wait=False)
    assert bot.thread is not None
    bot.thread.join(15)
    assert bot.exit_code == 2
    assert slack.connections_refused == 1  # one try, told at once
    assert opens(slack) == 2  # the token check at start, and that try
    assert "link_disabled" in caplog.text


def test_an_app_token_refused_while_reconnecting_still_ends_serve_with_exit_4(
    bot: RunningBot, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    bot.start()
    before = opens(slack)
    slack.fail_next("apps.connections.open", error="token_revoked")
    slack.drop_connections(mode="reset")
    assert bot.thread is not None
    bot.thread.join(15)
    assert bot.exit_code == 4
    assert opens(slack) == before + 1  # asked once, and stopped
