"""In-container workload runner: ``python3 -m chaosmoose.workload.runner <command> ...``.

Standard library only and self-contained (client containers have no requests/docker/
chaoslib): the host copies this very file to ``/tmp/chaosmoose/runner.py`` in each client
and runs it there, so the runner always matches the host's chaosmoose version.

Commands:

- ``run``: write checksummed files and append checksummed records through this client's
  mount until SIGTERM or ``--max-seconds``. Every operation is recorded in a local
  JSON-lines history (fsync'ed) as ``invoke`` then ``ok``, ``fail`` or ``info``. ``info``
  means the outcome is unknown (a timeout, or an error after data was handed to the file
  system); ``fail`` means the operation certainly did not take effect. An operation that
  timed out but completes later gets an ``info`` record with ``late_outcome``.
- ``stop``: SIGTERM the runner recorded in ``--state`` and wait for it.
- ``digest``: read back every file and record under ``--data`` and print their checksums.
- ``write-check``: write, fsync, read back and compare one small file.
- ``canary``: write or read a canary file.
- ``tamper``: delete or alter one file (to prove the checker catches it).

Every command prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

LOG_DIR = "logs"
FILE_DIR = "files"


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def record_sum(client: str, seq: int, data: str) -> str:
    """The checksum stored in an appended record."""
    return sha256(f"{client}:{seq}:{data}".encode())


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Phase(Exception):
    """An operation error, tagged with whether data may already have been handed over."""

    def __init__(self, error: BaseException, maybe_applied: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.maybe_applied = maybe_applied


def write_file(root: str, rel: str, payload: bytes) -> None:
    """Create ``root/rel`` with ``payload``, fsync and close it."""
    path = os.path.join(root, rel)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        raise Phase(exc, maybe_applied=False) from None
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        raise Phase(exc, maybe_applied=True) from None
    try:
        os.close(fd)
    except OSError as exc:
        raise Phase(exc, maybe_applied=True) from None


def append_record(root: str, client: str, line: bytes) -> None:
    """Append ``line`` to this client's log with O_APPEND, fsync and close."""
    path = os.path.join(root, LOG_DIR, f"{client}.log")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise Phase(exc, maybe_applied=False) from None
    try:
        os.write(fd, line)
        os.fsync(fd)
        os.close(fd)
    except OSError as exc:
        try:
            os.close(fd)
        except OSError:
            pass
        raise Phase(exc, maybe_applied=True) from None


class History:
    """The local JSON-lines history; each record is flushed and fsync'ed."""

    def __init__(self, path: str, client: str) -> None:
        self.client = client
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the runner
        self.lock = threading.Lock()

    def add(self, **record: Any) -> None:
        """Append one record stamped with time and client."""
        record = {"t": round(time.time(), 6), "client": self.client, **record}
        with self.lock:
            self.file.write(json.dumps(record, sort_keys=True) + "\n")
            self.file.flush()
            os.fsync(self.file.fileno())


