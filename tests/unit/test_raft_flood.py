"""An unauthenticated Raft peer cannot make the agent buffer a flood (issue 13, item 7).

A real three-node pysyncobj group on 127.0.0.1 keeps renewing a lease while a raw socket,
which never learned the password, announces a 32 MiB frame and sends it to the Raft leader.
Before the guard, pysyncobj buffered the whole frame before checking its signature (copying
its buffer on every 8 KiB read) and 22 of 33 renewals failed; the lease holder fences itself
after ttl - safety_margin without a renewal."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

from mooseng.dcs import StoreError
from mooseng.dcs.raft import UNAUTHENTICATED_FRAME_LIMIT, GuardedTcpConnection
from tests.unit.test_raft_store import three_stores, until

FLOOD_BYTES = 32 * 1024 * 1024


def flood(port: int, result: dict[str, object], announce: int = FLOOD_BYTES) -> None:
    """Connect without the password, announce ``announce`` bytes and send FLOOD_BYTES."""
    sent = 0
    chunk = b"\xa5" * 65536
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(struct.pack("i", announce))
            while sent < FLOOD_BYTES:
                sock.sendall(chunk)
                sent += len(chunk)
            result["outcome"] = "all sent"
    except OSError as exc:
        result["outcome"] = f"cut: {type(exc).__name__}"
    result["sent"] = sent


def test_a_32_mib_flood_from_an_unauthenticated_peer_costs_no_renewal(tmp_path: Path) -> None:
    stores = three_stores(tmp_path)
    try:
        leader = None
        deadline = time.monotonic() + 10
        while leader is None and time.monotonic() < deadline:
            leader = stores["n1"].raft_status().leader
            time.sleep(0.05)
        assert leader is not None
        holder = stores[leader]
        lease = until(lambda: holder.acquire_lease(leader, 2.0, 0))
        for attempt in range(3):  # a warmed-up group renews reliably
            until(lambda: holder.renew_lease(leader, lease.epoch, 2.0))
        port = int(holder._addresses[leader].rsplit(":", 1)[1])
        results = [{} for _ in range(3)]
        floods = [threading.Thread(target=flood, args=(port, r)) for r in results]
        renewals, failures, slowest = 0, [], 0.0
        for thread in floods:
            thread.start()
        ends = time.monotonic() + 3.0
        while time.monotonic() < ends or any(t.is_alive() for t in floods):
            began = time.monotonic()
            try:
                assert holder.renew_lease(leader, lease.epoch, 2.0) is not None
            except StoreError as exc:
                failures.append(str(exc))
            renewals += 1
            slowest = max(slowest, time.monotonic() - began)
            time.sleep(0.1)
            if time.monotonic() > ends + 20:
                break
        for thread in floods:
            thread.join(5)
        assert failures == [], f"{len(failures)} of {renewals} renewals failed"
        print(f"{renewals} renewals, none failed, slowest {slowest:.3f} s; floods: {results}")
        assert renewals >= 10
        for result in results:
            assert str(result["outcome"]).startswith("cut"), result
            assert int(result["sent"]) < FLOOD_BYTES
        assert stores["n3"].raft_status().has_quorum
    finally:
        for store in stores.values():
            store.close()


def test_every_connection_of_the_group_is_guarded(tmp_path: Path) -> None:
    stores = three_stores(tmp_path)
    try:
        until(lambda: stores["n1"].acquire_lease("n1", 2.0, 0))
        transport = stores["n1"]._obj._SyncObj__transport
        conns = list(transport._connections.values())
        assert conns and all(isinstance(c, GuardedTcpConnection) for c in conns)
    finally:
        for store in stores.values():
            store.close()


def test_a_small_junk_frame_is_dropped_as_before(tmp_path: Path) -> None:
    stores = three_stores(tmp_path)
    try:
        until(lambda: stores["n1"].acquire_lease("n1", 2.0, 0))
        port = int(stores["n1"]._addresses["n1"].rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            junk = b"x" * 100
            sock.sendall(struct.pack("i", len(junk)) + junk)  # fails the signature check
            assert sock.recv(10) == b""
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(struct.pack("i", UNAUTHENTICATED_FRAME_LIMIT + 1))
            assert sock.recv(10) == b""  # refused on the announced length alone
        assert stores["n1"].renew_lease("n1", 1, 2.0) is not None
    finally:
        for store in stores.values():
            store.close()
