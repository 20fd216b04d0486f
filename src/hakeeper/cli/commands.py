"""The list of command families. Add one line per family module."""

from __future__ import annotations

import click

ALL: list[click.Command] = []
