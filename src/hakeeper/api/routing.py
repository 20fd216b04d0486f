"""The API's request machinery: one declarative route table, authentication, body decoding, error answers.

Every route is a ``Route``: method, path, the role it needs, the request model it validates with and the
model it answers with. The same table drives dispatch and ``openapi.json``, so they cannot disagree.
Every failure becomes a JSON ``{"error": "..."}`` with a 4xx status saying what was wrong; only a bug in
hakeeper (or the cluster being unavailable: 503/504) answers 5xx.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from prometheus_client.core import Metric
from starlette.requests import Request
from starlette.responses import Response

from hakeeper.api.alerts import AlertQueue
from hakeeper.api.audit import AuditLog, AuditRecord
from hakeeper.api.auth import ROOT, Identity, Role, TokenError, TokenStore, bearer_token
from hakeeper.api.handle import ClusterHandle, CommitTimeout, NoQuorum, NotLeader
from hakeeper.api.schemas import ErrorBody, WriteResult
from hakeeper.api.views import config_version, secret_names
from hakeeper.cib.model import Cib
from hakeeper.cib.operator import NotFound, OperatorError, validated
from hakeeper.cib.patch import Patch, PatchConflict, PatchError, version_of

MAX_BODY = 1024 * 1024
COMMIT_ATTEMPTS = 8
CONFLICT_BACKOFF_S = 0.05
PEER_UID_KEY = "hakeeper.peer_uid"
"""ASGI scope key the Unix-socket server sets to the connecting process's uid (SO_PEERCRED)."""


class ApiError(Exception):
    """An answer other than success: HTTP status and a sentence for the operator."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        current_version: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.current_version = current_version
        self.headers = dict(headers or {})


def error_response(err: ApiError) -> Response:
    body = msgspec.json.encode(ErrorBody(error=err.message, current_version=err.current_version))
    return Response(body, status_code=err.status, media_type="application/json", headers=err.headers)


@dataclass
class Services:
    """What handlers work with: the daemon, the tokens, the audit log, the alert queues (if running)."""

    handle: ClusterHandle
    tokens: TokenStore | None = None
    audit: AuditLog | None = None
    alerts: AlertQueue | None = None
    metrics_extra: Callable[[], Iterable[Metric]] | None = None
    """The daemon's own figures for /metrics (messaging, transitions), as Prometheus metric families."""


