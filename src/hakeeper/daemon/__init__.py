"""hakeeper.daemon: the node daemon wiring every layer together."""
