"""The ``chaosmoose`` command: ``cleanup`` undoes every open fault in the ledger; ``logs``
prints the lab's collected log lines of a time window; ``report`` turns experiment runs into
Markdown and HTML; ``gameday`` runs a plan of experiments as one session; ``data`` writes
a reproducible test data set through a client and verifies it from any client.

Exit codes of ``chaosmoose gameday run``: 0 when every run passed, 1 when one did not,
3 when a halt condition of the plan stopped the session, 128 + the signal's number when a
signal did (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; each after undoing every open fault and
writing the report), 2 on a malformed plan.

``chaosmoose cleanup`` reads every run's ledger (every ``faults.jsonl`` below the runs
directory, and the configured run directory's) unless ``--run-dir`` picks some, and names
the run each fault came from. A malformed ledger record is reported on stderr and skipped;
the other records are still undone. Exit codes: 0 when nothing is left open (including
when there was nothing to do), 1 when a fault could not be undone (it stays open; run
again) or a ledger record was malformed (fix or remove it by hand), 2 on a usage or
configuration error.

``chaosmoose report`` draws Prometheus series and log lines from the evidence stored in the
run directory (``evidence/``, written at the end of a run by the strict control, or by
``--store``), else from the live lab; ``--offline`` never touches the network and says per
section why it has no data. It exits 0 when the reports are written, 2 on a folder without
a journal, ``--store`` with ``--offline`` or evidence that cannot be written. With ``--pdf``
it also prints report.pdf with headless Chromium (on PATH, else the mooseng-browser image)
and exits 1 when it could not (no browser: the message says how to get one).

``chaosmoose data generate`` exits 0 when the set and its manifest are written, 1 when
writing failed on the cluster, 2 on bad input (nothing is written). ``chaosmoose data
verify`` exits 0 when every entry is intact, 1 when one is missing or corrupt (or the
verification could not run), 2 on bad input such as no manifest (nothing is changed).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaosmoose.ledger import Ledger
    from chaosmoose.report.collect import Run

__all__ = ["main"]


def _ledgers(args: argparse.Namespace) -> list[Ledger]:
    """The ledgers to read: every run's by default, or the ``--run-dir`` ones."""
    from chaosmoose import _faults
    from chaosmoose.ledger import Ledger, ledgers_under

    if not args.run_dir:
        return _faults.every_ledger()
    if args.all:
        return ledgers_under(args.run_dir[0], *args.run_dir[1:])
    return [Ledger(d) for d in args.run_dir]


def _report_problems(ledger: Ledger) -> int:
    """Print each bad record of the last read to stderr; 1 if there was one."""
    for problem in ledger.problems:
        print(f"bad ledger record: {problem}", file=sys.stderr)
    return 1 if ledger.problems else 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Undo every open fault of the ledger(s), naming the run each came from."""
    from chaosmoose import _faults

    code = 0
    for ledger in _ledgers(args):
        open_faults = ledger.open_faults()
        code |= _report_problems(ledger)
        if not open_faults:
            skipped = f" ({len(ledger.problems)} bad records skipped)" if ledger.problems else ""
            print(f"{ledger.path}: nothing open{skipped}")
            continue
        if args.dry_run:
            for fault in open_faults:
                print(f"{ledger.path}: would undo {_faults.describe(ledger, fault)}")
            continue
        for result in _faults.undo_open(ledger):
            if result["undone"]:
                print(f"{ledger.path}: undone {result['kind']} on {result['service']} (run "
                      f"{result['run']}): {result['how']}")
            else:
                code = 1
                print(f"{ledger.path}: FAILED {result['kind']} on {result['service']} (run "
                      f"{result['run']}): {result['error']}", file=sys.stderr)
    return code


def cmd_ledger(args: argparse.Namespace) -> int:
    """Print the faults of the ledger(s) as JSON lines."""
    code = 0
    for ledger in _ledgers(args):
        for fault in ledger.faults(state="open" if args.open else None):
            print(json.dumps({**fault, "run_dir": str(ledger.run_dir)}, sort_keys=True))
        code |= _report_problems(ledger)
    return code


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
    """Write report.md and report.html for each run directory: Prometheus series and log
    lines from the evidence stored in it, else live (unless --offline); with --store, first
    store that evidence from the lab."""
    from chaosmoose.logs._collector import read_window
    from chaosmoose.monitoring._prometheus import range_query
    from chaosmoose.report import collect, evidence, render

    if args.offline and args.store:
        raise _settings_error("--store reads Prometheus and the log collector; --offline "
                              "forbids it: give one of them")
    code = 0
    for path in args.run:
        run = collect.load_run(Path(path))
        if args.store:
            _store_evidence(run)
        evidence.fill_run(run, offline=args.offline, query_range=range_query, read=read_window,
                          pattern=args.log_pattern or collect.LOG_PATTERN)
        out = Path(args.out) if args.out else run.path
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(render.markdown(run))
        (out / "report.html").write_text(render.html_page(run))
        print(f"{out / 'report.html'}: {render.verdict(run)}, {len(run.events)} timeline events, "
              f"{sum(len(s['points']) for s in run.series)} Prometheus points "
              f"({run.series_source}), {len(run.logs)} log lines ({run.logs_source})")
        for problem in (run.series_error, run.logs_error):
            if problem:
                print(f"  note: {problem}", file=sys.stderr)
        if args.pdf:
            code = max(code, _print_pdf(out))
    return code


def _print_pdf(out: Path) -> int:
    """Print ``out/report.html`` to ``out/report.pdf`` (``--pdf``); 1 when it could not."""
    from chaosmoose.report import browser

    try:
        used = browser.print_pdf(out / "report.html", out / "report.pdf")
    except browser.BrowserError as exc:
        print(f"chaosmoose report --pdf: {exc}", file=sys.stderr)
        return 1
    print(f"{out / 'report.pdf'}: printed with {used.describe()}")
    return 0


def _store_evidence(run: Run) -> None:
    """Store a loaded run's evidence from the lab (``chaosmoose report --store``)."""
    from chaoslib.exceptions import ActivityFailed

    from chaosmoose.report import evidence

    try:
        manifest = evidence.store_from_lab(run.path, run.start, run.end,
                                           "chaosmoose report --store", keep_complete=True)
    except OSError as exc:
        raise ActivityFailed(f"{evidence.folder_of(run.path)}: cannot store evidence there: "
                             f"{exc}") from None
    print(f"{evidence.folder_of(run.path)}: {evidence.summary(manifest)}")


