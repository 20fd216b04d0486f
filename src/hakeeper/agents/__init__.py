"""hakeeper.agents: resource agent classes (OCF, LSB, systemd, built-in), meta-data and helper commands.

An agent turns an action into an invocation (argv + environment) and an exit status into an OCF meaning;
running it is the LRM's business. :class:`hakeeper.agents.registry.AgentRegistry` resolves names such as
``ocf:heartbeat:IPaddr2``, ``lsb:nginx``, ``systemd:nginx``, ``service:nginx`` and ``ocf:hakeeper:vip``.
"""
