"""Leader isolation: cut the leader off from the other masters N times under a dense
workload; measure freeze, fencing and the new leader; check that no acknowledged write was
lost and that no two masters served at once.

    .venv/bin/python scripts/leader_isolation.py --rounds 10
    .venv/bin/python scripts/leader_isolation.py --rounds 10 --variant raft-only
    sudo .venv/bin/python scripts/leader_isolation.py --rounds 5 --method iptables
    .venv/bin/python scripts/leader_isolation.py --rounds 10 --no-freeze-baseline

Needs the cluster up (``make up``) and no toxic on any link. Each round, in its own run
directory ``runs/<run>/round-NN`` (ledger, workload histories, ``check.json``,
``leader-overlap.json``):

1. waits for a steady cluster (one master answers /leader 200, every /health 200, the
   followers' /replica 200);
2. starts the checksummed workload on every client (one fsync'ed file creation or append
   every ``--interval`` s per client), lets it run ``--settle`` s, then cuts the leader from
   both other masters. ``--method toxiproxy`` (default): ``chaosmoose.network.actions``
   ``isolate(node=<leader>, nodes="masters")``, every link between them (Raft, router
   checks, metalogger streams, mfs tools) while clients and chunkservers still reach it;
   ``--method iptables``: DROP rules in the containers' network namespaces
   (``iptables_cut.py``; needs root). ``--variant raft-only`` cuts only the Raft links
   (toxiproxy: ``isolate(..., kinds="raft")``, as ``experiments/leader-isolation-raft-only``
   does), metalogger streams and router checks intact;
3. holds the cut ``--hold`` s while a watch asks every master's /leader every
   ``--watch-interval`` s (two 200s at once: a double leader);
4. heals, waits until the old leader is a follower again with /replica 200 and every
   client has created a file invoked after the heal, stops the workload, then runs the
   acknowledged-write checker (``check_acknowledged_writes``) and the leader-overlap
   checker (``chaosmoose.master.probes.no_leader_overlap``, window: the round's workload).

Figures, in seconds after the cut began (when the cut action was called; putting every
toxic or rule in place took ``cut_applied_s`` more), from the masters' serving histories
read after the heal (``/status`` ``serving_history``):

- ``frozen``: the old leader's epoch froze mfsmaster (first ``frozen_at`` after the cut);
- ``fenced``: the old epoch was fenced (``fenced_at``; or ``stepped_down``);
- ``old stopped``: the old epoch's last serving instant (its freeze, else its end);
- ``new serves``: the next epoch's ``served_from`` (on another master);
- ``gap``: new serves - old stopped (negative: both served; the overlap checker's verdict);
- ``first write``: the first acknowledged file creation, on any client, *invoked after the
  cut began and acknowledged after the new epoch's served_from* (file creations need the
  master; an append to an open chunk may complete on the chunkservers alone);
- ``all clients``: every client has had such a write;
- ``leader seen``: the watch first saw another master answer /leader 200.

Also per round: ``diverged_changes``, the old leader's own metadata changes beyond where
the new epoch started (its serving history counts them when it rejoins; they are set
aside, so any acknowledged write among them shows up as lost in the checker).

Safety per round: acknowledged writes lost (file creations and appends apart), corrupt;
leader overlaps (and acknowledged writes inside them); the watch's double-leader samples.

``--no-freeze-baseline`` labels a "before" run: start the masters with
``MOOSENG_FREEZE_ON_CONTACT_LOSS=false`` (in ``.env``, then ``make up``) first; this
script never restarts anything, it only checks that every master reports the freeze off in
``/status`` (``timing.freeze_after`` null) and refuses to run otherwise. Without the flag
a master reporting the freeze off is recorded and warned about.

Progress on stderr (one line per round), a Markdown summary on stdout, everything as JSON
in ``--out`` (default ``runs/leader-isolation-<time>.json``, rewritten after each round).
Exit status 0 when every round recovered with at most ``--max-lost`` lost writes, nothing
corrupt, no overlap (nor an unknown verdict) and no double leader; 1 otherwise; 2 when a
precondition failed before anything was touched; 130 on Ctrl-C. Every wait has a timeout,
and every round heals and stops its workload in a ``finally`` (Ctrl-C included); a run
killed with SIGKILL leaves its faults in the round's ledger (``chaosmoose cleanup``) and
iptables rules in ``iptables-rules.json`` (``--remove-iptables FILE``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import iptables_cut
import requests
from benchlib import Timeout, figures, first_writes, get, log, steady, wait, writes_everywhere
from chaoslib.exceptions import ActivityFailed

from chaosmoose import _settings
from chaosmoose.master import overlap
from chaosmoose.master.probes import no_leader_overlap
from chaosmoose.network import _toxiproxy
from chaosmoose.network.actions import heal, isolate
from chaosmoose.network.probes import no_toxics_active
from chaosmoose.workload import _clients
from chaosmoose.workload.actions import start_workload, stop_workload
from chaosmoose.workload.probes import check_acknowledged_writes

TIMING_KEYS = ("frozen_s", "fenced_s", "old_stopped_s", "new_serving_s", "gap_s",
               "first_write_s", "all_clients_s", "leader_seen_s")
ROUND_ERRORS = (Timeout, ActivityFailed, RuntimeError, OSError, subprocess.SubprocessError,
                requests.RequestException)


# ----------------------------------------------------------------- pure parts (unit tested)


def freeze_setting(statuses: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """What the masters report about freeze on contact loss (``timing.freeze_after`` is
    null when it is off): ``{"freeze_on_contact_loss": True | False | None (mixed or not
    reported), "per_master": {...}, "timing": {...}}``."""
    per: dict[str, bool | None] = {}
    timing: dict[str, Any] = {}
    for name, body in statuses.items():
        value = (body or {}).get("timing")
        timing[name] = value
        per[name] = (value["freeze_after"] is not None
                     if isinstance(value, dict) and "freeze_after" in value else None)
    values = set(per.values())
    agreed = values.pop() if len(values) == 1 else None
    return {"freeze_on_contact_loss": agreed, "per_master": per, "timing": timing}


def summarize_watch(samples: Sequence[tuple[float, Mapping[str, int]]], cut_at: float | None,
                    old: str) -> dict[str, Any]:
    """The /leader watch of one round: double-leader samples, when the old leader last
    answered 200 and when another master first did (seconds after ``cut_at``), and how long
    no master answered 200 (summed between samples)."""
    serving = [(t, sorted(n for n, status in statuses.items() if status == 200))
               for t, statuses in samples]
    doubles = [{"t": t, "serving": names} for t, names in serving if len(names) > 1]
    after = [(t, names) for t, names in serving if cut_at is not None and t >= cut_at]
    old_times = [t for t, names in after if old in names]
    new_seen = next(((t, names) for t, names in after if set(names) - {old}), None)
    leaderless = sum(b[0] - a[0] for a, b in itertools.pairwise(serving) if not a[1])
    return {"samples": len(samples), "double_leader_samples": len(doubles),
            "double_leaders": doubles[:10],
            "old_last_200_s": (round(max(old_times) - cut_at, 3)
                               if old_times and cut_at is not None else None),
            "leader_seen_s": (round(new_seen[0] - cut_at, 3)
                              if new_seen and cut_at is not None else None),
            "leader_seen": min(set(new_seen[1]) - {old}) if new_seen else None,
            "leaderless_s": round(leaderless, 3)}


def _old_epoch(entries: Sequence[Mapping[str, Any]], cut_at: float,
               now: float) -> Mapping[str, Any] | None:
    """The old leader's epoch that was serving when the cut began (highest such)."""
    active = [e for e in entries if float(e["served_from"]) <= cut_at
              <= overlap.epoch_end(e, now)[0]]
    return max(active, key=lambda e: int(e["epoch"]), default=None)


