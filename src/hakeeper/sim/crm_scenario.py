"""What a CRM simulation seed runs: the cluster's configuration and the seed's fault profile.

Every seed is a small cluster (3-5 nodes) with fencing on and a device for every node, a handful of
resources — a primitive, a group of two, another primitive — with ``db`` ordered before the group. Each seed
draws its own mix of faults (swarm testing): some runs crash nodes, others only lose messages or fail
fencing devices.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hakeeper.cib import model as m

START_MS = 1_700_000_000_000
MONITORED = "db"
"""The resource with a recurring monitor: the one that may die behind the cluster's back."""
"""The simulated clock starts at a plausible epoch (the CIB records epoch seconds)."""


def _dummy(rsc: str, monitor_ms: int = 0) -> m.Primitive:
    operations = [m.Operation(id=f"{rsc}-start", name="start", timeout=20_000)]
    if monitor_ms:
        operations.append(
            m.Operation(id=f"{rsc}-monitor", name="monitor", interval=monitor_ms, timeout=20_000)
        )
    return m.Primitive(id=rsc, klass="ocf", provider="heartbeat", type="Dummy", operations=operations)


def _device(node: str, delay_max_ms: int) -> m.Primitive:
    params = {"pcmk_host_list": node, "pcmk_reboot_timeout": "4s", "pcmk_reboot_retries": "1"}
    if delay_max_ms:
        params["pcmk_delay_max"] = f"{delay_max_ms}ms"
    return m.Primitive(
        id=f"fence-{node}",
        klass="stonith",
        type="fence_sim",
        instance_attributes=[m.NvSet(id=f"fence-{node}-params", values=params)],
    )


def scenario_cib(nodes: list[str], device_delay_max_ms: int = 0) -> m.Cib:
    """The configuration every seed starts from (status empty: the first DC writes membership)."""
    config = m.Configuration(
        properties=[m.NvSet(id="cib-bootstrap-options", values={"stonith-enabled": "true"})],
        nodes=[m.Node(id=n, uname=n) for n in nodes],
        resources=[
            *(_device(n, device_delay_max_ms) for n in nodes),
            _dummy(MONITORED, monitor_ms=5_000),
            m.Group(id="web", children=[_dummy("ip"), _dummy("www")]),
            _dummy("cron"),
        ],
        constraints=[m.Order(id="db-before-web", first="db", then="web")],
    )
    return m.Cib(configuration=config)


def fencing_devices(cib: m.Cib) -> frozenset[str]:
    """The stonith primitives (top level in the scenario): they need quorum, not fencing."""
    return frozenset(
        r.id for r in cib.configuration.resources if isinstance(r, m.Primitive) and r.klass == "stonith"
    )


def primitive_ids(cib: m.Cib) -> tuple[str, ...]:
    out: list[str] = []

    def visit(r: m.Resource) -> None:
        if isinstance(r, m.Primitive):
            out.append(r.id)
        elif isinstance(r, m.Group):
            for child in r.children:
                visit(child)

    for r in cib.configuration.resources:
        visit(r)
    return tuple(out)


@dataclass(frozen=True)
class CrmProfile:
    nodes: int
    fault_ms: int  # length of the fault phase
    crashes: int  # node crashes (the node's daemon dies; what it runs keeps running)
    dc_crashes: int  # the DC crashes while actions of its transition are running
    deposals: int  # the DC loses leadership without crashing (and learns it late)
    loss: float  # chance a controller message is lost (fault phase)
    max_delay_ms: int  # controller message delay bound (fault phase)
    device_fail: float  # chance a fencing device reports failure
    device_slow: float  # chance a fencing device hangs past its timeout (and maybe kills anyway)
    device_delay_max_ms: int  # pcmk_delay_max of every device
    start_failures: int  # how many starts may fail (at most one per resource, so all can still run)
    away_ms: tuple[int, int]  # how long a crashed or fenced node stays away, during the fault phase
    liveness_ms: int  # after the faults: bound for every resource to run exactly once
    deaths: int = 0  # the monitored resource (db) dies behind the cluster's back
    daemon_restarts: bool = False
    """A lost node that was not fenced comes back with a *restarted* daemon (its LRM's memory gone) while what
    it ran keeps running — instead of resuming where it stopped. Drawn for about a third of the seeds."""

    @classmethod
    def random(cls, rng: random.Random, *, daemon_restarts: bool = False) -> CrmProfile:
        """A seed's faults; ``daemon_restarts`` forces that fault on (otherwise it is drawn too)."""

        def some(p: float, most: int) -> int:
            return rng.randint(1, most) if rng.random() < p else 0

        return cls(
            nodes=rng.choice((3, 3, 4, 5)),
            fault_ms=rng.randint(4_000, 16_000),
            crashes=some(0.7, 3),
            dc_crashes=some(0.5, 2),
            deposals=some(0.3, 2),
            loss=rng.choice((0.0, 0.0, 0.02, 0.1, 0.3)),
            max_delay_ms=rng.choice((5, 30, 300)),
            device_fail=rng.choice((0.0, 0.0, 0.2, 0.5)),
            device_slow=rng.choice((0.0, 0.0, 0.1, 0.3)),
            device_delay_max_ms=rng.choice((0, 0, 500)),
            start_failures=some(0.4, 2),
            away_ms=rng.choice(((500, 3_000), (2_000, 12_000), (10**9, 10**9))),
            liveness_ms=300_000,
            daemon_restarts=daemon_restarts or rng.random() < 0.3,
            deaths=some(0.3, 2),
        )
