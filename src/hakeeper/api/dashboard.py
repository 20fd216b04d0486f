"""The live web dashboard: a static page served at ``/`` that reads the API like any other client.

The page (``static/dashboard.html``, ``.js``, ``.css``: plain files, no build step, nothing from the
internet) authenticates as the API does: no token for root on the Unix socket, otherwise a bearer token the
operator types once (kept in the tab's sessionStorage). It follows ``/v1/events/stream`` and re-reads
``/v1/cluster`` and ``/v1/resources`` when an event arrives. The page itself holds no data, so serving it
needs no token; every figure on it comes from authenticated API calls.

Before an operator confirms an action, the page shows what the cluster would do: ``POST /v1/preview``
computes the same patch the write route would commit and runs the policy engine on the result, without
committing anything.

A browser reaches the page through the daemon's plain-HTTP listener (``[api] http_listen``, loopback
addresses only, served by ``app.start_http``); tokens are always required there. Do not bridge the Unix socket
to TCP (socat and the like): the bridge connects as root, so every local user would be admin.
"""

from __future__ import annotations

from importlib import resources
from typing import Literal

from starlette.requests import Request as HttpRequest
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from hakeeper.api.auth import Role
from hakeeper.api.routing import ApiError, Call, Route, error_response
from hakeeper.api.schemas import Request, SimulateResult
from hakeeper.cib import model as m
from hakeeper.cib import operator as op
from hakeeper.cib.patch import Patch, PatchError, apply, version_of

ASSETS: dict[str, str] = {
    "dashboard.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
"""The page's files (package data under ``hakeeper/api/static``) and their media types."""

SECURITY_HEADERS: dict[str, str] = {
    # only our own files run; the page talks to this origin only; no framing (clickjacking an action)
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def asset(name: str) -> bytes:
    """The bytes of one of the page's files; ``KeyError`` for a name that is not one of them."""
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files("hakeeper.api").joinpath("static", name).read_bytes()


def _asset_response(name: str) -> Response:
    return Response(asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)


async def _page(request: HttpRequest) -> Response:
    return _asset_response("dashboard.html")


async def _static(request: HttpRequest) -> Response:
    name = str(request.path_params["name"])
    if name not in ASSETS:
        return error_response(ApiError(404, f"the dashboard has no file {name[:80]!r}"))
    return _asset_response(name)


def page_routes() -> list[StarletteRoute]:
    """``GET /`` (the page) and ``GET /dashboard/{name}`` (its script and style sheet)."""
    return [
        StarletteRoute("/", _page, methods=["GET"]),
        StarletteRoute("/dashboard/{name}", _static, methods=["GET"]),
    ]


# --- what an action would do ------------------------------------------------------------------------------


class PreviewRequest(Request):
    """An action the dashboard offers, to be predicted: ``rsc`` for move/cleanup, ``node`` for standby and
    move (and optionally cleanup)."""

    action: Literal["standby", "unstandby", "move", "cleanup"]
    rsc: str | None = None
    node: str | None = None


def _needs(value: str | None, what: str, action: str) -> str:
    if not value:
        raise ApiError(400, f"'{action}' needs '{what}' (which {what} to act on)")
    return value


def action_patch(cib: m.Cib, req: PreviewRequest, now: int) -> Patch:
    """The patch the write route for ``req`` would commit on ``cib`` (the same ``cib.operator`` call)."""
    if req.action in ("standby", "unstandby"):
        return op.standby(cib, _needs(req.node, "node", req.action), req.action == "standby")
    rsc = _needs(req.rsc, "rsc", req.action)
    if req.action == "move":
        return op.move(cib, rsc, _needs(req.node, "node", req.action), now=now)
    return op.cleanup(cib, rsc, req.node or None)


async def preview(call: Call) -> SimulateResult:
    cib = call.handle.cib()
    patch = action_patch(cib, call.body, int(call.handle.now()))
    try:
        changed = op.validated(cib, patch)
        after = apply(cib, changed) if changed.ops else cib
    except PatchError as err:
        raise ApiError(422, f"the change cannot be applied: {err}") from err
    transition = await call.handle.simulate(after)
    return SimulateResult(
        summary=transition.summary,
        actions=transition.actions,
        warnings=transition.warnings,
        version=str(version_of(cib)),
    )


PREVIEW_ROUTE = Route(
    "POST",
    "/v1/preview",
    Role.READ,
    preview,
    "What the cluster would do after a dashboard action (standby, unstandby, move, cleanup); nothing changes",
    body=PreviewRequest,
    response=SimulateResult,
)
