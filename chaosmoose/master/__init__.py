"""Probes and actions on the MooseNG masters (their agents' HTTP APIs and containers)."""
