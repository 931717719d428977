"""Host side of test data sets: generate through one client, keep the manifest in the run
directory, verify through any client. Shared by the activities and ``chaosmoose data``.

A data set lives in ``<mount>/<directory>`` on MooseFS (``directory`` is relative to the
client's mount, so every client sees the same folder); its manifest (every entry with size
and SHA-256) is ``<run dir>/datasets/<directory>/manifest.json`` on the host, and the last
verification's report ``verify.json`` next to it. Every argument is checked before the
cluster is touched; bad input raises ``SettingError`` (``chaosmoose data`` exits 2).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _docker, _settings
from chaosmoose._settings import Configuration, Secrets, SettingError
from chaosmoose.data import _stream, check, plan

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module

DATASETS_DIR = "datasets"
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "verify.json"
MANIFEST_VERSION = 1
FILE_KINDS = ("file", "sparse", "hardlink")

Progress = Callable[[dict[str, Any]], None] | None


def check_directory(directory: Any) -> str:
    """A folder relative to the mount: not empty, not the mount itself, no ``..``."""
    if not isinstance(directory, str):
        raise SettingError(f"directory={directory!r} is invalid; expected a folder relative "
                           "to the mount, such as data")
    parts = [p for p in directory.strip().strip("/").split("/") if p not in ("", ".")]
    if (not parts or directory.strip().startswith("/") or ".." in parts
            or any(p.strip() != p or "\\" in p for p in parts)):
        raise SettingError(f"directory={directory!r} is invalid; expected a folder relative "
                           "to the mount (not the mount itself, no '..'), such as data")
    return "/".join(parts)


def client_name(client: Any, configuration: Configuration, secrets: Secrets,
                default: str | None = None) -> str:
    """``client`` if it is configured; empty gives ``default`` or the first client."""
    clients = _settings.clients(configuration, secrets)
    if client in (None, ""):
        return default if default in clients else clients[0]
    if client not in clients:
        raise SettingError(f"client={client!r} is not a configured client; expected one of "
                           f"{', '.join(clients)}")
    return str(client)


def datasets_dir(configuration: Configuration, secrets: Secrets) -> Path:
    """Where this run's manifests live."""
    return _settings.run_dir(configuration, secrets) / DATASETS_DIR


def manifest_path(directory: str, configuration: Configuration, secrets: Secrets) -> Path:
    """The manifest of the data set in ``directory`` in this run directory."""
    return datasets_dir(configuration, secrets) / directory / MANIFEST_NAME


def known_datasets(configuration: Configuration, secrets: Secrets) -> list[str]:
    """The folders whose manifest this run directory holds."""
    root = datasets_dir(configuration, secrets)
    return sorted(str(p.parent.relative_to(root)) for p in root.rglob(MANIFEST_NAME))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def _target(client: str, directory: str, configuration: Configuration,
            secrets: Secrets) -> tuple[Any, str, str]:
    """(container, mount point, data set folder) of ``client``."""
    mount = _settings.mount_point(client, configuration, secrets)
    container = _docker.find_container(_settings.project(configuration, secrets), client)
    return container, mount, f"{mount}/{directory}"


# --- generate ----------------------------------------------------------------------------

def prepare(directory: Any, size: Any, files: Any, seed: Any, client: Any, replace: Any,
            configuration: Configuration, secrets: Secrets) -> dict[str, Any]:
    """Check every argument and build the plan, touching nothing; raise ``SettingError``."""
    folder = check_directory(directory)
    total = plan.parse_size(size)
    count = _settings.parse_int("files", files, minimum=1)
    number = _settings.parse_int("seed", seed, minimum=0)
    writer = client_name(client, configuration, secrets)
    again = _settings.parse_bool("replace", replace)
    layout = plan.make_plan(number, total, count)
    path = manifest_path(folder, configuration, secrets)
    if path.exists() and not again:
        raise SettingError(f"a data set {folder!r} was already generated in this run "
                           f"directory ({path}); expected another directory, or --replace (replace: "
                           "true) to write it again")
    return {"directory": folder, "client": writer, "replace": again, "plan": layout,
            "manifest": path}


