"""What every built-in agent needs inside its subprocess: its OCF environment, exit reasons, and dispatch.

Every agent action is a fresh interpreter on the failover's critical path, so this module (like the agents)
imports only the standard library's cheap modules: no msgspec, no typing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

from hakeeper.agents.results import OcfRc

META_PREFIX = "OCF_RESKEY_CRM_meta_"
PARAM_PREFIX = "OCF_RESKEY_"


class AgentFailure(Exception):
    """Raised by an action to exit with ``rc`` and ``reason`` (printed as the OCF exit reason)."""

    def __init__(self, reason: str, rc: int = OcfRc.ERR_GENERIC) -> None:
        super().__init__(reason)
        self.rc = rc


class OcfEnv:
    """The OCF environment as a built-in agent sees it."""

    __slots__ = ("action", "instance", "meta", "params", "run_dir")

    def __init__(
        self, *, instance: str, action: str, params: dict[str, str], meta: dict[str, str], run_dir: str
    ) -> None:
        self.instance = instance
        self.action = action
        self.params = params
        self.meta = meta
        self.run_dir = run_dir

    @classmethod
    def from_environ(cls, action: str, environ: Mapping[str, str]) -> OcfEnv:
        params = {
            k[len(PARAM_PREFIX) :]: v
            for k, v in environ.items()
            if k.startswith(PARAM_PREFIX)
            and not k.startswith(META_PREFIX)
            and k != "OCF_RESKEY_crm_feature_set"
        }
        meta = {k[len(META_PREFIX) :]: v for k, v in environ.items() if k.startswith(META_PREFIX)}
        return cls(
            instance=environ.get("OCF_RESOURCE_INSTANCE", "unnamed"),
            action=action,
            params=params,
            meta=meta,
            run_dir=environ.get("HA_RSCTMP", "/run/resource-agents"),
        )

    def param(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    def required(self, name: str) -> str:
        value = self.params.get(name, "")
        if not value:
            raise AgentFailure(f"the required parameter '{name}' is not set", OcfRc.ERR_CONFIGURED)
        return value

    def number(self, name: str, default: float) -> float:
        text = self.params.get(name, "")
        if not text:
            return default
        try:
            return float(text)
        except ValueError:
            raise AgentFailure(
                f"parameter '{name}' must be a number, not {text!r}", OcfRc.ERR_CONFIGURED
            ) from None

    @property
    def timeout_s(self) -> float:
        try:
            return int(self.meta.get("timeout", "20000")) / 1000.0
        except ValueError:
            return 20.0

    @property
    def is_probe(self) -> bool:
        return self.action == "monitor" and self.meta.get("interval", "0") in ("0", "")

    def state_path(self, kind: str) -> str:
        safe = self.instance.replace("/", "_")
        return os.path.join(self.run_dir, f"hakeeper-{kind}-{safe}")


Action = Callable[[OcfEnv], int]


def process_start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot), or None if it is gone or a zombie: with the pid, this
    names a process for good, so a recycled pid is never mistaken for ours."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]  # field 22 (starttime), counted after the command name


def run_agent(metadata: str, actions: Mapping[str, Action], action: str, environ: Mapping[str, str]) -> int:
    """Dispatch ``action``; failures become an exit reason on stderr and an OCF exit code."""
    if action in ("meta-data", "metadata"):
        sys.stdout.write(metadata)
        return OcfRc.SUCCESS
    handler = actions.get(action)
    if handler is None:
        exit_reason(f"action '{action}' is not implemented by this agent")
        return OcfRc.ERR_UNIMPLEMENTED
    try:
        return handler(OcfEnv.from_environ(action, environ))
    except AgentFailure as exc:
        exit_reason(str(exc))
        return exc.rc
    except OSError as exc:
        exit_reason(f"{action} failed: {exc}")
        return OcfRc.ERR_GENERIC


def exit_reason(message: str) -> None:
    print(f"ocf-exit-reason:{message}", file=sys.stderr, flush=True)
