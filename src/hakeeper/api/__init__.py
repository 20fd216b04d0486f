"""hakeeper.api."""