def round_figures(serving: Mapping[str, Any], old_leader: str, cut_at: float, now: float,
                  histories: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                  clients: int | None = None) -> dict[str, Any]:
    """The round's timeline from the serving histories (and the clients' histories), in
    seconds after ``cut_at`` (see the module for each figure)."""
    entries = serving.get(old_leader)
    if not isinstance(entries, list):
        return {"figures_error": f"no serving history from {old_leader}: {entries}"}
    old = _old_epoch(entries, cut_at, now)
    if old is None:
        return {"figures_error": f"{old_leader}'s serving history has no epoch serving at the "
                                 "cut"}
    result: dict[str, Any] = {"old_epoch": int(old["epoch"])}
    freezes = [float(f["frozen_at"]) for f in old.get("freezes") or []
               if f.get("frozen_at") is not None and float(f["frozen_at"]) >= cut_at]
    result["frozen_s"] = round(min(freezes) - cut_at, 3) if freezes else None
    for key in ("fenced", "stepped_down"):
        at = old.get(f"{key}_at")
        result[f"{key}_s"] = round(float(at) - cut_at, 3) if at is not None else None
    stopped, how = overlap.stopped_serving(old, now)
    result["old_stopped_s"], result["old_stopped_by"] = round(stopped - cut_at, 3), how
    result["diverged_changes"] = old.get("diverged_changes")
    newer = [e for history in serving.values() if isinstance(history, list) for e in history
             if int(e["epoch"]) > int(old["epoch"])]
    new = min(newer, key=lambda e: (float(e["served_from"]), int(e["epoch"])), default=None)
    if new is None:
        result.update(new_leader=None, new_epoch=None, new_serving_s=None, gap_s=None)
        return result
    served = float(new["served_from"])
    result.update(new_leader=new.get("node"), new_epoch=int(new["epoch"]),
                  new_serving_s=round(served - cut_at, 3), gap_s=round(served - stopped, 3))
    if histories is not None:
        firsts = first_writes(histories, since=cut_at, acked_after=served)
        result["first_write_s"] = round(min(firsts.values()) - cut_at, 3) if firsts else None
        everyone = firsts and len(firsts) == (clients or len(histories))
        result["all_clients_s"] = round(max(firsts.values()) - cut_at, 3) if everyone else None
    return result


