"""hakeeper: a high-availability cluster stack."""

__version__ = "0.1.0"