class Runner:
    """The workload loop of one client."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = args.client
        self.root = args.data
        self.stop = threading.Event()
        os.makedirs(args.state, exist_ok=True)
        self.history = History(os.path.join(args.state, "history.jsonl"), self.client)

    def _attempt(self, func: Callable[[], None]) -> tuple[str, dict[str, Any]]:
        """Run one operation with a timeout; return (type, extra fields)."""
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                func()
                outcome["type"] = "ok"
            except Phase as exc:
                outcome["type"] = "info" if exc.maybe_applied else "fail"
                outcome["error"] = f"{exc.error.__class__.__name__}: {exc.error}"
            except BaseException as exc:  # noqa: BLE001 - recorded, never lost
                outcome["type"] = "info"
                outcome["error"] = f"{exc.__class__.__name__}: {exc}"

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        thread.join(self.args.op_timeout)
        if not thread.is_alive():
            return outcome["type"], {k: v for k, v in outcome.items() if k != "type"}
        self.pending = thread, outcome
        return "info", {"error": f"timeout after {self.args.op_timeout:g} s"}

    def _await_pending(self, op: dict[str, Any]) -> None:
        """After a timeout, wait for the stuck operation before the next one."""
        thread, outcome = self.pending
        while thread.is_alive() and not self.stop.is_set():
            thread.join(0.2)
        if not thread.is_alive():
            self.history.add(type="info", late=True, late_outcome=outcome.get("type"),
                             late_error=outcome.get("error"), **op)
        self.pending = None

    def _request_stop(self, *_: Any) -> None:
        """Signal handler: stop the loop after the running operation.

        The handler runs in the main thread, which may be inside ``self.stop.wait()`` holding
        the Event's (non-reentrant) lock; setting the Event right here could deadlock, so a
        short-lived thread sets it.
        """
        threading.Thread(target=self.stop.set, daemon=True).start()

    def _setup(self) -> None:
        for sub in (os.path.join(FILE_DIR, self.client), LOG_DIR):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)

    def run(self) -> int:
        """Loop until stopped; return the exit status."""
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        self.pending = None
        deadline = time.monotonic() + self.args.max_seconds
        self.history.add(type="start", f="workload", root=self.root, pid=os.getpid())
        kind, extra = self._attempt(self._setup)
        if kind != "ok":
            self.history.add(type="end", f="workload", error=extra.get("error"))
            return 2
        seq = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            seq += 1
            began = time.monotonic()
            if seq % 2:
                rel = f"{FILE_DIR}/{self.client}/{seq:08d}.dat"
                payload = os.urandom(self.args.size)
                op = {"f": "write-file", "seq": seq, "path": rel, "sha256": sha256(payload),
                      "size": len(payload)}
                func: Callable[[], None] = (
                    lambda rel=rel, payload=payload: write_file(self.root, rel, payload))
            else:
                data = os.urandom(16).hex()
                line = json.dumps({"client": self.client, "seq": seq, "data": data,
                                   "sum": record_sum(self.client, seq, data)}) + "\n"
                op = {"f": "append", "seq": seq, "data": data}
                func = (lambda line=line: append_record(self.root, self.client,
                                                        line.encode()))
            self.history.add(type="invoke", **op)
            kind, extra = self._attempt(func)
            self.history.add(type=kind, **op, **extra)
            if self.pending is not None:
                self._await_pending(op)
            self.stop.wait(max(0.0, self.args.interval - (time.monotonic() - began)))
        self.history.add(type="end", f="workload", stuck=self.pending is not None)
        return 0


def _read_pid(state: str) -> int | None:
    try:
        with open(os.path.join(state, "runner.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        return b"chaosmoose" in cmdline and b"run\x00" in cmdline
    except OSError:
        return False


def cmd_run(args: argparse.Namespace) -> int:
    """Run the workload (foreground; start it detached through docker exec)."""
    os.makedirs(args.state, exist_ok=True)
    pid_path = os.path.join(args.state, "runner.pid")
    with open(pid_path, "w") as f:
        f.write(str(os.getpid()))
    runner = Runner(args)
    code = runner.run()
    sys.stdout.flush()
    os._exit(code)  # stuck worker threads must not keep the process alive


def cmd_status(args: argparse.Namespace) -> int:
    """Say whether the runner of ``--state`` is alive."""
    pid = _read_pid(args.state)
    if pid is None:
        _print({"running": False, "pid": None})
        return 0
    _print({"running": _alive(pid), "pid": pid})
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """SIGTERM the runner, SIGKILL it after ``--timeout`` seconds."""
    pid = _read_pid(args.state)
    if pid is None:
        _print({"stopped": True, "how": "not started"})
        return 0
    if not _alive(pid):
        _print({"stopped": True, "how": "not running"})
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            _print({"stopped": True, "how": "terminated"})
            return 0
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _print({"stopped": True, "how": "killed"})
    return 0


def _with_timeout(seconds: float, func: Callable[[], dict[str, Any]]) -> int:
    """Run ``func`` in a forked worker; print its JSON, or an error after ``seconds``.

    Not in a thread: a close or fsync through a mount whose master is cut off waits in
    the kernel, uninterruptibly, for mfsmount (FUSE flush), and a process with such a
    thread cannot even exit, so ``docker exec`` would hang far past ``seconds`` (151 s
    measured for a 3 s write check). The worker has no hold on this process's output:
    when it is stuck, this process prints the error, exits on time and leaves it behind.
    """
    sys.stdout.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        os.close(read_fd)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        try:
            result = func()
        except BaseException as exc:  # noqa: BLE001 - reported as JSON
            result = {"error": f"{exc.__class__.__name__}: {exc}"}
        with os.fdopen(write_fd, "wb") as out:
            out.write(json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    answer = _read_until(read_fd, time.monotonic() + seconds)
    if answer is None:
        os.kill(pid, signal.SIGKILL)  # a worker waiting uninterruptibly dies only later
        _print({"error": f"timed out after {seconds:g} s (file system blocked?)"})
        os._exit(3)
    try:
        result = json.loads(answer) if answer else {"error": "the worker died without a result"}
    except ValueError:
        result = {"error": "the worker's result was cut short"}
    _print(result)
    os._exit(0 if "error" not in result else 1)


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Everything written to ``fd`` until its writer closed it, or None at ``deadline``."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


FILE_READ_TIMEOUT = 10.0  # s one file's read may block before the digest moves on
SLOW_READ = 1.0  # s: a completed file read that took longer counts in slow_reads


def read_whole(path: str, timeout: float = FILE_READ_TIMEOUT) -> bytes:
    """The bytes of ``path``; ``TimeoutError`` if reading blocks for more than ``timeout`` s.

    A read through a MooseFS mount blocks (mfsmount retries for minutes) on a chunk no
    chunkserver has, such as the chunk of a file creation that was never acknowledged. The
    read runs in a daemon thread that is left behind when it blocks: a read stuck in FUSE
    cannot be cancelled; the command's forked worker hands its result over before it exits
    (``_with_timeout``), so a stuck thread holds up nothing.
    """
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            with open(path, "rb") as f:
                result["data"] = f.read()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"read blocked for more than {timeout:g} s")
    if "error" in result:
        raise result["error"]
    return result["data"]


def _read_log(path: str, timeout: float) -> bytes:
    """A record log's bytes; a blocked read fails the digest (its records cannot be judged)."""
    try:
        return read_whole(path, timeout)
    except TimeoutError as exc:
        raise TimeoutError(f"{path}: {exc}") from None


