"""hakeeper.api: the operator API (REST over the local Unix socket and TLS), metrics, events and alerts.

How the node daemon wires it (everything runs in the daemon's event loop):

1. Implement ``handle.ClusterHandle`` (latest committed CIB, ``submit`` through the DC, cluster state,
   events, ``simulate`` off the loop). After applying each commit, record ``events.changes(old, new)`` in an
   ``events.EventLog`` and wake the ``subscribe`` iterators; ``fake.FakeCluster`` shows the whole contract.
2. ``app.build_app(routing.Services(handle, TokenStore(data_dir / auth.TOKENS_FILE),
   AuditLog(data_dir / audit.AUDIT_FILE), alerts=queue))``.
3. ``await app.start_unix(app, config.api_socket)`` (mode 0600; root by SO_PEERCRED needs no token) and,
   when configured, ``await app.start_tls(app, host, port, cert, key)``; ``await server.stop()`` on shutdown.
4. Alerts: ``queue = alerts.AlertQueue()``, ``runner = alerts.AlertRunner(queue)``, then run
   ``runner.run()`` and ``alerts.follow(handle, runner)`` as tasks.

Changes are computed by ``hakeeper.cib.operator`` (pure) and committed through ``routing.Call.commit``.
"""
