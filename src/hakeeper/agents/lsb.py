"""The LSB class: init scripts in ``/etc/init.d``, with LSB status codes mapped to OCF meanings.

``monitor`` runs the script's ``status``. Status codes (Pacemaker ``services__lsb2ocf``): 0 running;
1 dead with pidfile, 2 dead with lockfile, 3 stopped -> not running; 4 unknown -> error; 150 not installed;
151 insufficient privileges. Other actions use codes 0-7 as OCF does; anything else is a generic error.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.sax.saxutils import escape

from hakeeper.agents.base import ActionContext, AgentSpec, AgentUnavailable, Invocation, Outcome
from hakeeper.agents.ocf import check_executable
from hakeeper.agents.results import OcfRc, OpStatus

DEFAULT_INIT_DIR = "/etc/init.d"
LSB_ACTIONS = {
    "start": "start",
    "stop": "stop",
    "monitor": "status",
    "status": "status",
    "restart": "restart",
    "force-reload": "force-reload",
    "reload": "reload",
}
_STATUS_MAP = {0: OcfRc.SUCCESS, 1: OcfRc.NOT_RUNNING, 2: OcfRc.NOT_RUNNING, 3: OcfRc.NOT_RUNNING}


class LsbAgent:
    """An LSB init script."""

    def __init__(self, spec: AgentSpec, init_dir: str = DEFAULT_INIT_DIR) -> None:
        self._spec = spec
        self.init_dir = init_dir

    @property
    def spec(self) -> AgentSpec:
        return self._spec

    @property
    def path(self) -> Path:
        return (
            Path(self._spec.type)
            if self._spec.type.startswith("/")
            else Path(self.init_dir) / self._spec.type
        )

    def invocation(self, ctx: ActionContext) -> Invocation:
        check_executable(self.path, f"init script {self._spec}")
        if ctx.action == "meta-data":
            raise AgentUnavailable(
                "LSB scripts have no meta-data action", OpStatus.NOT_SUPPORTED, OcfRc.ERR_UNIMPLEMENTED
            )
        verb = LSB_ACTIONS.get(ctx.action)
        if verb is None:
            raise AgentUnavailable(
                f"init script {self._spec} cannot {ctx.action!r} (only start, stop, status/monitor)",
                OpStatus.NOT_SUPPORTED,
                OcfRc.ERR_UNIMPLEMENTED,
            )
        env = {k: v for k, v in ctx.base_env.items() if not k.startswith("OCF_")}
        return Invocation(argv=[str(self.path), verb], env=env)

    def interpret(self, ctx: ActionContext, exit_code: int) -> Outcome:
        if LSB_ACTIONS.get(ctx.action) == "status":
            if exit_code in _STATUS_MAP:
                return Outcome(rc=_STATUS_MAP[exit_code])
            if exit_code == 150:
                return Outcome(OcfRc.ERR_INSTALLED, OpStatus.NOT_INSTALLED, "init script says: not installed")
            if exit_code == 151:
                return Outcome(
                    OcfRc.ERR_PERM, OpStatus.ERROR_HARD, "init script says: insufficient privileges"
                )
            return Outcome(
                OcfRc.ERR_GENERIC, reason=f"init script status returned {exit_code} (unknown state)"
            )
        if 0 <= exit_code <= OcfRc.NOT_RUNNING:
            return Outcome(rc=exit_code)
        return Outcome(OcfRc.ERR_GENERIC, reason=f"init script exited with {exit_code}")

    def metadata_xml(self) -> str:
        """Meta-data synthesised from the script's ``### BEGIN INIT INFO`` header."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise AgentUnavailable(f"cannot read init script {self.path}: {exc.strerror}") from None
        short = _header_field(text, "Short-Description") or self._spec.type
        long = _header_field(text, "Description") or short
        return (
            f'<?xml version="1.0"?>\n<resource-agent name="{escape(self._spec.type)}" version="1.0">\n'
            f'<version>1.0</version>\n<longdesc lang="en">{escape(long)}</longdesc>\n'
            f'<shortdesc lang="en">{escape(short)}</shortdesc>\n<parameters/>\n<actions>\n'
            '<action name="start" timeout="15s"/>\n<action name="stop" timeout="15s"/>\n'
            '<action name="status" timeout="15s"/>\n<action name="monitor" timeout="15s" interval="15s"/>\n'
            "</actions>\n</resource-agent>\n"
        )


def _header_field(text: str, field: str) -> str:
    match = re.search(rf"^#\s*{re.escape(field)}:\s*(.*)$", text, re.MULTILINE)
    return match.group(1).strip() if match else ""


def list_lsb(init_dir: str = DEFAULT_INIT_DIR) -> list[str]:
    base = Path(init_dir)
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_file() and not p.name.startswith((".", "README")))
