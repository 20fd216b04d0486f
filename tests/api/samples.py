"""One valid request per route of the API (against ``helpers.sample_cib``), for route, role and fuzz tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    method: str
    route: str  # the route's path template, as in the route table
    url: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


SAMPLES: list[Sample] = [
    Sample("GET", "/v1/whoami", "/v1/whoami"),
    Sample("GET", "/v1/cluster", "/v1/cluster"),
    Sample("GET", "/v1/nodes", "/v1/nodes"),
    Sample("GET", "/v1/nodes/{node}", "/v1/nodes/n2"),
    Sample("GET", "/v1/resources", "/v1/resources"),
    Sample("GET", "/v1/resources/{rsc}", "/v1/resources/vip"),
    Sample("GET", "/v1/resources/{rsc}/explain", "/v1/resources/vip/explain"),
    Sample("GET", "/v1/constraints", "/v1/constraints"),
    Sample("GET", "/v1/events", "/v1/events?since=0&limit=10"),
    Sample("GET", "/v1/events/stream", "/v1/events/stream?limit=1"),
    Sample("GET", "/v1/fencing", "/v1/fencing"),
    Sample("GET", "/v1/alerts", "/v1/alerts"),
    Sample(
        "POST",
        "/v1/simulate",
        "/v1/simulate",
        {
            "ops": [
                {
                    "op": "create",
                    "path": "/configuration/nodes/n1/instance_attributes",
                    "value": {"id": "n1-standby", "values": {"standby": "on"}},
                }
            ]
        },
    ),
    Sample("GET", "/v1/config", "/v1/config"),
    Sample("POST", "/v1/preview", "/v1/preview", {"action": "move", "rsc": "vip", "node": "n2"}),
    Sample("GET", "/metrics", "/metrics"),
    Sample("GET", "/openapi.json", "/openapi.json"),
    Sample(
        "POST",
        "/v1/resources",
        "/v1/resources",
        {"id": "db", "agent": "ocf:heartbeat:pgsql", "params": {"pgdata": "/srv/db"}},
    ),
    Sample("PATCH", "/v1/resources/{rsc}", "/v1/resources/httpd", {"params": {"port": "8080"}}),
    Sample("DELETE", "/v1/resources/{rsc}", "/v1/resources/httpd"),
    Sample("POST", "/v1/resources/{rsc}/move", "/v1/resources/vip/move", {"node": "n2"}),
    Sample("POST", "/v1/resources/{rsc}/ban", "/v1/resources/vip/ban", {"node": "n3"}),
    Sample("POST", "/v1/resources/{rsc}/clear", "/v1/resources/vip/clear", {}),
    Sample("POST", "/v1/resources/{rsc}/cleanup", "/v1/resources/vip/cleanup", {"node": "n1"}),
    Sample("POST", "/v1/resources/{rsc}/enable", "/v1/resources/web/enable"),
    Sample("POST", "/v1/resources/{rsc}/disable", "/v1/resources/web/disable"),
    Sample("POST", "/v1/resources/{rsc}/restart", "/v1/resources/ping-clone/restart", {"timeout_s": 5}),
    Sample(
        "POST",
        "/v1/constraints/location",
        "/v1/constraints/location",
        {"rsc": "vip", "node": "n2", "score": 100},
    ),
    Sample(
        "POST",
        "/v1/constraints/colocation",
        "/v1/constraints/colocation",
        {"rsc": "ping-clone", "with_rsc": "vip", "score": "-INFINITY"},
    ),
    Sample("POST", "/v1/constraints/order", "/v1/constraints/order", {"first": "vip", "then": "web"}),
    Sample("DELETE", "/v1/constraints/{id}", "/v1/constraints/web-with-vip"),
    Sample("POST", "/v1/nodes/{node}/standby", "/v1/nodes/n2/standby"),
    Sample("POST", "/v1/nodes/{node}/unstandby", "/v1/nodes/n2/unstandby"),
    Sample("POST", "/v1/nodes/{node}/shutdown", "/v1/nodes/n2/shutdown"),
    Sample("POST", "/v1/nodes/{node}/maintenance", "/v1/nodes/n2/maintenance", {"on": True}),
    Sample("PUT", "/v1/nodes/{node}/attributes/{name}", "/v1/nodes/n2/attributes/rack", {"value": "r1"}),
    Sample("DELETE", "/v1/nodes/{node}/attributes/{name}", "/v1/nodes/n1/attributes/rack"),
    Sample("POST", "/v1/nodes/{node}/fence", "/v1/nodes/n2/fence", {"action": "off", "timeout_s": 5}),
    Sample("POST", "/v1/nodes/{node}/fence/confirm", "/v1/nodes/n2/fence/confirm", {"force": True}),
    Sample("POST", "/v1/cluster/maintenance", "/v1/cluster/maintenance", {"on": True}),
    Sample(
        "POST", "/v1/config/haresources", "/v1/config/haresources", {"line": "n2 IPaddr::10.0.0.20/24 nginx"}
    ),
    Sample("PUT", "/v1/config", "/v1/config", {"toml": "", "dry_run": True}, (("If-Match", "0.7"),)),
]
