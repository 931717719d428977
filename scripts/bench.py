"""`make bench`: the lab's benchmarks against the running cluster, in one command.

    make bench                                          # idle, io, data, failover
    make bench BENCH_ARGS="--short"                     # one small round of each
    make bench BENCH_ARGS="--only io --only idle"       # some of them (or --only io,idle)
    make bench BENCH_ARGS="--with-replication"          # adds the chunkserver-loss benchmark
    .venv/bin/python scripts/bench.py --args "io=--size 64MiB --no-concurrent" --only io
    .venv/bin/python scripts/bench.py --dry-run --short  # the commands, nothing run

Needs the cluster up (``make up``); it never starts, stops or restarts it, except what a
benchmark does on purpose (the failover benchmark kills leaders, the replication benchmark
a chunkserver, and both start them again). Each benchmark is its own script, run here as a
subprocess from the repository root, in this order, and each can be run alone:

- ``idle``: ``scripts/idle_cost.py``: memory and CPU of every container over 60 s, first,
  while nothing else has touched the cluster (target: memory <= 1 GiB);
- ``io``: ``scripts/io_benchmark.py``: fio through client-1's FUSE mount against the same
  job on chunkserver-1's disk, metadata rates, all clients at once (targets: FUSE / disk
  >= 0.5 sequential write, >= 0.8 sequential read, >= 0.3 4 KiB random read);
- ``data``: ``scripts/data_benchmark.py --size 1GiB``: a data set written through one
  client and verified through another;
- ``failover``: ``scripts/failover_benchmark.py --kills 3``: kill -9 the leader, time the
  new leader and the clients' first writes (target: RTO p50 <= 3 s), count lost writes;
- ``replication`` (only with ``--with-replication`` or ``--only replication``; minutes,
  and it kills chunkserver-3): ``scripts/replication_benchmark.py --size 1GiB``
  (target: no chunk below goal within 60 s).

``--short`` runs one small round of each (``SHORT`` below; minutes instead of a quarter of
an hour); ``--args NAME=ARGS`` appends arguments to one benchmark's command line (later
ones win, argparse's way). Progress: a line per benchmark and every line the benchmark
prints on stderr, prefixed with its name.

Writes ``<--out-dir>/results-<UTC time>.json`` (default ``bench/``): the machine (cores,
memory, kernel, Docker version, git commit), per benchmark its status (``ok``; ``partial``:
it exited non-zero but left its result, e.g. the failover benchmark's verdict on lost
writes; ``failed``: no result, with the error), exit code, seconds, command and result,
then every figure with its baseline, ratio, target and whether it was met; next to it
``results-<time>.md`` (the same as tables) and ``results-<time>.svg`` (a bar per figure:
its ratio to the baseline measured in the same run, or its value against its target).
They are rewritten after each benchmark, so an interrupted suite keeps what it measured.
Targets are reported, never asserted.

Exit status: 0 when at least one benchmark gave a result, 1 when every benchmark failed,
2 when the cluster is not reachable (Docker, the project's containers, a master agent) or
on bad arguments, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchstats

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
RUN_NAME = re.compile(r"\brun=(\S+)")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of the suite: its script, arguments (normal and ``--short``), and where
    its result comes from: the file given with ``out_flag``, or (``out_flag`` None) the
    ``runs/<run>/benchmark.json`` named by the ``run=`` in its progress lines."""

    name: str
    script: str
    about: str
    args: tuple[str, ...] = ()
    short: tuple[str, ...] = ()
    out_flag: str | None = "--out"
    optional: bool = False


BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("idle", "idle_cost.py", "memory and CPU of every container, idle",
              short=("--seconds", "10", "--interval", "2")),
    Benchmark("io", "io_benchmark.py", "fio and metadata through FUSE against the disk",
              short=("--size", "16MiB", "--runtime", "3", "--files", "200")),
    Benchmark("data", "data_benchmark.py", "data set written through one client, verified "
              "through another", args=("--size", "1GiB"),
              short=("--size", "32MiB", "--files", "20"), out_flag=None),
    Benchmark("failover", "failover_benchmark.py", "kill -9 the leader: new leader, first "
              "writes, lost writes", args=("--kills", "3"), short=("--kills", "1"),
              out_flag=None),
    Benchmark("replication", "replication_benchmark.py", "kill a chunkserver: "
              "re-replication and rebalance",
              args=("--size", "1GiB", "--rebalance-timeout", "180", "--hold", "5"),
              short=("--size", "64MiB", "--files", "20", "--rebalance-timeout", "120",
                     "--hold", "5"), optional=True),
)}
ORDER = tuple(BENCHMARKS)


class ResultMissing(Exception):
    """A benchmark left no result to read."""


# --------------------------------------------------------------------------- choosing


