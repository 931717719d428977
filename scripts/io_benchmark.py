"""I/O benchmark: fio through a client's FUSE mount against the same job on the disk beneath.

    .venv/bin/python scripts/io_benchmark.py                       # 256 MiB files, 20 s cap
    .venv/bin/python scripts/io_benchmark.py --size 64MiB --runtime 5 --files 500
    .venv/bin/python scripts/io_benchmark.py --no-concurrent --out /tmp/io.json

Needs the cluster up (``make up``) with ``fio`` in the image (images/mooseng/Dockerfile
installs Debian's package; an image built before that has none: ``make up`` rebuilds it).
Everything runs inside the containers through the Docker API (``docker exec``); nothing is
mounted on the host.

1. **fio, four jobs**, each run twice in a row: (a) through ``--client``'s FUSE mount, in
   ``<mount>/--directory/<run>/<client>`` (a new folder, so in the default storage class of
   the mount's root; its class is recorded), and (b) the baseline: the same job on
   ``--chunkserver``'s ``--tier`` folder (``$MOOSENG_DATA_DIR/tiers/<tier>``, one named
   volume), in a subfolder ``.mooseng-bench-<run>`` that MooseFS ignores (it only scans the
   chunk subfolders ``00`` .. ``FF``). Jobs, in this order on one ``--size`` file per side:
   sequential write and read with 1 MiB blocks, random read and random write with 4 KiB
   blocks. Common options: ``--ioengine=psync --direct=0 --invalidate=1 --fallocate=none
   --runtime=<--runtime> --output-format=json``; writes add ``--end_fsync=1`` (fio counts the
   final fsync in the job's time), random jobs ``--time_based`` (they run the full
   ``--runtime`` on the file the sequential write laid out), sequential jobs stop at
   ``--size`` or ``--runtime``, whichever comes first. Read from fio's JSON
   (``jobs[0].read|write``): ``bw_bytes`` (as MiB/s), ``iops``, ``clat_ns`` mean and
   percentiles p50/p99.
2. **Metadata**: a small Python loop in the container creates ``--files`` empty files
   (``open(O_CREAT|O_EXCL)`` + ``close``; ``--file-bytes`` writes that many bytes into each,
   which gives every file a chunk), stats them, unlinks them; each phase timed on its own,
   through the mount and on the tier folder.
3. **All clients at once** (``--clients``, default every configured client; skipped with
   ``--no-concurrent``): the sequential write, then (once every client finished writing)
   the sequential read, on every client at the same time, each in its own folder and file.
   Per client fio's figures; the aggregate is fio's way: bytes of all clients / the longest
   client's runtime.

Ratios are FUSE / disk, with the issue's targets: sequential write >= 0.5, sequential read
>= 0.8, 4 KiB random read >= 0.3 (reported as met or not met, never asserted).

What the figures are and are not:

- ``--direct=0`` on both sides: FUSE may refuse ``O_DIRECT`` (mfsmount 3.0 has no direct
  I/O mode), and the same job must run on both sides. Writes therefore go through the page
  cache and are counted once ``end_fsync`` has flushed them.
- Page cache: ``--invalidate=1`` drops the file's cached pages before each job, so the
  sequential read starts cold on both sides. It cannot drop the chunkservers' cache: a read
  through FUSE may be served from the memory of the chunkservers that just wrote the data,
  and the 4 KiB random jobs, time-based, revisit blocks that are then cached (on the disk
  side too, where the file fits in memory). Take the random figures as "this file size on
  this machine", not as device figures.
- The tier folder is a named volume on the host's disk, so the baseline is that disk as
  Docker gives it to a container, not a raw device. ``--size`` is capped at 512 MiB to stay
  well inside the 1 GiB fast tier (the file is not chunk data, but it is on the same volume).
- Metadata through FUSE: ``stat`` right after ``create`` may be answered from mfsmount's
  and the kernel's attribute caches (1 s by default); that is what an application sees.

Progress lines on stderr; the JSON result on stdout and in ``--out`` (default
``runs/io-<time>.json``). Every folder it made is removed at the end, also after an error
or Ctrl-C (an fio still running is stopped first). Exit 0 when every part was measured
(targets do not decide it), 1 when a part failed (the JSON says which), 2 on bad arguments
or when the cluster is not there.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import log
from benchstats import IO_TARGETS, MIB, ratio

MAX_SIZE = 512 * MIB
EXEC_TIMEOUT_MARGIN = 300  # s an fio may run past --runtime (the final fsync, start-up)
DOCKER_TIMEOUT = 3600      # s the Docker API waits for an exec's answer (fio prints at the end)
DISK_MARGIN = 64 * MIB     # free space asked for on the tier volume beyond --size
PERCENTILES = {"p50": "50.000000", "p99": "99.000000"}


# --------------------------------------------------------------------------- fio


@dataclass(frozen=True)
class FioJob:
    """One fio job: its key, fio's ``rw``, block size, whether it writes, time-based."""

    key: str
    rw: str
    bs: str
    writes: bool
    time_based: bool

    @property
    def direction(self) -> str:
        """The section of fio's JSON holding this job's figures."""
        return "write" if self.writes else "read"


