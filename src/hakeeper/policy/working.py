"""The scheduler's working set: mutable per-run views of nodes, resources and actions.

These objects live only inside one ``schedule`` call (they are built from the immutable CIB and thrown
away), so mutating them keeps the algorithms close to their description in "Pacemaker Explained"
without leaking state between calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hakeeper.cib.model import NvSet, OpRecord, ResourceHistory

INFINITY = 1_000_000


def add_scores(a: int, b: int) -> int:
    """Add two scores the Pacemaker way: -INFINITY wins, then +INFINITY, else saturate."""
    if a <= -INFINITY or b <= -INFINITY:
        return -INFINITY
    if a >= INFINITY or b >= INFINITY:
        return INFINITY
    return max(-INFINITY, min(INFINITY, a + b))


class Role(IntEnum):
    """Resource roles, ordered as Pacemaker orders them (higher is "more active")."""

    UNKNOWN = 0
    STOPPED = 1
    STARTED = 2
    UNPROMOTED = 3
    PROMOTED = 4

    @property
    def text(self) -> str:
        return _ROLE_TEXT[self]


_ROLE_TEXT = {
    Role.UNKNOWN: "Unknown",
    Role.STOPPED: "Stopped",
    Role.STARTED: "Started",
    Role.UNPROMOTED: "Unpromoted",
    Role.PROMOTED: "Promoted",
}


def parse_role(text: str | None) -> Role:
    """Map a configured role name (old and new spellings) to a Role; unknown names give UNKNOWN."""
    if text is None:
        return Role.UNKNOWN
    return {
        "stopped": Role.STOPPED,
        "started": Role.STARTED,
        "unpromoted": Role.UNPROMOTED,
        "slave": Role.UNPROMOTED,
        "promoted": Role.PROMOTED,
        "master": Role.PROMOTED,
    }.get(text.strip().lower(), Role.UNKNOWN)


@dataclass(eq=False)
class NodeInfo:
    """A node as the scheduler sees it this run."""

    name: str
    id: str
    kind: str = "member"  # member remote ping
    online: bool = False
    unclean: bool = False
    unseen: bool = True
    shutdown: bool = False
    standby: bool = False
    pending: bool = False
    maintenance: bool = False
    expected_up: bool = False
    fence_reason: str | None = None
    base_score: int = 0
    attrs: dict[str, str] = field(default_factory=dict)
    utilization: dict[str, int] = field(default_factory=dict)
    num_resources: int = 0  # resources assigned so far (tie-break)
    remote_rsc: str | None = None
    remote_was_fenced: bool = False  # a remote node's recorded fencing since its connection last failed
    requires_reset: bool = False  # a guest node "fenced" by recovering its VM or container

    def available(self, consider_score: bool = False, score: int = 0) -> bool:
        """Can this node run resources at all (online, clean, not standby or shutting down)?"""
        if not self.online or self.unclean or self.shutdown or self.standby or self.pending:
            return False
        if self.maintenance:
            return False
        return not (consider_score and score < 0)


@dataclass(eq=False)
class Colocation:
    """A colocation between two resources (expanded from constraints, sets and groups)."""

    id: str
    dependent: Rsc
    primary: Rsc
    score: int
    dependent_role: Role = Role.UNKNOWN
    primary_role: Role = Role.UNKNOWN
    node_attribute: str = "#uname"
    influence: bool = True


@dataclass(eq=False)
class Rsc:
    """A resource in the tree: primitive, group or clone; clone instances are primitives or groups."""

    id: str
    kind: str  # primitive group clone
    parent: Rsc | None = None
    children: list[Rsc] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    param_layers: list[list[NvSet]] = field(default_factory=list)
    """The instance-attribute sets behind ``params`` (clone's, group's, its own: later ones win), kept when a
    rule in them may read node attributes, so that ``digests.params_on`` can resolve them per node."""
    utilization: dict[str, int] = field(default_factory=dict)
    agent: str = ""
    klass: str = ""
    ops: list[OpDef] = field(default_factory=list)
    # configuration-derived
    managed: bool = True
    unique: bool = False
    promotable: bool = False
    orphan: bool = False
    stickiness: int = 0
    priority: int = 0
    migration_threshold: int = INFINITY
    failure_timeout: int = 0  # seconds
    reconnect_s: int = 0  # a remote connection's reconnect_interval: no restart until its failure expires
    container: Rsc | None = None  # the VM or container it runs in (a guest's connection, or a filler)
    restart_required: bool = False  # stop and start again where it runs (a filler inside it failed)
    clone_max: int = 0
    clone_node_max: int = 1
    promoted_max: int = 1
    promoted_node_max: int = 1
    interleave: bool = False
    ordered: bool = False
    notify: bool = False
    allow_migrate: bool = False
    multiple_active: str = "stop_start"
    requires_fencing: bool = True
    target_role: Role = Role.UNKNOWN
    # state
    role: Role = Role.STOPPED
    next_role: Role = Role.UNKNOWN
    next_role_reason: str | None = None
    running_on: list[NodeInfo] = field(default_factory=list)
    known_on: set[str] = field(default_factory=set)
    failed: bool = False
    stop_needed: bool = False  # pe_rsc_stop: failed and must be stopped
    blocked: bool = False
    start_pending: bool = False
    pending_node: str | None = None
    history_name: str | None = None
    partial_migration_source: NodeInfo | None = None
    partial_migration_target: NodeInfo | None = None
    dangling_migrations: list[NodeInfo] = field(default_factory=list)
    reload: bool = False
    history: list[NodeHistory] = field(default_factory=list)  # recorded operations, per node
    definition_change: dict[str, str] = field(default_factory=dict)  # node -> restart, reload or agent
    # allocation
    allowed: dict[str, int] = field(default_factory=dict)
    discover_exclusive: set[str] | None = None  # resource-discovery=exclusive: the only nodes it may use
    provisional: bool = True
    allocating: bool = False
    merging: bool = False
    assigned: NodeInfo | None = None
    this_with: list[Colocation] = field(default_factory=list)
    with_this: list[Colocation] = field(default_factory=list)
    promotion_priority: int = 0
    actions: list[Action] = field(default_factory=list)

    def top(self) -> Rsc:
        rsc = self
        while rsc.parent is not None:
            rsc = rsc.parent
        return rsc

    def primitives(self) -> list[Rsc]:
        if self.kind == "primitive":
            return [self]
        out: list[Rsc] = []
        for child in self.children:
            out.extend(child.primitives())
        return out

    def current_node(self) -> NodeInfo | None:
        """Where the resource runs; during a partial migration, the node it is migrating from."""
        source = self.partial_migration_source
        if source is not None and source in self.running_on:
            return source
        return self.running_on[0] if self.running_on else None

    @property
    def is_clone(self) -> bool:
        return self.kind == "clone"

    def clone_parent(self) -> Rsc | None:
        """The nearest enclosing clone, if any."""
        rsc = self.parent
        while rsc is not None:
            if rsc.kind == "clone":
                return rsc
            rsc = rsc.parent
        return None


@dataclass
class OpDef:
    """A configured operation of a primitive, with defaults resolved."""

    name: str
    interval_ms: int
    role: Role = Role.UNKNOWN
    on_fail: str | None = None
    enabled: bool = True
    params: dict[str, str] = field(default_factory=dict)  # the op's own instance attributes


@dataclass(eq=False, slots=True)
class NodeHistory:
    """A resource's recorded operations on one node (oldest call first) and the agent they ran."""

    node: NodeInfo
    record: ResourceHistory
    ops: list[OpRecord]

    @property
    def agent(self) -> str:
        parts = (self.record.klass, self.record.provider or "", self.record.type)
        return ":".join(p for p in parts if p)


