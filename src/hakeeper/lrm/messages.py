"""The LRM's upward interface: requests in, results and attribute updates out (msgspec Structs).

A result carries everything the CRM records for an operation in the CIB status section (Pacemaker's
``lrm_rsc_op``): operation, interval, call id, rc, op status, exec and queue time, last-rc-change and
exit reason.
"""

from __future__ import annotations

import msgspec

from hakeeper.agents.results import OcfRc, OpStatus, Severity, severity_of

__all__ = [
    "AttributeUpdate",
    "CancelRequest",
    "OcfRc",
    "OpRequest",
    "OpResult",
    "OpStatus",
    "Severity",
    "op_key",
]

DEFAULT_TIMEOUT_MS = 20_000
"""Pacemaker's default operation timeout."""

STOP_LIKE = frozenset({"stop", "demote", "migrate_to", "migrate_from"})
"""Operations before which every recurring operation of the resource is cancelled."""


def op_key(resource_id: str, operation: str, interval_ms: int) -> str:
    """Pacemaker's operation key, e.g. ``db_monitor_10000``."""
    return f"{resource_id}_{operation}_{interval_ms}"


class OpRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Run ``operation`` on ``resource_id``; recurring when ``interval_ms`` > 0 (monitors)."""

    resource_id: str
    agent: str
    """``class:provider:type`` (``ocf:heartbeat:IPaddr2``), ``lsb:name``, ``systemd:unit``, ``service:x``."""
    operation: str
    interval_ms: int = 0
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    start_delay_ms: int = 0
    params: dict[str, str] = {}
    meta: dict[str, str] = {}
    """Meta-attributes and op properties; passed as ``OCF_RESKEY_CRM_meta_<name>``."""
    role: str = ""
    """For monitors: the role this monitor checks (``Promoted``/``Unpromoted``), passed as meta ``role``."""
    check_level: int | None = None
    transition_key: str = ""
    """Opaque to the LRM; copied into the result so the CRM can match it to its transition."""
    op_digest: str = ""
    """Opaque to the LRM, copied into the result: the digest of ``params`` the CRM records in the history
    (``op-digest``), so a later change of the resource's definition is noticed."""

    @property
    def key(self) -> str:
        return op_key(self.resource_id, self.operation, self.interval_ms)

    @property
    def is_probe(self) -> bool:
        return self.operation == "monitor" and self.interval_ms == 0


class CancelRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Stop a recurring operation (by resource, operation name and interval)."""

    resource_id: str
    operation: str
    interval_ms: int


class OpResult(msgspec.Struct, frozen=True, kw_only=True):
    """One completed (or cancelled) operation, as the CRM records it."""

    resource_id: str
    agent: str
    operation: str
    interval_ms: int
    call_id: int
    rc: int
    op_status: OpStatus
    exec_time_ms: int = 0
    queue_time_ms: int = 0
    last_run: float = 0.0
    """Epoch seconds when the operation finished."""
    last_rc_change: float = 0.0
    """Epoch seconds when this operation's (rc, status) last changed."""
    exit_reason: str = ""
    output: str = ""
    """An excerpt of the agent's output (stdout then stderr, bounded)."""
    agent_exit_code: int | None = None
    """The raw exit code before mapping (e.g. 137), or None when the agent did not exit normally."""
    transition_key: str = ""
    op_digest: str = ""

    @property
    def key(self) -> str:
        return op_key(self.resource_id, self.operation, self.interval_ms)

    @property
    def severity(self) -> Severity:
        return severity_of(self.rc)


class AttributeUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A node attribute set (``value`` given) or deleted (``value`` None) by an agent's helper command."""

    node: str
    name: str
    value: str | None
    lifetime: str = "reboot"
    """``reboot`` (transient, the status section) or ``forever`` (the nodes section)."""
    dampen_ms: int = 0
    resource_id: str = ""
    """The resource whose agent made the change, when known."""
