"""Resolve ``class:provider:type`` names to agents, and list what is installed.

Accepted names: ``ocf:<provider>:<type>`` (``ocf:hakeeper:<type>`` are the built-in Python agents),
``lsb:<script>``, ``systemd:<unit>``, and ``service:<name>`` (systemd when it runs and knows the unit,
otherwise the LSB script, decided at each action as Pacemaker does).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from hakeeper.agents.base import (
    ActionContext,
    Agent,
    AgentSpec,
    AgentSpecError,
    AgentUnavailable,
    Invocation,
    Outcome,
)
from hakeeper.agents.builtin import BUILTIN_PROVIDER, BUILTIN_TYPES
from hakeeper.agents.builtin.agent import BuiltinAgent
from hakeeper.agents.lsb import DEFAULT_INIT_DIR, LsbAgent, list_lsb
from hakeeper.agents.metadata import AgentMetadata, MetadataCache, MetadataError
from hakeeper.agents.ocf import DEFAULT_OCF_ROOT, OcfAgent
from hakeeper.agents.results import OpStatus
from hakeeper.agents.systemd import SYSTEMD_RUNTIME_DIR, SystemdAgent, list_units, systemd_running, unit_name

STANDARDS = ("ocf", "lsb", "systemd", "service")
METADATA_TIMEOUT_S = 30.0


def parse_spec(text: str) -> AgentSpec:
    """``ocf:heartbeat:IPaddr2`` -> AgentSpec; raises :class:`AgentSpecError` with a hint on bad input."""
    parts = text.strip().split(":")
    standard = parts[0].lower()
    if standard == "ocf":
        if len(parts) != 3 or not all(parts):
            raise AgentSpecError(
                f"OCF agents are named ocf:PROVIDER:TYPE (e.g. ocf:heartbeat:IPaddr2), not {text!r}"
            )
        return AgentSpec("ocf", parts[1], parts[2])
    if standard in ("lsb", "systemd", "service", "stonith"):
        if len(parts) != 2 or not parts[1]:
            raise AgentSpecError(f"{standard} agents are named {standard}:NAME, not {text!r}")
        return AgentSpec(standard, "", parts[1])
    raise AgentSpecError(
        f"unknown agent class in {text!r}: expected one of {', '.join((*STANDARDS, 'stonith'))}"
    )


class RegistryPaths(msgspec.Struct, frozen=True, kw_only=True):
    ocf_root: str = DEFAULT_OCF_ROOT
    init_dir: str = DEFAULT_INIT_DIR
    systemd_runtime_dir: str = SYSTEMD_RUNTIME_DIR
    python: str = ""
    """Interpreter for built-in agents; empty means the running one."""


class ServiceAgent:
    """``service:<name>``: systemd if it runs and has the unit, else the LSB script."""

    def __init__(self, spec: AgentSpec, paths: RegistryPaths) -> None:
        self._spec = spec
        self._systemd = SystemdAgent(AgentSpec("systemd", "", spec.type), paths.systemd_runtime_dir)
        self._lsb = LsbAgent(AgentSpec("lsb", "", spec.type), paths.init_dir)
        self._runtime_dir = paths.systemd_runtime_dir

    @property
    def spec(self) -> AgentSpec:
        return self._spec

    def chosen(self) -> SystemdAgent | LsbAgent:
        if systemd_running(self._runtime_dir) and unit_name(self._spec.type) in list_units():
            return self._systemd
        return self._lsb

    def invocation(self, ctx: ActionContext) -> Invocation:
        return self.chosen().invocation(ctx)

    def interpret(self, ctx: ActionContext, exit_code: int) -> Outcome:
        return self.chosen().interpret(ctx, exit_code)


class AgentRegistry:
    """Builds agents from names and keeps their parsed meta-data cached."""

    def __init__(
        self,
        paths: RegistryPaths | None = None,
        extra_classes: Mapping[str, Callable[[AgentSpec], Agent]] | None = None,
    ) -> None:
        self.paths = paths or RegistryPaths()
        self._metadata = MetadataCache()
        # classes a higher layer provides (the node daemon registers "stonith" from the fencing layer)
        self._extra = dict(extra_classes or {})

    def resolve(self, name: str | AgentSpec) -> Agent:
        spec = parse_spec(name) if isinstance(name, str) else name
        if spec.standard in self._extra:
            return self._extra[spec.standard](spec)
        if spec.standard == "stonith":
            raise AgentUnavailable(
                f"{spec} is a fencing device: the node daemon runs it through its fencing layer, "
                "not as a plain resource agent",
                OpStatus.NOT_SUPPORTED,
                3,
            )
        if spec.standard == "ocf" and spec.provider == BUILTIN_PROVIDER:
            return BuiltinAgent(spec, self.paths.python or None, self.paths.ocf_root)
        if spec.standard == "ocf":
            return OcfAgent(spec, self.paths.ocf_root)
        if spec.standard == "lsb":
            return LsbAgent(spec, self.paths.init_dir)
        if spec.standard == "systemd":
            return SystemdAgent(spec, self.paths.systemd_runtime_dir)
        return ServiceAgent(spec, self.paths)

    def list_agents(self, selector: str = "") -> list[str]:
        """Agent names, optionally only of one class (``ocf``) or class and provider (``ocf:heartbeat``)."""
        standard, _, provider = selector.partition(":")
        standard = standard.lower()
        if standard and standard not in STANDARDS:
            raise AgentSpecError(f"unknown agent class {standard!r}: expected one of {', '.join(STANDARDS)}")
        names: list[str] = []
        if standard in ("", "ocf"):
            names += self._list_ocf(provider)
        if standard in ("", "lsb") and not provider:
            names += [f"lsb:{n}" for n in list_lsb(self.paths.init_dir)]
        if standard in ("", "systemd") and not provider and systemd_running(self.paths.systemd_runtime_dir):
            names += [f"systemd:{n.removesuffix('.service')}" for n in list_units()]
        if standard == "service" and not provider:
            names += [f"service:{n}" for n in list_lsb(self.paths.init_dir)]
        return names

    def _list_ocf(self, provider: str) -> list[str]:
        names: list[str] = []
        base = Path(self.paths.ocf_root) / "resource.d"
        providers = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        for prov in providers:
            if provider and prov != provider:
                continue
            for agent in sorted((base / prov).iterdir()):
                if agent.is_file() and not agent.name.startswith(".") and os.access(agent, os.X_OK):
                    names.append(f"ocf:{prov}:{agent.name}")
        if provider in ("", BUILTIN_PROVIDER):
            names += [f"ocf:{BUILTIN_PROVIDER}:{t}" for t in BUILTIN_TYPES]
        return names

    def metadata(self, name: str | AgentSpec) -> AgentMetadata:
        """Parsed meta-data (cached until the agent file changes); raises MetadataError/AgentUnavailable."""
        agent = self.resolve(name)
        if isinstance(agent, ServiceAgent):
            agent = agent.chosen()
        if isinstance(agent, LsbAgent):
            return self._metadata.get(str(agent.spec), _stamp(agent.path), agent.metadata_xml)
        if isinstance(agent, SystemdAgent):
            return self._metadata.get(str(agent.spec), "systemd", lambda: _systemd_metadata(agent.spec.type))
        stamp = _stamp(agent.path) if isinstance(agent, OcfAgent) else "builtin"
        return self._metadata.get(str(agent.spec), stamp, lambda: _run_metadata(agent))


def _stamp(path: Path) -> tuple[str, int]:
    try:
        return str(path), path.stat().st_mtime_ns
    except OSError:
        return str(path), -1


def _run_metadata(agent: Agent) -> str:
    """Run the agent's ``meta-data`` action (needs no root, no resource)."""
    ctx = ActionContext(
        resource_id=agent.spec.type,
        action="meta-data",
        base_env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    invocation = agent.invocation(ctx)
    try:
        proc = subprocess.run(
            invocation.argv,
            env=invocation.env,
            cwd=invocation.cwd,
            capture_output=True,
            timeout=METADATA_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise MetadataError(
            f"{agent.spec} did not print its meta-data within {METADATA_TIMEOUT_S:.0f}s"
        ) from None
    except OSError as exc:
        raise MetadataError(f"could not run {agent.spec} meta-data: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise MetadataError(f"{agent.spec} meta-data exited with {proc.returncode}: {detail[0]}")
    return proc.stdout.decode(errors="replace")


def _systemd_metadata(unit: str) -> str:
    return (
        f'<?xml version="1.0"?>\n<resource-agent name="{unit}" version="1.0">\n'
        f'<shortdesc lang="en">systemd unit {unit_name(unit)}</shortdesc>\n<parameters/>\n<actions>\n'
        '<action name="start" timeout="100s"/>\n<action name="stop" timeout="100s"/>\n'
        '<action name="monitor" timeout="100s" interval="60s"/>\n</actions>\n</resource-agent>\n'
    )
