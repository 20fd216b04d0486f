"""hakeeper.messaging."""
