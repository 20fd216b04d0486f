"""hakeeper.agents."""
