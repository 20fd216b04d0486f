"""Read routes: cluster, nodes, resources, constraints, events (and their live stream), fencing, simulate,
explain and the configuration. All need the ``read`` role; none shows a secret."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from starlette.responses import Response, StreamingResponse

from hakeeper.api.alerts import TargetStatus
from hakeeper.api.auth import Role
from hakeeper.api.routing import ApiError, Call, Route
from hakeeper.api.schemas import (
    ClusterView,
    ConfigView,
    ConstraintList,
    EventList,
    ExplainResult,
    FencingList,
    NodeList,
    NodeView,
    ResourceList,
    ResourceView,
    SimulateRequest,
    SimulateResult,
    WhoAmI,
)
from hakeeper.api.views import (
    cluster_view,
    config_version,
    mask_configuration,
    merged,
    one_resource,
    resource_list,
    unmask_configuration,
)
from hakeeper.cib import model as m
from hakeeper.cib.declarative import ConfigError, dump_config, load_config
from hakeeper.cib.operator import find_node, find_resource, primitives_of
from hakeeper.cib.patch import Patch, PatchError, apply, config_digest, version_of
from hakeeper.cib.validate import describe, errors, validate

EVENT_LIMIT = 10_000


async def whoami(call: Call) -> WhoAmI:
    return WhoAmI(actor=call.identity.actor, role=call.identity.role.text)


async def get_cluster(call: Call) -> ClusterView:
    return cluster_view(call.handle.cib(), call.handle.cluster_state(), call.handle.now())


async def get_nodes(call: Call) -> NodeList:
    return NodeList(nodes=(await get_cluster(call)).nodes)


async def get_node(call: Call) -> NodeView:
    name = find_node(call.handle.cib(), call.path["node"]).uname
    return next(n for n in (await get_cluster(call)).nodes if n.name == name)


async def get_resources(call: Call) -> ResourceList:
    return resource_list(call.handle.cib(), call.handle.now())


async def get_resource(call: Call) -> ResourceView:
    cib = call.handle.cib()
    return one_resource(cib, find_resource(cib, call.path["rsc"]), call.handle.now())


async def get_constraints(call: Call) -> ConstraintList:
    return ConstraintList(constraints=list(call.handle.cib().configuration.constraints))


async def get_events(call: Call) -> EventList:
    since = call.query_int("since", 0)
    limit = call.query_int("limit", 1000, low=1, high=EVENT_LIMIT)
    events = call.handle.events(since, limit)
    return EventList(events=events, last_id=events[-1].id if events else since)


async def stream_events(call: Call) -> Response:
    """Server-sent events: each event as ``id:``/``data:`` lines; resumes after ``Last-Event-ID``."""
    last_header = call.request.headers.get("last-event-id")
    since = call.query_int("since", 0)
    if last_header is not None:
        if not last_header.isdigit():
            raise ApiError(400, "the Last-Event-ID header must be an event id (an integer)")
        since = int(last_header)
    limit = call.query_int("limit", 0)

    async def lines() -> AsyncIterator[bytes]:
        sent = 0
        yield b": hakeeper event stream\n\n"
        async for event in call.handle.subscribe(since):
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (
                event.id,
                event.kind.encode(),
                msgspec.json.encode(event),
            )
            sent += 1
            if limit and sent >= limit:
                return

    return StreamingResponse(
        lines(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def get_fencing(call: Call) -> FencingList:
    return FencingList(history=list(call.handle.cib().status.fencing_history))


def what_if(cib: m.Cib, req: SimulateRequest) -> m.Cib:
    """The live CIB with the requested changes: patch operations, then (or) a whole configuration.

    Changes that add configuration errors are refused; errors the live configuration already has are not.
    """
    live = {(p.path, p.message) for p in errors(validate(cib.configuration))}
    if req.ops:
        try:
            cib = apply(cib, Patch(ops=list(req.ops)))
        except PatchError as err:
            raise ApiError(400, f"the changes cannot be applied to the live CIB: {err}") from err
    if req.config_toml is not None:
        cfg = parse_config(req.config_toml, cib.configuration)
        cib = msgspec.structs.replace(cib, configuration=cfg)
    problems = [p for p in errors(validate(cib.configuration)) if (p.path, p.message) not in live]
    if problems:
        raise ApiError(
            400,
            f"the changed configuration is not valid, so there is nothing to simulate: {describe(problems)}",
        )
    return cib


def parse_config(text: str, current: m.Configuration) -> m.Configuration:
    try:
        cfg = load_config(text)
    except ConfigError as err:
        raise ApiError(400, f"the configuration has problems: {err}") from err
    try:
        return unmask_configuration(cfg, current)
    except ValueError as err:
        raise ApiError(400, str(err)) from err


async def simulate(call: Call) -> SimulateResult:
    cib = what_if(call.handle.cib(), call.body)
    transition = await call.handle.simulate(cib)
    return SimulateResult(
        summary=transition.summary,
        actions=transition.actions,
        warnings=transition.warnings,
        version=str(version_of(call.handle.cib())),
    )


def _mentions(line: str, ids: set[str]) -> bool:
    words = line.replace("(", " ").replace(")", " ").replace("'", " ").split()
    return any(w.split(":", 1)[0] in ids for w in words)


def _references(c: m.Constraint, ids: set[str]) -> bool:
    names: list[str | None] = [getattr(c, a, None) for a in ("rsc", "with_rsc", "first", "then")]
    names += [r for s in c.resource_sets for r in s.resources]
    return any(n in ids for n in names)


def _reasons(cib: m.Cib, view: ResourceView, related: list[m.Constraint]) -> list[str]:
    """Plain sentences for the usual causes of "why is it (not) there"."""
    out = []
    if (view.target_role or "").lower() == "stopped":
        out.append(f"{view.id} is disabled (target-role=Stopped): 'enable' starts it")
    if not view.managed:
        out.append(f"{view.id} is unmanaged (is-managed=false or maintenance): the cluster leaves it alone")
    props = merged(cib.configuration.properties)
    if props.get("maintenance-mode", "").lower() in ("true", "on", "yes", "1"):
        out.append("the cluster is in maintenance mode: nothing is started or stopped")
    for node in cib.configuration.nodes:
        attrs = merged(node.instance_attributes)
        if attrs.get("standby", "").lower() in ("on", "true", "yes", "1"):
            out.append(f"node {node.uname} is in standby: nothing runs there")
    for c in related:
        if isinstance(c, m.Location) and c.id.startswith("cli-prefer-"):
            out.append(f"{c.id}: a 'move' prefers {c.node or 'a node (rule)'}; 'clear' removes it")
        elif isinstance(c, m.Location) and c.id.startswith("cli-ban-"):
            out.append(f"{c.id}: a 'ban' keeps it off {c.node}; 'clear' removes it")
    for fc in view.fail_counts:
        if fc.count >= fc.migration_threshold:
            left = "" if fc.expires_in_s is None else f" (expires in {fc.expires_in_s:.0f} s)"
            out.append(
                f"{fc.count} failures on {fc.node} reached migration-threshold {fc.migration_threshold}:"
                f" it may not run there until 'cleanup'{left}"
            )
    return out


async def explain(call: Call) -> ExplainResult:
    cib = call.handle.cib()
    found = find_resource(cib, call.path["rsc"])
    ids = {found.resource.id} | {p.id for p in primitives_of(found.resource)}
    if isinstance(found.resource, m.Clone):
        ids.add(found.resource.child.id)
    transition = await call.handle.simulate(cib)
    view = one_resource(cib, found, call.handle.now())
    related = [c for c in cib.configuration.constraints if _references(c, ids)]
    return ExplainResult(
        rsc=found.resource.id,
        resource=view,
        planned=[line for line in transition.summary if _mentions(line, ids)],
        actions=[a for a in transition.actions if a.rsc is not None and a.rsc.split(":", 1)[0] in ids],
        scores=[line for line in transition.scores if line.split(" ", 1)[0].split(":", 1)[0] in ids],
        constraints=related,
        reasons=_reasons(cib, view, related),
    )


class AlertStatusList(msgspec.Struct, frozen=True, kw_only=True):
    """Each alert recipient's queue: delivered, waiting, failed attempts and the last error."""

    targets: list[TargetStatus]


