"""Monitoring on the real cluster: Prometheus scrapes every agent and exporter, its figures
match the containers, the consoles render, and an alert fires on a real fault and clears."""

from __future__ import annotations

import subprocess
import time

import pytest
import requests

from chaosmoose.monitoring import probes
from tests.cluster.conftest import CHUNKSERVERS, CLIENTS, MASTERS, PROMETHEUS, wait_for

pytestmark = pytest.mark.cluster

CONFIG = {"prometheus_url": PROMETHEUS}


def query(promql: str) -> dict[str, float]:
    """{node label: value} of an instant query."""
    return {s["labels"].get("node", ""): s["value"]
            for s in probes.prometheus_query(promql, configuration=CONFIG)}


def test_every_agent_and_exporter_is_scraped(cluster):
    for job, nodes in (("mooseng-master", MASTERS), ("mooseng-chunkserver", CHUNKSERVERS),
                       ("mooseng-client", CLIENTS)):
        result = wait_for(f"all {job} targets up", lambda job=job, nodes=nodes: probes.targets_up(
            job, raise_on_down=False, configuration=CONFIG)["up"] == sorted(nodes), timeout=30)
        assert result


def test_prometheus_sees_the_leader_the_agents_report(cluster):
    leader = wait_for("one leader", cluster.leader, timeout=30)
    wait_for("Prometheus to see exactly one leader",
             lambda: query("mooseng_master_is_leader == 1") == {leader: 1.0}, timeout=20)
    wait_for("every master to report a Raft quorum",
             lambda: query("sum(mooseng_raft_has_quorum)")[""] == 3, timeout=20)
    # After a leader change (the experiments before make several) chunkservers take up to
    # a minute to register with the new leader.
    wait_for("the leader to report every chunkserver", lambda: query(
        "max(mooseng_chunkservers_connected)")[""] == len(CHUNKSERVERS), timeout=90)


