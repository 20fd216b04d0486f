"""hakeeper.controller."""