@dataclass(eq=False)
class Action:
    """One scheduled action (real or pseudo) and its flags, as in a transition graph."""

    uuid: str
    task: str
    rsc: Rsc | None
    node: NodeInfo | None
    optional: bool = True
    runnable: bool = True
    pseudo: bool = False
    migratable: bool = False  # part of a live migration that can still happen
    dangling: bool = False  # the clean-up stop on the source of a finished migration
    reason: str | None = None
    interval_ms: int = 0
    print_always: bool = False
    required_runnable_before: int = 0
    runnable_before: int = 0
    id: int = 0
    fence_kind: str | None = None  # for fencing: reboot off on
    after: list[tuple[Action, int]] = field(default_factory=list)  # (first, flags) this action waits for
    before: list[tuple[Action, int]] = field(default_factory=list)  # (then, flags) waiting for this action


@dataclass
class ClusterConfig:
    """Cluster-wide options resolved from ``crm_config``."""

    stonith_enabled: bool = True
    symmetric: bool = True
    no_quorum_policy: str = "stop"
    have_quorum: bool = True
    stop_orphan_resources: bool = True
    stop_orphan_actions: bool = True
    start_failure_is_fatal: bool = True
    maintenance_mode: bool = False
    stop_all_resources: bool = False
    placement_strategy: str = "default"
    startup_fencing: bool = True
    have_stonith_resource: bool = False
    stonith_action: str = "reboot"
    concurrent_fencing: bool = False
    shutdown_lock: bool = False
    node_health_strategy: str = "none"
    properties: dict[str, str] = field(default_factory=dict)
