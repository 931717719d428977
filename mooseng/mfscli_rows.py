"""Run ``mfscli`` and split its tab-separated rows (no JSON in MooseFS 3.0).

With stdout not a terminal, mfscli prints one row per line, fields separated by
tabs, prefixed with the section title. It exits 0 even when no master answers,
so the text is checked for that case.
"""

from __future__ import annotations

import subprocess

NO_MASTER_MARKERS = ("Working master servers not found", "Can't connect to MFS master",
                     "can't connect")


class MfscliError(RuntimeError):
    """mfscli could not reach a master or failed."""


def query(host: str, port: int, section: str, timeout: float = 5.0) -> list[list[str]]:
    """Rows of ``mfscli -H host -P port -S<section>``, each split on tabs."""
    argv = ["mfscli", "-H", host, "-P", str(port), "-n", f"-S{section}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    text = done.stdout + done.stderr
    if any(marker.lower() in text.lower() for marker in NO_MASTER_MARKERS) or done.returncode:
        raise MfscliError(f"mfscli -S{section} via {host}:{port}: {text.strip()[:200]}")
    return [line.split("\t") for line in done.stdout.splitlines() if line.strip()]


def number(field: str) -> int:
    """An mfscli number: digits that may contain spaces as thousands separators."""
    return int(field.replace(" ", "").replace("\u00a0", "") or 0)
