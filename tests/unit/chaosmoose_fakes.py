"""Boundary fakes for the chaosmoose unit tests: an autospec'd Docker client and master APIs."""

from __future__ import annotations

import builtins
import json
from typing import Any
from unittest.mock import create_autospec

import docker
import pytest
from docker.models.containers import Container, ContainerCollection, ExecResult

from chaosmoose import _docker

MASTERS = {"master-1": "http://127.0.0.1:9431", "master-2": "http://127.0.0.1:9432",
           "master-3": "http://127.0.0.1:9433"}
CLIENTS = ("client-1", "client-2", "client-3")
SERVICES = (*MASTERS, "chunkserver-1", "chunkserver-2", "chunkserver-3", *CLIENTS)


def make_container(service: str, project: str = "mooseng") -> Any:
    """An autospec'd Container whose lifecycle calls change its status."""
    c = create_autospec(Container, instance=True)
    c.id = f"id-{service}"
    c.name = f"{project}_{service}_1"
    c.status = "running"
    c.labels = {_docker.PROJECT_LABEL: project, _docker.SERVICE_LABEL: service}

    def set_status(value: str) -> Any:
        def effect(*args: Any, **kwargs: Any) -> None:
            c.status = value
        return effect

    c.kill.side_effect = set_status("exited")
    c.stop.side_effect = set_status("exited")
    c.pause.side_effect = set_status("paused")
    c.unpause.side_effect = set_status("running")
    c.start.side_effect = set_status("running")
    c.restart.side_effect = set_status("running")
    c.exec_run.return_value = ExecResult(0, (b'{"running": true}\n', b""))
    return c


class FakeDocker:
    """A Docker client (autospec'd) holding one container per compose service."""

    def __init__(self, project: str = "mooseng", services: tuple[str, ...] = SERVICES) -> None:
        self.containers = {s: make_container(s, project) for s in services}
        self.client = create_autospec(docker.DockerClient, instance=True)
        self.client.containers = create_autospec(ContainerCollection, instance=True)
        self.client.containers.list.side_effect = self._list
        self.client.containers.get.side_effect = self._get

    def _list(self, all: bool = False, filters: dict | None = None, **_: Any) -> list:
        include_stopped = all
        labels = dict(item.split("=", 1) for item in (filters or {}).get("label", []))
        return [c for c in self.containers.values()
                if (include_stopped or c.status == "running")
                and builtins.all(c.labels.get(k) == v for k, v in labels.items())]

    def _get(self, container_id: str) -> Any:
        for c in self.containers.values():
            if c.id == container_id:
                return c
        raise docker.errors.NotFound(f"no such container {container_id}")


@pytest.fixture
def fake_docker() -> Any:
    """Install a FakeDocker as the process-wide client."""
    fake = FakeDocker()
    _docker.set_docker_client(fake.client)
    yield fake
    _docker.set_docker_client(None)


