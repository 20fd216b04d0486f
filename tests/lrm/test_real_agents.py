"""Unmodified agents from Debian's resource-agents and pacemaker-resource-agents, run through the LRM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hakeeper.lrm.messages import AttributeUpdate, OpRequest, OpStatus
from hakeeper.lrm.service import LocalResourceManager


def have_agent(provider: str, agent: str) -> bool:
    return os.access(f"/usr/lib/ocf/resource.d/{provider}/{agent}", os.X_OK)


needs_heartbeat = pytest.mark.skipif(
    not have_agent("heartbeat", "Dummy"), reason="Debian's resource-agents is not installed"
)
needs_pacemaker_agents = pytest.mark.skipif(
    not have_agent("pacemaker", "Stateful"), reason="Debian's pacemaker-resource-agents is not installed"
)


def op(rsc: str, agent: str, operation: str, **kw: object) -> OpRequest:
    return OpRequest(resource_id=rsc, agent=agent, operation=operation, **kw)  # type: ignore[arg-type]


@needs_heartbeat
async def test_heartbeat_dummy_lifecycle(lrm: LocalResourceManager, tmp_path: Path) -> None:
    params = {"state": str(tmp_path / "dummy.state")}
    agent = "ocf:heartbeat:Dummy"
    probe = await lrm.run(op("d", agent, "monitor", params=params))
    assert (probe.rc, probe.op_status) == (7, OpStatus.DONE)
    start = await lrm.run(op("d", agent, "start", params=params))
    assert (start.rc, start.op_status) == (0, OpStatus.DONE)
    assert (tmp_path / "dummy.state").exists()
    monitor = await lrm.run(op("d", agent, "monitor", params=params))
    assert monitor.rc == 0
    stop = await lrm.run(op("d", agent, "stop", params=params))
    assert stop.rc == 0
    after = await lrm.run(op("d", agent, "monitor", params=params))
    assert after.rc == 7
    history = lrm.core.history("d")
    assert history is not None and history.last is not None
    assert history.last.call_id == after.call_id
    assert [r.operation for r in history.recent] == ["monitor", "start", "monitor", "stop", "monitor"]
    assert len({r.call_id for r in history.recent}) == 5


@needs_pacemaker_agents
async def test_stateful_promotes_through_our_crm_attribute(lrm: LocalResourceManager, tmp_path: Path) -> None:
    params = {"state": str(tmp_path / "stateful.state")}
    agent = "ocf:pacemaker:Stateful"
    meta = {"clone": "0", "promotable": "true", "globally_unique": "false"}
    start = await lrm.run(op("db:0", agent, "start", params=params, meta=meta))
    assert start.rc == 0, start.output
    assert lrm.attributes.get("master-db") == "5"
    promote = await lrm.run(op("db:0", agent, "promote", params=params, meta=meta))
    assert promote.rc == 0, promote.output
    assert lrm.attributes.get("master-db") == "10"
    monitor = await lrm.run(op("db:0", agent, "monitor", params=params, meta=meta))
    assert monitor.rc == 8
    demote = await lrm.run(op("db:0", agent, "demote", params=params, meta=meta))
    assert demote.rc == 0
    assert lrm.attributes.get("master-db") == "5"
    monitor = await lrm.run(op("db:0", agent, "monitor", params=params, meta=meta))
    assert monitor.rc == 0
    updates = _attribute_updates(lrm)
    # start, promote, probe (Stateful restores the score on probes), demote, probe
    assert [u.value for u in updates] == ["5", "10", "10", "5", "5"]
    assert {(u.name, u.lifetime, u.node, u.resource_id) for u in updates} == {
        ("master-db", "reboot", "node1", "db:0")
    }
    stop = await lrm.run(op("db:0", agent, "stop", params=params, meta=meta))
    assert stop.rc == 0
    assert lrm.attributes.get("master-db") is None


@needs_heartbeat
async def test_heartbeat_stateful_uses_crm_master_through_our_helper(
    lrm: LocalResourceManager, tmp_path: Path
) -> None:
    """Its ocf_promotion_score runs ``$HA_SBIN_DIR/crm_master -l reboot``: ours, not /usr/sbin's."""
    params = {"state": str(tmp_path / "hb-stateful.state")}
    agent = "ocf:heartbeat:Stateful"
    assert (await lrm.run(op("ms", agent, "start", params=params))).rc == 0
    assert lrm.attributes.get("master-ms") == "5"
    assert (await lrm.run(op("ms", agent, "promote", params=params))).rc == 0
    assert lrm.attributes.get("master-ms") == "10"
    assert (await lrm.run(op("ms", agent, "monitor", params=params))).rc == 8
    assert (await lrm.run(op("ms", agent, "demote", params=params))).rc == 0
    assert lrm.attributes.get("master-ms") == "5"
    assert (await lrm.run(op("ms", agent, "stop", params=params))).rc == 0
    assert lrm.attributes.get("master-ms") is None
    assert (await lrm.run(op("ms", agent, "monitor", params=params))).rc == 7


