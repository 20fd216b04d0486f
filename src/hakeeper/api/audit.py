"""The audit log: one JSON line per write attempt (who, what, when, the CIB version before and after).

Append-only and fsynced before the API answers, so a write the operator was told about is on disk. Refused
writes are recorded too (with the error): an audit log that shows only successes hides attempts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

AUDIT_FILE = "api-audit.jsonl"


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    time: float  # epoch seconds
    actor: str
    role: str
    action: str  # "POST /v1/resources/web/move"
    request: dict[str, Any] = {}
    version_before: str
    version_after: str | None = None
    index: int | None = None
    status: int
    error: str | None = None


class AuditLog:
    """Appends records to a file (mode 0600), one ``write`` + ``fsync`` per record."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: AuditRecord) -> None:
        line = msgspec.json.encode(record) + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[AuditRecord]:
        """Every record in the file (a torn last line, from a crash mid-write, is skipped)."""
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(msgspec.json.decode(line, type=AuditRecord))
            except msgspec.DecodeError:
                continue
        return out