@dataclass
class Call:
    """One authenticated request, as handlers see it."""

    services: Services
    identity: Identity
    path: dict[str, str]
    query: Mapping[str, str]
    body: Any
    if_match: str | None
    request: Request

    @property
    def handle(self) -> ClusterHandle:
        return self.services.handle

    def query_int(self, name: str, default: int, *, low: int = 0, high: int = 1 << 62) -> int:
        text = self.query.get(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise ApiError(400, f"query parameter {name!r} must be an integer, not {text[:40]!r}") from None
        if not low <= value <= high:
            raise ApiError(400, f"query parameter {name!r} must be between {low} and {high}")
        return value

    async def commit(self, make: Callable[[Cib], Patch]) -> WriteResult:
        """Compute a patch on the latest CIB and commit it, honouring ``If-Match`` (the config version).

        The patch carries the version it was computed on, so a concurrent change makes it conflict; it is
        then recomputed on the new CIB, unless the operator's ``If-Match`` says the configuration they saw
        is gone (409 with the current version).
        """
        for attempt in range(COMMIT_ATTEMPTS):
            if attempt:
                # this node's CIB lags the DC's by the commits in flight (status updates on a busy cluster):
                # give it time to catch up rather than recompute on the same stale copy at once
                await asyncio.sleep(min(CONFLICT_BACKOFF_S * 2 ** (attempt - 1), 0.5))
            cib = self.handle.cib()
            self.check_if_match(cib)
            patch = validated(cib, make(cib))
            before = str(version_of(cib))
            if not patch.ops:
                return WriteResult(
                    version=before,
                    index=0,
                    previous_version=before,
                    config_version=config_version(cib),
                    changed=False,
                )
            patch = msgspec.structs.replace(patch, precondition=version_of(cib))
            try:
                done = await self.handle.submit(patch, actor=self.identity.actor)
            except PatchConflict:
                continue
            return WriteResult(
                version=done.version,
                index=done.index,
                previous_version=before,
                config_version=done.version.rsplit(".", 1)[0],
            )
        raise ApiError(
            409,
            "the CIB kept changing while this change was being made; try again",
            current_version=config_version(self.handle.cib()),
        )

    def check_if_match(self, cib: Cib) -> None:
        if self.if_match is None:
            return
        current = config_version(cib)
        if self.if_match != current:
            raise ApiError(
                409,
                f"the configuration changed since you read it (you had version "
                f"{self.if_match}, it is now {current}); read it again and redo your change",
                current_version=current,
            )


Handler = Callable[[Call], Awaitable[msgspec.Struct | Response]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    role: Role | None  # None: no authentication (the API description)
    handler: Handler
    summary: str
    body: type[msgspec.Struct] | None = None
    response: Any = None
    write: bool = False
    query: tuple[str, ...] = ()
    media_type: str = "application/json"


def _parse_if_match(header: str | None) -> str | None:
    if header is None:
        return None
    text = header.strip()
    text = text.removeprefix("W/").strip('"')
    return text or None


def authenticate(services: Services, request: Request) -> Identity:
    if request.scope.get(PEER_UID_KEY) == 0:
        return ROOT
    token = bearer_token(request.headers.get("authorization"))
    challenge = {"WWW-Authenticate": 'Bearer realm="hakeeper"'}
    if token is None:
        raise ApiError(
            401,
            "this request needs a token: send 'Authorization: Bearer <token>' "
            "(an administrator creates one with 'hakeeper token create --role read')",
            headers=challenge,
        )
    if services.tokens is None:
        raise ApiError(
            401, "this endpoint accepts no tokens (none are configured on this node)", headers=challenge
        )
    try:
        identity = services.tokens.verify(token)
    except TokenError as err:
        raise ApiError(500, str(err)) from err
    if identity is None:
        raise ApiError(
            401,
            "the token was not recognised (revoked, mistyped, or from another cluster)",
            headers=challenge,
        )
    return identity


def authorize(identity: Identity, route: Route) -> None:
    if route.role is not None and identity.role < route.role:
        raise ApiError(
            403,
            f"{identity.actor} has the {identity.role.text} role; "
            f"{route.method} {route.path} needs {route.role.text}",
        )


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_body(raw: bytes, model: type[msgspec.Struct]) -> Any:
    try:
        return msgspec.json.decode(raw or b"{}", type=model)
    except msgspec.ValidationError as err:
        raise ApiError(400, f"the request body does not fit: {err}") from err
    except msgspec.DecodeError as err:
        raise ApiError(400, f"the request body is not valid JSON: {err}") from err


def _audit_request(body: Any) -> dict[str, Any]:
    """What the audit log keeps of a request body: everything but secrets and whole configurations."""
    if body is None:
        return {}
    data = msgspec.to_builtins(body)
    if not isinstance(data, dict):
        return {}
    if isinstance(data.get("toml"), str):
        data["toml"] = f"<{len(data['toml'])} characters of TOML>"
    for key in ("params", "meta"):
        if isinstance(data.get(key), dict):
            hidden = secret_names(data[key], data.get("meta") or {})
            data[key] = {k: ("***" if k in hidden else v) for k, v in data[key].items()}
    return data


def map_error(err: Exception) -> ApiError:
    """Turn what the lower layers raise into an answer for the operator."""
    if isinstance(err, ApiError):
        return err
    if isinstance(err, NotFound):
        return ApiError(404, str(err))
    if isinstance(err, OperatorError):
        return ApiError(400, str(err))
    if isinstance(err, PatchConflict):
        return ApiError(409, str(err), current_version=str(err.actual))
    if isinstance(err, PatchError):
        return ApiError(422, f"the change cannot be applied: {err}")
    if isinstance(err, NotLeader | NoQuorum):
        return ApiError(503, str(err))
    if isinstance(err, CommitTimeout):
        return ApiError(504, str(err))
    return ApiError(500, f"internal error in hakeeper ({type(err).__name__}: {err}); please report it")


async def dispatch(services: Services, route: Route, request: Request) -> Response:
    identity: Identity | None = None
    body: Any = None
    before = str(version_of(services.handle.cib()))
    try:
        if route.role is not None:
            identity = authenticate(services, request)
            authorize(identity, route)
        raw = await read_body(request)
        if route.body is not None:
            body = decode_body(raw, route.body)
        elif raw.strip():
            raise ApiError(400, f"{route.method} {route.path} takes no request body")
        call = Call(
            services=services,
            identity=identity or ROOT,
            path=dict(request.path_params),
            query=request.query_params,
            body=body,
            if_match=_parse_if_match(request.headers.get("if-match")),
            request=request,
        )
        result = await route.handler(call)
    except Exception as exc:
        err = map_error(exc)
        if route.write and identity is not None:
            await _audit(services, route, request, identity, body, before, None, err)
        return error_response(err)
    written = result if isinstance(result, WriteResult) else getattr(result, "committed", None)
    if route.write and identity is not None and isinstance(written, WriteResult):
        await _audit(services, route, request, identity, body, before, written, None)
    if isinstance(result, Response):
        return result
    return Response(msgspec.json.encode(result), media_type="application/json")


async def _audit(
    services: Services,
    route: Route,
    request: Request,
    identity: Identity,
    body: Any,
    before: str,
    result: WriteResult | None,
    err: ApiError | None,
) -> None:
    if services.audit is None:
        return
    record = AuditRecord(
        time=services.handle.now(),
        actor=identity.actor,
        role=identity.role.text,
        action=f"{route.method} {request.url.path}",
        request=_audit_request(body),
        version_before=result.previous_version if result else before,
        version_after=result.version if result else None,
        index=result.index if result else None,
        status=err.status if err else 200,
        error=err.message if err else None,
    )
    await asyncio.to_thread(services.audit.append, record)
