"""Fencing topology: levels chosen per target, and plans without a topology."""

from __future__ import annotations

from hakeeper.cib.model import FencingLevel
from hakeeper.fencing.devices import Capability, FenceDevice
from hakeeper.fencing.topology import bad_patterns, plan_for, topology_for


def level(index: int, *devices: str, **selector: str) -> FencingLevel:
    key = "-".join(selector.values())
    return FencingLevel(id=f"fl-{key}-{index}", index=index, devices=list(devices), **selector)


def dev(dev_id: str, hosts: tuple[str, ...] = ("node1", "node2", "web1"), **kw: object) -> FenceDevice:
    return FenceDevice(id=dev_id, agent="fence_x", host_list=hosts, **kw)  # type: ignore[arg-type]


DEVICES = {d.id: d for d in [dev("ipmi"), dev("pdu1"), dev("pdu2"), dev("sbd")]}


def test_levels_by_name_are_sorted_by_index() -> None:
    topo = [level(2, "pdu1", "pdu2", target="node1"), level(1, "ipmi", target="node1")]
    selector, levels = topology_for("node1", topo)
    assert selector == "node1"
    assert [lv.index for lv in levels] == [1, 2]
    assert topology_for("node2", topo) == ("", [])


def test_pattern_matches_anywhere_and_attribute_matches_value() -> None:
    topo = [
        level(1, "ipmi", target_pattern="^web"),
        level(1, "sbd", target_attribute="rack", target_value="r1"),
    ]
    assert topology_for("web1", topo)[0] == "/^web/"
    assert topology_for("node1", topo, {"rack": "r1"})[0] == "rack=r1"
    assert topology_for("node1", topo, {"rack": "r2"}) == ("", [])


def test_exact_name_wins_over_pattern_and_first_match_wins_otherwise() -> None:
    topo = [
        level(1, "sbd", target_pattern="node"),
        level(1, "pdu1", target_attribute="rack", target_value="r1"),
        level(1, "ipmi", target="node1"),
    ]
    assert topology_for("node1", topo, {"rack": "r1"})[1][0].devices == ["ipmi"]
    assert topology_for("node2", topo, {"rack": "r1"})[1][0].devices == ["sbd"]


def test_repeated_index_later_definition_wins() -> None:
    topo = [level(1, "ipmi", target="node1"), level(1, "sbd", target="node1")]
    assert [lv.devices for lv in topology_for("node1", topo)[1]] == [["sbd"]]


def test_invalid_pattern_never_matches_and_is_reported() -> None:
    topo = [level(1, "ipmi", target_pattern="node[")]
    assert topology_for("node1", topo) == ("", [])
    assert "node[" in bad_patterns(topo)["fl-node[-1"]


def test_plan_from_topology_marks_levels_that_cannot_work() -> None:
    devices = {**DEVICES, "off": dev("off", enabled=False), "other": dev("other", hosts=("node9",))}
    topo = [
        level(1, "ipmi", "missing", target="node1"),
        level(2, "off", target="node1"),
        level(3, "other", target="node1"),
        level(4, "pdu1", "pdu2", target="node1"),
    ]
    plan = plan_for("node1", devices, topo)
    assert plan.from_topology
    assert plan.levels[0].problems == ("device missing is not configured",)
    assert "disabled" in plan.levels[1].problems[0]
    assert plan.levels[2].problems == ("device other cannot fence node1 (not in its host list or map)",)
    assert [lv.devices for lv in plan.usable_levels] == [("pdu1", "pdu2")]


def test_without_topology_each_capable_device_is_a_level_by_priority_then_order() -> None:
    devices = {
        "a": dev("a"),
        "b": dev("b", priority=10),
        "c": dev("c", hosts=("node9",)),
        "d": FenceDevice(id="d", agent="fence_x", host_check="status"),
        "e": dev("e"),
    }
    plan = plan_for("node1", devices)
    assert not plan.from_topology
    assert [lv.devices for lv in plan.levels] == [("b",), ("a",), ("e",), ("d",)]
    assert [lv.index for lv in plan.levels] == [1, 2, 3, 4]


def test_custom_capability_check_is_used() -> None:
    def only_pdu(device: FenceDevice, node: str) -> Capability:
        return Capability.YES if device.id.startswith("pdu") else Capability.NO

    assert [lv.devices for lv in plan_for("node1", DEVICES, check=only_pdu).levels] == [("pdu1",), ("pdu2",)]
