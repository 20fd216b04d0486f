"""A small synchronous client of the operator API, for the CLI: httpx over the local Unix socket (or TLS).

Answers decode into the same msgspec models the server uses; any failure raises ``ApiRequestError`` with
the server's sentence (or one saying the daemon cannot be reached), ready to show to the operator.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from hakeeper.api import schemas as s
from hakeeper.api.handle import Event
from hakeeper.cib.operator import ResourceSpec

DEFAULT_SOCKET = Path("/var/lib/hakeeper/api.sock")
"""The daemon's default (``<data_dir>/api.sock`` with the default data directory)."""
T = TypeVar("T")


def _q(segment: str) -> str:
    """One path segment, quoted (ids may hold characters that mean something in a URL)."""
    return quote(segment, safe="")


class ApiRequestError(Exception):
    """The API refused or could not be reached; ``status`` is 0 when nothing answered."""

    def __init__(self, status: int, message: str, current_version: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.current_version = current_version


class ApiClient:
    """Talks to one node's API. ``socket_path`` for the local daemon, or ``base_url`` for a remote one."""

    def __init__(
        self,
        *,
        socket_path: Path | None = DEFAULT_SOCKET,
        base_url: str | None = None,
        token: str | None = None,
        timeout_s: float = 60.0,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if transport is None and base_url is None and socket_path is not None:
            transport = httpx.HTTPTransport(uds=str(socket_path))
        self.where = base_url or f"the socket {socket_path}"
        self._http = httpx.Client(
            base_url=base_url or "http://hakeeper",
            headers=headers,
            timeout=timeout_s,
            transport=transport,
            verify=verify,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: msgspec.Struct | dict[str, Any] | None = None,
        *,
        if_match: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> bytes:
        headers = {"If-Match": if_match} if if_match else {}
        content = msgspec.json.encode(body) if body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            resp = self._http.request(method, path, content=content, headers=headers, params=params)
        except httpx.TransportError as err:
            raise ApiRequestError(
                0,
                f"cannot reach the hakeeper API at {self.where} ({err}); is the daemon running on this node?",
            ) from err
        if resp.status_code >= 400:
            try:
                error = msgspec.json.decode(resp.content, type=s.ErrorBody)
            except msgspec.DecodeError:
                error = s.ErrorBody(error=f"the API answered {resp.status_code}: {resp.text[:200]}")
            raise ApiRequestError(resp.status_code, error.error, error.current_version)
        return resp.content

    def _get(self, path: str, model: type[T], **params: Any) -> T:
        return msgspec.json.decode(self.request("GET", path, params=params or None), type=model)

    def _write(
        self, method: str, path: str, body: msgspec.Struct | None = None, if_match: str | None = None
    ) -> s.WriteResult:
        return msgspec.json.decode(self.request(method, path, body, if_match=if_match), type=s.WriteResult)

    # --- reads --------------------------------------------------------------------------------------------

    def cluster(self) -> s.ClusterView:
        return self._get("/v1/cluster", s.ClusterView)

    def resources(self) -> s.ResourceList:
        return self._get("/v1/resources", s.ResourceList)

    def resource(self, rsc: str) -> s.ResourceView:
        return self._get(f"/v1/resources/{_q(rsc)}", s.ResourceView)

    def explain(self, rsc: str) -> s.ExplainResult:
        return self._get(f"/v1/resources/{_q(rsc)}/explain", s.ExplainResult)

    def constraints(self) -> s.ConstraintList:
        return self._get("/v1/constraints", s.ConstraintList)

    def events(self, since: int = 0, limit: int = 1000) -> s.EventList:
        return self._get("/v1/events", s.EventList, since=since, limit=limit)

    def stream_events(self, since: int = 0) -> Iterator[Event]:
        """Live events (server-sent), forever or until the connection ends."""
        with self._http.stream("GET", "/v1/events/stream", params={"since": since}, timeout=None) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise ApiRequestError(resp.status_code, resp.text[:300])
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    yield msgspec.json.decode(line[6:], type=Event)

    def config(self) -> s.ConfigView:
        return self._get("/v1/config", s.ConfigView)

    def simulate(self, request: s.SimulateRequest) -> s.SimulateResult:
        return msgspec.json.decode(self.request("POST", "/v1/simulate", request), type=s.SimulateResult)

    def whoami(self) -> s.WhoAmI:
        return self._get("/v1/whoami", s.WhoAmI)

    # --- writes -------------------------------------------------------------------------------------------

    def create_resource(self, spec: ResourceSpec) -> s.WriteResult:
        return self._write("POST", "/v1/resources", spec)

    def update_resource(self, rsc: str, update: s.ResourceUpdate) -> s.WriteResult:
        return self._write("PATCH", f"/v1/resources/{_q(rsc)}", update)

    def delete_resource(self, rsc: str) -> s.WriteResult:
        return self._write("DELETE", f"/v1/resources/{_q(rsc)}")

    def move(self, rsc: str, node: str, lifetime_s: int | None = None) -> s.WriteResult:
        return self._write(
            "POST", f"/v1/resources/{_q(rsc)}/move", s.MoveRequest(node=node, lifetime_s=lifetime_s)
        )

    def ban(self, rsc: str, node: str) -> s.WriteResult:
        return self._write("POST", f"/v1/resources/{_q(rsc)}/ban", s.BanRequest(node=node))

    def clear(self, rsc: str, node: str | None = None) -> s.WriteResult:
        return self._write("POST", f"/v1/resources/{_q(rsc)}/clear", s.NodeOptional(node=node))

    def cleanup(self, rsc: str, node: str | None = None) -> s.WriteResult:
        return self._write("POST", f"/v1/resources/{_q(rsc)}/cleanup", s.NodeOptional(node=node))

    def enable(self, rsc: str) -> s.WriteResult:
        return self._write("POST", f"/v1/resources/{_q(rsc)}/enable")

    def disable(self, rsc: str) -> s.WriteResult:
        return self._write("POST", f"/v1/resources/{_q(rsc)}/disable")

    def restart(self, rsc: str, timeout_s: float = 60.0) -> s.WriteResult:
        return self._write("POST", f"/v1/resources/{_q(rsc)}/restart", s.RestartRequest(timeout_s=timeout_s))

    def add_location(self, req: s.LocationAdd) -> s.WriteResult:
        return self._write("POST", "/v1/constraints/location", req)

    def add_colocation(self, req: s.ColocationAdd) -> s.WriteResult:
        return self._write("POST", "/v1/constraints/colocation", req)

    def add_order(self, req: s.OrderAdd) -> s.WriteResult:
        return self._write("POST", "/v1/constraints/order", req)

    def remove_constraint(self, constraint_id: str) -> s.WriteResult:
        return self._write("DELETE", f"/v1/constraints/{_q(constraint_id)}")

    def standby(self, node: str, on: bool = True) -> s.WriteResult:
        return self._write("POST", f"/v1/nodes/{_q(node)}/{'standby' if on else 'unstandby'}")

    def node_maintenance(self, node: str, on: bool) -> s.WriteResult:
        return self._write("POST", f"/v1/nodes/{_q(node)}/maintenance", s.Switch(on=on))

    def set_node_attribute(self, node: str, name: str, value: str) -> s.WriteResult:
        return self._write(
            "PUT", f"/v1/nodes/{_q(node)}/attributes/{_q(name)}", s.AttributeValue(value=value)
        )

    def delete_node_attribute(self, node: str, name: str) -> s.WriteResult:
        return self._write("DELETE", f"/v1/nodes/{_q(node)}/attributes/{_q(name)}")

    def maintenance(self, on: bool) -> s.WriteResult:
        return self._write("POST", "/v1/cluster/maintenance", s.Switch(on=on))

    def apply_config(self, toml: str, if_match: str, dry_run: bool = False) -> s.ConfigApplyResult:
        raw = self.request("PUT", "/v1/config", s.ConfigApply(toml=toml, dry_run=dry_run), if_match=if_match)
        return msgspec.json.decode(raw, type=s.ConfigApplyResult)
