"""Agent names, listing, the LSB and systemd classes and the service: alias."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hakeeper.agents.base import ActionContext, AgentSpec, AgentSpecError, AgentUnavailable
from hakeeper.agents.builtin.agent import BuiltinAgent
from hakeeper.agents.lsb import LsbAgent
from hakeeper.agents.ocf import OcfAgent
from hakeeper.agents.registry import AgentRegistry, RegistryPaths, ServiceAgent, parse_spec
from hakeeper.agents.results import OcfRc, OpStatus
from hakeeper.agents.systemd import SystemdAgent


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("ocf:heartbeat:IPaddr2", AgentSpec("ocf", "heartbeat", "IPaddr2")),
        ("OCF:pacemaker:Stateful", AgentSpec("ocf", "pacemaker", "Stateful")),
        ("lsb:postgresql", AgentSpec("lsb", "", "postgresql")),
        ("systemd:nginx", AgentSpec("systemd", "", "nginx")),
        ("service:nginx", AgentSpec("service", "", "nginx")),
    ],
)
def test_names(text: str, spec: AgentSpec) -> None:
    assert parse_spec(text) == spec
    assert str(spec) in (text, text.replace("OCF", "ocf"))


@pytest.mark.parametrize(
    ("text", "hint"),
    [("ocf:Dummy", "ocf:PROVIDER:TYPE"), ("ocf::Dummy", "ocf:PROVIDER:TYPE"), ("lsb:", "lsb:NAME"),
     ("upstart:x", "unknown agent class"), ("", "unknown agent class")],
)  # fmt: skip
def test_bad_names_explain_themselves(text: str, hint: str) -> None:
    with pytest.raises(AgentSpecError, match=hint):
        parse_spec(text)


def test_resolve_picks_the_class(tmp_path: Path) -> None:
    registry = AgentRegistry(RegistryPaths(ocf_root=str(tmp_path)))
    assert isinstance(registry.resolve("ocf:heartbeat:Dummy"), OcfAgent)
    assert isinstance(registry.resolve("ocf:hakeeper:vip"), BuiltinAgent)
    assert isinstance(registry.resolve("lsb:x"), LsbAgent)
    assert isinstance(registry.resolve("systemd:x"), SystemdAgent)
    assert isinstance(registry.resolve("service:x"), ServiceAgent)


def test_listing(tmp_path: Path) -> None:
    (tmp_path / "ocf/resource.d/acme").mkdir(parents=True)
    for name, mode in (("Good", 0o755), ("NotExec", 0o644), (".hidden", 0o755)):
        path = tmp_path / "ocf/resource.d/acme" / name
        path.write_text("#!/bin/sh\n")
        path.chmod(mode)
    (tmp_path / "init.d").mkdir()
    (tmp_path / "init.d/mysvc").write_text("#!/bin/sh\n")
    paths = RegistryPaths(
        ocf_root=str(tmp_path / "ocf"),
        init_dir=str(tmp_path / "init.d"),
        systemd_runtime_dir=str(tmp_path / "no"),
    )
    registry = AgentRegistry(paths)
    assert registry.list_agents("ocf:acme") == ["ocf:acme:Good"]
    assert registry.list_agents("ocf:hakeeper") == [
        "ocf:hakeeper:dummy",
        "ocf:hakeeper:process",
        "ocf:hakeeper:vip",
    ]
    assert registry.list_agents("lsb") == ["lsb:mysvc"]
    assert registry.list_agents("systemd") == []
    assert "ocf:acme:Good" in registry.list_agents() and "lsb:mysvc" in registry.list_agents()
    with pytest.raises(AgentSpecError):
        registry.list_agents("bogus")


@pytest.mark.skipif(not os.access("/usr/lib/ocf/resource.d/heartbeat/Dummy", os.X_OK), reason="no agents")
def test_listing_real_agents() -> None:
    names = AgentRegistry().list_agents("ocf")
    assert {"ocf:heartbeat:Dummy", "ocf:heartbeat:IPaddr2", "ocf:pacemaker:Stateful"} <= set(names)


INIT_SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          mysvc
# Short-Description: My service
# Description:       A longer description.
### END INIT INFO
exit "$(cat "$(dirname "$0")/rc-$1" 2>/dev/null || echo 0)"
"""


