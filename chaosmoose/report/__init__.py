"""``chaosmoose report``: one experiment run (journal, fault ledger, checker, Prometheus
series, collected logs) as a self-contained Markdown and HTML page a team can read."""
