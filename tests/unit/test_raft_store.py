"""The real pysyncobj store on 127.0.0.1: acquire, renew, expire, compare-and-set."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from mooseng.dcs import StoreError
from mooseng.dcs.raft import RaftStore


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def until(fn, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def three_stores(tmp_path: Path) -> dict[str, RaftStore]:
    """A real three-node Raft group on 127.0.0.1: n1, n2, n3."""
    names = ["n1", "n2", "n3"]
    addresses = {n: f"127.0.0.1:{p}" for n, p in zip(names, free_ports(3))}
    return {n: RaftStore(n, names, addresses=addresses, password="secret", journal_dir=tmp_path / n,
                         retry_timeout=0.5) for n in names}


def test_single_node_acquire_renew_expire_cas(tmp_path: Path) -> None:
    [port] = free_ports(1)
    store = RaftStore("n1", ["n1"], addresses={"n1": f"127.0.0.1:{port}"}, password="secret",
                      journal_dir=tmp_path, retry_timeout=0.5)
    try:
        lease = until(lambda: store.acquire_lease("n1", 0.4, 0))
        assert lease.holder == "n1" and lease.epoch == 1
        assert store.acquire_lease("n2", 0.4, 1) is None  # held
        assert store.renew_lease("n1", 1, 0.4).epoch == 1
        assert store.renew_lease("n1", 7, 0.4) is None  # wrong epoch: CAS refuses
        assert store.renew_lease("n2", 1, 0.4) is None  # not the holder
        time.sleep(0.5)
        assert not store.get_lease().valid(time.time())
        assert store.acquire_lease("n2", 0.4, 0) is None  # stale epoch hint
        taken = store.acquire_lease("n2", 0.4, 1)
        assert taken.holder == "n2" and taken.epoch == 2
        assert store.release_lease("n2", 2, reserve_for="n1", reserve_ttl=5.0)
        assert store.acquire_lease("n3", 0.4, 2) is None  # reserved for n1
        assert store.acquire_lease("n1", 0.4, 2).epoch == 3
        store.set_member("n1", {"has_metadata": True, "metadata_version": 5}, 1.0)
        assert store.members()["n1"].data["metadata_version"] == 5
        assert store.metadata_ever_reported()
        status = store.raft_status()
        assert status.has_quorum and status.leader == "n1" and status.commit_index > 0
    finally:
        store.close()


def test_three_nodes_replicate_and_survive_a_dead_member(tmp_path: Path) -> None:
    stores = three_stores(tmp_path)
    try:
        lease = until(lambda: stores["n2"].acquire_lease("n2", 2.0, 0))
        assert lease.epoch == 1
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and stores["n3"].get_lease().holder != "n2":
            time.sleep(0.05)
        assert stores["n3"].get_lease().holder == "n2"
        assert stores["n1"].acquire_lease("n1", 2.0, 1) is None  # CAS against a live lease
        stores["n1"].close()  # one member dies: the other two still commit
        assert until(lambda: stores["n2"].renew_lease("n2", 1, 2.0)).epoch == 1
        assert stores["n3"].raft_status().peers["n1"] == "disconnected"
    finally:
        for s in stores.values():
            s.close()


def test_minority_cannot_commit(tmp_path: Path) -> None:
    names = ["n1", "n2", "n3"]
    addresses = {n: f"127.0.0.1:{p}" for n, p in zip(names, free_ports(3))}
    store = RaftStore("n1", names, addresses=addresses, password="secret", journal_dir=tmp_path,
                      retry_timeout=0.3)
    try:
        with pytest.raises(StoreError, match="acquire_lease failed"):
            store.acquire_lease("n1", 2.0, 0)
        assert not store.raft_status().has_quorum
    finally:
        store.close()


def test_raft_leadership_moves_to_the_named_node(tmp_path: Path) -> None:
    stores = three_stores(tmp_path)
    try:
        until(lambda: stores["n1"].set_member("n1", {"x": 1}, 2.0))  # a committed entry: a leader exists
        raft_leader = stores["n1"].raft_status().leader
        stores[raft_leader].transfer_interval = 0.1
        target = next(n for n in stores if n != raft_leader)
        assert not stores[target].move_raft_leadership(target)  # only the Raft leader can hand over
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and stores[target].raft_status().leader != target:
            stores[raft_leader].move_raft_leadership(target)  # refused until the target caught up
            time.sleep(0.1)
        assert stores[target].raft_status().leader == target
        assert until(lambda: stores[target].renew_lease("n2", 0, 2.0)) is None  # it commits
    finally:
        for s in stores.values():
            s.close()


class _Forwarder:
    """A TCP forwarder on 127.0.0.1 standing in for one link's proxy; ``cut()`` drops every
    connection and refuses new ones."""

    def __init__(self, upstream_port: int) -> None:
        import threading

        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.open: list[socket.socket] = []
        self.cutting = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        import threading

        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            if self.cutting:
                down.close()
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:  # the dialled store is not listening yet: the dialler retries
                down.close()
                continue
            self.connections += 1
            self.open += [down, up]
            threading.Thread(target=self._pump, args=(down, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down), daemon=True).start()

    def cut(self) -> None:
        self.cutting = True
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_partners_are_dialled_through_their_link_but_known_by_address(tmp_path: Path) -> None:
    """n3 dials n1 (the higher address dials) through a forwarder: the group works, the
    connection really went through it, and cutting it disconnects exactly that pair."""
    names = ["n1", "n2", "n3"]
    ports = dict(zip(names, free_ports(3)))
    addresses = {n: f"127.0.0.1:{p}" for n, p in ports.items()}
    dialler = max(names, key=lambda n: addresses[n])
    target = min(names, key=lambda n: addresses[n])
    link = _Forwarder(ports[target])
    stores = {n: RaftStore(n, names, addresses=addresses, password="secret",
                           journal_dir=tmp_path / n, retry_timeout=0.5,
                           dial={target: f"127.0.0.1:{link.port}"} if n == dialler else None)
              for n in names}
    try:
        until(lambda: stores["n1"].acquire_lease("n1", 5.0, 0), timeout=10)
        deadline = time.monotonic() + 10
        while stores[dialler].raft_status().peers.get(target) != "connected":
            assert time.monotonic() < deadline, stores[dialler].raft_status()
            time.sleep(0.05)
        assert link.connections >= 1
        assert stores[target].raft_status().peers[dialler] == "connected"
        link.cut()
        deadline = time.monotonic() + 10
        while stores[dialler].raft_status().peers.get(target) != "disconnected":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        third = next(n for n in names if n not in (dialler, target))
        assert stores[dialler].raft_status().peers[third] == "connected"
    finally:
        for store in stores.values():
            store.close()
        link.listener.close()


def test_follower_contact_age_is_fresh_on_the_raft_leader_and_none_elsewhere(tmp_path: Path) -> None:
    stores = three_stores(tmp_path)
    try:
        until(lambda: stores["n1"].set_member("n1", {"x": 1}, 2.0))  # a committed entry: a leader exists
        leader = stores["n1"].raft_status().leader
        followers = [n for n in stores if n != leader]
        worst = 0.0
        for _ in range(20):  # heartbeats go out every 0.1 s here (min_timeout 0.4 / 4)
            age = stores[leader].follower_contact_age()
            assert age is not None
            worst = max(worst, age)
            time.sleep(0.05)
        assert worst < 0.3
        assert all(stores[n].follower_contact_age() is None for n in followers)
        for n in followers:  # both followers die: nobody answers any more
            stores[n].close()
        time.sleep(0.6)
        age = stores[leader].follower_contact_age()
        # still leading (pysyncobj falls back after 2 * max_timeout = 1.6 s): the age grows
        assert age is not None and age > 0.5
    finally:
        for s in stores.values():
            s.close()
