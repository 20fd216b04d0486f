"""hakeeper.cib."""
