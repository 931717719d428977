"""The lab's aggregated logs: every container's output, collected by the ``logs`` service."""