def lsb_agent(tmp_path: Path) -> LsbAgent:
    script = tmp_path / "mysvc"
    script.write_text(INIT_SCRIPT)
    script.chmod(0o755)
    return LsbAgent(AgentSpec("lsb", "", "mysvc"), str(tmp_path))


@pytest.mark.parametrize(
    ("code", "rc", "status"),
    [(0, OcfRc.SUCCESS, OpStatus.DONE), (1, OcfRc.NOT_RUNNING, OpStatus.DONE),
     (2, OcfRc.NOT_RUNNING, OpStatus.DONE), (3, OcfRc.NOT_RUNNING, OpStatus.DONE),
     (4, OcfRc.ERR_GENERIC, OpStatus.DONE),
     (150, OcfRc.ERR_INSTALLED, OpStatus.NOT_INSTALLED), (151, OcfRc.ERR_PERM, OpStatus.ERROR_HARD),
     (99, OcfRc.ERR_GENERIC, OpStatus.DONE)],
)  # fmt: skip
def test_lsb_status_codes(tmp_path: Path, code: int, rc: int, status: OpStatus) -> None:
    agent = lsb_agent(tmp_path)
    outcome = agent.interpret(ActionContext(resource_id="r", action="monitor"), code)
    assert (outcome.rc, outcome.status) == (rc, status)


def test_lsb_invocation_and_metadata(tmp_path: Path) -> None:
    agent = lsb_agent(tmp_path)
    inv = agent.invocation(ActionContext(resource_id="r", action="monitor", base_env={"PATH": "/bin"}))
    assert inv.argv == [str(tmp_path / "mysvc"), "status"]
    assert agent.interpret(ActionContext(resource_id="r", action="start"), 1).rc == OcfRc.ERR_GENERIC
    with pytest.raises(AgentUnavailable) as info:
        agent.invocation(ActionContext(resource_id="r", action="promote"))
    assert info.value.status == OpStatus.NOT_SUPPORTED
    registry = AgentRegistry(RegistryPaths(init_dir=str(tmp_path)))
    md = registry.metadata("lsb:mysvc")
    assert (md.shortdesc, md.longdesc) == ("My service", "A longer description.")


def test_missing_lsb_script_is_not_installed(tmp_path: Path) -> None:
    agent = LsbAgent(AgentSpec("lsb", "", "absent"), str(tmp_path))
    with pytest.raises(AgentUnavailable, match="not installed") as info:
        agent.invocation(ActionContext(resource_id="r", action="start"))
    assert (info.value.status, info.value.rc) == (OpStatus.NOT_INSTALLED, OcfRc.ERR_INSTALLED)


def test_systemd_class_says_it_is_unavailable_without_systemd(tmp_path: Path) -> None:
    agent = SystemdAgent(AgentSpec("systemd", "", "nginx"), str(tmp_path / "not-booted"))
    with pytest.raises(AgentUnavailable, match="systemd is not running as PID 1") as info:
        agent.invocation(ActionContext(resource_id="r", action="start"))
    assert info.value.status == OpStatus.NOT_INSTALLED


def test_systemd_invocation_and_mapping(tmp_path: Path) -> None:
    agent = SystemdAgent(AgentSpec("systemd", "", "nginx"), str(tmp_path))
    ctx = ActionContext(resource_id="r", action="monitor")
    assert agent.interpret(ctx, 0).rc == OcfRc.SUCCESS
    assert agent.interpret(ctx, 3).rc == OcfRc.NOT_RUNNING
    start = ActionContext(resource_id="r", action="start")
    assert agent.interpret(start, 5).status == OpStatus.NOT_INSTALLED
    assert agent.interpret(start, 1).rc == OcfRc.ERR_GENERIC


def test_service_alias_falls_back_to_lsb(tmp_path: Path) -> None:
    lsb_agent(tmp_path)
    paths = RegistryPaths(init_dir=str(tmp_path), systemd_runtime_dir=str(tmp_path / "not-booted"))
    agent = AgentRegistry(paths).resolve("service:mysvc")
    assert isinstance(agent, ServiceAgent) and isinstance(agent.chosen(), LsbAgent)
    inv = agent.invocation(ActionContext(resource_id="r", action="start"))
    assert inv.argv == [str(tmp_path / "mysvc"), "start"]