def generate(directory: Any = "data", size: Any = "256MiB", files: Any = 200, seed: Any = 1,
             client: Any = "", replace: Any = False, configuration: Configuration = None,
             secrets: Secrets = None, progress: Progress = None) -> dict[str, Any]:
    """Write the data set through ``client`` and store its manifest; return a summary."""
    job = prepare(directory, size, files, seed, client, replace, configuration, secrets)
    layout, folder, writer = job["plan"], job["directory"], job["client"]
    container, mount, root = _target(writer, folder, configuration, secrets)
    plan_file = _stream.ship(container, layout)
    args = ["generate", "--plan", str(plan_file), "--root", root, "--mount", mount]
    if job["replace"]:
        args.append("--replace")
    seen: dict[str, dict[str, Any]] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "entry":
            seen[event["path"]] = {k: v for k, v in event.items() if k != "event"}
        elif event.get("event") == "progress" and progress is not None:
            progress(event)

    began = time.time()
    done = _stream.run(container, args, f"generating {folder!r}", on_event)
    missing = [e["path"] for e in layout["entries"] if e["path"] not in seen]
    if missing:
        raise ActivityFailed(f"generating {folder!r} in {container.name}: the generator "
                             f"reported {len(seen)} of {len(layout['entries'])} entries "
                             f"(first not reported: {missing[0]}); expected all")
    entries = [seen[e["path"]] for e in layout["entries"]]
    totals = plan.totals(entries)
    seconds = float(done.get("elapsed") or (time.time() - began))
    manifest = {"version": MANIFEST_VERSION, "directory": folder, "client": writer,
                "root": root, "seed": layout["seed"], "size": layout["size"],
                "files": layout["files"], "max_file_size": layout["max_file_size"],
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
                "seconds": round(seconds, 3), "totals": totals, "entries": entries}
    _write_json(job["manifest"], manifest)
    summary = {"directory": folder, "client": writer, "root": root,
               "manifest": str(job["manifest"]), "seed": layout["seed"],
               "entries": totals["entries"], "files": totals["files"], "dirs": totals["dir"],
               "bytes": totals["bytes"], "written_bytes": totals["written_bytes"],
               "seconds": round(seconds, 3),
               "mib_per_s": round(totals["bytes"] / plan.MIB / seconds, 1) if seconds else None}
    logger.info("data set %s: %d entries, %s written through %s in %.1f s; manifest %s",
                folder, totals["entries"], plan.format_size(totals["bytes"]), writer, seconds,
                job["manifest"])
    return summary


# --- verify ------------------------------------------------------------------------------

def find_manifest(directory: Any, manifest: Any, configuration: Configuration,
                  secrets: Secrets) -> Path:
    """The manifest to verify: ``manifest`` if given, else the run directory's for
    ``directory``. Raises ``SettingError`` saying where it looked."""
    if manifest not in (None, ""):
        path = Path(str(manifest))
        if path.is_dir():
            path = path / MANIFEST_NAME
        if not path.is_file():
            raise SettingError(f"no manifest at {path}; expected the manifest.json that "
                               "chaosmoose data generate wrote")
        return path
    folder = check_directory(directory if directory not in (None, "") else "data")
    path = manifest_path(folder, configuration, secrets)
    if not path.is_file():
        known = known_datasets(configuration, secrets)
        listed = (f"; this run directory has manifests for {', '.join(known)}" if known
                  else "; this run directory has no data set")
        raise SettingError(f"no manifest for data set {folder!r}: looked for {path}{listed}; "
                           "expected `chaosmoose data generate` first (same --run), or "
                           "--manifest PATH")
    return path


