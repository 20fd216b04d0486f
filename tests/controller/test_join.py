"""A node that returns after being down is probed again: the DC forgets the history it had before it left."""

from __future__ import annotations

from hakeeper.cib import model as m
from hakeeper.controller.dc import DcCore, Propose

NOW_MS = 1_700_000_000_000


def started(rsc: str) -> m.OpRecord:
    return m.OpRecord(id=f"{rsc}_last_0", operation="start", call_id=1, rc=0)


def state(name: str, up: bool, *resources: str) -> m.NodeState:
    history = [m.ResourceHistory(id=r, klass="ocf", type="Dummy", ops=[started(r)]) for r in resources]
    return m.NodeState(
        id=name,
        uname=name,
        in_ccm="true" if up else "false",
        crmd="online" if up else "offline",
        join="member" if up else "down",
        expected="member",
        resources=history,
    )


def membership_changes(cib: m.Cib, before: frozenset[str], after: frozenset[str]) -> dict[str, object]:
    dc = DcCore("n2", uuid="u")
    dc.cib = cib
    dc.members = before
    dc.become_dc(NOW_MS)
    out = dc.membership(after, NOW_MS)
    (patch,) = [o.patch for o in out if isinstance(o, Propose)]
    return {o.path: getattr(o, "changes", None) for o in patch.ops}


def test_a_returning_node_is_probed_again() -> None:
    cib = m.Cib(status=m.Status(nodes=[state("n1", False, "web"), state("n2", True)]))
    changes = membership_changes(cib, frozenset({"n2"}), frozenset({"n1", "n2"}))
    n1 = changes["/status/nodes/n1"]
    assert isinstance(n1, dict) and n1["in_ccm"] == "true" and n1["resources"] == []


def test_a_node_seen_for_the_first_time_or_still_up_keeps_its_history() -> None:
    cib = m.Cib(status=m.Status(nodes=[state("n2", True, "web")]))
    changes = membership_changes(cib, frozenset({"n2"}), frozenset({"n1", "n2"}))
    n1 = changes["/status/nodes/n1"]
    assert isinstance(n1, dict) and "resources" not in n1
    assert "/status/nodes/n2" not in changes
