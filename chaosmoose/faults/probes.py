"""Probes of the fault ledger."""

from chaoslib.types import Configuration, Secrets

from chaosmoose import _faults, _settings
from chaosmoose.ledger import Ledger

__all__ = ["open_faults"]


def open_faults(all_runs: bool = True, configuration: Configuration = None,
                secrets: Secrets = None) -> int:
    """The number of faults recorded in a ledger and not yet undone.

    Counts every run's faults by default: every ledger below the runs directory
    (``chaosmoose_runs_dir``) and this run's, so a leftover of a killed run counts too (each
    is logged with the run it came from); with ``all_runs`` false only this run's faults in
    this run's ledger. Use tolerance 0 to assert the cluster is unfaulted.
    """
    if not _settings.parse_bool("all_runs", all_runs):
        run = _settings.run_id(configuration, secrets)
        return len(Ledger(_settings.run_dir(configuration, secrets)).open_faults(run=run))
    count = 0
    for ledger in _faults.every_ledger(configuration, secrets):
        for fault in ledger.open_faults():
            _faults.logger.info("open fault: %s", _faults.describe(ledger, fault))
            count += 1
        for problem in ledger.problems:
            _faults.logger.warning("ledger: %s", problem)
    return count
