"""MooseNG cluster side: the master HA agent, role entrypoints, exporters and healthchecks."""

__version__ = "0.1.0"
