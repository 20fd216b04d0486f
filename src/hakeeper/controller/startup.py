"""``dc-deadtime``: a new DC gives nodes it has never seen time to join before fencing them as unseen.

With ``startup-fencing`` (the default) the policy engine fences every configured node that has no recorded
state at all: it might be running anything. When a cluster starts, its nodes come up within a few seconds
of each other, and the first quorum elects a DC at once; without a grace period that DC fences a node that
is merely slower to start. Pacemaker's controller waits ``dc-deadtime`` (20 s by default) for the other
nodes at start-up; here the DC holds its plan back for as long, measured from when it became DC, while a
configured node it has never seen may still come. A node seen before (recorded down, or lost) is fenced as
promptly as ever, and without fencing an unseen node is only offline, so nothing waits.
"""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.cib.values import parse_duration_ms
from hakeeper.policy.attrs import is_true

DEFAULT_DC_DEADTIME_MS = 20_000


def duration_property_ms(props: dict[str, str], name: str, default_ms: int) -> int:
    """A duration property in ms (never negative); absent or unreadable, ``default_ms``."""
    text = props.get(name)
    if text is None:
        return default_ms
    try:
        return max(0, parse_duration_ms(text))
    except ValueError:
        return default_ms


def dc_deadtime_ms(props: dict[str, str]) -> int:
    return duration_property_ms(props, "dc-deadtime", DEFAULT_DC_DEADTIME_MS)


def ever_a_member(state: m.NodeState) -> bool:
    """Whether the status records the node's membership at all (a state holding only an attribute or a
    history, written before the node ever joined, does not count)."""
    membership = (state.in_ccm, state.crmd, state.join, state.expected, state.node_fenced)
    return any(value is not None for value in membership)


def unseen_nodes(cib: m.Cib, members: frozenset[str]) -> list[str]:
    """Configured cluster nodes never recorded as members that are not members now: fenced if planned now.
    A node's daemon may reach the DC (a ``Sync``, an attribute) before the failure detector counts it in,
    which records a bare state for it; that node is still unseen."""
    seen = [state for state in cib.status.nodes if ever_a_member(state)]
    recorded = {state.id for state in seen} | {state.uname for state in seen}
    return [
        node.uname
        for node in cib.configuration.nodes
        if (node.type or "member") == "member"
        and node.uname not in recorded
        and node.id not in recorded
        and node.uname not in members
    ]


def startup_wait(
    cib: m.Cib, props: dict[str, str], members: frozenset[str], became_dc_ms: int, now_ms: int
) -> tuple[list[str], int]:
    """The unseen nodes a plan now would fence and until when to wait for them, or ``([], 0)``."""
    if not (is_true(props.get("stonith-enabled"), True) and is_true(props.get("startup-fencing"), True)):
        return [], 0
    until = became_dc_ms + dc_deadtime_ms(props)
    if now_ms >= until:
        return [], 0
    waiting = unseen_nodes(cib, members)
    return (waiting, until) if waiting else ([], 0)