JOBS = (FioJob("seq_write", "write", "1M", True, False),
        FioJob("seq_read", "read", "1M", False, False),
        FioJob("rand_read", "randread", "4k", False, True),
        FioJob("rand_write", "randwrite", "4k", True, True))
JOB = {job.key: job for job in JOBS}


def fio_command(job: FioJob, path: str, size: int, runtime: int) -> list[str]:
    """The fio command line of ``job`` on the file ``path`` (ValueError for a path with a
    colon, which fio would take as a list of files)."""
    if ":" in path:
        raise ValueError(f"fio cannot use {path!r}: a colon separates file names for fio")
    argv = ["fio", f"--name={job.key}", f"--filename={path}", f"--rw={job.rw}",
            f"--bs={job.bs}", f"--size={size}", "--ioengine=psync", "--direct=0",
            "--invalidate=1", "--fallocate=none", f"--runtime={runtime}",
            "--output-format=json"]
    if job.writes:
        argv.append("--end_fsync=1")
    if job.time_based:
        argv.append("--time_based")
    return argv


def fio_json(text: str) -> dict[str, Any]:
    """The JSON document in fio's output (fio may print notes before it); ValueError when
    there is none."""
    start = text.find("{")
    while start != -1:
        try:
            document, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(document, dict) and "jobs" in document:
            return document
        start = text.find("{", start + 1)
    first = next((line for line in text.splitlines() if line.strip()), "no output")
    raise ValueError(f"fio printed no JSON result: {first.strip()[:200]}")


def latency_us(section: Mapping[str, Any]) -> dict[str, float | None]:
    """Completion latency of a job section in microseconds: mean, p50, p99 (None where
    fio gave none). fio 3 reports ``clat_ns``; fio 2 reported ``clat`` in microseconds."""
    if isinstance(section.get("clat_ns"), Mapping):
        clat, scale = section["clat_ns"], 1000.0
    elif isinstance(section.get("clat"), Mapping):
        clat, scale = section["clat"], 1.0
    else:
        return {"mean_us": None, "p50_us": None, "p99_us": None}
    percentiles = clat.get("percentile") or {}
    found: dict[str, float | None] = {
        "mean_us": round(clat["mean"] / scale, 2) if isinstance(clat.get("mean"),
                                                               (int, float)) else None}
    for name, key in PERCENTILES.items():
        value = percentiles.get(key)
        found[f"{name}_us"] = round(value / scale, 2) if isinstance(value, (int, float)) \
            else None
    return found


def parse_fio(text: str, direction: str) -> dict[str, Any]:
    """The figures of the first job in fio's JSON output, ``direction`` ``read`` or
    ``write``: bytes, MiB/s, IOPS, runtime, completion latency. ValueError when fio
    reported an error or did no I/O in that direction."""
    document = fio_json(text)
    jobs = document.get("jobs") or []
    if not jobs:
        raise ValueError("fio's JSON has no job")
    job = jobs[0]
    if job.get("error"):
        raise ValueError(f"fio job {job.get('jobname', '?')} ended with error {job['error']}")
    section = job.get(direction)
    if not isinstance(section, Mapping) or not section.get("io_bytes"):
        raise ValueError(f"fio job {job.get('jobname', '?')} did no {direction}")
    bw = float(section.get("bw_bytes") or 0.0)
    if not bw and section.get("bw"):
        bw = float(section["bw"]) * 1024  # fio's ``bw`` is KiB/s
    return {"io_bytes": int(section["io_bytes"]), "bw_bytes": round(bw),
            "mib_s": round(bw / MIB, 2), "iops": round(float(section.get("iops") or 0.0), 1),
            "runtime_s": round(float(section.get("runtime") or 0) / 1000, 3),
            **latency_us(section), "fio": document.get("fio version")}


