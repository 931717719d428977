"""Log aggregation on the real cluster: every service's output reaches the collector with
its time and service, `chaosmoose logs` and the log probe find it, `docker logs` still works."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from chaosmoose.logs import probes
from tests.cluster.conftest import REPO, SERVICES, wait_for

pytestmark = pytest.mark.cluster

COLLECTED = [s for s in SERVICES if s != "logs"]  # the collector logs to json-file itself


def test_every_service_reaches_the_collector(cluster):
    def services_seen():
        seen = {line["service"] for line in probes.log_lines(since="2h", limit=100000)}
        return set(COLLECTED) <= seen and seen
    seen = wait_for("a log line of every service", services_seen, timeout=30)
    assert set(COLLECTED) <= seen


def test_a_line_written_in_a_container_is_found_by_time_and_service(cluster):
    marker = f"chaosmoose-log-test-{uuid.uuid4().hex[:8]}"
    before = time.time()
    cluster.sh("client-2", f"echo '{marker} hello' > /proc/1/fd/1")
    lines = wait_for(f"{marker} in the collected logs",
                     lambda: probes.log_lines(pattern=marker, since="5m"), timeout=15, interval=0.5)
    assert [(line["service"], line["message"]) for line in lines] == [("client-2", f"{marker} hello")]
    # The time is Docker's, to the microsecond, and inside the window we asked about.
    assert probes.log_lines(pattern=marker, since=str(before - 1), until=str(time.time() + 1))
    assert probes.log_lines(pattern=marker, since=str(before - 600), until=str(before - 300)) == []
    assert probes.log_lines(pattern=marker, services=["client-1"], since="5m") == []
    # The CLI shows the same line.
    out = subprocess.run([str(REPO / ".venv/bin/chaosmoose"), "logs", "--since", "5m", "--grep",
                          marker], cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
    assert "client-2" in out.stdout and f"{marker} hello" in out.stdout


def test_docker_logs_still_work_beside_the_collector(cluster):
    assert cluster.container("master-1").logs(tail=5).strip()
