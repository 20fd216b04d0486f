"""OCF environment, exit-code mapping and lenient meta-data parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hakeeper.agents.base import ActionContext, AgentSpec
from hakeeper.agents.metadata import MetadataCache, MetadataError, parse_duration_ms, parse_metadata
from hakeeper.agents.ocf import OcfAgent, ocf_environment
from hakeeper.agents.registry import AgentRegistry
from hakeeper.agents.results import OcfRc, Severity, normalise_ocf_exit, severity_of


def test_environment_is_pacemakers() -> None:
    ctx = ActionContext(
        resource_id="web:1",
        action="monitor",
        interval_ms=10_000,
        timeout_ms=30_000,
        params={"ip": "10.0.0.1", "weird": "a b;$(x)"},
        meta={"clone-max": "2", "notify": "true", "OCF_RESKEY_x": "ignored-name-is-fine"},
        check_level=10,
        node_name="node1",
        base_env={"PATH": "/bin", "OCF_RESKEY_stale": "leak"},
    )
    env = ocf_environment(ctx, AgentSpec("ocf", "heartbeat", "IPaddr2"), "/usr/lib/ocf")
    assert env["OCF_ROOT"] == "/usr/lib/ocf"
    assert (env["OCF_RA_VERSION_MAJOR"], env["OCF_RA_VERSION_MINOR"]) == ("1", "1")
    assert env["OCF_RESOURCE_INSTANCE"] == "web:1"
    assert (env["OCF_RESOURCE_TYPE"], env["OCF_RESOURCE_PROVIDER"]) == ("IPaddr2", "heartbeat")
    assert env["OCF_EXIT_REASON_PREFIX"] == "ocf-exit-reason:"
    assert env["OCF_RESKEY_ip"] == "10.0.0.1" and env["OCF_RESKEY_weird"] == "a b;$(x)"
    assert env["OCF_RESKEY_CRM_meta_interval"] == "10000"
    assert env["OCF_RESKEY_CRM_meta_timeout"] == "30000"
    assert env["OCF_RESKEY_CRM_meta_clone_max"] == "2"
    assert env["OCF_RESKEY_CRM_meta_notify"] == "true"
    assert env["OCF_RESKEY_CRM_meta_name"] == "monitor"
    assert env["OCF_RESKEY_CRM_meta_on_node"] == "node1"
    assert env["OCF_CHECK_LEVEL"] == "10" and "OCF_RESKEY_CRM_meta_CHECK_LEVEL" not in env
    assert "OCF_RESKEY_stale" not in env and env["PATH"] == "/bin"


@pytest.mark.parametrize(
    ("code", "rc", "severity"),
    [
        (0, 0, Severity.OK),
        (1, 1, Severity.SOFT),
        (2, 2, Severity.HARD),
        (3, 3, Severity.HARD),
        (4, 4, Severity.HARD),
        (5, 5, Severity.HARD),
        (6, 6, Severity.FATAL),
        (7, 7, Severity.NOT_RUNNING),
        (8, 8, Severity.PROMOTED),
        (9, 9, Severity.SOFT),
        (190, 190, Severity.DEGRADED),
        (191, 191, Severity.DEGRADED_PROMOTED),
        (10, 1, Severity.SOFT),
        (137, 1, Severity.SOFT),
        (189, 1, Severity.SOFT),
        (255, 1, Severity.SOFT),
    ],
)
def test_exit_codes_map_to_their_meaning(code: int, rc: int, severity: Severity) -> None:
    mapped, reason = normalise_ocf_exit(code)
    assert mapped == rc and severity_of(mapped) == severity
    assert bool(reason) == (code != rc)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("20s", 20_000), ("20", 20_000), ("2min", 120_000), ("1h", 3_600_000), ("500ms", 500), ("1.5s", 1500),
     ("soon", None), ("", None), ("5 fortnights", None)],
)  # fmt: skip
def test_durations(text: str, ms: int | None) -> None:
    assert parse_duration_ms(text) == ms


LENIENT = """<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Thing">
<version>1.0</version>
<shortdesc lang="en">A thing</shortdesc>
<parameters>
<parameter name="state" unique="1" required="true"><content type="string" default="/x"/></parameter>
<parameter name="mode" unique-group="g1" reloadable="1">
 <content type="select" default="a"><option value="a"/><option value="b"/></content>
 <deprecated/>
