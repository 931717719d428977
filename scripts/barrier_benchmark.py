#!/usr/bin/env python3
"""Measure the reply barrier with real MooseFS daemons on this host, then show its safety.

Runs mfsmaster, mfsmetalogger, the tap, the barrier and mfsmount on 127.0.0.1 (ports from
``--port-base``, far from the lab's), all under ``--base``, and stops everything it started.

1. cost: create+fsync+close of small (empty) files through mfsmount, sequentially
   (latency p50/p99) and from ``--threads`` threads (ops/s), for: direct to mfsmaster,
   through the proxy with the barrier off, with the barrier and a tap that fsyncs each
   batch, with a tap that only writes (no fsync).
2. safety: with the barrier on, the tap is stopped (SIGSTOP: no more acks, as in a
   partition) while a client keeps creating files; its next create gets no reply. Then the
   leader, the tap and the metalogger are SIGKILLed, ``mfsmaster -a`` restores from the
   metalogger's and the tap's files, and every create the client saw acknowledged must be
   in the restored metadata. The same run without the barrier shows what is lost otherwise.

Needs root, the Debian packages moosefs-master, -metalogger, -client, and /dev/fuse.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mooseng.barrier import protocol

PY = sys.executable


class Node:
    """One mfsmaster + mfsmetalogger (+ tap, barrier, mounts) in a folder of its own."""

    def __init__(self, base: Path, port_base: int) -> None:
        self.base = base
        self.ml_port, self.cs_port, self.cl_port = port_base, port_base + 1, port_base + 2
        self.proxy_port, self.ack_port = port_base + 12, port_base + 13
        self.procs: list[subprocess.Popen[bytes]] = []
        self.mounts: list[Path] = []
        if base.exists():
            shutil.rmtree(base)
        for sub in ("master", "ml", "tap", "restore"):
            (base / sub).mkdir(parents=True)
        shutil.copyfile("/var/lib/mfs/metadata.mfs.empty", base / "master" / "metadata.mfs")
        (base / "mfsexports.cfg").write_text("*  /  rw,alldirs,admin,maproot=0:0\n")
        self.master_cfg = self._master_cfg("master")
        (base / "mfsmetalogger.cfg").write_text(
            f"DATA_PATH = {base}/ml\nMASTER_HOST = 127.0.0.1\nMASTER_PORT = {self.ml_port}\n"
            "MASTER_RECONNECTION_DELAY = 1\n")
        entry = pwd.getpwnam("mfs")
        for path in [base, *base.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _master_cfg(self, folder: str) -> Path:
        cfg = self.base / f"mfsmaster-{folder}.cfg"
        cfg.write_text(
            f"DATA_PATH = {self.base}/{folder}\nEXPORTS_FILENAME = {self.base}/mfsexports.cfg\n"
            f"MATOML_LISTEN_HOST = 127.0.0.1\nMATOML_LISTEN_PORT = {self.ml_port}\n"
            f"MATOCS_LISTEN_HOST = 127.0.0.1\nMATOCS_LISTEN_PORT = {self.cs_port}\n"
            f"MATOCL_LISTEN_HOST = 127.0.0.1\nMATOCL_LISTEN_PORT = {self.cl_port}\n")
        return cfg

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.base / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                cwd=Path(__file__).resolve().parent.parent)
        self.procs.append(proc)
        return proc

    def start_master(self) -> subprocess.Popen[bytes]:
        if protocol.metadata_file_version(self.base / "master" / "metadata.mfs") == 1:
            # The seed "MFSM NEW" is not a file a metalogger keeps (its check refuses it):
            # one start and stop writes real metadata first.
            first = self.spawn("mfsmaster", ["mfsmaster", "-c", str(self.master_cfg), "-f",
                                             "start"])
            wait_port(self.cl_port)
            self.stop(first)
        proc = self.spawn("mfsmaster", ["mfsmaster", "-c", str(self.master_cfg), "-f", "start"])
        wait_port(self.cl_port)
        return proc

    def start_metalogger(self) -> subprocess.Popen[bytes]:
        proc = self.spawn("mfsmetalogger",
                          ["mfsmetalogger", "-c", str(self.base / "mfsmetalogger.cfg"), "-f",
                           "start"])
        deadline = time.monotonic() + 10
        while not (self.base / "ml" / "metadata_ml.mfs.back").exists():
            if time.monotonic() > deadline:
                raise RuntimeError("mfsmetalogger did not download metadata")
            time.sleep(0.1)
        return proc

    def start_tap(self, sync: str, folder: Path) -> subprocess.Popen[bytes]:
        """The tap; returns once the barrier (if one listens) has its first ack link, so a
        mount does not register while no follower can confirm anything yet."""
        proxy_log = self.base / "proxy.log"
        seen = proxy_log.read_text().count("event=follower_acks") if proxy_log.exists() else 0
        proc = self.spawn("tap", [PY, "-m", "mooseng.barrier", "tap", "--master",
                                  f"127.0.0.1:{self.ml_port}", "--ack",
                                  f"127.0.0.1:{self.ack_port}", "--folder", str(folder),
                                  "--anchor-dir", str(self.base / "ml"), "--sync", sync,
                                  "--node", "follower-1"])
        deadline = time.monotonic() + 10
        while proxy_log.exists() and time.monotonic() < deadline:
            if proxy_log.read_text().count("event=follower_acks") > seen:
                break
            time.sleep(0.05)
        return proc

    def start_proxy(self, enabled: bool, max_in_flight: int = 4) -> subprocess.Popen[bytes]:
        argv = [PY, "-m", "mooseng.barrier", "proxy", "--master", f"127.0.0.1:{self.cl_port}",
                "--listen", f"127.0.0.1:{self.proxy_port}", "--ack-listen",
                f"127.0.0.1:{self.ack_port}", "--hold-timeout", "30",
                "--max-in-flight", str(max_in_flight)]
        proc = self.spawn("proxy", [*argv, *([] if enabled else ["--off"])])
        wait_port(self.proxy_port)
        return proc

    def mount(self, port: int, name: str) -> Path:
        where = self.base / name
        where.mkdir(exist_ok=True)
        self.spawn(f"mount-{name}", ["mfsmount", "-f", str(where), "-H", "127.0.0.1", "-P",
                                     str(port)])
        deadline = time.monotonic() + 15
        while not os.path.ismount(where):
            if time.monotonic() > deadline:
                raise RuntimeError(f"mfsmount on {where} did not come up")
            time.sleep(0.1)
        self.mounts.append(where)
        return where

    def unmount(self, where: Path) -> None:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)
        if where in self.mounts:
            self.mounts.remove(where)

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            if sig == signal.SIGKILL:
                proc.kill()
            else:
                proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for where in list(self.mounts):
            self.unmount(where)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
            self.stop(proc)

    def meta_version(self) -> int:
        """mfsmaster's next change number, asked directly (not through the barrier)."""
        with socket.create_connection(("127.0.0.1", self.cl_port), timeout=2) as sock:
            sock.sendall(protocol.info_request())
            framer = protocol.Framer()
            while True:
                for frame in framer.feed(sock.recv(4096)):
                    if frame.kind == protocol.MATOCL_INFO:
                        return protocol.info_meta_version(frame.payload)

    def restore(self, with_tap: bool) -> set[str]:
        """``mfsmaster -a`` from the metalogger's files (plus the tap's); the names it holds."""
        target = self.base / "restore"
        shutil.rmtree(target)
        target.mkdir()
        sources = list((self.base / "ml").iterdir())
        if with_tap:
            sources += list((self.base / "tap").iterdir())
        for source in sources:
            if source.name.startswith(("metadata_ml", "changelog")):
                shutil.copyfile(source, target / source.name)
                if source.name.startswith("changelog"):
                    trim_torn_line(target / source.name)
        entry = pwd.getpwnam("mfs")
        for path in [target, *target.iterdir()]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
        done = subprocess.run(["mfsmaster", "-a", "-c", str(self._master_cfg("restore")),
                               "restore"], capture_output=True, text=True, check=False)
        (self.base / "restore.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"restore failed: {(done.stdout + done.stderr)[-500:]}")
        dump = subprocess.run(["mfsmetadump", str(target / "metadata.mfs")], capture_output=True,
                              text=True, check=True).stdout
        return {line.rsplit("|n:", 1)[1] for line in dump.splitlines()
                if line.startswith("EDGE|")}


def trim_torn_line(path: Path) -> None:
    """Cut a last line without its newline (a SIGKILLed metalogger leaves one when stdio
    flushed mid-line): mfsmaster -a skips a whole changelog that does not end in a newline
    (changelog.c changelog_findlastversion: "garbage at the end of file")."""
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep != len(data):
        with path.open("r+b") as handle:
            handle.truncate(keep)


def role(proc: subprocess.Popen[bytes]) -> str:
    """``tap`` or ``proxy`` for our own processes, else the program name."""
    argv = list(proc.args)  # type: ignore[arg-type]
    return str(argv[3]) if argv[0] == PY else Path(str(argv[0])).name


def cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """User+system CPU seconds a live child has used so far (0 when gone)."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def create_fsync(path: Path) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def latency_run(folder: Path, count: int) -> dict[str, float]:
    folder.mkdir()
    took = []
    began = time.perf_counter()
    for i in range(count):
        start = time.perf_counter()
        create_fsync(folder / f"f{i}")
        took.append(time.perf_counter() - start)
    elapsed = time.perf_counter() - began
    took.sort()
    return {"p50_ms": took[len(took) // 2] * 1000, "p99_ms": took[int(len(took) * 0.99)] * 1000,
            "mean_ms": statistics.mean(took) * 1000, "ops_s": count / elapsed}


def throughput_run(folder: Path, count: int, threads: int) -> dict[str, float]:
    folder.mkdir()
    per = count // threads

    def work(t: int) -> None:
        sub = folder / f"t{t}"
        sub.mkdir()
        for i in range(per):
            create_fsync(sub / f"f{i}")

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    began = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"threads": threads, "ops_s": per * threads / (time.perf_counter() - began)}


LABELS = ("direct", "proxy-off", "barrier-fsync", "barrier-write")


def cost_once(node: Node, master: subprocess.Popen[bytes], label: str, run: int,
              args: argparse.Namespace) -> dict[str, object]:
    """One configuration, one run: mount, warm up, sequential then parallel creates."""
    extra = []
    if label == "direct":
        port = node.cl_port
    else:
        extra.append(node.start_proxy(enabled=label != "proxy-off",
                                      max_in_flight=args.max_in_flight))
        port = node.proxy_port
        if label.startswith("barrier"):
            extra.append(node.start_tap(label.split("-")[1], node.base / f"tap-{label}-{run}"))
    where = node.mount(port, f"mnt-{label}-{run}")
    try:
        mount_proc = node.procs[-1]
        watched = {"mfsmaster": master, "mfsmount": mount_proc, **{role(p): p for p in extra}}
        before = {name: cpu_seconds(proc) for name, proc in watched.items()}
        top = where / f"{label}-{run}"
        top.mkdir()
        latency_run(top / "warmup", 50)
        lat = latency_run(top / "latency", args.files)
        thr = throughput_run(top / "throughput", args.files, args.threads)
        ops = args.files * 2 + 50
        cpu_us = {name: round((cpu_seconds(proc) - before[name]) / ops * 1e6, 1)
                  for name, proc in watched.items()}
        load = os.getloadavg()[0]
        print(f"{label:14s} run {run}: p50={lat['p50_ms']:.2f}ms p99={lat['p99_ms']:.2f}ms "
              f"seq={lat['ops_s']:.0f} ops/s  {args.threads} threads={thr['ops_s']:.0f} ops/s  "
              f"cpu us/op {cpu_us}  load {load:.1f}", flush=True)
        return {"sequential": lat, "parallel": thr, "cpu_us_per_op": cpu_us, "load": load}
    finally:
        node.unmount(where)
        for proc in reversed(extra):
            node.stop(proc)


def cost(args: argparse.Namespace) -> dict[str, object]:
    """Every configuration ``--repeat`` times, interleaved (the host's load drifts); the
    median of each figure."""
    node = Node(args.base / "cost", args.port_base)
    runs: dict[str, list[dict[str, object]]] = {label: [] for label in LABELS}
    try:
        master = node.start_master()
        node.start_metalogger()
        for run in range(args.repeat):
            for label in LABELS:
                runs[label].append(cost_once(node, master, label, run, args))
    finally:
        node.stop_all()
    summary: dict[str, object] = {}
    print(f"median of {args.repeat} runs, {args.files} files each:")
    for label, results in runs.items():
        def med(path: tuple[str, str], rows: list[dict[str, object]] = results) -> float:
            return statistics.median(float(r[path[0]][path[1]]) for r in rows)  # type: ignore[index]
        figures = {"p50_ms": med(("sequential", "p50_ms")), "p99_ms": med(("sequential", "p99_ms")),
                   "seq_ops_s": med(("sequential", "ops_s")),
                   "parallel_ops_s": med(("parallel", "ops_s")),
                   "parallel_ops_s_range": [min(float(r["parallel"]["ops_s"]) for r in results),  # type: ignore[index]
                                            max(float(r["parallel"]["ops_s"]) for r in results)]}  # type: ignore[index]
        summary[label] = {"median": figures, "runs": results}
        print(f"  {label:14s} p50={figures['p50_ms']:.2f}ms p99={figures['p99_ms']:.2f}ms "
              f"seq={figures['seq_ops_s']:.0f} ops/s  parallel={figures['parallel_ops_s']:.0f} "
              f"ops/s (range {figures['parallel_ops_s_range'][0]:.0f}-"
              f"{figures['parallel_ops_s_range'][1]:.0f})", flush=True)
    for line in (node.base / "proxy.log").read_text().splitlines():
        if "barrier_stopped" in line and "replies=0 " not in line:
            print("  proxy:", line.split("event=barrier_stopped ")[1])
    return summary


def safety(args: argparse.Namespace, barrier: bool) -> dict[str, object]:
    node = Node(args.base / ("safety-barrier" if barrier else "safety-direct"), args.port_base)
    acked: list[str] = []
    pending: list[str] = []
    try:
        master = node.start_master()
        metalogger = node.start_metalogger()
        if barrier:
            node.start_proxy(enabled=True)
            tap = node.start_tap("fsync", node.base / "tap")
        where = node.mount(node.proxy_port if barrier else node.cl_port, "mnt")
        (where / "d").mkdir()
        stop_writer = threading.Event()

        def writer() -> None:
            i = 0
            while not stop_writer.is_set():
                name = f"s{i}"
                pending[:] = [name]
                try:
                    create_fsync(where / "d" / name)
                except OSError:
                    return
                acked.append(name)
                pending.clear()
                i += 1

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        time.sleep(1.0)
        cut_version = node.meta_version()
        cut_acked = len(acked)
        # The follower is cut off: the tap (barrier) or the metalogger (no barrier) stops.
        os.kill((tap if barrier else metalogger).pid, signal.SIGSTOP)
        time.sleep(args.cut_seconds)
        after_version = node.meta_version()
        acked_during_cut = len(acked) - cut_acked
        stop_writer.set()
        # The leader dies, and so does the follower, without flushing anything.
        node.stop(master, signal.SIGKILL)
        if barrier:
            node.stop(tap, signal.SIGKILL)
        node.stop(metalogger, signal.SIGKILL)
        restored = node.restore(with_tap=barrier)
        lost = [name for name in acked if name not in restored]
        result = {"acked": len(acked), "acked_during_cut": acked_during_cut,
                  "master_changes_during_cut": after_version - cut_version,
                  "pending_at_kill": pending[:], "pending_in_restore":
                  [n for n in pending if n in restored], "lost_acked": len(lost),
                  "lost_examples": lost[:5]}
        print(f"safety barrier={barrier}: {json.dumps(result)}", flush=True)
        return result
    finally:
        node.stop_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, default=Path("/tmp/mooseng-barrier"))
    parser.add_argument("--port-base", type=int, default=29419,
                        help="below the ephemeral range (32768-60999 here), so no outgoing "
                             "connection can hold one of our ports")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument("--max-in-flight", type=int, default=4, help="INFO probes in flight")
    parser.add_argument("--cut-seconds", type=float, default=3.0)
    parser.add_argument("--only", choices=("cost", "safety"), default=None)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    report: dict[str, object] = {}
    if args.only in (None, "cost"):
        report["cost"] = cost(args)
    if args.only in (None, "safety"):
        report["safety_barrier"] = safety(args, barrier=True)
        report["safety_direct"] = safety(args, barrier=False)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    failed = "safety_barrier" in report and report["safety_barrier"]["lost_acked"] != 0  # type: ignore[index]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
