"""scripts/io_benchmark.py: fio's JSON (a hand-written fixture in fio 3.33's layout), the
job command lines, the metadata loop, the aggregate of clients at once, and a whole run
against a scripted lab (no Docker, no MooseFS)."""

import copy
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import io_benchmark as iob

MIB = 1 << 20

# What `fio --output-format=json` prints for the sequential write job (fio-3.33, Debian
# bookworm), trimmed of the sections the benchmark does not read but keeping their shape:
# jobs[0].read/write/trim with io_bytes, bw_bytes, bw (KiB/s), iops, runtime (ms), clat_ns
# with its percentiles keyed "50.000000", plus sync, job_runtime and disk_util.
FIO_SEQ_WRITE = """{
  "fio version" : "fio-3.33",
  "timestamp" : 1732876543,
  "timestamp_ms" : 1732876543210,
  "time" : "Fri Nov 29 10:35:43 2024",
  "global options" : {},
  "jobs" : [
    {
      "jobname" : "seq_write",
      "groupid" : 0,
      "error" : 0,
      "eta" : 0,
      "elapsed" : 4,
      "job options" : {
        "name" : "seq_write",
        "filename" : "/mnt/client-1/bench-io/io-20241129T103539/client-1/fio.dat",
        "rw" : "write",
        "bs" : "1M",
        "size" : "268435456",
        "ioengine" : "psync",
        "direct" : "0",
        "invalidate" : "1",
        "fallocate" : "none",
        "runtime" : "20",
        "end_fsync" : "1"
      },
      "read" : {
        "io_bytes" : 0, "io_kbytes" : 0, "bw_bytes" : 0, "bw" : 0, "iops" : 0.000000,
        "runtime" : 0, "total_ios" : 0, "short_ios" : 0, "drop_ios" : 0,
        "slat_ns" : {"min" : 0, "max" : 0, "mean" : 0.000000, "stddev" : 0.000000, "N" : 0},
        "clat_ns" : {"min" : 0, "max" : 0, "mean" : 0.000000, "stddev" : 0.000000, "N" : 0},
        "lat_ns" : {"min" : 0, "max" : 0, "mean" : 0.000000, "stddev" : 0.000000, "N" : 0},
        "bw_min" : 0, "bw_max" : 0, "bw_agg" : 0.000000, "bw_mean" : 0.000000,
        "bw_dev" : 0.000000, "bw_samples" : 0, "iops_min" : 0, "iops_max" : 0,
        "iops_mean" : 0.000000, "iops_stddev" : 0.000000, "iops_samples" : 0
      },
      "write" : {
        "io_bytes" : 268435456,
        "io_kbytes" : 262144,
        "bw_bytes" : 95325374,
        "bw" : 93091,
        "iops" : 90.909091,
        "runtime" : 2816,
        "total_ios" : 256,
        "short_ios" : 0,
        "drop_ios" : 0,
        "slat_ns" : {"min" : 0, "max" : 0, "mean" : 0.000000, "stddev" : 0.000000, "N" : 0},
        "clat_ns" : {
          "min" : 401233,
          "max" : 80123456,
          "mean" : 1934567.218750,
          "stddev" : 6543210.123456,
          "N" : 256,
          "percentile" : {
            "1.000000" : 415744,
            "5.000000" : 432128,
            "10.000000" : 444416,
            "20.000000" : 468992,
            "30.000000" : 493568,
            "40.000000" : 602112,
            "50.000000" : 741376,
            "60.000000" : 782336,
            "70.000000" : 831488,
            "80.000000" : 937984,
            "90.000000" : 1155072,
            "95.000000" : 2932736,
            "99.000000" : 49020928,
            "99.500000" : 80216064,
            "99.900000" : 80216064,
            "99.950000" : 80216064,
            "99.990000" : 80216064
          }
        },
        "lat_ns" : {"min" : 402101, "max" : 80125877, "mean" : 1936001.554688,
                    "stddev" : 6543300.987654, "N" : 256},
        "bw_min" : 61440, "bw_max" : 131072, "bw_agg" : 100.000000, "bw_mean" : 97321.500000,
        "bw_dev" : 19321.221300, "bw_samples" : 4, "iops_min" : 60, "iops_max" : 128,
        "iops_mean" : 95.000000, "iops_stddev" : 18.867962, "iops_samples" : 4
      },
      "trim" : {
        "io_bytes" : 0, "io_kbytes" : 0, "bw_bytes" : 0, "bw" : 0, "iops" : 0.000000,
        "runtime" : 0, "total_ios" : 0, "short_ios" : 0, "drop_ios" : 0
      },
      "sync" : {
        "total_ios" : 0,
        "lat_ns" : {"min" : 0, "max" : 0, "mean" : 0.000000, "stddev" : 0.000000, "N" : 0}
      },
      "job_runtime" : 2815,
      "usr_cpu" : 0.284192,
      "sys_cpu" : 21.705151,
      "ctx" : 3177,
      "majf" : 0,
      "minf" : 14,
      "iodepth_level" : {"1" : 100.000000, "2" : 0.000000, "4" : 0.000000, "8" : 0.000000,
                         "16" : 0.000000, "32" : 0.000000, ">=64" : 0.000000},
      "latency_depth" : 1,
      "latency_target" : 0,
      "latency_percentile" : 100.000000,
      "latency_window" : 0
    }
  ],
  "disk_util" : []
}
"""


