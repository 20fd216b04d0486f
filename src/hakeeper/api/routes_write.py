"""Write routes: everything the CLI can change, each one a function of ``hakeeper.cib.operator``.

``operate`` may move, ban, clear, clean up, enable, disable and restart resources, put nodes in standby and
shut nodes down cleanly; everything else (resources, constraints, attributes, maintenance, configuration)
needs ``admin``. Every write answers with the version it committed, and is recorded in the audit log.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Literal

import msgspec

from hakeeper.api.auth import Role
from hakeeper.api.routes_read import parse_config
from hakeeper.api.routing import ApiError, Call, Route
from hakeeper.api.schemas import (
    AttributeValue,
    BanRequest,
    ColocationAdd,
    ConfigApply,
    ConfigApplyResult,
    HaresourcesLine,
    LocationAdd,
    MoveRequest,
    NodeOptional,
    OrderAdd,
    ResourceUpdate,
    RestartRequest,
    Score,
    Switch,
    WriteResult,
)
from hakeeper.api.views import config_version
from hakeeper.cib import model as m
from hakeeper.cib import operator as op
from hakeeper.cib.patch import Create, Modify, Patch, PatchOp, Put, diff, version_of
from hakeeper.cib.validate import describe, errors, validate
from hakeeper.cib.values import parse_score
from hakeeper.controller.history import set_transient_attribute
from hakeeper.controller.shutdown import SHUTDOWN_ATTRIBUTE
from hakeeper.fencing.requests import answer_to, request_event

RESTART_POLL_S = 0.2
FENCE_POLL_S = 0.1
CONFIRM_TIMEOUT_S = 60.0


class FenceRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Fence a node: ``reboot`` (power cycle) or ``off``; wait at most ``timeout_s`` for the result."""

    action: Literal["off", "reboot"] = "reboot"
    timeout_s: float = 180.0


