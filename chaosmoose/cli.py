"""The ``chaosmoose`` command: ``cleanup`` undoes every open fault in the ledger; ``logs``
prints the lab's collected log lines of a time window; ``report`` turns experiment runs into
Markdown and HTML; ``gameday`` runs a plan of experiments as one session.

Exit codes of ``chaosmoose gameday run``: 0 when every run passed, 1 when one did not,
130 when halted by Ctrl-C (after undoing every fault), 2 on a malformed plan.

Exit codes of ``chaosmoose cleanup``: 0 when nothing is left open (including when there
was nothing to do), 1 when a fault could not be undone (it stays open; run again), 2 on
a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

__all__ = ["main"]


def _ledgers(args: argparse.Namespace) -> list[Path]:
    from chaosmoose import _settings

    dirs = [Path(d) for d in args.run_dir] if args.run_dir else [_settings.run_dir()]
    if args.all:
        root = dirs[0].parent if not args.run_dir else Path(args.run_dir[0])
        dirs = sorted({p.parent for p in root.glob("**/faults.jsonl")} | set(dirs))
    return dirs


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Undo every open fault of the ledger(s)."""
    from chaosmoose import _faults
    from chaosmoose.ledger import Ledger

    code = 0
    for run_dir in _ledgers(args):
        ledger = Ledger(run_dir)
        open_faults = ledger.open_faults()
        if not open_faults:
            print(f"{ledger.path}: nothing open")
            continue
        if args.dry_run:
            for fault in open_faults:
                print(f"{ledger.path}: would undo {fault['kind']} on "
                      f"{fault['target'].get('service')} (since {fault['at']}, run "
                      f"{fault.get('run')})")
            continue
        for result in _faults.undo_open(ledger):
            if result["undone"]:
                print(f"{ledger.path}: undone {result['kind']} on {result['service']}: "
                      f"{result['how']}")
            else:
                code = 1
                print(f"{ledger.path}: FAILED {result['kind']} on {result['service']}: "
                      f"{result['error']}", file=sys.stderr)
    return code


def cmd_ledger(args: argparse.Namespace) -> int:
    """Print the faults of the ledger(s) as JSON lines."""
    from chaosmoose.ledger import Ledger

    for run_dir in _ledgers(args):
        state = "open" if args.open else None
        for fault in Ledger(run_dir).faults(state=state):
            print(json.dumps(fault, sort_keys=True))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Print collected log lines of a time window (oldest first)."""
    from chaosmoose.logs._collector import read_window

    lines = read_window(args.since, args.until, args.service or None, args.grep, args.limit)
    for line in lines:
        if args.json:
            print(json.dumps(line.as_dict(), sort_keys=True))
        else:
            print(f"{line.time} {line.service:<14} {line.message}")
    if not lines:
        print("no line matched", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write report.md and report.html for each run directory."""
    from chaosmoose.logs._collector import read_window
    from chaosmoose.monitoring._prometheus import range_query
    from chaosmoose.report import collect, render

    for path in args.run:
        run = collect.load_run(Path(path))
        if not args.offline:
            collect.add_series(run, range_query)
            collect.add_logs(run, read_window, args.log_pattern or collect.LOG_PATTERN)
        out = Path(args.out) if args.out else run.path
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(render.markdown(run))
        (out / "report.html").write_text(render.html_page(run))
        print(f"{out / 'report.html'}: {render.verdict(run)}, {len(run.events)} timeline events, "
              f"{sum(len(s['points']) for s in run.series)} Prometheus points, "
              f"{len(run.logs)} log lines")
        for problem in (run.series_error, run.logs_error):
            if problem:
                print(f"  note: {problem}", file=sys.stderr)
    return 0


