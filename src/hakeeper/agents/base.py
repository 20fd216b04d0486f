"""What every agent class provides: how to run one action, and how to read its exit status.

An agent never runs itself. It turns an :class:`ActionContext` into an :class:`Invocation` (argv plus the
complete environment), and turns the raw exit status back into an :class:`Outcome`. The LRM's executor does
the running, so timeouts, process groups and output bounds are the same for every class.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from hakeeper.agents.results import OpStatus


class AgentSpecError(ValueError):
    """An agent name that cannot be understood (for example ``ocf:Dummy`` without a provider)."""


class AgentSpec(msgspec.Struct, frozen=True):
    """``class:provider:type`` as Pacemaker writes it; provider is empty for classes that have none."""

    standard: str
    provider: str
    type: str

    def __str__(self) -> str:
        if self.provider:
            return f"{self.standard}:{self.provider}:{self.type}"
        return f"{self.standard}:{self.type}"


class ActionContext(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one action of one resource needs to know."""

    resource_id: str
    action: str
    interval_ms: int = 0
    timeout_ms: int = 20_000
    params: dict[str, str] = {}
    meta: dict[str, str] = {}
    check_level: int | None = None
    node_name: str = ""
    base_env: dict[str, str] = {}
    """The environment the agent starts from, prepared by the LRM: PATH with the helper commands first,
    HA_SBIN_DIR, the attribute socket and the node name. Agent classes add their own variables on top."""


class Invocation(msgspec.Struct, frozen=True):
    """A command line and its full environment, ready for the executor."""

    argv: list[str]
    env: dict[str, str]
    cwd: str = "/"
    stdin: bytes = b""
    """Fed to the command's standard input (fence agents read ``key=value`` lines); empty means /dev/null."""
    builtin_action: tuple[str, str] | None = None
    """For a built-in agent, its type and action: the LRM may fork it from a warm interpreter instead of
    running ``argv`` (same environment, working directory and streams)."""


class Outcome(msgspec.Struct, frozen=True):
    """The meaning of an exit status: OCF rc, executor status and, when useful, why."""

    rc: int
    status: OpStatus = OpStatus.DONE
    reason: str = ""


class AgentUnavailable(Exception):
    """The agent cannot run on this node (missing, not executable, class unsupported here).

    ``status`` and ``rc`` say how the LRM reports it; the message is shown to the operator.
    """

    def __init__(self, message: str, status: OpStatus = OpStatus.NOT_INSTALLED, rc: int = 5) -> None:
        super().__init__(message)
        self.status = status
        self.rc = rc


class Agent(Protocol):
    """One resource agent of one class."""

    @property
    def spec(self) -> AgentSpec: ...

    def invocation(self, ctx: ActionContext) -> Invocation:
        """The command to run; raises :class:`AgentUnavailable` when it cannot run here."""
        ...

    def interpret(self, ctx: ActionContext, exit_code: int) -> Outcome:
        """The OCF meaning of a normal exit with ``exit_code``."""
        ...
