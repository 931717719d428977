"""Rollback actions that heal every open fault recorded in the ledger."""

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _faults, _settings
from chaosmoose.ledger import Ledger

__all__ = ["undo_all_faults"]


def undo_all_faults(all_runs: bool = False, configuration: Configuration = None,
                    secrets: Secrets = None) -> list:
    """Undo every open fault of this run (or of every run with ``all_runs``), newest first.

    With ``all_runs`` it reads every ledger below the runs directory too, as ``chaosmoose
    cleanup`` does, and uses the same undo code. Returns one result per fault; fails when
    any fault could not be undone (it stays open in the ledger).
    """
    if _settings.parse_bool("all_runs", all_runs):
        ledgers, run = _faults.every_ledger(configuration, secrets), None
    else:
        ledgers = [Ledger(_settings.run_dir(configuration, secrets))]
        run = _settings.run_id(configuration, secrets)
    results = []
    for ledger in ledgers:
        results += _faults.undo_open(ledger, run=run)
    failed = [r["error"] for r in results if not r["undone"]]
    if failed:
        raise ActivityFailed("; ".join(failed))
    return results
