"""The cluster information base (CIB): configuration and status, as typed, immutable values.

The model follows Pacemaker's CIB closely (same concepts, same attribute sets with rules and scores), so a
Pacemaker XML CIB imports without loss of meaning and the policy engine can follow "Pacemaker Explained".
Names use Python spelling (``with_rsc`` for ``with-rsc``). Durations are stored in milliseconds and scores
as saturating integers (see ``values``); everything else keeps the operator's spelling.

Every struct is frozen: a CIB is a value. Changes are made by ``patch.apply`` which returns a new CIB.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class Base(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
):
    """Common settings: immutable, keyword-only, strict on input, compact on output."""


# --- rules ------------------------------------------------------------------------------------------


class AttrExpression(Base, tag_field="element", tag="attr", frozen=True, kw_only=True):
    """``<expression>``: compare a node attribute (or a parameter/meta value) with a value."""

    id: str
    attribute: str
    operation: str  # lt gt lte gte eq ne defined not_defined
    value: str | None = None
    type: str | None = None  # string integer number version (None: auto)
    value_source: str = "literal"  # literal param meta


class DateSpec(Base, frozen=True, kw_only=True):
    """``<date_spec>`` / ``<duration>``: ranges such as ``hours="9-16"`` or amounts such as ``days="1"``."""

    id: str = ""
    fields: dict[str, str] = {}


class DateExpression(Base, tag_field="element", tag="date", frozen=True, kw_only=True):
    """``<date_expression>``: in_range, gt, lt or date_spec, on the time the rule is evaluated at."""

    id: str
    operation: str = "in_range"
    start: str | None = None
    end: str | None = None
    duration: DateSpec | None = None
    spec: DateSpec | None = None


class OpExpression(Base, tag_field="element", tag="op", frozen=True, kw_only=True):
    """``<op_expression>``: matches an operation by name and (optionally) interval, for op defaults."""

    id: str
    name: str
    interval: int | None = None  # milliseconds


class RscExpression(Base, tag_field="element", tag="rsc", frozen=True, kw_only=True):
    """``<rsc_expression>``: matches a resource by agent class/provider/type, for resource defaults."""

    id: str
    klass: str | None = msgspec.field(default=None, name="class")
    provider: str | None = None
    type: str | None = None


class Rule(Base, tag_field="element", tag="rule", frozen=True, kw_only=True):
    """``<rule>``: expressions joined by ``and``/``or``; rules nest. ``score`` applies when it holds."""

    id: str
    score: int | None = None
    score_attribute: str | None = None
    boolean_op: str = "and"
    role: str | None = None
    expressions: list[Expression] = []


Expression = AttrExpression | DateExpression | OpExpression | RscExpression | Rule


class NvSet(Base, frozen=True, kw_only=True):
    """A set of name/value pairs (instance, meta, utilization attributes, properties, defaults).

    Several sets may apply to one object; the one with the highest ``score`` whose ``rule`` holds wins for
    each name, as in Pacemaker.
    """

    id: str
    values: dict[str, str] = {}
    score: int | None = None
    rule: Rule | None = None


# --- resources --------------------------------------------------------------------------------------


class Operation(Base, frozen=True, kw_only=True):
    """An operation definition: ``<op name="monitor" interval="10s" .../>``."""

    id: str
    name: str
    interval: int = 0  # milliseconds
    timeout: int | None = None  # milliseconds
    role: str | None = None
    on_fail: str | None = None
    start_delay: int | None = None  # milliseconds
    interval_origin: str | None = None
    enabled: bool = True
    record_pending: bool | None = None
    description: str | None = None
    instance_attributes: list[NvSet] = []
    meta_attributes: list[NvSet] = []


class Template(Base, tag_field="element", tag="template", frozen=True, kw_only=True):
    """``<template>``: a primitive definition other primitives inherit from."""

    id: str
    klass: str = msgspec.field(name="class")
    provider: str | None = None
    type: str
    description: str | None = None
    instance_attributes: list[NvSet] = []
    meta_attributes: list[NvSet] = []
    utilization: list[NvSet] = []
    operations: list[Operation] = []


class Primitive(Base, tag_field="element", tag="primitive", frozen=True, kw_only=True):
    """A single resource run by an agent ``class:provider:type`` (or inherited from ``template``)."""

    id: str
    klass: str | None = msgspec.field(default=None, name="class")
    provider: str | None = None
    type: str | None = None
    template: str | None = None
    description: str | None = None
    instance_attributes: list[NvSet] = []
    meta_attributes: list[NvSet] = []
    utilization: list[NvSet] = []
    operations: list[Operation] = []

    @property
    def agent(self) -> str:
        """The agent as operators write it: ``ocf:heartbeat:IPaddr2``, ``systemd:httpd``."""
        parts = [self.klass or "", self.provider or "", self.type or ""]
        return ":".join(p for p in parts if p)


class Group(Base, tag_field="element", tag="group", frozen=True, kw_only=True):
    """Primitives that start in order, stop in reverse order, and run on the same node."""

    id: str
    children: list[Primitive] = []
    description: str | None = None
    instance_attributes: list[NvSet] = []
    meta_attributes: list[NvSet] = []


class Clone(Base, tag_field="element", tag="clone", frozen=True, kw_only=True):
    """Copies of a primitive or group on several nodes; ``promotable`` clones have primary/replica roles.

    Pacemaker's older ``<master>`` element imports as a clone with ``promotable=true`` in its meta.
    """

    id: str
    child: Primitive | Group
    description: str | None = None
    instance_attributes: list[NvSet] = []
    meta_attributes: list[NvSet] = []
    legacy_master: bool = False  # imported from <master>: export keeps the operator's element


class Bundle(Base, tag_field="element", tag="bundle", frozen=True, kw_only=True):
    """A container bundle: recognised and preserved, not yet scheduled (the policy engine says so)."""

    id: str
    raw_xml: str
    primitive_id: str | None = None


Resource = Primitive | Group | Clone | Bundle


# --- constraints ------------------------------------------------------------------------------------


class ResourceSet(Base, frozen=True, kw_only=True):
    """``<resource_set>``: several resources in one constraint, optionally ordered/colocated in sequence."""

    id: str
    resources: list[str] = []
    sequential: bool | None = None
    require_all: bool | None = None
    ordering: str | None = None
    action: str | None = None
    role: str | None = None
    score: int | None = None
    kind: str | None = None


class Location(Base, tag_field="element", tag="location", frozen=True, kw_only=True):
    """Prefer or avoid nodes for a resource: a fixed ``node`` and ``score``, or ``rules``."""

    id: str
    rsc: str | None = None
    rsc_pattern: str | None = None
    resource_sets: list[ResourceSet] = []
    node: str | None = None
    score: int | None = None
    rules: list[Rule] = []
    role: str | None = None
    resource_discovery: str | None = None


class Colocation(Base, tag_field="element", tag="colocation", frozen=True, kw_only=True):
    """Place ``rsc`` relative to ``with_rsc`` (the latter is placed first)."""

    id: str
    rsc: str | None = None
    with_rsc: str | None = None
    score: int = 0
    rsc_role: str | None = None
    with_rsc_role: str | None = None
    node_attribute: str | None = None
    influence: bool | None = None
    resource_sets: list[ResourceSet] = []


class Order(Base, tag_field="element", tag="order", frozen=True, kw_only=True):
    """Order actions: ``first`` (``first_action``) before ``then`` (``then_action``)."""

    id: str
    first: str | None = None
    then: str | None = None
    first_action: str | None = None
    then_action: str | None = None
    kind: str | None = None  # Mandatory Optional Serialize
    score: int | None = None  # legacy: 0 means Optional
    symmetrical: bool | None = None
    require_all: bool | None = None
    resource_sets: list[ResourceSet] = []


class Ticket(Base, tag_field="element", tag="ticket", frozen=True, kw_only=True):
    """Tie resources to a cluster ticket; ``loss_policy`` says what to do when it is revoked."""

    id: str
    ticket: str
    rsc: str | None = None
    rsc_role: str | None = None
    loss_policy: str | None = None
    resource_sets: list[ResourceSet] = []


Constraint = Location | Colocation | Order | Ticket


# --- nodes, fencing, alerts, tags, ACLs -------------------------------------------------------------


class Node(Base, frozen=True, kw_only=True):
    """A cluster node as configured: its name, permanent attributes and capacity."""

    id: str
    uname: str
    type: str = "member"  # member remote ping
    score: int | None = None
    description: str | None = None
    instance_attributes: list[NvSet] = []
    utilization: list[NvSet] = []


class FencingLevel(Base, frozen=True, kw_only=True):
    """One level of fencing topology: all ``devices`` must succeed for the level to succeed."""

    id: str
    index: int
    devices: list[str]
    target: str | None = None
    target_pattern: str | None = None
    target_attribute: str | None = None
    target_value: str | None = None


class AlertRecipient(Base, frozen=True, kw_only=True):
    id: str
    value: str
    description: str | None = None
    instance_attributes: list[NvSet] = []
    meta_attributes: list[NvSet] = []


class Alert(Base, frozen=True, kw_only=True):
    """An alert agent (an executable) run on cluster events, as Pacemaker's alerts."""

    id: str
    path: str
    description: str | None = None
    select: list[str] = []
    instance_attributes: list[NvSet] = []
    meta_attributes: list[NvSet] = []
    recipients: list[AlertRecipient] = []


