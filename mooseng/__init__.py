"""MooseNG cluster side: the master HA agent, role entrypoints and the leader router."""

__version__ = "0.1.0"