def load_manifest(path: Path) -> dict[str, Any]:
    """The manifest at ``path``, checked; ``SettingError`` when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingError(f"manifest {path} cannot be read: {exc}") from None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SettingError(f"manifest {path} is malformed: no list of entries; expected the "
                           "manifest.json that chaosmoose data generate wrote")
    for entry in entries:
        problem = _entry_problem(entry)
        if problem:
            raise SettingError(f"manifest {path} is malformed: {problem}")
    return data


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        return f"entry {entry!r} has no path"
    kind = entry.get("kind")
    if kind not in ("dir", "file", "sparse", "hardlink", "symlink"):
        return f"entry {entry['path']!r} has kind {kind!r}"
    if kind in FILE_KINDS and (not isinstance(entry.get("size"), int)
                               or not isinstance(entry.get("sha256"), str)):
        return f"entry {entry['path']!r} has no size or sha256"
    if kind in ("hardlink", "symlink") and not isinstance(entry.get("target"), str):
        return f"entry {entry['path']!r} has no target"
    return None


def reader_for(client: Any, writer: Any, configuration: Configuration,
               secrets: Secrets) -> str:
    """``client``, or by default the configured client after the one that wrote the set
    (reading through another client than the writer, whose cache may hold the data)."""
    clients = _settings.clients(configuration, secrets)
    default = clients[0]
    if writer in clients and len(clients) > 1:
        default = clients[(clients.index(writer) + 1) % len(clients)]
    return client_name(client, configuration, secrets, default)


def verify(directory: Any = "", client: Any = "", manifest: Any = "",
           file_timeout: Any = 120.0, configuration: Configuration = None,
           secrets: Secrets = None, progress: Progress = None) -> dict[str, Any]:
    """Re-read the data set through ``client``; return the classification (``check``).

    ``directory`` defaults to the manifest's. The report is also saved as ``verify.json``
    next to the manifest.
    """
    timeout = _settings.parse_float("file_timeout", file_timeout)
    if timeout <= 0:
        raise SettingError(f"file_timeout={file_timeout!r} is invalid; expected a number > 0")
    if directory not in (None, ""):
        directory = check_directory(directory)
    path = find_manifest(directory, manifest, configuration, secrets)
    data = load_manifest(path)
    folder = directory or check_directory(data.get("directory") or "data")
    reader = reader_for(client, data.get("client"), configuration, secrets)
    container, mount, root = _target(reader, folder, configuration, secrets)
    wanted = [{k: e[k] for k in ("path", "kind", "size", "target") if k in e}
              for e in data["entries"]]
    input_file = _stream.ship(container, {"entries": wanted})
    observations: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "entry":
            observations.append(event)
        elif event.get("event") == "progress" and progress is not None:
            progress(event)

    done = _stream.run(container, ["verify", "--manifest", str(input_file), "--root", root,
                                   "--mount", mount, "--file-timeout", f"{timeout:g}"],
                       f"verifying {folder!r}", on_event)
    report = check.classify(data["entries"], observations, int(done.get("unexpected") or 0),
                            done.get("unexpected_paths") or [])
    seconds = float(done.get("elapsed") or 0.0)
    read = int(done.get("bytes") or 0)
    report.update({"directory": folder, "client": reader, "root": root,
                   "manifest": str(path), "seed": data.get("seed"),
                   "written_by": data.get("client"), "bytes_read": read,
                   "seconds": round(seconds, 3),
                   "mib_per_s": round(read / plan.MIB / seconds, 1) if seconds else None,
                   "timed_out": int(done.get("timed_out") or 0),
                   "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    if not done.get("root_exists", True):
        report["note"] = f"{root} does not exist on {reader}"
    try:
        _write_json(path.parent / REPORT_NAME, report)
    except OSError as exc:
        logger.warning("could not save the verification report next to %s: %s", path, exc)
    logger.info("data set %s through %s: %d intact, %d missing, %d corrupt of %d entries",
                folder, reader, report["intact"], report["missing"], report["corrupt"],
                report["entries"])
    return report


def remove(directory: Any, client: Any = "", configuration: Configuration = None,
           secrets: Secrets = None) -> dict[str, Any]:
    """Delete the data set's folder on the mount (only one the generator wrote); the
    manifest stays."""
    folder = check_directory(directory)
    container, mount, root = _target(client_name(client, configuration, secrets), folder,
                                     configuration, secrets)
    _stream.ship(container)
    return _stream.run(container, ["remove", "--root", root, "--mount", mount],
                       f"removing {folder!r}", lambda _event: None)
