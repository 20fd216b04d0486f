"""Devices resolved from the CIB and which nodes each one can fence."""

from __future__ import annotations

import pytest

from hakeeper.cib.model import Clone, Configuration, Group, NvSet, Primitive, Template
from hakeeper.fencing.devices import (
    Capability,
    DeviceError,
    FenceDevice,
    can_fence,
    device_from_primitive,
    devices_from_config,
    effective_host_check,
    fencing_options,
    parse_host_list,
    parse_host_map,
)
from tests.fencing.helpers import config, stonith


def test_host_list_accepts_spaces_commas_and_semicolons() -> None:
    assert parse_host_list(" node1 node2,node3;node4  node2") == ("node1", "node2", "node3", "node4")
    assert parse_host_list("") == ()


def test_host_map_entries_and_separators() -> None:
    assert parse_host_map("node1:1;node2:2,3 node3=port-3") == {
        "node1": "1",
        "node2": "2,3",
        "node3": "port-3",
    }


def test_host_map_backslash_escapes_a_colon() -> None:
    assert parse_host_map(r"node1:vm\:one;node\:x:2") == {"node1": "vm:one", "node:x": "2"}


@pytest.mark.parametrize("bad", ["node1", "node1:", ":3", "node1:1;node2"])
def test_host_map_entry_without_port_is_a_clear_error(bad: str) -> None:
    with pytest.raises(DeviceError, match="node:value"):
        parse_host_map(bad)


def test_device_splits_cluster_and_agent_parameters() -> None:
    prim = stonith(
        "ipmi",
        agent="fence_ipmilan",
        ip="10.0.0.1",
        username="admin",
        password="s3cret",
        pcmk_host_list="node1",
        pcmk_delay_base="2s",
        pcmk_delay_max="5s",
        pcmk_off_timeout="30s",
        pcmk_reboot_retries="4",
        pcmk_reboot_action="off",
        pcmk_host_argument="plug",
    )
    dev = device_from_primitive(prim)
    assert dev.agent == "fence_ipmilan"
    assert dev.params == {"ip": "10.0.0.1", "username": "admin", "password": "s3cret"}
    assert dev.host_list == ("node1",)
    assert (dev.delay_base_ms, dev.delay_max_ms) == (2000, 5000)
    assert dev.timeout_ms("off") == 30_000 and dev.timeout_ms("reboot") == 60_000
    assert dev.retries_for("reboot") == 4 and dev.retries_for("off") == 2
    assert dev.agent_action("reboot") == "off" and dev.agent_action("on") == "on"
    assert dev.host_argument == "plug"


def test_stonith_timeout_property_is_the_default_device_timeout() -> None:
    cfg = config(stonith("d", pcmk_host_list="node1"), props={"stonith-timeout": "90s"})
    devices = devices_from_config(cfg)
    assert devices.devices["d"].timeout_ms("off") == 90_000


def test_delay_base_per_node() -> None:
    dev = device_from_primitive(stonith("d", pcmk_delay_base="node1:0s;node2:10s"))
    assert dev.static_delay_ms("node1") == 0
    assert dev.static_delay_ms("node2") == 10_000
    assert dev.static_delay_ms("node3") == 0


def test_bad_values_name_the_device_and_the_attribute() -> None:
    with pytest.raises(DeviceError, match=r"pcmk_delay_max of d .*'soon'"):
        device_from_primitive(stonith("d", pcmk_delay_max="soon"))
    with pytest.raises(DeviceError, match="pcmk_host_check='maybe'"):
        device_from_primitive(stonith("d", pcmk_host_check="maybe"))
    with pytest.raises(DeviceError, match="fence_<something>"):
        device_from_primitive(stonith("d", agent="../../bin/rm"))


def test_one_bad_device_does_not_hide_the_others() -> None:
    cfg = config(stonith("good", pcmk_host_list="node1"), stonith("bad", pcmk_host_map="node2"))
    devices = devices_from_config(cfg)
    assert list(devices.devices) == ["good"]
    assert "pcmk_host_map of bad" in devices.errors["bad"]


