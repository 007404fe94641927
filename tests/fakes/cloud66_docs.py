"""A Cloud 66 that answers with the docs' own sample payloads, byte for byte.

Where the simulator plays a whole account, this server knows one stack, one
deployment and one action: the ones the docs show (tests/fixtures/cloud66_docs,
one edition at a time). Every route answers its sample, whatever is asked, the
way a reader of the docs would expect the API to; it records what it was asked.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cloud66_docs"
PREFIX = "/api/3"
STACK_UID = "5999b763474b0eafa5fafb64bff0ba80"  # the uid of the docs' sample stack


def sample(edition: str, name: str) -> bytes:
    """One sample answer's bytes, as its doc shows them."""
    return (FIXTURES / edition / f"{name}.json").read_bytes()


def sample_json(edition: str, name: str) -> Any:
    """One sample answer, parsed."""
    return json.loads(sample(edition, name))


Answer = tuple[int, dict[str, str], bytes]  # status, headers, body


@dataclass(frozen=True)
class Asked:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes


@dataclass
class DocsApi:
    """The docs' payloads served on 127.0.0.1 (`with DocsApi("2024") as api: api.url`)."""

    edition: str
    # Answers to use instead of a sample, in turn (the last one stays):
    # (method, route) -> [(status, headers, body bytes), ...].
    answers: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    asked: list[Asked] = field(default_factory=list)

    def answer(self, method: str, route: str, *answers: Answer) -> None:
        """Answer `route` with these instead of its sample, one a request, the last for good."""
        self.answers[method, route] = list(answers)

    def __post_init__(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                api._answer(self, "GET")

            def do_POST(self) -> None:
                api._answer(self, "POST")

            def do_DELETE(self) -> None:
                api._answer(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> DocsApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def url(self) -> str:
        """The API base URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{PREFIX}"

    def count(self, method: str, route: str = "") -> int:
        """How many requests used `method` on `route` (as `route_of` names it; "" for any)."""
        return sum(1 for a in self.asked if a.method == method and route in ("", route_of(a.path)))

    def _answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self.asked.append(Asked(method, split.path, query, body))
        route = route_of(split.path)
        queue = self.answers.get((method, route))
        if queue:
            status, headers, data = queue.pop(0) if len(queue) > 1 else queue[0]
            headers = dict(headers)
        else:
            status, headers, data = self._sample(method, route)
        handler.send_response(status)
        handler.send_header("Content-Type", headers.pop("Content-Type", "application/json"))
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _sample(self, method: str, route: str) -> tuple[int, dict[str, str], bytes]:
        name = SAMPLES.get((method, route))
        if name is None:
            return 404, {}, b'{"error":"not_found"}'
        return 200, {}, sample(self.edition, name)


# (method, route) -> the sample that answers it; a route names a path's shape.
SAMPLES = {
    ("GET", "stacks"): "stacks",
    ("GET", "stack"): "stack",
    ("GET", "deployments"): "deployments",
    ("GET", "deployment"): "deployment",
    ("POST", "deployments"): "redeploy",
    ("DELETE", "deployment"): "cancel",
    ("GET", "actions"): "actions",
    ("GET", "action"): "action",
    ("GET", "services"): "services",
    ("GET", "accounts"): "accounts",
}


def route_of(path: str) -> str:
    """`/api/3/stacks/u/deployments/7` -> "deployment"; `.json` (the Go client's) ignored."""
    parts = [p.removesuffix(".json") for p in path.removeprefix(PREFIX).split("/") if p]
    if parts in (["stacks"], ["accounts"]):
        return parts[0]
    if len(parts) == 2 and parts[0] == "stacks":
        return "stack"
    if len(parts) == 3 and parts[0] == "stacks":
        return parts[2]
    if len(parts) == 4 and parts[0] == "stacks":
        return parts[2].removesuffix("s")
    return "?"
