"""Network faults through Toxiproxy: partitions by name (isolate, halves, majorities ring,
bridge, cut) compiled into per-link toxics, and latency, bandwidth, reset, slicing and data
limits on any link. Every link of the cluster passes through its own proxy, named
``<src>><dst>:<kind>``."""
