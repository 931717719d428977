"""Recovery figures of a run: pure functions from what :mod:`collect` gathered to numbers,
each with the sentence that defines it (the report prints both).

The reference time of most figures is **the fault**: the first fault of the run's ledger
that is not the workload (``applied_t`` when the ledger has it, the moment the fault was
fully in place, else the time it was opened). A figure measured by a waiting probe of the
journal is taken from the last ledger event before that probe started instead (a fault
applied, or for "resolved" and convergence after a heal, a fault undone), and from the end
of that probe (when it saw what it waited for, to within its poll interval). A probe that
saw it at its very first poll only bounds the figure from above (``≤``): the thing happened
before the probe looked.

A figure that cannot be computed carries the reason instead of a number ("no leader change
in this run"). Standard library only, apart from the checker's own history parser.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chaosmoose.workload.checker import acknowledged_ops

__all__: list[str] = []  # not an activity module

WORKLOAD_PREFIX = "workload."

NEW_LEADER = "time to new leader"
FIRST_WRITE = "time to first acknowledged write (RTO)"
ALL_WRITING = "time to all clients writing"
ALERT_FIRING = "alert detection time"
ANY_ALERT = "first alert firing (Prometheus series)"
ALERT_RESOLVED = "alert resolution time"
CONVERGENCE = "replication convergence time"
LOST = "acknowledged writes lost (RPO)"

DEFINITIONS = {
    NEW_LEADER: (
        "From the fault (the first non-workload fault of the ledger, when it was in place) to "
        "the moment a new master started serving clients: the new epoch's served_from in the "
        "masters' serving histories (saved by no_leader_overlap in leader-overlap.json). "
        "Without that file: the end of a wait_for_leader probe that saw a master other than "
        "the faulted leader serve (it polls every 0.25 s)."),
    FIRST_WRITE: (
        "Per client: from the fault to the acknowledgement of the client's first write "
        "invoked at or after the fault (a late acknowledgement counts when it arrived). "
        "Writes already in flight at the fault are left out: their acknowledgement says "
        "nothing about recovery."),
    ALL_WRITING: (
        "The largest of the clients' times to first acknowledged write: from the fault "
        "until every client of the workload had written again."),
    ALERT_FIRING: (
        "Per alert a wait_for_alert probe waited for: from the last fault applied before the "
        "probe started to the end of the probe, when it saw the alert firing (it polls "
        "Prometheus every 1 s; Prometheus adds its rule evaluation interval and the rule's "
        "`for` time). ≤ when the alert already fired at the probe's first poll."),
    ANY_ALERT: (
        "From the fault to the first sample of the series count(ALERTS{alertstate=\"firing\"}) "
        "above its value at the fault (resolution: the series' step). It does not say which "
        "alert fired."),
    ALERT_RESOLVED: (
        "Per alert a wait_for_alert probe waited to see resolved: from the last fault undone "
        "before the probe started to the end of the probe (1 s polls). ≤ when the alert was "
        "already resolved at the probe's first poll."),
    CONVERGENCE: (
        "Per replication_converged or wait_for_goal probe: from the last ledger event before "
        "the probe started (a fault applied or undone) to the end of the probe, when the "
        "chunk matrix showed every chunk at its goal (1 s polls). ≤ when it already was at "
        "the probe's first poll."),
    LOST: (
        "Acknowledged writes (ok, or late ok) that a client could not read back intact after "
        "healing, from the checker's check.json; -1 means the checker could not decide."),
}

POLL_S = {"wait_for_leader": 0.25, "wait_for_alert": 1.0, "replication_converged": 1.0,
          "wait_for_goal": 1.0}
CONVERGENCE_PROBES = ("replication_converged", "wait_for_goal")


@dataclass(frozen=True)
class Figure:
    """One number of the report, or the reason it has none."""

    kind: str                  # a key of DEFINITIONS
    subject: str = ""          # the client, the alert, the probe... ("" when one per run)
    value: float | None = None
    unit: str = "s"
    detail: str = ""           # how this value came about, in a few words
    why_not: str = ""          # when value is None
    upper_bound: bool = False

    @property
    def name(self) -> str:
        """The kind, with its subject."""
        return f"{self.kind}: {self.subject}" if self.subject else self.kind

    @property
    def definition(self) -> str:
        """The sentence that defines the figure."""
        return DEFINITIONS[self.kind]

    @property
    def text(self) -> str:
        """The value as the report prints it."""
        if self.value is None:
            return f"n/a ({self.why_not})"
        number = f"{self.value:.2f}" if self.unit == "s" else f"{self.value:g}"
        return f"{'≤ ' if self.upper_bound else ''}{number} {self.unit}"


@dataclass
class Figures:
    """Every figure of a run, the fault they are measured from and the key ones."""

    fault_t: float | None
    fault_label: str
    all: list[Figure] = field(default_factory=list)

    def key(self) -> list[Figure]:
        """The few figures the report shows next to its verdict."""
        picks: list[Figure] = []
        for kind in (NEW_LEADER, ALL_WRITING, ALERT_FIRING, CONVERGENCE, LOST):
            found = [f for f in self.all if f.kind == kind]
            if kind == ALERT_FIRING and not found:
                found = [f for f in self.all if f.kind == ANY_ALERT]
            picks += found[:1]
        return picks

    def definitions(self) -> list[tuple[str, str]]:
        """(kind, definition) of every kind of figure present, in order of appearance."""
        kinds = dict.fromkeys(f.kind for f in self.all)
        return [(kind, DEFINITIONS[kind]) for kind in kinds]


# --- inputs ----------------------------------------------------------------------------

def _epoch(stamp: Any) -> float | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def injected(faults: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The ledger's faults without the workload runners' own entries."""
    return [f for f in faults if not str(f.get("kind", "")).startswith(WORKLOAD_PREFIX)
            and _number(f.get("t")) is not None]