def cmd_gameday(args: argparse.Namespace) -> int:
    """Run a game-day plan, or add an observer note to a running session."""
    from chaosmoose.gameday import report, session
    from chaosmoose.gameday.plan import load_plan

    if args.gameday_command == "note":
        where = Path(args.session) if args.session else _newest_session(Path(args.runs_dir))
        print(session.add_note(where, " ".join(args.text)))
        return 0
    plan = load_plan(Path(args.plan))
    game = session.Session(plan, Path(args.runs_dir), session.chaos_binary(), args.offline)
    results = game.run()
    session.write_summary(game)
    (game.dir / "gameday.md").write_text(report.markdown(game))
    (game.dir / "gameday.html").write_text(report.html_page(game))
    from chaosmoose.gameday.score import session_score

    print(f"==> score {session_score([r.score for r in results])} / 100; "
          f"report {game.dir / 'gameday.html'}")
    if game.halted:
        return 130
    return 0 if results and all(r.verdict == "PASSED" for r in results) else 1


def _newest_session(root: Path) -> Path:
    from chaoslib.exceptions import ActivityFailed

    sessions = sorted(root.glob("gameday-*"))
    if not sessions:
        raise ActivityFailed(f"no game day session under {root}; start one with "
                             "`chaosmoose gameday run PLAN`")
    return sessions[-1]


def cmd_settings(args: argparse.Namespace) -> int:
    """Print the settings table (Markdown)."""
    from chaosmoose import _settings

    print(_settings.markdown_table())
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="chaosmoose", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    for name, func, doc in (("cleanup", cmd_cleanup, "undo every open fault"),
                            ("ledger", cmd_ledger, "list recorded faults")):
        s = sub.add_parser(name, help=doc)
        s.add_argument("--run-dir", action="append", default=[],
                       help="run directory (default: $CHAOSMOOSE_RUN_DIR or runs/current); "
                            "repeatable")
        s.add_argument("--all", action="store_true",
                       help="also every faults.jsonl below the run directory's parent")
        s.set_defaults(func=func)
        if name == "cleanup":
            s.add_argument("--dry-run", action="store_true", help="only say what would be done")
        else:
            s.add_argument("--open", action="store_true", help="only faults still open")
    s = sub.add_parser("logs", help="collected log lines of every service, by time window")
    s.add_argument("--since", default="10m",
                   help="ISO 8601 time, Unix timestamp or relative 90s/5m/2h (default 10m)")
    s.add_argument("--until", default=None, help="same forms as --since (default: now)")
    s.add_argument("--service", action="append", default=[],
                   help="compose service, e.g. master-1; repeatable (default: all)")
    s.add_argument("--grep", default=None, help="regular expression on the message")
    s.add_argument("--limit", type=int, default=1000, help="newest N lines (default 1000)")
    s.add_argument("--json", action="store_true", help="JSON lines")
    s.set_defaults(func=cmd_logs)
    s = sub.add_parser("report", help="Markdown + HTML report of experiment runs")
    s.add_argument("run", nargs="+", help="run directory (with journal.json) or a journal file")
    s.add_argument("--out", default=None, help="output directory (default: the run directory)")
    s.add_argument("--offline", action="store_true",
                   help="do not query Prometheus or the log collector")
    s.add_argument("--log-pattern", default=None, help="regular expression of log lines to show")
    s.set_defaults(func=cmd_report)
    s = sub.add_parser("gameday", help="run a plan of experiments as one session")
    gsub = s.add_subparsers(dest="gameday_command", required=True)
    g = gsub.add_parser("run", help="run a plan (Ctrl-C halts and undoes every fault)")
    g.add_argument("plan", help="plan file (YAML or JSON), e.g. experiments/gameday.yaml")
    g.add_argument("--runs-dir", default="runs", help="where the session folder goes (default runs)")
    g.add_argument("--offline", action="store_true",
                   help="reports without Prometheus series and log lines")
    g = gsub.add_parser("note", help="add a timestamped observer note to a session")
    g.add_argument("text", nargs="+")
    g.add_argument("--session", default=None, help="session folder (default: the newest)")
    g.add_argument("--runs-dir", default="runs")
    s.set_defaults(func=cmd_gameday)
    s = sub.add_parser("settings", help="print the settings table")
    s.set_defaults(func=cmd_settings)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``chaosmoose`` console script."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s: %(message)s")
    from chaoslib.exceptions import ActivityFailed

    try:
        return args.func(args)
    except ActivityFailed as exc:
        print(f"chaosmoose {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