class Tag(Base, frozen=True, kw_only=True):
    """A named list of resource ids, usable wherever a constraint names a resource."""

    id: str
    refs: list[str] = []


class AclPermission(Base, frozen=True, kw_only=True):
    id: str
    kind: str  # read write deny
    xpath: str | None = None
    reference: str | None = None
    object_type: str | None = None
    attribute: str | None = None


class AclRole(Base, frozen=True, kw_only=True):
    id: str
    description: str | None = None
    permissions: list[AclPermission] = []


class AclTarget(Base, frozen=True, kw_only=True):
    """A user (``kind="target"``) or group (``kind="group"``) and the roles it holds."""

    id: str
    kind: str = "target"
    roles: list[str] = []


class Acls(Base, frozen=True, kw_only=True):
    roles: list[AclRole] = []
    targets: list[AclTarget] = []


class Configuration(Base, frozen=True, kw_only=True):
    """Everything the operator decides. Replicated; its digest identifies a configuration."""

    properties: list[NvSet] = []
    nodes: list[Node] = []
    resources: list[Resource] = []
    templates: list[Template] = []
    constraints: list[Constraint] = []
    rsc_defaults: list[NvSet] = []
    op_defaults: list[NvSet] = []
    fencing_topology: list[FencingLevel] = []
    alerts: list[Alert] = []
    tags: list[Tag] = []
    acls: Acls | None = None


