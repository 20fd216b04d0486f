"""Built-in agents written in Python (provider ``hakeeper``: ``ocf:hakeeper:vip|process|dummy``).

They follow the OCF contract exactly (same environment, exit codes, meta-data) and run as their own process
(``python -m hakeeper.agents.builtin TYPE ACTION``), so the executor treats them like any script: timeouts,
process groups and output bounds apply unchanged. :class:`hakeeper.agents.builtin.agent.BuiltinAgent`
describes them to the LRM.

Every action starts a fresh interpreter, which imports this package first: it must stay free of imports
(msgspec and the agent classes live in ``agent.py``), and so must the agents' own modules beyond the standard
library's cheap parts. ``tests/agents`` checks what an action imports.
"""

BUILTIN_PROVIDER = "hakeeper"
BUILTIN_TYPES = ("dummy", "process", "vip")