</parameter>
<parameter><content type="string"/></parameter>
<parameter name="bare"/>
<unexpected-element/>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="monitor" timeout="20" interval="10s" depth="0" role="Promoted"/>
<action name="monitor" timeout="30s" interval="11s" depth="x"/>
<action name="stop" timeout="soon"/>
<action/>
</actions>
</resource-agent>
"""


def test_metadata_is_parsed_leniently() -> None:
    md = parse_metadata(LENIENT)
    assert md.name == "Thing" and md.version == "1.0" and md.shortdesc == "A thing"
    assert [p.name for p in md.parameters] == ["state", "mode", "bare"]
    state, mode, bare = md.parameters
    assert (state.required, state.unique, state.default) == (True, True, "/x")
    assert (mode.unique_group, mode.unique, mode.reloadable, mode.deprecated) == ("g1", True, True, True)
    assert (mode.type, mode.options) == ("select", ["a", "b"])
    assert (bare.type, bare.default, bare.required) == ("string", None, False)
    assert md.advised_timeout_ms("start") == 20_000
    assert md.advised_timeout_ms("monitor") == 20_000
    assert md.actions[1].role == "Promoted" and md.actions[2].depth is None
    assert md.advised_timeout_ms("stop") is None and md.supports("stop")


@pytest.mark.parametrize("text", ["", "<resource-agent", "<other/>", "not xml at all"])
def test_unusable_metadata_is_a_clear_error(text: str) -> None:
    with pytest.raises(MetadataError, match="meta-data of agent"):
        parse_metadata(text)


def test_metadata_cache_reloads_only_when_the_stamp_changes() -> None:
    cache, loads = MetadataCache(), []

    def load() -> str:
        loads.append(1)
        return LENIENT

    cache.get("x", 1, load)
    cache.get("x", 1, load)
    assert len(loads) == 1
    cache.get("x", 2, load)
    assert len(loads) == 2


@pytest.mark.skipif(not os.access("/usr/lib/ocf/resource.d/heartbeat/IPaddr2", os.X_OK), reason="no agents")
def test_real_ipaddr2_metadata() -> None:
    md = AgentRegistry().metadata("ocf:heartbeat:IPaddr2")
    ip = md.parameter("ip")
    assert ip is not None and ip.required
    assert md.advised_timeout_ms("start") == 20_000
    assert md.supports("monitor")


def test_builtin_metadata_parses() -> None:
    registry = AgentRegistry()
    for name in ("dummy", "process", "vip"):
        md = registry.metadata(f"ocf:hakeeper:{name}")
        assert md.name == name and md.supports("start") and md.supports("monitor")


def test_ocf_interpret_uses_the_mapping(tmp_path: Path) -> None:
    agent = OcfAgent(AgentSpec("ocf", "test", "x"), str(tmp_path))
    ctx = ActionContext(resource_id="r", action="monitor")
    assert agent.interpret(ctx, 8).rc == OcfRc.RUNNING_PROMOTED
    assert agent.interpret(ctx, 200).rc == OcfRc.ERR_GENERIC


def test_notify_and_clone_variables_reach_the_agent() -> None:
    meta = {
        "clone": "1",
        "clone_max": "3",
        "promoted_max": "1",
        "notify_type": "pre",
        "notify_operation": "promote",
        "notify_promote_resource": "db:1",
        "notify_promote_uname": "node2",
        "notify_active_uname": "node1 node2 node3",
    }
    ctx = ActionContext(resource_id="db:1", action="notify", meta=meta)
    env = ocf_environment(ctx, AgentSpec("ocf", "pacemaker", "Stateful"), "/usr/lib/ocf")
    for name, value in meta.items():
        assert env[f"OCF_RESKEY_CRM_meta_{name}"] == value
    assert "OCF_CHECK_LEVEL" not in env