# --- status -----------------------------------------------------------------------------------------


class OpRecord(Base, frozen=True, kw_only=True):
    """One entry of a resource's operation history on a node (``<lrm_rsc_op>``)."""

    id: str
    operation: str
    call_id: int
    rc: int
    op_status: int = 0
    interval: int = 0  # milliseconds
    operation_key: str | None = None
    transition_key: str | None = None
    transition_magic: str | None = None
    last_rc_change: int | None = None  # epoch seconds
    last_run: int | None = None  # epoch seconds
    exec_time: int | None = None  # milliseconds
    queue_time: int | None = None  # milliseconds
    exit_reason: str | None = None
    on_node: str | None = None
    op_digest: str | None = None
    op_restart_digest: str | None = None
    op_force_restart: str | None = None
    op_secure_params: str | None = None
    op_secure_digest: str | None = None
    migrate_source: str | None = None
    migrate_target: str | None = None
    crm_feature_set: str | None = None


class ResourceHistory(Base, frozen=True, kw_only=True):
    """What a node's LRM has done with one resource (``<lrm_resource>``)."""

    id: str
    klass: str = msgspec.field(name="class")
    provider: str | None = None
    type: str
    container: str | None = None
    shutdown_lock: int | None = None
    ops: list[OpRecord] = []


class NodeState(Base, frozen=True, kw_only=True):
    """The live state of a node as the CRM records it (``<node_state>``)."""

    id: str
    uname: str | None = None
    in_ccm: str | None = None  # "true"/"false" or, in newer CIBs, a timestamp
    crmd: str | None = None  # "online"/"offline" or a timestamp
    join: str | None = None  # member down pending banned
    expected: str | None = None
    shutdown: str | None = None  # "0" or the epoch time shutdown was requested
    ha: str | None = None
    remote_node: bool = False
    node_fenced: str | None = None
    node_in_maintenance: bool | None = None
    clear_shutdown: str | None = None
    transient_attributes: list[NvSet] = []
    resources: list[ResourceHistory] = []
    has_lrm: bool = True


class TicketState(Base, frozen=True, kw_only=True):
    id: str
    granted: bool = False
    standby: bool = False
    last_granted: int | None = None
    attributes: dict[str, str] = {}


class FenceEvent(Base, frozen=True, kw_only=True):
    """One fencing attempt: who asked, who executed, against whom, with which result."""

    target: str
    action: str
    state: Literal["pending", "done", "failed"]
    origin: str | None = None
    delegate: str | None = None
    device: str | None = None
    client: str | None = None
    requested: int | None = None  # epoch seconds
    completed: int | None = None  # epoch seconds
    reason: str | None = None


class Status(Base, frozen=True, kw_only=True):
    """What is happening: node states, operation history, tickets, fencing history."""

    nodes: list[NodeState] = []
    tickets: list[TicketState] = []
    fencing_history: list[FenceEvent] = []


class Cib(Base, frozen=True, kw_only=True):
    """The whole cluster information base, versioned by ``(admin_epoch, epoch, num_updates)``."""

    admin_epoch: int = 0
    epoch: int = 0
    num_updates: int = 0
    validate_with: str | None = None
    crm_feature_set: str | None = None
    have_quorum: bool = True
    dc_uuid: str | None = None
    execution_date: int | None = None  # epoch seconds: "now" for offline simulation
    no_quorum_panic: bool | None = None
    configuration: Configuration = Configuration()
    status: Status = Status()

    @property
    def version(self) -> tuple[int, int, int]:
        return (self.admin_epoch, self.epoch, self.num_updates)
