"""Semantic validation of a configuration, whatever format it came from.

``validate(cfg)`` returns every problem it finds as a :class:`Problem` whose ``path`` uses the declarative
file's own terms (``resources.web.ops[1].interval``, ``constraints.web-after-db``), so the same message reads
right for a TOML file, a Pacemaker XML import or a change made through the CLI.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Severity = Literal["error", "warning"]


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One thing wrong with a configuration: where (``path``), what and what to do (``message``)."""

    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{prefix}{self.path}: {self.message}"