def write_counts(report: Mapping[str, Any]) -> dict[str, Any]:
    """The acknowledged-write checker's report, file creations and appends apart (-1:
    unknown, as the checker gives it)."""
    by_f = report.get("by_f") or {}
    unknown = report.get("lost") == -1 or not by_f

    def lost(f: str) -> int:
        return -1 if unknown else int((by_f.get(f) or {}).get("lost", 0))

    return {"valid": report.get("valid"), "acknowledged": report.get("acknowledged"),
            "intact": report.get("intact"), "lost": report.get("lost"),
            "lost_files": lost("write-file"), "lost_appends": lost("append"),
            "corrupt": report.get("corrupt"), "indeterminate": report.get("indeterminate"),
            "longest_unavailability_s": (report.get("unavailability") or {}).get("longest_s"),
            "error": report.get("error")}


def round_problems(record: Mapping[str, Any], max_lost: int) -> list[str]:
    """Why a round fails (empty: it passed)."""
    problems = [f"error: {record['error']}"] if record.get("error") else []
    problems += [f"cleanup: {e}" for e in record.get("cleanup_errors") or []]
    writes = record.get("writes")
    if not writes:
        problems.append("writes not checked")
    else:
        lost, corrupt = writes.get("lost"), writes.get("corrupt")
        if not isinstance(lost, int) or lost < 0:
            problems.append(f"lost writes unknown ({writes.get('error') or 'checker unknown'})")
        elif lost > max_lost:
            problems.append(f"{lost} acknowledged writes lost ({writes.get('lost_files')} file "
                            f"creations, {writes.get('lost_appends')} appends); at most "
                            f"{max_lost} allowed")
        if corrupt != 0:
            problems.append(f"corrupt writes: {corrupt}")
    found = record.get("overlap")
    if not found:
        problems.append("leader overlap not checked")
    elif found.get("overlaps") != 0:
        problems.append("leader overlap verdict unknown" if found.get("overlaps") == -1 else
                        f"{found['overlaps']} leader overlaps ({found.get('overlap_s')} s, "
                        f"{found.get('acknowledged_in_overlaps')} acknowledged writes inside)")
    doubles = (record.get("watch") or {}).get("double_leader_samples")
    if doubles:
        problems.append(f"two masters answered /leader 200 at once in {doubles} samples")
    return problems


def _total(rounds: Sequence[Mapping[str, Any]], section: str, key: str) -> int | None:
    """Sum over rounds; -1 when any round's value is unknown (-1 or missing)."""
    values = [(r.get(section) or {}).get(key) for r in rounds]
    if not values:
        return 0
    if any(not isinstance(v, int) or v < 0 for v in values):
        return -1
    return sum(values)


