"""Helpers for the API tests: a small cluster (three nodes; a VIP with secret parameters, running on n1
with one failure; a web group; a clone) and the test environment around the app."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from hakeeper.api.audit import AuditLog
from hakeeper.api.auth import TokenStore
from hakeeper.api.fake import FakeCluster
from hakeeper.cib import model as m

NOW = 1_700_000_000
SECRET = "s3cr3t-Value-42"
FAILED_AT = NOW - 100


def dummy(rid: str, **params: str) -> m.Primitive:
    inst = [m.NvSet(id=f"{rid}-ia", values=dict(params))] if params else []
    return m.Primitive(id=rid, klass="ocf", provider="pacemaker", type="Dummy", instance_attributes=inst)


def running(rid: str, node: str, call_id: int) -> m.ResourceHistory:
    return m.ResourceHistory(
        id=rid,
        klass="ocf",
        provider="pacemaker",
        type="Dummy",
        ops=[m.OpRecord(id=f"{rid}_last_0", operation="start", call_id=call_id, rc=0, on_node=node)],
    )


def sample_cib() -> m.Cib:
    vip = m.Primitive(
        id="vip",
        klass="ocf",
        provider="pacemaker",
        type="Dummy",
        instance_attributes=[
            m.NvSet(id="vip-ia", values={"ip": "10.0.0.10", "password": SECRET, "community": "public-ish"})
        ],
        meta_attributes=[
            m.NvSet(
                id="vip-meta",
                values={"failure-timeout": "600", "migration-threshold": "3", "secret-params": "community"},
            )
        ],
    )
    cfg = m.Configuration(
        properties=[m.NvSet(id="cib-bootstrap-options", values={"stonith-enabled": "false"})],
        nodes=[
            m.Node(id="n1", uname="n1", instance_attributes=[m.NvSet(id="n1-ia", values={"rack": "r0"})]),
            m.Node(id="n2", uname="n2"),
            m.Node(id="n3", uname="n3"),
        ],
        resources=[
            vip,
            m.Group(id="web", children=[dummy("fs"), dummy("httpd")]),
            m.Clone(id="ping-clone", child=dummy("ping")),
        ],
        constraints=[m.Colocation(id="web-with-vip", rsc="web", with_rsc="vip", score=1_000_000)],
    )
    vip_hist = running("vip", "n1", 4)
    vip_hist = m.ResourceHistory(
        id="vip",
        klass="ocf",
        provider="pacemaker",
        type="Dummy",
        ops=[
            *vip_hist.ops,
            m.OpRecord(
                id="vip_last_failure_0",
                operation="monitor",
                call_id=3,
                rc=7,
                interval=10_000,
                exit_reason="not running",
                last_rc_change=FAILED_AT,
                on_node="n1",
            ),
        ],
    )
    states = [
        m.NodeState(
            id="n1",
            uname="n1",
            in_ccm="true",
            crmd="online",
            join="member",
            expected="member",
            resources=[vip_hist, running("fs", "n1", 5), running("httpd", "n1", 6)],
            transient_attributes=[
                m.NvSet(
                    id="status-n1",
                    values={
                        "fail-count-vip#monitor_10000": "1",
                        "last-failure-vip#monitor_10000": str(FAILED_AT),
                    },
                )
            ],
        ),
        m.NodeState(id="n2", uname="n2", in_ccm="true", crmd="online", join="member", expected="member"),
        m.NodeState(id="n3", uname="n3", in_ccm="true", crmd="online", join="member", expected="member"),
    ]
    return m.Cib(
        epoch=7,
        num_updates=2,
        configuration=cfg,
        status=m.Status(
            nodes=states,
            fencing_history=[
                m.FenceEvent(target="n3", action="reboot", state="done", origin="n1", completed=NOW - 5000)
            ],
        ),
    )


@dataclass
class Env:
    fake: FakeCluster
    tokens: dict[str, str]
    audit: AuditLog
    store: TokenStore
    client: httpx.AsyncClient

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}
