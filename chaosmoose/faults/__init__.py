"""Activities over the fault ledger itself: undo everything, count what is open."""