def select(only: Sequence[str], with_replication: bool) -> list[str]:
    """The benchmarks to run, in suite order: those named by ``--only`` (each value may be
    a comma-separated list), else every one that is not optional (plus replication with
    ``with_replication``). ValueError naming the unknown ones."""
    named = [n.strip() for value in only for n in value.split(",") if n.strip()]
    unknown = [n for n in named if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark {', '.join(unknown)}; expected one of "
                         f"{', '.join(ORDER)}")
    if named:
        return [n for n in ORDER if n in named]
    return [n for n in ORDER if not BENCHMARKS[n].optional
            or (n == "replication" and with_replication)]


def parse_extra(values: Sequence[str]) -> dict[str, list[str]]:
    """``--args NAME=ARGS`` values as ``{name: [arg, ...]}`` (shell words; repeated names
    add up). ValueError on an unknown name or a missing ``=``."""
    extra: dict[str, list[str]] = {}
    for value in values:
        name, sep, words = value.partition("=")
        name = name.strip()
        if not sep or name not in BENCHMARKS:
            raise ValueError(f"--args {value!r} is invalid; expected NAME=ARGS with NAME one "
                             f"of {', '.join(ORDER)}")
        extra.setdefault(name, []).extend(shlex.split(words))
    return extra


def command(spec: Benchmark, short: bool, extra: Sequence[str] = (),
            out: Path | None = None, python: str = sys.executable) -> list[str]:
    """The benchmark's command line: its arguments (short ones with ``short``), the extra
    ones, and its result file."""
    argv = [python, str(SCRIPTS / spec.script), *(spec.short if short else spec.args), *extra]
    if spec.out_flag and out is not None:
        argv += [spec.out_flag, str(out)]
    return argv


def shown(argv: Sequence[str]) -> str:
    """A command line as the user would type it from the repository root."""
    words = list(argv)
    if words and words[0] == sys.executable:
        words[0] = ".venv/bin/python"
    if len(words) > 1 and words[1].startswith(str(REPO) + os.sep):
        words[1] = os.path.relpath(words[1], REPO)
    return " ".join(shlex.quote(w) for w in words)


# --------------------------------------------------------------------------- results


def run_name(lines: Sequence[str]) -> str | None:
    """The first ``run=NAME`` in a benchmark's progress lines."""
    for line in lines:
        found = RUN_NAME.search(line)
        if found:
            return found.group(1)
    return None


def last_json(text: str) -> dict[str, Any] | None:
    """The last JSON object in ``text`` that starts a line (a script's printed result)."""
    decoder = json.JSONDecoder()
    found = None
    for match in re.finditer(r"(?m)^\{", text):
        try:
            document, _ = decoder.raw_decode(text[match.start():])
        except ValueError:
            continue
        if isinstance(document, dict):
            found = document
    return found


