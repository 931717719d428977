"""Chunkserver faults: kill or stop a chunkserver, corrupt one copy of a chunk, fill, mark
for removal or fail one of its storage tiers; and probes of replication and placement
(copies per chunk, damage detected, goal restored, chunk matrices, per-tier space, chunks
per label and storage class, placement against the class's labels)."""
