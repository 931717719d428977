"""Probes of the fault ledger."""

from chaoslib.types import Configuration, Secrets

from chaosmoose import _settings
from chaosmoose.ledger import Ledger

__all__ = ["open_faults"]


def open_faults(all_runs: bool = True, configuration: Configuration = None,
                secrets: Secrets = None) -> int:
    """The number of faults recorded in the ledger and not yet undone.

    Counts every run's faults by default (a leftover from a killed run counts too); with
    ``all_runs`` false only this run's. Use tolerance 0 to assert the cluster is unfaulted.
    """
    every = _settings.parse_bool("all_runs", all_runs)
    run = None if every else _settings.run_id(configuration, secrets)
    return len(Ledger(_settings.run_dir(configuration, secrets)).open_faults(run=run))
