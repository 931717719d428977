"""Write a reproducible test data set through a client, with its manifest in the run
directory (``chaosmoose data generate`` on the command line)."""

import logging
import time

from chaoslib.types import Configuration, Secrets

from chaosmoose.data import _datasets, plan

__all__ = ["data_generate"]

logger = logging.getLogger("chaostoolkit")


class _LogProgress:
    """Log a progress line every 10 % or 30 s (the journal's log, not a bar)."""

    def __init__(self, what: str) -> None:
        self.what, self.step, self.logged = what, -1, time.monotonic()

    def __call__(self, event: dict) -> None:
        total = event.get("bytes_total") or 0
        step = int(10 * event.get("bytes", 0) / total) if total else 0
        if step > self.step or time.monotonic() - self.logged > 30:
            self.step, self.logged = step, time.monotonic()
            logger.info("%s: %d/%d entries, %s of %s", self.what, event.get("done", 0),
                        event.get("total", 0), plan.format_size(event.get("bytes", 0)),
                        plan.format_size(total))


def data_generate(directory: str = "data", size: str = "256MiB", files: int = 200,
                  seed: int = 1, client: str = "", replace: bool = False,
                  configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Write a reproducible data set of ``size`` bytes in ``files`` entries through a client.

    ``directory`` is relative to the client's mount; ``client`` defaults to the first
    configured client. The same ``seed`` writes the same folders, sizes and bytes: sizes from
    0 B to tens of MiB, nested folders, sparse files, a few hard and symbolic links, each
    file fsync'ed. ``size`` takes units (``64MiB``, ``1GiB``, ``10MB``) or bytes. The
    manifest (every entry with size and SHA-256) goes to ``<run dir>/datasets/<directory>/
    manifest.json`` for ``data_intact``. ``replace`` deletes a set this action wrote in the
    same folder first (and overwrites its manifest). Fails before touching the cluster on
    bad arguments, a set already generated in this run directory (without ``replace``) or a
    size that does not fit; fails when the folder exists and is not empty (without
    ``replace``), the mount is gone or a write fails. Returns ``{"directory", "client",
    "manifest", "entries", "files", "bytes", "seconds", "mib_per_s", ...}``.
    """
    return _datasets.generate(directory, size, files, seed, client, replace, configuration,
                              secrets, progress=_LogProgress(f"generating {directory}"))
