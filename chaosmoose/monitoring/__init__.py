"""Probes of the lab's Prometheus: queries, targets, alerts (the observability side of a run)."""
