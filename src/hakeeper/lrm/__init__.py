"""hakeeper.lrm: the local resource manager.

- :mod:`hakeeper.lrm.messages`: the upward interface (``OpRequest``, ``CancelRequest`` in; ``OpResult``,
  ``AttributeUpdate`` out).
- :mod:`hakeeper.lrm.core`: the sans-I/O scheduler (``LrmCore``): serialization, parallelism cap, recurring
  operations, cancellation, report-on-change, history.
- :mod:`hakeeper.lrm.executor`: runs one agent invocation (process group, timeout, bounded output).
- :mod:`hakeeper.lrm.service`: ``LocalResourceManager``, the asyncio shell joining them, plus the helper
  commands' attribute socket (:mod:`hakeeper.lrm.attrd`, :mod:`hakeeper.lrm.attributes`).
"""
