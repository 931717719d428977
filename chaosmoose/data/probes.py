"""Re-read a test data set through a client and compare it with its manifest
(``chaosmoose data verify`` on the command line)."""

import logging

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _settings
from chaosmoose.data import _datasets

__all__ = ["data_intact"]

logger = logging.getLogger("chaostoolkit")


def data_intact(directory: str = "data", client: str = "", manifest: str = "",
                file_timeout: float = 120.0, raise_on_loss: bool = False,
                configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Re-read the data set in ``directory`` through a client and classify every entry.

    Compares each entry of the manifest (``manifest``, a path, whose own folder is then
    read; default this run directory's manifest for ``directory``, written by
    ``data_generate``) with what ``client`` reads
    (default: the configured client after the one that wrote it): ``intact``, ``missing``
    (absent, or unreadable: an I/O error or a read longer than ``file_timeout`` s) or
    ``corrupt`` (wrong type, size or SHA-256, a hard link split into copies, a broken
    symbolic link). Returns ``{"valid", "entries", "intact", "missing", "corrupt", "lost",
    "problems", "unexpected", "bytes_read", "mib_per_s", ...}``; assert ``lost`` with a
    range tolerance ``[0, 0]``. Before any data set in this run directory (and without
    ``manifest``) it is valid with all counts 0, so it can sit in a steady-state hypothesis
    ahead of ``data_generate``. With ``raise_on_loss`` any missing or corrupt entry fails the
    probe. Fails on a manifest that does not exist or is malformed, an unknown client, or a
    client whose mount is gone.
    """
    loss = _settings.parse_bool("raise_on_loss", raise_on_loss)
    if manifest in (None, "") and not _datasets.known_datasets(configuration, secrets):
        _datasets.check_directory(directory)
        _datasets.client_name(client, configuration, secrets)
        return {"valid": True, "entries": 0, "intact": 0, "missing": 0, "corrupt": 0,
                "lost": 0, "problems": [], "unexpected": 0,
                "note": "no data set in this run directory yet"}
    if manifest not in (None, ""):
        _datasets.check_directory(directory)
        directory = ""  # the folder the manifest records
    report = _datasets.verify(directory, client, manifest, file_timeout, configuration,
                              secrets)
    if loss and report["lost"]:
        first = report["problems"][0]
        raise ActivityFailed(
            f"data set {report['directory']} through {report['client']}: {report['missing']} "
            f"missing, {report['corrupt']} corrupt of {report['entries']} (first: "
            f"{first['path']} {first['state']}, {first['reason']}); expected every entry intact")
    return report