def fault_label(fault: Mapping[str, Any]) -> str:
    """``kind on service`` of a ledger fault."""
    return f"{fault.get('kind')} on {(fault.get('target') or {}).get('service', '?')}"


def applied_at(fault: Mapping[str, Any]) -> float:
    """When a fault was in place: ``applied_t`` if recorded, else when it was opened."""
    return _number(fault.get("applied_t")) or float(fault["t"])


def first_fault(faults: Iterable[Mapping[str, Any]]) -> tuple[float, str] | None:
    """(time in place, label) of the run's first injected fault; None when there is none."""
    found = sorted((applied_at(f), fault_label(f)) for f in injected(faults))
    return found[0] if found else None


def ledger_events(faults: Iterable[Mapping[str, Any]]) -> list[tuple[float, str, str]]:
    """(t, "applied" | "undone", label) of every injected fault, in time order."""
    events = []
    for fault in injected(faults):
        events.append((applied_at(fault), "applied", fault_label(fault)))
        undone = _number(fault.get("undone_t"))
        if undone is not None:
            events.append((undone, "undone", fault_label(fault)))
    return sorted(events)


def last_event_before(events: Sequence[tuple[float, str, str]], t: float,
                      which: tuple[str, ...] = ("applied",)) -> tuple[float, str, str] | None:
    """The newest ledger event of a kind in ``which`` at or before ``t``."""
    before = [e for e in events if e[0] <= t and e[1] in which]
    return before[-1] if before else None


@dataclass(frozen=True)
class Activity:
    """One activity of the journal, reduced to what the figures read."""

    name: str
    func: str
    start: float
    end: float
    output: Any
    arguments: Mapping[str, Any] = field(default_factory=dict)


def activities(journal: Mapping[str, Any]) -> list[Activity]:
    """The method's and the rollbacks' activities that have start and end times."""
    found = []
    for phase in ("run", "rollbacks"):
        for item in journal.get(phase) or []:
            start, end = _epoch(item.get("start")), _epoch(item.get("end"))
            if start is None or end is None:
                continue
            activity = item.get("activity") or {}
            provider = activity.get("provider") or {}
            arguments = provider.get("arguments")
            found.append(Activity(str(activity.get("name", "?")), str(provider.get("func", "")),
                                  start, end, item.get("output"),
                                  arguments if isinstance(arguments, Mapping) else {}))
    return sorted(found, key=lambda a: a.start)


def _waited(activity: Activity) -> float | None:
    output = activity.output
    if isinstance(output, Mapping):
        return _number(output.get("converged_s", output.get("waited_s")))
    return _number(output)  # replication_converged returns its seconds


def _bound(activity: Activity) -> bool:
    waited = _waited(activity)
    return waited is not None and waited < POLL_S.get(activity.func, 1.0)


# --- figures ---------------------------------------------------------------------------

NO_FAULT = "no fault in this run's ledger: nothing to recover from"


