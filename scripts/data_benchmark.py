"""Data set throughput: generate a set through one client, verify it from another, in MiB/s.

    .venv/bin/python scripts/data_benchmark.py                 # 1 GiB, 200 files
    .venv/bin/python scripts/data_benchmark.py --size 256MiB --rounds 3

Needs the cluster up (``make up``). Each round writes a fresh set (``chaosmoose data
generate``: deterministic content from ``--seed``, every file fsync'ed) under
``bench-data/<run>-<round>`` through ``--writer`` and reads it all back through
``--reader`` (``chaosmoose data verify``: SHA-256 of every file, compared with the
manifest); a reader other than the writer has none of the data in its cache, so the read
goes to the chunkservers. Generation MiB/s counts the set's logical bytes (holes of sparse
files included, ``written`` says how many were actually written); verification MiB/s the
bytes read. The folder is removed after each round unless ``--keep``.

Prints the command it ran, one line per round, and a table; writes every round to
``runs/bench-data-<time>/benchmark.json`` (the manifests are next to it under
``datasets/``). Exit 0 when every round verified intact.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

from benchlib import log

from chaosmoose.data import _datasets, _progress
from chaosmoose.data.plan import MIB, format_size, parse_size


def main() -> int:
    """Run the rounds; print the table; exit 1 when a round lost data."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1GiB", help="bytes per set (default 1GiB)")
    parser.add_argument("--files", type=int, default=200, help="entries per set (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--writer", default="client-1")
    parser.add_argument("--reader", default="client-2")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the sets on MooseFS")
    args = parser.parse_args()
    size = parse_size(args.size)
    run = time.strftime("bench-data-%Y%m%dT%H%M%S")
    config = {"chaosmoose_run_dir": f"runs/{run}", "chaosmoose_run_id": run}
    command = "scripts/data_benchmark.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"$ .venv/bin/python {command.strip()}")
    log(f"run={run} size={format_size(size)} files={args.files} writer={args.writer} "
        f"reader={args.reader} rounds={args.rounds}")
    rounds = []
    for number in range(1, args.rounds + 1):
        directory = f"bench-data/{run}-{number}"
        bar = _progress.Bar(f"round {number} write")
        made = _datasets.generate(directory, size, args.files, args.seed, args.writer, False,
                                  config, None, progress=bar)
        bar.close()
        bar = _progress.Bar(f"round {number} read ")
        checked = _datasets.verify(directory, args.reader, "", 300, config, None, progress=bar)
        bar.close()
        rounds.append({"round": number, "directory": directory, "entries": made["entries"],
                       "bytes": made["bytes"], "written_bytes": made["written_bytes"],
                       "generate_s": made["seconds"], "generate_mib_s": made["mib_per_s"],
                       "verify_bytes": checked["bytes_read"], "verify_s": checked["seconds"],
                       "verify_mib_s": checked["mib_per_s"], "intact": checked["intact"],
                       "missing": checked["missing"], "corrupt": checked["corrupt"]})
        log(f"round={number} generate {made['seconds']} s ({made['mib_per_s']} MiB/s) "
            f"verify {checked['seconds']} s ({checked['mib_per_s']} MiB/s) intact "
            f"{checked['intact']}/{checked['entries']}")
        if not args.keep:
            _datasets.remove(directory, args.writer, config, None)
    print()
    print("| round | phase | client | entries | MiB | seconds | MiB/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rounds:
        print(f"| {r['round']} | generate | {args.writer} | {r['entries']} | "
              f"{r['bytes'] / MIB:.1f} ({r['written_bytes'] / MIB:.1f} written) | "
              f"{r['generate_s']} | {r['generate_mib_s']} |")
        print(f"| {r['round']} | verify | {args.reader} | {r['entries']} | "
              f"{r['verify_bytes'] / MIB:.1f} | {r['verify_s']} | {r['verify_mib_s']} |")
    summary = {"size": size, "files": args.files, "seed": args.seed, "writer": args.writer,
               "reader": args.reader, "rounds": len(rounds),
               "generate_mib_s_median": statistics.median(r["generate_mib_s"] or 0
                                                          for r in rounds),
               "verify_mib_s_median": statistics.median(r["verify_mib_s"] or 0 for r in rounds),
               "lost": sum(r["missing"] + r["corrupt"] for r in rounds)}
    if len(rounds) > 1:
        print(f"\nmedian over {len(rounds)} rounds: generate {summary['generate_mib_s_median']}"
              f" MiB/s, verify {summary['verify_mib_s_median']} MiB/s")
    Path(f"runs/{run}/benchmark.json").write_text(
        json.dumps({**summary, "command": command, "per_round": rounds}, indent=2))
    return 0 if summary["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
