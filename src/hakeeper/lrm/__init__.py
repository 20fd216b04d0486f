"""hakeeper.lrm."""
