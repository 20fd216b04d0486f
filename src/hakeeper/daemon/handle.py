"""The daemon as the API sees it: ``hakeeper.api.handle.ClusterHandle`` over a running ``NodeDaemon``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from hakeeper.api import handle as h
from hakeeper.cib import model as m
from hakeeper.cib.patch import Patch, PatchConflict, PatchError, Version
from hakeeper.controller.messages import SubmitAnswer
from hakeeper.policy.schedule import Transition, schedule

if TYPE_CHECKING:
    from hakeeper.daemon.node import NodeDaemon


def _version(text: str) -> Version:
    a, e, n = (int(x) for x in text.split("."))
    return Version(a, e, n)


def raise_for(answer: SubmitAnswer, leader: str | None) -> h.Committed:
    """Turn the DC's answer into a ``Committed`` or the error the API maps to a status code."""
    if answer.outcome == "committed":
        return h.Committed(version=answer.version, index=answer.index)
    if answer.outcome == "conflict":
        raise PatchConflict(_version(answer.expected), _version(answer.actual))
    if answer.outcome == "invalid":
        raise PatchError(answer.error)
    if answer.outcome == "no-quorum":
        raise h.NoQuorum()
    if answer.outcome == "timeout":
        raise h.CommitTimeout(10.0)
    raise h.NotLeader(leader)


class DaemonHandle:
    def __init__(self, daemon: NodeDaemon) -> None:
        self.daemon = daemon

    def cib(self) -> m.Cib:
        return self.daemon.cib

    async def submit(self, patch: Patch, *, actor: str) -> h.Committed:
        answer = await self.daemon.submit_anywhere(patch, actor=actor, why=f"operator {actor}")
        return raise_for(answer, self.daemon.leader)

    def cluster_state(self) -> h.ClusterState:
        d = self.daemon
        service = d.service
        quorate = bool(service is not None and service.quorum.quorate)
        fenced = {
            e.target: float(e.completed or 0) for e in d.cib.status.fencing_history if e.state == "done"
        }
        members = [
            h.MemberState(name=n.name, online=n.name in d.up, fenced_at=fenced.get(n.name))
            for n in d.config.nodes
        ]
        links: list[h.LinkState] = []
        if service is not None:
            for (node_id, link), up in sorted(service.transport.link_states().items()):
                links.append(h.LinkState(node=d.names.get(node_id, str(node_id)), link=link, up=up))
        return h.ClusterState(
            cluster_name=d.config.cluster_name,
            local_node=d.name,
            members=members,
            quorate=quorate,
            dc=d.leader,
            links=links,
        )

    def events(self, since: int = 0, limit: int = 1000) -> list[h.Event]:
        return self.daemon.hub.log.since(since, limit)

    def subscribe(self, since: int = 0) -> AsyncIterator[h.Event]:
        return self.daemon.hub.subscribe(since)

    async def simulate(self, cib: m.Cib) -> Transition:
        return await self.daemon.run_policy(schedule, cib, int(time.time()))

    def now(self) -> float:
        return time.time()

    def shutdown_here(self, why: str) -> None:
        self.daemon.shutdown.begin(why)