def new_leader(fault_t: float | None, changes: Sequence[Mapping[str, Any]],
               acts: Sequence[Activity], faults: Iterable[Mapping[str, Any]],
               origin: float) -> Figure:
    """Time to new leader (see DEFINITIONS); ``origin`` is the run's start, for details."""
    if fault_t is None:
        return Figure(NEW_LEADER, why_not=NO_FAULT)
    served = sorted(((t, c) for c in changes
                     if (t := _number(c.get("new_served_from"))) is not None),
                    key=lambda pair: pair[0])
    after = [(t, c) for t, c in served if t >= fault_t]
    if after:
        t, change = after[0]
        node = (change.get("new") or {}).get("node", "?")
        epoch = (change.get("new") or {}).get("epoch")
        return Figure(NEW_LEADER, value=round(t - fault_t, 3),
                      detail=(f"{node}{f' (epoch {epoch})' if epoch is not None else ''} "
                              f"served from {t - origin:.2f} s into the run"))
    if served:
        return Figure(NEW_LEADER, why_not="no leader change after the fault in this run")
    seen = _leader_seen_by_probe(fault_t, acts, faults)
    if seen is not None:
        activity, node = seen
        return Figure(NEW_LEADER, value=round(activity.end - fault_t, 3),
                      detail=f"{node}, seen by probe {activity.name} (no leader-overlap.json)")
    return Figure(NEW_LEADER, why_not="no leader change in this run")


def faulted_leaders(faults: Iterable[Mapping[str, Any]]) -> set[str]:
    """Masters that were leader when a fault hit them (directly or cut off)."""
    names = set()
    for fault in injected(faults):
        if fault.get("role") == "leader":
            names.add((fault.get("target") or {}).get("service"))
        for cut in fault.get("cut_off") or []:
            if isinstance(cut, Mapping) and cut.get("role") == "leader":
                names.add(cut.get("service"))
    return {n for n in names if n}


def _leader_seen_by_probe(fault_t: float, acts: Sequence[Activity],
                          faults: Iterable[Mapping[str, Any]]) -> tuple[Activity, str] | None:
    old = faulted_leaders(faults)
    if not old:
        return None
    for activity in acts:
        output = activity.output
        if (activity.func == "wait_for_leader" and activity.start >= fault_t
                and isinstance(output, Mapping) and output.get("name")
                and output["name"] not in old):
            return activity, str(output["name"])
    return None


def first_writes(fault_t: float | None, histories: Mapping[str, Sequence[Mapping[str, Any]]],
                 origin: float) -> list[Figure]:
    """Per client, time to first acknowledged write after the fault (see DEFINITIONS)."""
    if not histories:
        return [Figure(FIRST_WRITE, why_not="no workload history in this run")]
    if fault_t is None:
        return [Figure(FIRST_WRITE, why_not=NO_FAULT)]
    figures = []
    for client in sorted(histories):
        acked, _ = acknowledged_ops(histories[client])
        after = sorted(((float(op["acked_t"]), op) for op in acked
                        if _number(op.get("t")) is not None and op["t"] >= fault_t
                        and _number(op.get("acked_t")) is not None), key=lambda pair: pair[0])
        if not after:
            stamps = [t for r in histories[client] if (t := _number(r.get("t"))) is not None]
            last = f"; its history ends {max(stamps) - origin:.2f} s into the run" if stamps else ""
            figures.append(Figure(FIRST_WRITE, client,
                                  why_not=f"no write invoked after the fault was acknowledged{last}"))
            continue
        t, op = after[0]
        late = " (late)" if op.get("late") else ""
        figures.append(Figure(FIRST_WRITE, client, round(t - fault_t, 3),
                              detail=(f"{op.get('f')} #{op.get('seq')} acknowledged{late} "
                                      f"{t - origin:.2f} s into the run")))
    return figures


def all_writing(per_client: Sequence[Figure]) -> Figure:
    """The slowest client's time to first acknowledged write (see DEFINITIONS)."""
    if len(per_client) == 1 and not per_client[0].subject:
        return Figure(ALL_WRITING, why_not=per_client[0].why_not)
    missing = [f.subject for f in per_client if f.value is None]
    if missing:
        return Figure(ALL_WRITING, why_not=f"{', '.join(missing)} never wrote again after "
                                           "the fault")
    slowest = max(per_client, key=lambda f: f.value or 0.0)
    return Figure(ALL_WRITING, value=slowest.value, detail=f"the last was {slowest.subject}")


def alert_figures(acts: Sequence[Activity], events: Sequence[tuple[float, str, str]],
                  origin: float) -> list[Figure]:
    """Detection (firing) and resolution times of the alerts wait_for_alert probes awaited."""
    figures = []
    for activity in acts:
        if activity.func != "wait_for_alert":
            continue
        output = activity.output if isinstance(activity.output, Mapping) else {}
        state = output.get("state", activity.arguments.get("state", "firing"))
        kind, which = ((ALERT_RESOLVED, ("undone",)) if state == "resolved"
                       else (ALERT_FIRING, ("applied",)))
        subject = str(output.get("name", activity.arguments.get("name", activity.name)))
        figures.append(_probe_figure(kind, subject, activity, events, which, origin,
                                     output.get("ok", True) is not False))
    return figures


