"""A run directory as complete evidence: what the report needs from the lab, stored with it.

The report of a run shows Prometheus series and collected log lines of the run's window
(``collect.SERIES``, ``collect.MARGIN_S``). Queried live, they are gone once Prometheus or
the log collector is (a later, offline or elsewhere re-render). So at the end of a run the
strict control stores them here, and ``chaosmoose report RUN --store`` does it for an
existing run while the sources still hold it::

    <run dir>/evidence/manifest.json     what was stored, when, from where, counts, and one
                                         error per section when its source was unreachable
    <run dir>/evidence/series.json[.gz]  {"format", "window", "series": [{"title", "query",
                                         "points": [[unix time, value], ...]}]}
    <run dir>/evidence/logs.jsonl[.gz]   one collected line per line: {"time", "service",
                                         "container", "message"}, oldest first

A file larger than ``GZIP_ABOVE`` bytes is gzip-compressed (``.gz``); the manifest names the
file of each section. The series cover the run's window from ``MARGIN_S`` before its start
to ``MARGIN_S`` after its end, cut at the time they were stored (Prometheus has nothing
later; asked anyway it repeats the last sample). The logs are every collected line of that
window, of every service, up to ``evidence_log_lines`` lines; beyond that, every line
matching the report's default pattern (``collect.LOG_PATTERN``) and the newest others (the
manifest counts what was dropped). The clients' workload histories are already in the run
directory (``stop_workload`` copies them); the manifest lists them and names a client whose
history is missing.

Storing is best effort: a source that cannot be read is recorded as that section's error
and never raised. ``fill_run`` gives a loaded run its series and logs: stored when stored
completely, else live (unless offline), else an error saying why there is no data.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _settings
from chaosmoose._settings import Configuration, Secrets
from chaosmoose.report import collect

__all__: list[str] = []  # not an activity module

logger = logging.getLogger("chaostoolkit")

FOLDER = "evidence"
MANIFEST = "manifest.json"
SERIES_FILE = "series.json"
LOGS_FILE = "logs.jsonl"
FORMAT = 1
GZIP_ABOVE = 64 * 1024  # bytes of JSON text above which a file is stored gzip-compressed
LOG_LIMIT = 200  # log lines a report shows (as ``collect.add_logs``)
SAME_RUN_TOLERANCE_S = 0.001

QueryRange = Callable[[str, float, float, float], list]
ReadLogs = Callable[[Any, Any, Any, Any, int], list]


class EvidenceError(ActivityFailed):
    """A stored evidence file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class Sources:
    """Where live data comes from, as the manifest and the report's messages name them."""

    prometheus: str
    logs: str


# --- the lab's sources ------------------------------------------------------------------

def lab_sources(configuration: Configuration = None, secrets: Secrets = None) -> Sources:
    """The configured Prometheus URL and log collector, named without touching either."""
    from chaosmoose.logs._collector import LOG_FILE

    url = (_settings.get_str("prometheus_url", configuration, secrets) or "").rstrip("/")
    service = _settings.get_str("logs_service", configuration, secrets) or "logs"
    project = _settings.get_str("docker_project", configuration, secrets) or "?"
    return Sources(prometheus=url or "(no prometheus_url)",
                   logs=f"{LOG_FILE} of the {service!r} service of compose project {project!r}")


def lab_readers(configuration: Configuration = None,
                secrets: Secrets = None) -> tuple[QueryRange, ReadLogs]:
    """``(query_range, read)`` against the configured Prometheus and log collector."""
    from chaosmoose.logs import _collector
    from chaosmoose.monitoring import _prometheus

    def read(since: Any, until: Any, services: Any, pattern: Any, limit: int) -> list:
        return _collector.read_window(since, until, services, pattern, limit,
                                      configuration, secrets)

    return partial(_prometheus.range_query, configuration=configuration, secrets=secrets), read


