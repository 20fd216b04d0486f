"""Result codes shared by every agent class: OCF exit codes and the executor's operation status.

The numbers are Pacemaker's (``include/crm/common/results.h``) so that histories, the CIB status section and
imported Pacemaker configurations mean the same thing here as there.
"""

from __future__ import annotations

import enum


class OcfRc(enum.IntEnum):
    """OCF exit codes as the cluster manager understands them."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190
    DEGRADED_PROMOTED = 191


class OpStatus(enum.IntEnum):
    """The executor's verdict on an operation, independent of the agent's exit code."""

    PENDING = -1
    DONE = 0
    CANCELLED = 1
    TIMEOUT = 2
    NOT_SUPPORTED = 3
    ERROR = 4
    ERROR_HARD = 5
    ERROR_FATAL = 6
    NOT_INSTALLED = 7


class Severity(enum.StrEnum):
    """What an exit code means for recovery (the CRM decides; this is the agent contract's reading)."""

    OK = "ok"
    NOT_RUNNING = "not-running"
    PROMOTED = "promoted"
    DEGRADED = "degraded"
    DEGRADED_PROMOTED = "degraded-promoted"
    SOFT = "soft"
    HARD = "hard"
    FATAL = "fatal"


_SEVERITY: dict[int, Severity] = {
    OcfRc.SUCCESS: Severity.OK,
    OcfRc.ERR_GENERIC: Severity.SOFT,
    OcfRc.ERR_ARGS: Severity.HARD,
    OcfRc.ERR_UNIMPLEMENTED: Severity.HARD,
    OcfRc.ERR_PERM: Severity.HARD,
    OcfRc.ERR_INSTALLED: Severity.HARD,
    OcfRc.ERR_CONFIGURED: Severity.FATAL,
    OcfRc.NOT_RUNNING: Severity.NOT_RUNNING,
    OcfRc.RUNNING_PROMOTED: Severity.PROMOTED,
    OcfRc.FAILED_PROMOTED: Severity.SOFT,
    OcfRc.DEGRADED: Severity.DEGRADED,
    OcfRc.DEGRADED_PROMOTED: Severity.DEGRADED_PROMOTED,
}


def severity_of(rc: int) -> Severity:
    """Recovery class of an (already normalised) OCF exit code; unknown codes are soft failures."""
    return _SEVERITY.get(rc, Severity.SOFT)


def normalise_ocf_exit(exit_code: int) -> tuple[int, str]:
    """Map a raw agent exit code to a defined OCF code, with a reason when it had to be changed.

    Like Pacemaker, anything outside 0-9 and 190/191 (for example 137 from a shell whose child was killed)
    becomes a generic error, so an undefined code can never look like success or like "not running".
    """
    if 0 <= exit_code <= OcfRc.FAILED_PROMOTED or exit_code in (OcfRc.DEGRADED, OcfRc.DEGRADED_PROMOTED):
        return exit_code, ""
    return OcfRc.ERR_GENERIC, f"agent exited with undefined code {exit_code} (treated as a generic error)"