def convergence_figures(acts: Sequence[Activity], events: Sequence[tuple[float, str, str]],
                        origin: float) -> list[Figure]:
    """Replication convergence times the experiment measured (see DEFINITIONS)."""
    figures = []
    for activity in acts:
        output = activity.output
        measures = (activity.func in CONVERGENCE_PROBES
                    or (isinstance(output, Mapping) and "converged_s" in output))
        if not measures:
            continue
        ok = not (isinstance(output, Mapping) and output.get("ok") is False)
        figures.append(_probe_figure(CONVERGENCE, activity.name, activity, events,
                                     ("applied", "undone"), origin, ok))
    return figures


def _probe_figure(kind: str, subject: str, activity: Activity,
                  events: Sequence[tuple[float, str, str]], which: tuple[str, ...],
                  origin: float, ok: bool) -> Figure:
    """A figure from the last ledger event of ``which`` before a probe to the probe's end."""
    waited = _waited(activity)
    if waited is None:
        return Figure(kind, subject, why_not=f"probe {activity.name} gave no time (it failed)")
    if not ok or waited < 0:
        return Figure(kind, subject, why_not=f"probe {activity.name} gave up after its timeout")
    reference = last_event_before(events, activity.start, which)
    if reference is None:
        what = "undone" if which == ("undone",) else "applied"
        return Figure(kind, subject, why_not=f"no fault {what} before probe {activity.name}")
    t, event, label = reference
    return Figure(kind, subject, round(activity.end - t, 3), upper_bound=_bound(activity),
                  detail=(f"since {label} {event} {t - origin:.2f} s into the run; probe "
                          f"{activity.name} waited {waited:g} s"))


def any_alert(fault_t: float | None, series: Sequence[Mapping[str, Any]],
              title: str = "alerts firing") -> list[Figure]:
    """From the fault to the first rise of the alerts-firing series (see DEFINITIONS);
    nothing when the series was not collected."""
    points = next((s.get("points") for s in series if s.get("title") == title), None)
    if not points:
        return []
    if fault_t is None:
        return [Figure(ANY_ALERT, why_not=NO_FAULT)]
    before = [v for t, v in points if t <= fault_t]
    baseline = before[-1] if before else 0.0
    rise = next((t for t, v in points if t > fault_t and v > baseline), None)
    if rise is None:
        return [Figure(ANY_ALERT, why_not="no alert started firing after the fault")]
    return [Figure(ANY_ALERT, value=round(rise - fault_t, 3),
                   detail=f"{baseline:g} alerts firing at the fault, more from then on")]


def lost_writes(check: Mapping[str, Any] | None) -> Figure:
    """Lost acknowledged writes from the checker's result."""
    if not check:
        return Figure(LOST, unit="writes", why_not="no checker result (check.json) in this run")
    lost = _number(check.get("lost"))
    if lost is None:
        return Figure(LOST, unit="writes", why_not="the checker result has no lost count")
    return Figure(LOST, value=lost, unit="writes",
                  detail=f"of {check.get('acknowledged')} acknowledged; "
                         f"{check.get('corrupt')} corrupt")


def compute(run: Any) -> Figures:
    """Every figure of a collected run (``collect.Run``)."""
    first = first_fault(run.faults)
    fault_t, label = first if first else (None, "")
    acts = activities(run.journal)
    events = ledger_events(run.faults)
    per_client = first_writes(fault_t, run.histories, run.start)
    found = [new_leader(fault_t, run.leader_changes, acts, run.faults, run.start),
             *per_client, all_writing(per_client),
             *alert_figures(acts, events, run.start),
             *any_alert(fault_t, run.series),
             *convergence_figures(acts, events, run.start),
             lost_writes(run.check)]
    return Figures(fault_t, label, found)


def leader_marks(run: Any) -> list[tuple[float, str]]:
    """(epoch t, label) of every leader change to mark on the charts: the saved changes,
    or when there are none a new leader a wait_for_leader probe saw (at its end)."""
    marks = [(t, f"leader: {(c.get('new') or {}).get('node', '?')}")
             for c in run.leader_changes if (t := _number(c.get("new_served_from"))) is not None]
    if marks:
        return sorted(marks)
    first = first_fault(run.faults)
    seen = _leader_seen_by_probe(first[0], activities(run.journal), run.faults) if first else None
    return [(seen[0].end, f"leader: {seen[1]} (seen)")] if seen else []
