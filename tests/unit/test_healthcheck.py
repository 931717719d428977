"""The container healthcheck script (images/mooseng/healthcheck.sh), run for real with bash."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "images" / "mooseng" / "healthcheck.sh"


def check(role: str, env: dict[str, str], path: str | None = None) -> subprocess.CompletedProcess:
    full = {"PATH": path or os.environ["PATH"], "MOOSENG_NODE": "client-9", **env}
    return subprocess.run(["bash", str(SCRIPT), role], env=full, capture_output=True, text=True,
                          timeout=20, check=False)


def test_a_quote_in_the_mount_point_cannot_make_the_client_check_pass() -> None:
    """Interpolated into a bash -c string, this value ran `exit 0` and the check passed on a
    mount that does not exist."""
    missing = "/nonexistent-mooseng' || exit 0; '"
    done = check("client", {"MOOSENG_MOUNT_POINT": missing})
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.strip() == f"unhealthy: client: {missing}: stat or probe write failed"


def test_client_check_writes_reads_and_removes_its_probe_whatever_the_path(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt with 'quotes' and $(touch pwned) spaces"
    mnt.mkdir()
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "mountpoint").write_text('#!/bin/sh\n[ "$2" = "--" ] && [ -d "$3" ]\n')  # a stand-in
    (shims / "mountpoint").chmod(0o755)
    done = check("client", {"MOOSENG_MOUNT_POINT": str(mnt)},
                 path=f"{shims}:{os.environ['PATH']}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == f"healthy: client: {mnt} answers stat and probe writes"
    assert list(mnt.iterdir()) == []  # the probe was removed
    assert not (Path.cwd() / "pwned").exists()