async def get_alerts(call: Call) -> AlertStatusList:
    queue = call.services.alerts
    return AlertStatusList(targets=queue.status(call.handle.now()) if queue is not None else [])


async def get_config(call: Call) -> ConfigView:
    cib = call.handle.cib()
    return ConfigView(
        config_version=config_version(cib),
        version=str(version_of(cib)),
        digest=config_digest(cib.configuration),
        toml=dump_config(mask_configuration(cib.configuration)),
    )


ROUTES: list[Route] = [
    Route(
        "GET",
        "/v1/whoami",
        Role.READ,
        whoami,
        "Who the token (or socket peer) is and its role",
        response=WhoAmI,
    ),
    Route(
        "GET",
        "/v1/cluster",
        Role.READ,
        get_cluster,
        "Cluster overview: nodes, quorum, DC, counts",
        response=ClusterView,
    ),
    Route(
        "GET",
        "/v1/nodes",
        Role.READ,
        get_nodes,
        "Every node: online, standby, unclean, fenced",
        response=NodeList,
    ),
    Route("GET", "/v1/nodes/{node}", Role.READ, get_node, "One node", response=NodeView),
    Route(
        "GET",
        "/v1/resources",
        Role.READ,
        get_resources,
        "Every resource with role, nodes and fail counts (with time left), and failed actions",
        response=ResourceList,
    ),
    Route("GET", "/v1/resources/{rsc}", Role.READ, get_resource, "One resource", response=ResourceView),
    Route(
        "GET",
        "/v1/resources/{rsc}/explain",
        Role.READ,
        explain,
        "Why a resource is where it is: plan, scores, constraints, reasons",
        response=ExplainResult,
    ),
    Route("GET", "/v1/constraints", Role.READ, get_constraints, "Every constraint", response=ConstraintList),
    Route(
        "GET",
        "/v1/events",
        Role.READ,
        get_events,
        "Recent events after ?since= (at most ?limit=)",
        response=EventList,
        query=("since", "limit"),
    ),
    Route(
        "GET",
        "/v1/events/stream",
        Role.READ,
        stream_events,
        "Live events as server-sent events (resumes after Last-Event-ID or ?since=)",
        query=("since", "limit"),
        media_type="text/event-stream",
    ),
    Route("GET", "/v1/fencing", Role.READ, get_fencing, "Fencing history", response=FencingList),
    Route(
        "GET",
        "/v1/alerts",
        Role.READ,
        get_alerts,
        "Alert delivery status per recipient (failures too)",
        response=AlertStatusList,
    ),
    Route(
        "POST",
        "/v1/simulate",
        Role.READ,
        simulate,
        "What the cluster would do if these changes were made (nothing is changed)",
        body=SimulateRequest,
        response=SimulateResult,
    ),
    Route(
        "GET",
        "/v1/config",
        Role.READ,
        get_config,
        "The configuration as TOML (secrets as ***)",
        response=ConfigView,
    ),
]