def variant(direction: str, job: str, bw_bytes: int, iops: float, io_bytes: int,
            runtime_ms: int) -> str:
    """The fixture turned into another job's output (read or write section filled)."""
    document = json.loads(FIO_SEQ_WRITE)
    entry = document["jobs"][0]
    entry["jobname"] = job
    section = copy.deepcopy(entry["write"])
    section.update(io_bytes=io_bytes, io_kbytes=io_bytes // 1024, bw_bytes=bw_bytes,
                   bw=bw_bytes // 1024, iops=iops, runtime=runtime_ms)
    if direction == "read":
        entry["write"], entry["read"] = entry["read"], section
    else:
        entry["write"] = section
    return json.dumps(document, indent=2)


# --- fio's JSON ------------------------------------------------------------------------------

def test_the_write_job_figures_come_from_jobs_0_write():
    figures = iob.parse_fio(FIO_SEQ_WRITE, "write")
    assert figures["io_bytes"] == 256 * MIB
    assert figures["bw_bytes"] == 95325374
    assert figures["mib_s"] == pytest.approx(90.91, abs=0.01)
    assert figures["iops"] == pytest.approx(90.9)
    assert figures["runtime_s"] == 2.816
    assert figures["p50_us"] == pytest.approx(741.38, abs=0.01)
    assert figures["p99_us"] == pytest.approx(49020.93, abs=0.01)
    assert figures["mean_us"] == pytest.approx(1934.57, abs=0.01)
    assert figures["fio"] == "fio-3.33"


def test_a_job_without_io_in_that_direction_is_an_error():
    with pytest.raises(ValueError, match="did no read"):
        iob.parse_fio(FIO_SEQ_WRITE, "read")


def test_notes_before_the_json_are_skipped():
    text = ("note: both iodepth >= 1 and synchronous I/O engine are selected, queue depth "
            "will be capped at 1\n" + FIO_SEQ_WRITE)
    assert iob.parse_fio(text, "write")["bw_bytes"] == 95325374


def test_no_json_says_what_fio_printed():
    with pytest.raises(ValueError, match="fio: failed to open"):
        iob.fio_json("fio: failed to open /x: Permission denied\n")


def test_a_job_error_is_reported():
    document = json.loads(FIO_SEQ_WRITE)
    document["jobs"][0]["error"] = 28
    with pytest.raises(ValueError, match="error 28"):
        iob.parse_fio(json.dumps(document), "write")


def test_bandwidth_from_kib_when_bw_bytes_is_absent_and_old_clat_in_microseconds():
    document = json.loads(FIO_SEQ_WRITE)
    section = document["jobs"][0]["write"]
    del section["bw_bytes"]
    section["clat"] = {"mean": 1934.5, "percentile": {"50.000000": 741, "99.000000": 49020}}
    del section["clat_ns"]
    figures = iob.parse_fio(json.dumps(document), "write")
    assert figures["bw_bytes"] == 93091 * 1024
    assert figures["p50_us"] == 741 and figures["p99_us"] == 49020


def test_missing_percentiles_are_none():
    document = json.loads(FIO_SEQ_WRITE)
    del document["jobs"][0]["write"]["clat_ns"]["percentile"]
    figures = iob.parse_fio(json.dumps(document), "write")
    assert figures["p50_us"] is None and figures["p99_us"] is None
    assert figures["mean_us"] is not None


# --- the jobs --------------------------------------------------------------------------------

def test_job_command_lines():
    write = iob.fio_command(iob.JOB["seq_write"], "/mnt/client-1/f", 256 * MIB, 20)
    assert write[:2] == ["fio", "--name=seq_write"]
    for option in ("--filename=/mnt/client-1/f", "--rw=write", "--bs=1M",
                   f"--size={256 * MIB}", "--ioengine=psync", "--direct=0", "--invalidate=1",
                   "--runtime=20", "--output-format=json", "--end_fsync=1"):
        assert option in write
    assert "--time_based" not in write
    read = iob.fio_command(iob.JOB["seq_read"], "/f", MIB, 5)
    assert "--end_fsync=1" not in read and "--time_based" not in read
    rand_read = iob.fio_command(iob.JOB["rand_read"], "/f", MIB, 5)
    assert "--rw=randread" in rand_read and "--bs=4k" in rand_read
    assert "--time_based" in rand_read and "--end_fsync=1" not in rand_read
    rand_write = iob.fio_command(iob.JOB["rand_write"], "/f", MIB, 5)
    assert "--time_based" in rand_write and "--end_fsync=1" in rand_write
    assert [j.key for j in iob.JOBS] == ["seq_write", "seq_read", "rand_read", "rand_write"]
    assert [j.direction for j in iob.JOBS] == ["write", "read", "read", "write"]


def test_ratios_and_targets():
    jobs = {"seq_write": iob.pair({"mib_s": 45.0}, {"mib_s": 100.0}, "mib_s"),
            "seq_read": iob.pair({"mib_s": 90.0}, {"mib_s": 100.0}, "mib_s"),
            "rand_read": iob.pair({"iops": 300.0}, None, "iops")}
    assert jobs["seq_write"]["ratio"] == 0.45
    assert jobs["rand_read"]["ratio"] is None
    verdicts = {t["job"]: (t["ratio"], t["target"], t["met"]) for t in iob.targets(jobs)}
    assert verdicts == {"seq_write": (0.45, 0.5, False), "seq_read": (0.9, 0.8, True),
                        "rand_read": (None, 0.3, None)}


def test_aggregate_is_all_bytes_over_the_longest_runtime():
    per_client = {"client-1": {"io_bytes": 64 * MIB, "runtime_s": 2.0, "mib_s": 32.0},
                  "client-2": {"io_bytes": 64 * MIB, "runtime_s": 4.0, "mib_s": 16.0},
                  "client-3": {"error": "fio exited 1"}}
    together = iob.aggregate(per_client)
    assert together["clients_measured"] == 2
    assert together["aggregate_mib_s"] == 32.0  # 128 MiB / 4 s
    assert together["sum_of_client_mib_s"] == 48.0
    assert iob.aggregate({"client-1": {"error": "x"}})["aggregate_mib_s"] is None


# --- the metadata loop -----------------------------------------------------------------------

def test_the_metadata_loop_runs_and_its_output_parses(tmp_path):
    folder = tmp_path / "meta"
    done = subprocess.run([sys.executable, "-c", iob.METADATA_SCRIPT, str(folder), "50", "3"],
                          capture_output=True, text=True, check=True, timeout=60)
    figures = iob.parse_metadata(done.stdout)
    assert figures["files"] == 50 and figures["bytes"] == 3
    for phase in ("create", "stat", "unlink"):
        assert figures[f"{phase}_per_s"] > 0 and figures[f"{phase}_s"] >= 0
    assert not folder.exists()  # it removes what it made


def test_the_metadata_loop_refuses_an_existing_folder(tmp_path):
    done = subprocess.run([sys.executable, "-c", iob.METADATA_SCRIPT, str(tmp_path), "5", "0"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode != 0
    with pytest.raises(ValueError, match="no result"):
        iob.parse_metadata(done.stdout + done.stderr)


def test_metadata_rates():
    text = json.dumps({"files": 2000, "bytes": 0, "create_s": 2.0, "stat_s": 0.5,
                       "unlink_s": 0.0})
    figures = iob.parse_metadata("warming up\n" + text + "\n")
    assert figures["create_per_s"] == 1000.0 and figures["stat_per_s"] == 4000.0
    assert figures["unlink_per_s"] is None


# --- the command line ------------------------------------------------------------------------

def test_defaults_and_limits():
    args = iob.parse_args([])
    assert args.size == 256 * MIB and args.runtime == 20 and args.files == 2000
    assert args.client == "client-1" and args.chunkserver == "chunkserver-1"
    assert args.tier == "fast" and args.clients == ["client-1", "client-2", "client-3"]
    assert iob.parse_args(["--clients", "client-2,client-3"]).clients == ["client-2",
                                                                          "client-3"]
    for bad in (["--size", "1GiB"], ["--size", "100"], ["--runtime", "0"],
                ["--directory", "../x"], ["--directory", "/abs"], ["--files", "-1"]):
        with pytest.raises(SystemExit):
            iob.parse_args(bad)


# --- a whole run against a scripted lab ------------------------------------------------------

class ScriptedLab(iob.Lab):
    """The lab's containers as canned answers: fio is twice as fast on the disk as through
    FUSE, the metadata loop answers fixed times."""

    def __init__(self, fio_missing: str = "", failing_job: str = "") -> None:
        self.project, self.run = "mooseng", "io-test"
        self.lock = threading.Lock()
        self.fio_missing, self.failing_job = fio_missing, failing_job
        self.calls: list[tuple] = []
        self.removed: list[tuple[str, str]] = []

    def sh(self, service, script, args=(), timeout=120):
        self.calls.append((service, script.split()[0], tuple(args)))
        if "command -v fio" in script:
            return "missing\n" if service == self.fio_missing else "fio-3.33\n"
        if "MOOSENG_DATA_DIR" in script:
            return f"/var/lib/mooseng/tiers/{args[0]}\n"
        if script.startswith("df "):
            return f"{10 << 30}\n"
        if script.startswith("mfsgetsclass"):
            return f"{args[0]}: 2\n"
        if "python3" in script:
            fast = service.startswith("chunkserver")
            return json.dumps({"files": int(args[2]), "bytes": 0,
                               "create_s": 0.1 if fast else 2.0, "stat_s": 0.05,
                               "unlink_s": 0.1 if fast else 1.0}) + "\n"
        return ""

    def fio(self, service, side, job, path, size, runtime):
        self.calls.append((service, "fio", job.key, path))
        if job.key == self.failing_job:
            raise RuntimeError(f"fio {job.key} on {path} in {service} exited 1: Input/output "
                               "error")
        scale = 2 if service.startswith("chunkserver") else 1
        text = variant(job.direction, job.key, 50 * MIB * scale, 500.0 * scale, size,
                       int(size / (50 * MIB * scale) * 1000))
        return iob.parse_fio(text, job.direction)

    def stop_and_remove(self, service, folder):
        self.removed.append((service, folder))


def test_a_run_measures_every_part_and_removes_its_folders():
    lab = ScriptedLab()
    args = iob.parse_args(["--size", "16MiB", "--runtime", "3", "--files", "100"])
    result = iob.run(lab, args, "/mnt/client-1")
    assert result["errors"] == []
    assert result["fuse_dir"] == "/mnt/client-1/bench-io/io-test/client-1"
    assert result["disk_dir"] == "/var/lib/mooseng/tiers/fast/.mooseng-bench-io-test"
    assert result["storage_class"] == "2"
    for key in ("seq_write", "seq_read", "rand_read", "rand_write"):
        assert result["jobs"][key]["ratio"] == 0.5, key
    assert result["jobs"]["seq_write"]["compared"] == "mib_s"
    assert result["jobs"]["rand_read"]["compared"] == "iops"
    assert {t["job"]: t["met"] for t in result["targets"]} == {
        "seq_write": True, "seq_read": False, "rand_read": True}
    assert result["metadata"]["fuse"]["create_per_s"] == 50.0
    assert result["metadata"]["ratios"]["create"] == 0.05
    together = result["concurrent"]
    assert together["clients"] == ["client-1", "client-2", "client-3"]
    assert together["seq_write"]["clients_measured"] == 3
    assert together["seq_read"]["aggregate_mib_s"] == 150.0
    # the jobs ran through FUSE then on the disk, in the documented order
    singles = [c for c in lab.calls if c[1] == "fio" and "concurrent" not in c[3]]
    assert [(c[0], c[2]) for c in singles] == [
        (s, j) for j in ("seq_write", "seq_read", "rand_read", "rand_write")
        for s in ("client-1", "chunkserver-1")]
    assert ("client-2", "/mnt/client-1/bench-io/io-test/client-2") in lab.removed
    assert lab.removed[-2:] == [("client-1", "/mnt/client-1/bench-io/io-test"),
                                ("chunkserver-1", result["disk_dir"])]


def test_a_failing_part_is_recorded_the_rest_still_runs_and_everything_is_removed():
    lab = ScriptedLab(failing_job="rand_read")
    args = iob.parse_args(["--size", "16MiB", "--runtime", "3", "--no-concurrent"])
    result = iob.run(lab, args, "/mnt/client-1")
    assert len(result["errors"]) == 1 and result["errors"][0].startswith("fio jobs: fio "
                                                                          "rand_read")
    assert "seq_read" in result["jobs"] and "rand_read" not in result["jobs"]
    assert result["metadata"]["direct"]["files"] == 2000
    assert "concurrent" not in result
    assert [s for s, _ in lab.removed] == ["client-1", "chunkserver-1"]


def test_no_fio_in_the_image_stops_before_anything_is_written():
    lab = ScriptedLab(fio_missing="chunkserver-1")
    args = iob.parse_args(["--no-concurrent"])
    with pytest.raises(RuntimeError, match="chunkserver-1 has no fio.*make up"):
        iob.run(lab, args, "/mnt/client-1")
    assert lab.removed == [] and not [c for c in lab.calls if c[1] in ("fio", "mkdir")]
