"""The demo's web service: answers every GET with the name of the node serving it.

Run by the built-in ``ocf:hakeeper:process`` agent; the LRM gives every agent (and so this process) the
node's name in ``HA_NODENAME``.

``python -m hakeeper.cli.demo_web --port PORT [--bind ADDRESS]``

Its start-up is part of every failover the demo and ``hakeeper bench failover`` measure, so it speaks just
enough HTTP/1.0 on :mod:`socketserver` (http.server and argparse would triple its import time): one request
per connection, answered and closed.
"""

from __future__ import annotations

import os
import socketserver
import sys

MAX_HEADER_BYTES = 16384
CLIENT_TIMEOUT_S = 5.0
USAGE = "usage: python -m hakeeper.cli.demo_web --port PORT [--bind ADDRESS]"


def response(request_head: bytes, node: str) -> bytes:
    """The whole answer to one request (status line, headers, body) given its head."""
    words = request_head.split(b"\r\n", 1)[0].split()
    if len(words) != 3 or not words[2].startswith(b"HTTP/"):
        return _answer(400, "Bad Request", b"a request line is METHOD PATH HTTP/VERSION\n")
    if words[0] not in (b"GET", b"HEAD"):
        return _answer(405, "Method Not Allowed", b"only GET and HEAD are served\n")
    answer = _answer(200, "OK", f"hello from {node}\n".encode())
    return answer if words[0] == b"GET" else answer.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"


def _answer(status: int, reason: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.0 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(CLIENT_TIMEOUT_S)
        head = b""
        try:
            while b"\r\n\r\n" not in head and b"\n\n" not in head and len(head) < MAX_HEADER_BYTES:
                chunk = self.request.recv(4096)
                if not chunk:
                    return  # the client gave up before finishing its request
                head += chunk
            node = os.environ.get("HA_NODENAME", "an unknown node")
            self.request.sendall(response(head.replace(b"\n\n", b"\r\n\r\n"), node))
        except OSError:
            return  # a client that vanished or stalled is no concern of the service


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def parse_args(argv: list[str]) -> tuple[str, int]:
    """(bind address, port) from ``--port PORT [--bind ADDRESS]``; ValueError says what is wrong."""
    options = {"--bind": "127.0.0.1", "--port": ""}
    words = iter(argv)
    for word in words:
        name, eq, value = word.partition("=")
        if name not in options:
            raise ValueError(f"unknown argument {word!r}")
        if not eq:
            value = next(words, "")
        if not value:
            raise ValueError(f"{name} needs a value")
        options[name] = value
    port = options["--port"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("--port must be a TCP port number (1-65535)" if port else "--port is required")
    return options["--bind"], int(port)


def main(argv: list[str]) -> int:
    try:
        bind, port = parse_args(argv)
    except ValueError as exc:
        print(f"demo_web: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    try:
        server = _Server((bind, port), _Handler)
    except OSError as exc:
        print(f"demo_web: cannot listen on {bind}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    with server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
