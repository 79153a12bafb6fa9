"""A Slack incoming webhook stand-in on 127.0.0.1: records what is posted, can refuse the first posts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class WebhookReceiver:
    url: str = ""
    posts: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    refuse_first: int = 0  # answer this many posts with 429 (Retry-After: 0) before accepting


@contextmanager
def webhook_receiver(refuse_first: int = 0) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(refuse_first=refuse_first)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
            with lock:
                refuse = receiver.refuse_first > 0
                receiver.refuse_first -= 1 if refuse else 0
                status = 429 if refuse else 200
                receiver.statuses.append(status)
                if not refuse:
                    receiver.posts.append(body)
            self.send_response(status)
            if refuse:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/services/T000/B000/hook"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
