"""hakeeper.cli."""
