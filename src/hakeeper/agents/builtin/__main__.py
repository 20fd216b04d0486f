"""Entry point of the built-in agents: ``python -m hakeeper.agents.builtin TYPE ACTION``."""

from __future__ import annotations

import importlib
import os
import sys

from hakeeper.agents.builtin import BUILTIN_TYPES
from hakeeper.agents.builtin.common import run_agent


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in BUILTIN_TYPES:
        print(
            f"usage: python -m hakeeper.agents.builtin {{{'|'.join(BUILTIN_TYPES)}}} ACTION", file=sys.stderr
        )
        return 2
    module = importlib.import_module(f"hakeeper.agents.builtin.{argv[0]}")
    return run_agent(module.METADATA, module.ACTIONS, argv[1], os.environ)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
