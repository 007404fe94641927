"""The contender for igor's Socket Mode reader (issue 27): slack_sdk's public asyncio client.

`PublicClientTransport` opens the connection with `slack_sdk.socket_mode.aiohttp` (aiohttp
is not one of igor's dependencies: `pip install aiohttp` to measure it), acks each envelope
in its request listener on the client's event loop thread, and only then hands the payload
to the bot's `dispatch`, which submits it to igor's intake threads (the bridge to igor's
workers). It has the Socket Mode transport's surface that `serve` uses (connect, hello,
stop_listening, close, failure) and nothing more: reconnect judgement, `link_disabled`,
a rejected app token are the built-in transport's. It is measured in the bot benchmark
under the real intake, beside the reader, by `LAUNCHER`: `igor serve` with it in place.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from igor_cli.config import Environment
from igor_cli.credentials import TokenKind, require_token
from igor_cli.errors import IgorError

CONNECT_SECONDS = 30.0


class PublicClientTransport:
    """Socket Mode on slack_sdk's public aiohttp client: ack first, then `dispatch`."""

    def __init__(
        self,
        env: Environment,
        web: Any,
        dispatch: Callable[[str, dict[str, Any]], object],
        stop: threading.Event,
    ) -> None:
        self.env = env
        self.web = web
        self.dispatch = dispatch
        self.stop = stop
        self.failure: IgorError | None = None
        self.listening = True
        self.hello: Callable[[int, int], None] = lambda connections, own: None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="igor-socket-aiohttp", daemon=True
        )
        self._client: Any = None

    def connect(self) -> bool:
        """Open the connection on the client's own event loop thread; whether it opened."""
        self._thread.start()
        opened = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        return bool(opened.result(CONNECT_SECONDS))

    async def _open(self) -> bool:
        from slack_sdk.socket_mode.aiohttp import SocketModeClient
        from slack_sdk.web.async_client import AsyncWebClient

        web = AsyncWebClient(token=self.web.token, base_url=self.web.base_url)
        self._client = SocketModeClient(
            app_token=require_token(TokenKind.SLACK_APP, self.env),
            web_client=web,
            ping_interval=self.env.slack_ping_interval,
            logger=logging.getLogger("igor.socket"),
        )
        self._client.socket_mode_request_listeners.append(self._on_request)
        self._client.message_listeners.append(self._on_message)
        await self._client.connect()
        return True

    async def _on_request(self, client: Any, request: Any) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        if not self.listening:  # not acked: Slack delivers it again, to another replica
            return
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        self.dispatch(request.type, request.payload)  # submits to igor's intake at once

    async def _on_message(self, client: Any, message: dict[str, Any], raw: str | None) -> None:
        connections = message.get("num_connections")
        if message.get("type") == "hello" and isinstance(connections, int):
            self.hello(connections, 0)

    def stop_listening(self) -> None:
        """Ack and take nothing more."""
        self.listening = False

    def close(self, timeout: float = 1.5) -> None:
        """Close the connection and stop the loop (bounded)."""
        if self._client is not None and self._loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(self._client.close(), self._loop)
            try:
                closing.result(timeout)
            except Exception as error:  # a hung socket must not hold the exit
                logging.getLogger("igor.socket").info("closing: %s", type(error).__name__)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)


# `igor serve` with the contender in place of the built-in transport (nothing else changed).
LAUNCHER = """
import sys
from benchmarks.public_socket import PublicClientTransport
from igor_cli.chat.slack import lifecycle
lifecycle.SocketModeTransport = PublicClientTransport
from igor_cli.__main__ import main
sys.argv = ["igor", "serve"]
main()
"""
