"""Reproducible test data written through a client, and its verification from any client.

``plan`` turns (seed, total size, file count) into a list of entries (pure); ``generator``
runs inside a client container (standard library only) and writes or re-reads them;
``check`` classifies what a client read back against the manifest (pure); ``actions`` /
``probes`` are the Chaos Toolkit side and ``chaosmoose data generate|verify`` the command
line. Keep this ``__init__`` free of imports: the generator must load with the standard
library alone.
"""
