"""Built-in agents written in Python (provider ``hakeeper``: ``ocf:hakeeper:vip|process|dummy``).

They follow the OCF contract exactly (same environment, exit codes, meta-data) and run as their own process
(``python -m hakeeper.agents.builtin TYPE ACTION``), so the executor treats them like any script: timeouts,
process groups and output bounds apply unchanged. This module only describes them; the code runs in the
subprocess.
"""

from __future__ import annotations

import sys

from hakeeper.agents.base import ActionContext, AgentSpec, AgentUnavailable, Invocation, Outcome
from hakeeper.agents.ocf import DEFAULT_OCF_ROOT, ocf_environment
from hakeeper.agents.results import normalise_ocf_exit

BUILTIN_PROVIDER = "hakeeper"
BUILTIN_TYPES = ("dummy", "process", "vip")


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
        return Invocation(argv=argv, env=env)

    def interpret(self, ctx: ActionContext, exit_code: int) -> Outcome:
        rc, reason = normalise_ocf_exit(exit_code)
        return Outcome(rc=rc, reason=reason)
