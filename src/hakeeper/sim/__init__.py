"""hakeeper.sim."""
