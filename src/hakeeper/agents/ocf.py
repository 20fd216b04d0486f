"""The OCF class: ``$OCF_ROOT/resource.d/<provider>/<type>``, run as Pacemaker's executor runs them.

Environment (Pacemaker ``services_linux.c``): OCF_ROOT, OCF_RA_VERSION_MAJOR/MINOR, OCF_RESOURCE_INSTANCE,
OCF_RESOURCE_TYPE, OCF_RESOURCE_PROVIDER, OCF_EXIT_REASON_PREFIX, every parameter as ``OCF_RESKEY_<name>``,
every meta-attribute as ``OCF_RESKEY_CRM_meta_<name>`` (dashes become underscores; interval and timeout in
milliseconds) and ``OCF_CHECK_LEVEL`` without a prefix. Parameters are passed only through the environment,
never through a shell, so their values reach the agent byte for byte.
"""

from __future__ import annotations

import os
from pathlib import Path

from hakeeper.agents.base import ActionContext, AgentSpec, AgentUnavailable, Invocation, Outcome
from hakeeper.agents.results import normalise_ocf_exit

DEFAULT_OCF_ROOT = "/usr/lib/ocf"
CRM_FEATURE_SET = "3.16.2"
"""The Pacemaker feature set we announce; agents use it to pick ``crm_master`` or ``crm_attribute -p``."""

EXIT_REASON_PREFIX = "ocf-exit-reason:"


def meta_env_name(name: str) -> str:
    """``clone-max`` -> ``OCF_RESKEY_CRM_meta_clone_max``."""
    return "OCF_RESKEY_CRM_meta_" + name.replace("-", "_")


def ocf_environment(ctx: ActionContext, spec: AgentSpec, ocf_root: str) -> dict[str, str]:
    """The complete environment for one OCF action (``ctx.base_env`` plus the OCF variables)."""
    env = {k: v for k, v in ctx.base_env.items() if not k.startswith("OCF_")}
    env.update(
        {
            "OCF_ROOT": ocf_root,
            "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "1",
            "OCF_RESOURCE_INSTANCE": ctx.resource_id,
            "OCF_RESOURCE_TYPE": spec.type,
            "OCF_RESOURCE_PROVIDER": spec.provider,
            "OCF_EXIT_REASON_PREFIX": EXIT_REASON_PREFIX,
            "OCF_RESKEY_crm_feature_set": CRM_FEATURE_SET,
        }
    )
    for name, value in ctx.params.items():
        env["OCF_RESKEY_" + name] = value
    for name, value in ctx.meta.items():
        env[meta_env_name(name)] = value
    env[meta_env_name("name")] = ctx.action
    env[meta_env_name("interval")] = str(ctx.interval_ms)
    env[meta_env_name("timeout")] = str(ctx.timeout_ms)
    if ctx.node_name:
        env.setdefault(meta_env_name("on_node"), ctx.node_name)
        env.setdefault(meta_env_name("on_node_uuid"), ctx.node_name)
    if ctx.check_level is not None:
        env["OCF_CHECK_LEVEL"] = str(ctx.check_level)
    return env


def check_executable(path: Path, what: str) -> None:
    """Raise :class:`AgentUnavailable` with an operator-readable sentence if ``path`` cannot be run."""
    if not path.exists():
        raise AgentUnavailable(f"{what} is not installed on this node: {path} does not exist")
    if not path.is_file():
        raise AgentUnavailable(f"{what} is not installed on this node: {path} is not a regular file")
    if not os.access(path, os.X_OK):
        raise AgentUnavailable(
            f"{what} cannot run on this node: {path} is not executable (fix its permissions: chmod 755)"
        )


class OcfAgent:
    """An OCF resource agent script."""

    def __init__(self, spec: AgentSpec, ocf_root: str = DEFAULT_OCF_ROOT) -> None:
        if spec.standard != "ocf" or not spec.provider:
            raise ValueError(f"not an OCF agent name: {spec}")
        self._spec = spec
        self.ocf_root = ocf_root

    @property
    def spec(self) -> AgentSpec:
        return self._spec

    @property
    def path(self) -> Path:
        return Path(self.ocf_root) / "resource.d" / self._spec.provider / self._spec.type

    def invocation(self, ctx: ActionContext) -> Invocation:
        check_executable(self.path, f"resource agent {self._spec}")
        env = ocf_environment(ctx, self._spec, self.ocf_root)
        return Invocation(argv=[str(self.path), ctx.action], env=env)

    def interpret(self, ctx: ActionContext, exit_code: int) -> Outcome:
        rc, reason = normalise_ocf_exit(exit_code)
        return Outcome(rc=rc, reason=reason)
