"""A real HTTP server on a loopback port that answers from a script and records what it received: for what a
Flightdeck server does only under load or failure (429/503 with Retry-After, a connection dropped mid-answer, a
foreign `next` link), and as the receiver of outgoing webhooks. Clients talk to it over real sockets."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON
    raw: bytes  # as sent (a webhook's signature covers these bytes)


class ScriptedServer:
    """Answers requests with ``answers`` in order and records what it received."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = list(answers)
        self.received: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server.received.append(Received(self.command, self.path, dict(self.headers.items()),
                                                json.loads(raw) if raw else None, raw))
                answer = server.answers.pop(0) if server.answers else Answer(500, {"detail": "script exhausted"})
                if answer.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                payload = json.dumps(answer.body).encode() if answer.body is not None else b""
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