class FenceConfirm(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An operator confirms a node is down. ``force``: even though this node's membership sees it online
    (membership can be wrong only in rare partitions; check the node yourself before forcing)."""

    force: bool = False


class FenceResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of an operator's fencing request: the DC's record in the fencing history."""

    ok: bool
    event: m.FenceEvent
    committed: WriteResult
    """The request itself, as committed to the fencing history."""


def _score(value: Score) -> int:
    if isinstance(value, int):
        return value
    try:
        return parse_score(value)
    except ValueError as err:
        raise ApiError(400, f"score {value[:40]!r} is not a score: {err}") from err


async def create_resource(call: Call) -> WriteResult:
    return await call.commit(lambda cib: op.resource_create(cib, call.body))


async def update_resource(call: Call) -> WriteResult:
    body: ResourceUpdate = call.body
    return await call.commit(
        lambda cib: op.resource_update(cib, call.path["rsc"], params=body.params, meta=body.meta)
    )


async def delete_resource(call: Call) -> WriteResult:
    return await call.commit(lambda cib: op.resource_delete(cib, call.path["rsc"]))


async def move(call: Call) -> WriteResult:
    body: MoveRequest = call.body
    now = int(call.handle.now())
    return await call.commit(
        lambda cib: op.move(cib, call.path["rsc"], body.node, lifetime_s=body.lifetime_s, now=now)
    )


async def ban(call: Call) -> WriteResult:
    body: BanRequest = call.body
    return await call.commit(lambda cib: op.ban(cib, call.path["rsc"], body.node))


async def clear(call: Call) -> WriteResult:
    body: NodeOptional = call.body
    return await call.commit(lambda cib: op.clear(cib, call.path["rsc"], body.node))


async def cleanup(call: Call) -> WriteResult:
    body: NodeOptional = call.body
    return await call.commit(lambda cib: op.cleanup(cib, call.path["rsc"], body.node))


async def enable(call: Call) -> WriteResult:
    return await call.commit(lambda cib: op.enable(cib, call.path["rsc"]))


async def disable(call: Call) -> WriteResult:
    return await call.commit(lambda cib: op.disable(cib, call.path["rsc"]))


async def restart(call: Call) -> WriteResult:
    """Disable, wait until the cluster reports the resource stopped everywhere, then restore it."""
    body: RestartRequest = call.body
    rsc = call.path["rsc"]
    if not 0 < body.timeout_s <= 3600:
        raise ApiError(400, "timeout_s must be more than 0 and at most 3600 seconds")
    steps: list[Patch] = []

    def first(cib: m.Cib) -> Patch:
        stop, start = op.restart_steps(cib, rsc)
        steps[:] = [start]
        return stop

    stopped = await call.commit(first)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + body.timeout_s
    while not op.is_stopped_everywhere(call.handle.cib(), rsc):
        if loop.time() >= deadline:
            raise ApiError(
                504,
                f"{rsc} was disabled but not seen stopped within {body.timeout_s:g} s; it stays "
                "disabled: check it, then 'enable' it",
            )
        await asyncio.sleep(RESTART_POLL_S)
    started = await call.commit(lambda cib: steps[0])
    # One operation for the operator (and the audit log): from before the stop to after the start.
    return msgspec.structs.replace(started, previous_version=stopped.previous_version)


async def location_add(call: Call) -> WriteResult:
    b: LocationAdd = call.body
    return await call.commit(
        lambda cib: op.location_add(cib, b.rsc, b.node, _score(b.score), constraint_id=b.id)
    )


async def colocation_add(call: Call) -> WriteResult:
    b: ColocationAdd = call.body
    return await call.commit(
        lambda cib: op.colocation_add(cib, b.rsc, b.with_rsc, _score(b.score), constraint_id=b.id)
    )


async def order_add(call: Call) -> WriteResult:
    b: OrderAdd = call.body
    return await call.commit(
        lambda cib: op.order_add(
            cib,
            b.first,
            b.then,
            kind=b.kind,
            symmetrical=b.symmetrical,
            first_action=b.first_action,
            then_action=b.then_action,
            constraint_id=b.id,
        )
    )


async def constraint_remove(call: Call) -> WriteResult:
    return await call.commit(lambda cib: op.constraint_remove(cib, call.path["id"]))


async def standby(call: Call) -> WriteResult:
    return await call.commit(lambda cib: op.standby(cib, call.path["node"], True))


async def unstandby(call: Call) -> WriteResult:
    return await call.commit(lambda cib: op.standby(cib, call.path["node"], False))


async def node_maintenance(call: Call) -> WriteResult:
    body: Switch = call.body
    return await call.commit(lambda cib: op.node_maintenance(cib, call.path["node"], body.on))


async def set_attribute(call: Call) -> WriteResult:
    body: AttributeValue = call.body
    return await call.commit(
        lambda cib: op.node_attribute(cib, call.path["node"], call.path["name"], body.value)
    )


async def delete_attribute(call: Call) -> WriteResult:
    return await call.commit(lambda cib: op.node_attribute(cib, call.path["node"], call.path["name"], None))


async def cluster_maintenance(call: Call) -> WriteResult:
    body: Switch = call.body
    return await call.commit(lambda cib: op.maintenance(cib, body.on))


async def haresources(call: Call) -> WriteResult:
    body: HaresourcesLine = call.body
    return await call.commit(lambda cib: op.haresources(cib, body.line, service_class=body.service_class))


async def apply_config(call: Call) -> ConfigApplyResult:
    """Replace the configuration (TOML). Needs ``If-Match`` with the version the operator edited."""
    body: ConfigApply = call.body
    if call.if_match is None:
        raise ApiError(
            428,
            "applying a configuration needs an If-Match header with the config_version you "
            f"edited (now {config_version(call.handle.cib())}), so no one's change is lost",
        )
    cfg = parse_config(body.toml, call.handle.cib().configuration)
    problems = errors(validate(cfg))
    if problems:
        raise ApiError(400, f"the configuration is not valid: {describe(problems)}")

    def make(cib: m.Cib) -> Patch:
        # Secrets were resolved against the configuration If-Match names, which commit() checks again.
        return diff(cib, msgspec.structs.replace(cib, configuration=cfg))

    cib = call.handle.cib()
    call.check_if_match(cib)
    ops = make(cib).ops
    changed = [describe_op(o) for o in ops]
    predicted = (await call.handle.simulate(msgspec.structs.replace(cib, configuration=cfg))).summary
    if body.dry_run:
        return ConfigApplyResult(committed=None, changes=len(ops), changed=changed, predicted=predicted)
    result = await call.commit(make)
    return ConfigApplyResult(committed=result, changes=len(ops), changed=changed, predicted=predicted)


async def shutdown_node(call: Call) -> WriteResult:
    """Ask a node's daemon to shut down cleanly: the request is the node's ``shutdown`` attribute, committed
    through the DC; the DC moves or stops the node's resources, then the daemon leaves and exits."""
    node = call.path["node"]
    _fenceable(call, node)
    member = next((n for n in call.handle.cluster_state().members if n.name == node), None)
    if member is None or not member.online:
        raise ApiError(409, f"{node} is not a running member of the cluster: there is nothing to stop there")
    before = call.handle.cib()
    call.check_if_match(before)  # an operator who names the configuration they saw gets it checked
    if node == call.handle.cluster_state().local_node:
        # this node's own daemon: it asks the DC itself (or, without quorum, stops its resources itself)
        call.handle.shutdown_here(f"{call.identity.actor} asked for it through the API")
        version = str(version_of(before))
        return WriteResult(
            version=version, index=0, previous_version=version, config_version=version.rsplit(".", 1)[0]
        )
    ops = set_transient_attribute(node, SHUTDOWN_ATTRIBUTE, str(int(call.handle.now())))
    done = await call.handle.submit(Patch(ops=ops), actor=call.identity.actor)
    return WriteResult(
        version=done.version,
        index=done.index,
        previous_version=str(version_of(before)),
        config_version=done.version.rsplit(".", 1)[0],
    )


def _fenceable(call: Call, node: str) -> None:
    if not any(n.uname == node or n.id == node for n in call.handle.cib().configuration.nodes):
        raise ApiError(404, f"there is no node {node!r} in the cluster configuration")


async def _request_fencing(call: Call, event: m.FenceEvent, timeout_s: float) -> FenceResult:
    """Commit the request (any node: it goes through the DC), then wait for the DC's answer."""
    before = call.handle.cib()
    call.check_if_match(before)  # an operator who names the configuration they saw gets it checked
    patch = Patch(ops=[Create(path="/status/fencing_history", value=msgspec.to_builtins(event))])
    done = await call.handle.submit(patch, actor=call.identity.actor)
    committed = WriteResult(
        version=done.version,
        index=done.index,
        previous_version=str(version_of(before)),
        config_version=done.version.rsplit(".", 1)[0],
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    client = event.client or ""
    while (answer := answer_to(call.handle.cib().status.fencing_history, client)) is None:
        if loop.time() >= deadline:
            raise ApiError(
                504,
                f"the request about {event.target} was committed (CIB version {done.version}) but the DC "
                f"recorded no result within {timeout_s:g} s; it may still finish: check "
                f"'hakeeper fence history {event.target}' before asking again",
            )
        await asyncio.sleep(FENCE_POLL_S)
    return FenceResult(ok=answer.state == "done", event=answer, committed=committed)


async def fence_node(call: Call) -> FenceResult:
    """Ask the DC to fence a node and wait for the result."""
    body: FenceRequest = call.body
    node = call.path["node"]
    if not 0 < body.timeout_s <= 3600:
        raise ApiError(400, "timeout_s must be more than 0 and at most 3600 seconds")
    _fenceable(call, node)
    event = request_event(
        node,
        body.action,
        origin=call.handle.cluster_state().local_node,
        actor=call.identity.actor,
        request_id=uuid.uuid4().hex[:12],
        now=int(call.handle.now()),
    )
    return await _request_fencing(call, event, body.timeout_s)


async def confirm_fenced(call: Call) -> FenceResult:
    """Record that an operator made sure a node is down: the cluster recovers its resources elsewhere."""
    body: FenceConfirm = call.body
    node = call.path["node"]
    _fenceable(call, node)
    state = call.handle.cluster_state()
    member = next((m for m in state.members if m.name == node), None)
    if member is not None and member.online and not body.force:
        raise ApiError(
            409,
            f"{node} is online, a member of the cluster: it is not down, and confirming it fenced would let "
            f"its resources start a second time elsewhere. Fence it instead ('hakeeper fence {node}'), "
            "or force the confirmation if you have checked that it is off and membership is wrong",
        )
    event = request_event(
        node,
        "off",
        origin=state.local_node,
        actor=call.identity.actor,
        request_id=uuid.uuid4().hex[:12],
        now=int(call.handle.now()),
        confirm=True,
    )
    return await _request_fencing(call, event, CONFIRM_TIMEOUT_S)


def describe_op(o: PatchOp) -> str:
    """A patch operation in words, without its values (which may hold secrets)."""
    if isinstance(o, Modify):
        return f"modify {o.path}: {', '.join(sorted(o.changes))}"
    if isinstance(o, Create | Put):
        what = o.value.get("id") if isinstance(o.value, dict) else None
        key = getattr(o, "key", None)
        return f"create {o.path}/{what or key or ''}".rstrip("/")
    return f"delete {o.path}"


def _write(
    method: str,
    path: str,
    role: Role,
    handler: object,
    summary: str,
    body: type[msgspec.Struct] | None = None,
) -> Route:
    assert callable(handler)
    return Route(method, path, role, handler, summary, body=body, response=WriteResult, write=True)


ROUTES: list[Route] = [
    _write(
        "POST",
        "/v1/resources",
        Role.ADMIN,
        create_resource,
        "Create a resource (optionally grouped/cloned)",
        op.ResourceSpec,
    ),
    _write(
        "PATCH",
        "/v1/resources/{rsc}",
        Role.ADMIN,
        update_resource,
        "Set or remove (null) parameters and meta attributes",
        ResourceUpdate,
    ),
    _write(
        "DELETE",
        "/v1/resources/{rsc}",
        Role.ADMIN,
        delete_resource,
        "Delete a resource and the constraints naming it",
    ),
    _write(
        "POST", "/v1/resources/{rsc}/move", Role.OPERATE, move, "Move to a node (cli-prefer)", MoveRequest
    ),
    _write("POST", "/v1/resources/{rsc}/ban", Role.OPERATE, ban, "Keep off a node (cli-ban)", BanRequest),
    _write(
        "POST", "/v1/resources/{rsc}/clear", Role.OPERATE, clear, "Remove move/ban constraints", NodeOptional
    ),
    _write(
        "POST",
        "/v1/resources/{rsc}/cleanup",
        Role.OPERATE,
        cleanup,
        "Forget failures and history so the resource is re-probed",
        NodeOptional,
    ),
    _write("POST", "/v1/resources/{rsc}/enable", Role.OPERATE, enable, "target-role=Started"),
    _write("POST", "/v1/resources/{rsc}/disable", Role.OPERATE, disable, "target-role=Stopped"),
    _write(
        "POST",
        "/v1/resources/{rsc}/restart",
        Role.OPERATE,
        restart,
        "Stop, wait until stopped, start again",
        RestartRequest,
    ),
    _write(
        "POST", "/v1/constraints/location", Role.ADMIN, location_add, "Add a location constraint", LocationAdd
    ),
    _write(
        "POST",
        "/v1/constraints/colocation",
        Role.ADMIN,
        colocation_add,
        "Add a colocation constraint",
        ColocationAdd,
    ),
    _write("POST", "/v1/constraints/order", Role.ADMIN, order_add, "Add an order constraint", OrderAdd),
    _write("DELETE", "/v1/constraints/{id}", Role.ADMIN, constraint_remove, "Remove a constraint"),
    _write("POST", "/v1/nodes/{node}/standby", Role.OPERATE, standby, "Put a node in standby"),
    _write(
        "POST",
        "/v1/nodes/{node}/shutdown",
        Role.OPERATE,
        shutdown_node,
        "Shut a node's daemon down cleanly (its resources are moved or stopped first)",
    ),
    _write("POST", "/v1/nodes/{node}/unstandby", Role.OPERATE, unstandby, "Take a node out of standby"),
    _write(
        "POST",
        "/v1/nodes/{node}/maintenance",
        Role.ADMIN,
        node_maintenance,
        "Node maintenance on/off",
        Switch,
    ),
    _write(
        "PUT",
        "/v1/nodes/{node}/attributes/{name}",
        Role.ADMIN,
        set_attribute,
        "Set a permanent node attribute",
        AttributeValue,
    ),
    _write(
        "DELETE",
        "/v1/nodes/{node}/attributes/{name}",
        Role.ADMIN,
        delete_attribute,
        "Delete a permanent node attribute",
    ),
    _write(
        "POST",
        "/v1/cluster/maintenance",
        Role.ADMIN,
        cluster_maintenance,
        "Cluster maintenance mode on/off",
        Switch,
    ),
    _write(
        "POST",
        "/v1/config/haresources",
        Role.ADMIN,
        haresources,
        "Heartbeat's haresources line: a group of the resources preferring the node",
        HaresourcesLine,
    ),
    Route(
        "POST",
        "/v1/nodes/{node}/fence",
        Role.ADMIN,
        fence_node,
        "Fence a node (reboot or off) through the DC and wait for the result",
        body=FenceRequest,
        response=FenceResult,
        write=True,
    ),
    Route(
        "POST",
        "/v1/nodes/{node}/fence/confirm",
        Role.ADMIN,
        confirm_fenced,
        "Confirm that an operator powered a node off by hand: it is recorded fenced (manual)",
        body=FenceConfirm,
        response=FenceResult,
        write=True,
    ),
    Route(
        "PUT",
        "/v1/config",
        Role.ADMIN,
        apply_config,
        "Replace the configuration (TOML; If-Match: config_version required; dry_run predicts only)",
        body=ConfigApply,
        response=ConfigApplyResult,
        write=True,
    ),
]