def test_devices_inside_groups_clones_and_templates_are_found() -> None:
    tmpl = Template(
        id="t",
        klass="stonith",
        type="fence_virsh",
        instance_attributes=[NvSet(id="t-ia", values={"ip": "h", "pcmk_host_list": "node9"})],
    )
    from_template = Primitive(
        id="v", template="t", instance_attributes=[NvSet(id="v-ia", values={"ip": "host2"})]
    )
    cfg = Configuration(
        templates=[tmpl],
        resources=[
            Group(id="g", children=[stonith("in-group", pcmk_host_list="node1")]),
            Clone(id="c", child=stonith("in-clone", pcmk_host_list="node2")),
            from_template,
            Primitive(id="web", klass="ocf", provider="heartbeat", type="apache"),
        ],
    )
    devices = devices_from_config(cfg).devices
    assert sorted(devices) == ["in-clone", "in-group", "v"]
    assert devices["v"].agent == "fence_virsh"
    assert devices["v"].params == {"ip": "host2"}  # the primitive overrides its template
    assert devices["v"].host_list == ("node9",)


def test_fencing_options_defaults_and_properties() -> None:
    assert fencing_options(Configuration()).action == "reboot"
    opts = fencing_options(
        config(
            props={
                "stonith-enabled": "false",
                "stonith-action": "poweroff",
                "priority-fencing-delay": "15s",
                "stonith-watchdog-timeout": "10s",
                "stonith-max-attempts": "3",
            }
        )
    )
    assert not opts.enabled
    assert opts.action == "off"
    assert opts.priority_delay_ms == 15_000
    assert opts.watchdog_timeout_ms == 10_000
    assert opts.max_attempts == 3
    with pytest.raises(DeviceError, match="stonith-action"):
        fencing_options(config(props={"stonith-action": "explode"}))


def test_host_check_default_follows_pacemaker() -> None:
    listed = FenceDevice(id="a", agent="fence_x", host_list=("node1",))
    mapped = FenceDevice(id="b", agent="fence_x", host_map={"node1": "1"})
    bare = FenceDevice(id="c", agent="fence_x")
    assert effective_host_check(listed) == "static-list"
    assert effective_host_check(mapped) == "static-list"
    assert effective_host_check(bare, frozenset({"off", "list", "status"})) == "dynamic-list"
    assert effective_host_check(bare, frozenset({"off", "status"})) == "status"
    assert effective_host_check(bare, frozenset({"off"})) == "none"
    assert (
        effective_host_check(FenceDevice(id="d", agent="fence_x", host_check="none", host_list=("n",)))
        == "none"
    )


def test_static_list_capability_uses_list_or_map() -> None:
    dev = FenceDevice(id="a", agent="fence_x", host_list=("node1",), host_map={"node2": "2"})
    assert can_fence(dev, "node1") is Capability.YES
    assert can_fence(dev, "node2") is Capability.YES
    assert can_fence(dev, "node3") is Capability.NO
    assert dev.port_for("node2") == "2" and dev.port_for("node1") == "node1"


def test_dynamic_list_compares_the_mapped_port() -> None:
    dev = FenceDevice(id="a", agent="fence_x", host_check="dynamic-list", host_map={"node1": "vm-1"})
    assert can_fence(dev, "node1") is Capability.UNKNOWN
    assert can_fence(dev, "node1", dynamic_list=frozenset({"vm-1"})) is Capability.YES
    assert can_fence(dev, "node2", dynamic_list=frozenset({"vm-1"})) is Capability.NO


def test_none_and_status_checks_and_disabled_devices() -> None:
    assert can_fence(FenceDevice(id="a", agent="fence_x", host_check="none"), "any") is Capability.YES
    assert can_fence(FenceDevice(id="a", agent="fence_x", host_check="status"), "n") is Capability.UNKNOWN
    stopped = device_from_primitive(stonith("s", meta={"target-role": "Stopped"}, pcmk_host_list="n"))
    assert not stopped.enabled
    assert can_fence(stopped, "n") is Capability.NO


def test_cluster_glue_plugins_are_named_as_such() -> None:
    for plugin in ("external/sbd", "null", "ssh"):
        with pytest.raises(DeviceError, match=r"cluster-glue .*fence-agents only"):
            device_from_primitive(stonith("old", agent=plugin))
