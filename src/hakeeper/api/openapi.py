"""``openapi.json`` generated from the route table and the msgspec models the API validates with."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from hakeeper import __version__
from hakeeper.api.routing import Route
from hakeeper.api.schemas import ErrorBody

REF = "#/components/schemas/{name}"
_PARAM = re.compile(r"\{(\w+)\}")

ERRORS = {
    "400": "The request is malformed or not possible (the message says why)",
    "401": "No token, or a token that is not recognised",
    "403": "The token's role does not allow this",
    "404": "No such resource, node, constraint or route",
    "409": "The configuration changed since it was read (current_version says to what)",
    "413": "The request body is too large",
    "503": "The cluster cannot commit right now (no quorum or no DC)",
}


def _types(routes: list[Route]) -> list[Any]:
    out: list[Any] = [ErrorBody]
    for r in routes:
        for t in (r.body, r.response):
            if t is not None and t not in out:
                out.append(t)
    return out


def _operation(route: Route, schemas: dict[Any, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "operationId": f"{route.method.lower()}{route.path}"}
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in _PARAM.findall(route.path)
    ]
    params += [
        {"name": q, "in": "query", "required": False, "schema": {"type": "integer"}} for q in route.query
    ]
    if route.write:
        params.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": route.path == "/v1/config",
                "schema": {"type": "string"},
                "description": "The config_version the change was prepared against",
            }
        )
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas[route.body]}},
        }
    if route.response is not None:
        ok: dict[str, Any] = {
            "description": "OK",
            "content": {route.media_type: {"schema": schemas[route.response]}},
        }
    else:
        ok = {"description": "OK", "content": {route.media_type: {"schema": {"type": "string"}}}}
    op["responses"] = {
        "200": ok,
        **{
            code: {"description": text, "content": {"application/json": {"schema": schemas[ErrorBody]}}}
            for code, text in ERRORS.items()
        },
    }
    if route.role is not None:
        op["security"] = [{"bearer": []}]
        op["x-hakeeper-role"] = route.role.text
    return op


def openapi_document(routes: list[Route]) -> dict[str, Any]:
    types = _types(routes)
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    schemas = dict(zip(types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hakeeper operator API",
            "version": __version__,
            "description": "Read the cluster and change it; writes go through the DC and the replicated "
            "log and answer with the version they committed.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
