"""How the LRM runs a built-in agent: as a ``python -m hakeeper.agents.builtin TYPE ACTION`` subprocess, or
forked from the LRM's warm fork server (:mod:`hakeeper.agents.builtin.forkserver`) when it has one."""

from __future__ import annotations

import sys

from hakeeper.agents.base import ActionContext, AgentSpec, AgentUnavailable, Invocation, Outcome
from hakeeper.agents.builtin import BUILTIN_TYPES
from hakeeper.agents.ocf import DEFAULT_OCF_ROOT, ocf_environment
from hakeeper.agents.results import normalise_ocf_exit


class BuiltinAgent:
    """One of our Python agents, run in a subprocess."""

    def __init__(self, spec: AgentSpec, python: str | None = None, ocf_root: str = DEFAULT_OCF_ROOT) -> None:
        self._spec = spec
        self.python = python or sys.executable
        self.ocf_root = ocf_root

    @property
    def spec(self) -> AgentSpec:
        return self._spec

    def invocation(self, ctx: ActionContext) -> Invocation:
        if self._spec.type not in BUILTIN_TYPES:
            raise AgentUnavailable(
                f"there is no built-in agent {self._spec} (built-in types: {', '.join(BUILTIN_TYPES)})"
            )
        env = ocf_environment(ctx, self._spec, self.ocf_root)
        argv = [self.python, "-m", "hakeeper.agents.builtin", self._spec.type, ctx.action]
        return Invocation(argv=argv, env=env, builtin_action=(self._spec.type, ctx.action))

    def interpret(self, ctx: ActionContext, exit_code: int) -> Outcome:
        rc, reason = normalise_ocf_exit(exit_code)
        return Outcome(rc=rc, reason=reason)
