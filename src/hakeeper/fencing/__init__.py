"""hakeeper.fencing: STONITH. A node whose state is unknown is fenced before its resources run elsewhere.

- ``devices``: fencing devices resolved from the CIB (stonith primitives), host mapping, cluster options.
- ``agent``: the fence-agents stdin protocol; runs agents through the LRM's executor; metadata.
- ``topology``: which levels/devices are tried for a node.
- ``fencer``: the DC's sans-I/O fencing core (attempts, executors, retries, delays, history) and the
  recurring device monitor schedule.
- ``watchdog``: watchdog self-fencing (the sbd role): node-side and quorate-side cores, /dev/watchdog.
- ``simwatchdog``: a simulated watchdog process for tests and labs (pet file; kills a namespace or group).
- ``requests``: operator requests (``hakeeper fence NODE``/``confirm``) carried by the fencing history.
- ``check``: ``hakeeper fence check``: proof that every node can be fenced.
- ``netns_agent``: ``fence_hakeeper_netns``, a real fence agent for network-namespace lab nodes.
"""