def summarize(rounds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals and p50 / p95 / max of every figure over the recorded rounds."""
    summary: dict[str, Any] = {
        "rounds": len(rounds), "failed_rounds": sum(1 for r in rounds if r.get("problems")),
        "acknowledged": _total(rounds, "writes", "acknowledged"),
        "lost_files": _total(rounds, "writes", "lost_files"),
        "lost_appends": _total(rounds, "writes", "lost_appends"),
        "corrupt": _total(rounds, "writes", "corrupt"),
        "overlaps": _total(rounds, "overlap", "overlaps"),
        "acknowledged_in_overlaps": _total(rounds, "overlap", "acknowledged_in_overlaps"),
        "double_leader_samples": _total(rounds, "watch", "double_leader_samples"),
        "frozen_rounds": sum(1 for r in rounds if r.get("frozen_s") is not None),
    }
    for key in TIMING_KEYS:
        summary[key] = figures([r[key] for r in rounds if isinstance(r.get(key), (int, float))])
    return summary


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def markdown(rounds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    """The per-round table, the figures table and the totals, in Markdown."""
    header = ("| round | leader | new leader | frozen s | fenced s | new serves s | gap s | "
               "first write s | all clients s | acked | lost files | lost appends | corrupt | "
              "old changes set aside | overlaps | 2 leaders seen | verdict |")
    lines = [header, "|" + "---|" * 17]
    for r in rounds:
        writes, found = r.get("writes") or {}, r.get("overlap") or {}
        lines.append("| " + " | ".join(_cell(v) for v in (
            r.get("round"), r.get("leader"), r.get("new_leader"), r.get("frozen_s"),
            r.get("fenced_s"), r.get("new_serving_s"), r.get("gap_s"), r.get("first_write_s"),
            r.get("all_clients_s"), writes.get("acknowledged"), writes.get("lost_files"),
            writes.get("lost_appends"), writes.get("corrupt"), r.get("diverged_changes"),
            found.get("overlaps"),
            (r.get("watch") or {}).get("double_leader_samples"),
            "ok" if not r.get("problems") else "; ".join(r["problems"]))) + " |")
    lines += ["", "| figure (s after the cut) | p50 | p95 | max |", "|---|---|---|---|"]
    for key in TIMING_KEYS:
        stats = summary.get(key)
        if stats:
            lines.append(f"| {key.removesuffix('_s').replace('_', ' ')} | {stats['p50']:.2f} | "
                         f"{stats['p95']:.2f} | {stats['max']:.2f} |")
    totals = (f"{summary['rounds']} rounds, {summary['failed_rounds']} failed; "
              f"{summary['acknowledged']} writes acknowledged, lost {summary['lost_files']} "
              f"file creations and {summary['lost_appends']} appends, {summary['corrupt']} "
              f"corrupt; {summary['overlaps']} leader overlaps "
              f"({summary['acknowledged_in_overlaps']} acknowledged writes inside); "
              f"{summary['double_leader_samples']} double-leader samples; the old leader froze "
              f"in {summary['frozen_rounds']} rounds (-1: unknown).")
    lines += ["", totals]
    return "\n".join(lines)


def one_line(r: Mapping[str, Any]) -> str:
    """The progress line of a finished round."""
    writes, found = r.get("writes") or {}, r.get("overlap") or {}
    parts = [f"round={r.get('round')}", f"leader={r.get('leader')}->{r.get('new_leader')}"]
    parts += [f"{k.removesuffix('_s')}={_cell(r.get(k))}" for k in TIMING_KEYS]
    parts += [f"acked={writes.get('acknowledged')}",
              f"lost={writes.get('lost_files')}/{writes.get('lost_appends')}",
              f"corrupt={writes.get('corrupt')}", f"set_aside={r.get('diverged_changes')}",
              f"overlaps={found.get('overlaps')}",
              f"double={(r.get('watch') or {}).get('double_leader_samples')}",
              "OK" if not r.get("problems") else "FAILED: " + "; ".join(r["problems"])]
    return " ".join(parts)


# ----------------------------------------------------------------- the cluster side


class Cut(Protocol):
    """A network cut that a round applies once and heals (heal is idempotent)."""

    def apply(self) -> dict[str, Any]:
        """Put the cut in place; return what was done."""

    def heal(self) -> dict[str, Any]:
        """Remove the cut (a no-op when nothing is in place)."""


class ToxiproxyCut:
    """``isolate`` on every link (full) or on the Raft links only (raft-only), recorded in
    the round's ledger and healed by ``heal``."""

    def __init__(self, leader: str, variant: str, config: Mapping[str, Any]) -> None:
        self.leader, self.variant, self.config = leader, variant, config

    def apply(self) -> dict[str, Any]:
        """Cut through Toxiproxy, recorded in the round's ledger."""
        kinds = "raft" if self.variant == "raft-only" else ""
        done = isolate(node=self.leader, nodes="masters", kinds=kinds, configuration=self.config)
        return {"fault": done.get("fault"), "proxies": len(done.get("proxies") or []),
                "toxics": done.get("toxics")}

    def heal(self) -> dict[str, Any]:
        """Undo every open network fault of the round's ledger."""
        done = heal(configuration=self.config)
        return {"undone": [f.get("how") for f in done.get("faults") or []]}


class LeaderWatch:
    """Asks every master's /leader every ``step`` s from a thread; keeps every sample."""

    def __init__(self, masters: Mapping[str, str], step: float) -> None:
        self.masters, self.step = dict(masters), step
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        timeout = max(0.3, self.step)
        with ThreadPoolExecutor(max_workers=len(self.masters)) as pool:
            while not self._stop.is_set():
                began = time.time()
                futures = {n: pool.submit(get, f"{u}/leader", timeout)
                           for n, u in self.masters.items()}
                self.samples.append((began, {n: f.result() for n, f in futures.items()}))
                self._stop.wait(max(0.0, self.step - (time.time() - began)))

    def start(self) -> None:
        """Start watching."""
        self._thread = threading.Thread(target=self._run, name="leader-watch", daemon=True)
        self._thread.start()

    def stop(self) -> list[tuple[float, dict[str, int]]]:
        """Stop watching; return the samples ``(time, {master: /leader status, 0: none})``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        return list(self.samples)


def statuses(masters: Mapping[str, str]) -> dict[str, dict[str, Any] | None]:
    """Every master's /status body (None when it did not answer)."""
    found: dict[str, dict[str, Any] | None] = {}
    for name, url in masters.items():
        try:
            found[name] = requests.get(f"{url}/status", timeout=2).json()
        except (requests.RequestException, ValueError):
            found[name] = None
    return found


def rejoined(masters: Mapping[str, str], old: str) -> str | None:
    """The leader once the cluster is steady with ``old`` as a follower, else None."""
    leader = steady(masters)
    return leader if leader is not None and leader != old else None


def round_config(run: str, number: int) -> dict[str, str]:
    """The round's chaosmoose settings: its own run directory and run id."""
    return {"chaosmoose_run_dir": f"runs/{run}/round-{number:02d}",
            "chaosmoose_run_id": f"{run}-r{number:02d}"}


def make_cut(args: argparse.Namespace, leader: str, others: list[str],
             config: Mapping[str, Any], project: str) -> Cut:
    """The round's cut for ``--method`` and ``--variant``."""
    if args.method == "iptables":
        rules = iptables_cut.resolve(leader, others, project, _toxiproxy.client(config, None),
                                     raft_only=args.variant == "raft-only")
        return iptables_cut.IptablesCut(rules, Path(config["chaosmoose_run_dir"])
                                        / "iptables-rules.json")
    return ToxiproxyCut(leader, args.variant, config)


@contextlib.contextmanager
def ctrl_c_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block is done, then raise it: cleanup runs whole."""
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def teardown(cut: Cut | None, config: Mapping[str, Any]) -> list[str]:
    """Heal the cut and stop the round's workload if still running; the errors, if any."""
    errors = []
    if cut is not None:
        try:
            cut.heal()
        except (ActivityFailed, RuntimeError, OSError, subprocess.SubprocessError) as exc:
            errors.append(f"heal failed: {exc}")
    state = _clients.load_state(config, None)
    if state is not None and not state.get("stopped"):
        try:
            stop_workload(configuration=config)
        except ActivityFailed as exc:
            errors.append(f"stop_workload failed: {exc}")
    return errors


def run_round(number: int, args: argparse.Namespace, run: str, masters: Mapping[str, str],
              project: str) -> dict[str, Any]:
    """One round (see the module). A Timeout waiting for the steady cluster at the start
    aborts the run (raised); any other failure is recorded in the round."""
    config = round_config(run, number)
    record: dict[str, Any] = {"round": number, "run_dir": config["chaosmoose_run_dir"],
                              "method": args.method, "variant": args.variant}
    leader = wait("a steady cluster", lambda: steady(masters), args.steady_timeout)
    others = [m for m in masters if m != leader]
    record["leader"] = leader
    watch = LeaderWatch(masters, args.watch_interval)
    cut: Cut | None = None
    try:
        cut = make_cut(args, leader, others, config, project)
        start_workload(interval=args.interval, op_timeout=args.op_timeout,
                       max_seconds=args.settle + args.hold + 2 * args.recover_timeout + 120,
                       configuration=config)
        time.sleep(args.settle)
        if steady(masters) != leader:
            raise RuntimeError(f"the cluster is no longer steady with {leader} as leader just "
                               "before the cut")
        watch.start()
        started = time.time()
        record["cut"] = cut.apply()
        # Figures count from the moment the whole cut is in place (every toxic or rule).
        record["cut_at"] = time.time()
        record["cut_applied_s"] = round(record["cut_at"] - started, 3)
        log(f"round={number} cut {leader} from {', '.join(others)} ({args.method}, "
            f"{args.variant}) in {record['cut_applied_s']:.2f}s; holding {args.hold:g}s")
        time.sleep(args.hold)
        record["healed_at"] = healed_at = time.time()
        record["healed"] = cut.heal()
        record["leader_after"] = wait(f"{leader} to rejoin as a follower",
                                      lambda: rejoined(masters, leader), args.recover_timeout)
        wait("every client to write again", lambda: writes_everywhere(config, healed_at),
             args.recover_timeout, step=1.0)
        record["recovered_s"] = round(time.time() - healed_at, 3)
    except ROUND_ERRORS as exc:
        record["error"] = f"{exc.__class__.__name__}: {exc}"
    finally:
        with ctrl_c_deferred():
            record["watch"] = summarize_watch(watch.stop(), record.get("cut_at"), leader)
            errors = teardown(cut, config)
        if errors:
            record["cleanup_errors"] = errors
    evaluate(record, config, masters, leader, args)
    return record


def evaluate(record: dict[str, Any], config: Mapping[str, Any], masters: Mapping[str, str],
             leader: str, args: argparse.Namespace) -> None:
    """Read the serving histories and the clients' histories, run both checkers."""
    if "cut_at" in record:
        serving = {n: (b or {}).get("serving_history", f"{n} /status unreadable")
                   for n, b in statuses(masters).items()}
        state = _clients.load_state(config, None)
        try:
            histories = (_clients.saved_histories(state, config, None)
                         if state and state.get("stopped") else None)
        except (OSError, ValueError) as exc:
            histories, record["histories_error"] = None, str(exc)
        try:
            record.update(round_figures(serving, leader, record["cut_at"], time.time(),
                                        histories, len(_settings.clients(config, None))))
        except (KeyError, TypeError, ValueError) as exc:
            record["figures_error"] = f"{exc.__class__.__name__}: {exc}"
        record["leader_seen_s"] = record["watch"].get("leader_seen_s")
    if _clients.load_state(config, None) is not None:
        try:
            record["writes"] = write_counts(check_acknowledged_writes(
                digest_timeout=args.digest_timeout, configuration=config))
        except ActivityFailed as exc:
            record["writes"] = {"lost": -1, "corrupt": -1, "error": str(exc)}
        try:
            found = no_leader_overlap(raise_on_overlap=False, configuration=config)
            record["overlap"] = {k: found.get(k) for k in (
                "valid", "overlaps", "overlap_s", "acknowledged_in_overlaps", "unknown_because",
                "leader_changes", "error")}
        except ActivityFailed as exc:
            record["overlap"] = {"valid": "unknown", "overlaps": -1, "error": str(exc)}
    record["problems"] = round_problems(record, args.max_lost)


# ----------------------------------------------------------------- the command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--hold", type=float, default=8.0, help="seconds the cut is held")
    p.add_argument("--method", choices=("toxiproxy", "iptables"), default="toxiproxy")
    p.add_argument("--variant", choices=("full", "raft-only"), default="full")
    p.add_argument("--no-freeze-baseline", action="store_true",
                   help="the masters run with MOOSENG_FREEZE_ON_CONTACT_LOSS=false (checked "
                        "in /status; this script restarts nothing)")
    p.add_argument("--max-lost", type=int, default=0,
                   help="acknowledged writes a round may lose and still pass")
    p.add_argument("--interval", type=float, default=0.01, help="workload op interval (s)")
    p.add_argument("--op-timeout", type=float, default=60.0,
                   help="a workload op slower than this is recorded as info")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds of workload before the cut")
    p.add_argument("--watch-interval", type=float, default=0.05,
                   help="seconds between /leader polls of every master")
    p.add_argument("--steady-timeout", type=float, default=180.0)
    p.add_argument("--recover-timeout", type=float, default=120.0)
    p.add_argument("--digest-timeout", type=float, default=180.0,
                   help="seconds each client may take to read the round's workload back")
    p.add_argument("--out", help="JSON report (default runs/leader-isolation-<time>.json)")
    p.add_argument("--remove-iptables", metavar="FILE",
                   help="delete the rules recorded in FILE (a killed iptables run) and exit")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.hold <= 0 or args.interval <= 0 or args.watch_interval <= 0:
        p.error("--rounds, --hold, --interval and --watch-interval must be positive")
    if args.max_lost < 0:
        p.error("--max-lost must be >= 0")
    return args


def preflight(args: argparse.Namespace, masters: Mapping[str, str],
              config: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Problems that stop the run before anything is touched, and the freeze setting."""
    problems = []
    if args.method == "iptables":
        if os.geteuid() != 0:
            problems.append("--method iptables needs root (nsenter into the containers)")
        problems += [f"--method iptables needs {tool} on the host" for tool in
                     ("nsenter", "iptables") if shutil.which(tool) is None]
    setting = freeze_setting(statuses(masters))
    if args.no_freeze_baseline and setting["freeze_on_contact_loss"] is not False:
        problems.append(f"--no-freeze-baseline but the masters report freeze on contact loss "
                        f"{setting['per_master']} (true: on, null: not reported); start them "
                        "with MOOSENG_FREEZE_ON_CONTACT_LOSS=false first")
    if not no_toxics_active(raise_on_active=False, configuration=config):
        problems.append("toxics are active on the links (see the warning above); heal them "
                        "(chaosmoose cleanup) first")
    return problems, setting


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds; see the module for the exit status."""
    args = parse_args(argv)
    if args.remove_iptables:
        errors = iptables_cut.remove_recorded(Path(args.remove_iptables))
        for error in errors:
            log(error)
        return 1 if errors else 0
    run = time.strftime("leader-isolation-%Y%m%dT%H%M%S")
    out = Path(args.out or f"runs/{run}.json")
    base = {"chaosmoose_run_dir": f"runs/{run}", "chaosmoose_run_id": run}
    masters = _settings.masters(base, None)
    project = _settings.project(base, None)
    problems, setting = preflight(args, masters, base)
    if setting["freeze_on_contact_loss"] is not True and not args.no_freeze_baseline:
        log(f"WARNING: the masters report freeze on contact loss {setting['per_master']}; "
            "these are not the figures with the freeze on")
    if problems:
        for problem in problems:
            log(f"cannot start: {problem}")
        return 2
    log(f"run={run} rounds={args.rounds} method={args.method} variant={args.variant} "
        f"hold={args.hold:g}s freeze_on_contact_loss={setting['freeze_on_contact_loss']} "
        f"timing={json.dumps(next(iter(setting['timing'].values())), sort_keys=True)}")
    report: dict[str, Any] = {"run": run, "started": time.time(), "args": vars(args),
                              "baseline": args.no_freeze_baseline, "masters": setting,
                              "rounds": []}
    code = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        for number in range(1, args.rounds + 1):
            record = run_round(number, args, run, masters, project)
            report["rounds"].append(record)
            log(one_line(record))
            out.write_text(json.dumps(report, indent=2))
            if record.get("cleanup_errors"):
                log("aborted: the round could not clean up; heal with `chaosmoose cleanup` "
                    "(and --remove-iptables <round dir>/iptables-rules.json) before another run")
                report["aborted"], code = "cleanup failed", 1
                break
    except KeyboardInterrupt:
        log("interrupted: the round healed its cut and stopped its workload")
        report["aborted"], code = "interrupted", 130
    except Timeout as exc:
        log(f"aborted: {exc}")
        report["aborted"], code = str(exc), 1
    finally:
        report["summary"] = summarize(report["rounds"])
        report["ended"] = time.time()
        out.write_text(json.dumps(report, indent=2))
    print(markdown(report["rounds"], report["summary"]))
    log(f"report: {out}")
    if code:
        return code
    return 0 if report["summary"]["failed_rounds"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
