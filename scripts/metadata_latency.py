"""Metadata latency from inside one client: create + fsync + close N empty files in DIR.

    docker exec -i mooseng_client-1_1 python3 - /mnt/client-1/bench-1 500 < scripts/metadata_latency.py

Prints one JSON line: ops, ops per second, p50 and p99 in milliseconds. Standard library
only (it runs in the client image); compare settings by running it before and after a
change in the same session (for example MOOSENG_BARRIER off and on).
"""

import json
import os
import sys
import time

root = sys.argv[1]; n = int(sys.argv[2])
os.makedirs(root, exist_ok=True)
lat = []
t0 = time.monotonic()
for i in range(n):
    s = time.monotonic()
    fd = os.open(f"{root}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
    os.fsync(fd); os.close(fd)
    lat.append(time.monotonic() - s)
wall = time.monotonic() - t0
lat.sort()
print(json.dumps({"ops": n, "ops_per_s": round(n / wall, 1), "p50_ms": round(lat[n // 2] * 1000, 2),
                  "p99_ms": round(lat[int(n * 0.99)] * 1000, 2)}))