def aggregate(per_client: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Clients at once, fio's group way: all bytes / the longest runtime, plus the sum of
    the clients' own rates (an upper bound when their starts were not quite together)."""
    done = {c: s for c, s in per_client.items() if isinstance(s, Mapping) and "io_bytes" in s}
    if not done:
        return {"clients_measured": 0, "aggregate_mib_s": None}
    total = sum(s["io_bytes"] for s in done.values())
    longest = max(s["runtime_s"] for s in done.values())
    return {"clients_measured": len(done), "io_bytes": total, "longest_runtime_s": longest,
            "aggregate_mib_s": round(total / MIB / longest, 2) if longest else None,
            "sum_of_client_mib_s": round(sum(s["mib_s"] for s in done.values()), 2)}


# --------------------------------------------------------------------------- metadata

# argv: folder (must not exist), count, bytes per file. Prints one JSON object.
METADATA_SCRIPT = r"""
import json, os, sys, time
root, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(root)
names = [os.path.join(root, "f%06d" % i) for i in range(count)]
data = b"m" * size
clock = time.perf_counter
t0 = clock()
for name in names:
    fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    if data:
        os.write(fd, data)
    os.close(fd)
t1 = clock()
for name in names:
    os.stat(name)
t2 = clock()
for name in names:
    os.unlink(name)
t3 = clock()
os.rmdir(root)
print(json.dumps({"files": count, "bytes": size, "create_s": t1 - t0, "stat_s": t2 - t1,
                  "unlink_s": t3 - t2}))
"""


def parse_metadata(text: str) -> dict[str, Any]:
    """The metadata loop's result with rates per phase (files/s); ValueError when it printed
    no result."""
    lines = [line for line in text.splitlines() if line.strip().startswith("{")]
    if not lines:
        first = next((line for line in text.splitlines() if line.strip()), "no output")
        raise ValueError(f"the metadata loop printed no result: {first.strip()[:200]}")
    raw = json.loads(lines[-1])
    found: dict[str, Any] = {"files": raw["files"], "bytes": raw["bytes"]}
    for phase in ("create", "stat", "unlink"):
        seconds = float(raw[f"{phase}_s"])
        found[f"{phase}_s"] = round(seconds, 4)
        found[f"{phase}_per_s"] = round(raw["files"] / seconds, 1) if seconds > 0 else None
    return found


# --------------------------------------------------------------------------- results


def pair(fuse: Mapping[str, Any] | None, direct: Mapping[str, Any] | None,
         key: str) -> dict[str, Any]:
    """One job through FUSE and on the disk, with FUSE / disk on ``key``."""
    value = fuse.get(key) if fuse else None
    baseline = direct.get(key) if direct else None
    return {"fuse": fuse, "direct": direct, "compared": key, "ratio": ratio(value, baseline)}


def targets(jobs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets on the FUSE / disk ratios: met, not met, or None (not measured)."""
    found = []
    for key, threshold in IO_TARGETS.items():
        value = (jobs.get(key) or {}).get("ratio")
        found.append({"job": key, "ratio": value, "target": threshold,
                      "met": None if value is None else value >= threshold})
    return found


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """The result in a few lines for the terminal."""
    lines = []
    for job in JOBS:
        entry = (result.get("jobs") or {}).get(job.key) or {}
        fuse, direct = entry.get("fuse") or {}, entry.get("direct") or {}
        key = entry.get("compared", "mib_s")
        unit = "MiB/s" if key == "mib_s" else "IOPS"
        lines.append(f"{job.key:10} FUSE {fuse.get(key, '-'):>10} {unit}  disk "
                     f"{direct.get(key, '-'):>10} {unit}  ratio {entry.get('ratio', '-')}")
    meta = result.get("metadata") or {}
    for phase in ("create", "stat", "unlink"):
        fuse = (meta.get("fuse") or {}).get(f"{phase}_per_s", "-")
        direct = (meta.get("direct") or {}).get(f"{phase}_per_s", "-")
        lines.append(f"{phase:10} FUSE {fuse:>10} files/s disk {direct:>10} files/s")
    for job in ("seq_write", "seq_read"):
        together = (result.get("concurrent") or {}).get(job) or {}
        if together:
            lines.append(f"{job:10} {together.get('clients_measured', 0)} clients at once: "
                         f"{together.get('aggregate_mib_s', '-')} MiB/s aggregate")
    for t in result.get("targets") or []:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        lines.append(f"target {t['job']}: FUSE/disk {t['ratio']} >= {t['target']}: {verdict}")
    return lines


# --------------------------------------------------------------------------- the cluster


class Lab:
    """The running lab's containers, through a Docker client of our own whose requests may
    wait as long as an fio job runs (chaosmoose's shared client gives up after 30 s)."""

    def __init__(self, project: str, run: str) -> None:
        import docker

        self.project = project
        self.run = run
        self.client = docker.from_env(timeout=DOCKER_TIMEOUT)
        self.lock = threading.Lock()

    def container(self, service: str) -> Any:
        """The container of ``service`` (by compose labels); must be running."""
        from chaosmoose import _docker

        with self.lock:
            container = _docker.find_container(self.project, service, self.client)
            container.reload()
        if container.status != "running":
            raise RuntimeError(f"{service} is {container.status}; expected running")
        return container

    def sh(self, service: str, script: str, args: Sequence[str] = (),
           timeout: float = 120) -> str:
        """Run a bash ``script`` with ``args`` as $1... in ``service``; its stdout. Fails
        with the last line of stderr on a non-zero exit."""
        return self.exec(service, ["timeout", "-k", "10", f"{timeout:g}", "bash", "-c", script,
                                   "bench", *args], f"`{script.strip().splitlines()[0][:60]}`")

    def exec(self, service: str, argv: Sequence[str], what: str) -> str:
        """Run ``argv`` in ``service``; stdout, or RuntimeError naming ``what``."""
        container = self.container(service)
        result = container.exec_run(list(argv), demux=True)
        out, err = result.output if isinstance(result.output, tuple) else (result.output, b"")
        out_text = (out or b"").decode("utf-8", "replace")
        err_text = (err or b"").decode("utf-8", "replace")
        if result.exit_code != 0:
            reason = (err_text.strip() or out_text.strip() or "no output").splitlines()[-1]
            raise RuntimeError(f"{what} in {service} exited {result.exit_code}: {reason[:300]}")
        return out_text

    def pidfile(self, side: str) -> str:
        """Where the process running on ``side`` leaves its pid (in the container's /tmp)."""
        return f"/tmp/mooseng-bench-{self.run}-{side}.pid"

    def fio(self, service: str, side: str, job: FioJob, path: str, size: int,
            runtime: int) -> dict[str, Any]:
        """Run ``job`` on ``path`` in ``service``; its figures. The run's pid goes to a
        pid file so that a cleanup can stop it."""
        limit = runtime + EXEC_TIMEOUT_MARGIN
        argv = ["sh", "-c", 'echo $$ > "$1"; shift; exec "$@"', "bench", self.pidfile(side),
                "timeout", "-k", "10", f"{limit:g}", *fio_command(job, path, size, runtime)]
        return parse_fio(self.exec(service, argv, f"fio {job.key} on {path}"), job.direction)

    def stop_and_remove(self, service: str, folder: str) -> None:
        """Stop what this run still runs in ``service`` (by its pid files, only if the pid
        is still our ``timeout``), then remove ``folder``."""
        script = """for f in /tmp/mooseng-bench-"$1"-*.pid; do
  [ -f "$f" ] || continue
  p=$(cat "$f")
  [ "$(cat /proc/"$p"/comm 2>/dev/null)" = timeout ] && kill "$p" 2>/dev/null
  rm -f "$f"
done
sleep 0.2
rm -rf -- "$2"
"""
        self.sh(service, script, [self.run, folder], timeout=300)


def tool_problem(lab: Lab, service: str) -> str | None:
    """Why ``service`` cannot run the benchmark (no fio), None when it can."""
    out = lab.sh(service, "command -v fio >/dev/null && fio --version || echo missing")
    if "missing" in out or not out.strip():
        return (f"{service} has no fio; the image predates it (images/mooseng/Dockerfile "
                "installs Debian's fio): rebuild and restart with `make up`")
    return None


def tier_folder(lab: Lab, chunkserver: str, tier: str) -> str:
    """The tier's folder in the chunkserver (``$MOOSENG_DATA_DIR/tiers/<tier>``)."""
    script = 'd="${MOOSENG_DATA_DIR:-/var/lib/mooseng}/tiers/$1"; [ -d "$d" ] && echo "$d"'
    try:
        return lab.sh(chunkserver, script, [tier]).strip()
    except RuntimeError:
        raise RuntimeError(f"{chunkserver} has no tier folder {tier!r}; expected "
                           "$MOOSENG_DATA_DIR/tiers/<tier> (MOOSENG_CS_TIERS)") from None


def free_bytes(lab: Lab, service: str, folder: str) -> int:
    """Bytes available to a writer in ``folder`` (``df``)."""
    out = lab.sh(service, 'df -B1 --output=avail "$1" | tail -1', [folder])
    return int(out.strip())


def storage_class(lab: Lab, client: str, folder: str) -> str:
    """What ``mfsgetsclass`` says of ``folder`` (the text after the colon)."""
    try:
        out = lab.sh(client, 'mfsgetsclass "$1"', [folder])
    except RuntimeError as exc:
        return f"unknown ({exc})"
    return out.strip().rpartition(":")[2].strip().strip("'") or out.strip()


# --------------------------------------------------------------------------- the run


def measure_jobs(lab: Lab, args: argparse.Namespace, fuse_file: str, disk_file: str,
                 result: dict[str, Any]) -> None:
    """The four jobs, each through FUSE then on the disk; fills ``result["jobs"]``."""
    for job in JOBS:
        figures: dict[str, Any] = {}
        for side, service, path in (("fuse", args.client, fuse_file),
                                    ("direct", args.chunkserver, disk_file)):
            log(f"fio {job.key} ({job.rw}, {job.bs}) {side}: {service}:{path}")
            figures[side] = lab.fio(service, side, job, path, args.size, args.runtime)
            f = figures[side]
            log(f"  {f['mib_s']} MiB/s, {f['iops']} IOPS, clat p50 {f['p50_us']} us, "
                f"p99 {f['p99_us']} us, {f['io_bytes'] / MIB:.0f} MiB in {f['runtime_s']} s")
        key = "mib_s" if job.bs == "1M" else "iops"
        result["jobs"][job.key] = pair(figures["fuse"], figures["direct"], key)
        log(f"{job.key}: FUSE / disk = {result['jobs'][job.key]['ratio']}")
    for service, path in ((args.client, fuse_file), (args.chunkserver, disk_file)):
        lab.sh(service, 'rm -f -- "$1"', [path])  # room for the next parts


def measure_metadata(lab: Lab, args: argparse.Namespace, fuse_dir: str, disk_dir: str,
                     result: dict[str, Any]) -> None:
    """Create, stat, unlink ``--files`` files through FUSE and on the disk."""
    meta: dict[str, Any] = {}
    for side, service, folder in (("fuse", args.client, f"{fuse_dir}/meta"),
                                  ("direct", args.chunkserver, f"{disk_dir}/meta")):
        log(f"metadata {side}: {args.files} files of {args.file_bytes} B in {service}:{folder}")
        out = lab.sh(service, 'exec python3 -c "$1" "$2" "$3" "$4"',
                     [METADATA_SCRIPT, folder, str(args.files), str(args.file_bytes)],
                     timeout=max(120.0, args.files * 0.2))
        meta[side] = parse_metadata(out)
        m = meta[side]
        log(f"  create {m['create_per_s']}/s, stat {m['stat_per_s']}/s, "
            f"unlink {m['unlink_per_s']}/s")
    meta["ratios"] = {phase: ratio(meta["fuse"][f"{phase}_per_s"],
                                   meta["direct"][f"{phase}_per_s"])
                      for phase in ("create", "stat", "unlink")}
    result["metadata"] = meta


def measure_concurrent(lab: Lab, args: argparse.Namespace, run_dir: str,
                       result: dict[str, Any]) -> None:
    """Sequential write, then read, on every client at once; fills ``result["concurrent"]``."""
    clients = list(args.clients)
    per_job: dict[str, dict[str, Any]] = {"seq_write": {}, "seq_read": {}}
    barrier = threading.Barrier(len(clients))

    def one(client: str) -> None:
        path = f"{run_dir}/{client}/concurrent.dat"
        for key in ("seq_write", "seq_read"):
            try:
                if key == "seq_write":
                    lab.sh(client, 'mkdir -p -- "$(dirname -- "$1")"', [path])
                barrier.wait(timeout=args.runtime + EXEC_TIMEOUT_MARGIN + 120)
                per_job[key][client] = lab.fio(client, f"all-{client}", JOB[key], path,
                                               args.size, args.runtime)
            except threading.BrokenBarrierError:
                per_job[key][client] = {"error": "another client failed before this job"}
            except Exception as exc:  # noqa: BLE001 - recorded per client, the others go on
                per_job[key][client] = {"error": str(exc).splitlines()[0][:300]}
                barrier.abort()

    log(f"all clients at once: {', '.join(clients)}: seq_write then seq_read, "
        f"{args.size / MIB:.0f} MiB each")
    threads = [threading.Thread(target=one, args=(c,), name=f"io-{c}", daemon=True)
               for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    together: dict[str, Any] = {"clients": clients}
    for key, per_client in per_job.items():
        together[key] = {"per_client": per_client, **aggregate(per_client)}
        log(f"{key}, {len(clients)} clients at once: {together[key]['aggregate_mib_s']} MiB/s "
            f"aggregate ({together[key]['clients_measured']} measured)")
    result["concurrent"] = together
    failed = [f"{c} {k}: {s['error']}" for k, pc in per_job.items() for c, s in pc.items()
              if "error" in s]
    if failed:
        raise RuntimeError("; ".join(failed))


def run(lab: Lab, args: argparse.Namespace, mount: str) -> dict[str, Any]:
    """The whole benchmark; the result document (``errors`` lists the parts that failed)."""
    run_dir = f"{mount}/{args.directory}/{lab.run}"
    fuse_dir = f"{run_dir}/{args.client}"
    result: dict[str, Any] = {
        "benchmark": "io", "run": lab.run, "client": args.client,
        "chunkserver": args.chunkserver, "tier": args.tier, "size": args.size,
        "runtime_s": args.runtime, "files": args.files, "file_bytes": args.file_bytes,
        "fuse_dir": fuse_dir, "method": {
            "fio": " ".join(fio_command(JOB["seq_write"], "FILE", args.size, args.runtime)[2:]),
            "targets": "FUSE / disk: seq_write >= 0.5, seq_read >= 0.8, rand_read >= 0.3"},
        "jobs": {}, "errors": []}
    concurrent = bool(args.clients) and not args.no_concurrent
    for service in dict.fromkeys([args.client, args.chunkserver,
                                  *(args.clients if concurrent else [])]):
        problem = tool_problem(lab, service)
        if problem:
            raise RuntimeError(problem)
    tier_dir = tier_folder(lab, args.chunkserver, args.tier)
    disk_dir = f"{tier_dir}/.mooseng-bench-{lab.run}"
    result["disk_dir"] = disk_dir
    free = free_bytes(lab, args.chunkserver, tier_dir)
    if free < args.size + DISK_MARGIN:
        raise RuntimeError(f"{args.chunkserver}:{tier_dir} has {free / MIB:.0f} MiB free; "
                           f"expected at least {(args.size + DISK_MARGIN) / MIB:.0f} MiB")
    try:
        lab.sh(args.client, 'mkdir -p -- "$1"', [fuse_dir])
        lab.sh(args.chunkserver, 'mkdir -p -- "$1"', [disk_dir])
        result["storage_class"] = storage_class(lab, args.client, fuse_dir)
        log(f"FUSE: {args.client}:{fuse_dir} (storage class {result['storage_class']}); "
            f"disk: {args.chunkserver}:{disk_dir}")
        parts = [("fio jobs", lambda: measure_jobs(lab, args, f"{fuse_dir}/fio.dat",
                                                   f"{disk_dir}/fio.dat", result))]
        if args.files:
            parts.append(("metadata", lambda: measure_metadata(lab, args, fuse_dir, disk_dir,
                                                               result)))
        if concurrent:
            parts.append(("clients at once", lambda: measure_concurrent(lab, args, run_dir,
                                                                       result)))
        for name, part in parts:
            try:
                part()
            except Exception as exc:  # noqa: BLE001 - recorded, the next part still runs
                message = f"{name}: {str(exc).splitlines()[0] if str(exc) else repr(exc)}"
                log(f"FAILED {message}")
                result["errors"].append(message)
    finally:
        log("removing the benchmark's files")
        others = [c for c in args.clients if c != args.client] if concurrent else []
        for client in others:  # their fio first: the folder goes with client-1's below
            try:
                lab.stop_and_remove(client, f"{run_dir}/{client}")
            except Exception as exc:  # noqa: BLE001 - the folder is on MooseFS anyway
                log(f"could not clean up on {client}: {exc}")
        for service, folder in ((args.client, run_dir), (args.chunkserver, disk_dir)):
            try:
                lab.stop_and_remove(service, folder)
            except Exception as exc:  # noqa: BLE001 - say what is left, go on
                log(f"could not remove {service}:{folder}: {exc}")
                result["errors"].append(f"cleanup: {service}:{folder} left behind: {exc}")
        parent = f"{mount}/{args.directory}"
        try:  # the parent folder too, once no run uses it
            lab.sh(args.client, 'rmdir -- "$1" 2>/dev/null || true', [parent])
        except Exception as exc:  # noqa: BLE001 - an empty folder left on the mount is harmless
            log(f"left {args.client}:{parent} ({exc})")
    result["targets"] = targets(result["jobs"])
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; exits 2 on a bad value."""
    from chaosmoose import _settings
    from chaosmoose.data.plan import parse_size

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--client", default="client-1", help="client whose mount is measured")
    p.add_argument("--chunkserver", default="chunkserver-1",
                   help="chunkserver whose tier folder is the baseline")
    p.add_argument("--tier", default="fast", help="tier folder of the baseline (default fast)")
    p.add_argument("--size", default="256MiB", help="file size per job (default 256MiB, at "
                                                    "most 512MiB)")
    p.add_argument("--runtime", type=int, default=20,
                   help="seconds each fio job may run (random jobs run exactly this long)")
    p.add_argument("--files", type=int, default=2000,
                   help="files of the metadata phases (0 skips them; default 2000)")
    p.add_argument("--file-bytes", type=int, default=0,
                   help="bytes written into each metadata file (default 0: empty files)")
    p.add_argument("--directory", default="bench-io",
                   help="folder on the mount for the run's folders (default bench-io)")
    p.add_argument("--clients", default="",
                   help="clients of the 'all at once' part, comma-separated (default: all)")
    p.add_argument("--no-concurrent", action="store_true",
                   help="skip the 'all clients at once' part")
    p.add_argument("--out", help="JSON result (default runs/io-<time>.json)")
    args = p.parse_args(argv)
    try:
        args.size = parse_size(args.size, "--size")
        args.clients = (_settings.parse_name_list("--clients", args.clients) if args.clients
                        else _settings.clients(None, None))
    except _settings.SettingError as exc:
        p.error(str(exc))
    if not MIB <= args.size <= MAX_SIZE:
        p.error(f"--size {args.size} is invalid; expected 1MiB .. 512MiB (the file lives on a "
                "1 GiB tier volume)")
    if not 1 <= args.runtime <= 600:
        p.error("--runtime must be between 1 and 600 seconds")
    if not 0 <= args.files <= 100_000 or not 0 <= args.file_bytes <= 1 << 20:
        p.error("--files must be 0 .. 100000 and --file-bytes 0 .. 1048576")
    parts = Path(args.directory).parts
    if not parts or args.directory.startswith("/") or ".." in parts:
        p.error(f"--directory {args.directory!r} is invalid; expected a folder relative to "
                "the mount")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run it; print and write the JSON; see the module for the exit status."""
    args = parse_args(argv)
    from chaoslib.exceptions import ActivityFailed

    from chaosmoose import _settings

    run_name = time.strftime("io-%Y%m%dT%H%M%S")
    out = Path(args.out or f"runs/{run_name}.json")
    command = "scripts/io_benchmark.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    log(f"run={run_name} client={args.client} chunkserver={args.chunkserver}:{args.tier} "
        f"size={args.size / MIB:.0f}MiB runtime={args.runtime:g}s files={args.files} "
        f"clients={','.join(args.clients) if not args.no_concurrent else '-'}")
    try:
        lab = Lab(_settings.project(None, None), run_name)
        mount = _settings.mount_point(args.client, None, None)
        lab.sh(args.client, 'mountpoint -q "$1" && stat -c %i "$1" >/dev/null', [mount])
    except Exception as exc:  # noqa: BLE001 - the cluster is not there: say so, exit 2
        log(f"cannot start: {str(exc).splitlines()[0] if str(exc) else repr(exc)}")
        return 2
    started = time.time()
    try:
        result = run(lab, args, mount)
    except (RuntimeError, ActivityFailed) as exc:
        log(f"cannot run: {exc}")
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    result.update(command=command, started=started, seconds=round(time.time() - started, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    out.write_text(text + "\n")
    print(text)
    for line in summary_lines(result):
        log(line)
    log(f"result: {out}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
