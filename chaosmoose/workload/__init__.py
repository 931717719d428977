"""The checksummed workload on the clients and its acknowledged-write checker.

``runner`` runs inside client containers (standard library only); ``checker`` is a pure
function over histories and digests; ``actions``/``probes`` are the Chaos Toolkit side.
Keep this ``__init__`` free of imports: containers import the runner through it.
"""
