"""hakeeper.policy."""
