"""The HTTP plumbing: a threaded stdlib server that hands every request to the emulator.

Kept apart from the API logic so that logic stays a plain function of (method, target, headers,
body) and the socket details (keep-alive, dropped connections, clients that time out and hang up)
live in one place.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Mapping
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast

from local.talonic_emulator.messages import Reply


class RequestTarget(Protocol):
    """What the server needs from the emulator."""

    def handle_request(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply: ...

    def pause(self, seconds: float) -> None: ...

    def now(self) -> float: ...


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its emulator and can cut every open connection on stop."""

    daemon_threads = True
    # Keep-alive connections would make server_close() wait for clients to hang up.
    block_on_close = False

    def __init__(self, address: tuple[str, int], target: RequestTarget) -> None:
        self.target = target
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _EmulatorRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can stall without DNS; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_all_connections(self) -> None:
        """Shut down idle keep-alive connections so clients see the emulator is gone."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _EmulatorRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TalonicEmulator/1.0"
    sys_version = ""

    @property
    def _server(self) -> EmulatorHTTPServer:
        return cast(EmulatorHTTPServer, self.server)

    def setup(self) -> None:
        super().setup()
        self._server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._server.untrack(self.connection)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        target = self._server.target
        reply = target.handle_request(self.command, self.path, headers, body)
        if reply.delay > 0:
            target.pause(reply.delay)
        if reply.drop:
            # No status line, no headers: the client sees the peer close the connection.
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. a read timeout during a "slow" fault); nothing to answer.
            self.close_connection = True

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the emulator clock, like every other instant it reports.
        return formatdate(self._server.target.now() if timestamp is None else timestamp, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests inspect ``emulator.requests`` instead of a log."""
