"""Chunkserver faults: kill or stop a chunkserver, corrupt one copy of a chunk, and probes
of replication (copies per chunk, damage detected, goal restored)."""