def digest(root: str, file_timeout: float = FILE_READ_TIMEOUT) -> dict[str, Any]:
    """Checksums of every workload file and the validity of every appended record.

    A file whose read fails or blocks for more than ``file_timeout`` s gets an ``error``
    (its path is also listed in ``blocked`` when it blocked) and the digest goes on with
    the others: one unreadable file of an unacknowledged write must not hide the rest.
    ``slow_reads`` counts file reads that completed but took over a second, ``seconds``
    the whole digest.
    """
    began = time.monotonic()
    files: dict[str, Any] = {}
    blocked: list[str] = []
    slow = 0
    files_root = os.path.join(root, FILE_DIR)
    for client in sorted(os.listdir(files_root)) if os.path.isdir(files_root) else []:
        for name in sorted(os.listdir(os.path.join(files_root, client))):
            rel = f"{FILE_DIR}/{client}/{name}"
            read_began = time.monotonic()
            try:
                data = read_whole(os.path.join(root, rel), file_timeout)
                files[rel] = {"sha256": sha256(data), "size": len(data)}
                slow += time.monotonic() - read_began > SLOW_READ
            except (OSError, TimeoutError) as exc:
                files[rel] = {"error": f"{exc.__class__.__name__}: {exc}"}
                if isinstance(exc, TimeoutError):
                    blocked.append(rel)
    records: dict[str, dict[str, str]] = {}
    garbled = 0
    logs_root = os.path.join(root, LOG_DIR)
    for name in sorted(os.listdir(logs_root)) if os.path.isdir(logs_root) else []:
        for raw in _read_log(os.path.join(logs_root, name), file_timeout).splitlines():
            try:
                rec = json.loads(raw)
                client, seq, data = rec["client"], int(rec["seq"]), rec["data"]
            except (ValueError, KeyError, TypeError):
                garbled += 1
                continue
            ok = rec.get("sum") == record_sum(client, seq, data)
            seen = records.setdefault(client, {}).get(str(seq))
            if seen != "intact":  # a duplicate intact copy wins over a bad one
                records[client][str(seq)] = "intact" if ok else "corrupt"
    return {"files": files, "records": records, "garbled_lines": garbled, "blocked": blocked,
            "slow_reads": slow, "seconds": round(time.monotonic() - began, 2)}


