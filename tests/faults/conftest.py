"""The fault suite's own servers: a Redis each test may stop, stall and restart empty; a
Cloud 66 proxy that holds deploy POSTs (to kill a replica mid-POST); `igor serve` replicas
in processes of their own, with igor's clocks made short (`replica.py`)."""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from igor_cli.sandbox import SANDBOX_TOKEN
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_http import SIGNING_SECRET

ROOT = Path(__file__).resolve().parents[2]

# igor's clocks for the replicas of this suite: leases and heartbeats of 2 s instead of
# 30, a look every 0.3 s instead of 10, polls every 0.5 s. What they bound is the same.
TIMINGS = {
    "igor_cli.chat.leases.LEASE_SECONDS": 2.0,
    "igor_cli.chat.leases.RENEW_SECONDS": 0.3,
    "igor_cli.chat.slack.takeover.RENEW_SECONDS": 0.3,
    "igor_cli.chat.intents.HEARTBEAT_SECONDS": 2.0,
    "igor_cli.chat.intents.POST_SECONDS": 4.0,
    "igor_cli.chat.slack.bot.FOLLOW_SLOWER": 0.1,
    "igor_cli.chat.slack.bot.FOLLOW_HOURLY_BUDGET": 72000.0,
    "igor_cli.state.health.PROBE_SECONDS": 0.2,
}


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- Redis -------------------------------------------------------------------------------


class OwnRedis:
    """A redis-server of this test's own on a loopback port: stopped, stalled (SIGSTOP),
    restarted empty (without persistence, as `redis-server` with no options runs)."""

    def __init__(self, binary: str, scratch: Path, *options: str) -> None:
        self.binary = binary
        self.scratch = scratch
        self.options = options
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        import redis

        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.scratch), *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)  # a stalled server cannot end otherwise
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stall(self) -> None:
        """The server stops answering (connections still open): as a Redis stuck in a fork
        or a long command."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def restart_empty(self) -> None:
        """Stopped and started again on the same port, with nothing kept."""
        self.stop()
        self.start()


@pytest.fixture
def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("redis-server is not installed; .ci/run should have installed it")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return binary


@pytest.fixture
def own_redis(redis_binary: str, tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server of this test's own, without persistence (`redis:7` as run by default
    in a container keeps snapshots; one restarted in place of a crashed one may not)."""
    scratch = tmp_path / "redis"
    scratch.mkdir()
    server = OwnRedis(redis_binary, scratch).start()
    try:
        yield server
    finally:
        server.stop()


# -- nginx, a load balancer in front of `igor serve --http` replicas -------------------------


class OwnNginx:
    """Debian's nginx on a free loopback port with a config of this test's own (in `scratch`),
    balancing over replicas on `upstreams`: README's "HTTP mode" example, on loopback."""

    def __init__(self, binary: str, scratch: Path, upstreams: list[int]) -> None:
        self.binary = binary
        self.scratch = scratch
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=10s;" for port in upstreams
        )
        user = "user root root;" if os.geteuid() == 0 else ""
        # proxy_next_upstream: the default (error timeout), which moves a request on only
        # while it was not sent; add_header: which replica answered (for the test's eyes).
        (scratch / "nginx.conf").write_text(f"""
daemon off;
{user}
worker_processes 1;
pid {scratch}/nginx.pid;
error_log {scratch}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {scratch}/access.log;
    client_body_temp_path {scratch}/body;
    proxy_temp_path {scratch}/proxy;
    fastcgi_temp_path {scratch}/fastcgi;
    uwsgi_temp_path {scratch}/uwsgi;
    scgi_temp_path {scratch}/scgi;
    upstream igor {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 1m;
        location / {{
            proxy_pass http://igor;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_read_timeout 3s;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
""")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def start(self) -> OwnNginx:
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.scratch), "-e", str(self.scratch / "error.log"),
             "-c", str(self.scratch / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError(f"nginx did not start: {self.said()}")

    def said(self) -> str:
        log = self.scratch / "error.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()  # nginx's fast shutdown
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def nginx_binary() -> str:
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                       else None)  # fmt: skip
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("nginx is not installed; .ci/run should have installed it (.ci/lb)")
        pytest.skip("nginx is not installed (.ci/lb, or apt-get install nginx-light)")
    return binary


