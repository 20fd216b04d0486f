"""hakeeper.fencing."""