def slim(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """What the suite's JSON keeps of a result: all of it, except the replication
    benchmark's every-poll timelines (its own report, named in ``source``, keeps those)."""
    if name != "replication":
        return result
    rounds = [{k: v for k, v in r.items() if k != "timeline"} for r in result.get("rounds", [])
              if isinstance(r, dict)]
    return {**result, "rounds": rounds}


def read_result(spec: Benchmark, out: Path | None, stdout: str, lines: Sequence[str],
                repo: Path = REPO) -> tuple[dict[str, Any], str]:
    """The benchmark's result and where it was read: its ``--out`` file, its run
    directory's ``benchmark.json``, or the last JSON object it printed. ResultMissing
    when there is none."""
    if spec.out_flag and out is not None and out.is_file():
        try:
            return json.loads(out.read_text()), str(out)
        except ValueError as exc:
            raise ResultMissing(f"{out} is not JSON: {exc}") from None
    name = run_name(lines)
    if name:
        path = repo / "runs" / name / "benchmark.json"
        if path.is_file():
            return json.loads(path.read_text()), str(path.relative_to(repo))
    printed = last_json(stdout)
    if printed is not None:
        return printed, "stdout"
    last = next((line for line in reversed(lines) if line.strip()), "no output")
    raise ResultMissing(f"no result; its last line: {last.strip()[:300]}")


def record_of(code: int | None, seconds: float, argv: Sequence[str],
              result: dict[str, Any] | None, source: str | None, error: str | None,
              lines: Sequence[str]) -> dict[str, Any]:
    """A benchmark's record in the suite's JSON."""
    if result is None:
        status = "failed"
    else:
        status = "ok" if code == 0 else "partial"
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    note = None
    if status == "partial":
        note = f"exited {code}; its figures are kept. Last line: {last[:200]}"
    return {"status": status, "exit_code": code, "seconds": round(seconds, 1),
            "command": shown(argv), "source": source, "error": error, "note": note,
            "result": result}


def exit_status(records: Mapping[str, Mapping[str, Any]]) -> int:
    """1 when every benchmark that ran failed (or none ran), else 0."""
    if not records or all(r.get("status") == "failed" for r in records.values()):
        return 1
    return 0


# --------------------------------------------------------------------------- running


def log(message: str) -> None:
    """Progress on stderr, one line per event."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def relay(line: str) -> None:
    """A benchmark's own progress line (it carries its own time) on stderr."""
    print(line, file=sys.stderr, flush=True)


def run_one(spec: Benchmark, argv: Sequence[str], out: Path | None, timeout: float,
            echo: Callable[[str], None] = relay) -> dict[str, Any]:
    """Run one benchmark, echoing its stderr; its record (``failed`` with the error when it
    left no result). KeyboardInterrupt propagates once the benchmark has stopped."""
    started = time.monotonic()
    lines: list[str] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # stdout to a file: a pipe could fill up while we read stderr
    with open(os.devnull, "rb") as stdin, tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(list(argv), cwd=REPO, stdin=stdin, stdout=stdout,
                                   stderr=subprocess.PIPE, text=True, errors="replace",
                                   env=env)
        watchdog = threading.Timer(timeout, _stop, args=(process, spec.name, timeout))
        watchdog.daemon = True
        watchdog.start()
        try:
            assert process.stderr is not None
            for line in process.stderr:
                line = line.rstrip("\n")
                lines.append(line)
                echo(f"  {spec.name} | {line}")
            code = process.wait()
        except KeyboardInterrupt:
            log(f"{spec.name}: interrupted; waiting for it to clean up (up to 120 s)")
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
            raise
        finally:
            watchdog.cancel()
        stdout.seek(0)
        printed = stdout.read().decode("utf-8", "replace")
    seconds = time.monotonic() - started
    try:
        result, source = read_result(spec, out, printed, lines)
    except (ResultMissing, OSError, ValueError) as exc:
        return record_of(code, seconds, argv, None, None, f"exit {code}: {exc}", lines)
    return record_of(code, seconds, argv, slim(spec.name, result), source, None, lines)


def _stop(process: subprocess.Popen, name: str, timeout: float) -> None:
    """The watchdog: a benchmark that outlived ``timeout`` gets SIGINT (its own cleanup
    runs), then SIGKILL after 120 s."""
    log(f"{name}: still running after {timeout:g} s; interrupting it")
    process.send_signal(signal.SIGINT)
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.kill()


# --------------------------------------------------------------------------- the machine


def git(*args: str) -> str | None:
    """``git ARGS`` in the repository, its stripped output (None when git fails)."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def memory_total(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """The machine's memory in bytes (``MemTotal``)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def machine_facts(docker_client: Any = None) -> dict[str, Any]:
    """Cores, memory, kernel, OS, Python, load, Docker (engine version, API, storage
    driver, cgroup version) and the git commit (with ``dirty`` for uncommitted changes)."""
    facts: dict[str, Any] = {
        "cores": os.cpu_count(), "memory_bytes": memory_total(),
        "kernel": platform.release(), "os": platform.platform(),
        "python": platform.python_version(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "docker": None,
        "git": {"commit": git("rev-parse", "HEAD"),
                "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}}
    if docker_client is not None:
        try:
            version = docker_client.version()
            info = docker_client.info()
            facts["docker"] = {"version": version.get("Version"),
                               "api": version.get("ApiVersion"),
                               "cores": info.get("NCPU"), "memory_bytes": info.get("MemTotal"),
                               "storage_driver": info.get("Driver"),
                               "cgroup": info.get("CgroupVersion")}
        except Exception as exc:  # noqa: BLE001 - a fact we could not get is said so
            facts["docker"] = {"error": str(exc)[:200]}
    return facts


def cluster_problem(docker_client: Any, project: str, masters: Mapping[str, str],
                    get: Callable[[str], int]) -> str | None:
    """Why the cluster is not reachable (None when it is): Docker answers, the project has
    running containers, and a master agent answers ``/health`` with 200."""
    try:
        docker_client.ping()
        running = docker_client.containers.list(
            filters={"label": f"com.docker.compose.project={project}"})
    except Exception as exc:  # noqa: BLE001 - said in one sentence
        return f"Docker API unreachable: {str(exc).splitlines()[0][:200]}"
    if not running:
        return (f"no running container of compose project {project}; expected the cluster "
                "(make up)")
    healthy = [name for name, url in masters.items() if get(f"{url}/health") == 200]
    if not healthy:
        return (f"no master agent answers /health with 200 ({', '.join(masters.values())}); "
                "expected a healthy cluster (make up, make status)")
    return None


def http_status(url: str) -> int:
    """HTTP status of GET ``url``, 0 when unreachable."""
    import requests

    try:
        return requests.get(url, timeout=3).status_code
    except requests.RequestException:
        return 0


# --------------------------------------------------------------------------- output


def write_outputs(out_dir: Path, run: str, document: Mapping[str, Any]) -> dict[str, Path]:
    """``<run>.json``, ``<run>.md`` and ``<run>.svg`` in ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"{run}.{kind}" for kind in ("json", "md", "svg")}
    paths["json"].write_text(json.dumps(document, indent=2) + "\n")
    paths["md"].write_text(benchstats.markdown(document, paths["svg"].name))
    title = f"MooseNG benchmarks {run.removeprefix('results-')}: each figure against its " \
            "baseline or target"
    paths["svg"].write_text(benchstats.svg_chart(benchstats.figures_from_results(document),
                                                 title) + "\n")
    return paths


def tidy(work: Path) -> None:
    """Remove the benchmarks' result files that the suite's JSON holds in full (all but the
    replication report, whose every-poll timelines it leaves out), then ``work`` if empty."""
    if not work.is_dir():
        return
    for path in work.glob("*.json"):
        if path.stem != "replication":
            path.unlink()
    if not any(work.iterdir()):
        work.rmdir()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; exits 2 on a bad value."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help=f"run only these ({', '.join(ORDER)}); repeat or comma-separate")
    p.add_argument("--short", action="store_true",
                   help="one small round of each (for the cluster test)")
    p.add_argument("--with-replication", action="store_true",
                   help="also run the replication benchmark (kills chunkserver-3; minutes)")
    p.add_argument("--args", action="append", default=[], metavar="NAME=ARGS",
                   help="extra arguments for one benchmark, e.g. 'io=--size 64MiB'")
    p.add_argument("--out-dir", default=str(REPO / "bench"),
                   help="where the results go (default bench/)")
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="seconds one benchmark may run before it is interrupted (default 3600)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the commands, run nothing")
    args = p.parse_args(argv)
    try:
        args.selected = select(args.only, args.with_replication)
        args.extra = parse_extra(args.args)
    except ValueError as exc:
        p.error(str(exc))
    if args.timeout <= 0:
        p.error("--timeout must be > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite; see the module for the exit status."""
    args = parse_args(argv)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run = f"results-{stamp}"
    out_dir = Path(args.out_dir)
    work = out_dir / run  # the benchmarks' own result files
    commands = {name: command(BENCHMARKS[name], args.short, args.extra.get(name, ()),
                              work / f"{name}.json") for name in args.selected}
    if args.dry_run:
        for name, argv_ in commands.items():
            print(f"{name}: {shown(argv_)}")
        return 0
    import docker

    from chaosmoose import _settings

    try:
        client = docker.from_env(timeout=30)
        problem = cluster_problem(client, _settings.project(None, None),
                                  _settings.masters(None, None), http_status)
    except Exception as exc:  # noqa: BLE001 - Docker or the settings: the cluster is not there
        client, problem = None, str(exc).splitlines()[0] if str(exc) else repr(exc)
    if problem:
        log(f"cannot run the benchmarks: {problem}")
        return 2
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    options = {"selected": args.selected, "short": args.short,
               "with_replication": args.with_replication, "args": args.extra}
    suite_command = "scripts/bench.py " + " ".join(shlex.quote(a) for a in
                                                   (sys.argv[1:] if argv is None else argv))
    machine = machine_facts(client)
    log(f"{run}: {', '.join(args.selected)}{' (short)' if args.short else ''}; "
        f"{benchstats.machine_line(machine)}")
    records: dict[str, dict[str, Any]] = {}
    paths: dict[str, Path] = {}
    code = 0

    def save() -> None:
        nonlocal paths
        ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        document = benchstats.results(run, started, ended, suite_command, options, machine,
                                      records)
        paths = write_outputs(out_dir, run, document)

    try:
        for number, name in enumerate(args.selected, 1):
            spec = BENCHMARKS[name]
            work.mkdir(parents=True, exist_ok=True)
            log(f"==> [{number}/{len(args.selected)}] {name}: {spec.about}")
            log(f"    $ {shown(commands[name])}")
            record = run_one(spec, commands[name], work / f"{name}.json", args.timeout)
            records[name] = record
            verdict = record["status"] + (f" ({record['error']})" if record["error"] else "")
            log(f"==> {name}: {verdict} after {record['seconds']:g} s")
            save()
    except KeyboardInterrupt:
        log("interrupted; writing what was measured")
        if name not in records:
            records[name] = {"status": "failed", "exit_code": None, "seconds": None,
                             "command": shown(commands[name]), "source": None,
                             "error": "interrupted", "note": None, "result": None}
        code = 130
    save()
    tidy(work)
    print(benchstats.table(benchstats.figures_from_results(json.loads(
        paths["json"].read_text()))))
    for kind, path in paths.items():
        log(f"{kind}: {path}")
    return code or exit_status(records)


if __name__ == "__main__":
    sys.exit(main())