def test_exporter_figures_match_the_containers(cluster):
    # Tier size: Prometheus against df inside the chunkserver.
    sizes = query('mooseng_chunkserver_folder_size_bytes{tier="fast"}')
    for node in CHUNKSERVERS:
        df = cluster.sh(node, "df -B1 --output=size /var/lib/mooseng/tiers/fast | tail -1").out
        assert sizes[node] == int(df.strip()), node
    # Chunk files: Prometheus against find. The exporter caches counts for 15 s and the
    # tests before leave replication and deletions running, so poll until the two agree
    # within 2 % (both are read again each time).
    def counts_agree(node: str) -> bool:
        exported = query('sum by (node) (mooseng_chunkserver_chunk_files)')[node]
        found = int(cluster.sh(node, "find /var/lib/mooseng/tiers -name 'chunk_*.mfs' | wc -l").out)
        if not (found > 0 and abs(exported - found) <= max(5, found // 50)):
            raise AssertionError(f"exported {exported:.0f}, find counts {found}")  # wait_for shows it
        return True

    for node in CHUNKSERVERS:
        wait_for(f"{node}'s exported chunk count to match find",
                 lambda node=node: counts_agree(node), timeout=120, interval=5)
    # Client FUSE writes: the counter grows when client-2 writes.
    before = query('mooseng_client_fuse_operations_total{op="write",node="client-2"}')["client-2"]
    cluster.sh("client-2", "mkdir -p /mnt/client-2/monitoring && for i in $(seq 1 20); do "
               "head -c 4096 /dev/urandom > /mnt/client-2/monitoring/f$i; done")
    wait_for("client-2's write counter to grow by 20", lambda: query(
        'mooseng_client_fuse_operations_total{op="write",node="client-2"}')["client-2"] >= before + 20,
        timeout=20)
    assert set(query("mooseng_client_mount_up == 1")) == set(CLIENTS)


def test_rule_tests_pass_in_the_running_prometheus(cluster):
    result = cluster.sh("prometheus", "cd /etc/prometheus/tests && promtool test rules *.yml")
    assert "SUCCESS" in result.out


def test_consoles_render_live_values(cluster):
    leader = wait_for("one leader", cluster.leader, timeout=30)
    page = requests.get(f"{PROMETHEUS}/consoles/mooseng.html", timeout=10)
    assert page.status_code == 200, page.text[:500]
    text = page.text
    assert "error executing template" not in text
    assert f"Leader now: <b>{leader}" in text
    for node in (*MASTERS, *CHUNKSERVERS, *CLIENTS):
        assert f"<td>{node}</td>" in text, node
    alerts_page = requests.get(f"{PROMETHEUS}/consoles/mooseng-alerts.html", timeout=10)
    assert alerts_page.status_code == 200 and "<table>" in alerts_page.text


def test_stopping_a_chunkserver_fires_its_alert_and_restarting_clears_it(cluster):
    probes.no_alert_firing(ignore=["MooseNGChunksUndergoal", "MooseNGChunksMissing"],
                           configuration=CONFIG)
    victim = "chunkserver-3"
    began = time.monotonic()
    cluster.container(victim).stop(timeout=10)
    try:
        fired = probes.wait_for_alert("MooseNGChunkserverDown", "firing", node=victim, timeout=60,
                                      configuration=CONFIG)
        assert fired["ok"]
        # Only the victim's alert: the other chunkservers stay quiet.
        down = {a["labels"].get("node") for a in probes.alerts(configuration=CONFIG)
                if a["name"] == "MooseNGChunkserverDown"}
        assert down == {victim}
        print(f"MooseNGChunkserverDown fired {time.monotonic() - began:.1f} s after the stop")
    finally:
        cluster.container(victim).start()
    cluster.wait_healthy([victim], timeout=120)
    cleared = probes.wait_for_alert("MooseNGChunkserverDown", "resolved", node=victim, timeout=60,
                                    configuration=CONFIG)
    assert cleared["ok"]


def test_every_dashboard_panel_query_works_on_the_live_prometheus(cluster):
    from tests.unit.test_monitoring_config import dashboard_queries

    queries = dashboard_queries()
    assert len(queries) >= 10
    empty = []
    for title, expr in queries:
        result = probes.prometheus_query(expr, configuration=CONFIG)  # raises on a bad query
        if not result:
            empty.append(title)
    # Only panels of events that need not have happened may be empty.
    assert set(empty) <= {"Alerts firing"}, empty


def live_metrics(cluster) -> dict[str, str]:
    """{node: its /metrics text}: the agents' from their published ports, the exporters'
    from inside their containers (their port is not published)."""
    texts = {}
    for node, url in MASTERS.items():
        reply = requests.get(f"{url}/metrics", timeout=10)
        assert reply.status_code == 200, f"{node}: /metrics answered {reply.status_code}"
        assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", node
        texts[node] = reply.text
    fetch = ("python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
             "f\"http://127.0.0.1:{sys.argv[1]}/metrics\", timeout=10).read().decode())' "
             "\"${MOOSENG_EXPORTER_PORT:-9450}\"")
    for node in (*CHUNKSERVERS, *CLIENTS):
        texts[node] = cluster.sh(node, fetch).out
    return texts


def test_live_metrics_pass_promtool_check_metrics(cluster):
    """Every agent's and exporter's real /metrics follows the Prometheus naming conventions,
    as the promtool of the running Prometheus image lints them, and together they carry
    every metric the alert rules, consoles and dashboard query."""
    from tests.unit.expositions import metric_names
    from tests.unit.test_monitoring_config import used_metric_names

    wait_for("one leader (its /metrics carries the chunk figures)", cluster.leader, timeout=30)
    prometheus = cluster.container("prometheus").name
    for node, text in live_metrics(cluster).items():
        assert "# TYPE" in text, f"{node}: empty /metrics"
        done = subprocess.run(["docker", "exec", "-i", prometheus, "promtool", "check", "metrics"],
                              input=text, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, (f"{node}: promtool check metrics exited {done.returncode}: "
                                      f"{done.stderr}{done.stdout}")

    def every_queried_metric_exported() -> bool:
        # The leader's chunk figures need mfscli to answer: read again until they are there.
        names = set().union(*map(metric_names, live_metrics(cluster).values()))
        missing = used_metric_names() - names
        if missing:
            raise AssertionError(f"queried by rules, consoles or dashboard but exported by no "
                                 f"server: {sorted(missing)}")
        return True

    wait_for("every queried metric in some live /metrics", every_queried_metric_exported,
             timeout=60, interval=2)