def store_from_lab(run_dir: Path, start: float, end: float, stored_by: str,
                   configuration: Configuration = None, secrets: Secrets = None,
                   keep_complete: bool = False) -> dict[str, Any]:
    """``store`` with the configured Prometheus and log collector; returns the manifest."""
    query_range, read = lab_readers(configuration, secrets)
    return store(run_dir, start, end, query_range, read, lab_sources(configuration, secrets),
                 stored_by, max_log_lines=_settings.evidence_log_lines(configuration, secrets),
                 keep_complete=keep_complete)


# --- files ------------------------------------------------------------------------------

def folder_of(run_dir: Path) -> Path:
    """The evidence folder of a run directory."""
    return Path(run_dir) / FOLDER


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a reader never sees half."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_text(folder: Path, name: str, text: str, gzip_above: int) -> str:
    """Write ``text`` as ``name``, or gzip-compressed as ``name.gz`` when it is larger than
    ``gzip_above`` bytes; remove the other form. Returns the file name written."""
    data = text.encode()
    chosen = f"{name}.gz" if len(data) > gzip_above else name
    if chosen.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    _write_atomic(folder / chosen, data)
    other = name if chosen != name else f"{name}.gz"
    (folder / other).unlink(missing_ok=True)
    return chosen


def _read_text(path: Path) -> str:
    """The text of an evidence file (gunzipped when its name ends with .gz)."""
    try:
        data = path.read_bytes()
        return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()
    except FileNotFoundError:
        raise EvidenceError(f"{path} is missing; expected it as the manifest says") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"{path} is unreadable: {exc}") from None


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    """``evidence/manifest.json`` of a run directory; None when there is none.

    Raises EvidenceError when it exists but is not a JSON object.
    """
    path = folder_of(run_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(_read_text(path))
    except ValueError as exc:
        raise EvidenceError(f"{path} is not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise EvidenceError(f"{path} holds a {type(manifest).__name__}; expected an object")
    return manifest


# --- storing ----------------------------------------------------------------------------

def store_window(start: float, end: float, now: float) -> dict[str, Any]:
    """The window stored for a run from ``start`` to ``end``: ``MARGIN_S`` either side, cut
    at ``now`` (later points do not exist yet)."""
    low, high = start - collect.MARGIN_S, end + collect.MARGIN_S
    cut = now < high
    high = max(low + 1.0, min(high, now))
    return {"start": low, "end": high, "margin_s": collect.MARGIN_S, "cut_at_store_time": cut}


def _describe(exc: Exception) -> str:
    """An error as the manifest records it: our own errors say what failed already."""
    if isinstance(exc, ActivityFailed):
        return str(exc)
    return f"{exc.__class__.__name__}: {exc}"


def _store_series(folder: Path, window: dict[str, Any], query_range: QueryRange,
                  source: str, gzip_above: int) -> dict[str, Any]:
    """Query every report series over the window and write them; the manifest entry."""
    entry: dict[str, Any] = {"source": source, "window": window, "file": None, "series": 0,
                             "points": 0, "error": None}
    try:
        found, error = collect.query_series(query_range, window["start"], window["end"])
        entry["error"] = error
        body = {"format": FORMAT, "window": window,
                "series": [{**s, "points": [list(p) for p in s["points"]]} for s in found]}
        entry["file"] = _write_text(folder, SERIES_FILE, json.dumps(body), gzip_above)
        entry["series"] = len(found)
        entry["points"] = sum(len(s["points"]) for s in found)
    except Exception as exc:  # noqa: BLE001 - best effort: record, never fail the run
        entry["error"] = _describe(exc)
    return entry


def _log_record(line: Any) -> dict[str, str]:
    """A collected line (``LogLine`` or its dict form) as stored."""
    record = line if isinstance(line, dict) else line.as_dict()
    container = record.get("container", getattr(line, "container", ""))
    return {"time": str(record.get("time", "")), "service": str(record.get("service", "")),
            "container": str(container or ""), "message": str(record.get("message", ""))}


def bound_lines(records: list[dict[str, str]], max_lines: int,
                pattern: str = collect.LOG_PATTERN) -> tuple[list[dict[str, str]], int]:
    """At most ``max_lines`` of ``records``, in their order: all when they fit; else every
    line matching ``pattern`` (the newest ``max_lines`` of them if even those do not fit)
    and the newest others. Returns (kept, how many lines match ``pattern``)."""
    regex = re.compile(pattern)
    matching = [i for i, r in enumerate(records) if regex.search(r["message"])]
    if len(records) <= max_lines:
        return records, len(matching)
    keep = set(matching[-max_lines:])
    others = [i for i in range(len(records)) if i not in keep]
    room = max_lines - len(keep)
    keep.update(others[len(others) - room:] if room > 0 else [])
    return [records[i] for i in sorted(keep)], len(matching)


def _store_logs(folder: Path, window: dict[str, Any], read: ReadLogs, source: str,
                max_lines: int, gzip_above: int) -> dict[str, Any]:
    """Read every collected line of the window and write them (bounded); the manifest entry."""
    entry: dict[str, Any] = {"source": source, "window": window, "file": None, "lines": 0,
                             "lines_in_window": 0, "matching_default_pattern": 0,
                             "dropped": 0, "max_lines": max_lines, "error": None}
    try:
        records = [_log_record(line) for line in read(window["start"], window["end"],
                                                      None, None, 0)]
        kept, matching = bound_lines(records, max_lines)
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept)
        entry["file"] = _write_text(folder, LOGS_FILE, text, gzip_above)
        entry.update(lines=len(kept), lines_in_window=len(records),
                     matching_default_pattern=matching, dropped=len(records) - len(kept))
    except Exception as exc:  # noqa: BLE001 - best effort: record, never fail the run
        entry["error"] = _describe(exc)
    return entry


def histories_summary(run_dir: Path) -> dict[str, Any]:
    """The workload histories in the run directory (``stop_workload`` copies them there):
    lines per file, and an error naming each client of a workload without its history."""
    files: dict[str, int] = {}
    missing: list[str] = []
    for state_path in sorted(Path(run_dir).glob("workload/*/workload.json")):
        folder = state_path.parent
        try:
            clients = list(json.loads(state_path.read_text()).get("clients") or {})
        except (OSError, ValueError, AttributeError):
            clients = []
        for client in clients:
            if not (folder / f"{client}.history.jsonl").exists():
                missing.append(f"{folder.relative_to(run_dir)}/{client}.history.jsonl")
    for path in sorted(Path(run_dir).glob("workload/*/*.history.jsonl")):
        with path.open("rb") as handle:
            files[str(path.relative_to(run_dir))] = sum(1 for _ in handle)
    error = (f"missing {', '.join(missing)}: stop_workload did not run or could not fetch "
             "them" if missing else None)
    return {"files": files, "missing": missing, "error": error}


def _complete(entry: Any) -> bool:
    return isinstance(entry, dict) and not entry.get("error") and bool(entry.get("file"))


def _same_run(manifest: dict[str, Any] | None, start: float) -> bool:
    """Whether a manifest was stored for the run that started at ``start``."""
    stored = (manifest or {}).get("run", {}).get("start")
    return isinstance(stored, (int, float)) and abs(stored - start) <= SAME_RUN_TOLERANCE_S


def store(run_dir: Path, start: float, end: float, query_range: QueryRange, read: ReadLogs,
          sources: Sources, stored_by: str, *, now: float | None = None,
          max_log_lines: int = 100_000, gzip_above: int = GZIP_ABOVE,
          keep_complete: bool = False) -> dict[str, Any]:
    """Store the evidence of the run from ``start`` to ``end`` (Unix times) in
    ``<run_dir>/evidence/`` and return the manifest written there.

    A section whose source fails is written as far as it got, with its ``error`` in the
    manifest; nothing is raised for it. With ``keep_complete``, a section stored completely
    before for the same run is kept as it is (a source that has since lost the data cannot
    overwrite it). Raises OSError only when the folder or manifest cannot be written.
    """
    now = time.time() if now is None else now
    folder = folder_of(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        old = read_manifest(run_dir) if keep_complete else None
    except EvidenceError as exc:
        logger.warning("event=evidence_manifest_unreadable run_dir=%s error=%s", run_dir, exc)
        old = None
    old = old if _same_run(old, start) else None
    window = store_window(start, end, now)
    manifest: dict[str, Any] = {
        "format": FORMAT, "stored_at": _iso(now), "stored_by": stored_by,
        "run": {"start": start, "end": end, "start_utc": _iso(start), "end_utc": _iso(end)},
        "window": window}
    for name, write in (
            ("series", lambda: _store_series(folder, window, query_range, sources.prometheus,
                                             gzip_above)),
            ("logs", lambda: _store_logs(folder, window, read, sources.logs, max_log_lines,
                                         gzip_above))):
        if old is not None and _complete(old.get(name)):
            manifest[name] = {**old[name], "kept": True}
            continue
        manifest[name] = {"stored_at": _iso(now), **write()}
    manifest["histories"] = histories_summary(run_dir)
    _write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    _log_stored(run_dir, manifest)
    return manifest


def summary(manifest: dict[str, Any]) -> str:
    """One line: what a manifest holds and what failed."""
    series, logs = manifest.get("series") or {}, manifest.get("logs") or {}
    hist = manifest.get("histories") or {}
    series_part = (f"{series.get('series', 0)} Prometheus series ({series.get('points', 0)} "
                   f"points{', kept' if series.get('kept') else ''})")
    logs_part = (f"{logs.get('lines', 0)} log lines (of {logs.get('lines_in_window', 0)} in "
                 f"the window{', kept' if logs.get('kept') else ''})")
    parts = [series_part, logs_part, f"{len(hist.get('files') or {})} workload histories"]
    errors = [f"{name}: {(manifest.get(name) or {}).get('error')}"
              for name in ("series", "logs", "histories")
              if (manifest.get(name) or {}).get("error")]
    return ", ".join(parts) + ("; errors: " + "; ".join(errors) if errors else "")


def _log_stored(run_dir: Path, manifest: dict[str, Any]) -> None:
    for name in ("series", "logs", "histories"):
        error = (manifest.get(name) or {}).get("error")
        if error:
            logger.warning("event=evidence_incomplete run_dir=%s section=%s error=%s",
                           run_dir, name, error)
    logger.info("event=evidence_stored run_dir=%s %s", run_dir, summary(manifest))


# --- loading ----------------------------------------------------------------------------

def load_series(run_dir: Path, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored series of a manifest entry, shaped as ``Run.series`` (points as tuples)."""
    path = folder_of(run_dir) / str(entry.get("file"))
    try:
        body = json.loads(_read_text(path))
        return [{"title": str(s["title"]), "query": str(s["query"]),
                 "points": [(float(t), float(v)) for t, v in s["points"]]}
                for s in body["series"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise EvidenceError(f"{path} is malformed ({exc.__class__.__name__}: {exc}); "
                            "expected the series written by chaosmoose") from None


def load_logs(run_dir: Path, entry: dict[str, Any], pattern: str = collect.LOG_PATTERN,
              limit: int = LOG_LIMIT) -> list[dict[str, str]]:
    """The stored lines of a manifest entry matching ``pattern`` (the newest ``limit``),
    shaped as ``Run.logs``."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise _settings.SettingError(f"pattern {pattern!r} is not a regular expression: "
                                     f"{exc}") from None
    path = folder_of(run_dir) / str(entry.get("file"))
    lines = []
    for number, text in enumerate(_read_text(path).splitlines(), 1):
        try:
            record = json.loads(text)
            message = str(record["message"])
        except (ValueError, KeyError, TypeError) as exc:
            raise EvidenceError(f"{path} line {number} is malformed ({exc}); expected a "
                                "JSON object with a message") from None
        if regex.search(message):
            lines.append({"time": str(record.get("time", "")),
                          "service": str(record.get("service", "")), "message": message})
    return lines[-limit:] if limit > 0 else lines


# --- giving a run its series and logs ---------------------------------------------------

NOT_STORED = ("not stored in this run directory (no evidence/manifest.json: the run ended "
              "before evidence storing existed or without the strict control's "
              "store_evidence, and `chaosmoose report --store` was not run)")


def _stored_entry(run: collect.Run, manifest: dict[str, Any] | None, problem: str | None,
                  name: str) -> tuple[dict[str, Any] | None, str]:
    """(manifest entry of a section that belongs to this run, or None; why it is not
    usable as complete, or "" when it is)."""
    if problem:
        return None, problem
    if manifest is None:
        return None, NOT_STORED
    if not _same_run(manifest, run.start):
        return None, (f"not stored for this run: evidence/manifest.json belongs to the run "
                      f"that started {manifest.get('run', {}).get('start_utc', '?')}, not to "
                      f"this journal's ({_iso(run.start)})")
    entry = manifest.get(name)
    if not isinstance(entry, dict) or not entry.get("file"):
        error = entry.get("error") if isinstance(entry, dict) else None
        return None, f"not stored ({error or f'no {name} section in evidence/manifest.json'})"
    if entry.get("error"):
        return entry, f"stored incomplete at {entry.get('stored_at', '?')} ({entry['error']})"
    return entry, ""


def _fill_series(run: collect.Run, entry: dict[str, Any] | None, why: str, offline: bool,
                 query_range: QueryRange | None, sources: Sources) -> None:
    if entry is not None:
        try:
            stored = load_series(run.path, entry)
        except EvidenceError as exc:
            why = f"stored but unusable ({exc})"
        else:
            if not why or offline:
                run.series, run.series_source = stored, "stored"
    if not why:
        return
    if not offline and query_range is not None:
        run.series, run.series_source = [], "none"
        collect.add_series(run, query_range)
        return
    run.series_error = (f"Prometheus series {why} and "
                        + (f"--offline forbids querying Prometheus at {sources.prometheus}"
                           if offline else "no live Prometheus query was given"))


def _fill_logs(run: collect.Run, entry: dict[str, Any] | None, why: str, offline: bool,
               read: ReadLogs | None, pattern: str, sources: Sources) -> None:
    if entry is not None:
        try:
            stored = load_logs(run.path, entry, pattern)
        except EvidenceError as exc:
            why = f"stored but unusable ({exc})"
        else:
            if not why or offline:
                run.logs, run.logs_source = stored, "stored"
    if not why:
        return
    if not offline and read is not None:
        run.logs, run.logs_source = [], "none"
        collect.add_logs(run, read, pattern)
        return
    run.logs_error = (f"log lines {why} and "
                      + (f"--offline forbids reading the log collector ({sources.logs})"
                         if offline else "no live log reader was given"))


def fill_run(run: collect.Run, *, offline: bool, query_range: QueryRange | None = None,
             read: ReadLogs | None = None, pattern: str | None = None,
             sources: Sources | None = None) -> None:
    """Give ``run`` its Prometheus series and log lines, and ``run.evidence``.

    Per section: the evidence stored in the run directory when it is complete and belongs
    to this run; else, unless ``offline``, a live query (``query_range``, ``read``); else
    whatever was stored (possibly nothing) and ``series_error``/``logs_error`` saying why
    there is no complete data. ``offline`` never touches the network.
    """
    sources = sources or lab_sources()
    pattern = pattern or collect.LOG_PATTERN
    try:
        manifest, problem = read_manifest(run.path), None
    except EvidenceError as exc:
        manifest, problem = None, f"not usable: {exc}"
    run.evidence = manifest if manifest is not None and _same_run(manifest, run.start) else {}
    entry, why = _stored_entry(run, manifest, problem, "series")
    _fill_series(run, entry, why, offline, query_range, sources)
    entry, why = _stored_entry(run, manifest, problem, "logs")
    _fill_logs(run, entry, why, offline, read, pattern, sources)