@needs_pacemaker_agents
async def test_ping_sets_its_attribute_through_our_attrd_updater(
    lrm: LocalResourceManager, tmp_path: Path
) -> None:
    params = {
        "host_list": "127.0.0.1",
        "name": "pingd",
        "multiplier": "1000",
        "dampen": "1s",
        "attempts": "1",
        "timeout": "2",
        "pidfile": str(tmp_path / "ping.pid"),
    }
    start = await lrm.run(op("ping", "ocf:pacemaker:ping", "start", params=params, timeout_ms=30_000))
    assert start.rc == 0, start.output
    assert lrm.attributes.get("pingd") == "1000"
    (update,) = _attribute_updates(lrm)
    assert (update.name, update.value, update.dampen_ms, update.resource_id) == (
        "pingd",
        "1000",
        1000,
        "ping",
    )
    monitor = await lrm.run(op("ping", "ocf:pacemaker:ping", "monitor", params=params, timeout_ms=30_000))
    assert monitor.rc == 0
    stop = await lrm.run(op("ping", "ocf:pacemaker:ping", "stop", params=params))
    assert stop.rc == 0
    assert lrm.attributes.get("pingd") is None


def _attribute_updates(lrm: LocalResourceManager) -> list[AttributeUpdate]:
    updates = []
    while not lrm.events.empty():
        event = lrm.events.get_nowait()
        if isinstance(event, AttributeUpdate):
            updates.append(event)
    return updates


@needs_heartbeat
async def test_validate_all_with_check_level(lrm: LocalResourceManager, tmp_path: Path) -> None:
    good = await lrm.run(
        op("v", "ocf:heartbeat:IPaddr2", "validate-all", params={"ip": "127.0.0.9"}, check_level=0)
    )
    assert (good.op_status, good.rc) == (OpStatus.DONE, 0), good.exit_reason
    bad = await lrm.run(
        op("v", "ocf:heartbeat:IPaddr2", "validate-all", params={"ip": "not-an-ip"}, check_level=10)
    )
    assert bad.rc == 6 and bad.exit_reason, bad.output
    unwritable = await lrm.run(
        op("u", "ocf:heartbeat:Dummy", "validate-all", params={"state": "/nonexistent/s"})
    )
    assert (unwritable.rc, unwritable.severity) == (2, "hard")
    assert unwritable.exit_reason == 'State file "/nonexistent/s" is not writable'


@needs_pacemaker_agents
async def test_the_agent_sees_pacemakers_environment(lrm: LocalResourceManager, tmp_path: Path) -> None:
    envfile = tmp_path / "env"
    params = {"state": str(tmp_path / "s"), "envfile": str(envfile)}
    req = OpRequest(
        resource_id="db:2",
        agent="ocf:pacemaker:Stateful",
        operation="monitor",
        timeout_ms=15_000,
        params=params,
        meta={"clone-max": "2", "globally-unique": "false"},
        check_level=5,
    )
    assert (await lrm.run(req)).rc == 7
    seen = dict(line.split("=", 1) for line in envfile.read_text().splitlines() if "=" in line)
    assert seen["OCF_ROOT"] == "/usr/lib/ocf"
    assert seen["OCF_RESOURCE_INSTANCE"] == "db:2"
    assert (seen["OCF_RESOURCE_PROVIDER"], seen["OCF_RESOURCE_TYPE"]) == ("pacemaker", "Stateful")
    assert (seen["OCF_RA_VERSION_MAJOR"], seen["OCF_RA_VERSION_MINOR"]) == ("1", "1")
    assert seen["OCF_RESKEY_CRM_meta_timeout"] == "15000" and seen["OCF_RESKEY_CRM_meta_interval"] == "0"
    assert seen["OCF_RESKEY_CRM_meta_clone_max"] == "2"
    assert seen["OCF_RESKEY_CRM_meta_globally_unique"] == "false"
    assert seen["OCF_CHECK_LEVEL"] == "5"
    assert seen["OCF_EXIT_REASON_PREFIX"] == "ocf-exit-reason:"
    assert seen["HA_SBIN_DIR"] == str(lrm.run_dir / "bin")
    assert seen["PATH"].startswith(str(lrm.run_dir / "bin") + ":")