# -- Cloud 66, seen through a proxy --------------------------------------------------------


class Cloud66Proxy(ThreadingHTTPServer):
    """A proxy to the simulator for one replica: it can hold each deploy (or stack action)
    POST a while
    before passing it on (a slow Cloud 66), and drop one whose client has gone by then
    (the request never reached Cloud 66) or pass it on anyway (Cloud 66 got it)."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.hold_posts = 0.0
        self.pass_on_when_gone = True
        self.holding = threading.Event()  # a POST is being held now
        self.released = threading.Event()  # the test is over: hold nothing more
        self.dropped = 0
        super().__init__(("127.0.0.1", 0), _Forward)
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.upstream.path}"

    def close(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5)


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def _gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _forward(self) -> None:
        proxy = self.server
        assert isinstance(proxy, Cloud66Proxy)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        change = "/deployments" in self.path or self.path.endswith("/actions")
        if self.command == "POST" and change and proxy.hold_posts:
            proxy.holding.set()
            proxy.released.wait(proxy.hold_posts)
            proxy.holding.clear()
            if self._gone() and not proxy.pass_on_when_gone:
                proxy.dropped += 1
                self.close_connection = True
                return
        skip = {"host", "connection", "content-length", "transfer-encoding"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        upstream = http.client.HTTPConnection(
            proxy.upstream.hostname or "127.0.0.1", proxy.upstream.port, timeout=30
        )
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
        finally:
            upstream.close()
        try:
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in skip:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the replica is gone: Cloud 66 did it anyway


# -- replicas ---------------------------------------------------------------------------


class Replica:
    """`igor serve` in a process of its own (`replica.py`), with the suite's timings."""

    def __init__(
        self,
        name: str,
        slack: FakeSlack,
        cloud66: str,
        state_url: str,
        scratch: Path,
        timings: dict[str, float] | None = None,
        config: str = "",
        http_port: int | None = None,
    ) -> None:
        """`http_port`: `igor serve --http 127.0.0.1:PORT` (HTTP mode's secrets: the bot
        token and the signing secret), instead of Socket Mode."""
        self.name = name
        self.http_port = http_port
        self.home = scratch / name
        self.home.mkdir(parents=True)
        if config:
            (self.home / "config.toml").write_text(config)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IGOR_", "SLACK_"))}
        env.update({
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_APP_TOKEN": slack.app_token,
            "IGOR_SLACK_API_URL": slack.api_url, "IGOR_API_URL": cloud66,
            "IGOR_CLOUD66_TOKEN": SANDBOX_TOKEN, "IGOR_CACHE_DIR": str(self.home / "cache"),
            "IGOR_CONFIG": str(self.home / "config.toml"), "IGOR_STATE_URL": state_url,
            "XDG_DATA_HOME": str(self.home / "data"),
            "FAULTS_TIMINGS": json.dumps({**TIMINGS, **(timings or {})}),
        })  # fmt: skip
        if http_port is not None:
            del env["SLACK_APP_TOKEN"]
            env["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
            env["FAULTS_ARGS"] = json.dumps(["--http", f"127.0.0.1:{http_port}"])
        self.log = self.home / "serve.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("replica.py"))], env=env,
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the replica stops in its tracks, as one starved by a loaded machine (or a
        VM paused) would; its heartbeat and leases lapse, its sockets stay open."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def terminate(self) -> float:
        """SIGTERM; returns how long it took to exit (seconds)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(20)
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def said(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def connect_in_order(slack: FakeSlack, replicas: list[Replica]) -> None:
    """Wait until each replica, started in turn, is connected (the last one started is the
    newest connection: `push_event` delivers to it)."""
    for count, replica in enumerate(replicas, start=1):
        deadline = time.monotonic() + 30
        while slack.live_connections() < count and time.monotonic() < deadline:
            if replica.process.poll() is not None:
                raise AssertionError(f"{replica.name} ended:\n{replica.said()[-3000:]}")
            time.sleep(0.05)
        assert slack.live_connections() >= count, replica.said()[-3000:]


def wait_for(condition: Callable[[], object], timeout: float, said: Callable[[], str]) -> None:
    """Until `condition` holds; otherwise fail with what the replicas logged."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    assert condition(), said()
