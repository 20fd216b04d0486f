"""The systemd class: units managed through ``systemctl`` when systemd is the init system (PID 1).

Without a running systemd the class says so clearly (not-installed semantics) instead of failing obscurely.
``start``/``stop`` wait for the job as Pacemaker does; ``monitor`` maps ``is-active`` to running or not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hakeeper.agents.base import ActionContext, AgentSpec, AgentUnavailable, Invocation, Outcome
from hakeeper.agents.results import OcfRc, OpStatus

SYSTEMD_RUNTIME_DIR = "/run/systemd/system"
_UNIT_SUFFIXES = (".service", ".socket", ".mount", ".timer", ".path", ".target", ".slice", ".scope")
_VERBS = {
    "start": ["start"],
    "stop": ["stop"],
    "monitor": ["is-active", "--quiet"],
    "status": ["is-active", "--quiet"],
    "reload": ["reload-or-restart"],
    "restart": ["restart"],
}
SYSTEMCTL_NOT_FOUND = 5  # "unit not loaded"


def systemd_running(runtime_dir: str = SYSTEMD_RUNTIME_DIR) -> bool:
    """sd_booted(): systemd is PID 1 iff its runtime directory exists."""
    return Path(runtime_dir).is_dir()


def unit_name(name: str) -> str:
    return name if name.endswith(_UNIT_SUFFIXES) else name + ".service"


class SystemdAgent:
    """A systemd unit."""

    def __init__(self, spec: AgentSpec, runtime_dir: str = SYSTEMD_RUNTIME_DIR) -> None:
        self._spec = spec
        self.runtime_dir = runtime_dir

    @property
    def spec(self) -> AgentSpec:
        return self._spec

    def check_available(self) -> str:
        """The systemctl path; raises :class:`AgentUnavailable` with the reason when systemd is not usable."""
        if not systemd_running(self.runtime_dir):
            raise AgentUnavailable(
                f"the systemd class is unavailable on this node: systemd is not running as PID 1 "
                f"(no {self.runtime_dir}), so {self._spec} cannot be managed here"
            )
        systemctl = shutil.which("systemctl")
        if systemctl is None:
            raise AgentUnavailable(
                "the systemd class is unavailable on this node: systemctl is not installed"
            )
        return systemctl

    def invocation(self, ctx: ActionContext) -> Invocation:
        systemctl = self.check_available()
        verb = _VERBS.get(ctx.action)
        if verb is None:
            raise AgentUnavailable(
                f"systemd unit {self._spec} cannot {ctx.action!r} (start, stop, monitor, reload, restart)",
                OpStatus.NOT_SUPPORTED,
                OcfRc.ERR_UNIMPLEMENTED,
            )
        env = {k: v for k, v in ctx.base_env.items() if not k.startswith("OCF_")}
        return Invocation(argv=[systemctl, *verb, unit_name(self._spec.type)], env=env)

    def interpret(self, ctx: ActionContext, exit_code: int) -> Outcome:
        if ctx.action in ("monitor", "status"):
            return Outcome(rc=OcfRc.SUCCESS if exit_code == 0 else OcfRc.NOT_RUNNING)
        if exit_code == 0:
            return Outcome(rc=OcfRc.SUCCESS)
        if exit_code == SYSTEMCTL_NOT_FOUND:
            return Outcome(
                OcfRc.ERR_INSTALLED, OpStatus.NOT_INSTALLED, f"unit {unit_name(self._spec.type)} not found"
            )
        return Outcome(OcfRc.ERR_GENERIC, reason=f"systemctl {ctx.action} exited with {exit_code}")


def list_units(unit_dirs: tuple[str, ...] = ("/etc/systemd/system", "/lib/systemd/system")) -> list[str]:
    names: set[str] = set()
    for directory in unit_dirs:
        base = Path(directory)
        if base.is_dir():
            names.update(p.name for p in base.iterdir() if p.name.endswith(".service") and "@" not in p.name)
    return sorted(names)
