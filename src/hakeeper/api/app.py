"""The operator API as a Starlette application, and the uvicorn servers the daemon runs it with.

``build_app(services)`` makes the ASGI app; ``start_unix`` and ``start_tls`` run it inside the caller's
event loop (``uvicorn.Server.serve()`` as a task, without taking over signals) and return a handle to stop
it. On the Unix socket the peer's uid (SO_PEERCRED) is passed to the app, so root needs no token there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from uvicorn.protocols.http.h11_impl import H11Protocol

from hakeeper.api import metrics
from hakeeper.api.auth import Role
from hakeeper.api.dashboard import PREVIEW_ROUTE, page_routes
from hakeeper.api.openapi import openapi_document
from hakeeper.api.routes_read import ROUTES as READ_ROUTES
from hakeeper.api.routes_write import ROUTES as WRITE_ROUTES
from hakeeper.api.routing import PEER_UID_KEY, ApiError, Call, Route, Services, dispatch, error_response

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _metrics(call: Call) -> Response:
    return Response(metrics.render(call.handle, call.services.metrics_extra), media_type=metrics.CONTENT_TYPE)


METRICS_ROUTE = Route(
    "GET", "/metrics", Role.READ, _metrics, "Prometheus metrics (text format)", media_type="text/plain"
)


def all_routes() -> list[Route]:
    return [*READ_ROUTES, *WRITE_ROUTES, PREVIEW_ROUTE, METRICS_ROUTE, OPENAPI_ROUTE]


async def _openapi(call: Call) -> Response:
    return Response(msgspec.json.encode(openapi_document(all_routes())), media_type="application/json")


OPENAPI_ROUTE = Route("GET", "/openapi.json", None, _openapi, "This API's OpenAPI description")


def _endpoint(services: Services, route: Route) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await dispatch(services, route, request)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return error_response(
                ApiError(404, f"there is no API route {request.url.path!r}; see /openapi.json")
            )
        if exc.status_code == 405:
            return error_response(ApiError(405, f"{request.method} is not allowed on {request.url.path}"))
        return error_response(ApiError(exc.status_code, str(exc.detail)))
    return error_response(
        ApiError(500, f"internal error in hakeeper ({type(exc).__name__}); please report it")
    )


def build_app(services: Services) -> Starlette:
    """The ASGI application over ``services`` (the daemon's handle, the tokens file, the audit log)."""
    by_path: dict[str, list[Route]] = {}
    for route in all_routes():
        by_path.setdefault(route.path, []).append(route)
    routes = []
    for path, group in by_path.items():
        for route in group:
            routes.append(StarletteRoute(path, _endpoint(services, route), methods=[route.method]))
    routes += page_routes()  # the dashboard's page and files (no data in them, so no token)
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _http_error})
    app.router.redirect_slashes = False  # ids end in '/' only by mistake: say "no such route", not 307
    return app


# --- serving ----------------------------------------------------------------------------------------------


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (Linux SO_PEERCRED), or None."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class PeerCredProtocol(H11Protocol):
    """uvicorn's h11 protocol, remembering the peer's uid of each Unix-socket connection."""

    peer: int | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        self.peer = peer_uid(sock) if sock is not None else None
        # uvicorn puts ``client`` into every request's scope; the wrapper below moves the uid to its own key.
        self.client = ("peer-uid", self.peer if self.peer is not None else -1)


def unix_peer_app(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` for the Unix socket: set the peer uid in the scope from what the protocol recorded."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        uid = client[1] if isinstance(client, tuple) and client and client[0] == "peer-uid" else None
        scope[PEER_UID_KEY] = uid if isinstance(uid, int) and uid >= 0 else None
        await app(scope, receive, send)

    return wrapped


def network_app(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` for TCP/TLS: a peer uid can never be claimed there."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        scope.pop(PEER_UID_KEY, None)
        await app(scope, receive, send)

    return wrapped


SHUTDOWN_GRACE_S = 2
"""How long a stopping server waits for open requests; event streams never end by themselves."""


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the daemon's event loop: the daemon keeps its own signal handlers, and the server
    wakes once a second (for its Date header) instead of uvicorn's ten times: each wake-up of an idle
    daemon costs about as much as the message layer's own work in it."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        while not await self.on_tick(0):  # tick 0: refresh the Date header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)


class RunningServer:
    """A server started in the current event loop; ``stop()`` finishes open requests and closes it."""

    def __init__(self, server: EmbeddedServer, task: asyncio.Task[None], path: Path | None = None) -> None:
        self.server = server
        self.task = task
        self.path = path

    @property
    def addresses(self) -> list[Any]:
        """Where it listens (``(host, port)`` for TCP; a path for the Unix socket)."""
        return [sock.getsockname() for srv in self.server.servers for sock in srv.sockets]

    async def stop(self) -> None:
        self.server.exit()
        await self.task
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def _start(
    server: EmbeddedServer, sockets: list[socket.socket] | None, path: Path | None
) -> RunningServer:
    task = asyncio.ensure_future(server.serve(sockets=sockets))
    while not server.started:
        if task.done():
            task.result()  # raises the reason it could not start
            raise OSError("the API server stopped while starting")
        await asyncio.sleep(0.01)
    return RunningServer(server, task, path)


def bind_private_socket(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` that only its owner (root) may connect to.

    It is bound under a temporary name, made 0600, then renamed into place, so there is no moment in which
    anyone else could connect.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(tmp))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        sock.close()
        tmp.unlink(missing_ok=True)
        raise
    return sock


async def start_unix(app: Starlette, path: Path) -> RunningServer:
    """Serve ``app`` on the local Unix socket ``path`` (mode 0600; root needs no token there)."""
    sock = bind_private_socket(path)
    config = uvicorn.Config(
        unix_peer_app(app),
        http=PeerCredProtocol,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return await _start(EmbeddedServer(config), [sock], path)


async def start_tls(app: Starlette, host: str, port: int, certfile: Path, keyfile: Path) -> RunningServer:
    """Serve ``app`` with TLS on a cluster address (tokens required: there is no peer uid there)."""
    config = uvicorn.Config(
        network_app(app),
        host=host,
        port=port,
        ssl_certfile=str(certfile),
        ssl_keyfile=str(keyfile),
        ssl_version=ssl.PROTOCOL_TLS_SERVER,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return await _start(EmbeddedServer(config), None, None)


async def start_http(app: Starlette, host: str, port: int) -> RunningServer:
    """Serve ``app`` with plain HTTP (the dashboard's loopback listener; tokens required, as on TLS).

    The socket is bound here, so a port in use is an ``OSError`` for the caller (uvicorn would exit).
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    config = uvicorn.Config(
        network_app(app),
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    return await _start(EmbeddedServer(config), [sock], None)