def _settings_error(message: str) -> Exception:
    """A usage error that ``main`` prints and exits 2 with."""
    from chaosmoose._settings import SettingError

    return SettingError(message)


def cmd_gameday(args: argparse.Namespace) -> int:
    """Run a game-day plan, or add an observer note to a running session."""
    from chaosmoose.gameday import report, session
    from chaosmoose.gameday.plan import load_plan

    if args.gameday_command == "note":
        where = Path(args.session) if args.session else _newest_session(Path(args.runs_dir))
        print(session.add_note(where, " ".join(args.text)))
        return 0
    plan = load_plan(Path(args.plan))
    game = session.Session(plan, Path(args.runs_dir), session.chaos_binary(), args.offline,
                           plain=args.plain)
    with game.halt_on_signals():  # a signal while the report is written must not lose it
        results = game.run()
        session.write_summary(game)
        (game.dir / "gameday.md").write_text(report.markdown(game))
        (game.dir / "gameday.html").write_text(report.html_page(game))
        print(f"==> {report.status(game) + ' ' if game.halted else ''}score "
              f"{report.score_text(game)}; report {game.dir / 'gameday.html'}")
    if game.halt_signal is not None:
        return 128 + int(game.halt_signal)
    if game.halted:
        return 3
    return 0 if results and all(r.verdict == "PASSED" for r in results) else 1


def _newest_session(root: Path) -> Path:
    from chaoslib.exceptions import ActivityFailed

    sessions = sorted(root.glob("gameday-*"))
    if not sessions:
        raise ActivityFailed(f"no game day session under {root}; start one with "
                             "`chaosmoose gameday run PLAN`")
    return sessions[-1]