@pytest.fixture
def config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A configuration pointing the run directory at tmp_path, with a fixed run id."""
    for env in ("CHAOSMOOSE_MASTERS", "CHAOSMOOSE_CLIENTS", "COMPOSE_PROJECT_NAME",
                "MOOSENG_API_TOKEN", "CHAOSMOOSE_RUN_DIR", "CHAOSMOOSE_RUN_ID"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.chdir(tmp_path)
    return {"chaosmoose_run_dir": str(tmp_path / "run"), "chaosmoose_run_id": "run-1",
            "mooseng_http_timeout": 0.5}


def status_body(name: str, role: str, holder: str | None, epoch: int = 3,
                quorum: bool = True) -> dict:
    """A /status body as the agent documents it."""
    return {"node": name, "role": role,
            "lease": {"holder": holder, "epoch": epoch, "expires_in": 1.5},
            "raft": {"term": 7, "commit_index": 10, "has_quorum": quorum, "leader": None},
            "daemon": {"name": "mfsmaster" if role == "leader" else "mfsmetalogger",
                       "state": "running"}}


def mock_masters(requests_mock: Any, leader: str | None = "master-1", epoch: int = 3,
                 down: tuple[str, ...] = (), roles: dict[str, str] | None = None,
                 cluster: dict | None = None) -> None:
    """Register /status, /leader, /replica and /cluster answers for every master."""
    import requests

    for name, url in MASTERS.items():
        if name in down:
            for path in ("/status", "/leader", "/replica", "/cluster", "/health"):
                requests_mock.get(url + path,
                                  exc=requests.exceptions.ConnectionError("Connection refused"))
            continue
        role = (roles or {}).get(name) or ("leader" if name == leader else "follower")
        requests_mock.get(url + "/status", json=status_body(name, role, leader, epoch))
        requests_mock.get(url + "/leader", status_code=200 if role == "leader" else 503,
                          json={"node": name, "role": role, "ok": role == "leader",
                                "epoch": epoch})
        requests_mock.get(url + "/replica", status_code=200 if role == "follower" else 503,
                          json={"node": name, "role": role})
        requests_mock.get(url + "/cluster", json=cluster or {
            "node": name, "leader": leader, "epoch": epoch,
            "chunkservers": [{"address": f"172.20.0.{i}:9422", "id": i} for i in (5, 6, 7)],
            "chunks": {"missing": 0, "endangered": 0, "undergoal": 0, "stable": 12,
                       "overgoal": 0, "pending_deletion": 0}})


def exec_json(obj: dict, code: int = 0) -> ExecResult:
    """An exec_run result printing ``obj`` as JSON."""
    return ExecResult(code, (json.dumps(obj).encode() + b"\n", b""))


TOXIPROXY = "http://127.0.0.1:8474"
CHUNKSERVERS = ("chunkserver-1", "chunkserver-2", "chunkserver-3")


def lab_proxy_names() -> list[str]:
    """The lab's proxies as the compose file defines them (Raft only in the dialer's direction)."""
    masters = list(MASTERS)
    names = [f"{b}>{a}:raft" for i, a in enumerate(masters) for b in masters[i + 1:]]
    for src in masters:
        names += [f"{src}>{dst}:{kind}" for dst in masters if dst != src
                  for kind in ("api", "ml", "cl")]
    for src in CHUNKSERVERS:
        names += [f"{src}>{dst}:{kind}" for dst in masters for kind in ("api", "cs")]
    for src in CLIENTS:
        names += [f"{src}>{dst}:{kind}" for dst in masters for kind in ("api", "cl")]
    return names


class FakeToxiproxy:
    """A Toxiproxy 2.x API behind requests_mock: proxies, and toxics that can be added and
    deleted, with the server's error shapes. ``fail_add_after`` makes the n+1-th POST fail;
    ``before_add`` (if set) is called with the proxy name before each toxic is added."""

    def __init__(self, requests_mock: Any, url: str = TOXIPROXY,
                 names: list[str] | None = None) -> None:
        import re
        from urllib.parse import unquote

        self.url = url
        self.proxies = {name: {"name": name, "listen": f"[::]:{20000 + i}",
                               "upstream": f"{name.partition('>')[2].partition(':')[0]}:9421",
                               "enabled": True, "toxics": []}
                        for i, name in enumerate(names or [*lab_proxy_names(), "prometheus"])}
        self.added: list[tuple[str, dict]] = []
        self.fail_add_after: int | None = None
        self.before_add: Any = None
        self._unquote = unquote
        base = re.escape(url)
        requests_mock.get(url + "/version", text="2.5.0")
        requests_mock.get(url + "/proxies", json=lambda request, context: self.proxies)
        requests_mock.post(re.compile(base + r"/proxies/([^/]+)/toxics$"), json=self._add)
        requests_mock.delete(re.compile(base + r"/proxies/([^/]+)/toxics/([^/]+)$"),
                             json=self._delete)

    def _parts(self, request: Any) -> list[str]:
        return [self._unquote(p) for p in request.path.split("/")[2:]]

    def _add(self, request: Any, context: Any) -> dict:
        proxy = self._parts(request)[0]
        if self.before_add is not None:
            self.before_add(proxy)
        if proxy not in self.proxies:
            context.status_code = 404
            return {"error": "proxy not found", "status": 404}
        if self.fail_add_after is not None and len(self.added) >= self.fail_add_after:
            context.status_code = 500
            return {"error": "listener exploded", "status": 500}
        toxic = request.json()
        if any(t["name"] == toxic["name"] for t in self.proxies[proxy]["toxics"]):
            context.status_code = 409
            return {"error": "toxic already exists", "status": 409}
        self.proxies[proxy]["toxics"].append(toxic)
        self.added.append((proxy, toxic))
        return toxic

    def _delete(self, request: Any, context: Any) -> dict | None:
        proxy, name = self._parts(request)[0], self._parts(request)[2]
        toxics = self.proxies.get(proxy, {}).get("toxics", [])
        if not any(t["name"] == name for t in toxics):
            context.status_code = 404
            return {"error": "toxic not found", "status": 404}
        toxics[:] = [t for t in toxics if t["name"] != name]
        context.status_code = 204
        return None

    def toxics(self) -> list[tuple[str, str]]:
        """Every (proxy, toxic name) currently on the server."""
        return sorted((p, t["name"]) for p, body in self.proxies.items() for t in body["toxics"])
