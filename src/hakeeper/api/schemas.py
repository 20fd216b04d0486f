"""The API's typed models: request bodies are validated with them and ``openapi.json`` is generated from them.

One model layer (msgspec): what the API accepts is exactly what its description says. Request models
forbid unknown fields, so a misspelt field is an error that names it instead of being silently ignored.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from hakeeper.api.handle import Event, LinkState
from hakeeper.cib import model as m
from hakeeper.cib.operator import ResourceSpec
from hakeeper.cib.patch import PatchOp
from hakeeper.policy.schedule import GraphAction


class Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of request bodies: strict on input."""


# --- answers --------------------------------------------------------------------------------------------


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """Every 4xx/5xx answer: ``error`` is a sentence saying what is wrong and what to do."""

    error: str
    current_version: str | None = None


class WriteResult(msgspec.Struct, frozen=True, kw_only=True):
    """A committed change: the CIB version before and after, and the log index it was committed at."""

    version: str
    index: int
    previous_version: str
    config_version: str
    changed: bool = True  # False: nothing needed changing, nothing was committed (index 0)


class NodeView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    id: str
    online: bool
    standby: bool
    maintenance: bool
    unclean: bool
    is_dc: bool
    fenced_at: float | None = None
    attributes: dict[str, str] = {}
    transient_attributes: dict[str, str] = {}
    resources: list[str] = []


class ClusterView(msgspec.Struct, frozen=True, kw_only=True):
    cluster_name: str
    local_node: str
    version: str
    config_version: str
    quorate: bool
    dc: str | None
    maintenance_mode: bool
    nodes: list[NodeView]
    links: list[LinkState] = []
    resources_configured: int = 0
    resources_active: int = 0
    failed_actions: int = 0


class FailCountView(msgspec.Struct, frozen=True, kw_only=True):
    """A resource's failures on one node; ``expires_in_s`` is None when they never expire."""

    node: str
    count: int
    last_failure: int | None = None
    expires_in_s: float | None = None
    migration_threshold: int


class FailedActionView(msgspec.Struct, frozen=True, kw_only=True):
    rsc: str
    node: str
    operation: str
    interval_ms: int
    rc: int
    op_status: int
    exit_reason: str | None = None
    last_rc_change: int | None = None


class ResourceView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: str  # primitive group clone bundle
    agent: str | None = None
    parent: str | None = None
    members: list[str] = []
    role: str  # Stopped Started Unpromoted Promoted (the highest role of any instance)
    nodes: list[str] = []
    promoted_on: list[str] = []
    target_role: str | None = None
    managed: bool = True
    failed: bool = False
    params: dict[str, str] = {}
    meta: dict[str, str] = {}
    fail_counts: list[FailCountView] = []


class ResourceList(msgspec.Struct, frozen=True, kw_only=True):
    resources: list[ResourceView]
    failed_actions: list[FailedActionView] = []


class NodeList(msgspec.Struct, frozen=True, kw_only=True):
    nodes: list[NodeView]


class ConstraintList(msgspec.Struct, frozen=True, kw_only=True):
    constraints: list[m.Constraint]


class EventList(msgspec.Struct, frozen=True, kw_only=True):
    events: list[Event]
    last_id: int


class FencingList(msgspec.Struct, frozen=True, kw_only=True):
    history: list[m.FenceEvent]


class SimulateResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the cluster would do: ``summary`` in crm_simulate's line format."""

    summary: list[str]
    actions: list[GraphAction] = []
    warnings: list[str] = []
    version: str


class ExplainResult(msgspec.Struct, frozen=True, kw_only=True):
    """Why a resource is where it is: its state, the policy engine's plan and scores, the rules in play."""

    rsc: str
    resource: ResourceView
    planned: list[str] = []
    actions: list[GraphAction] = []
    scores: list[str] = []
    constraints: list[m.Constraint] = []
    reasons: list[str] = []


class ConfigView(msgspec.Struct, frozen=True, kw_only=True):
    """The configuration as TOML (secrets shown as ``***``); ``config_version`` is what ``If-Match`` takes."""

    config_version: str
    version: str
    digest: str
    toml: str


class WhoAmI(msgspec.Struct, frozen=True, kw_only=True):
    actor: str
    role: str


# --- requests ---------------------------------------------------------------------------------------------


Score = int | str  # an integer or INFINITY/+INFINITY/-INFINITY


class ResourceUpdate(Request):
    """Values to set; ``null`` removes a name."""

    params: dict[str, str | None] = {}
    meta: dict[str, str | None] = {}


class MoveRequest(Request):
    node: str
    lifetime_s: int | None = None


class BanRequest(Request):
    node: str


class NodeOptional(Request):
    node: str | None = None


class RestartRequest(Request):
    timeout_s: float = 60.0


class LocationAdd(Request):
    rsc: str
    node: str
    score: Score
    id: str | None = None


class ColocationAdd(Request):
    rsc: str
    with_rsc: str
    score: Score = "INFINITY"
    id: str | None = None


class OrderAdd(Request):
    first: str
    then: str
    kind: str = "Mandatory"
    symmetrical: bool | None = None
    first_action: str | None = None
    then_action: str | None = None
    id: str | None = None


class AttributeValue(Request):
    value: str


class Switch(Request):
    on: bool


class HaresourcesLine(Request):
    """Heartbeat's one-liner: ``node1 IPaddr::10.0.0.10/24 httpd`` (a group preferring node1)."""

    line: str
    service_class: Literal["lsb", "systemd"] = "lsb"


class SimulateRequest(Request):
    """A what-if on the live CIB: patch operations, and/or a whole new configuration as TOML."""

    ops: list[PatchOp] = []
    config_toml: str | None = None


class ConfigApply(Request):
    """A whole configuration as TOML; ``***`` for a secret keeps its current value."""

    toml: str
    dry_run: bool = False


class ConfigApplyResult(msgspec.Struct, frozen=True, kw_only=True):
    """``changed`` lists what the change touches (``modify /configuration/...: field, ...``), without values
    (they may be secrets); ``predicted`` is the transition the cluster would run, crm_simulate style."""

    committed: WriteResult | None
    changes: int
    changed: list[str] = []
    predicted: list[str] = []


REQUEST_MODELS: tuple[type[msgspec.Struct], ...] = (
    ResourceSpec,
    ResourceUpdate,
    MoveRequest,
    BanRequest,
    NodeOptional,
    RestartRequest,
    LocationAdd,
    ColocationAdd,
    OrderAdd,
    AttributeValue,
    Switch,
    SimulateRequest,
    ConfigApply,
    HaresourcesLine,
)