def cmd_data(args: argparse.Namespace) -> int:
    """Generate a test data set through a client, or verify one from any client."""
    from chaoslib.exceptions import ActivityFailed

    from chaosmoose._settings import SettingError
    from chaosmoose.data import _datasets, _progress
    from chaosmoose.data.plan import format_size

    configuration = {"chaosmoose_run_dir": args.run} if args.run else None
    name = f"chaosmoose data {args.data_command}"
    bar = _progress.Bar("generating" if args.data_command == "generate" else "verifying")
    try:
        if args.data_command == "generate":
            result = _datasets.generate(args.dir or "data", args.size, args.files, args.seed,
                                        args.client, args.replace, configuration,
                                        progress=bar)
        else:
            result = _datasets.verify(args.dir, args.client, args.manifest, args.file_timeout,
                                      configuration, progress=bar)
    except SettingError:
        bar.close()
        raise  # bad input: main() prints it and exits 2
    except ActivityFailed as exc:
        bar.close()
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        bar.close()
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    bar.close()
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    rate = f" ({result['mib_per_s']} MiB/s)" if result.get("mib_per_s") else ""
    if args.data_command == "generate":
        if not args.json:
            print(f"generated {result['directory']} through {result['client']}: "
                  f"{result['entries']} entries ({result['files']} files, {result['dirs']} "
                  f"folders), {format_size(result['bytes'])} in {result['seconds']} s{rate}\n"
                  f"manifest: {result['manifest']}")
        return 0
    if not args.json:
        print(f"verified {result['directory']} through {result['client']} (written by "
              f"{result.get('written_by')}; manifest {result['manifest']}): "
              f"{result['entries']} entries, {format_size(result['bytes_read'])} read in "
              f"{result['seconds']} s{rate}")
        if result.get("note"):
            print(f"note: {result['note']}")
        print(f"intact {result['intact']}, missing {result['missing']}, corrupt "
              f"{result['corrupt']}, unexpected {result['unexpected']}")
        for problem in result["problems"][:20]:
            print(f"  {problem['state']:<8} {problem['path']}: {problem['reason']}")
        if result["lost"] > len(result["problems"][:20]):
            print(f"  ... {result['lost'] - 20} more in {result['manifest']} "
                  "(verify.json next to it)")
    return 1 if result["lost"] else 0


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
                       help="only this run directory's ledger; repeatable (default: every "
                            "faults.jsonl below $CHAOSMOOSE_RUNS_DIR or runs/, and "
                            "$CHAOSMOOSE_RUN_DIR)")
        s.add_argument("--all", action="store_true",
                       help="with --run-dir: also every faults.jsonl below the first one")
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
                   help="never query Prometheus or the log collector: render from the evidence "
                        "stored in the run directory (evidence/); a section without it says "
                        "why")
    s.add_argument("--store", action="store_true",
                   help="first store the run's Prometheus series and log lines in "
                        "<run>/evidence/ (sections already stored completely are kept), then "
                        "render from them")
    s.add_argument("--log-pattern", default=None,
                   help="regular expression of log lines to show (default: HA decisions, "
                        "fencing, promotion, registrations, CRC errors)")
    s.add_argument("--pdf", action="store_true",
                   help="also print report.pdf with headless Chromium (chromium on PATH, else "
                        "the mooseng-browser image: make browser-image)")
    s.set_defaults(func=cmd_report)
    s = sub.add_parser("gameday", help="run a plan of experiments as one session")
    gsub = s.add_subparsers(dest="gameday_command", required=True)
    g = gsub.add_parser("run", help="run a plan (Ctrl-C, SIGTERM, SIGHUP or a halt "
                         "condition halts and undoes every fault)")
    g.add_argument("plan", help="plan file (YAML or JSON), e.g. experiments/gameday.yaml")
    g.add_argument("--runs-dir", default="runs", help="where the session folder goes (default runs)")
    g.add_argument("--offline", action="store_true",
                   help="reports without Prometheus series and log lines")
    g.add_argument("--plain", action="store_true",
                   help="plain progress lines, no live dashboard (the default off a terminal)")
    g = gsub.add_parser("note", help="add a timestamped observer note to a session")
    g.add_argument("text", nargs="+")
    g.add_argument("--session", default=None, help="session folder (default: the newest)")
    g.add_argument("--runs-dir", default="runs")
    s.set_defaults(func=cmd_gameday)
    s = sub.add_parser("data", help="write a reproducible test data set, verify it")
    dsub = s.add_subparsers(dest="data_command", required=True)
    g = dsub.add_parser("generate", help="write a data set through a client, keep its manifest")
    g.add_argument("--dir", default=None,
                   help="folder relative to the client's mount (default data)")
    g.add_argument("--size", default="256MiB",
                   help="total bytes, e.g. 64MiB, 1GiB, 10MB (default 256MiB)")
    g.add_argument("--files", default="200",
                   help="entries besides folders: files, sparse files, links (default 200)")
    g.add_argument("--seed", default="1", help="same seed, same data set (default 1)")
    g.add_argument("--client", default="", help="client that writes (default: the first)")
    g.add_argument("--replace", action="store_true",
                   help="delete a data set generated in that folder before, and its manifest")
    v = dsub.add_parser("verify", help="re-read a data set from a client, report losses")
    v.add_argument("--dir", default=None,
                   help="folder relative to the mount (default: the manifest's, else data)")
    v.add_argument("--client", default="",
                   help="client that reads (default: the one after the writer)")
    v.add_argument("--manifest", default="",
                   help="manifest file (default: <run dir>/datasets/<dir>/manifest.json)")
    v.add_argument("--file-timeout", default="120",
                   help="seconds one file's read may take before it counts as unreadable")
    for d in (g, v):
        d.add_argument("--run", default=None,
                       help="run directory holding the manifests (default $CHAOSMOOSE_RUN_DIR "
                            "or runs/current)")
        d.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_data)
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
