"""monitoring/ agrees with the code and the compose file (no Docker needed).

promtool itself checks the syntax and runs the rule tests when the Prometheus image is
built (and tests/cluster/test_40_monitoring.py runs them in the live container).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from mooseng import settings
from tests.unit.expositions import every_text, metric_names

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def scrape_targets() -> dict[str, set[str]]:
    config = load(MONITORING / "prometheus.yml")
    return {job["job_name"]: {t for sc in job["static_configs"] for t in sc["targets"]}
            for job in config["scrape_configs"]}


def alert_rules() -> list[dict]:
    return [rule for group in load(MONITORING / "rules" / "mooseng.yml")["groups"]
            for rule in group["rules"]]


def test_every_compose_service_is_scraped_on_its_metrics_port():
    services = load(REPO / "docker-compose.yml")["services"]
    targets = scrape_targets()
    api = settings.SETTINGS["MOOSENG_API_PORT"].default
    exporter = settings.SETTINGS["MOOSENG_EXPORTER_PORT"].default
    masters = {s for s, spec in services.items() if spec.get("command") == ["master"]}
    chunkservers = {s for s, spec in services.items() if spec.get("command") == ["chunkserver"]}
    clients = {s for s, spec in services.items() if spec.get("command") == ["client"]}
    assert len(masters) == len(chunkservers) == len(clients) == 3
    assert targets["mooseng-master"] == {f"{s}:{api}" for s in masters}
    assert targets["mooseng-chunkserver"] == {f"{s}:{exporter}" for s in chunkservers}
    assert targets["mooseng-client"] == {f"{s}:{exporter}" for s in clients}


def test_prometheus_is_published_on_loopback_only():
    ports = load(REPO / "docker-compose.yml")["services"]["prometheus"]["ports"]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)


def test_every_alert_has_severity_summary_and_a_rule_test_that_fires_it():
    tests = load(MONITORING / "tests" / "rules_test.yml")["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"]
             if case["exp_alerts"]}
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["alert"] in fired, f"{rule['alert']} has no promtool test that fires it"


def used_metric_names() -> set[str]:
    """Every mooseng_ metric the alert rules, consoles and dashboard panels query."""
    texts = [(MONITORING / "rules" / "mooseng.yml").read_text()]
    texts += [p.read_text() for p in (MONITORING / "consoles").glob("*.html")]
    texts += [expr for _, expr in dashboard_queries()]
    return set(re.findall(r"\b(mooseng_[a-z_]+)", "\n".join(texts)))


def test_rules_and_consoles_use_only_metrics_the_code_exports(tmp_path, monkeypatch):
    # What the agent's and the exporters' /metrics really render (tests/unit/expositions.py),
    # not names found in the source: a counter's _total or a family left out would show.
    exported = set().union(*map(metric_names, every_text(tmp_path, monkeypatch).values()))
    assert "mooseng_master_is_leader" in exported and "mooseng_client_mount_up" in exported
    used = used_metric_names()
    assert used, "no mooseng_ metric found in rules and consoles"
    assert used <= exported, f"not exported by any collector: {sorted(used - exported)}"


def test_every_service_but_the_collector_logs_to_it_on_its_port():
    services = load(REPO / "docker-compose.yml")["services"]
    conf = (MONITORING / "logs" / "rsyslog.conf").read_text()
    port = re.search(r'input\(type="imudp" port="(\d+)"', conf).group(1)
    assert any(p.startswith("127.0.0.1:") and p.endswith(f":{port}/udp")
               for p in services["logs"]["ports"])
    for name, spec in services.items():
        if name == "logs":
            assert spec["logging"]["driver"] == "json-file"
            continue
        options = spec["logging"]["options"]
        assert spec["logging"]["driver"] == "syslog", name
        assert options["syslog-address"] == f"udp://127.0.0.1:${{MOOSENG_LOGS_PORT:-{port}}}", name
        assert options["syslog-format"] == "rfc5424micro", name


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target of the provisioned dashboards."""
    found = []
    for path in (MONITORING / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            found += [(panel["title"], t["expr"]) for t in panel["targets"]]
    return found


def test_dashboards_use_the_provisioned_datasource_and_grafana_is_opt_in():
    source = load(MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uid = source["datasources"][0]["uid"]
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    for path in (MONITORING / "grafana" / "dashboards").glob("*.json"):
        panels = json.loads(path.read_text())["panels"]
        assert len(panels) >= 10
        assert {p["datasource"]["uid"] for p in panels} == {uid}
        assert len({p["id"] for p in panels}) == len(panels)
    grafana = load(REPO / "docker-compose.yml")["services"]["grafana"]
    assert grafana["profiles"] == ["grafana"]  # not started by `make up`: its image needs a registry
    assert all(p.startswith("127.0.0.1:") for p in grafana["ports"])
    # No default password: compose refuses to start it without a generated one.
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${MOOSENG_GRAFANA_PASSWORD:?")
    assert "MOOSENG_GRAFANA_PASSWORD" in (REPO / "scripts" / "make-env.sh").read_text()