def cmd_digest(args: argparse.Namespace) -> int:
    """Print the digest of ``--data``."""
    return _with_timeout(args.timeout, lambda: digest(args.data, args.file_timeout))


def cmd_write_check(args: argparse.Namespace) -> int:
    """Write, fsync, read back and compare one small file under ``--data``."""

    def check() -> dict[str, Any]:
        began = time.monotonic()
        directory = os.path.join(args.data, "write-checks")
        os.makedirs(directory, exist_ok=True)
        rel = os.path.join(directory, f"{args.client}-{time.time_ns()}.dat")
        payload = os.urandom(256)
        write_file("/", rel.lstrip("/"), payload)
        with open(rel, "rb") as f:
            back = f.read()
        os.unlink(rel)
        return {"ok": back == payload, "seconds": round(time.monotonic() - began, 3)}

    return _with_timeout(args.timeout, check)


def cmd_canary(args: argparse.Namespace) -> int:
    """Write (``--write``) or read the canary file ``--path``; print its checksum."""

    def canary() -> dict[str, Any]:
        if args.write:
            os.makedirs(os.path.dirname(args.path), exist_ok=True)
            payload = os.urandom(1024)
            tmp = f"{args.path}.tmp{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, args.path)
            return {"sha256": sha256(payload)}
        with open(args.path, "rb") as f:
            return {"sha256": sha256(f.read())}

    return _with_timeout(args.timeout, canary)


def cmd_tamper(args: argparse.Namespace) -> int:
    """Delete (``--mode delete``) or flip the first byte of (``--mode corrupt``) a file."""

    def tamper() -> dict[str, Any]:
        path = os.path.join(args.data, args.path)
        if args.mode == "delete":
            os.unlink(path)
        else:
            with open(path, "r+b") as f:
                first = f.read(1)
                f.seek(0)
                f.write(bytes([(first[0] if first else 0) ^ 0xFF]))
                f.flush()
                os.fsync(f.fileno())
        return {"tampered": args.path, "mode": args.mode}

    return _with_timeout(args.timeout, tamper)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python3 -m chaosmoose.workload.runner")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--client", required=True)
    run.add_argument("--data", required=True, help="workload folder on the mount")
    run.add_argument("--state", required=True, help="local folder for pid and history")
    run.add_argument("--interval", type=float, default=0.1)
    run.add_argument("--op-timeout", type=float, default=5.0)
    run.add_argument("--max-seconds", type=float, default=300.0)
    run.add_argument("--size", type=int, default=4096)
    run.set_defaults(func=cmd_run)
    for name, func in (("status", cmd_status), ("stop", cmd_stop)):
        s = sub.add_parser(name)
        s.add_argument("--state", required=True)
        s.add_argument("--timeout", type=float, default=10.0)
        s.set_defaults(func=func)
    d = sub.add_parser("digest")
    d.add_argument("--data", required=True)
    d.add_argument("--timeout", type=float, default=60.0)
    d.add_argument("--file-timeout", type=float, default=FILE_READ_TIMEOUT,
                   help="seconds one file's read may block before it counts as unreadable")
    d.set_defaults(func=cmd_digest)
    w = sub.add_parser("write-check")
    w.add_argument("--data", required=True)
    w.add_argument("--client", required=True)
    w.add_argument("--timeout", type=float, default=10.0)
    w.set_defaults(func=cmd_write_check)
    c = sub.add_parser("canary")
    c.add_argument("--path", required=True)
    c.add_argument("--write", action="store_true")
    c.add_argument("--timeout", type=float, default=10.0)
    c.set_defaults(func=cmd_canary)
    t = sub.add_parser("tamper")
    t.add_argument("--data", required=True)
    t.add_argument("--path", required=True)
    t.add_argument("--mode", choices=("delete", "corrupt"), default="delete")
    t.add_argument("--timeout", type=float, default=10.0)
    t.set_defaults(func=cmd_tamper)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
